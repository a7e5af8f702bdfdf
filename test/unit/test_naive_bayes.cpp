// Naive Bayes: agreement with scikit-learn 1.2's GaussianNB (iris) and CategoricalNB (a small
// hand-made set), mixed numeric and one-hot features, unseen levels, exact incremental
// retraining, importance, serialization (round trip, truncation, corruption), cancellation
// and the hyperparameter specs.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "models/naive_bayes.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

// sklearn's iris.csv: 4 features and the class.
const char *kIris =
	"5.1 3.5 1.4 0.2 0\n" "4.9 3.0 1.4 0.2 0\n" "4.7 3.2 1.3 0.2 0\n" "4.6 3.1 1.5 0.2 0\n" "5.0 3.6 1.4 0.2 0\n"
	"5.4 3.9 1.7 0.4 0\n" "4.6 3.4 1.4 0.3 0\n" "5.0 3.4 1.5 0.2 0\n" "4.4 2.9 1.4 0.2 0\n" "4.9 3.1 1.5 0.1 0\n"
	"5.4 3.7 1.5 0.2 0\n" "4.8 3.4 1.6 0.2 0\n" "4.8 3.0 1.4 0.1 0\n" "4.3 3.0 1.1 0.1 0\n" "5.8 4.0 1.2 0.2 0\n"
	"5.7 4.4 1.5 0.4 0\n" "5.4 3.9 1.3 0.4 0\n" "5.1 3.5 1.4 0.3 0\n" "5.7 3.8 1.7 0.3 0\n" "5.1 3.8 1.5 0.3 0\n"
	"5.4 3.4 1.7 0.2 0\n" "5.1 3.7 1.5 0.4 0\n" "4.6 3.6 1.0 0.2 0\n" "5.1 3.3 1.7 0.5 0\n" "4.8 3.4 1.9 0.2 0\n"
	"5.0 3.0 1.6 0.2 0\n" "5.0 3.4 1.6 0.4 0\n" "5.2 3.5 1.5 0.2 0\n" "5.2 3.4 1.4 0.2 0\n" "4.7 3.2 1.6 0.2 0\n"
	"4.8 3.1 1.6 0.2 0\n" "5.4 3.4 1.5 0.4 0\n" "5.2 4.1 1.5 0.1 0\n" "5.5 4.2 1.4 0.2 0\n" "4.9 3.1 1.5 0.2 0\n"
	"5.0 3.2 1.2 0.2 0\n" "5.5 3.5 1.3 0.2 0\n" "4.9 3.6 1.4 0.1 0\n" "4.4 3.0 1.3 0.2 0\n" "5.1 3.4 1.5 0.2 0\n"
	"5.0 3.5 1.3 0.3 0\n" "4.5 2.3 1.3 0.3 0\n" "4.4 3.2 1.3 0.2 0\n" "5.0 3.5 1.6 0.6 0\n" "5.1 3.8 1.9 0.4 0\n"
	"4.8 3.0 1.4 0.3 0\n" "5.1 3.8 1.6 0.2 0\n" "4.6 3.2 1.4 0.2 0\n" "5.3 3.7 1.5 0.2 0\n" "5.0 3.3 1.4 0.2 0\n"
	"7.0 3.2 4.7 1.4 1\n" "6.4 3.2 4.5 1.5 1\n" "6.9 3.1 4.9 1.5 1\n" "5.5 2.3 4.0 1.3 1\n" "6.5 2.8 4.6 1.5 1\n"
	"5.7 2.8 4.5 1.3 1\n" "6.3 3.3 4.7 1.6 1\n" "4.9 2.4 3.3 1.0 1\n" "6.6 2.9 4.6 1.3 1\n" "5.2 2.7 3.9 1.4 1\n"
	"5.0 2.0 3.5 1.0 1\n" "5.9 3.0 4.2 1.5 1\n" "6.0 2.2 4.0 1.0 1\n" "6.1 2.9 4.7 1.4 1\n" "5.6 2.9 3.6 1.3 1\n"
	"6.7 3.1 4.4 1.4 1\n" "5.6 3.0 4.5 1.5 1\n" "5.8 2.7 4.1 1.0 1\n" "6.2 2.2 4.5 1.5 1\n" "5.6 2.5 3.9 1.1 1\n"
	"5.9 3.2 4.8 1.8 1\n" "6.1 2.8 4.0 1.3 1\n" "6.3 2.5 4.9 1.5 1\n" "6.1 2.8 4.7 1.2 1\n" "6.4 2.9 4.3 1.3 1\n"
	"6.6 3.0 4.4 1.4 1\n" "6.8 2.8 4.8 1.4 1\n" "6.7 3.0 5.0 1.7 1\n" "6.0 2.9 4.5 1.5 1\n" "5.7 2.6 3.5 1.0 1\n"
	"5.5 2.4 3.8 1.1 1\n" "5.5 2.4 3.7 1.0 1\n" "5.8 2.7 3.9 1.2 1\n" "6.0 2.7 5.1 1.6 1\n" "5.4 3.0 4.5 1.5 1\n"
	"6.0 3.4 4.5 1.6 1\n" "6.7 3.1 4.7 1.5 1\n" "6.3 2.3 4.4 1.3 1\n" "5.6 3.0 4.1 1.3 1\n" "5.5 2.5 4.0 1.3 1\n"
	"5.5 2.6 4.4 1.2 1\n" "6.1 3.0 4.6 1.4 1\n" "5.8 2.6 4.0 1.2 1\n" "5.0 2.3 3.3 1.0 1\n" "5.6 2.7 4.2 1.3 1\n"
	"5.7 3.0 4.2 1.2 1\n" "5.7 2.9 4.2 1.3 1\n" "6.2 2.9 4.3 1.3 1\n" "5.1 2.5 3.0 1.1 1\n" "5.7 2.8 4.1 1.3 1\n"
	"6.3 3.3 6.0 2.5 2\n" "5.8 2.7 5.1 1.9 2\n" "7.1 3.0 5.9 2.1 2\n" "6.3 2.9 5.6 1.8 2\n" "6.5 3.0 5.8 2.2 2\n"
	"7.6 3.0 6.6 2.1 2\n" "4.9 2.5 4.5 1.7 2\n" "7.3 2.9 6.3 1.8 2\n" "6.7 2.5 5.8 1.8 2\n" "7.2 3.6 6.1 2.5 2\n"
	"6.5 3.2 5.1 2.0 2\n" "6.4 2.7 5.3 1.9 2\n" "6.8 3.0 5.5 2.1 2\n" "5.7 2.5 5.0 2.0 2\n" "5.8 2.8 5.1 2.4 2\n"
	"6.4 3.2 5.3 2.3 2\n" "6.5 3.0 5.5 1.8 2\n" "7.7 3.8 6.7 2.2 2\n" "7.7 2.6 6.9 2.3 2\n" "6.0 2.2 5.0 1.5 2\n"
	"6.9 3.2 5.7 2.3 2\n" "5.6 2.8 4.9 2.0 2\n" "7.7 2.8 6.7 2.0 2\n" "6.3 2.7 4.9 1.8 2\n" "6.7 3.3 5.7 2.1 2\n"
	"7.2 3.2 6.0 1.8 2\n" "6.2 2.8 4.8 1.8 2\n" "6.1 3.0 4.9 1.8 2\n" "6.4 2.8 5.6 2.1 2\n" "7.2 3.0 5.8 1.6 2\n"
	"7.4 2.8 6.1 1.9 2\n" "7.9 3.8 6.4 2.0 2\n" "6.4 2.8 5.6 2.2 2\n" "6.3 2.8 5.1 1.5 2\n" "6.1 2.6 5.6 1.4 2\n"
	"7.7 3.0 6.1 2.3 2\n" "6.3 3.4 5.6 2.4 2\n" "6.4 3.1 5.5 1.8 2\n" "6.0 3.0 4.8 1.8 2\n" "6.9 3.1 5.4 2.1 2\n"
	"6.7 3.1 5.6 2.4 2\n" "6.9 3.1 5.1 2.3 2\n" "5.8 2.7 5.1 1.9 2\n" "6.8 3.2 5.9 2.3 2\n" "6.7 3.3 5.7 2.5 2\n"
	"6.7 3.0 5.2 2.3 2\n" "6.3 2.5 5.0 1.9 2\n" "6.5 3.0 5.2 2.0 2\n" "6.2 3.4 5.4 2.3 2\n" "5.9 3.0 5.1 1.8 2\n";

