// decision_tree (CART, models/tree.hpp): hand-computed splits, thresholds, leaf values and
// importances, exact agreement with scikit-learn 1.2 on a small tie-free data set, determinism,
// serialization (round trip, truncations, corrupted bytes, crafted bodies), cancellation and
// the hyperparameter specs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "estimator.hpp"
#include "models/decision_tree.hpp"
#include "models/tree.hpp"
#include "serialize.hpp"
#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::ErrorCode;
using pgml::Estimator;
using pgml::FitInput;
using pgml::OptionValue;
using pgml::Options;
using pgml::Task;

namespace {

const pgml::AlgorithmDef &tree_def()
{
	static const pgml::AlgorithmDef def{pgml::Algorithm::DecisionTree, "decision_tree", true, true, false, false,
	                                    pgml::decision_tree_params(), pgml::fit_decision_tree,
	                                    pgml::read_decision_tree};
	return def;
}

struct Fitted {
	std::unique_ptr<Estimator> est;
	std::vector<pgml::IterationLog> log;
};

// Fits a decision tree with the given hyperparameters (validated like the trainer does).
Fitted fit_tree(const MatrixXd &X, const VectorXd &y, Task task, int K, const Options &opts = {}, uint64_t seed = 42,
                pgml::CancelCheck cancel = nullptr)
{
	Fitted f;
	FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = task;
	in.n_classes = K;
	in.seed = seed;
	in.cancel = cancel;
	in.log = &f.log;
	f.est = pgml::fit_decision_tree(in, pgml::parse_params(tree_def(), opts));
	return f;
}

Options opt_num(std::initializer_list<std::pair<const char *, double>> kv)
{
	Options o;
	for (const auto &[k, v] : kv)
		o[k] = OptionValue::of_number(v);
	return o;
}

// Predicts row z; returns the class (or 0) and fills out.
int predict(const Estimator &e, std::vector<double> z, std::vector<double> &out)
{
	return e.predict(z.data(), out.data());
}

double predict_value(const Estimator &e, std::vector<double> z)
{
	double out = NAN;
	e.predict(z.data(), &out);
	return out;
}

std::vector<uint8_t> bytes_of(const Estimator &e)
{
	pgml::Writer w;
	e.write(w);
	return w.bytes();
}

// The tie-free data set the scikit-learn reference numbers below were computed on.
MatrixXd sk_X()
{
	MatrixXd X(40, 3);
	for (int i = 0; i < 40; i++)
		for (int j = 0; j < 3; j++)
			X(i, j) = std::round(std::sin(1.3 * i * (j + 1) + 0.7 * j) * 1000) / 1000;
	return X;
}

// A noisy 3-class problem on 4 features for determinism and serialization tests.
void noisy_data(int n, MatrixXd &X, VectorXd &yc, VectorXd &yr)
{
	X.resize(n, 4);
	yc.resize(n);
	yr.resize(n);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 4; j++)
			X(i, j) = std::sin(0.37 * i * (j + 2) + j) + 0.1 * std::cos(7.1 * i + j);
		yr(i) = 2 * X(i, 0) - X(i, 2) * X(i, 3) + 0.2 * std::sin(11.0 * i);
		yc(i) = X(i, 0) + 0.3 * std::sin(5.0 * i) > 0.3 ? 2 : X(i, 1) > 0 ? 1 : 0;
	}
}

} // namespace

TEST(DecisionTree, StumpThresholdIsTheMidpoint)
{
	MatrixXd X(4, 1);
	X << 1, 2, 3, 4;
	VectorXd y(4);
	y << 0, 0, 10, 10;
	Fitted f = fit_tree(X, y, Task::Regression, 0);
	EXPECT_DOUBLE_EQ(predict_value(*f.est, {2.5}), 0);    // z <= threshold goes left
	EXPECT_DOUBLE_EQ(predict_value(*f.est, {2.5001}), 10);
	EXPECT_DOUBLE_EQ(predict_value(*f.est, {-100}), 0);
	EXPECT_DOUBLE_EQ(predict_value(*f.est, {100}), 10);
	EXPECT_DOUBLE_EQ(f.est->importance()(0), 1.0);
	EXPECT_STREQ(f.est->importance_kind(), "gain");
	ASSERT_EQ(f.log.size(), 1u);
	EXPECT_DOUBLE_EQ(f.log[0].loss, 0); // pure leaves
}

