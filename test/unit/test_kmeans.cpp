// k-means: exact centres on well-separated blobs, determinism, the distinct-rows check,
// importance, incremental retraining, serialization (round trip, truncation, corruption),
// cancellation and the hyperparameter specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "models/kmeans.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

pgml::Params params(int k, int n_init = 10)
{
	pgml::Params p;
	for (const pgml::ParamSpec &s : pgml::kmeans_params())
		p.set_num(s.name, s.def);
	p.set_num("k", k);
	p.set_num("n_init", n_init);
	return p;
}

pgml::FitInput input(const MatrixXd &X, uint64_t seed = 42)
{
	pgml::FitInput in;
	in.X = &X;
	in.task = pgml::Task::Clustering;
	in.seed = seed;
	return in;
}

// Three clusters around (0,0), (10,0), (0,10); each has the four points centre +- (1,0), +- (0,1)
// (and the centre itself when with_centre), so its mean is exactly the centre.
MatrixXd blobs(bool with_centre = false, double shift = 0)
{
	const double cx[3] = {0, 10, 0}, cy[3] = {0, 0, 10};
	const double dx[5] = {1, -1, 0, 0, 0}, dy[5] = {0, 0, 1, -1, 0};
	const int per = with_centre ? 5 : 4;
	MatrixXd X(3 * per, 2);
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < per; i++) {
			X(c * per + i, 0) = cx[c] + dx[i] * (1 + shift);
			X(c * per + i, 1) = cy[c] + dy[i] * (1 + shift);
		}
	return X;
}

// Centres as seen through predict: the centre nearest to each probe point.
std::vector<int> labels(const pgml::Estimator &e, const MatrixXd &X)
{
	std::vector<int> out;
	double d;
	for (Eigen::Index i = 0; i < X.rows(); i++) {
		VectorXd z = X.row(i).transpose();
		out.push_back(e.predict(z.data(), &d));
	}
	return out;
}

// Recovers the centres from an estimator's serialized form (sub-format 1: u16, u32 k, u32 p, matrix).
MatrixXd centres(const pgml::Estimator &e)
{
	pgml::Writer w;
	e.write(w);
	pgml::Reader r(w.bytes().data(), w.bytes().size());
	r.u16();
	r.u32();
	r.u32();
	return r.mat();
}

bool always_cancel() { return true; }

std::vector<uint8_t> bytes_of(const pgml::Estimator &e)
{
	pgml::Writer w;
	e.write(w);
	return w.bytes();
}

pgml::EstimatorShape shape(int p)
{
	pgml::EstimatorShape s;
	s.p = p;
	s.task = pgml::Task::Clustering;
	return s;
}

// A random design with a few loose clusters (deterministic LCG).
MatrixXd random_rows(int n, int p, uint64_t seed)
{
	MatrixXd X(n, p);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < p; j++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			X(i, j) = static_cast<double>(seed >> 11) * 0x1.0p-53 + 3.0 * ((i * 7 + j) % 4);
		}
	return X;
}

} // namespace

TEST(KMeans, WellSeparatedBlobsGiveExactCentres)
{
	const MatrixXd X = blobs();
	auto est = pgml::fit_kmeans(input(X), params(3));
	MatrixXd C = centres(*est);
	ASSERT_EQ(C.rows(), 3);
	std::vector<std::pair<double, double>> got;
	for (int c = 0; c < 3; c++)
		got.push_back({C(c, 0), C(c, 1)});
	std::sort(got.begin(), got.end());
	EXPECT_EQ(got[0], std::make_pair(0.0, 0.0));
	EXPECT_EQ(got[1], std::make_pair(0.0, 10.0));
	EXPECT_EQ(got[2], std::make_pair(10.0, 0.0));
	// each blob is one cluster, at distance 1 from its centre
	std::vector<int> l = labels(*est, X);
	for (int c = 0; c < 3; c++)
		for (int i = 1; i < 4; i++)
			EXPECT_EQ(l[static_cast<size_t>(c * 4 + i)], l[static_cast<size_t>(c * 4)]);
	EXPECT_NE(l[0], l[4]);
	EXPECT_NE(l[0], l[8]);
	EXPECT_NE(l[4], l[8]);
	double d = -1;
	VectorXd z(2);
	z << 10, 1;
	EXPECT_EQ(est->predict(z.data(), &d), l[4]);
	EXPECT_DOUBLE_EQ(d, 1.0);
	z << 3, 4;
	EXPECT_EQ(est->predict(z.data(), &d), l[0]);
	EXPECT_DOUBLE_EQ(d, 5.0);
	EXPECT_EQ(std::string(est->importance_kind()), "separation");
	EXPECT_TRUE(est->can_continue());
}