// Iris standardized like StandardScaler (population standard deviation), and its classes.
void iris(MatrixXd *Z, VectorXd *y)
{
	std::istringstream in(kIris);
	Z->resize(150, 4);
	y->resize(150);
	for (int i = 0; i < 150; i++)
		in >> (*Z)(i, 0) >> (*Z)(i, 1) >> (*Z)(i, 2) >> (*Z)(i, 3) >> (*y)(i);
	for (int j = 0; j < 4; j++) {
		double m = Z->col(j).mean();
		double sd = std::sqrt((Z->col(j).array() - m).square().mean());
		Z->col(j) = (Z->col(j).array() - m) / sd;
	}
}

pgml::Params params(double var_smoothing = 1e-9, double alpha = 1.0)
{
	pgml::Params p;
	for (const pgml::ParamSpec &s : pgml::naive_bayes_params())
		p.set_num(s.name, s.def);
	p.set_num("var_smoothing", var_smoothing);
	p.set_num("alpha", alpha);
	return p;
}

pgml::FitInput input(const MatrixXd &X, const VectorXd &y, int K, const std::vector<int> *groups = nullptr)
{
	pgml::FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = pgml::Task::Classification;
	in.n_classes = K;
	in.feature_group = groups;
	return in;
}

std::vector<double> proba(const pgml::Estimator &e, const VectorXd &z, int K, int *cls = nullptr)
{
	std::vector<double> out(static_cast<size_t>(K));
	int c = e.predict(z.data(), out.data());
	if (cls)
		*cls = c;
	return out;
}

