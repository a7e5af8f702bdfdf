// Tree SHAP of decision_tree and random_forest (tree_shap.cpp): the values equal the exact
// Shapley values of the path-dependent (cover-weighted) conditional expectation, computed here
// by brute force over every subset of the features; they add up to the prediction; covers are
// serialized (encodings 3 and 4), validated when read, and trees from older blobs cannot be
// explained.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/tree.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::Tree;
using pgml::TreeNode;
using namespace pgml_test;

namespace {

// E[f(z) | z_S] under the path-dependent model: a split on a feature of S follows z, any other
// split averages its children by their covers.
double conditional(const Tree &t, int node, const double *z, unsigned S, int k)
{
	const TreeNode &n = t.nodes[static_cast<size_t>(node)];
	if (n.feature < 0)
		return t.values[static_cast<size_t>(n.value + k)];
	if (S & (1u << n.feature))
		return conditional(t, Tree::child(n, z), z, S, k);
	const TreeNode &l = t.nodes[static_cast<size_t>(n.left)], &r = t.nodes[static_cast<size_t>(n.right)];
	return (l.cover * conditional(t, n.left, z, S, k) + r.cover * conditional(t, n.right, z, S, k)) / n.cover;
}

// Exact Shapley values by enumerating the subsets of the p features; last the expected value.
std::vector<double> brute_force(const Tree &t, const double *z, int p, int k)
{
	std::vector<double> phi(static_cast<size_t>(p) + 1, 0.0), fact(static_cast<size_t>(p) + 1, 1.0);
	for (int i = 1; i <= p; i++)
		fact[static_cast<size_t>(i)] = fact[static_cast<size_t>(i) - 1] * i;
	for (int i = 0; i < p; i++)
		for (unsigned S = 0; S < (1u << p); S++) {
			if (S & (1u << i))
				continue;
			const int s = __builtin_popcount(S);
			const double w = fact[static_cast<size_t>(s)] * fact[static_cast<size_t>(p - s - 1)] / fact[static_cast<size_t>(p)];
			phi[static_cast<size_t>(i)] += w * (conditional(t, 0, z, S | (1u << i), k) - conditional(t, 0, z, S, k));
		}
	phi[static_cast<size_t>(p)] = conditional(t, 0, z, 0, k);
	return phi;
}

std::vector<double> shap(const Tree &t, const double *z, int p, int k)
{
	std::vector<double> phi(static_cast<size_t>(p) + 1, 0.0);
	phi[static_cast<size_t>(p)] = t.shap(z, k, phi.data());
	return phi;
}

void expect_matches_brute_force(const Tree &t, const double *z, int p, int k)
{
	std::vector<double> got = shap(t, z, p, k), want = brute_force(t, z, p, k);
	double sum = 0;
	for (int j = 0; j <= p; j++) {
		EXPECT_NEAR(got[static_cast<size_t>(j)], want[static_cast<size_t>(j)], 1e-12) << "feature " << j;
		sum += got[static_cast<size_t>(j)];
	}
	const double pred = t.leaf(z)[k];
	EXPECT_NEAR(sum, pred, 1e-9 * std::max(1.0, std::fabs(pred)));
}

TreeNode split(int f, double thr, int l, int r, double cover, bool missing_left = false)
{
	TreeNode n;
	n.feature = f;
	n.threshold = thr;
	n.left = l;
	n.right = r;
	n.cover = cover;
	n.missing_left = missing_left;
	return n;
}

TreeNode leaf(int value, double cover)
{
	TreeNode n;
	n.value = value;
	n.cover = cover;
	return n;
}

// A small tree that splits on feature 0 twice on one path, with a missing-left split.
Tree hand_tree()
{
	Tree t;
	t.has_covers = true;
	t.nodes = {split(0, 0.5, 1, 6, 10), split(1, 0.0, 2, 3, 6, true), leaf(0, 2), split(0, -1.0, 4, 5, 4),
	           leaf(1, 1),             leaf(2, 3),                   split(2, 1.0, 7, 8, 4), leaf(3, 1), leaf(4, 3)};
	t.values = {1.0, -2.0, 4.0, 0.5, 7.0};
	return t;
}

// Random rows with about 10% missing values; y depends on every feature.
void noisy_rows(int n, int p, bool classify, Eigen::MatrixXd &X, Eigen::VectorXd &y)
{
	Rng rng(11);
	X.resize(n, p);
	y.resize(n);
	for (int i = 0; i < n; i++) {
		double s = 0;
		for (int j = 0; j < p; j++) {
			X(i, j) = rng.normal();
			s += (j + 1) * X(i, j) * (j % 2 ? -1 : 1);
			if (rng.uniform() < 0.1)
				X(i, j) = NAN;
		}
		y(i) = classify ? (s > 1 ? 2 : s > -1 ? 1 : 0) : s + 0.1 * rng.normal();
	}
}

Tree grown(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, bool classify, uint64_t seed, bool bootstrap = false)
{
	pgml::TreeOptions opt;
	opt.criterion = classify ? pgml::SplitCriterion::Gini : pgml::SplitCriterion::SquaredError;
	opt.n_outputs = classify ? 3 : 1;
	opt.max_depth = 6;
	opt.max_features = 3;
	pgml::TreeRng rng(seed);
	pgml::CancelPoll cancel(nullptr);
	std::vector<double> w(static_cast<size_t>(X.rows()), 0.0);
	for (Eigen::Index i = 0; i < X.rows(); i++)
		w[rng.below(static_cast<size_t>(X.rows()))] += 1;
	return pgml::grow_tree(X, y, bootstrap ? &w : nullptr, opt, rng, cancel).tree;
}

std::vector<uint8_t> written(const Tree &t, uint16_t encoding)
{
	pgml::Writer w;
	t.write(w, encoding);
	return w.bytes();
}

Tree read_back(const std::vector<uint8_t> &b, int p, int outputs, uint16_t encoding)
{
	pgml::Reader r(b.data(), b.size());
	return Tree::read(r, p, outputs, outputs > 1, encoding);
}

double sum_of(const pgml::Explanation &e)
{
	double s = e.base;
	for (double c : e.feature)
		s += c;
	return s;
}

} // namespace

