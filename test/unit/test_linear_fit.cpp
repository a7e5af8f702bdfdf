// models/linear.hpp: the linear family's fit from the moments is what the Trainer's moments
// route stores (the trainer only wires it), and the least-squares solve on its own.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/linear.hpp"
#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::Algorithm;
using namespace pgml_test;

namespace {

// y = 1 + 2 x - 0.5 z + a level effect + noise; some x NULL, some levels NULL.
Table mixed_rows(size_t n, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), text_col("g"), numeric_col("z")};
	t.target = numeric_col("y");
	const char *levels[] = {"a", "b", "c"};
	for (size_t i = 0; i < n; i++) {
		double x = rng.normal(), z = 100 + 10 * rng.normal();
		int l = static_cast<int>(i % 3);
		double y = 1 + 2 * x - 0.5 * z + l + 0.1 * rng.normal();
		t.add({i % 7 == 3 ? null() : num(x), i % 11 == 5 ? null() : str(levels[l]), num(z)}, num(y));
	}
	return t;
}

// The fit from a model's own statistics, as the moments route computes it.
pgml::LinearFit refit(const pgml::Model &m)
{
	MatrixXd A;
	VectorXd c0;
	m.prep.affine(m.encoder, A, c0);
	pgml::LinearMoments t = pgml::project_moments(m.stats, A, c0, m.encoder.target_slot());
	return pgml::fit_linear_from_moments(m.algorithm, m.hyperparams, m.prep, m.features, t, m.stats.n(), nullptr);
}

} // namespace

TEST(LinearFit, IsWhatTheTrainerStores)
{
	const Table t = mixed_rows(400, 3);
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::Ridge, Algorithm::Lasso, Algorithm::ElasticNet}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		pgml::TrainSpec spec = make_spec(t, a, 0.25, 5);
		if (a != Algorithm::LinearRegression)
			spec.hyperparams["alpha"] = pgml::OptionValue::of_number(0.01);
		Trained tr = train(spec, t);
		ASSERT_TRUE(tr.model->has_stats);
		pgml::LinearFit fit = refit(*tr.model);
		ASSERT_EQ(fit.w.size(), tr.model->W.rows());
		for (Eigen::Index j = 0; j < fit.w.size(); j++)
			EXPECT_EQ(fit.w(j), tr.model->W(j, 0)) << j;
		EXPECT_EQ(fit.b, tr.model->b(0));
		EXPECT_EQ(fit.solve.rank, tr.result.solve_rank);
		EXPECT_EQ(fit.inference_json, tr.result.inference_json);
		EXPECT_EQ(fit.log.size(), tr.result.log.size());
		EXPECT_NEAR(1 - fit.sse / fit.sst, json_number(tr.result.metrics_json, {"train", "r2"}), 1e-12);
	}
}

TEST(LinearFit, LeastSquaresReportsRankAndConstantColumns)
{
	// x2 = 2 x1 exactly, x3 constant: rank 1 of 3, x3 named as constant, x1 and x2 collinear
	Table t;
	t.features = {numeric_col("x1"), numeric_col("x2"), numeric_col("x3")};
	t.target = numeric_col("y");
	Rng rng(7);
	for (int i = 0; i < 50; i++) {
		double x = rng.normal();
		t.add({num(x), num(2 * x), num(4)}, num(3 * x + 0.01 * rng.normal()));
	}
	Trained tr = train(make_spec(t, Algorithm::LinearRegression), t);
	pgml::LinearFit fit = refit(*tr.model);
	EXPECT_EQ(fit.solve.rank, 1);
	EXPECT_EQ(fit.solve.columns, 3);
	EXPECT_EQ(fit.solve.constant, std::vector<std::string>{"x3"});
	EXPECT_EQ(fit.solve.collinear, (std::vector<std::string>{"x1", "x2"}));
	EXPECT_EQ(fit.solve.warnings.size(), 2u);
	EXPECT_EQ(tr.result.warnings.size(), fit.solve.warnings.size());
	// the fit's predictions are the least-squares ones whatever the split of 3 between x1 and x2
	EXPECT_NEAR(fit.w(0) + 2 * fit.w(1), 3, 0.01);
}
