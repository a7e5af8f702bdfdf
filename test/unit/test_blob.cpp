// Model blobs: serialize / deserialize round trips, and fuzzing of deserialize with
// bit flips, truncations, and payload mutations whose CRC has been fixed up.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "serialize.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::Model;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

// x numeric with NULLs, c categorical with a NULL level, z numeric.
Table regression_table(size_t n, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), text_col("c"), numeric_col("z")};
	t.target = numeric_col("y");
	const char *lv[] = {"a", "b", "c"};
	for (size_t i = 0; i < n; i++) {
		double x = rng.normal(), z = rng.uniform() * 10;
		int l = static_cast<int>(rng.below(3));
		bool xn = i % 6 == 1, cn = i % 9 == 4;
		t.add({xn ? null() : num(x), cn ? null() : str(lv[l]), num(z)}, num(2 * x - z + l + 0.1 * rng.normal()));
	}
	return t;
}

Table classification_table(size_t n, int K, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = text_col("label");
	const char *lv[] = {"p", "q"};
	for (size_t i = 0; i < n; i++) {
		int k = static_cast<int>(i % static_cast<size_t>(K));
		bool xn = i % 7 == 2;
		t.add({xn ? null() : num(2.0 * k + rng.normal()), i % 5 == 0 ? null() : str(lv[rng.below(2)])},
		      str("k" + std::to_string(k)));
	}
	return t;
}

struct Named {
	std::string name;
	std::unique_ptr<Model> model;
	Table rows; // rows to predict
};

std::vector<Named> sample_models()
{
	std::vector<Named> out;
	{
		Table t = regression_table(40, 61);
		out.push_back({"linear", train(make_spec(t, Algorithm::LinearRegression, 0.2), t).model, t});
	}
	{
		Table t = regression_table(30, 62);
		pgml::TrainSpec spec = make_spec(t, Algorithm::Ridge, 0.0);
		spec.hyperparams["alpha"] = OptionValue::of_number(0.5);
		spec.preprocess["columns.z.scale"] = OptionValue::of_string("minmax");
		spec.preprocess["columns.x.impute"] = OptionValue::of_string("constant");
		spec.preprocess["columns.x.impute_value"] = OptionValue::of_number(1.25);
		out.push_back({"ridge", train(spec, t).model, t});
	}
	{
		Table t = classification_table(30, 2, 63);
		out.push_back({"binary", train(make_spec(t, Algorithm::LogisticRegression, 0.2), t).model, t});
	}
	{
		Table t = classification_table(36, 3, 64);
		pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression, 0.0);
		spec.hyperparams["C"] = OptionValue::of_number(3);
		spec.preprocess["impute"] = OptionValue::of_string("median");
		out.push_back({"multinomial", train(spec, t).model, t});
	}
	{
		// trees with NULL numbers kept as missing values (direction bytes in the estimator body)
		Table t = regression_table(30, 69);
		pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.0);
		spec.hyperparams["max_depth"] = OptionValue::of_number(4);
		out.push_back({"decision_tree_native", train(spec, t).model, t});
	}
	{
		Table t = classification_table(30, 3, 70);
		pgml::TrainSpec spec = make_spec(t, Algorithm::RandomForest, 0.0);
		spec.hyperparams["n_estimators"] = OptionValue::of_number(3);
		spec.hyperparams["max_depth"] = OptionValue::of_number(3);
		out.push_back({"random_forest_native", train(spec, t).model, t});
	}
	// extra rows: unseen level, all NULL
	for (auto &n : out) {
		std::vector<Cell> unseen, nulls;
		for (const auto &f : n.rows.features) {
			unseen.push_back(f.categorical() ? str("never seen") : num(0.5));
			nulls.push_back(null());
		}
		n.rows.add(unseen, null());
		n.rows.add(nulls, null());
	}
	return out;
}

// A row suited to whatever columns m has (a categorical value, or a number).
std::vector<Cell> sample_row(const Model &m)
{
	std::vector<Cell> row;
	for (const auto &f : m.features)
		row.push_back(f.categorical() ? str("a") : num(1.5));
	return row;
}

void rewrite_crc(std::vector<uint8_t> &blob)
{
	uint32_t crc = pgml::crc32(blob.data() + pgml::kHeaderSize, blob.size() - pgml::kHeaderSize);
	std::memcpy(blob.data() + 16, &crc, 4);
}

