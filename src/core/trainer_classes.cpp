// pg_ml core: the class-aggregate route (trainer_impl.hpp), naive Bayes through aggregates.
//
// The glue runs ml.train_stats grouped by the categorical features, the target and the split
// (which it knows from the stratified cut of each class, stratified_cut), hands each group
// to add_class_group, fits with class_fit (the per class statistics naive Bayes keeps are
// derived from the groups' moments through the preprocessing's affine map), evaluates the
// fitted model with ml.eval_stats and hands its state to add_eval_state; finish() then
// writes the metrics.
#include <algorithm>
#include <cmath>

#include "limits.hpp"
#include "models/naive_bayes.hpp"
#include "trainer_impl.hpp"

namespace pgml {

// logistic regression through Newton steps: at most this many encoded features (each step
// factorises their Hessian, O(p^3), about 3 s at the bound)
constexpr double kMaxNewtonFeatures = 2000;

bool Trainer::uses_class_aggregate() const
{
	const Impl &m = *impl_;
	bool logit = m.spec.algorithm == Algorithm::LogisticRegression && !logistic_unpenalized(m.hp) &&
	             m.base == nullptr && !m.incremental;
	if (logit) {
		// each Newton step factorises the p x p Hessian, O(p^3) without a cancel point: wide
		// encodings (counted at their max_levels) stay with L-BFGS on the rows, O(n p) a step
		double p = 0;
		for (const ColumnInfo &c : m.spec.features)
			p += c.categorical() ? m.popts.for_column(c.name).max_levels + 1.0 : 1.0;
		logit = p <= kMaxNewtonFeatures;
	}
	if (m.streaming || (m.spec.algorithm != Algorithm::NaiveBayes && !logit) || m.task != Task::Classification ||
	    m.popts.dedupe ||
	    m.popts.drop_nulls || rows_read_ > 0 || !m.class_groups.empty())
		return false;
	for (size_t c = 0; c < m.spec.features.size(); c++)
		if (m.wants_median(c))
			return false;
	return m.base == nullptr || m.base->algorithm == Algorithm::NaiveBayes;
}

// binary logistic regression, penalty l2, a fresh fit (the unpenalized fit's inference needs
// the rows; multinomial stays on the row reader)
bool Trainer::binary_only() const
{
	return impl_->spec.algorithm == Algorithm::LogisticRegression;
}

std::vector<double> Trainer::class_stats_params() const
{
	const Impl &m = *impl_;
	stats::Params p;
	p.nfeat = static_cast<int>(m.spec.features.size());
	p.has_target = true;
	p.target_categorical = m.spec.target.categorical();
	p.seed = m.spec.seed;
	p.test_size = 0; // the split is a GROUP BY key
	p.drop_nonfinite = m.popts.drop_nonfinite;
	p.sample_k = 0;
	p.block = kAggBlockRows;
	for (const ColumnInfo &c : m.spec.features)
		p.categorical.push_back(c.categorical() ? 1 : 0);
	return p.encode();
}

int stratified_cut(double test_size, int64_t below, const std::vector<std::pair<double, int64_t>> &band, int64_t above,
                   double hi, double *cut)
{
	int64_t n = below + above;
	for (const auto &e : band)
		n += e.second;
	if (n < 1 || below < 0 || above < 0)
		throw Error(ErrorCode::Internal, "a class without rows has no split");
	// as the row reader: the llround(test_size * n) rows with the smallest draws are held out,
	// at least one row stays for training
	int64_t nt = std::llround(test_size * static_cast<double>(n));
	if (nt >= n)
		nt = n - 1;
	if (nt < below)
		return -1;
	int64_t c = below;
	for (const auto &[draw, rows] : band) {
		if (c == nt) {
			*cut = draw; // held out: draw < cut
			return 1;
		}
		if (nt < c + rows)
			return 0; // equal draws (duplicate rows) on both sides of the cut
		c += rows;
	}
	if (c == nt) {
		*cut = hi;
		return 1;
	}
	return -1;
}

void Trainer::add_class_group(const std::vector<const char *> &levels, const char *label, double label_num, int split,
                              const double *state, size_t len, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	const size_t nf = m.spec.features.size();
	if (m.streaming || levels.size() != nf || m.class_model)
		throw Error(ErrorCode::Internal, "statistics group does not match the training columns");
	std::vector<size_t> numeric;
	stats::Decoded d = m.absorb_group(state, len, !m.spec.target.categorical(), numeric);
	rows_read_ += d.rows_in;
	const int64_t rows = d.train.n() + d.test.n();
	if (rows == 0)
		return;
	if ((split != 0 && split != 1) || d.test.n() != 0 || (m.spec.target.categorical() && label == nullptr))
		throw Error(ErrorCode::Internal, "statistics group has rows but no class or split");
	m.used_rows += rows;
	Impl::ClassGroup g;
	g.split = split;
	g.label = m.labels.intern(m.spec.target.categorical() ? std::string(label)
	                                                      : numeric_label(m.spec.target.type_class, label_num));
	g.cats = m.group_levels(levels);
	if (split == 0) {
		if (m.count_levels)
			for (size_t c = 0; c < nf; c++)
				if (m.spec.features[c].categorical())
					m.levels.note(c, g.cats[c]);
		m.class_train += rows;
		// the training rows' slots and moments, as add_moments would give them: state slot ->
		// encoder slot (-1: the target's slot; a numeric target is constant within the group),
		// merged with the other groups' later (flush_groups)
		std::vector<Eigen::Index> map, ones;
		m.group_slots(g.cats, numeric, d, map, ones);
		m.add_group(d.train, map, ones, false);
		m.note_group_columns(numeric, d);
	} else {
		m.class_test += rows;
	}
	g.d = std::move(d);
	m.class_groups.push_back(std::move(g));
}

std::unique_ptr<Model> TrainRun::class_prepare(int64_t rows_read, std::vector<int> &rank, int &K, CancelCheck cancel)
{
	if (!aggregated || class_model)
		throw Error(ErrorCode::Internal, "class_fit without statistics groups");
	this->cancel = cancel;
	flush_groups(); // queued groups first: their extremes are checked below
	check_magnitudes();
	if (skipped_null_target > 0 && skipped_null_target == rows_read)
		throw Error(ErrorCode::DataException, "target column \"" + spec.target.name + "\" is NULL in every row",
		            std::to_string(rows_read) + " rows were read.", "Train on rows with a known target.");
	if (used_rows == 0)
		no_rows_left(rows_read, false);
	std::unique_ptr<Model> model = new_model();
	K = 0;
	std::vector<int64_t> label_rows(labels.size(), 0);
	for (const ClassGroup &g : class_groups)
		label_rows[static_cast<size_t>(g.label)] += g.d.train.n() + g.d.test.n();
	rank = order_classes(*model, K, class_train + class_test, label_rows);
	if (class_train == 0)
		throw Error(ErrorCode::DataException, "no rows left to train on",
		            "All " + std::to_string(used_rows) + " rows were held out for testing.", "Lower test_size.");
	check_cancel(cancel);
	model->prep = base != nullptr ? base->prep
	                              : fit_preprocessor(spec.features, popts, enc, train, col_min, col_max, medians());
	model->prep.native_missing = false;
	return model;
}

std::vector<uint8_t> Trainer::class_fit(CancelCheck cancel)
{
	Impl &m = *impl_;
	const TrainSpec &spec = m.spec;
	if (m.logit_model) {
		// logistic regression: the Newton steps' coefficients, the scaling folded in
		if (!m.logit || !m.logit->done())
			throw Error(ErrorCode::Internal, "logistic regression finished before its Newton steps");
		const logit_step::Params &c = m.logit->params();
		Model &model = *m.logit_model;
		model.W = (c.w.array() / model.prep.scale.array()).matrix();
		model.b = Eigen::VectorXd::Constant(1, c.b - model.prep.center.dot(model.W.col(0)));
		m.class_model = std::move(m.logit_model);
		return m.class_model->serialize();
	}
	std::vector<int> rank;
	int K = 0;
	std::unique_ptr<Model> model = m.class_prepare(rows_read_, rank, K, cancel);
	const Preprocessor &pp = model->prep;
	const int p = pp.p();
	std::vector<int> groups(static_cast<size_t>(p), -1);
	std::vector<std::vector<int>> group_feats(spec.features.size());
	for (size_t c = 0; c < spec.features.size(); c++)
		if (spec.features[c].categorical())
			for (int k = 0; k < pp.columns[c].n_features; k++) {
				groups[static_cast<size_t>(pp.columns[c].first_feature + k)] = static_cast<int>(c);
				group_feats[c].push_back(pp.columns[c].first_feature + k);
			}
	// per class statistics of the scaled features z = (x - center) / scale, group by group
	Eigen::VectorXd count = Eigen::VectorXd::Zero(K);
	Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(K, p), m2 = Eigen::MatrixXd::Zero(K, p),
	                level = Eigen::MatrixXd::Zero(K, p);
	std::vector<double> z(static_cast<size_t>(p));
	size_t j = 0;
	for (const Impl::ClassGroup &g : m.class_groups) {
		if (g.split != 0)
			continue;
		const int k = rank[static_cast<size_t>(g.label)];
		const double nb = static_cast<double>(g.d.train.n()), na = count(k), nt = na + nb;
		const Eigen::VectorXd &mu = g.d.train.mean();
		const Eigen::MatrixXd C = g.d.train.comoment();
		std::fill(z.begin(), z.end(), 0.0);
		j = 0;
		for (size_t c = 0; c < spec.features.size(); c++) {
			const FittedColumn &fc = pp.columns[c];
			if (spec.features[c].categorical()) {
				int f = -1;
				if (g.cats[c] >= 0)
					f = pp.level_feature(c, m.enc.dictionary(c).name(g.cats[c]));
				else
					f = fc.null_feature;
				if (f >= 0)
					z[static_cast<size_t>(f)] = (1.0 - pp.center(f)) / pp.scale(f);
				continue;
			}
			// x = value + impute_value * indicator (the value slot is 0 where NULL)
			const Eigen::Index v = static_cast<Eigen::Index>(j), ind = g.d.indicator[j];
			double mx = mu(v), M2 = C(v, v);
			if (ind >= 0) {
				const double iv = fc.impute_value;
				mx += iv * mu(ind);
				M2 += 2 * iv * C(v, ind) + iv * iv * C(ind, ind);
			}
			j++;
			const int f = fc.first_feature;
			const double mz = (mx - pp.center(f)) / pp.scale(f), m2z = std::max(0.0, M2) / (pp.scale(f) * pp.scale(f));
			if (na == 0) {
				mean(k, f) = mz;
				m2(k, f) = m2z;
			} else {
				const double delta = mz - mean(k, f);
				mean(k, f) += delta * nb / nt;
				m2(k, f) += m2z + delta * delta * na * nb / nt;
			}
		}
		for (size_t c = 0; c < spec.features.size(); c++) {
			if (group_feats[c].empty())
				continue;
			const int a = naive_bayes_active_level(group_feats[c], z.data());
			if (a >= 0)
				level(k, group_feats[c][static_cast<size_t>(a)]) += nb;
		}
		count(k) = nt;
	}
	check_cancel(cancel);
	if (m.base != nullptr) {
		// a copy of the base's estimator, with the new rows added
		std::unique_ptr<Estimator> est = m.copy_base_estimator(p, K);
		naive_bayes_add_stats(*est, count, mean, m2, level);
		model->estimator = std::move(est);
	} else {
		model->estimator = naive_bayes_from_stats(p, K, groups, m.hp, count, mean, m2, level);
	}
	m.class_model = std::move(model);
	return m.class_model->serialize();
}

bool Trainer::uses_logit_steps() const
{
	const Impl &m = *impl_;
	return m.spec.algorithm == Algorithm::LogisticRegression && !m.class_groups.empty() && !m.class_model;
}

std::vector<double> Trainer::logit_step_params(std::vector<uint8_t> *blob, std::vector<std::string> *classes,
                                               bool can_sample, double *fraction, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	if (!uses_logit_steps())
		return {};
	if (!m.logit) {
		std::vector<int> rank;
		int K = 0;
		m.logit_model = m.class_prepare(rows_read_, rank, K, cancel);
		if (K != 2)
			throw Error(ErrorCode::Internal, "logistic regression through aggregates needs two classes");
		{
			// a Newton scan's state holds the (p+1) x (p+1) Hessian: in this backend, in each
			// parallel worker's, and decoded with its factorisation (about four copies)
			const double q = static_cast<double>(m.logit_model->prep.p()) + 1;
			check_memory(m.spec.memory_limit, 4 * q * q * 8, "logistic_regression",
			             std::to_string(m.logit_model->prep.p()) + " features (after encoding); each Newton step keeps "
			                 "their Hessian.",
			             "the number of features (exclude columns, or cap categorical levels)");
		}
		double ones = 0;
		for (const Impl::ClassGroup &g : m.class_groups)
			if (g.split == 0 && rank[static_cast<size_t>(g.label)] == 1)
				ones += static_cast<double>(g.d.train.n());
		const double C = m.hp.num("C");
		m.logit = std::make_unique<logit_step::Fit>(m.logit_model->prep.p(), C, m.hp.integer("max_iter"),
		                                             ones / static_cast<double>(m.class_train));
		const double f = logit_step::kSampleRows / static_cast<double>(m.class_train);
		if (can_sample && f <= logit_step::kMaxFirstSampleFraction)
			m.logit->start_on_sample(f, m.class_train);
		m.logit_model->W = Eigen::MatrixXd::Zero(m.logit_model->prep.p(), 1);
		m.logit_model->b = Eigen::VectorXd::Zero(1);
		*blob = m.logit_model->serialize(); // the preprocessing: the same for every step
	}
	if (m.logit->done())
		return {};
	*classes = m.logit_model->classes;
	*fraction = m.logit->fraction();
	return m.logit->params().encode();
}

void Trainer::add_logit_step(const double *state, size_t len)
{
	Impl &m = *impl_;
	if (!m.logit || m.logit->done())
		throw Error(ErrorCode::Internal, "logistic regression step without a fit to add it to");
	logit_step::Sums s;
	s.p = m.logit_model->prep.p();
	s.grad = Eigen::VectorXd::Zero(s.p + 1);
	s.hess = Eigen::MatrixXd::Zero(s.p + 1, s.p + 1);
	if (state != nullptr) // NULL: no rows at all
		s = logit_step::decode(state, len);
	if (m.logit->fraction() >= 1 && s.rows != m.class_train)
		throw Error(ErrorCode::DataException, "the relation changed while logistic_regression was trained",
		            "The relation is scanned once per Newton step: the statistics scan saw " +
		                std::to_string(m.class_train) + " training rows, a Newton step " + std::to_string(s.rows) +
		                ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Train on a table (or a materialized view), or SET pg_ml.stats_aggregate = off to read the "
		            "rows once.");
	m.logit->add(s, m.spec.progress);
}

std::vector<std::string> Trainer::class_names() const
{
	const Impl &m = *impl_;
	if (!m.class_model)
		throw Error(ErrorCode::Internal, "class_names before class_fit");
	return m.class_model->classes;
}

std::vector<double> Trainer::eval_params() const
{
	const Impl &m = *impl_;
	evalstate::Params p;
	p.sample_k = kAggSampleRows;
	// logistic regression: roc_auc exact on a split of up to kSampleRows rows, as the row
	// reader's metrics on the rows (a larger split keeps the smaller sample: a sample of
	// kSampleRows rows costs the evaluating scan twice its time)
	if (m.spec.algorithm == Algorithm::LogisticRegression)
		for (int64_t n : {m.class_train, m.class_test})
			if (n <= static_cast<int64_t>(kSampleRows))
				p.sample_k = std::max(p.sample_k, static_cast<int>(n));
	return p.encode();
}

void Trainer::add_eval_state(const double *state, size_t len, bool of_compare)
{
	Impl &m = *impl_;
	if (!m.class_model)
		throw Error(ErrorCode::Internal, "evaluation before class_fit");
	evalstate::Decoded d = evalstate::decode(state, len);
	if (d.shape.K != m.class_model->n_classes())
		throw Error(ErrorCode::Internal, "evaluation state has another number of classes");
	if (!of_compare) {
		// the evaluation must have seen exactly the rows the statistics did
		if (d.split[0].n != m.class_train || d.split[1].n != m.class_test || d.unknown_label != 0 || !d.shape.proba)
			throw Error(ErrorCode::Internal, "the evaluating query saw other rows than the statistics query",
			            std::to_string(d.split[0].n) + " / " + std::to_string(d.split[1].n) + " rows against " +
			                std::to_string(m.class_train) + " / " + std::to_string(m.class_test) + ".");
		m.class_eval = std::move(d);
		m.class_evaluated = true;
	} else {
		m.class_compare_eval = std::move(d);
		m.class_compared = true;
	}
}

// naive Bayes from the class aggregate: fitted by class_fit, evaluated by ml.eval_stats
RouteFit finish_class_route(TrainRun &m, int64_t, const Model *compare, TrainResult &res)
{
	if (!m.class_evaluated)
		throw Error(ErrorCode::Internal, "the class aggregate's model was not evaluated");
	RouteFit out;
	out.model = std::move(m.class_model);
	const Model &model = *out.model;
	const evalstate::Split &tr = m.class_eval.split[0], &te = m.class_eval.split[1];
	if (m.logit) {
		// logistic regression: the objective per training row at each Newton scan
		res.log.insert(res.log.end(), m.logit->log().begin(), m.logit->log().end());
	} else {
		// naive Bayes' training log: the mean negative log-likelihood of the training rows
		res.log.push_back({1, tr.n > 0 ? tr.nll_sum / static_cast<double>(tr.n) : 0.0, NAN, NAN});
	}
	out.train_json = evalstate::split_json(tr, model.classes, true);
	if (te.n > 0) {
		out.test_json = evalstate::split_json(te, model.classes, true);
		res.primary_test = te.confusion.trace() / static_cast<double>(te.n);
	}
	res.primary_metric = "accuracy";
	res.rows_train = tr.n;
	res.rows_test = te.n;
	if (compare != nullptr && m.class_compared && te.n > 0 && compare->task == model.task) {
		const evalstate::Split &prev = m.class_compare_eval.split[1];
		if (prev.n == te.n) {
			res.previous_metrics_json = evalstate::split_json(prev, model.classes, m.class_compare_eval.shape.proba);
			res.previous_primary = prev.confusion.trace() / static_cast<double>(prev.n);
			res.primary_compare_new = res.primary_test;
			res.compared = true;
		}
	}
	return out;
}

} // namespace pgml