TEST(TreeShap, HandTreeMatchesBruteForce)
{
	const Tree t = hand_tree();
	const double rows[][3] = {{0.0, -1.0, 0.0}, {-2.0, 1.0, 2.0}, {0.0, NAN, 0.0}, {1.0, 0.0, 0.5},
	                          {NAN, 0.5, 3.0},  {-1.0, -1.0, -1.0}, {0.7, NAN, NAN}};
	for (const auto &z : rows)
		expect_matches_brute_force(t, z, 3, 0);
	// a feature the row's path never tests still gets its share through the other branches
	const double z[] = {-2.0, 1.0, 2.0};
	EXPECT_NE(shap(t, z, 3, 0)[2], 0.0);
}

TEST(TreeShap, GrownTreesMatchBruteForce)
{
	const int p = 5;
	for (bool classify : {false, true}) {
		SCOPED_TRACE(classify ? "classification" : "regression");
		Eigen::MatrixXd X;
		Eigen::VectorXd y;
		noisy_rows(120, p, classify, X, y);
		for (uint64_t seed : {1u, 2u}) {
			const Tree t = grown(X, y, classify, seed, seed == 2);
			ASSERT_TRUE(t.has_covers);
			EXPECT_DOUBLE_EQ(t.nodes[0].cover, 120.0);
			for (int i = 0; i < 12; i++) {
				std::vector<double> z(static_cast<size_t>(p));
				for (int j = 0; j < p; j++)
					z[static_cast<size_t>(j)] = X(i, j);
				for (int k = 0; k < (classify ? 3 : 1); k++)
					expect_matches_brute_force(t, z.data(), p, k);
			}
		}
	}
}

