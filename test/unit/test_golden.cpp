// Golden blobs: models serialized by an earlier build must keep loading and predicting the
// same values. Normally the committed test/unit/data/golden_*.blob files are loaded and
// checked against the hard-coded predictions below.
//
// To regenerate (only when the blob format changes on purpose, with a new format version):
//   PGML_WRITE_GOLDEN=1 ./build/pgml_unit_tests --gtest_filter='Golden.*'
// which writes the blobs and prints the prediction tables to paste here.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

using pgml::Algorithm;
using pgml::Model;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

bool writing() { const char *v = std::getenv("PGML_WRITE_GOLDEN"); return v != nullptr && std::string(v) == "1"; }

std::string golden_path(const std::string &name) { return std::string(PGML_TEST_DATA) + "/golden_" + name + ".blob"; }

// Small fixed tables built from integers only.
Table regression_rows()
{
	Table t;
	t.features = {numeric_col("x"), text_col("color"), numeric_col("z")};
	t.target = numeric_col("y");
	const char *colors[] = {"red", "green", "blue"};
	for (int i = 0; i < 24; i++) {
		int x = (i * 7) % 11 - 5, z = (i * 5) % 13;
		int l = (i * 3 + i / 4) % 3;
		bool xn = i % 8 == 3, cn = i % 10 == 7;
		double y = 1.5 * x - 0.25 * z + (cn ? 0.5 : l) + ((i * 13) % 7 - 3) * 0.1;
		t.add({xn ? null() : num(x), cn ? null() : str(colors[l]), num(z)}, num(y));
	}
	return t;
}

Table classification_rows(int K)
{
	Table t;
	t.features = {numeric_col("a"), numeric_col("b"), text_col("kind")};
	t.target = text_col("label");
	const char *kinds[] = {"p", "q"};
	for (int i = 0; i < 30; i++) {
		int k = i % K;
		double a = 2.0 * k + ((i * 7) % 5 - 2) * 0.6, b = ((i * 3) % 7 - 3) * 0.5 - k;
		bool an = i % 9 == 4;
		t.add({an ? null() : num(a), num(b), i % 6 == 5 ? null() : str(kinds[(i / 2) % 2])}, str("c" + std::to_string(k)));
	}
	return t;
}

struct Golden {
	std::string name;
	std::function<std::unique_ptr<Model>()> build;
	std::vector<std::vector<Cell>> queries;
	std::vector<std::vector<double>> expected; // per query: the predict() outputs
	std::vector<int> expected_class;           // classification only
};

std::vector<Golden> goldens()
{
	std::vector<Golden> g;
	const std::vector<std::vector<Cell>> reg_q = {
	    {num(1), str("red"), num(4)}, {null(), str("blue"), num(0)}, {num(-3.5), null(), num(12)},
	    {num(2), str("purple"), num(7)}, {null(), null(), num(0)}};
	const std::vector<std::vector<Cell>> cls_q = {
	    {num(0), num(0), str("p")}, {num(3), num(-1.5), str("q")}, {null(), num(1), null()},
	    {num(-1), num(2), str("unseen")}, {num(4.5), num(-3), str("p")}};
	g.push_back({"linear",
	             [] {
		             Table t = regression_rows();
		             return train(make_spec(t, Algorithm::LinearRegression, 0.0), t).model;
	             },
	             reg_q,
	             {{1.2957763817838004}, {0.70883996789537829}, {-7.1899023382450302}, {1.7930508061321382},
	              {-0.023694914612851004}},
	             {}});
	g.push_back({"ridge",
	             [] {
		             Table t = regression_rows();
		             pgml::TrainSpec spec = make_spec(t, Algorithm::Ridge, 0.0);
		             spec.hyperparams["alpha"] = OptionValue::of_number(0.5);
		             spec.preprocess["columns.z.scale"] = OptionValue::of_string("minmax");
		             spec.preprocess["columns.x.impute"] = OptionValue::of_string("constant");
		             spec.preprocess["columns.x.impute_value"] = OptionValue::of_number(0.25);
		             return train(spec, t).model;
	             },
	             reg_q,
	             {{1.145856045824978}, {0.6468478610146331}, {-6.6944077127009765}, {1.7143877504450351},
	              {0.052002445787739354}},
	             {}});
	g.push_back({"logistic_binary",
	             [] {
		             Table t = classification_rows(2);
		             return train(make_spec(t, Algorithm::LogisticRegression, 0.0), t).model;
	             },
	             cls_q,
	             {{0.83645745739896005, 0.16354254260104001},
	              {0.045853872003477458, 0.95414612799652254},
	              {0.50447573526617961, 0.49552426473382039},
	              {0.98115267615104818, 0.018847323848951859},
	              {0.0020381876803307053, 0.99796181231966929}},
	             {0, 1, 0, 0, 1}});
	g.push_back({"logistic_multinomial",
	             [] {
		             Table t = classification_rows(3);
		             pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression, 0.0);
		             spec.hyperparams["C"] = OptionValue::of_number(2);
		             spec.preprocess["impute"] = OptionValue::of_string("median");
		             return train(spec, t).model;
	             },
	             cls_q,
	             {{0.83044307150840868, 0.16721521312590545, 0.0023417153656860234},
	              {0.02968139819227162, 0.66048931494570362, 0.30982928686202482},
	              {0.52996164492244624, 0.31364610009927518, 0.15639225497827861},
	              {0.98740514398262402, 0.012571607188641917, 2.3248828733964976e-05},
	              {0.00014978820349846768, 0.056175571318408578, 0.94367464047809302}},
	             {0, 1, 0, 0, 2}});
	return g;
}

