#include "gradient_boosting.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <pthread.h>
#include <random>
#include <string>
#include <utility>

#include <xgboost/c_api.h>

#include "flat_trees.hpp"
#include "limits.hpp"

namespace pgml {

namespace {

// Sub-format of the estimator's own encoding (after the blob header).
//   u16 version: 1 = fitted on imputed features; 2 = missing values native (NaN in the features,
//       xgboost's missing value, learns each split's default direction); the fields are the same

//   u8  task (0 regression, 1 classification)
//   u32 K (number of classes, 0 for regression)
//   u32 p (features)
//   u32 rounds (boosting rounds in the xgboost model)
//   u32 best_iteration (0-based; prediction uses rounds [0, best_iteration])
//   str model (xgboost's model as JSON text, XGBoosterSaveModelToBuffer format "json")
//   u32 CRC-32 of everything above (the fields as written, then the model bytes)
constexpr uint16_t kGbVersion = 2;
constexpr uint32_t kMaxRounds = 10000000;  // sanity bound on read (n_estimators <= 100000 per fit)
constexpr uint32_t kMaxClasses = 1000000;
constexpr uint32_t kMaxFeatures = 1u << 30;

// Blocks every signal on the calling thread while alive, restoring the previous mask after.
// Threads xgboost (OpenMP) starts meanwhile inherit the blocked mask and keep it for good.
class SignalBlock {
  public:
	SignalBlock()
	{
		sigset_t all;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old_);
	}
	~SignalBlock() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
	SignalBlock(const SignalBlock &) = delete;
	SignalBlock &operator=(const SignalBlock &) = delete;

  private:
	sigset_t old_;
};

// The first line of xgboost's last error message (it appends a stack trace).
std::string xgb_error()
{
	const char *e = XGBGetLastError();
	std::string s = e != nullptr ? e : "";
	size_t nl = s.find('\n');
	if (nl != std::string::npos)
		s.resize(nl);
	return s;
}

} // namespace

bool xgb_out_of_memory(const std::string &error)
{
	std::string e = error;
	std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
	return e.find("bad_alloc") != std::string::npos || e.find("out of memory") != std::string::npos ||
	       e.find("memory allocation") != std::string::npos || e.find("cannot allocate") != std::string::npos ||
	       e.find("bad array new length") != std::string::npos;
}

namespace {

// Silences xgboost's console logging on this thread (its global configuration is per thread).
void quiet_xgboost()
{
	static thread_local bool quiet = false;
	if (!quiet) {
		XGBSetGlobalConfig("{\"verbosity\": 0}");
		quiet = true;
	}
}

// Runs one xgboost call with all signals blocked; a non-zero return becomes Error(code).
template <class F> void xgb(ErrorCode code, const char *what, F call)
{
	int rc;
	{
		SignalBlock block;
		quiet_xgboost();
		rc = call();
	}
	if (rc != 0) {
		const std::string error = xgb_error();
		std::string detail = "xgboost failed while " + std::string(what) + ": " + error;
		if (xgb_out_of_memory(error))
			throw Error(ErrorCode::OutOfMemory, "out of memory", detail,
			            "Lower n_estimators, max_depth or max_bin, train on fewer rows, or lower pg_ml.max_memory.");
		if (code == ErrorCode::DataCorrupted)
			throw Error(code, "model blob is corrupted", detail,
			            "Deploy another version with ml_deploy(), or retrain the model.");
		throw Error(code, "gradient boosting failed", detail);
	}
}

// Owns a DMatrixHandle.
class DMatrix {
  public:
	DMatrix() = default;
	~DMatrix()
	{
		if (h != nullptr) {
			SignalBlock block;
			XGDMatrixFree(h);
		}
	}
	DMatrix(const DMatrix &) = delete;
	DMatrix &operator=(const DMatrix &) = delete;
	DMatrixHandle h = nullptr;
	std::vector<float> label; // the rows' labels, as the matrix has them
};

// Owns a BoosterHandle.
class Booster {
  public:
	Booster() = default;
	~Booster() { reset(nullptr); }
	Booster(const Booster &) = delete;
	Booster &operator=(const Booster &) = delete;
	// Frees the current booster and takes ownership of b.
	void reset(BoosterHandle b)
	{
		if (h != nullptr) {
			SignalBlock block;
			XGBoosterFree(h);
		}
		h = b;
	}
	BoosterHandle h = nullptr;
};

// A number as xgboost's string parameters want it (round-trips a double).
std::string num_str(double v)
{
	char buf[40];
	std::snprintf(buf, sizeof buf, "%.17g", v);
	return buf;
}

// Sets one booster parameter.
void set_param(BoosterHandle b, const char *name, const std::string &value)
{
	xgb(ErrorCode::InvalidParameter, "setting a parameter", [&] { return XGBoosterSetParam(b, name, value.c_str()); });
}

// The DMatrix of the given rows of X (all rows when rows is null) with labels y.
void make_dmatrix(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<int> *rows, int threads,
                  DMatrix &out)
{
	const size_t n = rows != nullptr ? rows->size() : static_cast<size_t>(X.rows());
	const size_t p = static_cast<size_t>(X.cols());
	std::vector<float> data(n * p);
	std::vector<float> label(n);
	// X is column-major, xgboost wants rows: transpose a block of rows at a time so that both
	// the reads (down a column) and the writes (into the block's rows) stay in cache
	constexpr size_t kBlock = 256;
	for (size_t i0 = 0; i0 < n; i0 += kBlock) {
		const size_t nb = std::min(kBlock, n - i0);
		for (size_t j = 0; j < p; j++) {
			const double *col = X.col(static_cast<Eigen::Index>(j)).data();
			float *out = data.data() + i0 * p + j;
			if (rows == nullptr) {
				for (size_t r = 0; r < nb; r++)
					out[r * p] = static_cast<float>(col[i0 + r]);
			} else {
				for (size_t r = 0; r < nb; r++)
					out[r * p] = static_cast<float>(col[(*rows)[i0 + r]]);
			}
		}
		for (size_t r = 0; r < nb; r++)
			label[i0 + r] = static_cast<float>(y(rows != nullptr ? (*rows)[i0 + r] : static_cast<Eigen::Index>(i0 + r)));
	}
	xgb(ErrorCode::Internal, "building the training matrix", [&] {
		return XGDMatrixCreateFromMat_omp(data.data(), n, p, std::numeric_limits<float>::quiet_NaN(), &out.h,
		                                  threads);
	});
	xgb(ErrorCode::Internal, "setting the labels",
	    [&] { return XGDMatrixSetFloatInfo(out.h, "label", label.data(), n); });
	out.label = std::move(label);
}

// Checks the rows an estimator is fitted on (and the optional validation rows).
void check_input(const FitInput &in, Task task, int K, int p)
{
	if (in.X == nullptr || in.y == nullptr)
		throw Error(ErrorCode::Internal, "gradient boosting needs a feature matrix and a target");
	const Eigen::MatrixXd &X = *in.X;
	if (X.rows() < 1)
		throw Error(ErrorCode::DataException, "gradient boosting needs at least one training row");
	if (X.cols() != p)
		throw Error(ErrorCode::DataException, "the rows have " + std::to_string(X.cols()) + " features, the model " +
		                                          std::to_string(p));
	if (in.y->size() != X.rows())
		throw Error(ErrorCode::Internal, "the target and the feature matrix differ in length");
	auto check_rows = [&](const Eigen::MatrixXd &M, const Eigen::VectorXd &v) {
		if ((M.array().abs() == std::numeric_limits<double>::infinity()).any())
			throw Error(ErrorCode::DataException, "the feature matrix holds an infinite value");
		for (Eigen::Index i = 0; i < v.size(); i++) {
			double t = v(i);
			bool ok = task == Task::Classification ? (t >= 0 && t < K && t == std::floor(t)) : std::isfinite(t);
			if (!ok)
				throw Error(ErrorCode::DataException, "invalid target value " + num_str(t) + " for gradient boosting");
		}
	};
	check_rows(X, *in.y);
	if (in.X_valid != nullptr) {
		if (in.y_valid == nullptr || in.y_valid->size() != in.X_valid->rows() || in.X_valid->cols() != p)
			throw Error(ErrorCode::Internal, "the validation rows do not match the training rows");
		check_rows(*in.X_valid, *in.y_valid);
	}
}

// Splits row indices 0..n-1 into training and validation rows with the seed. Classification
// splits each class on its own (stratified), so both parts keep the class proportions.
void split_rows(const Eigen::VectorXd &y, Task task, int K, double frac, uint64_t seed, std::vector<int> &train,
                std::vector<int> &valid)
{
	const int n = static_cast<int>(y.size());
	std::vector<std::vector<int>> groups(task == Task::Classification ? static_cast<size_t>(K) : 1);
	for (int i = 0; i < n; i++)
		groups[task == Task::Classification ? static_cast<size_t>(y(i)) : 0].push_back(i);
	std::mt19937_64 rng(seed);
	train.clear();
	valid.clear();
	for (auto &g : groups) {
		// Fisher-Yates with the raw engine output (the same on every platform)
		for (size_t i = g.size(); i > 1; i--)
			std::swap(g[i - 1], g[static_cast<size_t>(rng() % i)]);
		double want = frac * static_cast<double>(g.size());
		size_t nv = static_cast<size_t>(task == Task::Classification ? std::llround(want) : std::ceil(want));
		nv = std::min(nv, g.size());
		valid.insert(valid.end(), g.begin(), g.begin() + static_cast<std::ptrdiff_t>(nv));
		train.insert(train.end(), g.begin() + static_cast<std::ptrdiff_t>(nv), g.end());
	}
	if (valid.empty() && train.size() > 1) { // tiny classes: hold out at least one row
		valid.push_back(train.back());
		train.pop_back();
	}
	if (valid.empty() || train.empty())
		throw Error(ErrorCode::DataException, "too few rows to hold out a validation set for early stopping",
		            std::to_string(n) + " training rows.", "Set early_stopping_rounds to 0.");
	std::sort(train.begin(), train.end());
	std::sort(valid.begin(), valid.end());
}

// The loss xgboost's eval_metric reports (rmse, logloss, mlogloss, with its clipping at 1e-16)
// of predictions pred (the model's outputs: per row the value, class 1's probability, or the
// K classes' probabilities) of rows labelled y; NaN when the lengths do not match. Computed here
// from the booster's cached predictions: XGBoosterEvalOneIter costs about as much as a round.
double fit_loss(const float *pred, size_t len, const std::vector<float> &y, Task task, int K)
{
	const size_t n = y.size();
	const size_t per = task == Task::Classification && K > 2 ? static_cast<size_t>(K) : 1;
	if (n == 0 || len != n * per)
		return NAN;
	constexpr double eps = 1e-16;
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (task == Task::Regression) {
			const double d = static_cast<double>(pred[i]) - static_cast<double>(y[i]);
			sum += d * d;
		} else if (per == 1) {
			const double p = pred[i], t = y[i];
			sum -= t * std::log(std::max(p, eps)) + (1 - t) * std::log(std::max(1 - p, eps));
		} else {
			const size_t k = static_cast<size_t>(y[i]);
			sum -= std::log(std::max(static_cast<double>(pred[i * per + std::min(k, per - 1)]), eps));
		}
	}
	const double mean = sum / static_cast<double>(n);
	return task == Task::Regression ? std::sqrt(mean) : mean;
}

