// pg_ml core: the rows route (trainer_impl.hpp). The in-memory algorithms keep every row
// (within the memory limit), in a canonical order that depends on the rows alone.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <random>

#include "limits.hpp"
#include "models/linear.hpp"
#include "trainer_impl.hpp"

namespace pgml {

namespace {

// Permutation importance on at most 2000 training rows: how much the score (accuracy, R2, or
// minus the inertia) drops when one feature's column is shuffled, for estimators that have no
// importance of their own.
Eigen::VectorXd permutation_importance(const Estimator &est, const Eigen::MatrixXd &X, const Eigen::VectorXd *y,
                                       Task task, int n_classes, uint64_t seed, CancelCheck cancel)
{
	std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ull);
	std::vector<Eigen::Index> rows(static_cast<size_t>(X.rows()));
	std::iota(rows.begin(), rows.end(), 0);
	if (rows.size() > 2000) {
		std::shuffle(rows.begin(), rows.end(), rng);
		rows.resize(2000);
	}
	Eigen::MatrixXd S(static_cast<Eigen::Index>(rows.size()), X.cols());
	for (size_t i = 0; i < rows.size(); i++)
		S.row(static_cast<Eigen::Index>(i)) = X.row(rows[i]);
	std::vector<double> out(static_cast<size_t>(std::max(n_classes, 1)));
	auto score = [&](const Eigen::MatrixXd &M) {
		RegressionMetrics rm;
		double correct = 0, inertia = 0;
		Eigen::RowVectorXd z;
		for (Eigen::Index i = 0; i < M.rows(); i++) {
			z = M.row(i);
			int k = est.predict(z.data(), out.data());
			double truth = y ? (*y)(rows[static_cast<size_t>(i)]) : 0;
			if (task == Task::Classification)
				correct += k == static_cast<int>(truth) ? 1 : 0;
			else if (task == Task::Regression)
				rm.add(truth, out[0]);
			else
				inertia += out[0] * out[0];
		}
		if (task == Task::Classification)
			return correct / std::max<double>(1, static_cast<double>(M.rows()));
		if (task == Task::Regression)
			return rm.r2();
		return -inertia / std::max<double>(1, static_cast<double>(M.rows()));
	};
	const double base = score(S);
	Eigen::VectorXd imp = Eigen::VectorXd::Zero(X.cols());
	std::vector<Eigen::Index> perm(rows.size());
	for (Eigen::Index f = 0; f < X.cols(); f++) {
		check_cancel(cancel);
		std::iota(perm.begin(), perm.end(), 0);
		std::shuffle(perm.begin(), perm.end(), rng);
		Eigen::MatrixXd P = S;
		for (size_t i = 0; i < perm.size(); i++)
			P(static_cast<Eigen::Index>(i), f) = S(perm[i], f);
		imp(f) = base - score(P);
	}
	return imp;
}

} // namespace

// Every row in a canonical order: by hash, rows of equal hashes by their values. What the
// in-memory algorithms are given (and everything drawn by position: the split's ties,
// k-means++ starts, bootstraps, minibatches, boosting's subsamples, the silhouette and
// permutation importance samples) then depends on the rows alone, never on the order they
// were read in. Memory: the order (4 bytes a row) and one column's copy at a time, less
// than the feature matrix built next (checked by finish, at least 16 bytes a row).
void TrainRun::canonical_order(RowStore &s) const
{
	const size_t n = s.size();
	if (n > UINT32_MAX)
		throw Error(ErrorCode::ProgramLimit, "too many training rows kept in memory",
		            std::to_string(n) + " rows were read.", "Train on fewer rows (a view with TABLESAMPLE).");
	std::vector<uint32_t> order(n);
	std::iota(order.begin(), order.end(), 0u);
	const uint64_t *h = s.hash.data();
	bool sorted = true;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = h[i - 1] < h[i];
	if (sorted)
		return; // already in order (and no equal hashes)
	std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
		if (h[a] != h[b])
			return h[a] < h[b];
		return compare_values(s, a, b) < 0;
	});
	check_cancel(cancel);
	s.permute(order);
}

