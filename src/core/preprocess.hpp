// pg_ml core: preprocessing (imputation, one-hot encoding, scaling).
//
// Rows are first *encoded* into a raw slot vector v whose layout grows as rows
// arrive: per numeric column a value slot (0 when NULL) and, once a NULL has been
// seen, a missing-indicator slot; per categorical column one indicator slot per level
// (and one for NULL). Every fitted transformation pg_ml uses (mean / median / constant
// imputation, one-hot, standard / min-max scaling) is an affine map of v, so the
// moments of v over the training rows are enough to fit it and to fit linear models
// on the transformed features without keeping the rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <Eigen/Dense>

#include "data.hpp"
#include "moments.hpp"
#include "serialize.hpp"

namespace pgml {

constexpr int kReferenceLevel = -2; // Preprocessor::level_feature of a drop_first reference level

enum class Impute : uint8_t { Mean = 0, Median = 1, Constant = 2 };
enum class Scale : uint8_t { Standard = 0, MinMax = 1, None = 2 };

struct ColumnOptions {
	Impute impute = Impute::Mean;
	double impute_value = 0;
	Scale scale = Scale::Standard;
	int max_levels = 100;
};

// Parsed `preprocess` jsonb.
struct PreprocessOptions {
	ColumnOptions defaults;
	std::map<std::string, ColumnOptions> columns; // per-column overrides (ordered: blob bytes and JSON are canonical)
	bool dedupe = false;
	bool drop_nonfinite = false; // "nonfinite": "error" (default) | "drop"
	bool drop_nulls = false;     // "nulls": "impute" (default) | "drop": rows with a NULL feature are left out
	bool drop_first = false;     // "encoding": "onehot" (default) | "drop_first": a categorical column's first
	                             // level (sorted) is the reference, without a feature (R's treatment contrasts)
	const ColumnOptions &for_column(const std::string &name) const;
	void write(Writer &w) const;
	static PreprocessOptions read(Reader &r);
	std::string to_json() const;
};

// Validates and parses the flattened preprocess options; features are the model's
// input columns (per-column overrides must name one of them).
PreprocessOptions parse_preprocess(const Options &opts, const std::vector<ColumnInfo> &features);

// The growing slot layout and the category dictionaries.
class Encoder {
  public:
	Encoder() = default;
	Encoder(const std::vector<ColumnInfo> &features, bool target_slot);

	// Interns the categorical strings of a batch into a RowStore-shaped chunk.
	// (Numeric values are copied by the caller.)
	int32_t intern(size_t col, std::string_view s) { return dict_[col].intern(s); }
	int32_t find(size_t col, std::string_view s) const { return dict_[col].find(s); }
	const Dictionary &dictionary(size_t col) const { return dict_[col]; }

	// Allocates slots for what rows [begin, end) of store need (new levels, first NULLs).
	void allocate(const RowStore &store, size_t begin, size_t end);
	// Writes rows [begin, end) of store as raw slot vectors into out (rows x dim()).
	void encode(const RowStore &store, size_t begin, size_t end, Eigen::MatrixXd &out) const;
	Eigen::Index dim() const { return next_slot_; }

	bool has_target_slot() const { return target_slot_ >= 0; }
	int value_slot(size_t col) const { return value_slot_[col]; }
	int missing_slot(size_t col) const { return missing_slot_[col]; }
	int level_slot(size_t col, int32_t level) const
	{
		return level < 0 ? null_slot_[col] : level_slot_[col][static_cast<size_t>(level)];
	}
	int target_slot() const { return target_slot_; }

	void write(Writer &w) const;
	static Encoder read(Reader &r, const std::vector<ColumnInfo> &features);
	// Rewrites every text (the level names) with f, in a fixed order; ids and slots stay.
	// features: the columns, already rewritten.
	void map_text(const std::function<void(const char *what, std::string &)> &f, const std::vector<ColumnInfo> &features);