// ---- validation of a stored xgboost model before xgboost parses it ----
//
// xgboost 1.7 trusts its model files: a crafted buffer can make its UBJSON reader copy past the
// end, and a tree whose child indices point backwards or out of range makes prediction loop
// forever or read out of bounds. A stored model is therefore JSON text that is parsed here
// first (strict JSON, bounded depth) and checked to be exactly the kind of model fit writes:
// the expected objective, class and feature counts, and for every tree consistent array
// lengths, children after their parent and inside the tree, split features below p, and
// numerical splits only. Only then is the text handed to xgboost.

// A parsed JSON value. Arrays of numbers are kept as plain doubles (xgboost's tree arrays).
struct JVal {
	enum class Type { Null, Bool, Num, Str, Arr, Obj } type = Type::Null;
	double num = 0;
	std::string str;
	std::vector<double> nums;                        // Arr of numbers
	std::vector<JVal> items;                         // Arr of anything else
	std::vector<std::pair<std::string, JVal>> members; // Obj
	// The member called key, or null.
	const JVal *get(const char *key) const
	{
		for (const auto &m : members)
			if (m.first == key)
				return &m.second;
		return nullptr;
	}
};

[[noreturn]] void bad_model(const std::string &why)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "The stored xgboost model is invalid: " + why,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

// Strict recursive-descent JSON parser over an untrusted byte range.
class JsonParser {
  public:
	JsonParser(const char *p, size_t n) : p_(p), end_(p + n) {}
	// Parses the whole text as one value.
	JVal parse()
	{
		JVal v = value(0);
		ws();
		if (p_ != end_)
			bad_model("trailing bytes after the JSON document.");
		return v;
	}

  private:
	void ws()
	{
		while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
			p_++;
	}
	char peek()
	{
		ws();
		if (p_ == end_)
			bad_model("the JSON document ends early.");
		return *p_;
	}
	void expect(char c)
	{
		if (peek() != c)
			bad_model(std::string("expected '") + c + "' in the JSON document.");
		p_++;
	}
	bool literal(const char *word)
	{
		size_t n = std::strlen(word);
		if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0)
			return false;
		p_ += n;
		return true;
	}
	// A JSON string. xgboost writes no escapes in the models fit makes, and an escape could spell
	// a key differently to this parser and to xgboost's, so any backslash is refused.
	std::string string()
	{
		expect('"');
		std::string s;
		for (;;) {
			if (p_ == end_)
				bad_model("unterminated string.");
			char c = *p_++;
			if (c == '"')
				return s;
			if (static_cast<unsigned char>(c) < 0x20 || c == '\\')
				bad_model("unexpected character in a string.");
			s += c;
		}
	}
	// A JSON number (strict grammar), which must be finite.
	double number()
	{
		ws();
		const char *b = p_;
		auto digits = [&] {
			const char *d = p_;
			while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
				p_++;
			return p_ - d;
		};
		if (p_ != end_ && *p_ == '-')
			p_++;
		if (digits() == 0)
			bad_model("bad number.");
		if (p_ != end_ && *p_ == '.') {
			p_++;
			if (digits() == 0)
				bad_model("bad number.");
		}
		if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
			p_++;
			if (p_ != end_ && (*p_ == '+' || *p_ == '-'))
				p_++;
			if (digits() == 0)
				bad_model("bad number.");
		}
		if (p_ - b > 64)
			bad_model("overlong number.");
		std::string tok(b, p_);
		double v = std::strtod(tok.c_str(), nullptr);
		if (!std::isfinite(v))
			bad_model("a number is not finite.");
		return v;
	}
	JVal value(int depth)
	{
		if (depth > 32)
			bad_model("the JSON document is nested too deeply.");
		JVal v;
		char c = peek();
		if (c == '{') {
			p_++;
			v.type = JVal::Type::Obj;
			if (peek() == '}') {
				p_++;
				return v;
			}
			for (;;) {
				std::string k = string();
				// xgboost would keep the last of two equal keys, this validator the first
				if (v.get(k.c_str()) != nullptr)
					bad_model("a key appears twice in an object.");
				expect(':');
				v.members.emplace_back(std::move(k), value(depth + 1));
				if (peek() == ',') {
					p_++;
					continue;
				}
				expect('}');
				return v;
			}
		}
		if (c == '[') {
			p_++;
			v.type = JVal::Type::Arr;
			if (peek() == ']') {
				p_++;
				return v;
			}
			bool numeric = peek() == '-' || (peek() >= '0' && peek() <= '9');
			for (;;) {
				if (numeric)
					v.nums.push_back(number());
				else
					v.items.push_back(value(depth + 1));
				if (peek() == ',') {
					p_++;
					continue;
				}
				expect(']');
				return v;
			}
		}
		if (c == '"') {
			v.type = JVal::Type::Str;
			v.str = string();
			return v;
		}
		if (literal("true") || literal("false")) {
			v.type = JVal::Type::Bool;
			return v;
		}
		if (literal("null"))
			return v;
		v.type = JVal::Type::Num;
		v.num = number();
		return v;
	}

	const char *p_;
	const char *end_;
};

// The member key of o, which must exist with the given type.
const JVal &member(const JVal &o, const char *key, JVal::Type t)
{
	const JVal *v = o.type == JVal::Type::Obj ? o.get(key) : nullptr;
	if (v == nullptr || v->type != t)
		bad_model(std::string("missing or mistyped \"") + key + "\".");
	return *v;
}