TEST(DecisionTree, RegressionImportancesByHand)
{
	// root splits x0 (decrease 4*26 - 2*1 - 2*1 = 100), each child splits x1 (decrease 2 each)
	MatrixXd X(4, 2);
	X << 0, 0, 0, 1, 1, 0, 1, 1;
	VectorXd y(4);
	y << 0, 2, 10, 12;
	Fitted f = fit_tree(X, y, Task::Regression, 0);
	EXPECT_NEAR(f.est->importance()(0), 100.0 / 104, 1e-12);
	EXPECT_NEAR(f.est->importance()(1), 4.0 / 104, 1e-12);
	for (int i = 0; i < 4; i++)
		EXPECT_DOUBLE_EQ(predict_value(*f.est, {X(i, 0), X(i, 1)}), y(i));
	// depth 1: leaves are the means 1 and 11, training MSE 1
	Fitted g = fit_tree(X, y, Task::Regression, 0, opt_num({{"max_depth", 1}}));
	EXPECT_DOUBLE_EQ(predict_value(*g.est, {0, 1}), 1);
	EXPECT_DOUBLE_EQ(predict_value(*g.est, {1, 0}), 11);
	EXPECT_DOUBLE_EQ(g.log[0].loss, 1);
	EXPECT_DOUBLE_EQ(g.est->importance()(0), 1);
	EXPECT_DOUBLE_EQ(g.est->importance()(1), 0);
}

TEST(DecisionTree, XorNeedsDepthTwo)
{
	MatrixXd X(8, 2);
	VectorXd y(8);
	for (int i = 0; i < 8; i++) {
		int a = (i >> 1) & 1, b = i & 1;
		X(i, 0) = a;
		X(i, 1) = b;
		y(i) = a ^ b;
	}
	std::vector<double> out(2);
	// depth 1: any split leaves both children half and half
	Fitted d1 = fit_tree(X, y, Task::Classification, 2, opt_num({{"max_depth", 1}}));
	predict(*d1.est, {0, 1}, out);
	EXPECT_DOUBLE_EQ(out[0], 0.5);
	EXPECT_DOUBLE_EQ(out[1], 0.5);
	EXPECT_DOUBLE_EQ(d1.log[0].loss, 0.5); // gini of the leaves
	// depth 2 (and unlimited) separate it exactly; all the gain is on the second level
	for (double depth : {2.0, 0.0}) {
		Fitted d2 = fit_tree(X, y, Task::Classification, 2, opt_num({{"max_depth", depth}}));
		for (int a = 0; a < 2; a++)
			for (int b = 0; b < 2; b++) {
				int c = predict(*d2.est, {double(a), double(b)}, out);
				EXPECT_EQ(c, a ^ b);
				EXPECT_DOUBLE_EQ(out[static_cast<size_t>(a ^ b)], 1.0);
			}
		EXPECT_DOUBLE_EQ(d2.est->importance()(0), 0);
		EXPECT_DOUBLE_EQ(d2.est->importance()(1), 1);
		EXPECT_DOUBLE_EQ(d2.log[0].loss, 0);
	}
	// a root split that does not lower the impurity is refused with min_impurity_decrease
	Fitted m = fit_tree(X, y, Task::Classification, 2, opt_num({{"min_impurity_decrease", 0.01}}));
	predict(*m.est, {1, 1}, out);
	EXPECT_DOUBLE_EQ(out[1], 0.5);
}

TEST(DecisionTree, MinSamplesLeafAndSplit)
{
	MatrixXd X(4, 1);
	X << 1, 2, 3, 4;
	VectorXd y(4);
	y << 0, 0, 0, 1;
	std::vector<double> out(2);
	Fitted free = fit_tree(X, y, Task::Classification, 2);
	EXPECT_EQ(predict(*free.est, {4}, out), 1);
	EXPECT_DOUBLE_EQ(out[1], 1);
	// with two rows per leaf the only split is at 2.5: the right leaf is half and half
	Fitted leaf2 = fit_tree(X, y, Task::Classification, 2, opt_num({{"min_samples_leaf", 2}}));
	EXPECT_EQ(predict(*leaf2.est, {4}, out), 0); // ties go to the lower class, like argmax
	EXPECT_DOUBLE_EQ(out[0], 0.5);
	EXPECT_DOUBLE_EQ(out[1], 0.5);
	predict(*leaf2.est, {2.5}, out);
	EXPECT_DOUBLE_EQ(out[0], 1);
	// a node of 4 rows is not split when min_samples_split is 5: one leaf with the frequencies
	Fitted root = fit_tree(X, y, Task::Classification, 2, opt_num({{"min_samples_split", 5}}));
	predict(*root.est, {1}, out);
	EXPECT_DOUBLE_EQ(out[0], 0.75);
	EXPECT_DOUBLE_EQ(out[1], 0.25);
	EXPECT_DOUBLE_EQ(root.log[0].loss, 1 - 0.75 * 0.75 - 0.25 * 0.25);
	EXPECT_DOUBLE_EQ(root.est->importance()(0), 0); // no split: all zero, not NaN
	// regression leaf = mean
	VectorXd yr(4);
	yr << 1, 2, 3, 10;
	Fitted reg = fit_tree(X, yr, Task::Regression, 0, opt_num({{"min_samples_split", 5}}));
	EXPECT_DOUBLE_EQ(predict_value(*reg.est, {0}), 4);
}

