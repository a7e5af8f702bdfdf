// libFuzzer target: the export envelope decoder (decode_export, export.cpp), as ml_import
// reaches it with bytes a user hands in.
//
// The input is an envelope. It is decoded as given, and once more with the checksums fixed
// up (the envelope's, and the model blob's inside it when the fields before it can be
// walked) so that mutations reach every field and the model's readers. An envelope that
// decodes is re-encoded (it must decode again to the same bytes) and its model is used.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "export.hpp"
#include "fuzz_input.hpp"
#include "fuzz_model.hpp"

namespace {

// The envelope body's fields before the blob, in order (export.hpp): s string (u64 length +
// bytes), 8 / 4 / 1 fixed-size fields.
const char kFields[] = "sssss84ss1ssssssssss8888sss888";

void decode(const uint8_t *data, size_t size)
{
	std::unique_ptr<pgml::Model> m;
	pgml::ExportRecord rec;
	try {
		rec = pgml::decode_export(data, size, &m);
	} catch (const pgml::Error &e) {
		if (!pgml_fuzz::expected(e))
			throw;
		return;
	}
	std::vector<uint8_t> again = pgml::encode_export(rec);
	std::unique_ptr<pgml::Model> m2;
	pgml::ExportRecord rec2 = pgml::decode_export(again.data(), again.size(), &m2);
	if (pgml::encode_export(rec2) != again)
		pgml_fuzz::fail("a re-encoded envelope does not round-trip");
	(void)pgml::import_provenance_json(rec, size, 0);
	try {
		pgml_fuzz::use_model(*m, data, size);
	} catch (const pgml::Error &e) {
		// (and a forged model's arithmetic may overflow: 22003, as ml_predict reports it)
		if (e.code() != pgml::ErrorCode::DataException && e.code() != pgml::ErrorCode::ProgramLimit &&
		    e.code() != pgml::ErrorCode::NumericOutOfRange)
			throw;
	}
}

// The envelope with its blob's and its own checksum and lengths fixed up.
std::vector<uint8_t> fix(const uint8_t *data, size_t size)
{
	std::vector<uint8_t> b(data, data + size);
	size_t o = pgml::kExportHeaderSize;
	for (const char *f = kFields; *f && o <= size; f++) {
		if (*f == 's') {
			uint64_t n;
			if (size - o < 8)
				return b;
			std::memcpy(&n, data + o, 8);
			if (n > size - o - 8)
				return b;
			o += 8 + n;
		} else {
			o += static_cast<size_t>(*f - '0');
		}
	}
	if (o <= size && size - o >= 8) {
		// the blob: its declared length is the rest, its header fixed as the blob target does
		uint64_t n = size - o - 8;
		std::memcpy(b.data() + o, &n, 8);
		std::vector<uint8_t> blob = pgml_fuzz::fix_blob_header(b.data() + o + 8, n);
		std::copy(blob.begin(), blob.end(), b.begin() + static_cast<long>(o + 8));
	}
	uint64_t length = size - pgml::kExportHeaderSize;
	uint32_t crc = pgml::crc32(b.data() + pgml::kExportHeaderSize, length);
	std::memcpy(b.data() + 12, &crc, 4);
	std::memcpy(b.data() + 16, &length, 8);
	return b;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode(data, size);
	if (size >= pgml::kExportHeaderSize) {
		std::vector<uint8_t> fixed = fix(data, size);
		if (std::memcmp(fixed.data(), data, size) != 0)
			decode(fixed.data(), fixed.size());
	}
	return 0;
}