// A member holding an integer written as a string ("13"), within [lo, hi].
long long int_member(const JVal &o, const char *key, long long lo, long long hi)
{
	const std::string &s = member(o, key, JVal::Type::Str).str;
	char *end = nullptr;
	errno = 0;
	long long v = s.empty() ? 0 : std::strtoll(s.c_str(), &end, 10);
	if (s.empty() || errno != 0 || *end != '\0' || v < lo || v > hi)
		bad_model(std::string("\"") + key + "\" is out of range.");
	return v;
}

// An array of numbers with exactly n entries, each an integer in [lo, hi] when integral.
const std::vector<double> &num_array(const JVal &o, const char *key, size_t n, bool integral = false, double lo = 0,
                                     double hi = 0)
{
	const JVal &a = member(o, key, JVal::Type::Arr);
	if (!a.items.empty() || a.nums.size() != n)
		bad_model(std::string("\"") + key + "\" has the wrong length.");
	if (integral)
		for (double v : a.nums)
			if (v != std::floor(v) || v < lo || v > hi)
				bad_model(std::string("\"") + key + "\" holds a value out of range.");
	return a.nums;
}

// Checks that a parsed xgboost model is a gbtree model of this task, K, p and round count
// whose trees are well formed.
void validate_model(const JVal &doc, Task task, int K, int p, int rounds)
{
	const JVal &learner = member(doc, "learner", JVal::Type::Obj);
	const JVal &lmp = member(learner, "learner_model_param", JVal::Type::Obj);
	if (int_member(lmp, "num_feature", 0, kMaxFeatures) != p)
		bad_model("the feature count differs from the header.");
	const bool multi = task == Task::Classification && K > 2;
	if (int_member(lmp, "num_class", 0, kMaxClasses) != (multi ? K : 0))
		bad_model("the class count differs from the header.");
	int_member(lmp, "num_target", 1, 1);
	const std::string &bs = member(lmp, "base_score", JVal::Type::Str).str;
	char *end = nullptr;
	double base = std::strtod(bs.c_str(), &end);
	if (bs.empty() || *end != '\0' || !std::isfinite(base))
		bad_model("bad base_score.");
	const char *objective = task == Task::Regression ? "reg:squarederror" : multi ? "multi:softprob" : "binary:logistic";
	if (member(member(learner, "objective", JVal::Type::Obj), "name", JVal::Type::Str).str != objective)
		bad_model("unexpected objective.");
	for (const char *key : {"feature_names", "feature_types"}) {
		const JVal *a = learner.get(key);
		if (a != nullptr && (a->type != JVal::Type::Arr || !a->nums.empty() || !a->items.empty()))
			bad_model("unexpected feature names.");
	}
	const JVal &gb = member(learner, "gradient_booster", JVal::Type::Obj);
	if (member(gb, "name", JVal::Type::Str).str != "gbtree")
		bad_model("not a gbtree model.");
	const JVal &model = member(gb, "model", JVal::Type::Obj);
	const JVal &gmp = member(model, "gbtree_model_param", JVal::Type::Obj);
	const long long groups = multi ? K : 1;
	const long long n_trees = static_cast<long long>(rounds) * groups;
	if (int_member(gmp, "num_trees", 0, 1LL << 40) != n_trees)
		bad_model("the tree count differs from the header.");
	int_member(gmp, "num_parallel_tree", 1, 1);
	int_member(gmp, "size_leaf_vector", 0, 0);
	const JVal &trees = member(model, "trees", JVal::Type::Arr);
	if (!trees.nums.empty() || static_cast<long long>(trees.items.size()) != n_trees)
		bad_model("the tree count differs from the header.");
	num_array(model, "tree_info", static_cast<size_t>(n_trees), true, 0, static_cast<double>(groups - 1));
	for (size_t t = 0; t < trees.items.size(); t++) {
		const JVal &tree = trees.items[t];
		const JVal &id = member(tree, "id", JVal::Type::Num);
		if (id.num != static_cast<double>(t))
			bad_model("a tree id is out of order.");
		const JVal &tp = member(tree, "tree_param", JVal::Type::Obj);
		const long long n = int_member(tp, "num_nodes", 1, 1 << 24);
		int_member(tp, "num_deleted", 0, 0);
		if (int_member(tp, "num_feature", 0, kMaxFeatures) != p)
			bad_model("a tree's feature count differs from the header.");
		int_member(tp, "size_leaf_vector", 0, 0);
		const size_t N = static_cast<size_t>(n);
		const double last = static_cast<double>(n - 1);
		const auto &left = num_array(tree, "left_children", N, true, -1, last);
		const auto &right = num_array(tree, "right_children", N, true, -1, last);
		const auto &parents = num_array(tree, "parents", N, true, 0, 2147483647.0);
		num_array(tree, "split_indices", N, true, 0, p - 1);
		num_array(tree, "split_type", N, true, 0, 0);
		num_array(tree, "default_left", N, true, 0, 1);
		for (const char *key : {"split_conditions", "base_weights", "loss_changes", "sum_hessian"})
			num_array(tree, key, N);
		for (const char *key : {"categories", "categories_nodes", "categories_segments", "categories_sizes"})
			num_array(tree, key, 0);
		if (parents[0] != 2147483647.0)
			bad_model("a tree's root has a parent.");
		// children come after their parent (so every walk ends) and name it as their parent
		for (size_t i = 0; i < N; i++) {
			double l = left[i], r = right[i], self = static_cast<double>(i);
			if (l == -1 && r == -1)
				continue;
			if (l <= self || r <= self || l == r || parents[static_cast<size_t>(l)] != self ||
			    parents[static_cast<size_t>(r)] != self)
				bad_model("a tree's node links are inconsistent.");
		}
	}
}

// libxgboost's trees [0, n_trees) of a validated model as a flat forest (each tree's output
// group from tree_info).
FlatForest flatten(const JVal &doc, size_t n_trees)
{
	const JVal &model = member(member(member(doc, "learner", JVal::Type::Obj), "gradient_booster", JVal::Type::Obj),
	                           "model", JVal::Type::Obj);
	const JVal &trees = member(model, "trees", JVal::Type::Arr);
	const std::vector<double> &info = member(model, "tree_info", JVal::Type::Arr).nums;
	FlatForest f;
	for (size_t t = 0; t < n_trees && t < trees.items.size(); t++) {
		const JVal &tree = trees.items[t];
		const auto &left = member(tree, "left_children", JVal::Type::Arr).nums;
		const auto &right = member(tree, "right_children", JVal::Type::Arr).nums;
		const auto &feature = member(tree, "split_indices", JVal::Type::Arr).nums;
		const auto &cond = member(tree, "split_conditions", JVal::Type::Arr).nums;
		const auto &dleft = member(tree, "default_left", JVal::Type::Arr).nums;
		f.begin_tree(static_cast<int>(info[t]));
		for (size_t i = 0; i < left.size(); i++) {
			if (left[i] == -1)
				f.add_leaf(static_cast<float>(cond[i]));
			else
				f.add_split(static_cast<int>(feature[i]), static_cast<float>(cond[i]), dleft[i] != 0,
				            static_cast<int>(left[i]), static_cast<int>(right[i]));
		}
	}
	f.finish();
	return f;
}

// libxgboost's (1.7) logistic and softmax transforms, in float as it computes them.
float xgb_sigmoid(float x)
{
	constexpr float kEps = 1e-16f;
	x = std::min(-x, 88.7f);
	float denom = std::exp(x) + 1.0f + kEps;
	return 1.0f / denom;
}

void xgb_softmax(float *v, size_t n)
{
	float wmax = v[0];
	for (size_t i = 1; i < n; i++)
		wmax = std::max(v[i], wmax);
	double wsum = 0.0;
	for (size_t i = 0; i < n; i++) {
		v[i] = std::exp(v[i] - wmax);
		wsum += v[i];
	}
	for (size_t i = 0; i < n; i++)
		v[i] /= static_cast<float>(wsum);
}

// What a run of boosting produced.
struct Boosted {
	std::vector<char> model; // xgboost's JSON model
	int rounds = 0;          // boosting rounds in it
	int best_iteration = 0;  // 0-based round whose model is kept (rounds == best_iteration + 1)
	std::vector<float> fitted; // a fit on every training row: the model's output for each (per_row values each)
	size_t fitted_per_row = 0;
};

// Predicting a matrix of the booster's cache list with every tree: the cache's predictions.
constexpr const char *kCachedPredictConfig =
	"{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}";