TEST(DecisionTree, EntropyCriterion)
{
	MatrixXd X(4, 1);
	X << 1, 1, 1, 1;
	VectorXd y(4);
	y << 0, 0, 1, 1;
	Options o = opt_num({});
	o["criterion"] = OptionValue::of_string("entropy");
	Fitted f = fit_tree(X, y, Task::Classification, 2, o); // a constant feature: no split
	EXPECT_DOUBLE_EQ(f.log[0].loss, 1.0);                 // one bit
	Fitted g = fit_tree(X, y, Task::Classification, 2);
	EXPECT_DOUBLE_EQ(g.log[0].loss, 0.5);
}

// scikit-learn 1.2 DecisionTreeRegressor(max_depth=2) / DecisionTreeClassifier(max_depth=2,
// criterion=...) on sk_X(): importances and predictions of the first 8 rows. No two candidate
// splits tie on this data up to depth 2, so the trees are identical (deeper, two features split a
// 5-row node into the same rows, and sklearn's random feature order picks the other one).
TEST(DecisionTree, MatchesScikitLearn)
{
	MatrixXd X = sk_X();
	VectorXd yr(40), yc(40);
	for (int i = 0; i < 40; i++) {
		yr(i) = X(i, 0) + 2 * X(i, 1) * X(i, 1) + std::cos(3 * X(i, 2));
		yc(i) = X(i, 0) + X(i, 1) < -0.3 ? 0 : X(i, 2) > 0 ? 1 : 2;
	}
	Fitted r = fit_tree(X, yr, Task::Regression, 0, opt_num({{"max_depth", 2}}));
	const double rimp[] = {0.5654045205974095, 0, 0.43459547940259047};
	const double rpred[] = {-0.9663858102300782, 0.35870482891337635, 2.173167531456877, 0.4162245111886006,
	                        0.4162245111886006,  0.4162245111886006,  2.173167531456877, 0.4162245111886006};
	for (int j = 0; j < 3; j++)
		EXPECT_NEAR(r.est->importance()(j), rimp[j], 1e-12);
	for (int i = 0; i < 8; i++)
		EXPECT_NEAR(predict_value(*r.est, {X(i, 0), X(i, 1), X(i, 2)}), rpred[i], 1e-12);

	const double gimp[] = {0.5830229307289304, 0, 0.4169770692710696};
	const double eimp[] = {0.5068459102185006, 0, 0.4931540897814994};
	const int cls[] = {1, 2, 1, 1, 0, 1, 2, 2};
	for (const char *crit : {"gini", "entropy"}) {
		SCOPED_TRACE(crit);
		Options o = opt_num({{"max_depth", 2}});
		o["criterion"] = OptionValue::of_string(crit);
		Fitted c = fit_tree(X, yc, Task::Classification, 3, o);
		const double *imp = std::string(crit) == "gini" ? gimp : eimp;
		for (int j = 0; j < 3; j++)
			EXPECT_NEAR(c.est->importance()(j), imp[j], 1e-12);
		std::vector<double> out(3);
		for (int i = 0; i < 8; i++) {
			EXPECT_EQ(predict(*c.est, {X(i, 0), X(i, 1), X(i, 2)}, out), cls[i]);
			if (i == 4) {
				EXPECT_NEAR(out[0], 8.0 / 9, 1e-12);
				EXPECT_NEAR(out[2], 1.0 / 9, 1e-12);
			}
		}
	}
}

TEST(DecisionTree, DeterministicForASeed)
{
	MatrixXd X;
	VectorXd yc, yr;
	noisy_data(300, X, yc, yr);
	Options o = opt_num({{"max_features", 2}});
	Fitted a = fit_tree(X, yc, Task::Classification, 3, o, 7);
	Fitted b = fit_tree(X, yc, Task::Classification, 3, o, 7);
	EXPECT_EQ(bytes_of(*a.est), bytes_of(*b.est));
	// another seed draws other features somewhere in the tree
	bool differs = false;
	for (uint64_t s = 8; s < 12 && !differs; s++)
		differs = bytes_of(*fit_tree(X, yc, Task::Classification, 3, o, s).est) != bytes_of(*a.est);
	EXPECT_TRUE(differs);
	// with every feature the seed does not matter
	EXPECT_EQ(bytes_of(*fit_tree(X, yr, Task::Regression, 0, {}, 1).est),
	          bytes_of(*fit_tree(X, yr, Task::Regression, 0, {}, 2).est));
}

