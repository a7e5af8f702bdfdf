// Golden blobs: models serialized by an earlier build must keep loading and predicting the
// same values. Normally the committed test/unit/data/golden_*.blob files are loaded and
// checked against the hard-coded predictions below.
//
// To add a golden blob (when a format changes on purpose, with a new format version: the old
// blobs stay, to prove old versions keep loading):
//   PGML_WRITE_GOLDEN=1 ./build/pgml_unit_tests --gtest_filter='Golden.*'
// which writes the blobs that do not exist yet and prints their prediction tables to paste here
// (PGML_WRITE_GOLDEN=all rewrites every blob).
//
// Every registered algorithm has at least one golden blob (Golden.EveryAlgorithmHasAGoldenBlob).
// Predictions are checked to 1e-9 relative (1e-12 for the original linear-family blobs);
// gradient_boosting predicts in float32 inside libxgboost, so its tolerance is 1e-6.
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

bool writing()
{
	const char *v = std::getenv("PGML_WRITE_GOLDEN");
	return v != nullptr && (std::string(v) == "1" || std::string(v) == "all");
}

bool rewriting_all()
{
	const char *v = std::getenv("PGML_WRITE_GOLDEN");
	return v != nullptr && std::string(v) == "all";
}

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

// Trains through the Trainer without a target (clustering), the way the glue does for a NULL target.
std::unique_ptr<Model> train_unsupervised(pgml::TrainSpec spec, const Table &t, size_t batch_rows = 7)
{
	spec.target = pgml::ColumnInfo{};
	pgml::Trainer tr(spec);
	for (size_t b = 0; b < t.size(); b += batch_rows) {
		BatchData bd(t, b, std::min(t.size(), b + batch_rows));
		pgml::Batch batch = bd.batch();
		batch.target = nullptr;
		tr.add_batch(batch, nullptr);
	}
	return tr.finish(nullptr, nullptr);
}

// regression_rows' features with a dummy target (not fed to the trainer), for clustering.
Table clustering_rows()
{
	Table t = regression_rows();
	for (Cell &y : t.y)
		y = num(0);
	return t;
}

pgml::TrainSpec spec_with(const Table &t, Algorithm a, std::initializer_list<std::pair<const char *, OptionValue>> hp)
{
	pgml::TrainSpec spec = make_spec(t, a, 0.0);
	for (const auto &[k, v] : hp)
		spec.hyperparams[k] = v;
	return spec;
}

OptionValue n(double v)
{
	return OptionValue::of_number(v);
}
OptionValue s(const char *v)
{
	return OptionValue::of_string(v);
}

struct Golden {
	std::string name;
	std::function<std::unique_ptr<Model>()> build;
	std::vector<std::vector<Cell>> queries;
	std::vector<std::vector<double>> expected; // per query: the predict() outputs
	std::vector<int> expected_class;           // classification / clustering: what predict() returns
	Algorithm algorithm = Algorithm::LinearRegression;
	pgml::Task task = pgml::Task::Regression;
	double tol = 1e-9; // relative to max(1, |expected|)
	bool native_missing = false; // NULL numbers reach the estimator as NaN (trees since format 2)
	int format = 1;              // the blob format it was written in
};

void add_more_goldens(std::vector<Golden> &g, const std::vector<std::vector<Cell>> &reg_q,
                      const std::vector<std::vector<Cell>> &cls_q);

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
	const std::pair<Algorithm, pgml::Task> linear_family[] = {
	    {Algorithm::LinearRegression, pgml::Task::Regression},
	    {Algorithm::Ridge, pgml::Task::Regression},
	    {Algorithm::LogisticRegression, pgml::Task::Classification},
	    {Algorithm::LogisticRegression, pgml::Task::Classification}};
	for (size_t i = 0; i < g.size(); i++) {
		g[i].algorithm = linear_family[i].first;
		g[i].task = linear_family[i].second;
		g[i].tol = 1e-12;
	}
	add_more_goldens(g, reg_q, cls_q);
	return g;
}