// The predictions of a matrix of the booster's cache list with every tree (the cache's: no
// pass over the trees for the rounds it already holds); returns how many values are at *res
// (valid until the booster's next call).
size_t predict_cached(BoosterHandle h, const DMatrix &d, const char *what, const float **res)
{
	const bst_ulong *shape = nullptr;
	bst_ulong dim = 0;
	xgb(ErrorCode::Internal, what,
	    [&] { return XGBoosterPredictFromDMatrix(h, d.h, kCachedPredictConfig, &shape, &dim, res); });
	size_t len = 1;
	for (bst_ulong k = 0; k < dim; k++)
		len *= static_cast<size_t>(shape[k]);
	return len;
}

// The booster's objective and hyperparameters.
void configure(BoosterHandle h, const Params &params, Task task, int K, int threads, uint64_t seed)
{
	if (task == Task::Regression) {
		set_param(h, "objective", "reg:squarederror");
	} else if (K == 2) {
		set_param(h, "objective", "binary:logistic");
	} else {
		set_param(h, "objective", "multi:softprob");
		set_param(h, "num_class", std::to_string(K));
	}
	set_param(h, "tree_method", "hist");
	set_param(h, "eta", num_str(params.num("learning_rate")));
	set_param(h, "max_depth", std::to_string(params.integer("max_depth")));
	set_param(h, "min_child_weight", num_str(params.num("min_child_weight")));
	set_param(h, "subsample", num_str(params.num("subsample")));
	set_param(h, "colsample_bytree", num_str(params.num("colsample_bytree")));
	set_param(h, "lambda", num_str(params.num("reg_lambda")));
	set_param(h, "alpha", num_str(params.num("reg_alpha")));
	set_param(h, "gamma", num_str(params.num("gamma")));
	set_param(h, "max_bin", std::to_string(params.integer("max_bin")));
	set_param(h, "nthread", std::to_string(threads));
	// xgboost's seed is a signed 64-bit integer: keep it non-negative
	set_param(h, "seed", std::to_string(seed & 0x7fffffffffffffffULL));
	// reseed per round from (seed, round): results do not depend on anything run before
	set_param(h, "seed_per_iteration", "1");
}

// A fit on every training row keeps the training rows' predictions from libxgboost's prediction
// cache (every round's trees were added to it as they were grown): the trainer's training
// metrics without a second pass over the trees (Estimator::fitted_outputs).
void keep_fitted(BoosterHandle h, const DMatrix &dtrain, size_t n, Boosted &out)
{
	const float *res = nullptr;
	const size_t len = predict_cached(h, dtrain, "predicting the training rows", &res);
	if (n > 0 && len % n == 0) {
		out.fitted.assign(res, res + len);
		out.fitted_per_row = len / n;
	}
}

// Rows per batch fed to libxgboost's quantile matrix: cancel is polled between batches.
constexpr size_t kFeedRows = 65536;

// The training rows fed to libxgboost batch by batch (XGQuantileDMatrixCreateFromCallback):
// each batch is gathered from X (column-major doubles) into a small row-major float buffer,
// which libxgboost reads in place (a proxy matrix, no copy); libxgboost sketches the quantiles
// and bins the rows as they come, so the training rows never exist as a second full float copy
// or as xgboost's sparse pages, and building the matrix (the sketch: most of what the first
// round cost before) polls cancel between batches. The callbacks never throw: a cancel or an
// error ends the iteration and is raised after libxgboost returns.
struct QuantileFeed {
	const Eigen::MatrixXd *X = nullptr;
	const std::vector<int> *rows = nullptr; // the rows of X to feed (all when null)
	size_t n = 0, p = 0, pos = 0;
	std::vector<float> buf;
	std::vector<float> extra; // rows (row-major) fed after the n rows, as one last batch
	bool extra_fed = false;
	DMatrixHandle proxy = nullptr;
	CancelCheck cancel = nullptr;
	sigset_t unblocked; // the signal mask outside libxgboost: a pending cancel is delivered under it
	bool cancelled = false;
	std::string error;

	bool cancel_requested()
	{
		if (cancel == nullptr)
			return false;
		sigset_t blocked;
		pthread_sigmask(SIG_SETMASK, &unblocked, &blocked); // a pending SIGINT's handler runs here
		const bool c = cancel();
		pthread_sigmask(SIG_SETMASK, &blocked, nullptr);
		return c;
	}

	// Hands libxgboost a batch of rows in place; 0: no more (or stopped).
	int set_batch(const float *data, size_t rows_in_batch)
	{
		char iface[256];
		std::snprintf(iface, sizeof iface,
		              "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", \"version\": 3}",
		              reinterpret_cast<uintptr_t>(data), rows_in_batch, p);
		if (XGProxyDMatrixSetDataDense(proxy, iface) != 0) {
			error = xgb_error();
			return 0;
		}
		return 1;
	}

	int next()
	{
		if (cancelled || !error.empty())
			return 0;
		if (pos >= n) {
			if (extra.empty() || extra_fed)
				return 0;
			extra_fed = true;
			return set_batch(extra.data(), extra.size() / p);
		}
		if (pos > 0 && cancel_requested()) { // (between batches: a pass's first batch follows the last poll)
			cancelled = true;
			return 0;
		}
		const size_t nb = std::min(kFeedRows, n - pos);
		buf.resize(nb * p);
		for (size_t j = 0; j < p; j++) {
			const double *col = X->col(static_cast<Eigen::Index>(j)).data();
			float *out = buf.data() + j;
			if (rows == nullptr) {
				for (size_t r = 0; r < nb; r++)
					out[r * p] = static_cast<float>(col[pos + r]);
			} else {
				for (size_t r = 0; r < nb; r++)
					out[r * p] = static_cast<float>(col[(*rows)[pos + r]]);
			}
		}
		if (set_batch(buf.data(), nb) == 0)
			return 0;
		pos += nb;
		return 1;
	}
};

int quantile_feed_next(DataIterHandle h) { return static_cast<QuantileFeed *>(h)->next(); }
void quantile_feed_reset(DataIterHandle h)
{
	static_cast<QuantileFeed *>(h)->pos = 0;
	static_cast<QuantileFeed *>(h)->extra_fed = false;
}

// Training sets larger than this are binned on bin edges sketched from this many of their rows
// (as scikit-learn's HistGradientBoosting and LightGBM do: 200,000), plus each feature's least
// and greatest value; libxgboost's sketch of every row costs about as much as 30 rounds.
constexpr size_t kSketchRows = 200000;

// Feeds the matrix's rows to libxgboost (the quantile matrix in out; its bin edges ref's when
// ref is not null).
void feed_quantile_dmatrix(QuantileFeed &feed, int threads, int max_bin, DMatrixHandle ref, DMatrix &out)
{
	pthread_sigmask(SIG_SETMASK, nullptr, &feed.unblocked);
	DMatrix proxy;
	xgb(ErrorCode::Internal, "building the training matrix", [&] { return XGProxyDMatrixCreate(&proxy.h); });
	feed.proxy = proxy.h;
	const std::string config = "{\"missing\": NaN, \"nthread\": " + std::to_string(threads) +
	                           ", \"max_bin\": " + std::to_string(max_bin) + "}";
	int rc;
	{
		SignalBlock block;
		quiet_xgboost();
		rc = XGQuantileDMatrixCreateFromCallback(&feed, proxy.h, ref, quantile_feed_reset, quantile_feed_next,
		                                         config.c_str(), &out.h);
	}
	// a matrix built from part of the rows (cancel, error) is freed with out
	if (feed.cancelled)
		throw Error(ErrorCode::Cancelled, "canceled");
	if (!feed.error.empty())
		throw Error(ErrorCode::Internal, "gradient boosting failed",
		            "xgboost failed while building the training matrix: " + feed.error);
	if (rc != 0)
		xgb(ErrorCode::Internal, "building the training matrix", [rc] { return rc; });
}