TEST(TreeShap, ForestIsTheMeanOfItsTrees)
{
	const int p = 4;
	Eigen::MatrixXd X;
	Eigen::VectorXd y;
	noisy_rows(80, p, true, X, y);
	std::vector<Tree> trees;
	for (uint64_t s = 1; s <= 4; s++)
		trees.push_back(grown(X, y, true, s, true));
	const double z[] = {0.3, NAN, -1.2, 0.8};
	for (int k = 0; k < 3; k++) {
		std::vector<double> out(p + 1), want(p + 1, 0.0);
		pgml::tree_contributions(trees.data(), trees.size(), z, k, p, out.data(), "random_forest");
		double pred = 0, sum = 0;
		for (const Tree &t : trees) {
			std::vector<double> b = brute_force(t, z, p, k);
			for (int j = 0; j <= p; j++)
				want[static_cast<size_t>(j)] += b[static_cast<size_t>(j)] / 4;
			pred += t.leaf(z)[k] / 4;
		}
		for (int j = 0; j <= p; j++) {
			EXPECT_NEAR(out[static_cast<size_t>(j)], want[static_cast<size_t>(j)], 1e-12);
			sum += out[static_cast<size_t>(j)];
		}
		EXPECT_NEAR(sum, pred, 1e-9);
	}
}

TEST(TreeShap, CoversRoundTripAndOlderEncodingsDropThem)
{
	Eigen::MatrixXd X;
	Eigen::VectorXd y;
	noisy_rows(60, 3, false, X, y);
	const Tree t = grown(X, y, false, 3);
	for (uint16_t enc : {pgml::kTreeEncodingCovers, pgml::kTreeEncodingImputedCovers}) {
		const std::vector<uint8_t> b = written(t, enc);
		const Tree back = read_back(b, 3, 1, enc);
		ASSERT_TRUE(back.has_covers);
		ASSERT_EQ(back.nodes.size(), t.nodes.size());
		for (size_t i = 0; i < t.nodes.size(); i++)
			EXPECT_EQ(back.nodes[i].cover, t.nodes[i].cover);
		EXPECT_EQ(written(back, enc), b);
	}
	const Tree old = read_back(written(t, pgml::kTreeEncodingNativeMissing), 3, 1, pgml::kTreeEncodingNativeMissing);
	EXPECT_FALSE(old.has_covers);
	std::vector<double> out(4);
	const double z[] = {0, 0, 0};
	pgml::Error e = expect_error([&]() { pgml::tree_contributions(&old, 1, z, 0, 3, out.data(), "decision_tree"); },
	                             ErrorCode::FeatureNotSupported);
	EXPECT_NE(e.hint().find("refit"), std::string::npos) << e.hint();
}

TEST(TreeShap, CorruptedCoversAreDataCorrupted)
{
	const Tree good = hand_tree();
	const double bad[] = {NAN, INFINITY, -1.0, 0.0, 9.0};
	for (size_t node : {0u, 3u, 5u})
		for (double c : bad) {
			SCOPED_TRACE("node " + std::to_string(node) + " cover " + std::to_string(c));
			Tree t = good;
			t.nodes[node].cover = c;
			const std::vector<uint8_t> b = written(t, pgml::kTreeEncodingCovers);
			expect_error([&]() { read_back(b, 3, 1, pgml::kTreeEncodingCovers); }, ErrorCode::DataCorrupted);
		}
	// a truncated cover
	std::vector<uint8_t> b = written(good, pgml::kTreeEncodingCovers);
	b.resize(b.size() - 3);
	expect_error([&]() { read_back(b, 3, 1, pgml::kTreeEncodingCovers); }, ErrorCode::DataCorrupted);
}

