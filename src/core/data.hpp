// pg_ml core: how rows arrive from the glue, and how they are kept when an
// algorithm needs them in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common.hpp"

namespace pgml {

// How a PostgreSQL type is used (DESIGN.md "Data handling").
enum class TypeClass : uint8_t {
	Numeric = 0,     // integer, numeric, floating
	Boolean = 1,     // 0 / 1
	Categorical = 2, // text, varchar, char, enum
	Temporal = 3     // date / timestamp: seconds since the epoch
};
const char *type_class_name(TypeClass c);

struct ColumnInfo {
	std::string name;
	TypeClass type_class = TypeClass::Numeric;
	std::string type_name; // PostgreSQL's name for the type, for messages
	bool categorical() const { return type_class == TypeClass::Categorical; }
};

// One column of a batch, filled by the glue (plain pointers, no ownership).
struct ColumnData {
	const double *num = nullptr;     // non-categorical columns
	const char *const *str = nullptr; // categorical columns: NUL-terminated strings
	const bool *isnull = nullptr;
};

// A batch of rows in column-major form. target is null when there is no target.
struct Batch {
	size_t nrows = 0;
	size_t nfeatures = 0;
	const ColumnData *features = nullptr;
	const ColumnData *target = nullptr;
};

// One value of one row, for prediction.
struct Value {
	bool isnull = true;
	double num = 0;
	const char *str = nullptr; // categorical
	size_t len = 0;
};

// Category levels of one column, ids in order of first appearance.
class Dictionary {
  public:
	int32_t find(std::string_view s) const;            // -1 if unknown
	int32_t intern(std::string_view s);                 // adds if new
	const std::string &name(int32_t id) const { return names_[static_cast<size_t>(id)]; }
	size_t size() const { return names_.size(); }

  private:
	std::unordered_map<std::string, int32_t> ids_;
	std::vector<std::string> names_;
};

// Rows kept in memory, compactly: numeric values (NaN = NULL), level ids (-1 = NULL),
// the target (regression value or class id), and each row's hash.
struct RowStore {
	std::vector<std::vector<double>> num;   // by feature column (empty for categorical ones)
	std::vector<std::vector<int32_t>> cat;  // by feature column (empty for numeric ones)
	std::vector<double> y;
	std::vector<uint64_t> hash;
	size_t size() const { return hash.size(); }
	size_t bytes_per_row() const;
	void reset(const std::vector<ColumnInfo> &features);
	void clear();
	// Room for n rows in every column of `features` (the layout of reset()), allocated once.
	void reserve(size_t n, const std::vector<ColumnInfo> &features);
	// Frees every column's memory (clear() keeps it for the next rows).
	void release();
	// Moves the rows into a (is_test[i] == 0) and b (is_test[i] != 0), in order, one column at
	// a time (so at most one column exists twice); this store is left empty.
	void split_into(const std::vector<uint8_t> &is_test, RowStore &a, RowStore &b);
	// copies every row of src (same layout) to the end, a column at a time
	void append_all(const RowStore &src);
	// copies row i of src (same layout) to the end
	void append_from(const RowStore &src, size_t i);
	void set_from(size_t at, const RowStore &src, size_t i);
	// Keeps the rows `order` lists, in that order (row k becomes the old row order[k]; distinct
	// rows, a permutation of [0, size()) to reorder them all), one column at a time: at most
	// one column exists twice.
	void permute(const std::vector<uint32_t> &order);
};

// 64-bit mixing (splitmix64 finaliser).
inline uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

// FNV-1a over bytes, mixed.
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);

// A numeric value's contribution to a row hash (-0 hashes as 0).
inline uint64_t hash_double(double v)
{
	if (v == 0)
		v = 0;
	uint64_t bits;
	std::memcpy(&bits, &v, 8);
	return mix64(bits);
}

// Row hashes: the train / test split and the data fingerprint depend only on a row's values,
// never on the order rows are read in. Both the row reader (Trainer::add_batch) and the
// statistics aggregate (stats_state.hpp) hash a row the same way: start with kRowHashSeed,
// fold in the target (if any), then every feature in order.
constexpr uint64_t kRowHashSeed = 0x243F6A8885A308D3ull;
constexpr uint64_t kNullHash = 0x9E3779B97F4A7C15ull;
inline uint64_t hash_target_num(uint64_t h, double v) { return mix64(h ^ hash_double(v)); }
inline uint64_t hash_target_str(uint64_t h, const char *s, size_t len) { return mix64(h ^ hash_bytes(s, len, 1)); }
inline uint64_t hash_num(uint64_t h, size_t col, bool isnull, double v)
{
	return mix64(h ^ (isnull ? kNullHash ^ col : hash_double(v) + col));
}
inline uint64_t hash_str(uint64_t h, size_t col, const char *s, size_t len)
{
	return s == nullptr ? mix64(h ^ kNullHash ^ col) : mix64(h ^ hash_bytes(s, len, col + 2));
}

// Where a row falls: uniform in [0, 1) from its hash and the seed.
inline double split_draw(uint64_t hash, uint64_t seed)
{
	return static_cast<double>(mix64(hash ^ mix64(seed + 0x5851F42D4C957F2Dull)) >> 11) * 0x1.0p-53;
}

// The test-row rule of an unstratified split, the one every route uses (row reader, statistics
// aggregate, k-means steps, comparison pass): a row is held out when its draw is below test_size.
inline bool is_test_row(uint64_t hash, uint64_t seed, double test_size)
{
	return test_size > 0 && split_draw(hash, seed) < test_size;
}

// A row's draw for the cross-validation folds of a search (search.hpp): uniform in [0, 1),
// independent of split_draw and sample_draw.
inline double fold_draw(uint64_t hash, uint64_t seed)
{
	return static_cast<double>(mix64(hash ^ mix64(seed ^ 0x6A09E667F3BCC909ull)) >> 11) * 0x1.0p-53;
}

// A row's draw for the metric samples (the rows with the smallest draws are kept, by the row
// reader and the statistics aggregate alike): uniform in [0, 1), independent of split_draw.
inline double sample_draw(uint64_t hash, uint64_t seed)
{
	return static_cast<double>(mix64(hash ^ mix64(seed ^ 0xD1B54A32D192ED03ull)) >> 11) * 0x1.0p-53;
}

} // namespace pgml
