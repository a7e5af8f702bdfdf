// Unit tests for Moments: block updates, merging, widening and the blob round trip.
#include <gtest/gtest.h>

#include <vector>

#include "moments.hpp"
#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::Moments;
using pgml_test::Rng;

namespace {

MatrixXd random_matrix(Eigen::Index rows, Eigen::Index cols, uint64_t seed)
{
	Rng rng(seed);
	MatrixXd m(rows, cols);
	for (Eigen::Index i = 0; i < rows; i++)
		for (Eigen::Index j = 0; j < cols; j++)
			m(i, j) = 3.0 * rng.normal() + static_cast<double>(j) * 10.0 - 7.0; // offsets: not centred
	return m;
}

// Direct two-pass mean and centred cross-product.
void direct(const MatrixXd &x, VectorXd &mean, MatrixXd &M)
{
	mean = x.colwise().mean().transpose();
	MatrixXd c = x.rowwise() - mean.transpose();
	M = c.transpose() * c;
}

void expect_close(const Moments &m, const MatrixXd &x, double tol)
{
	VectorXd mean;
	MatrixXd M;
	direct(x, mean, M);
	ASSERT_EQ(m.n(), x.rows());
	ASSERT_EQ(m.dim(), x.cols());
	for (Eigen::Index j = 0; j < x.cols(); j++)
		EXPECT_NEAR(m.mean()(j), mean(j), tol * std::max(1.0, std::fabs(mean(j))));
	MatrixXd C = m.comoment();
	for (Eigen::Index i = 0; i < x.cols(); i++)
		for (Eigen::Index j = 0; j < x.cols(); j++)
			EXPECT_NEAR(C(i, j), M(i, j), tol * std::max(1.0, std::fabs(M(i, j)))) << i << "," << j;
}

} // namespace

TEST(Moments, AddBlockMatchesDirectComputation)
{
	MatrixXd x = random_matrix(257, 5, 1);
	Moments m(5);
	m.add_block(x);
	expect_close(m, x, 1e-10);
	// symmetric
	MatrixXd C = m.comoment();
	EXPECT_EQ((C - C.transpose()).cwiseAbs().maxCoeff(), 0.0);
}

TEST(Moments, ManySmallBlocksEqualOneBlock)
{
	MatrixXd x = random_matrix(300, 4, 2);
	Moments m(4);
	for (Eigen::Index b = 0; b < x.rows(); b += 13)
		m.add_block(x.middleRows(b, std::min<Eigen::Index>(13, x.rows() - b)));
	expect_close(m, x, 1e-10);
	// a single-row block and an empty block
	Moments one(4);
	one.add_block(x.topRows(1));
	one.add_block(MatrixXd(0, 4));
	EXPECT_EQ(one.n(), 1);
	EXPECT_EQ(one.comoment().cwiseAbs().maxCoeff(), 0.0);
	EXPECT_EQ(one.mean(), x.row(0).transpose());
}

TEST(Moments, MergeOfHalvesEqualsAll)
{
	MatrixXd x = random_matrix(201, 6, 3);
	Moments a(6), b(6), all(6);
	a.add_block(x.topRows(80));
	b.add_block(x.bottomRows(121));
	all.add_block(x);
	Moments ab = a;
	ab.merge(b);
	expect_close(ab, x, 1e-10);
	EXPECT_EQ(ab.n(), all.n());
	EXPECT_LT((ab.mean() - all.mean()).cwiseAbs().maxCoeff(), 1e-10);
	EXPECT_LT((ab.comoment() - all.comoment()).cwiseAbs().maxCoeff(), 1e-10 * all.comoment().cwiseAbs().maxCoeff());
	// order does not matter
	Moments ba = b;
	ba.merge(a);
	expect_close(ba, x, 1e-10);
	// merging into / from an empty state
	Moments empty;
	empty.merge(all);
	expect_close(empty, x, 1e-10);
	Moments all2 = all;
	all2.merge(Moments(6));
	expect_close(all2, x, 1e-10);
}

TEST(Moments, WrongWidthIsAnInternalError)
{
	Moments m(3);
	pgml_test::expect_error([&] { m.add_block(MatrixXd::Zero(2, 4)); }, pgml::ErrorCode::Internal);
}

TEST(Moments, GrowPadsWithZeros)
{
	MatrixXd x = random_matrix(50, 2, 4);
	MatrixXd y = random_matrix(70, 4, 5);
	Moments m(2);
	m.add_block(x);
	m.grow(1); // never shrinks
	EXPECT_EQ(m.dim(), 2);
	m.grow(4);
	EXPECT_EQ(m.dim(), 4);
	m.add_block(y);
	// the earlier rows count as 0 in the new columns
	MatrixXd all = MatrixXd::Zero(120, 4);
	all.topLeftCorner(50, 2) = x;
	all.bottomRows(70) = y;
	expect_close(m, all, 1e-10);

	// merge widens the narrower side either way
	Moments narrow(2), wide(4);
	narrow.add_block(x);
	wide.add_block(y);
	Moments n1 = narrow;
	n1.merge(wide);
	expect_close(n1, all, 1e-10);
	Moments w1 = wide;
	w1.merge(narrow);
	MatrixXd all2 = MatrixXd::Zero(120, 4);
	all2.topRows(70) = y;
	all2.bottomLeftCorner(50, 2) = x;
	expect_close(w1, all2, 1e-10);
}

TEST(Moments, WriteReadRoundTrip)
{
	MatrixXd x = random_matrix(40, 3, 6);
	Moments m(3);
	m.add_block(x);
	pgml::Writer w;
	m.write(w);
	pgml::Reader r(w.bytes().data(), w.bytes().size());
	Moments back = Moments::read(r);
	EXPECT_TRUE(r.at_end());
	EXPECT_EQ(back.n(), m.n());
	EXPECT_EQ(back.mean(), m.mean());
	EXPECT_EQ(back.comoment(), m.comoment());
	// truncated or inconsistent states are rejected
	for (size_t len = 0; len < w.bytes().size(); len++) {
		pgml::Reader t(w.bytes().data(), len);
		pgml_test::expect_error([&] { Moments::read(t); }, pgml::ErrorCode::DataCorrupted);
	}
	pgml::Writer bad;
	bad.i64(3);
	bad.vec(VectorXd::Zero(2));
	bad.mat(MatrixXd::Zero(3, 3));
	pgml::Reader rb(bad.bytes().data(), bad.bytes().size());
	pgml_test::expect_error([&] { Moments::read(rb); }, pgml::ErrorCode::DataCorrupted);
	pgml::Writer neg;
	neg.i64(-1);
	neg.vec(VectorXd::Zero(1));
	neg.mat(MatrixXd::Zero(1, 1));
	pgml::Reader rn(neg.bytes().data(), neg.bytes().size());
	pgml_test::expect_error([&] { Moments::read(rn); }, pgml::ErrorCode::DataCorrupted);
}
