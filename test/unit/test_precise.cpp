// The precise pass's pieces: double-double arithmetic, PreciseMoments against exact integer
// sums (and merged in any split), the model blob's low parts (round trip and corruption), and
// the trainer's check that the precise pass read the same rows.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "dd.hpp"
#include "precise_moments.hpp"
#include "serialize.hpp"
#include "test_util.hpp"

using pgml::DD;
using pgml::PreciseMoments;
using namespace pgml_test;

TEST(Precise, DoubleDoubleArithmetic)
{
	// 1 + 2^-80 survives, and goes away exactly again
	const DD one_plus = DD(1.0) + DD(0x1.0p-80);
	EXPECT_EQ(one_plus.hi, 1.0);
	EXPECT_EQ(one_plus.lo, 0x1.0p-80);
	EXPECT_EQ((one_plus - DD(1.0)).value(), 0x1.0p-80);
	// (1 + 2^-30)^2 = 1 + 2^-29 + 2^-60 exactly
	const DD a = DD(1.0 + 0x1.0p-30);
	const DD sq = a * a;
	EXPECT_EQ(sq.hi, 1.0 + 0x1.0p-29);
	EXPECT_EQ(sq.lo, 0x1.0p-60);
	// sqrt(2)^2 and 1/3 * 3 to about 2^-104
	const DD r2 = pgml::dd::sqrt(DD(2.0));
	EXPECT_LT(std::fabs((r2 * r2 - DD(2.0)).value()), 1e-30);
	const DD third = DD(1.0) / DD(3.0);
	EXPECT_LT(std::fabs((third * 3.0 - DD(1.0)).value()), 1e-31);
	EXPECT_TRUE(std::isnan(pgml::dd::sqrt(DD(-1.0)).hi));
}

namespace {

// Rows x^1..x^5 of x = 0..20 (Wampler's design): integers whose sums are exact in __int128.
Eigen::MatrixXd wampler_rows(int from, int to)
{
	Eigen::MatrixXd X(to - from, 5);
	for (int x = from; x < to; x++)
		for (int k = 0; k < 5; k++)
			X(x - from, k) = std::pow(static_cast<double>(x), k + 1);
	return X;
}

// The exact co-moment M(i, j) = (n sum x_i x_j - sum x_i sum x_j) / n, to double-double.
DD exact_comoment(int i, int j, int n)
{
	__int128 sij = 0, si = 0, sj = 0;
	for (int x = 0; x < n; x++) {
		__int128 xi = 1, xj = 1;
		for (int k = 0; k <= i; k++)
			xi *= x;
		for (int k = 0; k <= j; k++)
			xj *= x;
		sij += xi * xj;
		si += xi;
		sj += xj;
	}
	const __int128 num = static_cast<__int128>(n) * sij - si * sj;
	// num / n^2 * n: split num into exact double parts for a double-double quotient
	const double hi = static_cast<double>(num);
	const double lo = static_cast<double>(num - static_cast<__int128>(hi));
	return DD(hi, lo) / DD(static_cast<double>(n));
}

void expect_exact(const PreciseMoments &m, int n)
{
	ASSERT_EQ(m.n(), n);
	for (int i = 0; i < 5; i++)
		for (int j = 0; j <= i; j++) {
			const DD want = exact_comoment(i, j, n);
			EXPECT_LT(std::fabs((m.comoment(i, j) - want).value()), 1e-28 * std::fabs(want.hi)) << i << "," << j;
		}
	EXPECT_NEAR(m.mean(0).value(), (n - 1) / 2.0, 1e-28);
}

} // namespace

TEST(Precise, MomentsAreExactToDoubleDoubleInAnySplit)
{
	PreciseMoments whole(5);
	whole.add_block(wampler_rows(0, 21));
	expect_exact(whole, 21);
	EXPECT_TRUE(whole.precise());
	// blocks of other sizes, merged in another order
	PreciseMoments a(5), b(5), c(5);
	a.add_block(wampler_rows(13, 21));
	b.add_block(wampler_rows(0, 4));
	b.add_block(wampler_rows(4, 9));
	c.add_block(wampler_rows(9, 13));
	c.merge(a);
	b.merge(c);
	expect_exact(b, 21);
	// the double moments of the same rows are not that exact (this is what the pass is for)
	pgml::Moments d(5);
	d.add_block(wampler_rows(0, 21));
	double worst = 0;
	for (int i = 0; i < 5; i++)
		for (int j = 0; j <= i; j++) {
			const DD want = exact_comoment(i, j, 21);
			worst = std::max(worst, std::fabs((DD(d.comoment()(i, j)) - want).value()) / std::fabs(want.hi));
		}
	EXPECT_GT(worst, 1e-20);
	// from double moments: only as precise as double
	PreciseMoments from = PreciseMoments::from(d);
	EXPECT_FALSE(from.precise());
	from.merge(whole);
	EXPECT_FALSE(from.precise());
	// grown: the new slot is 0 and the rest unchanged
	PreciseMoments g = whole;
	g.grow(6);
	EXPECT_EQ(g.dim(), 6);
	EXPECT_EQ(g.comoment(5, 5).value(), 0.0);
	EXPECT_EQ(g.comoment(4, 3).hi, whole.comoment(4, 3).hi);
}

