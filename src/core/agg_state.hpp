// pg_ml core: what the three aggregate states (ml.train_stats: stats_state.hpp, ml.eval_stats:
// eval_state.hpp, ml.kmeans_step: kmeans_step.hpp) share.
//
// Each state is a flat array of doubles (SQL float8[]) that the transition function updates in
// place. Every state starts with the same two header fields (a magic number naming the state,
// a format version), then its own header and regions. A state whose size depends on the rows
// (new NULL indicators, a sample that fills up) grows by one protocol:
//
//   add_row(buf, shape, ..., &need) -> 0 when done, else the length to grow to
//   the caller allocates an array of that length; relayout(old, old_len, new, need) copies the
//   old state into it; add_row is called again on the new one
//   combine: merged_shape(a, b) -> relayout a to it when its length differs -> merge(a, b)
//
// Each state names its functions for that protocol in a State struct (stats::State, ...), so
// one implementation of the loops serves them all: grow_add / grow_merge below over a
// std::vector (tests, fuzz targets), the glue's over palloc'd arrays (src/pg/agg_state.hpp).
//
// The bottom-k sample (SampleHeap) keeps, per split, the sample_k rows with the smallest hash
// draws: the same rows whatever the scan order or the number of workers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace pgml::aggstate {

constexpr double kMaxCount = 9e15;  // a row counter's bound (exact in a double)
constexpr int kInitialSampleCap = 64; // sample rows a fresh state has room for

// v is an integer from 0 to max.
inline bool is_count(double v, double max) { return v >= 0 && v <= max && v == std::floor(v); }
// A checked counter field of buf, as a size.
inline size_t counter(const double *buf, size_t field) { return static_cast<size_t>(buf[field]); }

// One kind of state: its names ("train_stats": "invalid train_stats state"; the aggregate,
// "ml.train_stats") and the first two header fields.
struct Kind {
	const char *name;
	const char *aggregate;
	double magic;
	double version;
	size_t header; // header fields (the regions start after them)
};

// The DataCorrupted error of a malformed state ("invalid <name> state", why as the detail).
[[noreturn]] void corrupt(const Kind &kind, const char *why);
// Checks the magic number, the version and that the array holds the header.
void check_header(const Kind &kind, const double *buf, size_t len);
// Checks that the array's length is the one its header's shape gives.
void check_length(const Kind &kind, size_t want, size_t len);
// Writes the magic number and the version (the rest of the header is the caller's).
void write_header(const Kind &kind, double *buf);

// The split parameters every state's parameter array carries: a seed (an integer up to
// seed_max) and test_size in [0, 1). Returns the reason when malformed, else nullptr.
const char *read_split(const double *v, double seed_max, uint64_t *seed, double *test_size);

// One row's features as a transition function sees them: numeric values as doubles (the glue
// converts exactly as the row reader does), categorical values as bytes.
struct Features {
	const bool *isnull = nullptr;     // per feature
	const double *num = nullptr;      // per feature (numeric ones)
	const char *const *str = nullptr; // per feature (categorical ones)
	const size_t *len = nullptr;      // per feature (categorical ones)
};

// Sample capacities: a fresh state's, the one add_row asks for when the sample is full, and
// the one a merge needs to hold `rows` (all at most sample_k).
inline int initial_cap(int sample_k) { return std::min(sample_k, kInitialSampleCap); }
inline int grown_cap(int cap, int sample_k) { return std::min(sample_k, std::max(kInitialSampleCap, cap * 2)); }
inline int merged_cap(int cap, int sample_k, size_t rows)
{
	return static_cast<int>(std::min<size_t>(static_cast<size_t>(sample_k), std::max<size_t>(static_cast<size_t>(cap), rows)));
}

// Places the two splits' samples of cap rows of width values at *offset: su[t] the draws,
// srow[t] the rows.
inline void place_samples(size_t *offset, size_t cap, size_t width, size_t su[2], size_t srow[2])
{
	for (int t = 0; t < 2; t++) {
		su[t] = *offset, *offset += cap;
		srow[t] = *offset, *offset += cap * width;
	}
}

