// Shared by the fuzz targets that decode a model: uses a decoded model the way the glue does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "export.hpp"
#include "fuzz_input.hpp"
#include "model.hpp"

namespace pgml_fuzz {

// A few rows predicted one at a time and as a batch (values from data), one explained, the
// model's descriptions written, and its re-encoding decoded again: it must give the same bytes.
inline void use_model(const pgml::Model &m, const uint8_t *data, size_t size)
{
	const size_t nf = m.features.size();
	const size_t nout = static_cast<size_t>(std::max(1, m.n_outputs()));
	// rows: all NULL, zeros / a known level, then values from the input's bytes
	ByteSource src(data, size);
	const int kRows = 4;
	std::vector<std::string> strs(nf * kRows);
	std::vector<pgml::Value> vals(nf * kRows);
	for (int r = 0; r < kRows; r++)
		for (size_t c = 0; c < nf; c++) {
			pgml::Value &v = vals[static_cast<size_t>(r) * nf + c];
			std::string &s = strs[static_cast<size_t>(r) * nf + c];
			const bool cat = m.features[c].categorical();
			// a per-group model's features are its groups' (and its group columns): no levels of its own
			static const std::vector<std::string> kNone;
			const std::vector<std::string> &levels = c < m.prep.columns.size() ? m.prep.columns[c].levels : kNone;
			v.isnull = r == 0 || (r >= 2 && src.u8() % 5 == 0);
			if (v.isnull)
				continue;
			if (cat) {
				s = r == 1 ? (levels.empty() ? std::string("x") : levels[0]) : src.str(levels);
				v.str = s.data();
				v.len = s.size();
			} else {
				v.num = r == 1 ? 0.0 : src.num();
				if (!std::isfinite(v.num))
					v.num = 1; // predict refuses non-finite values (the glue passes none)
			}
		}
	std::vector<double> out(nout * kRows), out1(nout);
	std::vector<int> klass(kRows);
	int64_t unseen = 0;
	for (int r = 0; r < kRows; r++) {
		int k = 0;
		try {
			k = m.predict(vals.data() + static_cast<size_t>(r) * nf, out1.data(), &unseen);
		} catch (const pgml::Error &e) {
			// a per-group model without a model for the row's group (22023, as ml_predict says)
			if (!m.grouped || e.code() != pgml::ErrorCode::InvalidParameter)
				throw;
			continue;
		}
		if (m.task == pgml::Task::Classification && (k < 0 || k >= m.n_classes()))
			fail("predict returned a class out of range");
	}
	try {
		m.predict_batch(vals.data(), kRows, out.data(), klass.data(), &unseen);
	} catch (const pgml::Error &e) {
		if (!m.grouped || e.code() != pgml::ErrorCode::InvalidParameter)
			throw;
	}
	// ml_explain of a row (an algorithm it does not explain, or a tree without covers: 0A000)
	try {
		(void)m.explain(vals.data() + nf);
	} catch (const pgml::Error &e) {
		if (e.code() != pgml::ErrorCode::FeatureNotSupported)
			throw;
	}
	(void)m.coefficients_json();
	(void)pgml::describe_model(m);

	// re-encode: the encoding must decode again, to the same bytes
	std::vector<uint8_t> again = m.serialize();
	std::unique_ptr<pgml::Model> m2 = pgml::Model::deserialize(again.data(), again.size());
	if (m2->serialize() != again)
		fail("a re-encoded model does not round-trip");
}

} // namespace pgml_fuzz