  private:
	std::vector<ColumnInfo> features_;
	std::vector<Dictionary> dict_;
	std::vector<int> value_slot_;
	std::vector<int> missing_slot_;
	std::vector<std::vector<int>> level_slot_;
	std::vector<int> null_slot_;
	int target_slot_ = -1;
	int next_slot_ = 0;
};

// One input column's fitted transformation.
struct FittedColumn {
	// numeric / boolean / temporal
	double impute_value = 0;
	// categorical: kept levels (sorted), the feature each maps to; NULL's feature or -1
	std::vector<std::string> levels;
	int null_feature = -1;
	// "encoding": "drop_first": the reference level, known but without a feature (all zeros)
	bool has_reference = false;
	std::string reference;
	// first output feature and how many
	int first_feature = 0;
	int n_features = 0;
};

// Fitted preprocessing: raw column values -> feature vector x (p values), plus the
// scaling z = (x - center) / scale that models use internally.
class Preprocessor {
  public:
	std::vector<ColumnInfo> features;
	std::vector<FittedColumn> columns;
	Eigen::VectorXd center; // p
	Eigen::VectorXd scale;  // p (1 where no scaling)
	std::vector<std::string> feature_names; // "age", "plan=gold", "plan=NULL"
	// Missing numeric values become NaN instead of the imputed value (the model's estimator
	// handles them: Estimator::native_missing()). Not stored in the blob: derived from the
	// estimator when the model is read, set by the trainer before fitting.
	bool native_missing = false;
	int p() const { return static_cast<int>(feature_names.size()); }

	// Builds the affine map x = A v + c from the encoder's raw slots (A is p x q).
	void affine(const Encoder &enc, Eigen::MatrixXd &A, Eigen::VectorXd &c) const;
	// Writes the feature vector of one row of a RowStore (categorical ids are the encoder's); a
	// NULL number is NaN when native_missing, else the imputed value.
	void transform(const Encoder &enc, const RowStore &store, size_t row, double *x) const;

	void build_index(); // level lookup tables for prediction
	// The input column feature f comes from.
	size_t column_of(int f) const;
	// Recomputes feature_names from features and the columns' levels (then build_index()).
	void name_features();
	// Feature index of a categorical value: -1 when the level was not seen in training,
	// kReferenceLevel for the reference level of "encoding": "drop_first" (no feature).
	int level_feature(size_t col, std::string_view s) const;

	void write(Writer &w) const;
	static Preprocessor read(Reader &r, const std::vector<ColumnInfo> &features);
	std::string to_json() const;

  private:
	std::vector<std::unordered_map<std::string, int>> level_index_; // owns its keys, so copies stay valid
};

// Feature names (Preprocessor::feature_names), unique and unambiguous: a numeric column's
// feature is its name; a text column's are "<column>=<level>" per level and "<column>=NULL"
// for NULL. A column name holding '=' or '"' is written double-quoted (quotes doubled), and
// so is a level that is the string 'NULL' or starts with '"': "c=a" (a numeric column) and
// c=a (level a of column c), c=NULL (NULL) and c="NULL" (the string) stay apart.
std::string numeric_feature_name(const std::string &col);
std::string level_feature_name(const std::string &col, const std::string &level);
std::string null_level_feature_name(const std::string &col);

// Fits the preprocessor on the moments of the training rows' raw slots.
// min_v / max_v: per raw slot min and max over the training rows (for min-max scaling);
// medians: per column median of the non-NULL training values (NaN where not requested).
Preprocessor fit_preprocessor(const std::vector<ColumnInfo> &features, const PreprocessOptions &opts,
                              const Encoder &enc, const Moments &train, const std::vector<double> &col_min,
                              const std::vector<double> &col_max, const std::vector<double> &medians);

// Counts the distinct levels (NULL counts as one) each categorical column has in the training
// rows while they are encoded, and refuses a column as soon as it has one more than its
// max_levels: before the encoder's slots, the moments (O(levels^2)) or the feature matrix grow
// with them. The same limit fit_preprocessor applies to the fitted levels, checked early.
class LevelCounter {
  public:
	LevelCounter() = default;
	LevelCounter(const std::vector<ColumnInfo> &features, const PreprocessOptions &opts);
	// Notes that a training row has level `id` (the encoder's id; -1 for NULL) in column col;
	// throws Error(ProgramLimit) when that makes more than the column's max_levels.
	void note(size_t col, int32_t id)
	{
		if (col >= seen_.size() || max_[col] <= 0)
			return;
		const size_t slot = static_cast<size_t>(id + 1); // 0 is NULL
		std::vector<uint8_t> &seen = seen_[col];
		if (slot < seen.size() && seen[slot])
			return;
		if (slot >= seen.size())
			seen.resize(std::max(slot + 1, seen.size() * 2), 0);
		seen[slot] = 1;
		if (++count_[col] > static_cast<size_t>(max_[col]))
			too_many(col);
	}
	// Distinct levels seen so far in column col.
	size_t count(size_t col) const { return col < count_.size() ? count_[col] : 0; }

  private:
	[[noreturn]] void too_many(size_t col) const;

	std::vector<std::string> names_;
	std::vector<int> max_; // 0 for a numeric column
	std::vector<std::vector<uint8_t>> seen_;
	std::vector<size_t> count_;
};

} // namespace pgml