// The bin edges of a large training set: a quantile matrix of its first kSketchRows rows (the
// training rows are in their canonical order, by a hash of their values: a sample) and of two
// rows of each feature's least and greatest value (a value only a few rows have still gets
// its own bin).
void sketch_sample(const Eigen::MatrixXd &X, const std::vector<int> *rows, size_t n, int threads, int max_bin,
                   CancelCheck cancel, DMatrix &out)
{
	const size_t p = static_cast<size_t>(X.cols());
	std::vector<float> lo(p, NAN), hi(p, NAN);
	for (size_t j = 0; j < p; j++) {
		check_cancel(cancel);
		const double *col = X.col(static_cast<Eigen::Index>(j)).data();
		double mn = INFINITY, mx = -INFINITY;
		for (size_t i = 0; i < n; i++) {
			const double v = col[rows != nullptr ? static_cast<size_t>((*rows)[i]) : i];
			if (v < mn)
				mn = v;
			if (v > mx)
				mx = v;
		}
		if (mn <= mx) { // (NaN compares false: a feature with no value keeps NaN)
			lo[j] = static_cast<float>(mn);
			hi[j] = static_cast<float>(mx);
		}
	}
	QuantileFeed feed;
	feed.X = &X;
	feed.rows = rows;
	feed.n = kSketchRows;
	feed.p = p;
	feed.cancel = cancel;
	feed.extra = lo;
	feed.extra.insert(feed.extra.end(), hi.begin(), hi.end());
	feed_quantile_dmatrix(feed, threads, max_bin, nullptr, out);
}

// The quantile matrix of the given rows of X (all rows when rows is null) with labels y, binned
// with max_bin bins per feature (the booster's max_bin must be the same).
void make_quantile_dmatrix(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<int> *rows,
                           int threads, int max_bin, CancelCheck cancel, DMatrix &out)
{
	QuantileFeed feed;
	feed.X = &X;
	feed.rows = rows;
	feed.n = rows != nullptr ? rows->size() : static_cast<size_t>(X.rows());
	feed.p = static_cast<size_t>(X.cols());
	feed.cancel = cancel;
	DMatrix ref;
	if (feed.n > kSketchRows)
		sketch_sample(X, rows, feed.n, threads, max_bin, cancel, ref);
	feed_quantile_dmatrix(feed, threads, max_bin, ref.h, out);
	std::vector<float> label(feed.n);
	for (size_t i = 0; i < feed.n; i++)
		label[i] = static_cast<float>(y(rows != nullptr ? (*rows)[i] : static_cast<Eigen::Index>(i)));
	xgb(ErrorCode::Internal, "setting the labels",
	    [&] { return XGDMatrixSetFloatInfo(out.h, "label", label.data(), feed.n); });
	out.label = std::move(label);
}

// Rounds whose training loss a fit evaluates and logs, at most (and the last).
constexpr int kLoggedRounds = 25;

// Boosts n_rounds rounds on the training rows (n_estimators for a fit, retrain_rounds to
// continue), starting from a stored model (continued training) when start is not null, with
// early stopping on held-out rows when asked for. Returns the model cut back to the best round.
Boosted boost(const FitInput &in, const Params &params, Task task, int K, const std::vector<char> *start,
              int start_rounds, int n_rounds)
{
	const int threads = std::max(1, in.threads);
	const int n_estimators = n_rounds;
	const char *rounds_param = start != nullptr ? "retrain_rounds" : "n_estimators";
	const int esr = params.integer("early_stopping_rounds");
	// xgboost's memory is not PostgreSQL's: refuse what the rows and hyperparameters could grow
	// to before xgboost allocates it. Without early stopping every round is known in advance;
	// with it the rounds are checked as they come (a fit that stops early may ask for many).
	const double est_rows = static_cast<double>(in.X->rows() + (in.X_valid != nullptr ? in.X_valid->rows() : 0));
	const double est_p = static_cast<double>(in.X->cols());
	const int depth = params.integer("max_depth"), max_bin = params.integer("max_bin");
	const double start_bytes = start != nullptr ? 2.0 * static_cast<double>(start->size()) : 0.0;
	auto check_rounds = [&](int rounds) {
		const double bytes =
			memory::gradient_boosting_bytes(est_rows, est_p, K, start_rounds + rounds, depth, max_bin) + start_bytes;
		check_memory(in.memory_limit, bytes, "gradient_boosting",
		             std::to_string(rounds) + " boosting rounds" + (K > 2 ? " of " + std::to_string(K) + " trees" : std::string()) +
		                 " of up to " + count_text(memory::tree_nodes(est_rows, depth)) + " nodes each (max_depth " +
		                 std::to_string(depth) + ", " + count_text(est_rows) + " rows), on " + count_text(est_p) +
		                 " features with max_bin " + std::to_string(max_bin) +
		                 (start_rounds > 0 ? ", after the " + std::to_string(start_rounds) + " rounds of the model" : std::string()) +
		                 ".",
		             std::string(rounds_param) + ", max_depth or max_bin" + (esr > 0 ? " (or early_stopping_rounds)" : "") +
		                 (start != nullptr ? ", refit the model (mode => 'refit')" : "") + ", train on fewer rows");
	};
	check_rounds(esr > 0 ? std::min(n_estimators, esr + 1) : n_estimators);

	// training and validation matrices
	DMatrix dtrain, dvalid;
	bool have_valid = false;
	if (in.X_valid != nullptr) {
		make_quantile_dmatrix(*in.X, *in.y, nullptr, threads, max_bin, in.cancel, dtrain);
		make_dmatrix(*in.X_valid, *in.y_valid, nullptr, threads, dvalid);
		have_valid = true;
	} else if (esr > 0) {
		std::vector<int> tr, va;
		split_rows(*in.y, task, K, params.num("validation_fraction"), in.seed, tr, va);
		make_quantile_dmatrix(*in.X, *in.y, &tr, threads, max_bin, in.cancel, dtrain);
		make_dmatrix(*in.X, *in.y, &va, threads, dvalid);
		have_valid = true;
	} else {
		make_quantile_dmatrix(*in.X, *in.y, nullptr, threads, max_bin, in.cancel, dtrain);
	}
	DMatrixHandle dmats[2] = {dtrain.h, dvalid.h}; // the booster's cache list
	const bst_ulong n_mats = have_valid ? 2 : 1;

	Booster b;
	xgb(ErrorCode::Internal, "creating the booster", [&] { return XGBoosterCreate(dmats, n_mats, &b.h); });
	set_param(b.h, "verbosity", "0");
	if (start != nullptr)
		xgb(ErrorCode::Internal, "loading the stored model",
		    [&] { return XGBoosterLoadModelFromBuffer(b.h, start->data(), start->size()); });
	configure(b.h, params, task, K, threads, in.seed);

	double best = INFINITY;
	int best_round = -1; // relative to this run
	int done = 0;
	// The loss of a matrix of the booster's cache list: its predictions are the cache's (each
	// round adds its trees to them), the loss computed here.
	auto cached_loss = [&](const DMatrix &d) {
		const float *res = nullptr;
		const size_t len = predict_cached(b.h, d, "evaluating a round", &res);
		return fit_loss(res, len, d.label, task, K);
	};
	// The training loss is evaluated (and logged) on the first round, every stride-th and the
	// last: evaluating it costs a pass over the training rows; the validation loss (early
	// stopping) on every round.
	const int stride = std::max(1, (n_estimators + kLoggedRounds - 1) / kLoggedRounds);
	for (int r = 0; r < n_estimators; r++) {
		check_cancel(in.cancel);
		if (esr > 0 && r > esr)
			check_rounds(r + 1);
		const int iter = start_rounds + r;
		xgb(ErrorCode::Internal, "boosting a round", [&] { return XGBoosterUpdateOneIter(b.h, iter, dtrain.h); });
		done = r + 1;
		const bool train_eval = r == 0 || (r + 1) % stride == 0 || r + 1 == n_estimators;
		if (!train_eval && !have_valid)
			continue;
		const double train_loss = train_eval ? cached_loss(dtrain) : NAN;
		const double valid_loss = have_valid ? cached_loss(dvalid) : NAN;
		if (in.log != nullptr)
			in.log->push_back(IterationLog{iter + 1, train_loss, NAN, valid_loss});
		if (train_eval)
			report_iteration(in.progress, iter + 1, "loss", train_loss);
		if (esr > 0 && have_valid) {
			if (valid_loss < best || best_round < 0) {
				best = valid_loss;
				best_round = r;
			} else if (r - best_round >= esr) {
				break;
			}
		}
	}
	if (esr == 0 || !have_valid)
		best_round = done - 1;

	Boosted out;
	out.best_iteration = start_rounds + best_round;
	out.rounds = out.best_iteration + 1;
	if (start == nullptr && !have_valid && best_round + 1 == done)
		keep_fitted(b.h, dtrain, static_cast<size_t>(in.X->rows()), out);
	if (best_round + 1 < done) { // keep the rounds up to the best one only
		BoosterHandle sliced = nullptr;
		xgb(ErrorCode::Internal, "cutting the model at the best round",
		    [&] { return XGBoosterSlice(b.h, 0, out.rounds, 1, &sliced); });
		b.reset(sliced);
	}
	bst_ulong len = 0;
	const char *buf = nullptr;
	xgb(ErrorCode::Internal, "saving the model",
	    [&] { return XGBoosterSaveModelToBuffer(b.h, "{\"format\": \"json\"}", &len, &buf); });
	out.model.assign(buf, buf + len);
	return out;
}