// The algorithms beyond the linear family (and lasso / elastic_net). Expected values were
// printed by PGML_WRITE_GOLDEN=1.
void add_more_goldens(std::vector<Golden> &g, const std::vector<std::vector<Cell>> &reg_q,
                      const std::vector<std::vector<Cell>> &cls_q)
{
	using pgml::Task;
	auto add = [&](std::string name, Algorithm a, Task task, std::function<std::unique_ptr<Model>()> build,
	               std::vector<std::vector<double>> expected, std::vector<int> classes, double tol = 1e-9) {
		Golden x;
		x.name = std::move(name);
		x.build = std::move(build);
		x.queries = task == Task::Classification ? cls_q : reg_q;
		x.expected = std::move(expected);
		x.expected_class = std::move(classes);
		x.algorithm = a;
		x.task = task;
		x.tol = tol;
		g.push_back(std::move(x));
	};
	add("lasso", Algorithm::Lasso, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::Lasso, {{"alpha", n(0.1)}}), t).model;
	    },
	    {{1.0429658381865157}, {0.3302752909566592}, {-6.3735027292935049}, {1.9719157037883757}, {0.3302752909566592}},
	    {});
	add("elastic_net", Algorithm::ElasticNet, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::ElasticNet, {{"alpha", n(0.2)}, {"l1_ratio", n(0.3)}}), t).model;
	    },
	    {{0.82656571237380216},
	     {0.070375884513213055},
	     {-5.6308907497040996},
	     {1.6111564241287373},
	     {0.039116435939426118}},
	    {});
	add("decision_tree_regression", Algorithm::DecisionTree, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::DecisionTree, {{"max_depth", n(4)}}), t).model;
	    },
	    {{-6.1749999999999998},
	     {7.0999999999999996},
	     {-5.9499999999999993},
	     {0.90000000000000002},
	     {7.0999999999999996}},
	    {});
	add("decision_tree_classification", Algorithm::DecisionTree, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::DecisionTree, {{"max_depth", n(3)}, {"criterion", s("entropy")}}), t)
		        .model;
	    },
	    {{1, 0, 0}, {0, 0, 1}, {0, 1, 0}, {1, 0, 0}, {0, 0, 1}}, {0, 2, 1, 0, 2});
	add("random_forest_regression", Algorithm::RandomForest, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::RandomForest, {{"n_estimators", n(5)}, {"max_features", n(0.67)}}), t)
		        .model;
	    },
	    {{-1.8999999999999999},
	     {-2.5200000000000005},
	     {-5.6899999999999995},
	     {2.5300000000000002},
	     {-3.2700000000000005}},
	    {});
	add("random_forest", Algorithm::RandomForest, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::RandomForest, {{"n_estimators", n(5)}, {"max_depth", n(4)}}), t).model;
	    },
	    {{0.80000000000000004, 0.20000000000000001, 0},
	     {0, 0.35999999999999999, 0.64000000000000001},
	     {0.20000000000000001, 0.20000000000000001, 0.59999999999999998},
	     {1, 0, 0},
	     {0, 0.16, 0.84000000000000008}},
	    {0, 2, 2, 0, 2});
	add(
	    "gradient_boosting_regression", Algorithm::GradientBoosting, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::GradientBoosting, {{"n_estimators", n(5)}, {"max_depth", n(3)}}), t)
		        .model;
	    },
	    {{-0.099243514239788055},
	     {1.4994431734085083},
	     {-3.4622488021850586},
	     {1.8441872596740723},
	     {1.4994431734085083}},
	    {}, 1e-6);
	add(
	    "gradient_boosting_multiclass", Algorithm::GradientBoosting, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::GradientBoosting,
		                           {{"n_estimators", n(5)}, {"max_depth", n(3)}, {"subsample", n(0.8)}}),
		                 t)
		        .model;
	    },
	    {{0.76437953551320148, 0.12417302090703045, 0.1114474435797681},
	     {0.11678632783838838, 0.31611545071435909, 0.56709822144725253},
	     {0.11404745940828726, 0.77501582521933443, 0.11093671537237826},
	     {0.76437953551320148, 0.12417302090703045, 0.1114474435797681},
	     {0.1142798134255298, 0.1307978111981041, 0.75492237537636608}},
	    {0, 2, 1, 0, 2}, 1e-6);
	add("svm_linear_classification", Algorithm::Svm, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::Svm, {{"kernel", s("linear")}, {"C", n(0.5)}}), t).model;
	    },
	    {{0.68249711378383382, 0.27380033183631797, 0.043702554379848116},
	     {0.14046785642470397, 0.46351907925934344, 0.39601306431595273},
	     {0.50632017969599064, 0.17354319591743775, 0.32013662438657164},
	     {0.92872472710168386, 0.064979874497177861, 0.0062953984011384035},
	     {0.011651822621394589, 0.2127944636155471, 0.77555371376305837}},
	    {0, 1, 0, 0, 2});
	add("svm_rbf_regression", Algorithm::Svm, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::Svm, {{"kernel", s("rbf")}, {"C", n(2)}, {"epsilon", n(0.1)}}), t)
		        .model;
	    },
	    {{0.61755436857800028},
	     {-0.82863650288107071},
	     {-3.9601121558649455},
	     {2.5467843800553407},
	     {-1.0689672067927689}},
	    {});
	add("mlp_regression", Algorithm::Mlp, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::Mlp,
		                           {{"hidden_units", n(4)},
		                            {"max_iter", n(20)},
		                            {"activation", s("tanh")},
		                            {"learning_rate", n(0.01)}}),
		                 t)
		        .model;
	    },
	    {{0.050656466658584198},
	     {-0.64445326370042411},
	     {-0.29283570628321948},
	     {0.98065452738170866},
	     {-0.91993698915782862}},
	    {});
	add("mlp", Algorithm::Mlp, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::Mlp,
		                           {{"hidden_units", n(4)},
		                            {"max_iter", n(20)},
		                            {"learning_rate", n(0.01)},
		                            {"batch_size", n(8)}}),
		                 t)
		        .model;
	    },
	    {{0.79394444303087297, 0.091124028899548723, 0.11493152806957838},
	     {0.14258800577558303, 0.26983958684373027, 0.58757240738068661},
	     {0.075979436528750291, 0.18948606977451626, 0.7345344936967334},
	     {0.9048548284741853, 0.029028310398731251, 0.066116861127083579},
	     {0.088344952267683088, 0.20666718904562223, 0.70498785868669467}},
	    {0, 2, 2, 0, 2});
	add("kmeans", Algorithm::KMeans, Task::Clustering,
	    [] {
		    Table t = clustering_rows();
		    return train_unsupervised(spec_with(t, Algorithm::KMeans, {{"k", n(3)}, {"n_init", n(3)}}), t);
	    },
	    {{1.1352395092301337}, {1.2207134199566723}, {1.5264862206302521}, {0.63024967303842905}, {1.5780181411068488}},
	    {0, 1, 2, 0, 1});
	add("naive_bayes", Algorithm::NaiveBayes, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::NaiveBayes, {{"alpha", n(0.5)}}), t).model;
	    },
	    {{0.97766043006877434, 0.022338559588917069, 1.0103423086840986e-06},
	     {0.0014510998596302415, 0.45500785935885923, 0.54354104078151044},
	     {0.18228268224538743, 0.77477718048938005, 0.042940137265232492},
	     {0.99993921265954921, 6.0787033784356158e-05, 3.0666645409170561e-10},
	     {5.1050851947363901e-08, 0.00080993342493759942, 0.9991900155242105}},
	    {0, 2, 1, 0, 2});
	// Formats written since missing numbers are native to the trees (decision_tree and
	// random_forest sub-format 2, gradient_boosting format 2) and the mlp regression target is
	// standardized (mlp sub-format 2). The blobs above, written before, keep loading and
	// predicting as they did.
	const size_t native_from = g.size();
	add("decision_tree_native_regression", Algorithm::DecisionTree, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::DecisionTree, {{"max_depth", n(4)}}), t).model;
	    },
	    {{-1.23}, {7.0999999999999996}, {-5.9499999999999993}, {0.90000000000000002}, {7.0999999999999996}}, {});
	add("random_forest_native", Algorithm::RandomForest, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::RandomForest, {{"n_estimators", n(5)}, {"max_depth", n(4)}}), t).model;
	    },
	    {{0.80000000000000004, 0.20000000000000001, 0},
	     {0, 0.35999999999999999, 0.64000000000000001},
	     {0.20000000000000001, 0.20000000000000001, 0.59999999999999998},
	     {1, 0, 0},
	     {0, 0.16, 0.84000000000000008}},
	    {0, 2, 2, 0, 2});
	add(
	    "gradient_boosting_native_regression", Algorithm::GradientBoosting, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::GradientBoosting, {{"n_estimators", n(5)}, {"max_depth", n(3)}}), t)
		        .model;
	    },
	    {{-0.099243514239788055},
	     {1.8694984912872314},
	     {-4.5477118492126465},
	     {1.8441872596740723},
	     {1.8694984912872314}},
	    {}, 1e-6);
	add("mlp_regression_scaled", Algorithm::Mlp, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::Mlp,
		                           {{"hidden_units", n(4)},
		                            {"max_iter", n(20)},
		                            {"activation", s("tanh")},
		                            {"learning_rate", n(0.01)}}),
		                 t)
		        .model;
	    },
	    {{-0.16738425795034773},
	     {0.23878767632234787},
	     {-2.7245807993213527},
	     {2.6059430427122372},
	     {-3.8162458374918771}},
	    {});
	// decision_tree and random_forest sub-format 3: each node's cover (tree SHAP, ml_explain)
	add("decision_tree_covers_classification", Algorithm::DecisionTree, Task::Classification,
	    [] {
		    Table t = classification_rows(3);
		    return train(spec_with(t, Algorithm::DecisionTree, {{"max_depth", n(3)}}), t).model;
	    },
	    {{1, 0, 0}, {0, 0, 1}, {0, 1, 0}, {1, 0, 0}, {0, 0, 1}}, {0, 2, 1, 0, 2});
	add("random_forest_covers_regression", Algorithm::RandomForest, Task::Regression,
	    [] {
		    Table t = regression_rows();
		    return train(spec_with(t, Algorithm::RandomForest, {{"n_estimators", n(4)}, {"max_depth", n(3)}}), t)
		        .model;
	    },
	    {{0.10218749999999988}, {-3.3146428571428572}, {-5.5960317460317457}, {1.67875}, {-3.657142857142857}}, {});
	g[g.size() - 2].format = g[g.size() - 1].format = 3;
	for (size_t i = native_from; i < g.size(); i++)
		g[i].native_missing = g[i].algorithm != Algorithm::Mlp;
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
			if (!rewriting_all() && std::ifstream(path).good())
				continue;
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
		EXPECT_EQ(m->algorithm, g.algorithm);
		EXPECT_EQ(m->task, g.task);
		EXPECT_EQ(m->prep.native_missing, g.native_missing);
		ASSERT_EQ(g.expected.size(), g.queries.size());
		for (size_t q = 0; q < g.queries.size(); q++) {
			int cls = -1;
			std::vector<double> p = predict(*m, g.queries[q], &cls);
			ASSERT_EQ(p.size(), g.expected[q].size()) << "query " << q;
			for (size_t k = 0; k < p.size(); k++)
				EXPECT_NEAR(p[k], g.expected[q][k], g.tol * std::max(1.0, std::fabs(g.expected[q][k])))
				    << "query " << q << " output " << k;
			if (!g.expected_class.empty()) {
				ASSERT_EQ(g.expected_class.size(), g.queries.size());
				EXPECT_EQ(cls, g.expected_class[q]) << "query " << q;
			}
		}
		// a loaded golden model serializes to the current format, which reads back to the same
		// bytes (the golden blobs are format 1, pg_ml 0.1.0 / 0.2.0, or format 3 since the trees
		// keep their covers; written outside the database, all unbound, bound by kind only)
		EXPECT_EQ(blob[4], g.format);
		EXPECT_FALSE(m->binding.bound());
		EXPECT_NO_THROW(m->check_binding(1, 1, pgml::algorithm_name(g.algorithm), pgml::task_name(g.task)));
		std::vector<uint8_t> again = m->serialize();
		EXPECT_EQ(again[4], pgml::kFormatVersion);
		EXPECT_EQ(Model::deserialize(again.data(), again.size())->serialize(), again);
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
	// the newer algorithms keep their hyperparameters (defaults filled in) and classes
	auto rf = load("random_forest");
	EXPECT_EQ(rf->hyperparams.num("n_estimators"), 5.0);
	EXPECT_EQ(rf->hyperparams.num("bootstrap"), 1.0);
	EXPECT_EQ(rf->classes, (std::vector<std::string>{"c0", "c1", "c2"}));
	auto gb = load("gradient_boosting_multiclass");
	EXPECT_EQ(gb->hyperparams.num("subsample"), 0.8);
	EXPECT_EQ(gb->hyperparams.num("learning_rate"), 0.3);
	auto svm = load("svm_rbf_regression");
	EXPECT_EQ(svm->hyperparams.choice("kernel"), "rbf");
	auto km = load("kmeans");
	EXPECT_EQ(km->hyperparams.num("k"), 3.0);
	EXPECT_EQ(km->task, pgml::Task::Clustering);
	EXPECT_TRUE(km->classes.empty());
	auto nb = load("naive_bayes");
	EXPECT_EQ(nb->prep.feature_names, (std::vector<std::string>{"a", "b", "kind=p", "kind=q", "kind=NULL"}));
	// the incremental path still works from a golden linear model
	Table more = regression_rows();
	Trained inc = retrain(make_spec(more, Algorithm::LinearRegression, 0.0), *lin, true, more);
	EXPECT_EQ(inc.model->stats.n(), 48);
}

// A newly registered algorithm needs a golden blob (and every supported task one of its own).
TEST(Golden, EveryAlgorithmHasAGoldenBlob)
{
	const std::vector<Golden> g = goldens();
	for (const pgml::AlgorithmDef &def : pgml::algorithms()) {
		for (pgml::Task task : {pgml::Task::Regression, pgml::Task::Classification, pgml::Task::Clustering}) {
			if (!def.supports(task))
				continue;
			bool found = false;
			for (const Golden &x : g)
				found = found || (x.algorithm == def.id && x.task == task);
			EXPECT_TRUE(found) << def.name << " has no golden blob for " << pgml::task_name(task);
		}
	}
}
