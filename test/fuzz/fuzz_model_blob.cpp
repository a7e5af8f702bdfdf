// libFuzzer target: the model blob decoder (Model::deserialize, serialize.cpp / model.cpp and
// every estimator's reader), as ml_predict, ml_deploy, ml_export and ml_eval_stats reach it.
//
// The input is a blob. It is decoded as given, and once more with its header's length and
// checksum fixed up so that mutations reach the payload. A blob that decodes is used: a
// few rows predicted one at a time and as a batch, its descriptions written, and it is
// re-encoded: the encoding must decode again to the same bytes.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "fuzz_model.hpp"

namespace {

void decode(const uint8_t *data, size_t size)
{
	std::unique_ptr<pgml::Model> m;
	try {
		m = pgml::Model::deserialize(data, size);
	} catch (const pgml::Error &e) {
		if (!pgml_fuzz::expected(e))
			throw;
		return;
	}
	try {
		pgml_fuzz::use_model(*m, data, size);
	} catch (const pgml::Error &e) {
		// predicting may refuse a row (DataException; a per-group model's row of a group it has
		// no model for and no fallback: InvalidParameter, 22023, as ml_predict reports it); a
		// decoded model must otherwise work (and a forged model's arithmetic may overflow: 22003)
		if (e.code() != pgml::ErrorCode::DataException && e.code() != pgml::ErrorCode::ProgramLimit &&
		    e.code() != pgml::ErrorCode::NumericOutOfRange && e.code() != pgml::ErrorCode::InvalidParameter)
			throw;
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode(data, size);
	if (size >= pgml::kHeaderSize) {
		std::vector<uint8_t> fixed = pgml_fuzz::fix_blob_header(data, size);
		if (std::memcmp(fixed.data(), data, size) != 0)
			decode(fixed.data(), fixed.size());
	}
	return 0;
}
