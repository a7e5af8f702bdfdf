// Unit tests for the blob primitives: crc32, Writer / Reader, seal_blob / open_blob.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "serialize.hpp"
#include "test_util.hpp"

using pgml::ErrorCode;
using pgml::Reader;
using pgml::Writer;
using pgml_test::expect_error;

namespace {

std::vector<uint8_t> bytes_of(const std::string &s) { return std::vector<uint8_t>(s.begin(), s.end()); }

} // namespace

TEST(Crc32, KnownCheckValue)
{
	auto b = bytes_of("123456789");
	EXPECT_EQ(pgml::crc32(b.data(), b.size()), 0xCBF43926u);
}

TEST(Crc32, EmptyAndOtherKnownValues)
{
	EXPECT_EQ(pgml::crc32(nullptr, 0), 0u);
	auto a = bytes_of("a");
	EXPECT_EQ(pgml::crc32(a.data(), a.size()), 0xE8B7BE43u); // zlib.crc32(b"a")
	auto q = bytes_of("The quick brown fox jumps over the lazy dog");
	EXPECT_EQ(pgml::crc32(q.data(), q.size()), 0x414FA339u);
}

TEST(WriterReader, RoundTripsEveryPrimitive)
{
	Writer w;
	w.u8(0xAB);
	w.u16(0xBEEF);
	w.u32(0xDEADBEEFu);
	w.u64(0x0123456789ABCDEFull);
	w.i64(-1234567890123LL);
	w.f64(-0.1);
	w.f64(std::numeric_limits<double>::infinity());
	w.str("");
	w.str(std::string("nul\0inside", 10));
	Eigen::VectorXd v(3);
	v << 1.5, -2.25, 1e300;
	w.vec(v);
	w.vec(Eigen::VectorXd());
	Eigen::MatrixXd m(2, 3);
	m << 1, 2, 3, 4, 5, 6;
	w.mat(m);
	w.mat(Eigen::MatrixXd(0, 4));

	const std::vector<uint8_t> &b = w.bytes();
	// fixed layout: little-endian integers
	ASSERT_GE(b.size(), 3u);
	EXPECT_EQ(b[0], 0xAB);
	EXPECT_EQ(b[1], 0xEF);
	EXPECT_EQ(b[2], 0xBE);

	Reader r(b.data(), b.size());
	EXPECT_EQ(r.u8(), 0xAB);
	EXPECT_EQ(r.u16(), 0xBEEF);
	EXPECT_EQ(r.u32(), 0xDEADBEEFu);
	EXPECT_EQ(r.u64(), 0x0123456789ABCDEFull);
	EXPECT_EQ(r.i64(), -1234567890123LL);
	EXPECT_EQ(r.f64(), -0.1);
	EXPECT_EQ(r.f64(), std::numeric_limits<double>::infinity());
	EXPECT_EQ(r.str(), "");
	EXPECT_EQ(r.str(), std::string("nul\0inside", 10));
	Eigen::VectorXd v2 = r.vec();
	EXPECT_EQ(v2, v);
	EXPECT_EQ(r.vec().size(), 0);
	Eigen::MatrixXd m2 = r.mat();
	EXPECT_EQ(m2, m);
	Eigen::MatrixXd e = r.mat();
	EXPECT_EQ(e.rows(), 0);
	EXPECT_EQ(e.cols(), 4);
	EXPECT_TRUE(r.at_end());
	expect_error([&] { r.u8(); }, ErrorCode::DataCorrupted);
}

TEST(WriterReader, ThrowsPastTheEnd)
{
	Writer w;
	w.u32(7);
	const auto &b = w.bytes();
	{
		Reader r(b.data(), b.size());
		expect_error([&] { r.u64(); }, ErrorCode::DataCorrupted);
	}
	{
		Reader r(b.data(), b.size());
		r.u16();
		expect_error([&] { r.u32(); }, ErrorCode::DataCorrupted);
	}
	{
		Reader r(b.data(), 0);
		expect_error([&] { r.u8(); }, ErrorCode::DataCorrupted);
		expect_error([&] { r.f64(); }, ErrorCode::DataCorrupted);
		expect_error([&] { r.str(); }, ErrorCode::DataCorrupted);
		expect_error([&] { r.vec(); }, ErrorCode::DataCorrupted);
		expect_error([&] { r.mat(); }, ErrorCode::DataCorrupted);
	}
	// a string whose declared length runs one byte past the end
	Writer s;
	s.str("hello");
	std::vector<uint8_t> sb = s.bytes();
	sb.pop_back();
	Reader rs(sb.data(), sb.size());
	expect_error([&] { rs.str(); }, ErrorCode::DataCorrupted);
}

