// libFuzzer target: the estimator readers that sit behind a checksum of their own inside the
// model blob (decision_tree, random_forest: tree.cpp's read_checked; gradient_boosting: its
// model checksum, the validator of xgboost's JSON model, then xgboost itself), which
// fuzz_model_blob's mutations rarely get past.
//
// Input: [algorithm: 0 decision_tree, 1 random_forest, 2 gradient_boosting][task: 0 regression,
// 1 classification][p - 1][K - 2][u16 encoding version], then
//   decision_tree / random_forest: the body read_checked returns
//   gradient_boosting:             [u32 rounds][u32 best iteration] the model text
// The target wraps it with the right checksum, reads it as Model::deserialize would with that
// shape, predicts (and, for the trees, explains) a few rows, and re-encodes it: the encoding
// must read back to the same bytes.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "estimator.hpp"
#include "fuzz_input.hpp"
#include "serialize.hpp"

namespace {

const pgml::Algorithm kAlgorithms[] = {pgml::Algorithm::DecisionTree, pgml::Algorithm::RandomForest,
                                       pgml::Algorithm::GradientBoosting};

void use(const pgml::Estimator &est, const pgml::EstimatorShape &shape, const pgml::AlgorithmDef &def)
{
	const size_t p = static_cast<size_t>(shape.p);
	const size_t nout = shape.task == pgml::Task::Classification ? static_cast<size_t>(shape.n_classes) : 1;
	const double fills[] = {0.0, 1.5, -3.0, est.native_missing() ? NAN : 0.25};
	std::vector<double> z(p * 4);
	for (size_t r = 0; r < 4; r++)
		for (size_t j = 0; j < p; j++)
			z[r * p + j] = j % 2 ? fills[r] : -fills[r];
	std::vector<double> out(nout * 4);
	std::vector<int> klass(4);
	for (size_t r = 0; r < 4; r++) {
		int k = est.predict(z.data() + r * p, out.data());
		if (shape.task == pgml::Task::Classification && (k < 0 || k >= shape.n_classes))
			pgml_fuzz::fail("predict returned a class out of range");
	}
	est.predict_many(z.data(), 4, p, nout, out.data(), klass.data());
	(void)est.importance();
	// tree SHAP over the decoded covers (trees without covers say they cannot)
	if (def.id != pgml::Algorithm::GradientBoosting) {
		std::vector<double> c(p + 1);
		for (size_t r = 0; r < 4; r++)
			try {
				est.contributions(z.data() + r * p, static_cast<int>(r % nout), c.data());
			} catch (const pgml::Error &e) {
				if (e.code() != pgml::ErrorCode::FeatureNotSupported)
					throw;
			}
	}
	pgml::Writer w;
	est.write(w);
	pgml::Reader r(w.bytes().data(), w.bytes().size());
	std::unique_ptr<pgml::Estimator> again = def.read(r, shape);
	pgml::Writer w2;
	again->write(w2);
	if (w2.bytes() != w.bytes() || !r.at_end())
		pgml_fuzz::fail("a re-encoded estimator does not round-trip");
}

void run(const uint8_t *data, size_t size)
{
	if (size < 6)
		return;
	const pgml::Algorithm a = kAlgorithms[data[0] % 3];
	const pgml::AlgorithmDef &def = pgml::algorithm_def(a);
	pgml::EstimatorShape shape;
	shape.task = data[1] % 2 ? pgml::Task::Classification : pgml::Task::Regression;
	shape.p = 1 + data[2] % 16;
	shape.n_classes = shape.task == pgml::Task::Classification ? 2 + data[3] % 4 : 0;
	uint16_t version;
	std::memcpy(&version, data + 4, 2);
	pgml::Writer w;
	if (a != pgml::Algorithm::GradientBoosting) {
		const std::string body(reinterpret_cast<const char *>(data + 6), size - 6);
		w.u16(version);
		w.str(body);
		w.u32(pgml::crc32(data + 6, size - 6));
	} else {
		if (size < 14)
			return;
		uint32_t rounds, best;
		std::memcpy(&rounds, data + 6, 4);
		std::memcpy(&best, data + 10, 4);
		// the fields, then the model text; the checksum covers both (gradient_boosting.cpp)
		w.u16(version);
		w.u8(static_cast<uint8_t>(shape.task));
		w.u32(static_cast<uint32_t>(shape.n_classes));
		w.u32(static_cast<uint32_t>(shape.p));
		w.u32(rounds);
		w.u32(best);
		std::vector<uint8_t> covered = w.bytes();
		covered.insert(covered.end(), data + 14, data + size);
		w.str(std::string(reinterpret_cast<const char *>(data + 14), size - 14));
		w.u32(pgml::crc32(covered.data(), covered.size()));
	}
	std::unique_ptr<pgml::Estimator> est;
	try {
		pgml::Reader r(w.bytes().data(), w.bytes().size());
		est = def.read(r, shape);
	} catch (const pgml::Error &e) {
		if (!pgml_fuzz::expected(e))
			throw;
		return;
	}
	use(*est, shape, def);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	return 0;
}