namespace {

// Filip-like: a degree-10 polynomial in x (ill-conditioned enough to need the precise pass).
Table poly_table(int from, int to)
{
	Table t;
	for (int k = 1; k <= 10; k++)
		t.features.push_back(numeric_col("x" + std::to_string(k)));
	t.target = numeric_col("y");
	for (int i = from; i < to; i++) {
		const double x = -8 + 5.0 * i / 80;
		std::vector<Cell> cells;
		double y = 0.5;
		for (int k = 1; k <= 10; k++) {
			cells.push_back(num(std::pow(x, k)));
			y += std::pow(x, k) * (k % 3 == 0 ? 1e-3 : -1e-2) / k;
		}
		t.add(cells, num(y + 1e-3 * ((i * 37) % 11 - 5)));
	}
	return t;
}

} // namespace

TEST(Precise, BlobKeepsTheLowPartsAndRejectsCorruptOnes)
{
	Table t = poly_table(0, 81);
	pgml::TrainSpec spec = make_spec(t, pgml::Algorithm::LinearRegression);
	Trained fit = train(spec, t);
	ASSERT_TRUE(fit.model->has_precise_stats) << fit.result.report_json;
	std::vector<uint8_t> blob = fit.model->serialize();
	EXPECT_EQ(blob[4], pgml::kFormatVersion);
	auto back = pgml::Model::deserialize(blob.data(), blob.size());
	ASSERT_TRUE(back->has_precise_stats);
	EXPECT_EQ(back->stats_mean_lo, fit.model->stats_mean_lo);
	EXPECT_EQ(back->stats_comoment_lo, fit.model->stats_comoment_lo);
	// a low part with the wrong width, or not finite, is a corrupt blob (the checksum is
	// recomputed: what is checked is the reader, not the CRC)
	for (int kind = 0; kind < 2; kind++) {
		pgml::Model bad = *back;
		if (kind == 0)
			bad.stats_mean_lo.conservativeResize(bad.stats_mean_lo.size() - 1);
		else
			bad.stats_comoment_lo(0, 0) = NAN;
		std::vector<uint8_t> b = bad.serialize();
		try {
			pgml::Model::deserialize(b.data(), b.size());
			ADD_FAILURE() << "a corrupt low part was read";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), pgml::ErrorCode::DataCorrupted);
		}
	}
}

TEST(Precise, IncrementalGoesOnInDoubleDouble)
{
	pgml::TrainSpec spec = make_spec(poly_table(0, 1), pgml::Algorithm::LinearRegression);
	Trained whole = train(spec, poly_table(0, 81));
	Trained half = train(spec, poly_table(0, 40));
	ASSERT_TRUE(half.model->has_precise_stats);
	Trained rest = retrain(spec, *half.model, true, poly_table(40, 81));
	ASSERT_TRUE(rest.model->has_precise_stats);
	for (Eigen::Index j = 0; j < whole.model->W.rows(); j++)
		EXPECT_NEAR(rest.model->W(j, 0), whole.model->W(j, 0), 1e-9 * std::fabs(whole.model->W(j, 0))) << j;
	EXPECT_NEAR(rest.model->b(0), whole.model->b(0), 1e-9 * std::fabs(whole.model->b(0)));
}

TEST(Precise, OtherRowsInThePrecisePassAreAnError)
{
	Table t = poly_table(0, 81);
	pgml::TrainSpec spec = make_spec(t, pgml::Algorithm::LinearRegression);
	pgml::Trainer tr(spec);
	feed(tr, t);
	tr.finish(nullptr, nullptr);
	ASSERT_TRUE(tr.needs_precise_pass());
	Table fewer = poly_table(0, 80);
	BatchData bd(fewer, 0, fewer.size());
	tr.add_precise_batch(bd.batch(), nullptr);
	try {
		tr.end_precise_pass();
		ADD_FAILURE() << "a precise pass over other rows was accepted";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::DataException);
		EXPECT_NE(std::string(e.what()).find("the relation changed while it was read again"), std::string::npos);
	}
}
