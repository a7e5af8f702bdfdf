// pg_ml core: drift monitoring. A version's training profile (per feature column: the NULL
// share, and the shares of the training rows in quantile bins (numeric) or per level
// (categorical)), and the population stability index (PSI) of other rows against it.
//
//  - Numeric bins: the deciles of the training values (kProfileBins bins; of every k-th value
//    beyond 200,000), equal edges merged
//    and an edge at the minimum dropped, so a column with ties has fewer, non-empty bins; a
//    constant column gets the bins (< c), (= c), (> c). Bins are [e_k, e_k+1), the outer ones open.
//  - Categorical bins: one per training level (the kMaxProfileLevels most frequent; the rest
//    share one "other" bin), plus an "unseen" bin for levels the training rows did not have.
//  - Both: one more bin for NULL. Shares are of all profiled rows (the bins and NULL sum to 1).
//  - PSI = sum over bins of (a - e) * ln(a / e), a the relation's share and e the training
//    share, each at least kPsiEpsilon (an empty bin would make it infinite).
//  - Severity: PSI < 0.1 none, < 0.25 moderate, otherwise major (the usual credit-scoring
//    convention).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common.hpp"
#include "data.hpp"

namespace pgml {

constexpr int kProfileBins = 10;
constexpr size_t kMaxProfileLevels = 1000;
constexpr double kPsiEpsilon = 1e-4;
constexpr double kPsiModerate = 0.1;
constexpr double kPsiMajor = 0.25;

// One feature column of a training profile.
struct FeatureProfile {
	std::string name;
	bool categorical = false;
	int64_t rows = 0;
	double null_share = 0;
	bool binned = true;              // numeric: false when nothing could bin it (no non-NULL training value)
	std::vector<double> edges;       // numeric: interior cut points, increasing
	std::vector<double> shares;      // numeric: edges.size() + 1 bins; categorical: per level
	std::vector<std::string> levels; // categorical, most frequent first
	double other_share = 0;          // categorical: the levels beyond kMaxProfileLevels
};

// The training statistics ml_monitor compares a relation against, stored with each version.
struct Profile {
	int64_t rows = 0;
	std::string from; // "training rows" or "training sample" (the streaming routes' samples)
	std::vector<FeatureProfile> features;
	std::string to_json() const;
	const FeatureProfile *find(const std::string &name) const;
};

// The interior quantile edges of values (reordered), as described above; empty for no values.
std::vector<double> quantile_edges(std::vector<double> &values, int bins);
// Bin of a non-NULL value: the number of edges <= v.
size_t value_bin(const std::vector<double> &edges, double v);
// The PSI of shares `actual` against `expected` (same length), each floored at kPsiEpsilon.
double psi(const std::vector<double> &expected, const std::vector<double> &actual);
// "none", "moderate" or "major" (nullptr for NaN: nothing compared).
const char *psi_severity(double psi);

// A categorical column's profile from its levels' row counts (any order), its NULLs and its rows.
FeatureProfile level_profile(const std::string &name, std::vector<std::pair<std::string, int64_t>> levels,
                             int64_t nulls, int64_t rows);
// The profile of the rows of s (numeric values NaN for NULL, level ids of dicts[c] and -1 for
// NULL), the columns in features' order.
Profile build_profile(const std::vector<ColumnInfo> &features, const std::vector<const Dictionary *> &dicts,
                      const RowStore &s, const char *from);

// A continued version's profile: base's bins (base: the parent version's profile, describing
// base_weight training rows) with the rows of `added` (describing added_weight training rows, as
// build_profile takes them) counted in; categorical levels new in `added` become levels. The
// shares are the two weighted by their rows.
Profile merge_profile(const Profile &base, double base_weight, const std::vector<ColumnInfo> &features,
                      const std::vector<const Dictionary *> &dicts, const RowStore &added, double added_weight,
                      const char *from);

// Counts rows into a profile's bins and computes their drift, column by column.
class DriftMonitor {
  public:
	// columns: the columns rows arrive in; each must be in the profile under its name and kind
	// (an Error naming it otherwise).
	DriftMonitor(const Profile &profile, const std::vector<ColumnInfo> &columns);
	// A batch whose features are `columns` in order (the target, if any, is ignored).
	void add_batch(const Batch &batch, CancelCheck cancel);
	// The rows of s (as build_profile takes them).
	void add_rows(const RowStore &s, const std::vector<const Dictionary *> &dicts);

	struct Drift {
		std::string name;
		bool categorical = false;
		double psi = NAN;
		const char *severity = nullptr;
		int64_t rows = 0;
		double null_share = NAN, train_null_share = NAN;
		double unseen_share = NAN; // categorical
		std::string detail_json;   // per bin: its label, the training and the relation's share
	};
	std::vector<Drift> drifts() const;
	// {"<column>": {"psi": ..., "severity": ...}, ...} (the retrain confirmation's drift)
	std::string summary_json() const;
	int64_t rows() const { return rows_; }

  private:
	struct Column {
		const FeatureProfile *prof = nullptr;
		std::vector<int64_t> counts; // numeric: bins, NULL; categorical: levels, other, unseen, NULL
		std::unordered_map<std::string, size_t> level_index;
	};
	void add_num(Column &c, bool isnull, double v);
	void add_level(Column &c, const char *s, size_t len);
	std::vector<Column> cols_;
	int64_t rows_ = 0;
	std::string key_; // lookup buffer
};

} // namespace pgml
