// pg_ml core: the model blob format.
//
// A blob is a fixed header followed by a payload:
//   offset 0  magic       4 bytes  "PGML"
//   offset 4  format      u16      blob format version (kFormatVersion; readers keep a branch per old one)
//   offset 6  kind        u16      model kind (ModelKind)
//   offset 8  length      u64      payload length in bytes
//   offset 16 checksum    u32      CRC-32 (IEEE, as zlib) of the payload
//   offset 20 payload
// All integers little-endian, doubles IEEE-754 binary64 little-endian.
// Format 2 (pg_ml 0.3.0) binds the blob to its catalog row: the payload starts with the
// model's id and version (model.cpp), under the checksum. Format 1 (0.1.0, 0.2.0) has no
// binding; such blobs are still read, bound by their kind only.
// A blob is untrusted input: every read is bounds-checked and every failure is an
// Error(DataCorrupted).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"

namespace pgml {

constexpr uint16_t kFormatVersion = 3;
constexpr uint16_t kFirstBoundFormat = 2;   // the first format whose payload carries the binding
constexpr uint16_t kFirstPreciseFormat = 3; // the first whose statistics may carry their low parts (precise pass)
constexpr size_t kHeaderSize = 20;

uint32_t crc32(const uint8_t *data, size_t len);

// Appends primitives to a byte buffer.
class Writer {
  public:
	void u8(uint8_t v) { buf_.push_back(v); }
	void u16(uint16_t v) { put(&v, 2); }
	void u32(uint32_t v) { put(&v, 4); }
	void u64(uint64_t v) { put(&v, 8); }
	void i64(int64_t v) { put(&v, 8); }
	void i32(int32_t v) { put(&v, 4); }
	void f64(double v) { put(&v, 8); }
	void str(const std::string &s);
	void vec(const Eigen::VectorXd &v);
	void mat(const Eigen::MatrixXd &m);
	std::vector<uint8_t> &bytes() { return buf_; }

  private:
	void put(const void *p, size_t n); // little-endian hosts only (checked at compile time in serialize.cpp)
	std::vector<uint8_t> buf_;
};

// Reads primitives from an untrusted byte range; throws Error(DataCorrupted) past the end.
class Reader {
  public:
	Reader(const uint8_t *data, size_t len) : p_(data), end_(data + len) {}
	uint8_t u8();
	uint16_t u16();
	uint32_t u32();
	uint64_t u64();
	int64_t i64();
	int32_t i32();
	double f64();
	std::string str();
	Eigen::VectorXd vec();
	Eigen::MatrixXd mat();
	// a count of elements each at least elem_size bytes long: rejects counts the rest cannot hold
	size_t count(size_t elem_size);
	bool at_end() const { return p_ == end_; }

  private:
	void get(void *out, size_t n);
	const uint8_t *p_;
	const uint8_t *end_;
};

// Wraps a payload in the header.
std::vector<uint8_t> seal_blob(uint16_t kind, const std::vector<uint8_t> &payload);

struct BlobHeader {
	uint16_t format;
	uint16_t kind;
	uint64_t length;
	uint32_t checksum;
};

// Verifies magic, format, length and checksum; returns the header and points payload at the payload.
BlobHeader open_blob(const uint8_t *data, size_t len, const uint8_t **payload);

} // namespace pgml
