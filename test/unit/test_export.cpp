// The export envelope (ml_export / ml_import): round trips, and fuzzing of decode_export with
// every truncation, random byte flips, and body mutations whose checksum has been fixed up.
// Also Model::predict_batch against predict() row by row.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "export.hpp"
#include "serialize.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::ExportRecord;
using pgml::Model;
using namespace pgml_test;

namespace {

Table mixed_table(size_t n, bool text_target, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), text_col("c"), numeric_col("z")};
	t.target = text_target ? text_col("label") : numeric_col("y");
	const char *lv[] = {"a", "b", "c"};
	for (size_t i = 0; i < n; i++) {
		double x = rng.normal(), z = rng.uniform() * 10;
		int l = static_cast<int>(rng.below(3));
		bool xn = i % 6 == 1, cn = i % 9 == 4;
		Cell y = text_target ? str(x + 0.3 * l > 0.2 ? "yes" : (z > 5 ? "no" : "maybe"))
		                     : num(2 * x - z + l + 0.1 * rng.normal());
		t.add({xn ? null() : num(x), cn ? null() : str(lv[l]), num(z)}, y);
	}
	return t;
}

struct Sample {
	std::string name;
	std::unique_ptr<Model> model;
	Table rows;
};

std::vector<Sample> samples()
{
	std::vector<Sample> out;
	{
		Table t = mixed_table(60, false, 11);
		out.push_back({"linear", train(make_spec(t, Algorithm::LinearRegression, 0.2), t).model, t});
	}
	{
		Table t = mixed_table(60, true, 12);
		out.push_back({"multinomial", train(make_spec(t, Algorithm::LogisticRegression, 0.0), t).model, t});
	}
	{
		Table t = mixed_table(80, true, 13);
		out.push_back({"tree", train(make_spec(t, Algorithm::DecisionTree, 0.0), t).model, t});
	}
	for (auto &s : out) {
		std::vector<Cell> unseen, nulls;
		for (const auto &f : s.rows.features) {
			unseen.push_back(f.categorical() ? str("never seen") : num(0.5));
			nulls.push_back(null());
		}
		s.rows.add(unseen, null());
		s.rows.add(nulls, null());
	}
	return out;
}

ExportRecord record_for(const Model &m)
{
	ExportRecord r;
	pgml::ModelDescription d = pgml::describe_model(m);
	r.pg_ml_version = "0.2.0";
	r.source_database = "source";
	r.exported_at = "2026-11-30T10:00:00+00:00";
	r.exported_by = "alice";
	r.model_name = "m\xc3\xa9t\xc3\xa9o"; // UTF-8
	r.model_id = 7;
	r.version = 3;
	r.task = pgml::task_name(m.task);
	r.algorithm = pgml::algorithm_name(m.algorithm);
	r.has_target = m.has_target();
	r.target = m.target.name;
	r.relation = "public.t";
	r.features_json = d.features_json;
	r.classes_json = d.classes_json;
	r.hyperparams_json = d.hyperparams_json;
	r.preprocess_json = d.preprocess_json;
	r.preprocessing_state_json = d.state_json;
	r.metrics_json = "{\"test\": {\"r2\": 0.5}}";
	r.report_json = "{}";
	r.coefficients_json = d.coefficients_json;
	r.rows_train = 48;
	r.rows_test = 12;
	r.test_size = m.test_size;
	r.seed = static_cast<int64_t>(m.seed);
	r.data_fingerprint = "abc";
	r.trained_by = "alice";
	r.trained_at = "2026-11-30T09:00:00+00:00";
	r.read_ms = 1;
	r.fit_ms = 2;
	r.duration_ms = 3;
	r.blob = m.serialize();
	return r;
}

void rewrite_crc(std::vector<uint8_t> &env)
{
	uint32_t crc = pgml::crc32(env.data() + pgml::kExportHeaderSize, env.size() - pgml::kExportHeaderSize);
	std::memcpy(env.data() + 12, &crc, 4);
}

// decode_export must throw Error(InvalidBinary) (never another exception, never a crash), or
// give a model that predicts. Returns true if it was accepted.
bool decoded_safely(const std::vector<uint8_t> &env, std::string *why)
{
	std::unique_ptr<Model> m;
	try {
		pgml::decode_export(env.data(), env.size(), &m);
	} catch (const pgml::Error &e) {
		if (e.code() != ErrorCode::InvalidBinary)
			*why = std::string("error code is not InvalidBinary: ") + e.what();
		return false;
	} catch (const std::exception &e) {
		*why = std::string("non-pgml exception: ") + e.what();
		return false;
	}
	if (!m) {
		*why = "accepted without a model";
		return true;
	}
	try {
		std::vector<Cell> nulls(m->features.size());
		predict(*m, nulls);
	} catch (const pgml::Error &) {
	}
	return true;
}

} // namespace