TEST(KMeans, LogAndInertia)
{
	const MatrixXd X = random_rows(200, 3, 5);
	std::vector<pgml::IterationLog> log;
	pgml::FitInput in = input(X);
	in.log = &log;
	pgml::fit_kmeans(in, params(4, 3));
	ASSERT_GE(log.size(), 1u);
	for (size_t i = 0; i < log.size(); i++) {
		EXPECT_EQ(log[i].iteration, static_cast<int>(i) + 1);
		EXPECT_TRUE(std::isnan(log[i].grad_norm));
		if (i > 0) {
			EXPECT_LE(log[i].loss, log[i - 1].loss + 1e-9); // Lloyd never increases the inertia
		}
	}
	// blobs: the inertia of the exact solution is 12 (12 points at distance 1)
	std::vector<pgml::IterationLog> blog;
	const MatrixXd B = blobs();
	pgml::FitInput bin = input(B);
	bin.log = &blog;
	pgml::fit_kmeans(bin, params(3));
	EXPECT_DOUBLE_EQ(blog.back().loss, 12.0);
}

TEST(KMeans, DeterministicForASeedAndThreadCount)
{
	const MatrixXd X = random_rows(300, 4, 11);
	pgml::FitInput a = input(X, 7), b = input(X, 7), c = input(X, 7);
	c.threads = 2;
	auto ea = pgml::fit_kmeans(a, params(5));
	auto eb = pgml::fit_kmeans(b, params(5));
	auto ec = pgml::fit_kmeans(c, params(5));
	EXPECT_EQ(bytes_of(*ea), bytes_of(*eb));
	EXPECT_EQ(bytes_of(*ea), bytes_of(*ec));
	EXPECT_EQ(labels(*ea, X), labels(*ec, X));
}

TEST(KMeans, TooFewDistinctRowsIsAnError)
{
	MatrixXd X(6, 2);
	X << 1, 2, 1, 2, 3, 4, 3, 4, 5, 6, 1, 2; // 3 distinct rows
	try {
		pgml::fit_kmeans(input(X), params(4));
		FAIL() << "expected an error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::DataException);
		std::string msg = e.what();
		EXPECT_NE(msg.find("k = 4"), std::string::npos) << msg;
		EXPECT_NE(msg.find("3"), std::string::npos) << msg;
		EXPECT_NE(e.hint().find("Lower k to at most 3"), std::string::npos) << e.hint();
	}
	// exactly k distinct rows is fine: every row its own centre
	auto est = pgml::fit_kmeans(input(X), params(3));
	double d = -1;
	for (int i = 0; i < 6; i++) {
		VectorXd z = X.row(i).transpose();
		est->predict(z.data(), &d);
		EXPECT_EQ(d, 0.0);
	}
}

TEST(KMeans, ImportanceIsTheBetweenClusterShare)
{
	// feature 0 separates two groups, feature 1 is the same spread inside both
	MatrixXd X(8, 2);
	X << -5, -1, -5, 1, -5, -2, -5, 2, 5, -1, 5, 1, 5, -2, 5, 2;
	auto est = pgml::fit_kmeans(input(X), params(2));
	VectorXd imp = est->importance();
	ASSERT_EQ(imp.size(), 2);
	EXPECT_NEAR(imp(0), 1.0, 1e-12);
	EXPECT_NEAR(imp(1), 0.0, 1e-12);
}

TEST(KMeans, ContinueFitAddsRowsToTheirCentres)
{
	// well separated: fit(A) then continue(B) gives the centres of fit(A and B)
	const MatrixXd A = blobs(false, 0), B = blobs(true, 0.5);
	MatrixXd AB(A.rows() + B.rows(), 2);
	AB << A, B;
	auto e1 = pgml::fit_kmeans(input(A), params(3));
	std::vector<pgml::IterationLog> log;
	pgml::FitInput in = input(B);
	in.log = &log;
	e1->continue_fit(in, params(3));
	EXPECT_GE(log.size(), 1u);
	auto e2 = pgml::fit_kmeans(input(AB), params(3));
	MatrixXd c1 = centres(*e1), c2 = centres(*e2);
	// match clusters through predict
	for (int c = 0; c < 3; c++) {
		VectorXd z = c1.row(c).transpose();
		double d;
		int k2 = e2->predict(z.data(), &d);
		EXPECT_LT(d, 1e-12);
		EXPECT_LT((c1.row(c) - c2.row(k2)).norm(), 1e-12);
	}
	EXPECT_LT((e1->importance() - e2->importance()).norm(), 1e-12);

	// rows all near one centre move only that one, as a weighted mean
	auto e3 = pgml::fit_kmeans(input(A), params(3));
	MatrixXd before = centres(*e3);
	MatrixXd Bn(2, 2);
	Bn << 11, 0, 11, 0;
	e3->continue_fit(input(Bn), params(3));
	MatrixXd after = centres(*e3);
	for (int c = 0; c < 3; c++) {
		if (before(c, 0) == 10) {
			EXPECT_NEAR(after(c, 0), (4 * 10 + 2 * 11) / 6.0, 1e-12);
		} else {
			EXPECT_EQ(after.row(c), before.row(c));
		}
	}
}