// Writes the header fields in their stored order (the CRC covers these bytes then the model).
void write_fields(Writer &w, uint16_t version, Task task, int K, int p, int rounds, int best_iteration)
{
	w.u16(version);
	w.u8(static_cast<uint8_t>(task));
	w.u32(static_cast<uint32_t>(K));
	w.u32(static_cast<uint32_t>(p));
	w.u32(static_cast<uint32_t>(rounds));
	w.u32(static_cast<uint32_t>(best_iteration));
}

// CRC-32 of the header fields followed by the model bytes.
uint32_t model_crc(uint16_t version, Task task, int K, int p, int rounds, int best_iteration,
                   const std::vector<char> &model)
{
	Writer w;
	write_fields(w, version, task, K, p, rounds, best_iteration);
	std::vector<uint8_t> &bytes = w.bytes();
	bytes.insert(bytes.end(), model.begin(), model.end());
	return crc32(bytes.data(), bytes.size());
}

class GradientBoosting : public Estimator {
  public:
	GradientBoosting(Task task, int K, int p) : task_(task), K_(K), p_(p) {}

	// Installs a model buffer: loads it into the prediction booster and checks it against the
	// header (failures are Error(code): DataCorrupted on read, Internal after a fit).
	void install(Boosted b, ErrorCode code)
	{
		model_ = std::move(b.model);
		rounds_ = b.rounds;
		best_iteration_ = b.best_iteration;
		fitted_ = std::move(b.fitted);
		fitted_per_row_ = b.fitted_per_row;
		load(code);
	}

	int flat_layout() const { return flat_ok_ ? flat_.complete_depth() : -1; }

	bool fitted_outputs(size_t i0, size_t n, size_t n_outputs, double *out, int *klass) const override
	{
		const size_t per = fitted_per_row_;
		if (per == 0 || (i0 + n) * per > fitted_.size())
			return false;
		for (size_t r = 0; r < n; r++)
			klass[r] = unpack(fitted_.data() + (i0 + r) * per, per, out + r * n_outputs);
		return true;
	}
	void end_training() const override
	{
		std::lock_guard<std::mutex> lock(mu_);
		fitted_.clear();
		fitted_.shrink_to_fit();
		fitted_per_row_ = 0;
		if (eval_threads_ > 1) {
			xgb(ErrorCode::Internal, "setting a parameter", [&] { return XGBoosterSetParam(booster_.h, "nthread", "1"); });
			eval_threads_ = 1;
		}
	}
	// The trainer's rows are predicted on the fit's threads until end_training().
	void predict_on_threads(int threads)
	{
		if (threads <= 1)
			return;
		const std::string t = std::to_string(threads);
		xgb(ErrorCode::Internal, "setting a parameter", [&] { return XGBoosterSetParam(booster_.h, "nthread", t.c_str()); });
		eval_threads_ = threads;
	}

	int predict(const double *z, double *out) const override
	{
		if (flat_ok_ && flat_trees_enabled())
			return flat_predict(z, out);
		std::lock_guard<std::mutex> lock(mu_);
		const float *res = nullptr;
		size_t len = run_predict(z, 1, ErrorCode::Internal, &res);
		return unpack(res, len, out);
	}

	// One xgboost call per block of rows rather than one per row (a call costs tens of
	// microseconds whatever its size: the trainer's metrics on a million rows took longer than
	// the boosting itself).
	void predict_many(const double *z, size_t n, size_t p, size_t n_outputs, double *out, int *klass) const override
	{
		constexpr size_t kBlock = 4096;
		if (flat_ok_ && eval_threads_ <= 1 && flat_trees_enabled()) {
			for (size_t i = 0; i < n; i++)
				klass[i] = flat_predict(z + i * p, out + i * n_outputs);
			return;
		}
		std::lock_guard<std::mutex> lock(mu_);
		for (size_t i = 0; i < n; i += kBlock) {
			const size_t m = std::min(kBlock, n - i);
			const float *res = nullptr;
			size_t len = run_predict(z + i * p, m, ErrorCode::Internal, &res);
			if (len % m != 0)
				throw Error(ErrorCode::Internal, "gradient boosting predicted " + std::to_string(len) + " values for " +
				                                     std::to_string(m) + " rows");
			const size_t per = len / m;
			for (size_t r = 0; r < m; r++)
				klass[i + r] = unpack(res + r * per, per, out + (i + r) * n_outputs);
		}
	}

	void write(Writer &w) const override
	{
		write_fields(w, version_, task_, K_, p_, rounds_, best_iteration_);
		w.str(std::string(model_.begin(), model_.end()));
		w.u32(model_crc(version_, task_, K_, p_, rounds_, best_iteration_, model_));
	}

	bool native_missing() const override { return version_ >= 2; }

	// libxgboost's tree SHAP values (pred_contribs) of one row: per feature and the bias, in the
	// margin (regression: the value; binary: class 1's log-odds, negated for class 0).
	bool contributions(const double *z, int klass, double *out) const override
	{
		std::vector<float> row(static_cast<size_t>(p_));
		for (int f = 0; f < p_; f++)
			row[static_cast<size_t>(f)] = static_cast<float>(z[f]);
		DMatrix d;
		xgb(ErrorCode::Internal, "building the row to explain", [&] {
			return XGDMatrixCreateFromMat(row.data(), 1, static_cast<bst_ulong>(p_),
			                              std::numeric_limits<float>::quiet_NaN(), &d.h);
		});
		char cfg[200];
		std::snprintf(cfg, sizeof cfg,
		              "{\"type\": 2, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %d, "
		              "\"strict_shape\": false}",
		              best_iteration_ + 1);
		std::lock_guard<std::mutex> lock(mu_);
		const bst_ulong *shape = nullptr;
		bst_ulong dim = 0;
		const float *res = nullptr;
		xgb(ErrorCode::Internal, "explaining",
		    [&] { return XGBoosterPredictFromDMatrix(booster_.h, d.h, cfg, &shape, &dim, &res); });
		size_t len = 1;
		for (bst_ulong i = 0; i < dim; i++)
			len *= static_cast<size_t>(shape[i]);
		const size_t per = static_cast<size_t>(p_) + 1;
		const bool multi = task_ == Task::Classification && K_ > 2;
		if (len != (multi ? static_cast<size_t>(K_) * per : per))
			throw Error(ErrorCode::Internal, "gradient boosting explained a row with " + std::to_string(len) +
			                                     " values for " + std::to_string(p_) + " features");
		const float *c = res + (multi ? static_cast<size_t>(klass) * per : 0);
		const double sign = task_ == Task::Classification && K_ == 2 && klass == 0 ? -1.0 : 1.0;
		double sum = 0;
		for (size_t i = 0; i + 1 < per; i++) {
			out[i] = sign * static_cast<double>(c[i]);
			sum += out[i];
		}
		// the bias is what the row's margin leaves: libxgboost sums the contributions in float32
		// (about 1e-7 of the largest one off the margin), so the explanation adds up exactly
		std::snprintf(cfg, sizeof cfg,
		              "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %d, "
		              "\"strict_shape\": false}",
		              best_iteration_ + 1);
		xgb(ErrorCode::Internal, "explaining",
		    [&] { return XGBoosterPredictFromDMatrix(booster_.h, d.h, cfg, &shape, &dim, &res); });
		double margin = sign * static_cast<double>(res[multi ? klass : 0]);
		out[per - 1] = margin - sum;
		return true;
	}

	Eigen::VectorXd importance() const override { return importance_; }
	const char *importance_kind() const override { return "gain"; }

	bool can_continue() const override { return true; }

	// Boosts retrain_rounds more rounds (at most; early stopping may keep fewer) from the stored
	// model on the new rows: the model grows by that many rounds per retrain, never by n_estimators.
	void continue_fit(const FitInput &in, const Params &params) override
	{
		if (in.task != task_ || (task_ == Task::Classification && in.n_classes != K_))
			throw Error(ErrorCode::InvalidParameter, "the new rows do not match the model's task or classes");
		check_input(in, task_, K_, p_);
		const int add = params.integer("retrain_rounds");
		if (static_cast<long long>(rounds_) + add > kMaxRounds)
			throw Error(ErrorCode::ProgramLimit,
			            "gradient boosting model would exceed " + std::to_string(kMaxRounds) + " boosting rounds",
			            "The model has " + std::to_string(rounds_) + " rounds; each incremental retrain adds up to " +
			                std::to_string(add) + " (retrain_rounds).",
			            "Use mode => 'refit'.");
		Boosted b = boost(in, params, task_, K_, &model_, rounds_, add);
		install(std::move(b), ErrorCode::Internal);
	}