void expect_proba(const std::vector<double> &got, const std::vector<double> &want, double tol)
{
	ASSERT_EQ(got.size(), want.size());
	double s = 0;
	for (size_t k = 0; k < got.size(); k++) {
		EXPECT_NEAR(got[k], want[k], tol) << "class " << k;
		s += got[k];
	}
	EXPECT_NEAR(s, 1.0, 1e-12);
}

// The hand-made categorical set: color (3 levels), size (2 levels), a numeric x, 3 classes.
const int kColor[16] = {0, 0, 1, 2, 0, 1, 1, 2, 2, 0, 1, 2, 0, 2, 1, 0};
const int kSize[16] = {0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1};
const double kNum[16] = {0.3, -1.2, 0.8, 1.5, -0.4, 0.1, 0.9, 2.0, 1.1, -0.8, 0.5, 1.7, -0.2, 1.3, 0.6, -1.0};
const int kClass[16] = {0, 0, 1, 2, 0, 1, 1, 2, 2, 0, 1, 2, 1, 2, 0, 0};

// One-hot row: [x (if with_num)], color (3), size (2); a level of -1 leaves its group all zero.
VectorXd onehot(int color, int size, bool with_num = false, double x = 0)
{
	const int o = with_num ? 1 : 0;
	VectorXd z = VectorXd::Zero(5 + o);
	if (with_num)
		z(0) = x;
	if (color >= 0)
		z(o + color) = 1;
	if (size >= 0)
		z(o + 3 + size) = 1;
	return z;
}

// The set as one-hot features (and its feature groups: the input columns 0 = x, 1 = color, 2 = size).
void categorical_set(bool with_num, MatrixXd *X, VectorXd *y, std::vector<int> *groups)
{
	X->resize(16, with_num ? 6 : 5);
	y->resize(16);
	for (int i = 0; i < 16; i++) {
		X->row(i) = onehot(kColor[i], kSize[i], with_num, kNum[i]).transpose();
		(*y)(i) = kClass[i];
	}
	if (with_num)
		*groups = {-1, 1, 1, 1, 2, 2};
	else
		*groups = {0, 0, 0, 1, 1};
}

std::vector<uint8_t> bytes_of(const pgml::Estimator &e)
{
	pgml::Writer w;
	e.write(w);
	return w.bytes();
}

pgml::EstimatorShape shape(int p, int K)
{
	pgml::EstimatorShape s;
	s.p = p;
	s.n_classes = K;
	s.task = pgml::Task::Classification;
	return s;
}

bool always_cancel() { return true; }

} // namespace