TEST(TreeShap, ModelsExplainTheValueOrTheClassProbability)
{
	for (Algorithm a : {Algorithm::DecisionTree, Algorithm::RandomForest})
		for (bool classify : {false, true}) {
			SCOPED_TRACE(std::string(pgml::algorithm_name(a)) + (classify ? " classification" : " regression"));
			Table t = explain_rows(300, classify, true);
			pgml::TrainSpec spec = make_spec(t, a, 0.2);
			if (a == Algorithm::RandomForest)
				spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(20);
			Trained tr = train(spec, t);
			const pgml::Model &m = *tr.model;
			for (const std::vector<Cell> &row : {std::vector<Cell>{num(0.7), num(-1.2), str("a")},
			                                     std::vector<Cell>{null(), num(0.4), str("b")},
			                                     std::vector<Cell>{num(-1.5), num(1.0), null()}}) {
				int cls = -1;
				std::vector<double> pred = predict(m, row, &cls);
				pgml::Explanation e = m.explain(to_values(m, row).data());
				const double want = pred[static_cast<size_t>(classify ? cls : 0)];
				EXPECT_STREQ(e.output, classify ? "probability" : "value");
				EXPECT_EQ(e.klass, classify ? cls : 0);
				EXPECT_NEAR(e.value, want, 1e-9 * std::max(1.0, std::fabs(want)));
				EXPECT_NEAR(sum_of(e), want, 1e-9 * std::max(1.0, std::fabs(want)));
				double cols = e.base;
				for (double c : e.column)
					cols += c;
				EXPECT_NEAR(cols, want, 1e-9 * std::max(1.0, std::fabs(want)));
			}
			// x drives y: its contribution has the sign of the true effect (regression)
			if (!classify) {
				std::vector<Cell> row = {num(2.0), num(0.0), str("b")};
				EXPECT_GT(m.explain(to_values(m, row).data()).column[0], 0);
			}
		}
}

TEST(TreeShap, ImputingModelsAreExplainedToo)
{
	Table t = explain_rows(200, false, true);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.0);
	spec.preprocess["impute"] = pgml::OptionValue::of_string("median");
	Trained tr = train(spec, t);
	const pgml::Model &m = *tr.model;
	EXPECT_FALSE(m.estimator->native_missing());
	std::vector<Cell> row = {null(), num(0.4), str("b")};
	pgml::Explanation e = m.explain(to_values(m, row).data());
	EXPECT_NEAR(sum_of(e), predict(m, row)[0], 1e-9 * std::max(1.0, std::fabs(e.value)));
	// and the model round-trips with its covers
	std::vector<uint8_t> blob = m.serialize();
	std::unique_ptr<pgml::Model> back = pgml::Model::deserialize(blob.data(), blob.size());
	EXPECT_EQ(back->serialize(), blob);
	EXPECT_EQ(back->explain(to_values(*back, row).data()).feature, e.feature);
}

// A golden blob (test_golden.cpp) and a row for it: numbers 1, categories NULL.
std::unique_ptr<pgml::Model> golden(const char *name, std::vector<Cell> &row)
{
	std::ifstream in(std::string(PGML_TEST_DATA) + "/golden_" + name + ".blob", std::ios::binary);
	std::vector<uint8_t> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	if (blob.empty())
		throw std::runtime_error(std::string("missing golden blob ") + name);
	std::unique_ptr<pgml::Model> m = pgml::Model::deserialize(blob.data(), blob.size());
	row.clear();
	for (const pgml::ColumnInfo &c : m->features)
		row.push_back(c.categorical() ? null() : num(1.0));
	return m;
}

TEST(TreeShap, BlobsWrittenBeforeCoversLoadButCannotBeExplained)
{
	for (const char *name : {"decision_tree_native_regression", "random_forest", "decision_tree_regression"}) {
		SCOPED_TRACE(name);
		std::vector<Cell> row;
		std::unique_ptr<pgml::Model> m = golden(name, row);
		(void)predict(*m, row);
		pgml::Error e = expect_error([&]() { m->explain(to_values(*m, row).data()); }, ErrorCode::FeatureNotSupported);
		EXPECT_NE(std::string(e.what()).find(pgml::algorithm_name(m->algorithm)), std::string::npos) << e.what();
		EXPECT_NE(e.hint().find("mode => 'refit'"), std::string::npos) << e.hint();
	}
}

TEST(TreeShap, GoldenBlobsWithCoversAreExplained)
{
	for (const char *name : {"decision_tree_covers_classification", "random_forest_covers_regression"}) {
		SCOPED_TRACE(name);
		std::vector<Cell> row;
		std::unique_ptr<pgml::Model> m = golden(name, row);
		int cls = -1;
		const std::vector<double> pred = predict(*m, row, &cls);
		const pgml::Explanation e = m->explain(to_values(*m, row).data());
		const double want = pred[static_cast<size_t>(std::max(0, cls))];
		EXPECT_NEAR(sum_of(e), want, 1e-9 * std::max(1.0, std::fabs(want)));
	}
}
