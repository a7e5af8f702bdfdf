#include "data.hpp"

#include "limits.hpp"

#include <algorithm>
#include <cmath>

namespace pgml {

const char *type_class_name(TypeClass c)
{
	switch (c) {
	case TypeClass::Numeric: return "numeric";
	case TypeClass::Boolean: return "boolean";
	case TypeClass::Categorical: return "categorical";
	case TypeClass::Temporal: return "temporal";
	}
	return "unknown";
}

int32_t Dictionary::find(std::string_view s) const
{
	auto it = ids_.find(std::string(s));
	return it == ids_.end() ? -1 : it->second;
}

int32_t Dictionary::intern(std::string_view s)
{
	auto it = ids_.find(std::string(s));
	if (it != ids_.end())
		return it->second;
	int32_t id = static_cast<int32_t>(names_.size());
	names_.emplace_back(s);
	ids_.emplace(names_.back(), id);
	return id;
}

size_t RowStore::bytes_per_row() const
{
	size_t b = sizeof(double) + sizeof(uint64_t);
	for (const auto &c : num)
		b += c.empty() ? 0 : sizeof(double);
	for (const auto &c : cat)
		b += c.empty() ? 0 : sizeof(int32_t);
	return b;
}

// Sets up one (empty) vector per feature column, numeric or categorical.
void RowStore::reset(const std::vector<ColumnInfo> &features)
{
	num.assign(features.size(), {});
	cat.assign(features.size(), {});
	y.clear();
	hash.clear();
}

void RowStore::clear()
{
	for (auto &c : num)
		c.clear();
	for (auto &c : cat)
		c.clear();
	y.clear();
	hash.clear();
}

void RowStore::reserve(size_t n, const std::vector<ColumnInfo> &features)
{
	for (size_t c = 0; c < features.size() && c < num.size(); c++) {
		if (features[c].categorical()) {
			cat[c].reserve(n);
			advise_huge_pages(cat[c].data(), cat[c].capacity() * sizeof(int32_t));
		} else {
			num[c].reserve(n);
			advise_huge_pages(num[c].data(), num[c].capacity() * sizeof(double));
		}
	}
	y.reserve(n);
	hash.reserve(n);
	advise_huge_pages(y.data(), y.capacity() * sizeof(double));
	advise_huge_pages(hash.data(), hash.capacity() * sizeof(uint64_t));
}

void RowStore::release()
{
	for (auto &c : num)
		std::vector<double>().swap(c);
	for (auto &c : cat)
		std::vector<int32_t>().swap(c);
	std::vector<double>().swap(y);
	std::vector<uint64_t>().swap(hash);
}

namespace {

template <class T>
void split_column(std::vector<T> &src, const std::vector<uint8_t> &is_test, size_t n_b, std::vector<T> &a,
                  std::vector<T> &b)
{
	a.clear();
	b.clear();
	if (src.empty())
		return;
	if (n_b == 0) {
		a.swap(src);
		std::vector<T>().swap(src);
		return;
	}
	a.reserve(src.size() - n_b);
	b.reserve(n_b);
	advise_huge_pages(a.data(), a.capacity() * sizeof(T));
	advise_huge_pages(b.data(), b.capacity() * sizeof(T));
	for (size_t i = 0; i < src.size(); i++)
		(is_test[i] ? b : a).push_back(src[i]);
	std::vector<T>().swap(src);
}

} // namespace

void RowStore::split_into(const std::vector<uint8_t> &is_test, RowStore &a, RowStore &b)
{
	const size_t n_b = static_cast<size_t>(std::count_if(is_test.begin(), is_test.end(), [](uint8_t t) { return t != 0; }));
	a.num.resize(num.size());
	b.num.resize(num.size());
	a.cat.resize(cat.size());
	b.cat.resize(cat.size());
	for (size_t c = 0; c < num.size(); c++)
		split_column(num[c], is_test, n_b, a.num[c], b.num[c]);
	for (size_t c = 0; c < cat.size(); c++)
		split_column(cat[c], is_test, n_b, a.cat[c], b.cat[c]);
	split_column(y, is_test, n_b, a.y, b.y);
	split_column(hash, is_test, n_b, a.hash, b.hash);
}

void RowStore::append_all(const RowStore &src)
{
	for (size_t c = 0; c < src.num.size(); c++) {
		num[c].insert(num[c].end(), src.num[c].begin(), src.num[c].end());
		cat[c].insert(cat[c].end(), src.cat[c].begin(), src.cat[c].end());
	}
	y.insert(y.end(), src.y.begin(), src.y.end());
	hash.insert(hash.end(), src.hash.begin(), src.hash.end());
}

void RowStore::append_from(const RowStore &src, size_t i)
{
	for (size_t c = 0; c < src.num.size(); c++) {
		if (!src.num[c].empty())
			num[c].push_back(src.num[c][i]);
		if (!src.cat[c].empty())
			cat[c].push_back(src.cat[c][i]);
	}
	y.push_back(src.y[i]);
	hash.push_back(src.hash[i]);
}

void RowStore::set_from(size_t at, const RowStore &src, size_t i)
{
	for (size_t c = 0; c < src.num.size(); c++) {
		if (!src.num[c].empty())
			num[c][at] = src.num[c][i];
		if (!src.cat[c].empty())
			cat[c][at] = src.cat[c][i];
	}
	y[at] = src.y[i];
	hash[at] = src.hash[i];
}

namespace {

template <class T>
void permute_column(std::vector<T> &col, const std::vector<uint32_t> &order)
{
	if (col.empty())
		return;
	std::vector<T> out; // (not zeroed first: every element is written once)
	out.reserve(order.size());
	advise_huge_pages(out.data(), out.capacity() * sizeof(T));
	for (size_t k = 0; k < order.size(); k++)
		out.push_back(col[order[k]]);
	col.swap(out);
}

} // namespace

void RowStore::permute(const std::vector<uint32_t> &order)
{
	for (auto &c : num)
		permute_column(c, order);
	for (auto &c : cat)
		permute_column(c, order);
	permute_column(y, order);
	permute_column(hash, order);
}

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const auto *p = static_cast<const unsigned char *>(data);
	uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed);
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return mix64(h);
}

} // namespace pgml