TEST(NaiveBayes, IrisMatchesGaussianNB)
{
	MatrixXd Z;
	VectorXd y;
	iris(&Z, &y);
	auto est = pgml::fit_naive_bayes(input(Z, y, 3), params());
	// sklearn 1.2.1 GaussianNB().fit(StandardScaler().fit_transform(X), y).predict_proba
	const int rows[8] = {0, 50, 70, 83, 100, 119, 133, 149};
	const std::vector<std::vector<double>> want = {
		{1.0, 1.3578409676233027e-18, 7.112828700473758e-26},
		{3.2137632891293436e-109, 0.8040376755209874, 0.19596232447901227},
		{2.5914717216507072e-130, 0.15449406133364743, 0.8455059386663527},
		{2.140655667625251e-135, 0.61215984663646, 0.38784015336354016},
		{3.2322773502180644e-254, 6.353803053344444e-11, 0.9999999999364625},
		{6.310759494003766e-126, 0.9581353655490074, 0.04186463445099304},
		{2.6837808680885747e-131, 0.7126451561713151, 0.2873548438286851},
		{3.259798910346172e-146, 0.056005000314815034, 0.9439949996851849}};
	for (int r = 0; r < 8; r++) {
		SCOPED_TRACE("row " + std::to_string(rows[r]));
		expect_proba(proba(*est, Z.row(rows[r]).transpose(), 3), want[static_cast<size_t>(r)], 1e-6);
	}
	// sklearn's training accuracy is 0.96
	int right = 0;
	for (int i = 0; i < 150; i++) {
		int c = -1;
		proba(*est, Z.row(i).transpose(), 3, &c);
		right += c == static_cast<int>(y(i));
	}
	EXPECT_EQ(right, 144);
	EXPECT_EQ(std::string(est->importance_kind()), "separation");
	EXPECT_TRUE(est->can_continue());
	// petal features separate the species far better than sepal width
	VectorXd imp = est->importance();
	EXPECT_GT(imp(2), 10 * imp(1));
	EXPECT_GT(imp(3), 10 * imp(1));
}

TEST(NaiveBayes, CategoricalMatchesCategoricalNB)
{
	MatrixXd X;
	VectorXd y;
	std::vector<int> groups;
	categorical_set(false, &X, &y, &groups);
	// sklearn 1.2.1 CategoricalNB(alpha).fit([[color, size]], y).predict_proba over the 6 combinations,
	// and CategoricalNB(alpha).fit([[size]], y) for rows whose color is unseen
	struct Ref {
		double alpha;
		std::vector<std::vector<double>> grid, size_only;
	};
	const std::vector<Ref> refs = {
		{1.0,
		 {{0.5833333333333334, 0.2777777777777779, 0.13888888888888892},
		  {0.7567567567567569, 0.1621621621621621, 0.08108108108108104},
		  {0.18918918918918926, 0.6756756756756757, 0.13513513513513514},
		  {0.3414634146341465, 0.5487804878048781, 0.1097560975609756},
		  {0.09090909090909094, 0.1298701298701299, 0.7792207792207791},
		  {0.18181818181818182, 0.11688311688311682, 0.7012987012987012}},
		 {{0.2825112107623319, 0.35874439461883406, 0.35874439461883406},
		  {0.4666666666666668, 0.2666666666666667, 0.2666666666666667}}},
		{0.5,
		 {{0.6364985163204748, 0.27262611275964393, 0.09087537091988131},
		  {0.8152449324324325, 0.1385663006756757, 0.046188766891891886},
		  {0.1603838245373543, 0.7556545579163811, 0.08396161754626455},
		  {0.3249498534176826, 0.6075451319240857, 0.06750501465823174},
		  {0.050387596899224785, 0.0791343669250646, 0.8704780361757107},
		  {0.1179435483870968, 0.07350470430107527, 0.8085517473118281}},
		 {{0.2686567164179104, 0.36567164179104483, 0.36567164179104483},
		  {0.4807121661721069, 0.2596439169139466, 0.2596439169139466}}}};
	for (const Ref &ref : refs) {
		SCOPED_TRACE("alpha " + std::to_string(ref.alpha));
		auto est = pgml::fit_naive_bayes(input(X, y, 3, &groups), params(1e-9, ref.alpha));
		for (int c = 0; c < 3; c++)
			for (int s = 0; s < 2; s++)
				expect_proba(proba(*est, onehot(c, s), 3), ref.grid[static_cast<size_t>(c * 2 + s)], 1e-12);
		for (int s = 0; s < 2; s++)
			expect_proba(proba(*est, onehot(-1, s), 3), ref.size_only[static_cast<size_t>(s)], 1e-12);
	}
}