// deserialize must either throw pgml::Error, or give a model that can predict (and be
// serialized again) without crashing. Returns true if it was accepted.
bool accepted_safely(const std::vector<uint8_t> &blob, std::string *why)
{
	std::unique_ptr<Model> m;
	try {
		m = Model::deserialize(blob.data(), blob.size());
	} catch (const pgml::Error &e) {
		if (e.code() != ErrorCode::DataCorrupted)
			*why = std::string("error code is not DataCorrupted: ") + e.what();
		return false;
	} catch (const std::exception &e) {
		*why = std::string("non-pgml exception: ") + e.what();
		return false;
	}
	try {
		std::vector<Cell> row = sample_row(*m);
		predict(*m, row);
		std::vector<Cell> nulls(m->features.size());
		predict(*m, nulls);
		std::vector<uint8_t> again = m->serialize();
		auto m2 = Model::deserialize(again.data(), again.size());
		m->coefficients_json();
		m->prep.to_json();
		// an accepted linear model can be retrained incrementally without crashing
		if (m->has_stats && pgml::algorithm_streams(m->algorithm) && m->encoder.dim() <= 256) {
			Table t;
			t.features = m->features;
			t.target = m->target;
			for (int i = 0; i < 3; i++)
				t.add(sample_row(*m), num(i));
			try {
				retrain(make_spec(t, m->algorithm, 0.0), *m, true, t);
			} catch (const pgml::Error &) {
			}
		}
	} catch (const pgml::Error &) {
	} catch (const std::exception &e) {
		*why = std::string("non-pgml exception after load: ") + e.what();
	}
	return true;
}

} // namespace

TEST(Blob, RoundTripGivesIdenticalPredictions)
{
	for (const Named &n : sample_models()) {
		SCOPED_TRACE(n.name);
		std::vector<uint8_t> blob = n.model->serialize();
		ASSERT_GT(blob.size(), pgml::kHeaderSize);
		EXPECT_EQ(std::memcmp(blob.data(), "PGML", 4), 0);
		auto m = Model::deserialize(blob.data(), blob.size());
		EXPECT_EQ(m->algorithm, n.model->algorithm);
		EXPECT_EQ(m->task, n.model->task);
		EXPECT_EQ(m->classes, n.model->classes);
		EXPECT_EQ(m->prep.feature_names, n.model->prep.feature_names);
		EXPECT_EQ(m->W, n.model->W);
		EXPECT_EQ(m->b, n.model->b);
		EXPECT_EQ(m->test_size, n.model->test_size);
		EXPECT_EQ(m->seed, n.model->seed);
		EXPECT_EQ(m->has_stats, n.model->has_stats);
		EXPECT_EQ(m->preprocess.to_json(), n.model->preprocess.to_json());
		EXPECT_EQ(m->hyperparams.to_json(), n.model->hyperparams.to_json());
		EXPECT_EQ(m->coefficients_json(), n.model->coefficients_json());
		EXPECT_EQ(m->prep.to_json(), n.model->prep.to_json());
		EXPECT_EQ(m->serialize(), blob);
		for (size_t i = 0; i < n.rows.size(); i++) {
			int c1 = -1, c2 = -2;
			std::vector<double> a = predict(*n.model, n.rows.rows[i], &c1);
			std::vector<double> b = predict(*m, n.rows.rows[i], &c2);
			EXPECT_EQ(a, b) << "row " << i;
			EXPECT_EQ(c1, c2);
			for (double v : a)
				EXPECT_TRUE(std::isfinite(v));
		}
	}
}

TEST(Blob, EveryBitFlipIsRejected)
{
	for (const Named &n : sample_models()) {
		SCOPED_TRACE(n.name);
		const std::vector<uint8_t> blob = n.model->serialize();
		std::vector<uint8_t> b = blob;
		for (size_t i = 0; i < b.size(); i++) {
			for (int bit = 0; bit < 8; bit++) {
				b[i] ^= static_cast<uint8_t>(1u << bit);
				try {
					Model::deserialize(b.data(), b.size());
					ADD_FAILURE() << "accepted a flip of bit " << bit << " of byte " << i;
				} catch (const pgml::Error &e) {
					EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
				}
				b[i] = blob[i];
			}
		}
	}
}

