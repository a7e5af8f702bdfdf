#include "limits.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <cstdint>

namespace pgml {

void advise_huge_pages(void *data, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
	constexpr uintptr_t kHuge = uintptr_t(2) << 20;
	if (data == nullptr || bytes < 2 * kHuge)
		return;
	const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
	const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
	if (end > begin)
		(void)madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE); // advice only: failure is fine
#else
	(void)data;
	(void)bytes;
#endif
}

std::string megabytes(double bytes)
{
	char buf[64];
	const double mb = bytes / (1024.0 * 1024.0);
	if (!std::isfinite(mb) || mb >= 1e15)
		std::snprintf(buf, sizeof buf, "more than 10^15 MB");
	else if (mb >= 100)
		std::snprintf(buf, sizeof buf, "%.0f MB", mb);
	else
		std::snprintf(buf, sizeof buf, "%.1f MB", mb);
	return buf;
}

std::string count_text(double v)
{
	char buf[64];
	if (!std::isfinite(v) || v >= 1e18)
		std::snprintf(buf, sizeof buf, "%.3g", v);
	else
		std::snprintf(buf, sizeof buf, "%.0f", v);
	return buf;
}

void check_memory(size_t limit, double bytes, const std::string &what, const std::string &detail,
                  const std::string &lower)
{
	if (limit == 0 || !(bytes > static_cast<double>(limit)))
		return;
	const std::string need = megabytes(bytes), have = megabytes(static_cast<double>(limit));
	// (a check made as something grows is just past the limit: no "about 64.0 MB, more than 64.0 MB")
	throw Error(ErrorCode::ProgramLimit,
	            what + " would need " + (need == have ? "more memory" : "about " + need + " of memory, more") +
	                " than pg_ml.max_memory (" + have + ")",
	            detail, "Lower " + lower + ", or raise pg_ml.max_memory.");
}

namespace memory {

namespace {
// Bytes xgboost keeps per tree node: its RegTree node and statistics (about 40), the saved JSON
// text of the node (about 10 numbers in as many arrays, about 150), the copy of that text and
// its parsed numbers that the model check makes, and the node again in the booster the model
// is loaded into.
constexpr double kXgbNodeBytes = 450;
constexpr double kTreeNodeBytes = 32; // TreeNode
} // namespace

double moments_bytes(double q)
{
	return 8.0 * q * (q + 1);
}

double matrix_bytes(double n, double p)
{
	return 8.0 * n * p;
}

double tree_nodes(double n, int max_depth)
{
	double by_rows = std::max(1.0, 2 * n - 1);
	if (max_depth <= 0 || max_depth >= 60)
		return by_rows;
	return std::min(by_rows, std::ldexp(1.0, max_depth + 1) - 1);
}

double gradient_boosting_bytes(double n, double p, int n_classes, int n_estimators, int max_depth, int max_bin)
{
	const double groups = n_classes > 2 ? n_classes : 1;                 // trees per round
	const double nodes = tree_nodes(n, max_depth);                       // per tree
	const double bins = p * std::min<double>(max_bin, std::max(1.0, n)); // histogram bins of all features
	const double data = n * p * (4 + (max_bin > 256 ? 2 : 1)) * 2;       // float copy + quantized, train and validation
	const double grad = n * groups * 24;                                 // gradient pairs, two prediction caches
	const double hist = (nodes + 1) / 2 * bins * 16; // a histogram (sum of gradient, hessian) per leaf
	const double model = static_cast<double>(n_estimators) * groups * nodes * kXgbNodeBytes;
	return data + grad + hist + model;
}

double tree_bytes(double n, int max_depth, int n_outputs)
{
	const double nodes = tree_nodes(n, max_depth);
	return nodes * kTreeNodeBytes + (nodes + 1) / 2 * 8.0 * std::max(1, n_outputs);
}

double svm_rbf_bytes(double n, double p, int workers, double cache_cap)
{
	const double w = std::max(1, workers);
	const double cache = std::min(cache_cap, w * n * n * 8);
	return cache + w * (2 * matrix_bytes(n, p) + n * 8 * 8) + matrix_bytes(n, p);
}

double mlp_bytes(double n, double p, int outputs, int layers, int units, int batch)
{
	const double weights = layers == 0
	                           ? (p + 1.0) * outputs
	                           : (p + 1.0) * units + (layers - 1) * (units + 1.0) * units + (units + 1.0) * outputs;
	const double width = std::max<double>({p, static_cast<double>(units), static_cast<double>(outputs)});
	const double acts = std::min<double>(batch, std::max(1.0, n)) * width * (layers + 2) * 2 * 8;
	return weights * 8 * 5 + acts + n * outputs * 8; // weights, best weights, gradient, Adam m and v; per-row outputs
}

double kmeans_bytes(double n, double p, int k, int runs_at_once)
{
	const double r = std::max(1, runs_at_once);
	return r * (2.0 * k * p * 8 + n * 8 * 3 + 256.0 * k * 8) + n * 8;
}

} // namespace memory

} // namespace pgml