// One split's bottom-k sample inside a state: a count field in the header, then the draws
// u[cap] and the rows[cap * width] elsewhere. The draws form a max-heap, the rows moved
// alongside, so the row with the largest draw is the one a smaller draw replaces.
class SampleHeap {
  public:
	SampleHeap(const Kind &kind, double *buf, size_t count_field, size_t u, size_t rows, size_t width, int cap,
	           int sample_k)
		: kind_(&kind), count_(buf + count_field), u_(buf + u), rows_(buf + rows), width_(width),
		  cap_(static_cast<size_t>(cap)), k_(static_cast<size_t>(sample_k))
	{
	}
	size_t size() const { return static_cast<size_t>(*count_); }
	bool full() const { return size() == cap_ && cap_ < k_; } // held rows fill the room, more are wanted
	const double *draws() const { return u_; }
	const double *row(size_t i) const { return rows_ + i * width_; }

	// Offers a row with draw u; fill(dst) writes its width values when it is kept.
	template <typename Fill>
	void insert(double u, Fill fill)
	{
		const size_t n = size();
		if (n < k_) {
			fill(rows_ + append(u) * width_);
			sift_up(n);
			return;
		}
		if (n == 0 || u >= u_[0])
			return;
		u_[0] = u;
		fill(rows_);
		sift_down(n);
	}
	// Offers every row of other (a state being merged in); throws Internal when this sample
	// was not grown to hold them.
	void merge_from(const SampleHeap &other);
	// Copies the held rows into to (a relaid state, at least as much room).
	void copy_to(SampleHeap &to) const;

  private:
	size_t append(double u); // the slot of a new row (throws when the room is full)
	void sift_up(size_t i);
	void sift_down(size_t n);
	void swap_rows(size_t a, size_t b);

	const Kind *kind_;
	double *count_, *u_, *rows_;
	size_t width_, cap_, k_;
};

// A state's functions for the grow protocol, named once per state (stats::State, ...):
// S::kind, S::Shape (with length()), S::init, S::shape_of, S::relayout, S::merged_shape, S::merge.
template <const Kind &K, typename ShapeT, void (*Init)(double *, const ShapeT &),
          ShapeT (*ShapeOf)(const double *, size_t), void (*Relayout)(const double *, size_t, double *, const ShapeT &),
          ShapeT (*MergedShape)(const double *, size_t, const double *, size_t),
          void (*Merge)(double *, size_t, const double *, size_t)>
struct Protocol {
	using Shape = ShapeT;
	static constexpr const Kind &kind = K;
	static void init(double *buf, const Shape &s) { Init(buf, s); }
	static Shape shape_of(const double *buf, size_t len) { return ShapeOf(buf, len); }
	static void relayout(const double *from, size_t from_len, double *to, const Shape &s) { Relayout(from, from_len, to, s); }
	static Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen) { return MergedShape(a, alen, b, blen); }
	static void merge(double *a, size_t alen, const double *b, size_t blen) { Merge(a, alen, b, blen); }
};

// The grow protocol over a std::vector state (as the glue runs it over float8[] arrays).

// An empty buf (a NULL state) made a fresh state of shape s.
template <typename S>
void init_if_empty(std::vector<double> &buf, const typename S::Shape &s)
{
	if (buf.empty()) {
		buf.resize(s.length());
		S::init(buf.data(), s);
	}
}

// Adds a row through add(buf, shape, &need) -> 0 or the length to grow to; an empty buf
// is first made a fresh state of shape `initial`. A row that asks for a length that is not
// its shape's, or to grow more than three times, is a bug (Internal).
template <typename S, typename Add>
void grow_add(std::vector<double> &buf, const typename S::Shape &initial, Add add)
{
	init_if_empty<S>(buf, initial);
	for (int grow = 0;; grow++) {
		typename S::Shape s = S::shape_of(buf.data(), buf.size()), need;
		const size_t len = add(buf.data(), s, &need);
		if (len == 0)
			return;
		if (grow > 2 || len != need.length())
			throw Error(ErrorCode::Internal, std::string(S::kind.name) + " add_row asks for a wrong shape");
		std::vector<double> grown(len);
		S::relayout(buf.data(), buf.size(), grown.data(), need);
		buf.swap(grown);
	}
}

// Merges state b into a (an empty vector is a NULL state).
template <typename S>
void grow_merge(std::vector<double> &a, const std::vector<double> &b)
{
	if (b.empty())
		return;
	if (a.empty()) {
		a = b;
		return;
	}
	typename S::Shape need = S::merged_shape(a.data(), a.size(), b.data(), b.size());
	if (need.length() != a.size()) {
		std::vector<double> grown(need.length());
		S::relayout(a.data(), a.size(), grown.data(), need);
		a.swap(grown);
	}
	S::merge(a.data(), a.size(), b.data(), b.size());
}

} // namespace pgml::aggstate