TEST(NaiveBayes, MixedNumericAndCategorical)
{
	MatrixXd X;
	VectorXd y;
	std::vector<int> groups;
	categorical_set(true, &X, &y, &groups);
	auto est = pgml::fit_naive_bayes(input(X, y, 3, &groups), params());
	// softmax of GaussianNB([[x]]) + CategoricalNB([[color, size]]) joint log-likelihoods minus one log prior
	expect_proba(proba(*est, onehot(1, 0, true, 0.7), 3),
	             {0.05036017630478259, 0.9396145990556484, 0.010025224639569001}, 1e-9);
	expect_proba(proba(*est, onehot(0, 1, true, -0.5), 3),
	             {0.9707951362014335, 0.029204863612427814, 1.8613863363931693e-10}, 1e-9);
	expect_proba(proba(*est, onehot(2, 1, true, 1.8), 3),
	             {0.0006958603688980123, 0.0007735256241292362, 0.9985306140069727}, 1e-9);
	// importance: one value per categorical group
	VectorXd imp = est->importance();
	EXPECT_EQ(imp(1), imp(2));
	EXPECT_EQ(imp(1), imp(3));
	EXPECT_EQ(imp(4), imp(5));
	EXPECT_GT(imp(1), 0);
}

TEST(NaiveBayes, ImportanceKnownAnswer)
{
	// class 0: -2, 0 (mean -1, variance 1); class 1: 0, 2 (mean 1, variance 1): between 1, within 1
	MatrixXd X(4, 1);
	X << -2, 0, 0, 2;
	VectorXd y(4);
	y << 0, 0, 1, 1;
	auto est = pgml::fit_naive_bayes(input(X, y, 2), params());
	EXPECT_NEAR(est->importance()(0), 1.0 / (1.0 + 2e-9), 1e-15); // epsilon = 1e-9 * total variance 2
}

