#include "linear.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <optional>

#include "inference.hpp"
#include "limits.hpp"
#include "elastic_net.hpp"

namespace pgml {

namespace {

// A least-squares solve's rank and condition number for the report, and the warning a
// rank-deficient or ill-conditioned fit raises (naming its columns). The digits estimate
// (estimated_digits): the data's rounding costs about condition * 2^-53, statistics of
// precision u_moments condition^2 * u_moments (relative) in the coefficients, and the intercept
// (the target's mean less w . the features' means) that times sum |w_j mean_j| / |b|.
LinearSolveReport solve_report(GramSolution gs, const Eigen::VectorXd &w, const Eigen::VectorXd &mx, double b,
                               double y_rms, const std::vector<std::string> &names, Algorithm algorithm,
                               double u_moments)
{
	LinearSolveReport res;
	res.rank = gs.rank;
	res.columns = gs.columns;
	res.condition = gs.condition;
	res.precise = gs.precise;
	double digits = NAN, coef_digits = NAN;
	std::vector<int> far; // the columns whose means make the intercept lose digits
	if (std::isfinite(gs.condition) && !gs.deficient) {
		coef_digits = estimated_digits(gs, u_moments, 1);
		double amp = 1, sum = 0, top = 0;
		if (std::isfinite(b)) {
			for (Eigen::Index j = 0; j < w.size(); j++) {
				sum += std::abs(w(j) * mx(j));
				top = std::max(top, std::abs(w(j) * mx(j)));
			}
			// an intercept near 0 counts as precise to 1e-8 of the target's magnitude
			amp = std::max(1.0, sum / std::max({std::abs(b), 1e-8 * y_rms, DBL_MIN}));
		}
		digits = estimated_digits(gs, u_moments, amp);
		if (digits < kWarnDigits) {
			gs.ill_conditioned = true;
			if (coef_digits >= kWarnDigits) { // the coefficients are fine: the intercept is what loses digits
				gs.collinear.clear();
				for (Eigen::Index j = 0; j < w.size(); j++)
					if (std::abs(w(j) * mx(j)) >= 0.1 * top)
						far.push_back(static_cast<int>(j));
			}
		} else {
			gs.ill_conditioned = false;
			gs.collinear.clear();
		}
	}
	res.digits = digits;
	res.collinear.clear();
	res.constant.clear();
	for (int c : gs.collinear)
		res.collinear.push_back(names[static_cast<size_t>(c)]);
	for (int c : gs.constant)
		res.constant.push_back(names[static_cast<size_t>(c)]);
	char cond[64];
	std::snprintf(cond, sizeof cond, "%.3g", gs.condition);
	const std::string who = std::string(algorithm_name(algorithm)) + ": ";
	auto about = [](double d) { return std::to_string(static_cast<int>(std::floor(std::isfinite(d) ? d : 0))); };
	auto plural = [](const std::string &n) { return n == "1" ? std::string(" digit") : std::string(" digits"); };
	if (!gs.constant.empty())
		res.warnings.push_back({who + std::string(gs.constant.size() == 1 ? "column " : "columns ") +
		                            column_list(names, gs.constant) + " did not vary in the training rows",
		                        std::string(gs.constant.size() == 1 ? "Its coefficient is" : "Their coefficients are") +
		                            " set to 0; the fit has rank " + std::to_string(gs.rank) + " of " +
		                            std::to_string(gs.columns) + ".",
		                        "Leave the constant columns out of the features."});
	if (gs.deficient)
		res.warnings.push_back(
		    {who + "the fit is rank-deficient: columns " + column_list(names, gs.collinear) + " are collinear",
		     "The fit kept " + std::to_string(gs.rank) + " of " + std::to_string(gs.columns) +
		         " directions (the dependence is exact, or too close for double-precision statistics); "
		         "among these columns the coefficients are the minimum-norm solution, not determined by the data.",
		     "Leave one of the collinear columns out of the features, or use ridge."});
	else if (gs.ill_conditioned && !far.empty())
		res.warnings.push_back(
		    {who + "the intercept is ill-conditioned: " + std::string(far.size() == 1 ? "column " : "columns ") +
		         column_list(names, far) + " contribute" + (far.size() == 1 ? "s" : "") + " far more than it at " +
		         (far.size() == 1 ? "its mean" : "their means"),
		     "The intercept may have only about " + about(digits) + " correct significant" + plural(about(digits)) +
		         " (the coefficients about " + about(coef_digits) + "; condition number " + cond + ").",
		     "Center these columns (subtract a typical value) before training."});
	else if (gs.ill_conditioned)
		res.warnings.push_back({who + "the fit is ill-conditioned (condition number " + std::string(cond) +
		                            "): columns " + column_list(names, gs.collinear) + " are nearly collinear",
		                        "The coefficients may have only about " + about(coef_digits) + " correct significant" +
		                            plural(about(coef_digits)) +
		                            (std::isfinite(b) && digits < coef_digits - 0.5
		                                 ? ", the intercept about " + about(digits)
		                                 : std::string()) +
		                            (gs.precise ? " (an estimate for least squares on double-precision data, solved "
		                                          "in double-double)."
		                                        : " (an estimate for least squares from double-precision training "
		                                          "statistics)."),
		                        "Leave one of the nearly collinear columns out of the features, or use ridge."});
	return res;
}

} // namespace

LinearMoments project_moments(const Moments &mo, const Eigen::MatrixXd &A, const Eigen::VectorXd &c0, int target_slot)
{
	const int ts = target_slot;
	LinearMoments t;
	Eigen::MatrixXd C = mo.comoment();
	t.Sxx = A * C * A.transpose();
	t.Sxy = A * C.col(ts);
	t.Syy = C(ts, ts);
	t.mx = A * mo.mean() + c0;
	t.my = mo.mean()(ts);
	return t;
}

bool linear_fits_intercept(Algorithm a, const Params &hp)
{
	return a != Algorithm::LinearRegression || !hp.has("fit_intercept") || hp.flag("fit_intercept");
}

namespace {

// What solve_gram needs besides the matrix: the scale, each column's noise floor (constant
// when its spread is rounding noise next to its mean) and the one-hot groups that sum to the
// intercept (their dependence is the encoding's).
LeastSquaresSetup least_squares_setup(double n, const Eigen::VectorXd &mx, const Preprocessor &prep,
                                      const std::vector<ColumnInfo> &features, bool intercept)
{
	LeastSquaresSetup in;
	in.scale = prep.scale;
	in.intercept = intercept;
	in.noise_floor = (n * mx.array().square() / prep.scale.array().square()) * 1e-26;
	bool first_group = true;
	for (size_t c = 0; c < prep.columns.size(); c++) {
		const FittedColumn &fc = prep.columns[c];
		if (!features[c].categorical() || fc.n_features == 0)
			continue;
		if (intercept || !first_group) {
			in.groups.emplace_back();
			for (int f = 0; f < fc.n_features; f++)
				in.groups.back().push_back(fc.first_feature + f);
		}
		first_group = false;
	}
	return in;
}

// a one-hot slot without variation is a level every training row has: no warning
void drop_level_constants(GramSolution &gs, const Preprocessor &prep, const std::vector<ColumnInfo> &features)
{
	gs.constant.erase(std::remove_if(gs.constant.begin(), gs.constant.end(),
	                                 [&](int f) { return features[prep.column_of(f)].categorical(); }),
	                  gs.constant.end());
}

} // namespace

GramSolution solve_linear_least_squares(const Eigen::MatrixXd &G, const Eigen::VectorXd &g, double n,
                                        const Eigen::VectorXd &mx, const Preprocessor &prep,
                                        const std::vector<ColumnInfo> &features, bool intercept)
{
	const LeastSquaresSetup in = least_squares_setup(n, mx, prep, features, intercept);
	GramSolution gs = solve_gram(G, g, &in.noise_floor, in.groups);
	drop_level_constants(gs, prep, features);
	return gs;
}

LinearFit fit_linear_from_moments(Algorithm algorithm, const Params &hp, const Preprocessor &prep,
                                  const std::vector<ColumnInfo> &features, LinearMoments train, int64_t n_rows,
                                  CancelCheck cancel, const PreciseInput *precise)
{
	Eigen::MatrixXd &Sxx = train.Sxx;
	Eigen::VectorXd &Sxy = train.Sxy, &mx = train.mx;
	double &Syy = train.Syy, &my = train.my;
	LinearFit fit;
	// linear_regression without an intercept: the fit is on the raw (uncentered) moments
	const bool intercept = linear_fits_intercept(algorithm, hp);
	const double syy_centered = Syy; // r2 is about the target's mean whatever the model
	if (!intercept) {
		const double n = static_cast<double>(n_rows);
		Sxx += n * mx * mx.transpose();
		Sxy += n * my * mx;
		Syy += n * my * my;
	}
	const Eigen::VectorXd &s = prep.scale;
	Eigen::MatrixXd Z = Sxx.array() / (s * s.transpose()).array();
	Eigen::VectorXd zy = Sxy.array() / s.array();
	Eigen::VectorXd wz;
	std::optional<GramSolution> solved; // linear_regression (and ridge with alpha 0)
	if (algorithm == Algorithm::Lasso || algorithm == Algorithm::ElasticNet) {
		// coordinate descent on the Gram form of the standardized problem (sklearn's objective)
		const double n = static_cast<double>(n_rows);
		double l1_ratio = algorithm == Algorithm::Lasso ? 1.0 : hp.num("l1_ratio");
		wz = elastic_net_gram(Z / n, zy / n, hp.num("alpha"), l1_ratio, hp.integer("max_iter"), hp.num("tol"), cancel,
		                      &fit.log, Syy / n);
	} else if (algorithm == Algorithm::Ridge && hp.num("alpha") > 0) {
		Z.diagonal().array() += hp.num("alpha");
		wz = Z.ldlt().solve(zy);
	} else {
		// minimum-norm least squares on the equilibrated Gram matrix (whatever the scaling):
		// rank, condition number and the columns of a (near) dependence come back with it
		GramSolution gs = solve_linear_least_squares(Z, zy, static_cast<double>(n_rows), mx, prep, features, intercept);
		if (precise != nullptr && precise->train != nullptr) {
			// the precise pass's statistics: projected, solved, the intercept and the residuals
			// in double-double (unless they show a dependence: then the double solve stands)
			LeastSquaresSetup in = least_squares_setup(static_cast<double>(n_rows), mx, prep, features, intercept);
			in.A = precise->A;
			in.c0 = precise->c0;
			in.target_slot = precise->target_slot;
			PreciseFit pf = fit_least_squares_precise(*precise->train, in);
			if (!pf.gs.deficient) {
				drop_level_constants(pf.gs, prep, features);
				if (algorithm == Algorithm::LinearRegression && intercept) // coefficient statistics (inference.hpp)
					fit.inference_json = linear_inference_precise(static_cast<double>(n_rows), pf.Sxx, pf.Sxy, pf.Syy,
					                                              pf.mx, pf.w_dd, pf.b_dd, prep.feature_names)
					                         .to_json();
				gs = pf.gs;
				fit.precise = true;
				fit.w_dd = pf.w_dd;
				fit.b_dd = pf.b_dd;
				fit.setup = std::move(in);
				fit.w = pf.w;
				fit.b = intercept ? pf.b : 0.0;
				fit.sse = pf.sse;
			}
		}
		wz = gs.w;
		solved = std::move(gs);
	}
	Eigen::VectorXd w = fit.precise ? fit.w : Eigen::VectorXd(wz.array() / s.array());
	if (!w.allFinite())
		throw Error(ErrorCode::DataException, "the fit did not produce finite coefficients",
		            "The feature values are too large or too collinear to solve in double precision.",
		            "Rescale the features, or use ridge.");
	if (!fit.precise) {
		fit.w = w;
		fit.b = intercept ? my - w.dot(mx) : 0.0;
	}
	if (solved)
		fit.solve = solve_report(*solved, w, mx, intercept ? fit.b : NAN,
		                         std::sqrt(std::max(0.0, syy_centered) / static_cast<double>(n_rows) + my * my),
		                         prep.feature_names, algorithm, fit.precise ? precise->train->unit() : 0x1.0p-53);
	if (algorithm == Algorithm::LinearRegression && intercept && !fit.precise) // coefficient statistics (inference.hpp)
		fit.inference_json =
		    linear_inference(static_cast<double>(n_rows), Sxx, Sxy, Syy, mx, w, fit.b, prep.feature_names).to_json();
	if (!fit.precise)
		fit.sse = std::max(0.0, Syy - 2 * w.dot(Sxy) + w.dot(Sxx * w));
	fit.sst = syy_centered;
	if (fit.log.empty()) // closed forms: one entry, the training MSE
		fit.log.push_back({1, fit.sse / static_cast<double>(n_rows), NAN});
	return fit;
}

double linear_sse(const LinearMoments &t, int64_t n, const Eigen::VectorXd &w, double b)
{
	double emean = t.my - b - w.dot(t.mx);
	return std::max(0.0, t.Syy - 2 * w.dot(t.Sxy) + w.dot(t.Sxx * w)) + static_cast<double>(n) * emean * emean;
}

LogisticModelFit fit_logistic_regression(const Eigen::MatrixXd &X, const std::vector<int> &y, int K, const Params &hp,
                                         const Preprocessor &prep, size_t memory_limit, CancelCheck cancel,
                                         std::vector<IterationLog> *log, ProgressCallback progress)
{
	const int p = prep.p();
	LbfgsOptions lo;
	lo.max_iter = hp.integer("max_iter");
	lo.tol = hp.num("tol");
	{
		// L-BFGS's history of (p + 1) K coefficients, and scores of every row for each class
		const double coef = (static_cast<double>(p) + 1) * std::max(K, 1);
		check_memory(memory_limit,
		             (2.0 * lo.history + 6) * coef * 8 + memory::matrix_bytes(static_cast<double>(y.size()), K),
		             "logistic_regression",
		             std::to_string(K) + " classes of " + std::to_string(p) + " features, " + std::to_string(y.size()) +
		                 " training rows.",
		             "the classes or features, train on fewer rows");
	}
	// penalty 'none': maximum likelihood (Newton's method for two classes, as glm; for
	// more, L-BFGS with a vanishing penalty)
	const bool unpenalized = logistic_unpenalized(hp);
	LogisticFit fit = unpenalized && K == 2
	                      ? fit_logistic_newton(X, y, lo.max_iter, 1e-12, cancel, log)
	                      : fit_logistic(X, y, K, unpenalized ? 1e12 : hp.num("C"), lo, cancel, log, progress);
	// fold the scaling into the coefficients: w_x = w_z / s, b_x = b_z - center . w_x
	LogisticModelFit out;
	out.W = fit.W.array().colwise() / prep.scale.array();
	out.b = fit.b - out.W.transpose() * prep.center;
	if (unpenalized && K == 2) {
		Inference inf = logistic_inference(X, prep.center, prep.scale, y, out.W.col(0), out.b(0), prep.feature_names);
		inf.iterations = fit.result.iterations;
		inf.converged = fit.result.converged;
		out.inference_json = inf.to_json();
	}
	return out;
}

} // namespace pgml
