// Shared by the libFuzzer targets in test/fuzz: how a fuzz input is cut into the arrays and
// rows a decoder is handed, and the checks every target makes.
//
// Aggregate-state targets read their input as
//   a number of float8 arrays, each a u16 count n followed by n doubles (little-endian),
//   then the rest: bytes that describe rows (ByteSource)
// so that a seed can hold real encodings (make_seeds.cpp writes them) and mutations
// reach every field of every array.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agg_state.hpp"
#include "common.hpp"
#include "serialize.hpp"

namespace pgml_fuzz {

// The arrays at the start of an input, then its remaining bytes.
struct Input {
	std::vector<std::vector<double>> arrays;
	const uint8_t *rest = nullptr;
	size_t rest_len = 0;

	Input(const uint8_t *data, size_t size, size_t n_arrays)
	{
		size_t o = 0;
		for (size_t a = 0; a < n_arrays; a++) {
			std::vector<double> v;
			if (size - o >= 2) {
				uint16_t n;
				std::memcpy(&n, data + o, 2);
				o += 2;
				size_t take = std::min<size_t>(n, (size - o) / 8);
				v.resize(take);
				if (take > 0)
					std::memcpy(v.data(), data + o, take * 8);
				o += take * 8;
			}
			arrays.push_back(std::move(v));
		}
		rest = data + o;
		rest_len = size - o;
	}
};

// Writes the same layout (for the seed generator).
inline void put_array(std::vector<uint8_t> &out, const std::vector<double> &v)
{
	uint16_t n = static_cast<uint16_t>(std::min<size_t>(v.size(), 65535));
	const auto *p = reinterpret_cast<const uint8_t *>(&n);
	out.insert(out.end(), p, p + 2);
	const auto *d = reinterpret_cast<const uint8_t *>(v.data());
	out.insert(out.end(), d, d + 8 * static_cast<size_t>(n));
}

// Values for rows, drawn from the input's remaining bytes (zeros once they run out).
class ByteSource {
  public:
	ByteSource(const uint8_t *p, size_t n) : p_(p), end_(p + n) {}
	bool empty() const { return p_ >= end_; }
	uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
	// A number: mostly small integers and special values, sometimes 8 raw bytes.
	double num()
	{
		uint8_t tag = u8();
		switch (tag % 8) {
		case 0: return static_cast<double>(static_cast<int8_t>(u8()));
		case 1: return static_cast<double>(static_cast<int8_t>(u8())) / 16;
		case 2: {
			double v = 0;
			for (int i = 0; i < 8; i++) {
				uint8_t b = u8();
				std::memcpy(reinterpret_cast<uint8_t *>(&v) + i, &b, 1);
			}
			return v;
		}
		case 3: return NAN;
		case 4: return (tag & 8) ? INFINITY : -INFINITY;
		case 5: return (tag & 8) ? 1e300 : -1e-300;
		default: return static_cast<double>(u8()) * 0.25 - 10;
		}
	}
	// A short string: a level name from `levels` when there are some, else raw bytes.
	std::string str(const std::vector<std::string> &levels)
	{
		uint8_t tag = u8();
		if (!levels.empty() && tag % 4 != 0)
			return levels[static_cast<size_t>(u8()) % levels.size()];
		size_t n = u8() % 12;
		std::string s;
		for (size_t i = 0; i < n && !empty(); i++)
			s.push_back(static_cast<char>(u8()));
		return s;
	}

  private:
	const uint8_t *p_;
	const uint8_t *end_;
};

// A copy of a model blob whose header declares the bytes that follow and their checksum, so
// that mutated payloads reach the payload's readers (the checksum check is fuzzed as given).
inline std::vector<uint8_t> fix_blob_header(const uint8_t *data, size_t size)
{
	std::vector<uint8_t> b(data, data + size);
	if (size >= pgml::kHeaderSize && std::memcmp(data, "PGML", 4) == 0) {
		uint64_t length = size - pgml::kHeaderSize;
		uint32_t crc = pgml::crc32(b.data() + pgml::kHeaderSize, size - pgml::kHeaderSize);
		std::memcpy(b.data() + 8, &length, 8);
		std::memcpy(b.data() + 16, &crc, 4);
	}
	return b;
}

// A finding that is not a memory error: print it and abort, so libFuzzer keeps the input.
[[noreturn]] inline void fail(const char *what)
{
	std::fprintf(stderr, "fuzz target check failed: %s\n", what);
	std::abort();
}

// Errors the decoders may raise for bad input. Anything else (std::bad_alloc from an
// implausible size, std::length_error, an Internal error) escapes and is a finding.
inline bool expected(const pgml::Error &e)
{
	return e.code() != pgml::ErrorCode::Internal;
}

// Runs f; false when it raised an error that bad input may cause (anything else escapes).
template <typename F>
bool guarded(F f)
{
	try {
		f();
		return true;
	} catch (const pgml::Error &e) {
		if (!expected(e))
			throw;
		return false;
	}
}

// The last steps of an aggregate-state target: the second state merged into the first as the
// combine function merges it (S: the state's protocol, agg_state.hpp), then both decoded.
template <typename S, typename Decode>
void merge_and_decode(std::vector<double> &state, const std::vector<double> &other, Decode decode)
{
	if (!state.empty() && !other.empty())
		guarded([&]() { pgml::aggstate::grow_merge<S>(state, other); });
	guarded([&]() { decode(state); });
	guarded([&]() { decode(other); });
}

} // namespace pgml_fuzz