void TrainRun::buffer_chunk()
{
	const size_t per_row = row_bytes();
	if ((rows.size() + chunk.size()) * per_row > spec.memory_limit)
		throw Error(ErrorCode::ProgramLimit,
		            "training rows need more than " + std::to_string(spec.memory_limit >> 20) + " MB of memory",
		            std::string(algorithm_name(spec.algorithm)) + " keeps the rows in memory; " +
		                std::to_string(rows.size() + chunk.size()) + " rows had been read.",
		            "Raise pg_ml.max_memory, or train on fewer rows (a view with TABLESAMPLE) or columns.");
	rows.append_all(chunk);
}

void Trainer::set_fit_resources(int threads, size_t memory_limit)
{
	impl_->spec.threads = std::max(1, threads);
	impl_->spec.memory_limit = memory_limit;
}

void Trainer::expect_rows(double n)
{
	Impl &m = *impl_;
	if (m.streaming || rows_read_ > 0 || !(n > 0))
		return;
	// the estimate plus a margin, never more than the memory limit allows (more rows than that
	// fail with the limit's error anyway)
	const double cap = static_cast<double>(m.spec.memory_limit / m.row_bytes());
	m.rows.reserve(static_cast<size_t>(std::min(cap, n * 1.05 + 1024)), m.spec.features);
}

namespace {

// stratified split: within each class, the rows with the smallest draws are held out
void stratified_split(const TrainRun &m, int K, std::vector<uint8_t> &is_test)
{
	const size_t n = m.rows.size();
	std::vector<std::vector<size_t>> by_class(static_cast<size_t>(K));
	for (size_t i = 0; i < n; i++)
		by_class[static_cast<size_t>(m.rows.y[i])].push_back(i);
	for (auto &idx : by_class) {
		if (idx.empty())
			continue; // a class of the model the new rows do not hold (continued training)
		size_t nt = static_cast<size_t>(std::llround(m.spec.test_size * static_cast<double>(idx.size())));
		if (nt >= idx.size())
			nt = idx.size() - 1;
		if (nt == 0)
			continue;
		// the nt smallest (draw, row) pairs: what a stable sort by draw puts first
		std::vector<std::pair<double, size_t>> d(idx.size());
		for (size_t j = 0; j < idx.size(); j++)
			d[j] = {split_draw(m.rows.hash[idx[j]], m.spec.seed), idx[j]};
		std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(nt - 1), d.end());
		for (size_t j = 0; j < nt; j++)
			is_test[d[j].second] = 1;
	}
}

// Cross-validation (TrainSpec::cv_folds): the split's test rows leave the run; of the others,
// the fold's rows are held out. Classification folds are stratified: within each class, the
// rows in the order of their fold draws go to the folds in turn (the holdout takes the first
// share of them); otherwise the per-row rule (TrainRun::row_role).
void cv_split(TrainRun &m, int K, std::vector<uint8_t> &is_test)
{
	const TrainSpec &spec = m.spec;
	std::vector<uint32_t> keep;
	for (size_t i = 0; i < is_test.size(); i++)
		if (!is_test[i])
			keep.push_back(static_cast<uint32_t>(i));
	m.rows.permute(keep);
	const size_t n = m.rows.size();
	std::vector<uint8_t> held(n, 0);
	if (m.task == Task::Classification) {
		std::vector<std::vector<std::pair<double, size_t>>> by_class(static_cast<size_t>(K));
		for (size_t i = 0; i < n; i++)
			by_class[static_cast<size_t>(m.rows.y[i])].push_back({fold_draw(m.rows.hash[i], spec.seed), i});
		for (auto &rows : by_class) {
			std::sort(rows.begin(), rows.end());
			const size_t cut = static_cast<size_t>(std::llround(spec.cv_holdout * static_cast<double>(rows.size())));
			for (size_t r = 0; r < rows.size(); r++)
				held[rows[r].second] = spec.cv_holdout > 0 ? r < cut : static_cast<int>(r % static_cast<size_t>(spec.cv_folds)) == spec.cv_fold;
		}
	} else {
		for (size_t i = 0; i < n; i++)
			held[i] = m.row_role(m.rows.hash[i]) == 1;
	}
	is_test.swap(held);
}