TEST(Blob, EveryTruncationIsRejected)
{
	for (const Named &n : sample_models()) {
		SCOPED_TRACE(n.name);
		const std::vector<uint8_t> blob = n.model->serialize();
		for (size_t len = 0; len < blob.size(); len++) {
			// a copy of exactly len bytes, so a read past the end is visible to ASan
			std::vector<uint8_t> t(blob.begin(), blob.begin() + static_cast<long>(len));
			const uint8_t *data = t.empty() ? nullptr : t.data();
			try {
				Model::deserialize(data, len);
				ADD_FAILURE() << "accepted a truncation to " << len << " bytes";
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
			}
		}
		// also with the header's length and checksum fixed up: the payload reader must notice
		for (size_t len = pgml::kHeaderSize; len < blob.size(); len++) {
			std::vector<uint8_t> t(blob.begin(), blob.begin() + static_cast<long>(len));
			uint64_t plen = len - pgml::kHeaderSize;
			std::memcpy(t.data() + 8, &plen, 8);
			rewrite_crc(t);
			try {
				Model::deserialize(t.data(), t.size());
				ADD_FAILURE() << "accepted a payload truncated to " << plen << " bytes";
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
			}
		}
		// and a trailing byte
		std::vector<uint8_t> t = blob;
		t.push_back(0);
		uint64_t plen = t.size() - pgml::kHeaderSize;
		std::memcpy(t.data() + 8, &plen, 8);
		rewrite_crc(t);
		expect_error([&] { Model::deserialize(t.data(), t.size()); }, ErrorCode::DataCorrupted);
	}
}

TEST(Blob, HeaderFieldsAreChecked)
{
	auto models = sample_models();
	const std::vector<uint8_t> blob = models[0].model->serialize();
	for (uint16_t kind : {0, 3, 4, 0xFFFF}) {
		std::vector<uint8_t> b = blob;
		std::memcpy(b.data() + 6, &kind, 2);
		expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
	}
	for (uint16_t format : {0, pgml::kFormatVersion + 1, 0xFFFF}) {
		std::vector<uint8_t> b = blob;
		std::memcpy(b.data() + 4, &format, 2);
		pgml::Error e = expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
		EXPECT_NE(std::string(e.what()).find("format"), std::string::npos) << e.what();
	}
	{
		// a current payload under an older format number: read as that format, it is corrupt
		std::vector<uint8_t> b = blob;
		uint16_t format = 1;
		std::memcpy(b.data() + 4, &format, 2);
		expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
	}
	for (uint64_t len : {uint64_t(0), uint64_t(blob.size()), ~uint64_t(0), uint64_t(blob.size() - pgml::kHeaderSize - 1)}) {
		std::vector<uint8_t> b = blob;
		std::memcpy(b.data() + 8, &len, 8);
		expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
	}
	// an all-zero or random buffer
	std::vector<uint8_t> zeros(blob.size(), 0);
	expect_error([&] { Model::deserialize(zeros.data(), zeros.size()); }, ErrorCode::DataCorrupted);
	Rng rng(65);
	std::vector<uint8_t> noise(blob.size());
	for (auto &v : noise)
		v = static_cast<uint8_t>(rng.gen());
	std::memcpy(noise.data(), "PGML\x01\x00\x01\x00", 8);
	expect_error([&] { Model::deserialize(noise.data(), noise.size()); }, ErrorCode::DataCorrupted);
	rewrite_crc(noise);
	uint64_t plen = noise.size() - pgml::kHeaderSize;
	std::memcpy(noise.data() + 8, &plen, 8);
	rewrite_crc(noise);
	expect_error([&] { Model::deserialize(noise.data(), noise.size()); }, ErrorCode::DataCorrupted);
}