	std::vector<std::pair<std::string, long long>> report_counts() const override
	{
		const long long per_round = task_ == Task::Classification && K_ > 2 ? K_ : 1;
		return {{"total_rounds", rounds_}, {"trees", rounds_ * per_round}};
	}

	Task task_;
	int K_;
	int p_;
	uint16_t version_ = kGbVersion; // a model read from an older blob keeps its version
	int rounds_ = 0;
	int best_iteration_ = 0;
	std::vector<char> model_;
	mutable std::vector<float> fitted_; // the fit's outputs for its training rows (fitted_outputs), until end_training
	mutable int eval_threads_ = 1;      // the prediction booster's threads (more than 1 until end_training)
	mutable size_t fitted_per_row_ = 0;

  private:
	// Loads model_ into a fresh prediction booster, checks it agrees with the header, and
	// computes the feature importance.
	void load(ErrorCode code)
	{
		// xgboost only sees a buffer once it checks out (after a fit too: what we write must read back)
		JVal doc;
		try {
			doc = JsonParser(model_.data(), model_.size()).parse();
			validate_model(doc, task_, K_, p_, rounds_);
		} catch (const Error &e) {
			if (code == ErrorCode::DataCorrupted)
				throw;
			throw Error(code, "gradient boosting failed", e.detail());
		}
		Booster b;
		xgb(code, "creating a booster", [&] { return XGBoosterCreate(nullptr, 0, &b.h); });
		xgb(code, "setting a parameter", [&] { return XGBoosterSetParam(b.h, "verbosity", "0"); });
		xgb(code, "loading the model",
		    [&] { return XGBoosterLoadModelFromBuffer(b.h, model_.data(), model_.size()); });
		// one row at a time: no thread team
		xgb(code, "setting a parameter", [&] { return XGBoosterSetParam(b.h, "nthread", "1"); });
		auto bad = [&](const std::string &why) {
			if (code == ErrorCode::DataCorrupted)
				throw Error(code, "model blob is corrupted", why,
				            "Deploy another version with ml_deploy(), or retrain the model.");
			throw Error(code, "gradient boosting failed", why);
		};
		int rounds = 0;
		xgb(code, "counting rounds", [&] { return XGBoosterBoostedRounds(b.h, &rounds); });
		if (rounds != rounds_)
			bad("The xgboost model has " + std::to_string(rounds) + " rounds, the header " + std::to_string(rounds_) +
			    ".");
		bst_ulong nf = 0;
		xgb(code, "counting features", [&] { return XGBoosterGetNumFeature(b.h, &nf); });
		if (nf != static_cast<bst_ulong>(p_))
			bad("The xgboost model has " + std::to_string(nf) + " features, the header " + std::to_string(p_) + ".");
		booster_.reset(b.h);
		b.h = nullptr;
		proxy_ = std::make_unique<DMatrix>();
		xgb(code, "creating a prediction matrix", [&] { return XGProxyDMatrixCreate(&proxy_->h); });
		char cfg[200];
		std::snprintf(cfg, sizeof cfg,
		              "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %d, "
		              "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}",
		              best_iteration_ + 1);
		predict_config_ = cfg;
		std::snprintf(cfg, sizeof cfg,
		              "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %d, "
		              "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}",
		              best_iteration_ + 1);
		margin_config_ = cfg;
		// the output must have the shape the header promises (catches a wrong objective / num_class)
		std::vector<double> zero(static_cast<size_t>(p_), 0.0);
		std::lock_guard<std::mutex> lock(mu_);
		const float *res = nullptr;
		size_t len = run_predict(zero.data(), 1, code, &res);
		size_t want = task_ == Task::Classification && K_ > 2 ? static_cast<size_t>(K_) : 1;
		if (len != want)
			bad("The xgboost model predicts " + std::to_string(len) + " values per row, the header implies " +
			    std::to_string(want) + ".");
		for (size_t k = 0; k < len; k++)
			if (!std::isfinite(res[k]))
				bad("The xgboost model predicts a value that is not finite.");
		importance_ = feature_gain(code);
		load_flat(doc);
	}

	// The trees as a flat forest, used for prediction once it reproduces libxgboost's margins
	// and outputs on probe rows (zeros, missing values, pseudo-random values); else libxgboost
	// keeps predicting. The caller holds mu_.
	void load_flat(const JVal &doc)
	{
		flat_ok_ = false;
		const bool multi = task_ == Task::Classification && K_ > 2;
		groups_ = multi ? static_cast<size_t>(K_) : 1;
		flat_ = flatten(doc, static_cast<size_t>(best_iteration_ + 1) * groups_);
		const std::string &bs =
		    member(member(member(doc, "learner", JVal::Type::Obj), "learner_model_param", JVal::Type::Obj), "base_score",
		           JVal::Type::Str)
		        .str;
		const float base = std::strtof(bs.c_str(), nullptr);
		const bool binary = task_ == Task::Classification && K_ == 2;
		/* libxgboost 1.7 keeps base_score as a probability for binary:logistic (the margin is
		 * its logit); either reading is tried */
		const float candidates[2] = {binary && base > 0 && base < 1 ? -std::log(1.0f / base - 1.0f) : base, base};
		for (float c : candidates) {
			base_margin_ = c;
			if (flat_agrees()) {
				flat_ok_ = true;
				return;
			}
		}
	}

	// Whether the flat forest's margins and outputs are libxgboost's on the probe rows.
	bool flat_agrees() const
	{
		const size_t P = static_cast<size_t>(p_);
		std::vector<double> rows(P * 8);
		uint64_t state = 0x9E3779B97F4A7C15ull;
		for (size_t r = 0; r < 8; r++)
			for (size_t f = 0; f < P; f++) {
				state = state * 6364136223846793005ull + 1442695040888963407ull;
				double u = static_cast<double>(state >> 11) / 9007199254740992.0;
				rows[r * P + f] = r == 0   ? 0.0
				                  : r == 1 ? std::numeric_limits<double>::quiet_NaN()
				                  : (r == 2 && f % 2 == 0) ? std::numeric_limits<double>::quiet_NaN()
				                                          : (u - 0.5) * std::pow(10.0, static_cast<double>(r % 4));
			}
		std::vector<float> x(P), acc(groups_);
		for (int type = 0; type < 2; type++) {
			const float *res = nullptr;
			size_t len = run_predict(rows.data(), 8, ErrorCode::Internal, &res, type == 1 ? margin_config_ : predict_config_);
			if (len != 8 * groups_)
				return false;
			for (size_t r = 0; r < 8; r++) {
				flat_raw(rows.data() + r * P, x.data(), acc.data(), type == 1);
				for (size_t g = 0; g < groups_; g++) {
					const double want = res[r * groups_ + g], got = acc[g];
					if (!(std::fabs(want - got) <= 1e-6 * std::max(1.0, std::fabs(want))))
						return false;
				}
			}
		}
		return true;
	}

	// The flat forest's margins (margin) or outputs of row z into acc[groups_]; x: p_ floats.
	void flat_raw(const double *z, float *x, float *acc, bool margin) const
	{
		for (int f = 0; f < p_; f++)
			x[f] = static_cast<float>(z[f]);
		for (size_t g = 0; g < groups_; g++)
			acc[g] = base_margin_;
		flat_.accumulate(x, acc);
		if (margin || task_ == Task::Regression)
			return;
		if (groups_ == 1)
			acc[0] = xgb_sigmoid(acc[0]);
		else
			xgb_softmax(acc, groups_);
	}

	int flat_predict(const double *z, double *out) const
	{
		constexpr size_t kStack = 256;
		float xs[kStack], as[kStack];
		std::vector<float> xv, av;
		float *x = xs, *acc = as;
		if (static_cast<size_t>(p_) > kStack) {
			xv.resize(static_cast<size_t>(p_));
			x = xv.data();
		}
		if (groups_ > kStack) {
			av.resize(groups_);
			acc = av.data();
		}
		flat_raw(z, x, acc, false);
		return unpack(acc, groups_, out);
	}