// Ranks the classes (K: their number) or checks the regression target, puts the rows in
// their canonical order and returns which are held out; notes the training rows.
std::vector<uint8_t> split(TrainRun &m, Model &model, int64_t rows_read, int &K)
{
	const TrainSpec &spec = m.spec;
	const size_t n = m.rows.size();
	m.used_rows = static_cast<int64_t>(n);
	if (n == 0)
		m.no_rows_left(rows_read, false);
	const bool classify = m.task == Task::Classification;
	if (classify) {
		std::vector<int64_t> label_rows(m.labels.size(), 0);
		for (double y : m.rows.y)
			label_rows[static_cast<size_t>(y)]++;
		std::vector<int> rank = m.order_classes(model, K, static_cast<int64_t>(n), label_rows);
		for (auto &y : m.rows.y)
			y = rank[static_cast<size_t>(y)];
	} else if (m.task == Task::Regression && m.base == nullptr && !m.incremental) {
		auto mm = std::minmax_element(m.rows.y.begin(), m.rows.y.end());
		m.check_constant_target(static_cast<int64_t>(n), *mm.first, *mm.second);
	}
	// the rows in their canonical order (after the classes are ranked: the tie-break
	// compares the targets)
	m.canonical_order(m.rows);
	std::vector<uint8_t> is_test(n, 0);
	for (size_t i = 0; i < n; i++)
		m.fingerprint += mix64(m.rows.hash[i]);
	if (classify) {
		stratified_split(m, K, is_test);
	} else if (spec.test_size > 0) {
		for (size_t i = 0; i < n; i++)
			is_test[i] = is_test_row(m.rows.hash[i], spec.seed, spec.test_size);
	}
	if (spec.cross_validating()) {
		cv_split(m, K, is_test); // fewer rows: the split's test rows are gone
		m.used_rows = static_cast<int64_t>(m.rows.size());
	}
	for (size_t i = 0; i < is_test.size(); i++)
		if (!is_test[i])
			m.note_train_row(m.rows, i);
	return is_test;
}

// The preprocessing (continued training: the base's), and the memory the feature matrix needs.
void preprocess(TrainRun &m, Model &model, const RowStore &tr, const RowStore &te)
{
	const TrainSpec &spec = m.spec;
	if (m.base != nullptr)
		model.prep = m.base->prep;
	else
		model.prep = fit_preprocessor(spec.features, m.popts, m.enc, m.train, m.col_min, m.col_max, m.medians());
	// trees and boosting take a missing number as NaN unless median or constant imputation is
	// asked for (continued training keeps the base's way)
	bool imputes = m.popts.defaults.impute != Impute::Mean;
	for (const auto &[name, co] : m.popts.columns)
		imputes = imputes || co.impute != Impute::Mean;
	model.prep.native_missing =
	    m.base != nullptr ? m.base->prep.native_missing : algorithm_native_missing(spec.algorithm) && !imputes;
	const int p = model.prep.p();
	// the scaled feature matrix: one column per numeric column and per kept category level
	// (one-hot), next to the rows kept in memory
	const double n_x = static_cast<double>(std::max(tr.size(), te.size()));
	const double bytes =
	    memory::matrix_bytes(n_x, p) + 8.0 * n_x + static_cast<double>((tr.size() + te.size()) * m.row_bytes());
	check_memory(spec.memory_limit, bytes, "the feature matrix",
	             count_text(n_x) + " rows of " + std::to_string(p) +
	                 " features (a numeric column is one feature, a categorical column one per level).",
	             "max_levels, exclude columns with many distinct values, train on fewer rows");
}

// The scaled features X and the targets y of s's rows.
void scaled(const TrainRun &m, const Preprocessor &prep, const RowStore &s, Eigen::MatrixXd &X, Eigen::VectorXd &y)
{
	// a block of rows is transformed into xb (one row after the other), then written
	// into X's columns (column-major: each column's part is contiguous)
	constexpr size_t kRows = 256;
	const int p = prep.p();
	const size_t pp = static_cast<size_t>(p);
	std::vector<double> xb(pp * kRows);
	X.resize(static_cast<Eigen::Index>(s.size()), p);
	advise_huge_pages(X.data(), static_cast<size_t>(X.size()) * sizeof(double));
	y.resize(static_cast<Eigen::Index>(s.size()));
	for (size_t i0 = 0; i0 < s.size(); i0 += kRows) {
		if (i0 % (kRows * 64) == 0)
			check_cancel(m.cancel);
		const size_t nb = std::min(kRows, s.size() - i0);
		for (size_t r = 0; r < nb; r++)
			prep.transform(m.enc, s, i0 + r, xb.data() + r * pp);
		for (int f = 0; f < p; f++) {
			const double c = prep.center(f), sc = prep.scale(f);
			double *col = X.col(f).data() + i0;
			for (size_t r = 0; r < nb; r++)
				col[r] = (xb[r * pp + static_cast<size_t>(f)] - c) / sc;
		}
		for (size_t r = 0; r < nb; r++)
			y(static_cast<Eigen::Index>(i0 + r)) = s.y[i0 + r];
	}
}