TEST(DecisionTree, ResolveMaxFeatures)
{
	EXPECT_EQ(pgml::resolve_max_features(0, 10, 3), 3);
	EXPECT_EQ(pgml::resolve_max_features(1, 10, 3), 10);   // fraction 1 = all, like sklearn's 1.0
	EXPECT_EQ(pgml::resolve_max_features(0.5, 10, 3), 5);
	EXPECT_EQ(pgml::resolve_max_features(0.01, 10, 3), 1);
	EXPECT_EQ(pgml::resolve_max_features(4, 10, 3), 4);
	EXPECT_EQ(pgml::resolve_max_features(4.7, 10, 3), 4);
	EXPECT_EQ(pgml::resolve_max_features(50, 10, 3), 10);
}

TEST(DecisionTree, SerializationRoundTrip)
{
	MatrixXd X;
	VectorXd yc, yr;
	noisy_data(200, X, yc, yr);
	Fitted c = fit_tree(X, yc, Task::Classification, 3);
	Fitted r = fit_tree(X, yr, Task::Regression, 0);
	for (const Fitted *f : {&c, &r}) {
		bool cls = f == &c;
		pgml::EstimatorShape shape{4, cls ? 3 : 0, cls ? Task::Classification : Task::Regression};
		std::vector<uint8_t> b = bytes_of(*f->est);
		pgml::Reader rd(b.data(), b.size());
		auto back = pgml::read_decision_tree(rd, shape);
		EXPECT_TRUE(rd.at_end());
		EXPECT_EQ(bytes_of(*back), b);
		EXPECT_EQ(back->importance(), f->est->importance());
		std::vector<double> o1(3), o2(3);
		for (int i = 0; i < X.rows(); i++) {
			std::vector<double> z = {X(i, 0) + 0.01, X(i, 1), X(i, 2), X(i, 3)};
			EXPECT_EQ(predict(*f->est, z, o1), predict(*back, z, o2));
			EXPECT_EQ(o1, o2);
		}
		// the declared shape must match
		for (pgml::EstimatorShape bad : {pgml::EstimatorShape{5, shape.n_classes, shape.task},
		                                 pgml::EstimatorShape{4, cls ? 4 : 3, cls ? shape.task : Task::Classification},
		                                 pgml::EstimatorShape{4, 0, cls ? Task::Regression : Task::Clustering}}) {
			pgml::Reader r2(b.data(), b.size());
			try {
				pgml::read_decision_tree(r2, bad);
				ADD_FAILURE() << "accepted a shape mismatch";
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted);
			}
		}
	}
}

TEST(DecisionTree, EveryTruncationAndCorruptedByteIsRejected)
{
	MatrixXd X;
	VectorXd yc, yr;
	noisy_data(60, X, yc, yr);
	Fitted c = fit_tree(X, yc, Task::Classification, 3, opt_num({{"max_depth", 3}}));
	const pgml::EstimatorShape shape{4, 3, Task::Classification};
	const std::vector<uint8_t> b = bytes_of(*c.est);
	for (size_t len = 0; len < b.size(); len++) {
		std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(len));
		pgml::Reader r(t.empty() ? nullptr : t.data(), len);
		try {
			pgml::read_decision_tree(r, shape);
			ADD_FAILURE() << "accepted a truncation to " << len << " bytes";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
		}
	}
	for (size_t i = 0; i < b.size(); i++)
		for (uint8_t d : {0x01, 0x80, 0xFF}) {
			std::vector<uint8_t> t = b;
			t[i] ^= d;
			pgml::Reader r(t.data(), t.size());
			try {
				pgml::read_decision_tree(r, shape);
				ADD_FAILURE() << "accepted byte " << i << " ^ " << int(d);
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
			}
		}
}