	// Runs xgboost's in-place prediction on n consecutive rows; returns the number of values at
	// *res (valid until the next call). The caller holds mu_ (the proxy matrix and the booster's
	// output buffer are shared) until it has read *res.
	size_t run_predict(const double *z, size_t n, ErrorCode code, const float **res) const
	{
		return run_predict(z, n, code, res, predict_config_);
	}
	size_t run_predict(const double *z, size_t n, ErrorCode code, const float **res, const std::string &config) const
	{
		char arr[160];
		std::snprintf(arr, sizeof arr,
		              "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %d], \"typestr\": \"<f8\", \"version\": 3}",
		              reinterpret_cast<uintptr_t>(z), n, p_);
		const bst_ulong *shape = nullptr;
		bst_ulong dim = 0;
		xgb(code, "predicting", [&] {
			return XGBoosterPredictFromDense(booster_.h, arr, config.c_str(), proxy_->h, &shape, &dim, res);
		});
		size_t len = 1;
		for (bst_ulong d = 0; d < dim; d++)
			len *= static_cast<size_t>(shape[d]);
		return len;
	}

	// Turns xgboost's output for one row into out[] and the predicted class.
	int unpack(const float *res, size_t len, double *out) const
	{
		if (task_ == Task::Regression) {
			out[0] = res[0];
			return 0;
		}
		if (K_ == 2) {
			double p1 = res[0];
			out[0] = 1.0 - p1;
			out[1] = p1;
			return p1 > 0.5 ? 1 : 0;
		}
		double sum = 0;
		for (size_t k = 0; k < len; k++)
			sum += res[k];
		int best = 0;
		for (int k = 0; k < K_; k++) {
			out[k] = sum > 0 ? res[k] / sum : 1.0 / K_;
			if (out[k] > out[best])
				best = k;
		}
		return best;
	}

	// Total split gain per feature (xgboost names features f0..f{p-1}), normalised to sum 1.
	Eigen::VectorXd feature_gain(ErrorCode code) const
	{
		Eigen::VectorXd g = Eigen::VectorXd::Zero(p_);
		bst_ulong n = 0, dim = 0;
		const char **names = nullptr;
		const bst_ulong *shape = nullptr;
		const float *scores = nullptr;
		xgb(code, "computing feature importance", [&] {
			return XGBoosterFeatureScore(booster_.h, "{\"importance_type\": \"total_gain\"}", &n, &names, &dim, &shape,
			                             &scores);
		});
		for (bst_ulong i = 0; i < n; i++) {
			const char *name = names[i];
			char *end = nullptr;
			long f = name != nullptr && name[0] == 'f' ? std::strtol(name + 1, &end, 10) : -1;
			if (f < 0 || f >= p_ || end == nullptr || *end != '\0' || !std::isfinite(scores[i]) || scores[i] < 0) {
				if (code == ErrorCode::DataCorrupted)
					throw Error(code, "model blob is corrupted", "The xgboost model splits on an unknown feature.",
					            "Deploy another version with ml_deploy(), or retrain the model.");
				throw Error(code, "gradient boosting failed", "xgboost reported an unknown feature.");
			}
			g(f) += scores[i];
		}
		double s = g.sum();
		if (s > 0)
			g /= s;
		return g;
	}

	Booster booster_;
	std::unique_ptr<DMatrix> proxy_;
	std::string predict_config_;
	std::string margin_config_;
	FlatForest flat_;          // the trees prediction uses, flattened (load_flat)
	bool flat_ok_ = false;     // flat_ reproduces libxgboost: prediction uses it
	float base_margin_ = 0;    // every output group's starting margin
	size_t groups_ = 1;        // output groups (K for multi:softprob, else 1)
	Eigen::VectorXd importance_;
	mutable std::mutex mu_;
};

[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

} // namespace

std::vector<ParamSpec> gradient_boosting_params()
{
	using K = ParamSpec::Kind;
	const double inf = INFINITY;
	return {
		num_param("n_estimators", K::Int, 1, 100000, 100),
		num_param("learning_rate", K::Float, 0, 1, 0.3, true),
		num_param("max_depth", K::Int, 1, 32, 6),
		num_param("min_child_weight", K::Float, 0, inf, 1),
		num_param("subsample", K::Float, 0, 1, 1, true),
		num_param("colsample_bytree", K::Float, 0, 1, 1, true),
		num_param("reg_lambda", K::Float, 0, inf, 1),
		num_param("reg_alpha", K::Float, 0, inf, 0),
		num_param("gamma", K::Float, 0, inf, 0),
		num_param("max_bin", K::Int, 2, 65536, 256),
		num_param("early_stopping_rounds", K::Int, 0, 100000, 0),
		num_param("validation_fraction", K::Float, 0, 0.9, 0.1, true),
		// rounds an incremental retrain adds (the model grows by this many rounds each time)
		num_param("retrain_rounds", K::Int, 1, 10000, 10),
	};
}

std::unique_ptr<Estimator> fit_gradient_boosting(const FitInput &in, const Params &params)
{
	if (in.task != Task::Regression && in.task != Task::Classification)
		throw Error(ErrorCode::FeatureNotSupported, "gradient_boosting does regression and classification only");
	if (in.X == nullptr)
		throw Error(ErrorCode::Internal, "gradient boosting needs a feature matrix");
	const int K = in.task == Task::Classification ? in.n_classes : 0;
	if (in.task == Task::Classification && (K < 2 || K > static_cast<int>(kMaxClasses)))
		throw Error(ErrorCode::DataException, "classification needs at least two classes");
	if (in.X->cols() < 1 || in.X->cols() > static_cast<Eigen::Index>(kMaxFeatures))
		throw Error(ErrorCode::DataException, "gradient boosting needs at least one feature");
	const int p = static_cast<int>(in.X->cols());
	check_input(in, in.task, K, p);
	auto est = std::make_unique<GradientBoosting>(in.task, K, p);
	est->version_ = in.native_missing ? kGbVersion : 1;
	est->install(boost(in, params, in.task, K, nullptr, 0, params.integer("n_estimators")), ErrorCode::Internal);
	est->predict_on_threads(in.threads);
	return est;
}

int gradient_boosting_flat_layout(const Estimator &e)
{
	const auto *gb = dynamic_cast<const GradientBoosting *>(&e);
	return gb != nullptr ? gb->flat_layout() : -1;
}

std::unique_ptr<Estimator> read_gradient_boosting(Reader &r, const EstimatorShape &shape)
{
	uint16_t version = r.u16();
	if (version < 1 || version > kGbVersion)
		throw Error(ErrorCode::DataCorrupted, "unsupported gradient_boosting model format " + std::to_string(version),
		            "This build of pg_ml reads gradient_boosting formats 1 to " + std::to_string(kGbVersion) + ".",
		            "Upgrade pg_ml to the version that wrote this model.");
	uint8_t task = r.u8();
	uint32_t K = r.u32();
	uint32_t p = r.u32();
	uint32_t rounds = r.u32();
	uint32_t best = r.u32();
	if (task != static_cast<uint8_t>(Task::Regression) && task != static_cast<uint8_t>(Task::Classification))
		corrupt("Unknown task " + std::to_string(task) + ".");
	if (static_cast<Task>(task) != shape.task)
		corrupt("The estimator's task does not match the model's.");
	if (shape.task == Task::Classification ? (K < 2 || K > kMaxClasses || static_cast<int>(K) != shape.n_classes)
	                                       : K != 0)
		corrupt("The estimator's class count does not match the model's.");
	if (p < 1 || p > kMaxFeatures || static_cast<int>(p) != shape.p)
		corrupt("The estimator's feature count does not match the model's.");
	if (rounds < 1 || rounds > kMaxRounds || best >= rounds)
		corrupt("Implausible boosting round counts.");
	std::string bytes = r.str();
	uint32_t crc = r.u32();
	std::vector<char> model(bytes.begin(), bytes.end());
	const Task t = static_cast<Task>(task);
	if (crc != model_crc(version, t, static_cast<int>(K), static_cast<int>(p), static_cast<int>(rounds), static_cast<int>(best),
	                     model))
		corrupt("The gradient boosting model's checksum does not match.");
	auto est = std::make_unique<GradientBoosting>(t, static_cast<int>(K), static_cast<int>(p));
	est->version_ = version;
	Boosted b;
	b.model = std::move(model);
	b.rounds = static_cast<int>(rounds);
	b.best_iteration = static_cast<int>(best);
	est->install(std::move(b), ErrorCode::DataCorrupted);
	return est;
}

} // namespace pgml