std::vector<uint8_t> read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string literal(double v)
{
	char buf[40];
	std::snprintf(buf, sizeof buf, "%.17g", v);
	return buf;
}

} // namespace

TEST(Golden, BlobsLoadAndPredictFixedValues)
{
	for (const Golden &g : goldens()) {
		SCOPED_TRACE(g.name);
		const std::string path = golden_path(g.name);
		if (writing()) {
			std::unique_ptr<Model> m = g.build();
			std::vector<uint8_t> blob = m->serialize();
			std::ofstream out(path, std::ios::binary);
			out.write(reinterpret_cast<const char *>(blob.data()), static_cast<std::streamsize>(blob.size()));
			ASSERT_TRUE(out.good()) << path;
			std::string table = "{", classes = "{";
			for (size_t q = 0; q < g.queries.size(); q++) {
				int cls = -1;
				std::vector<double> p = predict(*m, g.queries[q], &cls);
				table += q ? ",\n {" : "{";
				for (size_t k = 0; k < p.size(); k++)
					table += (k ? ", " : "") + literal(p[k]);
				table += "}";
				classes += (q ? ", " : "") + std::to_string(cls);
			}
			std::printf("golden %s (%zu bytes):\n%s}\n%s}\n", g.name.c_str(), blob.size(), table.c_str(), classes.c_str());
			continue;
		}
		std::vector<uint8_t> blob = read_file(path);
		ASSERT_FALSE(blob.empty()) << "missing golden blob " << path;
		std::unique_ptr<Model> m = Model::deserialize(blob.data(), blob.size());
		ASSERT_EQ(g.expected.size(), g.queries.size());
		for (size_t q = 0; q < g.queries.size(); q++) {
			int cls = -1;
			std::vector<double> p = predict(*m, g.queries[q], &cls);
			ASSERT_EQ(p.size(), g.expected[q].size()) << "query " << q;
			for (size_t k = 0; k < p.size(); k++)
				EXPECT_NEAR(p[k], g.expected[q][k], 1e-12 * std::max(1.0, std::fabs(g.expected[q][k])))
				    << "query " << q << " output " << k;
			if (!g.expected_class.empty()) {
				EXPECT_EQ(cls, g.expected_class[q]) << "query " << q;
			}
		}
		// a loaded golden model serializes back to the same bytes
		EXPECT_EQ(m->serialize(), blob);
	}
}

TEST(Golden, BlobsDescribeTheirModels)
{
	if (writing())
		GTEST_SKIP() << "writing golden blobs";
	auto load = [](const std::string &name) {
		std::vector<uint8_t> blob = read_file(golden_path(name));
		if (blob.empty())
			throw std::runtime_error("missing golden blob " + name);
		return Model::deserialize(blob.data(), blob.size());
	};
	auto lin = load("linear");
	EXPECT_EQ(lin->algorithm, Algorithm::LinearRegression);
	EXPECT_EQ(lin->prep.feature_names,
	          (std::vector<std::string>{"x", "color=blue", "color=green", "color=red", "color=NULL", "z"}));
	EXPECT_TRUE(lin->has_stats);
	EXPECT_EQ(lin->stats.n(), 24);
	auto ridge = load("ridge");
	EXPECT_EQ(ridge->algorithm, Algorithm::Ridge);
	EXPECT_EQ(ridge->hyperparams.num("alpha"), 0.5);
	EXPECT_EQ(ridge->prep.columns[0].impute_value, 0.25);
	EXPECT_EQ(ridge->preprocess.for_column("z").scale, pgml::Scale::MinMax);
	auto bin = load("logistic_binary");
	EXPECT_EQ(bin->classes, (std::vector<std::string>{"c0", "c1"}));
	EXPECT_FALSE(bin->has_stats);
	auto multi = load("logistic_multinomial");
	EXPECT_EQ(multi->classes, (std::vector<std::string>{"c0", "c1", "c2"}));
	EXPECT_EQ(multi->hyperparams.num("C"), 2.0);
	EXPECT_EQ(multi->W.cols(), 3);
	// the incremental path still works from a golden linear model
	Table more = regression_rows();
	Trained inc = retrain(make_spec(more, Algorithm::LinearRegression, 0.0), *lin, true, more);
	EXPECT_EQ(inc.model->stats.n(), 48);
}