// scaled values the algorithm cannot hold (xgboost's single precision): 22003
void check_precision(const TrainRun &m, const Model &model, const Eigen::MatrixXd &X, const Eigen::VectorXd &y)
{
	const TrainSpec &spec = m.spec;
	const int p = model.prep.p();
	const double limit = algorithm_max_input(spec.algorithm);
	for (Eigen::Index i = 0; i < y.size() && limit < DBL_MAX && m.task == Task::Regression; i++)
		if (std::fabs(y(i)) > limit)
			feature_out_of_range(
			    spec.target.name, y(i),
			    (std::string(algorithm_name(spec.algorithm)) + " works in single precision: the value exceeds 3.4e38.")
			        .c_str(),
			    true);
	for (int f = 0; f < p && limit < DBL_MAX; f++)
		for (Eigen::Index i = 0; i < X.rows(); i++)
			if (std::fabs(X(i, f)) > limit) {
				size_t c = model.prep.column_of(f);
				double raw = X(i, f) * model.prep.scale(f) + model.prep.center(f);
				feature_out_of_range(spec.features[c].name, raw,
				                     (std::string(algorithm_name(spec.algorithm)) +
				                      " works in single precision: scaled, the value exceeds 3.4e38.")
				                         .c_str());
			}
}

// The estimator of the algorithm, fitted (continued training: the base's, trained further).
void fit_estimator(TrainRun &m, Model &model, const Eigen::MatrixXd &X, const Eigen::VectorXd &y, int K,
                   TrainResult &res)
{
	const TrainSpec &spec = m.spec;
	const int p = model.prep.p();
	const AlgorithmDef &def = algorithm_def(spec.algorithm);
	std::vector<int> groups(static_cast<size_t>(p), -1);
	for (size_t c = 0; c < spec.features.size(); c++)
		if (spec.features[c].categorical())
			for (int k = 0; k < model.prep.columns[c].n_features; k++)
				groups[static_cast<size_t>(model.prep.columns[c].first_feature + k)] = static_cast<int>(c);
	FitInput in;
	in.X = &X;
	in.y = m.task == Task::Clustering ? nullptr : &y;
	in.task = m.task;
	in.n_classes = K;
	in.feature_group = &groups;
	in.seed = spec.seed;
	in.native_missing = model.prep.native_missing;
	in.threads = spec.threads;
	in.memory_limit = spec.memory_limit;
	in.cancel = m.cancel;
	in.log = &res.log;
	in.progress = spec.progress;
	if (m.base != nullptr) {
		// a copy of the base's estimator, trained further
		std::unique_ptr<Estimator> est = m.copy_base_estimator(p, K);
		est->continue_fit(in, m.hp);
		model.estimator = std::move(est);
	} else {
		model.estimator = def.fit(in, m.hp);
	}
	if (model.estimator->native_missing() != model.prep.native_missing)
		throw Error(ErrorCode::Internal, "the estimator and the preprocessing disagree on missing values");
	if (std::string(model.estimator->importance_kind()) == "not_available")
		model.permutation_importance =
		    permutation_importance(*model.estimator, X, in.y, m.task, K, spec.seed, m.cancel);
}