TEST(KMeans, SerializationRoundTrip)
{
	const MatrixXd X = random_rows(100, 3, 3);
	auto est = pgml::fit_kmeans(input(X), params(4, 2));
	std::vector<uint8_t> b = bytes_of(*est);
	pgml::Reader r(b.data(), b.size());
	auto back = pgml::read_kmeans(r, shape(3));
	EXPECT_TRUE(r.at_end());
	EXPECT_EQ(bytes_of(*back), b);
	for (Eigen::Index i = 0; i < X.rows(); i++) {
		VectorXd z = X.row(i).transpose();
		double d1, d2;
		EXPECT_EQ(est->predict(z.data(), &d1), back->predict(z.data(), &d2));
		EXPECT_EQ(d1, d2);
	}
	EXPECT_EQ(est->importance(), back->importance());
	// wrong shape
	pgml::Reader r2(b.data(), b.size());
	EXPECT_THROW(pgml::read_kmeans(r2, shape(4)), pgml::Error);
}

TEST(KMeans, TruncationAndCorruptionAreErrors)
{
	const MatrixXd X = random_rows(60, 2, 9);
	auto est = pgml::fit_kmeans(input(X), params(3, 1));
	const std::vector<uint8_t> b = bytes_of(*est);
	for (size_t len = 0; len < b.size(); len++) {
		pgml::Reader r(b.data(), len);
		try {
			pgml::read_kmeans(r, shape(2));
			ADD_FAILURE() << "truncation to " << len << " bytes accepted";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), pgml::ErrorCode::DataCorrupted);
		}
	}
	// every single-byte change is rejected or gives a model that predicts without crashing
	for (size_t i = 0; i < b.size(); i++)
		for (uint8_t v : {uint8_t(0), uint8_t(0xFF), uint8_t(b[i] ^ 0x40)}) {
			std::vector<uint8_t> c = b;
			c[i] = v;
			pgml::Reader r(c.data(), c.size());
			try {
				auto m = pgml::read_kmeans(r, shape(2));
				double z[2] = {0.5, 1.5}, d;
				int k = m->predict(z, &d);
				EXPECT_GE(k, 0);
				m->importance();
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), pgml::ErrorCode::DataCorrupted);
			}
		}
}

TEST(KMeans, Cancellation)
{
	const MatrixXd X = random_rows(100, 2, 1);
	pgml::FitInput in = input(X);
	in.cancel = always_cancel;
	try {
		pgml::fit_kmeans(in, params(3));
		FAIL() << "expected a cancellation";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
	auto est = pgml::fit_kmeans(input(X), params(3));
	try {
		est->continue_fit(in, params(3));
		FAIL() << "expected a cancellation";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
}

TEST(KMeans, HyperparameterSpecs)
{
	auto specs = pgml::kmeans_params();
	ASSERT_EQ(specs.size(), 4u);
	for (const pgml::ParamSpec &s : specs) {
		EXPECT_LE(s.min, s.def) << s.name;
		EXPECT_LE(s.def, s.max) << s.name;
	}
	EXPECT_EQ(specs[0].name, "k");
	EXPECT_EQ(specs[0].kind, pgml::ParamSpec::Kind::Int);
	EXPECT_EQ(specs[0].min, 2);
	EXPECT_EQ(specs[0].max, 10000);
	EXPECT_EQ(specs[0].def, 8);
	EXPECT_EQ(specs[1].name, "n_init");
	EXPECT_EQ(specs[1].def, 10);
	EXPECT_EQ(specs[2].name, "max_iter");
	EXPECT_EQ(specs[2].def, 300);
	EXPECT_EQ(specs[3].name, "tol");
	EXPECT_EQ(specs[3].def, 1e-4);
}
