#include "serialize.hpp"

#include <array>

namespace pgml {

static_assert(sizeof(double) == 8, "IEEE-754 binary64 expected");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the blob writer assumes a little-endian host"
#endif

namespace {

// Builds the CRC-32 (reflected 0xEDB88320) lookup table once.
std::array<uint32_t, 256> make_crc_table()
{
	std::array<uint32_t, 256> t{};
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		t[i] = c;
	}
	return t;
}

[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

} // namespace

// CRC-32 as zlib computes it.
uint32_t crc32(const uint8_t *data, size_t len)
{
	static const std::array<uint32_t, 256> table = make_crc_table();
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++)
		c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

void Writer::put(const void *p, size_t n)
{
	const auto *b = static_cast<const uint8_t *>(p);
	buf_.insert(buf_.end(), b, b + n);
}

void Writer::str(const std::string &s)
{
	u64(s.size());
	put(s.data(), s.size());
}

void Writer::vec(const Eigen::VectorXd &v)
{
	u64(static_cast<uint64_t>(v.size()));
	put(v.data(), sizeof(double) * static_cast<size_t>(v.size()));
}

void Writer::mat(const Eigen::MatrixXd &m)
{
	u64(static_cast<uint64_t>(m.rows()));
	u64(static_cast<uint64_t>(m.cols()));
	put(m.data(), sizeof(double) * static_cast<size_t>(m.size()));
}

void Reader::get(void *out, size_t n)
{
	if (static_cast<size_t>(end_ - p_) < n)
		corrupt("The payload ends before a field it declares.");
	if (n > 0) // memcpy with a null pointer is undefined even for 0 bytes (an empty Eigen vector has data() == nullptr)
		std::memcpy(out, p_, n);
	p_ += n;
}

uint8_t Reader::u8() { uint8_t v; get(&v, 1); return v; }
uint16_t Reader::u16() { uint16_t v; get(&v, 2); return v; }
uint32_t Reader::u32() { uint32_t v; get(&v, 4); return v; }
uint64_t Reader::u64() { uint64_t v; get(&v, 8); return v; }
int64_t Reader::i64() { int64_t v; get(&v, 8); return v; }
int32_t Reader::i32() { int32_t v; get(&v, 4); return v; }
double Reader::f64() { double v; get(&v, 8); return v; }

size_t Reader::count(size_t elem_size)
{
	uint64_t n = u64();
	size_t left = static_cast<size_t>(end_ - p_);
	if (elem_size > 0 && n > left / elem_size)
		corrupt("A field declares more elements than the payload holds.");
	if (elem_size == 0 && n > (1u << 24))
		corrupt("A field declares an implausible number of elements.");
	return static_cast<size_t>(n);
}

std::string Reader::str()
{
	size_t n = count(1);
	std::string s(reinterpret_cast<const char *>(p_), n);
	p_ += n;
	return s;
}

Eigen::VectorXd Reader::vec()
{
	size_t n = count(sizeof(double));
	Eigen::VectorXd v(static_cast<Eigen::Index>(n));
	get(v.data(), n * sizeof(double));
	return v;
}

Eigen::MatrixXd Reader::mat()
{
	uint64_t rows = u64();
	uint64_t cols = u64();
	size_t left = static_cast<size_t>(end_ - p_);
	if (rows > (1u << 30) || cols > (1u << 30) || (rows * cols) > left / sizeof(double))
		corrupt("A matrix declares more elements than the payload holds.");
	Eigen::MatrixXd m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
	get(m.data(), static_cast<size_t>(rows * cols) * sizeof(double));
	return m;
}

std::vector<uint8_t> seal_blob(uint16_t kind, const std::vector<uint8_t> &payload)
{
	Writer w;
	w.u8('P');
	w.u8('G');
	w.u8('M');
	w.u8('L');
	w.u16(kFormatVersion);
	w.u16(kind);
	w.u64(payload.size());
	w.u32(crc32(payload.data(), payload.size()));
	std::vector<uint8_t> out = std::move(w.bytes());
	out.insert(out.end(), payload.begin(), payload.end());
	return out;
}

BlobHeader open_blob(const uint8_t *data, size_t len, const uint8_t **payload)
{
	if (len < kHeaderSize)
		corrupt("The blob is " + std::to_string(len) + " bytes long, shorter than its header.");
	if (std::memcmp(data, "PGML", 4) != 0)
		corrupt("The blob does not start with the pg_ml magic bytes.");
	Reader r(data + 4, kHeaderSize - 4);
	BlobHeader h;
	h.format = r.u16();
	h.kind = r.u16();
	h.length = r.u64();
	h.checksum = r.u32();
	if (h.format == 0 || h.format > kFormatVersion)
		throw Error(ErrorCode::DataCorrupted, "unsupported model blob format " + std::to_string(h.format),
		            "This build of pg_ml reads blob formats 1 to " + std::to_string(kFormatVersion) + ".",
		            "Upgrade pg_ml to the version that wrote this model.");
	if (h.length != len - kHeaderSize)
		corrupt("The header declares a payload of " + std::to_string(h.length) + " bytes but " +
		        std::to_string(len - kHeaderSize) + " follow it.");
	if (crc32(data + kHeaderSize, len - kHeaderSize) != h.checksum)
		corrupt("The payload checksum does not match the header.");
	*payload = data + kHeaderSize;
	return h;
}

} // namespace pgml