// Bodies changed behind a valid checksum (a crafted blob): the structural checks must reject
// them, or what is accepted must predict without going out of bounds.
TEST(DecisionTree, CraftedBodiesAreValidated)
{
	MatrixXd X;
	VectorXd yc, yr;
	noisy_data(60, X, yc, yr);
	Fitted c = fit_tree(X, yc, Task::Classification, 3, opt_num({{"max_depth", 3}}));
	const pgml::EstimatorShape shape{4, 3, Task::Classification};
	const std::vector<uint8_t> b = bytes_of(*c.est);
	pgml::Reader r0(b.data(), b.size());
	uint16_t version = 0;
	const std::string body = pgml::read_checked(r0, 4, "decision_tree", &version);
	EXPECT_EQ(version, 3); // native missing values, covers
	int rejected = 0, accepted = 0;
	for (size_t i = 0; i < body.size(); i++)
		for (uint8_t d : {0x01, 0x40, 0xFF}) {
			std::vector<uint8_t> mb(body.begin(), body.end());
			mb[i] ^= d;
			pgml::Writer w;
			pgml::write_checked(w, version, mb);
			pgml::Reader r(w.bytes().data(), w.bytes().size());
			try {
				auto e = pgml::read_decision_tree(r, shape);
				accepted++;
				std::vector<double> out(3);
				for (int k = 0; k < 10; k++) {
					std::vector<double> z = {X(k, 0), X(k, 1), X(k, 2), X(k, 3)};
					int cl = predict(*e, z, out);
					EXPECT_TRUE(cl >= 0 && cl < 3);
					// accepted covers are consistent: the SHAP values add up
					pgml_test::expect_contributions_add_up(*e, z.data(), cl, 4, out[static_cast<size_t>(cl)]);
				}
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
				rejected++;
			}
		}
	EXPECT_GT(rejected, 0);
	EXPECT_GT(accepted, 0); // flipped low bits of thresholds are plausible values
}

namespace {
bool always_cancel() { return true; }
int cancel_calls = 0;
bool cancel_later() { return ++cancel_calls > 5; }
} // namespace

TEST(DecisionTree, Cancellation)
{
	MatrixXd X;
	VectorXd yc, yr;
	noisy_data(200, X, yc, yr);
	for (pgml::CancelCheck cc : {&always_cancel, &cancel_later}) {
		cancel_calls = 0;
		try {
			fit_tree(X, yr, Task::Regression, 0, {}, 42, cc);
			ADD_FAILURE() << "not cancelled";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), ErrorCode::Cancelled);
		}
	}
}

TEST(DecisionTree, BadInput)
{
	MatrixXd X(3, 1);
	X << 1, 2, 3;
	VectorXd y(3);
	y << 0, 1, 2;
	EXPECT_THROW(fit_tree(X, y, Task::Classification, 2), pgml::Error); // class 2 of 2
	X(1, 0) = INFINITY; // NaN is a missing value, an infinity an error
	try {
		fit_tree(X, y, Task::Regression, 0);
		ADD_FAILURE();
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::DataException);
	}
	MatrixXd E(0, 2);
	VectorXd ey(0);
	EXPECT_THROW(fit_tree(E, ey, Task::Regression, 0), pgml::Error);
	X(1, 0) = 2;
	try {
		fit_tree(X, y, Task::Clustering, 0);
		ADD_FAILURE();
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::FeatureNotSupported);
	}
}

TEST(DecisionTree, HyperparameterSpecs)
{
	std::set<std::string> names;
	for (const pgml::ParamSpec &s : pgml::decision_tree_params()) {
		EXPECT_TRUE(names.insert(s.name).second) << s.name;
		if (s.kind != pgml::ParamSpec::Kind::Choice) {
			EXPECT_LE(s.min, s.def) << s.name;
			EXPECT_GE(s.max, s.def) << s.name;
		}
	}
	for (const char *n : {"max_depth", "min_samples_split", "min_samples_leaf", "max_features",
	                      "min_impurity_decrease", "criterion"})
		EXPECT_EQ(names.count(n), 1u) << n;
	pgml::Params p = pgml::parse_params(tree_def(), {});
	EXPECT_EQ(p.integer("max_depth"), 0);
	EXPECT_EQ(p.integer("min_samples_split"), 2);
	EXPECT_EQ(p.integer("min_samples_leaf"), 1);
	EXPECT_EQ(p.choice("criterion"), "gini");
	Options bad;
	bad["criterion"] = OptionValue::of_string("mse");
	EXPECT_THROW(pgml::parse_params(tree_def(), bad), pgml::Error);
	EXPECT_THROW(pgml::parse_params(tree_def(), opt_num({{"min_samples_split", 1}})), pgml::Error);
	EXPECT_THROW(pgml::parse_params(tree_def(), opt_num({{"max_depth", 2.5}})), pgml::Error);
	EXPECT_THROW(pgml::parse_params(tree_def(), opt_num({{"max_features", -1}})), pgml::Error);
}