// The metrics of the model on the rows s (held_out: the test rows, whose primary metric
// is the version's).
std::string evaluate(const TrainRun &m, const Model &model, const RowStore &s, bool held_out, TrainResult &res)
{
	const int p = model.prep.p();
	// rows are predicted a block at a time (one call into the estimator per block); the
	// training rows, where the fit kept its own outputs for them, are not predicted again
	constexpr size_t kEvalBlock = 1024;
	const size_t nout = static_cast<size_t>(model.n_outputs());
	std::vector<double> xb(static_cast<size_t>(p) * kEvalBlock), ob(nout * kEvalBlock);
	std::vector<int> kb(kEvalBlock);
	const bool fitted = !held_out && model.estimator != nullptr && model.estimator->fitted_outputs(0, 0, nout, nullptr, nullptr);
	auto predict_rows = [&](auto &&take) {
		for (size_t i0 = 0; i0 < s.size(); i0 += kEvalBlock) {
			const size_t nb = std::min(kEvalBlock, s.size() - i0);
			if (!fitted || !model.estimator->fitted_outputs(i0, nb, nout, ob.data(), kb.data())) {
				for (size_t r = 0; r < nb; r++)
					model.prep.transform(m.enc, s, i0 + r, xb.data() + r * static_cast<size_t>(p));
				model.predict_features_many(xb.data(), nb, ob.data(), kb.data());
			}
			for (size_t r = 0; r < nb; r++)
				take(i0 + r, kb[r], ob.data() + r * nout);
			check_cancel(m.cancel);
		}
	};
	if (m.task == Task::Classification) {
		ClassificationMetrics cm(model.classes);
		predict_rows([&](size_t i, int pred, const double *o) { cm.add(static_cast<int>(s.y[i]), pred, o); });
		if (held_out)
			res.primary_test = cm.accuracy();
		return cm.to_json();
	}
	if (m.task == Task::Regression) {
		RegressionMetrics rm;
		predict_rows([&](size_t i, int, const double *o) { rm.add(s.y[i], o[0]); });
		if (held_out)
			res.primary_test = rm.r2();
		return rm.to_json();
	}
	Eigen::MatrixXd X;
	Eigen::VectorXd unused;
	scaled(m, model.prep, s, X, unused);
	ClusteringMetrics cl = clustering_metrics(*model.estimator, X, m.spec.seed, m.cancel);
	if (held_out)
		res.primary_test = cl.silhouette;
	return cl.to_json();
}

} // namespace

// The in-memory algorithms (classification, in-memory regression, clustering): every row is
// kept; the route ranks the classes, puts the rows in their canonical order, splits them, fits
// the preprocessing and the estimator, and evaluates on the rows.
RouteFit finish_rows_route(TrainRun &m, int64_t rows_read, const Model *, TrainResult &res)
{
	const TrainSpec &spec = m.spec;
	RouteFit out;
	out.model = m.new_model();
	Model &model = *out.model;
	int K = 0;
	std::vector<uint8_t> is_test = split(m, model, rows_read, K);
	RowStore &tr = m.train_chunk, &te = m.test_chunk;
	m.rows.split_into(is_test, tr, te); // a column at a time: no second copy of every row
	if (tr.size() == 0)
		throw Error(ErrorCode::DataException, "no rows left to train on",
		            "All " + std::to_string(is_test.size()) + " rows were held out for testing.", "Lower test_size.");
	m.add_moments(tr, m.train);
	check_cancel(m.cancel);
	preprocess(m, model, tr, te);
	{
		Eigen::MatrixXd X;
		Eigen::VectorXd y;
		scaled(m, model.prep, tr, X, y);
		check_precision(m, model, X, y);
		if (spec.algorithm == Algorithm::LogisticRegression) {
			std::vector<int> ytr(tr.size());
			for (size_t i = 0; i < tr.size(); i++)
				ytr[i] = static_cast<int>(tr.y[i]);
			LogisticModelFit fit = fit_logistic_regression(X, ytr, K, m.hp, model.prep, spec.memory_limit, m.cancel,
			                                               &res.log, spec.progress);
			model.W = fit.W;
			model.b = fit.b;
			res.inference_json = fit.inference_json;
		} else {
			fit_estimator(m, model, X, y, K, res);
		}
	}
	report_phase(spec.progress, "evaluating");
	out.train_json = evaluate(m, model, tr, false, res);
	if (te.size() > 0)
		out.test_json = evaluate(m, model, te, true, res);
	if (model.estimator != nullptr)
		model.estimator->end_training();
	res.primary_metric = m.task == Task::Classification ? "accuracy" : m.task == Task::Regression ? "r2" : "silhouette";
	res.rows_train = static_cast<int64_t>(tr.size());
	res.rows_test = static_cast<int64_t>(te.size());
	out.test_rows = &te;
	return out;
}

} // namespace pgml