TEST(Export, RoundTripKeepsEveryFieldAndPrediction)
{
	for (const Sample &s : samples()) {
		SCOPED_TRACE(s.name);
		ExportRecord r = record_for(*s.model);
		std::vector<uint8_t> env = pgml::encode_export(r);
		ASSERT_GT(env.size(), pgml::kExportHeaderSize);
		EXPECT_EQ(std::memcmp(env.data(), "PGMLEXPT", 8), 0);
		std::unique_ptr<Model> m;
		ExportRecord back = pgml::decode_export(env.data(), env.size(), &m);
		ASSERT_TRUE(m);
		EXPECT_EQ(back.model_name, r.model_name);
		EXPECT_EQ(back.version, 3);
		EXPECT_EQ(back.model_id, 7);
		EXPECT_EQ(back.metrics_json, r.metrics_json);
		EXPECT_EQ(back.coefficients_json, r.coefficients_json);
		EXPECT_EQ(back.trained_at, r.trained_at);
		EXPECT_EQ(back.rows_test, 12);
		EXPECT_EQ(back.blob, r.blob);
		EXPECT_EQ(pgml::encode_export(back), env);
		for (size_t i = 0; i < s.rows.size(); i++) {
			int c1 = -1, c2 = -2;
			EXPECT_EQ(predict(*s.model, s.rows.rows[i], &c1), predict(*m, s.rows.rows[i], &c2)) << "row " << i;
			EXPECT_EQ(c1, c2);
		}
		std::string prov = pgml::import_provenance_json(back, env.size(), 1234);
		EXPECT_NE(prov.find("\"database\":\"source\""), std::string::npos) << prov;
		EXPECT_NE(prov.find("\"version\":3"), std::string::npos) << prov;
	}
}

TEST(Export, EveryTruncationIsRejected)
{
	for (const Sample &s : samples()) {
		SCOPED_TRACE(s.name);
		const std::vector<uint8_t> env = pgml::encode_export(record_for(*s.model));
		for (size_t len = 0; len < env.size(); len++) {
			std::vector<uint8_t> cut(env.begin(), env.begin() + static_cast<long>(len));
			expect_error([&] { std::unique_ptr<Model> m; pgml::decode_export(cut.data(), cut.size(), &m); },
			             ErrorCode::InvalidBinary);
		}
		// and with the header's length and checksum made to agree with the cut
		for (size_t len = pgml::kExportHeaderSize; len < env.size(); len++) {
			std::vector<uint8_t> cut(env.begin(), env.begin() + static_cast<long>(len));
			uint64_t body = len - pgml::kExportHeaderSize;
			std::memcpy(cut.data() + 16, &body, 8);
			rewrite_crc(cut);
			expect_error([&] { std::unique_ptr<Model> m; pgml::decode_export(cut.data(), cut.size(), &m); },
			             ErrorCode::InvalidBinary);
		}
	}
}

TEST(Export, RandomByteFlipsAreRejected)
{
	Rng rng(99);
	for (const Sample &s : samples()) {
		SCOPED_TRACE(s.name);
		const std::vector<uint8_t> env = pgml::encode_export(record_for(*s.model));
		for (int trial = 0; trial < 3000; trial++) {
			std::vector<uint8_t> b = env;
			int flips = 1 + static_cast<int>(rng.below(3));
			for (int f = 0; f < flips; f++)
				b[rng.below(b.size())] ^= static_cast<uint8_t>(1 + rng.below(255));
			if (b == env)
				continue;
			std::string why;
			EXPECT_FALSE(decoded_safely(b, &why)) << "trial " << trial;
			EXPECT_TRUE(why.empty()) << why;
		}
	}
}

TEST(Export, MutationsWithAFixedChecksumNeverCrash)
{
	Rng rng(7);
	for (const Sample &s : samples()) {
		SCOPED_TRACE(s.name);
		const std::vector<uint8_t> env = pgml::encode_export(record_for(*s.model));
		for (int trial = 0; trial < 3000; trial++) {
			std::vector<uint8_t> b = env;
			size_t at = pgml::kExportHeaderSize + rng.below(b.size() - pgml::kExportHeaderSize);
			b[at] ^= static_cast<uint8_t>(1 + rng.below(255));
			rewrite_crc(b);
			std::string why;
			decoded_safely(b, &why);
			EXPECT_TRUE(why.empty()) << "trial " << trial << ": " << why;
		}
	}
}