TEST(NaiveBayes, ContinueFitEqualsFullFit)
{
	MatrixXd Z;
	VectorXd y;
	iris(&Z, &y);
	// A: every third row, B: the rest
	MatrixXd A(50, 4), B(100, 4);
	VectorXd ya(50), yb(100);
	for (int i = 0, a = 0, b = 0; i < 150; i++) {
		if (i % 3 == 0) {
			A.row(a) = Z.row(i);
			ya(a++) = y(i);
		} else {
			B.row(b) = Z.row(i);
			yb(b++) = y(i);
		}
	}
	auto inc = pgml::fit_naive_bayes(input(A, ya, 3), params());
	std::vector<pgml::IterationLog> log;
	pgml::FitInput more = input(B, yb, 3);
	more.log = &log;
	inc->continue_fit(more, params());
	EXPECT_EQ(log.size(), 1u);
	MatrixXd AB(150, 4);
	AB << A, B;
	VectorXd yab(150);
	yab << ya, yb;
	auto full = pgml::fit_naive_bayes(input(AB, yab, 3), params());
	for (int i = 0; i < 150; i++) {
		std::vector<double> p1 = proba(*inc, Z.row(i).transpose(), 3), p2 = proba(*full, Z.row(i).transpose(), 3);
		for (int k = 0; k < 3; k++)
			EXPECT_NEAR(p1[static_cast<size_t>(k)], p2[static_cast<size_t>(k)], 1e-12);
	}
	EXPECT_LT((inc->importance() - full->importance()).cwiseAbs().maxCoeff(), 1e-12);

	// the same with one-hot groups, and a class missing from the first part
	MatrixXd X;
	VectorXd yc;
	std::vector<int> groups;
	categorical_set(true, &X, &yc, &groups);
	std::vector<int> first, second;
	for (int i = 0; i < 16; i++)
		(yc(i) == 2 || i % 2 ? second : first).push_back(i);
	MatrixXd X1(static_cast<Eigen::Index>(first.size()), 6), X2(static_cast<Eigen::Index>(second.size()), 6);
	VectorXd y1(X1.rows()), y2(X2.rows());
	for (size_t i = 0; i < first.size(); i++) {
		X1.row(static_cast<Eigen::Index>(i)) = X.row(first[i]);
		y1(static_cast<Eigen::Index>(i)) = yc(first[i]);
	}
	for (size_t i = 0; i < second.size(); i++) {
		X2.row(static_cast<Eigen::Index>(i)) = X.row(second[i]);
		y2(static_cast<Eigen::Index>(i)) = yc(second[i]);
	}
	auto inc2 = pgml::fit_naive_bayes(input(X1, y1, 3, &groups), params());
	EXPECT_EQ(proba(*inc2, onehot(2, 1, true, 1.8), 3)[2], 0.0); // class 2 not seen yet
	inc2->continue_fit(input(X2, y2, 3, &groups), params());
	auto full2 = pgml::fit_naive_bayes(input(X, yc, 3, &groups), params());
	for (int i = 0; i < 16; i++) {
		std::vector<double> p1 = proba(*inc2, X.row(i).transpose(), 3), p2 = proba(*full2, X.row(i).transpose(), 3);
		for (int k = 0; k < 3; k++)
			EXPECT_NEAR(p1[static_cast<size_t>(k)], p2[static_cast<size_t>(k)], 1e-12);
	}
	EXPECT_LT((inc2->importance() - full2->importance()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(NaiveBayes, DeterministicAndSerializationRoundTrip)
{
	MatrixXd X;
	VectorXd y;
	std::vector<int> groups;
	categorical_set(true, &X, &y, &groups);
	auto est = pgml::fit_naive_bayes(input(X, y, 3, &groups), params());
	auto again = pgml::fit_naive_bayes(input(X, y, 3, &groups), params());
	const std::vector<uint8_t> b = bytes_of(*est);
	EXPECT_EQ(bytes_of(*again), b);
	pgml::Reader r(b.data(), b.size());
	auto back = pgml::read_naive_bayes(r, shape(6, 3));
	EXPECT_TRUE(r.at_end());
	EXPECT_EQ(bytes_of(*back), b);
	EXPECT_EQ(back->importance(), est->importance());
	for (int i = 0; i < 16; i++) {
		int c1, c2;
		EXPECT_EQ(proba(*est, X.row(i).transpose(), 3, &c1), proba(*back, X.row(i).transpose(), 3, &c2));
		EXPECT_EQ(c1, c2);
	}
	// the read model keeps its statistics: it can still be retrained incrementally
	back->continue_fit(input(X, y, 3, &groups), params());
	pgml::Reader r2(b.data(), b.size());
	EXPECT_THROW(pgml::read_naive_bayes(r2, shape(6, 4)), pgml::Error);
	pgml::Reader r3(b.data(), b.size());
	EXPECT_THROW(pgml::read_naive_bayes(r3, shape(5, 3)), pgml::Error);
}

TEST(NaiveBayes, TruncationAndCorruptionAreErrors)
{
	MatrixXd X;
	VectorXd y;
	std::vector<int> groups;
	categorical_set(true, &X, &y, &groups);
	auto est = pgml::fit_naive_bayes(input(X, y, 3, &groups), params());
	const std::vector<uint8_t> b = bytes_of(*est);
	for (size_t len = 0; len < b.size(); len++) {
		pgml::Reader r(b.data(), len);
		try {
			pgml::read_naive_bayes(r, shape(6, 3));
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
				auto m = pgml::read_naive_bayes(r, shape(6, 3));
				int k = -1;
				proba(*m, X.row(static_cast<Eigen::Index>(i % 16)).transpose(), 3, &k);
				EXPECT_GE(k, 0);
				EXPECT_LT(k, 3);
				m->importance();
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), pgml::ErrorCode::DataCorrupted);
			}
		}
}

TEST(NaiveBayes, CancellationAndLog)
{
	MatrixXd Z;
	VectorXd y;
	iris(&Z, &y);
	pgml::FitInput in = input(Z, y, 3);
	in.cancel = always_cancel;
	try {
		pgml::fit_naive_bayes(in, params());
		FAIL() << "expected a cancellation";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
	std::vector<pgml::IterationLog> log;
	pgml::FitInput li = input(Z, y, 3);
	li.log = &log;
	pgml::fit_naive_bayes(li, params());
	ASSERT_EQ(log.size(), 1u);
	EXPECT_GT(log[0].loss, 0);
	EXPECT_LT(log[0].loss, 0.2); // mean negative log-likelihood of the true class
}

TEST(NaiveBayes, HyperparameterSpecs)
{
	auto specs = pgml::naive_bayes_params();
	ASSERT_EQ(specs.size(), 2u);
	EXPECT_EQ(specs[0].name, "var_smoothing");
	EXPECT_EQ(specs[0].def, 1e-9);
	EXPECT_TRUE(specs[0].min_exclusive);
	EXPECT_EQ(specs[1].name, "alpha");
	EXPECT_EQ(specs[1].def, 1.0);
	for (const pgml::ParamSpec &s : specs) {
		EXPECT_LE(s.min, s.def) << s.name;
		EXPECT_LE(s.def, s.max) << s.name;
	}
}
