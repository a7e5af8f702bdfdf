#include "agg_state.hpp"

#include <string>

namespace pgml::aggstate {

void corrupt(const Kind &kind, const char *why)
{
	const std::string name = kind.name;
	throw Error(ErrorCode::DataCorrupted, "invalid " + name + " state", why,
	            "States come from ml." + name + "; they are not meant to be written by hand.");
}

void check_header(const Kind &kind, const double *buf, size_t len)
{
	if (len < kind.header || buf[0] != kind.magic || buf[1] != kind.version) {
		const std::string name = kind.name;
		const bool vowel = name.find_first_of("aeiou") == 0;
		corrupt(kind, ("The array does not start with " + std::string(vowel ? "an " : "a ") + name + " header.").c_str());
	}
}

void check_length(const Kind &kind, size_t want, size_t len)
{
	if (want != len)
		corrupt(kind, "The array's length does not match its header.");
}

void write_header(const Kind &kind, double *buf)
{
	buf[0] = kind.magic;
	buf[1] = kind.version;
}

const char *read_split(const double *v, double seed_max, uint64_t *seed, double *test_size)
{
	if (!is_count(v[0], seed_max))
		return "The seed is not a non-negative integer.";
	*seed = static_cast<uint64_t>(v[0]);
	if (!(v[1] >= 0 && v[1] < 1))
		return "test_size is not in [0, 1).";
	*test_size = v[1];
	return nullptr;
}

size_t SampleHeap::append(double u)
{
	const size_t n = size();
	if (n >= cap_)
		throw Error(ErrorCode::Internal, std::string(kind_->name) + " sample was not grown");
	u_[n] = u;
	*count_ = static_cast<double>(n + 1);
	return n;
}

void SampleHeap::swap_rows(size_t a, size_t b)
{
	std::swap(u_[a], u_[b]);
	std::swap_ranges(rows_ + a * width_, rows_ + a * width_ + width_, rows_ + b * width_);
}

void SampleHeap::sift_up(size_t i)
{
	while (i > 0 && u_[(i - 1) / 2] < u_[i]) {
		swap_rows(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

void SampleHeap::sift_down(size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && u_[l] > u_[m])
			m = l;
		if (r < n && u_[r] > u_[m])
			m = r;
		if (m == i)
			break;
		swap_rows(i, m);
		i = m;
	}
}

void SampleHeap::merge_from(const SampleHeap &other)
{
	const size_t nb = other.size();
	if (size() + nb > cap_ && cap_ < k_)
		throw Error(ErrorCode::Internal, std::string(kind_->name) + " state was not grown for the merge");
	for (size_t r = 0; r < nb; r++) {
		const double *src = other.row(r);
		insert(other.u_[r], [&](double *dst) { std::copy(src, src + width_, dst); });
	}
}

void SampleHeap::copy_to(SampleHeap &to) const
{
	const size_t n = size();
	std::copy(u_, u_ + n, to.u_);
	std::copy(rows_, rows_ + n * width_, to.rows_);
	*to.count_ = static_cast<double>(n);
}

} // namespace pgml::aggstate