TEST(Blob, PayloadMutationsWithValidCrcNeverCrash)
{
	// The CRC catches random corruption; with it fixed up, the structural checks are all that
	// stands between a crafted payload and the code that uses the model.
	const uint8_t patterns[] = {0x00, 0xFF, 0x7F, 0x80};
	for (const Named &n : sample_models()) {
		SCOPED_TRACE(n.name);
		const std::vector<uint8_t> blob = n.model->serialize();
		std::vector<uint8_t> b = blob;
		int accepted = 0, rejected = 0;
		for (size_t i = pgml::kHeaderSize; i < b.size(); i++) {
			std::vector<uint8_t> values;
			for (int bit = 0; bit < 8; bit++)
				values.push_back(static_cast<uint8_t>(blob[i] ^ (1u << bit)));
			for (uint8_t p : patterns)
				values.push_back(p);
			values.push_back(static_cast<uint8_t>(blob[i] + 1));
			values.push_back(static_cast<uint8_t>(blob[i] - 1));
			for (uint8_t v : values) {
				if (v == blob[i])
					continue;
				b[i] = v;
				rewrite_crc(b);
				std::string why;
				(accepted_safely(b, &why) ? accepted : rejected)++;
				EXPECT_TRUE(why.empty()) << "byte " << i << " = " << int(v) << ": " << why;
			}
			b[i] = blob[i];
		}
		// most structural damage is caught; the rest (changed numbers, names) is harmless
		EXPECT_GT(rejected, 0);
		RecordProperty(n.name + "_accepted", accepted);
		RecordProperty(n.name + "_rejected", rejected);
	}
}

namespace {

// Offset in the blob of a linear model's encoder section: the payload of the same model
// without statistics ends with the has_stats byte, and the encoder follows it.
size_t encoder_offset(const Model &m)
{
	Model copy = m;
	copy.has_stats = false;
	return copy.serialize().size() - 1; // less the last byte, format 3's precision flag
}

} // namespace

TEST(Blob, StreamingModelWithoutTargetSlotIsRejected)
{
	// Found by the fuzz above under ASan: an encoder with no target slot was accepted, and
	// an incremental retrain then read column -1 of the co-moment matrix (trainer.cpp).
	Table t = regression_table(30, 66);
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	std::vector<uint8_t> blob = r.model->serialize();
	const size_t enc = encoder_offset(*r.model);
	uint32_t q, target;
	std::memcpy(&q, blob.data() + enc, 4);
	std::memcpy(&target, blob.data() + enc + 4, 4);
	ASSERT_EQ(q, static_cast<uint32_t>(r.model->encoder.dim()));
	ASSERT_EQ(target, 1u); // slot 0, stored + 1
	std::vector<uint8_t> b = blob;
	uint32_t zero = 0;
	std::memcpy(b.data() + enc + 4, &zero, 4);
	rewrite_crc(b);
	expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
}

TEST(Blob, StatisticsNarrowerThanTheEncoderAreRejected)
{
	// q is only bounded by 2^20: a larger encoder than its statistics made an incremental
	// retrain grow the moments to q x q doubles (8 TB for q = 2^20)
	Table t = regression_table(30, 67);
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	std::vector<uint8_t> b = r.model->serialize();
	const size_t enc = encoder_offset(*r.model);
	uint32_t q = (1u << 20);
	std::memcpy(b.data() + enc, &q, 4);
	rewrite_crc(b);
	expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
}

TEST(Blob, RandomMultiByteMutationsWithValidCrcNeverCrash)
{
	// overwrite 1, 2, 4 or 8 bytes at random places with small, boundary or random values:
	// reaches counts, slot indices and dimensions that single-byte edits cannot
	Rng rng(68);
	for (const Named &n : sample_models()) {
		SCOPED_TRACE(n.name);
		const std::vector<uint8_t> blob = n.model->serialize();
		const size_t payload = blob.size() - pgml::kHeaderSize;
		for (int iter = 0; iter < 1500; iter++) {
			std::vector<uint8_t> b = blob;
			int edits = 1 + static_cast<int>(rng.below(3));
			for (int e = 0; e < edits; e++) {
				const size_t widths[] = {1, 2, 4, 8};
				size_t w = widths[rng.below(4)];
				if (w > payload)
					continue;
				size_t at = pgml::kHeaderSize + rng.below(payload - w + 1);
				uint64_t v;
				switch (rng.below(5)) {
				case 0: v = rng.below(4); break;
				case 1: v = rng.below(300); break;
				case 2: v = ~uint64_t(0) - rng.below(3); break;
				case 3: v = uint64_t(1) << rng.below(64); break;
				default: v = rng.gen(); break;
				}
				std::memcpy(b.data() + at, &v, w);
			}
			rewrite_crc(b);
			std::string why;
			accepted_safely(b, &why);
			EXPECT_TRUE(why.empty()) << "iteration " << iter << ": " << why;
		}
	}
}