TEST(WriterReader, RejectsAbsurdCounts)
{
	for (uint64_t n : {uint64_t(3), uint64_t(1) << 40, std::numeric_limits<uint64_t>::max(),
	                   std::numeric_limits<uint64_t>::max() / 8 + 1}) {
		Writer w;
		w.u64(n);
		w.u64(0); // 8 more bytes: room for one double, or 8 chars
		const auto &b = w.bytes();
		Reader rv(b.data(), b.size());
		expect_error([&] { rv.vec(); }, ErrorCode::DataCorrupted);
		Reader rc(b.data(), b.size());
		expect_error([&] { rc.count(4); }, ErrorCode::DataCorrupted);
		if (n > 8) {
			Reader rs(b.data(), b.size());
			expect_error([&] { rs.str(); }, ErrorCode::DataCorrupted);
		}
	}
	// count(0): only a sanity bound
	{
		Writer w;
		w.u64(uint64_t(1) << 25);
		Reader r(w.bytes().data(), w.bytes().size());
		expect_error([&] { r.count(0); }, ErrorCode::DataCorrupted);
	}
	{
		Writer w;
		w.u64(2);
		w.u64(0);
		Reader r(w.bytes().data(), w.bytes().size());
		EXPECT_EQ(r.count(4), 2u); // exactly fits
	}
	// matrices: huge dimensions, products that would overflow, and a product one too big
	const uint64_t big = uint64_t(1) << 32;
	for (auto rc : std::vector<std::pair<uint64_t, uint64_t>>{
	         {big, big}, {uint64_t(1) << 30, uint64_t(1) << 30}, {1, uint64_t(1) << 31}, {2, 2},
	         {std::numeric_limits<uint64_t>::max(), 0}, {0, std::numeric_limits<uint64_t>::max()}}) {
		Writer w;
		w.u64(rc.first);
		w.u64(rc.second);
		w.f64(1);
		w.f64(2);
		w.f64(3); // room for 3 doubles
		Reader r(w.bytes().data(), w.bytes().size());
		expect_error([&] { r.mat(); }, ErrorCode::DataCorrupted);
	}
}

TEST(Blob, SealAndOpenRoundTrip)
{
	std::vector<uint8_t> payload = bytes_of("some payload bytes");
	std::vector<uint8_t> blob = pgml::seal_blob(3, payload);
	ASSERT_EQ(blob.size(), pgml::kHeaderSize + payload.size());
	EXPECT_EQ(std::memcmp(blob.data(), "PGML", 4), 0);
	uint32_t crc;
	std::memcpy(&crc, blob.data() + 16, 4);
	EXPECT_EQ(crc, pgml::crc32(payload.data(), payload.size()));
	const uint8_t *p = nullptr;
	pgml::BlobHeader h = pgml::open_blob(blob.data(), blob.size(), &p);
	EXPECT_EQ(h.format, pgml::kFormatVersion);
	EXPECT_EQ(h.kind, 3);
	EXPECT_EQ(h.length, payload.size());
	EXPECT_EQ(p, blob.data() + pgml::kHeaderSize);
	EXPECT_EQ(std::memcmp(p, payload.data(), payload.size()), 0);
}

TEST(Blob, OpenRejectsBadHeaders)
{
	std::vector<uint8_t> good = pgml::seal_blob(1, bytes_of("abc"));
	const uint8_t *p = nullptr;
	auto open = [&](const std::vector<uint8_t> &b) { pgml::open_blob(b.data(), b.size(), &p); };
	for (size_t len = 0; len < good.size(); len++) {
		std::vector<uint8_t> t(good.begin(), good.begin() + static_cast<long>(len));
		expect_error([&] { open(t); }, ErrorCode::DataCorrupted);
	}
	auto bad = good;
	bad[0] = 'X';
	expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
	bad = good;
	bad[4] = 0; // format 0
	expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
	bad = good;
	bad[4] = static_cast<uint8_t>(pgml::kFormatVersion + 1); // a newer format
	pgml::Error e = expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
	EXPECT_NE(std::string(e.what()).find("unsupported"), std::string::npos) << e.what();
	bad = good;
	bad[8]++; // length
	expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
	bad = good;
	bad[16] ^= 1; // checksum
	expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
	bad = good;
	bad.back() ^= 0x80; // payload
	expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
	bad = good;
	bad.push_back(0); // trailing byte
	expect_error([&] { open(bad); }, ErrorCode::DataCorrupted);
}