TEST(Export, HeaderErrorsSayWhatIsWrong)
{
	Sample s = std::move(samples()[0]);
	const std::vector<uint8_t> env = pgml::encode_export(record_for(*s.model));
	auto decode = [](const std::vector<uint8_t> &b) {
		std::unique_ptr<Model> m;
		pgml::decode_export(b.data(), b.size(), &m);
	};
	std::vector<uint8_t> b = env;
	b[0] = 'X';
	EXPECT_NE(expect_error([&] { decode(b); }, ErrorCode::InvalidBinary).detail().find("magic"), std::string::npos);
	b = env;
	b[8] = 2; // format 2
	EXPECT_NE(std::string(expect_error([&] { decode(b); }, ErrorCode::InvalidBinary).what()).find("format 2"),
	          std::string::npos);
	b = env;
	b[10] = 1; // flags
	expect_error([&] { decode(b); }, ErrorCode::InvalidBinary);
	b = env;
	b.push_back(0);
	EXPECT_NE(expect_error([&] { decode(b); }, ErrorCode::InvalidBinary).detail().find("declares"), std::string::npos);
	b = env;
	b.back() ^= 1;
	EXPECT_NE(expect_error([&] { decode(b); }, ErrorCode::InvalidBinary).detail().find("checksum"), std::string::npos);
	// the model blob itself is the raw blob format, not an envelope
	std::vector<uint8_t> blob = s.model->serialize();
	expect_error([&] { decode(blob); }, ErrorCode::InvalidBinary);
}

TEST(Export, MetadataMustDescribeTheModel)
{
	Sample s = std::move(samples()[1]);
	auto rejects = [](const ExportRecord &r, const char *needle) {
		std::vector<uint8_t> env = pgml::encode_export(r);
		pgml::Error e = expect_error(
			[&] {
				std::unique_ptr<Model> m;
				pgml::decode_export(env.data(), env.size(), &m);
			},
			ErrorCode::InvalidBinary);
		EXPECT_NE(e.detail().find(needle), std::string::npos) << e.detail();
	};
	ExportRecord r = record_for(*s.model);
	r.task = "regression";
	rejects(r, "task");
	r = record_for(*s.model);
	r.algorithm = "ridge";
	rejects(r, "algorithm");
	r = record_for(*s.model);
	r.target = "other";
	rejects(r, "target");
	r = record_for(*s.model);
	r.features_json = "[]";
	rejects(r, "features");
	r = record_for(*s.model);
	r.classes_json = "[\"a\",\"b\"]";
	rejects(r, "classes");
	r = record_for(*s.model);
	r.relation = "bad \xff utf-8";
	rejects(r, "UTF-8");
	r = record_for(*s.model);
	r.relation = std::string("nul\0inside", 10);
	rejects(r, "UTF-8");
	r = record_for(*s.model);
	r.version = 0;
	rejects(r, "version");
	r = record_for(*s.model);
	r.blob[30] ^= 0xFF; // a corrupt model inside
	rejects(r, "model blob");
}

TEST(PredictBatch, EqualsPredictRowByRow)
{
	for (const Sample &s : samples()) {
		SCOPED_TRACE(s.name);
		const Model &m = *s.model;
		const size_t n = s.rows.size(), nf = m.features.size();
		const size_t nout = static_cast<size_t>(std::max(1, m.n_outputs()));
		std::vector<pgml::Value> vals(n * nf);
		for (size_t i = 0; i < n; i++)
			for (size_t c = 0; c < nf; c++) {
				const Cell &cell = s.rows.rows[i][c];
				pgml::Value &v = vals[i * nf + c];
				v.isnull = cell.null;
				v.num = cell.num;
				if (!cell.null && m.features[c].categorical()) {
					v.str = cell.str.c_str();
					v.len = cell.str.size();
				}
			}
		std::vector<double> out(n * nout);
		std::vector<int> klass(n);
		m.predict_batch(vals.data(), n, out.data(), klass.data());
		for (size_t i = 0; i < n; i++) {
			int k = -1;
			std::vector<double> one = predict(m, s.rows.rows[i], &k);
			EXPECT_EQ(klass[i], k) << "row " << i;
			for (size_t j = 0; j < nout; j++)
				EXPECT_NEAR(out[i * nout + j], one[j], 1e-12 * std::max(1.0, std::fabs(one[j]))) << "row " << i;
		}
	}
}
