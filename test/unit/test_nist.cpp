// The NIST StRD linear least squares datasets (test/data/nist, certified to 15 digits)
// through the Trainer: every certified coefficient to at least 7 significant digits, the
// residual standard deviation and r2 too, with the default preprocessing, with scale none,
// and incrementally (half the rows, then the rest). Also the rank and condition number the
// report carries and the warnings of a rank-deficient and an ill-conditioned fit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "least_squares.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using namespace pgml_test;

namespace {

struct NistSet {
	std::string name, model; // linear / polynomial / nointercept
	int degree = 0;
	std::vector<double> beta, sd;
	double residual_sd = 0, r2 = 0;
	std::vector<std::vector<double>> rows; // y, x...
};

NistSet read_set(const std::string &name)
{
	NistSet s;
	s.name = name;
	std::ifstream in(std::string(PGML_NIST_DATA) + "/" + name + ".dat");
	EXPECT_TRUE(in.good()) << name;
	std::string line;
	bool data = false;
	while (std::getline(in, line)) {
		if (line.empty() || line[0] == '#')
			continue;
		std::istringstream ls(line);
		if (data) {
			std::vector<double> r;
			double v;
			while (ls >> v)
				r.push_back(v);
			s.rows.push_back(r);
			continue;
		}
		std::string key;
		ls >> key;
		double v;
		if (key == "model")
			ls >> s.model >> s.degree;
		else if (key == "beta")
			while (ls >> v)
				s.beta.push_back(v);
		else if (key == "sd")
			while (ls >> v)
				s.sd.push_back(v);
		else if (key == "residual_sd")
			ls >> s.residual_sd;
		else if (key == "r2")
			ls >> s.r2;
		else if (key == "rows")
			data = true;
	}
	return s;
}

// The table pg_ml trains on: x1..xk (a polynomial's powers of x, as a user would compute them).
Table table_of(const NistSet &s, size_t from, size_t to)
{
	Table t;
	const int k = s.model == "linear" ? static_cast<int>(s.rows[0].size()) - 1 : s.degree;
	for (int j = 0; j < k; j++)
		t.features.push_back(numeric_col("x" + std::to_string(j + 1)));
	t.target = numeric_col("y");
	for (size_t i = from; i < to; i++) {
		const auto &r = s.rows[i];
		std::vector<Cell> cells;
		for (int j = 0; j < k; j++)
			cells.push_back(num(s.model == "polynomial" ? std::pow(r[1], j + 1) : r[static_cast<size_t>(j) + 1]));
		t.add(cells, num(r[0]));
	}
	return t;
}

// log relative error (significant digits that agree), capped at 15
double lre(double got, double cert)
{
	if (got == cert)
		return 15;
	double e = cert == 0 ? std::fabs(got) : std::fabs(got - cert) / std::fabs(cert);
	return std::min(15.0, -std::log10(e));
}

enum class Route { Default, ScaleNone, Incremental };

struct Fit {
	double min_digits = 15; // over the coefficients
	double rsd_digits = 15, r2_digits = 15;
	pgml::TrainResult result;
};

Fit fit(const NistSet &s, Route route)
{
	pgml::TrainSpec spec = make_spec(table_of(s, 0, 1), Algorithm::LinearRegression);
	if (route == Route::ScaleNone)
		spec.preprocess["scale"] = pgml::OptionValue::of_string("none");
	if (s.model == "nointercept")
		spec.hyperparams["fit_intercept"] = pgml::OptionValue::of_bool(false);
#ifdef PGML_NIST_BEFORE
	if (s.model == "nointercept") // the old core has no fit_intercept
		return Fit{0, 0, 0, {}};
#endif
	Trained t;
	const size_t n = s.rows.size();
	if (route == Route::Incremental) {
		Trained half = train(spec, table_of(s, 0, n / 2));
		t = retrain(spec, *half.model, true, table_of(s, n / 2, n));
	} else {
		t = train(spec, table_of(s, 0, n));
	}
	Fit f;
	f.result = t.result;
	const pgml::Model &m = *t.model;
	const bool icpt = s.model != "nointercept";
	std::vector<double> got;
	if (icpt)
		got.push_back(m.b(0));
	for (Eigen::Index j = 0; j < m.W.rows(); j++)
		got.push_back(m.W(j, 0));
	EXPECT_EQ(got.size(), s.beta.size()) << s.name;
	for (size_t j = 0; j < got.size() && j < s.beta.size(); j++)
		f.min_digits = std::min(f.min_digits, lre(got[j], s.beta[j]));
	const double nn = static_cast<double>(n), p = static_cast<double>(s.beta.size());
	const double mse = json_number(t.result.metrics_json, {"train", "mse"});
	const double sse = mse * nn;
	const double rsd = std::sqrt(sse / (nn - p));
	double yy = 0, ybar = 0;
	for (const auto &r : s.rows)
		ybar += r[0] / nn;
	for (const auto &r : s.rows)
		yy += icpt ? (r[0] - ybar) * (r[0] - ybar) : r[0] * r[0];
	// NIST's r2 of a fit through the origin is the uncentered one (as R's)
	const double r2 = icpt ? json_number(t.result.metrics_json, {"train", "r2"}) : 1 - sse / yy;
	// an exact fit (Wampler1, 2): the residual SD relative to the response's spread
	f.rsd_digits = s.residual_sd == 0 ? lre(rsd / std::sqrt(yy / nn), 0) : lre(rsd, s.residual_sd);
	f.r2_digits = lre(r2, s.r2);
	return f;
}

const char *const kSets[] = {"Norris", "Pontius", "NoInt1", "NoInt2", "Filip", "Longley",
                             "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5"};

} // namespace

TEST(Nist, CertifiedCoefficientsResidualSdAndR2)
{
	for (const char *name : kSets) {
		NistSet s = read_set(name);
		ASSERT_FALSE(s.rows.empty()) << name;
		for (Route route : {Route::Default, Route::ScaleNone, Route::Incremental}) {
			const char *rn = route == Route::Default ? "default" : route == Route::ScaleNone ? "scale none" : "incremental";
			Fit f = fit(s, route);
			std::printf("NIST %-9s %-12s coefficients %5.1f digits, residual SD %5.1f, r2 %5.1f, rank %.0f, condition %.3g\n",
			            name, rn, f.min_digits, f.rsd_digits, f.r2_digits,
			            json_number(f.result.report_json, {"rank"}), json_number(f.result.report_json, {"condition_number"}));
			EXPECT_GE(f.min_digits, 7) << name << " " << rn;
			EXPECT_GE(f.rsd_digits, 7) << name << " " << rn;
			EXPECT_GE(f.r2_digits, 7) << name << " " << rn;
#ifndef PGML_NIST_BEFORE
			EXPECT_TRUE(f.result.warnings.empty() || std::string(name) == "Filip" ||
			            f.result.warnings[0].message.find("ill-conditioned") != std::string::npos)
			    << name << " " << rn << ": " << (f.result.warnings.empty() ? "" : f.result.warnings[0].message);
#endif
		}
	}
}
