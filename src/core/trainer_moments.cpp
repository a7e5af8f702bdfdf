// pg_ml core: the moments route (trainer_impl.hpp). The linear family keeps the moments of the
// encoded rows: streamed from the row reader a chunk at a time, or merged from the groups of
// the statistics aggregate (stats_state.hpp); the fit is models/linear.hpp's.
#include <algorithm>
#include <cmath>

#include "json.hpp"
#include "limits.hpp"
#include "models/linear.hpp"
#include "trainer_impl.hpp"

namespace pgml {

namespace {

// JSON of regression metrics computed from sums of squares (exact) plus a row sample for MAE.
std::string regression_json(int64_t n, double sse, double sst, const RegressionMetrics &sample)
{
	JsonWriter w;
	w.begin_object();
	double mse = n > 0 ? sse / static_cast<double>(n) : NAN;
	double r2 = sst > 0 ? 1.0 - sse / sst : (sse <= 0 ? 1.0 : 0.0);
	w.key("r2").value(r2);
	w.key("rmse").value(std::sqrt(mse));
	w.key("mse").value(mse);
	w.key("mae").value(sample.mae());
	w.key("rows").value(static_cast<long long>(n));
	if (sample.count() < n)
		w.key("mae_sample_rows").value(static_cast<long long>(sample.count()));
	w.end_object();
	return w.str();
}

} // namespace

// Decodes one group of a statistics aggregate query, checks that it was computed for this
// run's columns (with a target slot or not, as has_target says), raises the row reader's
// error for a non-finite value, and adds the group's counters to the run's. numeric gets
// the numeric feature columns, in order.
stats::Decoded TrainRun::absorb_group(const double *state, size_t len, bool has_target, std::vector<size_t> &numeric)
{
	const size_t nf = spec.features.size();
	stats::Decoded d = stats::decode(state, len);
	numeric.clear();
	for (size_t c = 0; c < nf; c++)
		if (!spec.features[c].categorical())
			numeric.push_back(c);
	if (d.shape.nfeat != static_cast<int>(nf) || d.shape.k != static_cast<int>(numeric.size()) ||
	    d.shape.has_target != has_target)
		throw Error(ErrorCode::Internal, "statistics group was computed for other columns");
	// values out of range (the row reader's check): the training rows' extremes, and the
	// moments of training and held-out rows (a square that overflowed)
	for (size_t j = 0; j < numeric.size(); j++) {
		const std::string &name = spec.features[numeric[j]].name;
		for (double v : {d.min[j], d.max[j]})
			if (std::isfinite(v) && std::fabs(v) > kMaxFeatureMagnitude)
				feature_out_of_range(name, v, kSquareOverflows);
		const Eigen::Index k = static_cast<Eigen::Index>(j);
		for (const Moments *mo : {&d.train, &d.test})
			if (mo->n() > 0 && k < mo->dim() && (!std::isfinite(mo->mean()(k)) || !std::isfinite(mo->comoment()(k, k))))
				feature_out_of_range(name, NAN, kSquareOverflows);
	}
	if (has_target && task == Task::Regression) {
		const Eigen::Index k = static_cast<Eigen::Index>(numeric.size()); // the target's slot
		for (const Moments *mo : {&d.train, &d.test})
			if (mo->n() > 0 && k < mo->dim() && (!std::isfinite(mo->mean()(k)) || !std::isfinite(mo->comoment()(k, k))))
				feature_out_of_range(spec.target.name, NAN, kSquareOverflows, true);
	}
	if (d.nonfinite_column >= 0) {
		bool is_target = d.nonfinite_column >= static_cast<int>(nf);
		nonfinite(is_target ? spec.target.name : spec.features[static_cast<size_t>(d.nonfinite_column)].name,
		          d.nonfinite_nan ? NAN : INFINITY, is_target);
	}
	aggregated = true;
	skipped_null_target += d.skipped_null_target;
	dropped_nonfinite += d.dropped_nonfinite;
	fingerprint += d.fingerprint;
	return d;
}

// Rows encoded and added to the moments at a time: kBlockCells values, fewer with many slots
// (categorical levels) so that cancel is polled at least every 2^28 multiply-adds (a block
// costs O(rows q^2); up to 64 slots: unchanged) and the block stays within an eighth of the
// memory limit; at least 64 rows.
Eigen::Index TrainRun::block_rows() const
{
	const Eigen::Index q = std::max<Eigen::Index>(1, enc.dim());
	Eigen::Index rows = std::min<Eigen::Index>(kBlockCells / q, (Eigen::Index(1) << 28) / (q * q));
	if (spec.memory_limit > 0)
		rows = std::min<Eigen::Index>(rows, static_cast<Eigen::Index>(spec.memory_limit / 64) / q);
	return std::max<Eigen::Index>(64, rows);
}

// Queues a group's moments (from, on the state slots `slots`; `ones` constant 1) for `to`
// (train or test); merges the queue once it holds as much as the dense moments.
void TrainRun::add_group(const Moments &from, const std::vector<Eigen::Index> &slots,
                         const std::vector<Eigen::Index> &ones, bool to_test)
{
	if (from.n() == 0)
		return;
	check_moments_memory(); // before the slots' moments are ever allocated
	const Eigen::Index q = enc.dim();
	if (q <= kDirectMergeSlots && pending_train.empty() && pending_test.empty()) {
		// few slots: merged at once, as dense moments (O(q^2) is small)
		grow_moments();
		Eigen::VectorXd mean = Eigen::VectorXd::Zero(q);
		Eigen::MatrixXd M = Eigen::MatrixXd::Zero(q, q);
		Eigen::MatrixXd C = from.comoment();
		for (size_t i = 0; i < slots.size(); i++) {
			if (slots[i] < 0)
				continue;
			mean(slots[i]) = from.mean()(static_cast<Eigen::Index>(i));
			for (size_t j = 0; j < slots.size(); j++)
				if (slots[j] >= 0)
					M(slots[i], slots[j]) = C(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
		}
		for (Eigen::Index slot : ones)
			mean(slot) = 1.0;
		(to_test ? test : train).merge(Moments::from(from.n(), mean, M));
		return;
	}
	PendingGroup g;
	g.n = from.n();
	g.slots = slots;
	g.mean = from.mean();
	g.C = from.comoment();
	g.ones = ones;
	pending_bytes += 8.0 * static_cast<double>(g.C.size() + g.mean.size() + slots.size() + ones.size()) + 128;
	(to_test ? pending_test : pending_train).push_back(std::move(g));
	if (pending_bytes > std::max(8.0 * static_cast<double>(q) * static_cast<double>(q), 4.0 * (1 << 20)))
		flush_groups();
}

// Merges the queued groups into the training and test moments: O(slots^2) per group and
// O(q^2) once (not per group).
void TrainRun::flush_groups()
{
	if (pending_train.empty() && pending_test.empty())
		return;
	grow_moments();
	merge_pending(pending_train, train);
	merge_pending(pending_test, test);
	pending_bytes = 0;
}

// The moments of the groups gs (all of them together), merged into `into`. Between groups,
// sum n_g (mu_g - mu)(mu_g - mu)^T is computed around a shift s that is the overall mean on
// the slots every group carries (numeric values, the target) and 0 on indicator slots, so
// that each group's deviation is sparse and the numbers are not cancelled: the rest,
// N (mu - s)(mu - s)^T, lives on the indicator slots only (values in [0, 1]).
void TrainRun::merge_pending(std::vector<PendingGroup> &gs, Moments &into)
{
	if (gs.empty())
		return;
	const Eigen::Index q = enc.dim();
	double N = 0;
	Eigen::VectorXd sum = Eigen::VectorXd::Zero(q);
	for (const PendingGroup &g : gs) {
		const double n = static_cast<double>(g.n);
		N += n;
		for (size_t i = 0; i < g.slots.size(); i++)
			if (g.slots[i] >= 0)
				sum(g.slots[i]) += n * g.mean(static_cast<Eigen::Index>(i));
		for (Eigen::Index one : g.ones)
			sum(one) += n;
	}
	const Eigen::VectorXd mu = sum / N;
	Eigen::VectorXd shift = Eigen::VectorXd::Zero(q);
	for (size_t c = 0; c < spec.features.size(); c++)
		if (!spec.features[c].categorical() && enc.value_slot(c) >= 0)
			shift(enc.value_slot(c)) = mu(enc.value_slot(c));
	if (enc.target_slot() >= 0)
		shift(enc.target_slot()) = mu(enc.target_slot());
	Eigen::MatrixXd M = Eigen::MatrixXd::Zero(q, q);
	std::vector<std::pair<Eigen::Index, double>> d;
	for (const PendingGroup &g : gs) {
		check_cancel(cancel);
		const double n = static_cast<double>(g.n);
		d.clear();
		for (size_t i = 0; i < g.slots.size(); i++) {
			const Eigen::Index a = g.slots[i];
			if (a < 0)
				continue;
			d.emplace_back(a, g.mean(static_cast<Eigen::Index>(i)) - shift(a));
			for (size_t j = 0; j < g.slots.size(); j++)
				if (g.slots[j] >= 0)
					M(a, g.slots[j]) += g.C(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
		}
		for (Eigen::Index one : g.ones)
			d.emplace_back(one, 1.0 - shift(one));
		for (const auto &[a, da] : d)
			for (const auto &[b, db] : d)
				M(a, b) += n * da * db;
	}
	const Eigen::VectorXd e = mu - shift;
	M.noalias() -= N * e * e.transpose();
	into.merge(Moments::from(static_cast<int64_t>(N), mu, M));
	gs.clear();
}

// Checks that the training and test moments at the encoder's slots fit the memory limit.
void TrainRun::check_moments_memory() const
{
	const double q = static_cast<double>(enc.dim());
	// the training and test moments, and as much again for the temporaries of a merge
	check_memory(spec.memory_limit, 4 * memory::moments_bytes(q) + block_rows() * q * 8.0,
	             "the statistics of the encoded features",
	             "The training and test rows' co-moments are two " + count_text(q) + " x " + count_text(q) +
	                 " matrices (and their merges as many again): one slot per numeric column, per missing-value "
	                 "indicator and per category level.",
	             "max_levels, exclude columns with many distinct values");
}

// Widens the training and test moments to the encoder's slots, after checking that their
// two q x q matrices fit the memory limit (q grows with the categorical levels).
void TrainRun::grow_moments()
{
	check_moments_memory();
	train.grow(enc.dim());
	test.grow(enc.dim());
}

// Adds rows [0, s.size()) of s to m, in blocks.
void TrainRun::add_moments(const RowStore &s, Moments &m)
{
	if (s.size() == 0)
		return;
	enc.allocate(s, 0, s.size());
	grow_moments();
	const size_t step = static_cast<size_t>(block_rows());
	Eigen::MatrixXd workspace;
	for (size_t b = 0; b < s.size(); b += step) {
		check_cancel(cancel);
		size_t e = std::min(s.size(), b + step);
		enc.encode(s, b, e, block);
		m.add_block(block, &workspace);
	}
}

// Keeps the kSampleRows rows with the smallest sample draws (as the statistics aggregate
// does): the same rows whatever the order they come in (a reservoir sample would not be).
void TrainRun::keep_sample(RowStore &sample, std::vector<double> &u, std::vector<std::pair<double, size_t>> &heap,
                           const RowStore &src, size_t i)
{
	const double d = sample_draw(src.hash[i], spec.seed);
	if (sample.size() < kSampleRows) {
		heap.emplace_back(d, sample.size());
		std::push_heap(heap.begin(), heap.end());
		sample.append_from(src, i);
		u.push_back(d);
		return;
	}
	if (!(d < heap.front().first))
		return;
	std::pop_heap(heap.begin(), heap.end());
	const size_t at = heap.back().second;
	heap.back() = {d, at};
	std::push_heap(heap.begin(), heap.end());
	sample.set_from(at, src, i);
	u[at] = d;
}

void TrainRun::stream_chunk()
{
	train_chunk.clear();
	test_chunk.clear();
	for (size_t i = 0; i < chunk.size(); i++) {
		const int role = row_role(chunk.hash[i]);
		if (role == 2)
			continue; // cross-validation: a test row of the split, never seen by the search
		const bool is_test = role == 1;
		RowStore &dst = is_test ? test_chunk : train_chunk;
		dst.append_from(chunk, i);
		if (is_test) {
			keep_sample(test_sample, test_u, test_heap, chunk, i);
		} else {
			note_train_row(chunk, i);
			keep_sample(train_sample, train_u, train_heap, chunk, i);
		}
		fingerprint += mix64(chunk.hash[i]);
	}
	used_rows += static_cast<int64_t>(chunk.size());
	add_moments(train_chunk, train);
	add_moments(test_chunk, test);
}

// The level ids of a statistics group's categorical columns (-1: NULL, and for the numeric
// columns), interned in column order.
std::vector<int32_t> TrainRun::group_levels(const std::vector<const char *> &levels)
{
	std::vector<int32_t> cats(spec.features.size(), -1);
	for (size_t c = 0; c < spec.features.size(); c++)
		if (spec.features[c].categorical() && levels[c] != nullptr)
			cats[c] = enc.intern(c, levels[c]);
	return cats;
}

// The encoder slots of a statistics group's rows (levels cats, the numeric columns `numeric`
// with the missing-value indicators the group has), allocated as add_moments would for one of
// its rows: map, state slot -> encoder slot (-1 for the target's slot, which the caller maps
// if it is kept), and ones, the level slots (1 in every row of the group).
void TrainRun::group_slots(const std::vector<int32_t> &cats, const std::vector<size_t> &numeric,
                           const stats::Decoded &d, std::vector<Eigen::Index> &map, std::vector<Eigen::Index> &ones)
{
	const size_t nf = spec.features.size();
	RowStore one;
	one.reset(spec.features);
	for (size_t c = 0; c < nf; c++) {
		if (spec.features[c].categorical())
			one.cat[c].push_back(cats[c]);
		else
			one.num[c].push_back(0.0);
	}
	for (size_t j = 0; j < numeric.size(); j++)
		if (d.indicator[j] >= 0)
			one.num[numeric[j]][0] = NAN;
	one.y.push_back(0);
	one.hash.push_back(0);
	enc.allocate(one, 0, 1);
	map.assign(static_cast<size_t>(d.shape.q), -1);
	for (size_t j = 0; j < numeric.size(); j++) {
		map[j] = enc.value_slot(numeric[j]);
		if (d.indicator[j] >= 0)
			map[static_cast<size_t>(d.indicator[j])] = enc.missing_slot(numeric[j]);
	}
	ones.clear();
	for (size_t c = 0; c < nf; c++)
		if (spec.features[c].categorical())
			ones.push_back(enc.level_slot(c, cats[c]));
}

// Adds a statistics group's per-column counters (NULLs, extremes) to the run's.
void TrainRun::note_group_columns(const std::vector<size_t> &numeric, const stats::Decoded &d)
{
	for (size_t j = 0; j < numeric.size(); j++) {
		size_t c = numeric[j];
		nulls[c] += d.nulls[j];
		col_min[c] = std::min(col_min[c], d.min[j]);
		col_max[c] = std::max(col_max[c], d.max[j]);
	}
}

bool Trainer::uses_stats_aggregate() const
{
	const Impl &m = *impl_;
	if (!(m.streaming || m.kmeans_aggregate()) || m.popts.dedupe || m.popts.drop_nulls || rows_read_ > 0)
		return false;
	for (size_t c = 0; c < m.spec.features.size(); c++)
		if (m.wants_median(c))
			return false;
	return true;
}

std::vector<double> Trainer::stats_params(double expected_rows) const
{
	const Impl &m = *impl_;
	stats::Params p;
	p.nfeat = static_cast<int>(m.spec.features.size());
	p.has_target = !m.kmeans_aggregate(); // the linear family is regression; clustering has no target
	p.target_categorical = false;
	p.seed = m.spec.seed;
	p.test_size = m.spec.test_size;
	p.drop_nonfinite = m.popts.drop_nonfinite;
	p.sample_k = m.sample_cap();
	p.block = kAggBlockRows;
	if (expected_rows > 0) {
		// twice the expected need, so that an estimate that is off by a factor 2 still fills the sample
		const double cap = m.sample_cap();
		auto tau = [&](double share) { return share <= 0 ? 1.0 : std::min(1.0, 2.0 * cap / (expected_rows * share)); };
		p.tau_train = tau(1 - m.spec.test_size);
		p.tau_test = tau(m.spec.test_size);
	}
	for (const ColumnInfo &c : m.spec.features)
		p.categorical.push_back(c.categorical() ? 1 : 0);
	return p.encode();
}

void Trainer::add_stats_group(const std::vector<const char *> &levels, const double *state, size_t len,
                              CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	const size_t nf = m.spec.features.size();
	if (!(m.streaming || m.kmeans_aggregate()) || levels.size() != nf)
		throw Error(ErrorCode::Internal, "statistics group does not match the training columns");
	std::vector<size_t> numeric; // numeric feature columns, in order
	stats::Decoded d = m.absorb_group(state, len, m.enc.has_target_slot(), numeric);
	rows_read_ += d.rows_in;
	const int64_t rows = d.train.n() + d.test.n();
	m.used_rows += rows;
	if (rows == 0 && d.sample_train_rows == 0)
		return;

	// the group's categorical levels: a group with training rows brings them into the training
	// split, counted before they get slots (a column over max_levels stops here, not after
	// O(levels^2) work); then its slots, the categorical levels constant 1 within the group
	const std::vector<int32_t> cats = m.group_levels(levels);
	if (d.train.n() > 0 && m.count_levels)
		for (size_t c = 0; c < nf; c++)
			if (m.spec.features[c].categorical())
				m.levels.note(c, cats[c]);
	std::vector<Eigen::Index> map, constant;
	m.group_slots(cats, numeric, d, map, constant);
	if (d.shape.has_target)
		map[numeric.size()] = m.enc.target_slot();
	for (Eigen::Index slot : map)
		if (slot < 0)
			throw Error(ErrorCode::Internal, "statistics slot has no encoder slot");
	m.add_group(d.train, map, constant, false);
	m.add_group(d.test, map, constant, true);
	m.note_group_columns(numeric, d);
	// the group's MAE sample rows
	const size_t w = numeric.size() + 1;
	auto sample = [&](const std::vector<double> &rows_, const std::vector<double> &u, size_t n, RowStore &to,
	                  std::vector<double> &to_u) {
		for (size_t r = 0; r < n; r++) {
			const double *row = rows_.data() + r * w;
			for (size_t c = 0; c < nf; c++)
				if (m.spec.features[c].categorical())
					to.cat[c].push_back(cats[c]);
			for (size_t j = 0; j < numeric.size(); j++)
				to.num[numeric[j]].push_back(row[j]);
			to.y.push_back(row[numeric.size()]);
			to.hash.push_back(0);
			to_u.push_back(u[r]);
		}
	};
	sample(d.sample_train, d.sample_train_u, d.sample_train_rows, m.train_sample, m.train_u);
	sample(d.sample_test, d.sample_test_u, d.sample_test_rows, m.test_sample, m.test_u);
}

void Trainer::note_stats_group(const std::vector<const char *> &levels, const double *state, size_t len,
                               CancelCheck cancel)
{
	Impl &m = *impl_;
	check_cancel(cancel);
	const size_t nf = m.spec.features.size();
	if (!m.count_levels || levels.size() != nf)
		return;
	if (stats::decode(state, len).train.n() == 0)
		return;
	for (size_t c = 0; c < nf; c++)
		if (m.spec.features[c].categorical())
			m.levels.note(c, levels[c] == nullptr ? -1 : m.enc.intern(c, levels[c]));
}

namespace {

// the model's predictions of a sample's rows (the MAE)
RegressionMetrics sample_metrics(const TrainRun &m, const Model &model, const RowStore &sample)
{
	RegressionMetrics rm;
	std::vector<Value> vals;
	std::vector<double> out(8);
	for (size_t i = 0; i < sample.size(); i++) {
		m.row_values(sample, i, model.features, vals);
		model.predict(vals.data(), out.data());
		rm.add(sample.y[i], out[0]);
	}
	return rm;
}

} // namespace

// The linear family from the moments: the fit (models/linear.hpp) and the metrics, exact from
// the moments, plus the MAE of the sample rows.
RouteFit finish_moments_route(TrainRun &m, int64_t rows_read, const Model *compare, TrainResult &res)
{
	const TrainSpec &spec = m.spec;
	const CancelCheck cancel = m.cancel;
	RouteFit out;
	out.model = m.new_model();
	Model &model = *out.model;
	if (m.train.n() == 0)
		m.no_rows_left(rows_read, true);
	m.grow_moments();
	model.prep = fit_preprocessor(spec.features, m.popts, m.enc, m.train, m.col_min, m.col_max, m.medians());
	check_cancel(cancel);
	// joint second moments of the features x (through the affine map) and the target
	Eigen::MatrixXd A;
	Eigen::VectorXd c0;
	model.prep.affine(m.enc, A, c0);
	const int ts = m.enc.target_slot();
	LinearMoments tm = project_moments(m.train, A, c0, ts);
	if (!m.incremental && tm.Syy <= 0)
		m.check_constant_target(m.train.n(), tm.my, tm.my);
	PreciseInput precise; // after the precise pass (Trainer::needs_precise_pass)
	if (m.precise_done && m.ptrain)
		precise = PreciseInput{m.ptrain.get(), A, c0, ts};
	LinearFit fit = fit_linear_from_moments(spec.algorithm, m.hp, model.prep, spec.features, std::move(tm), m.train.n(),
	                                        cancel, precise.train != nullptr ? &precise : nullptr);
	// a least-squares fit short of digits from double statistics: read the rows again
	m.precise_wanted = fit.solve.rank >= 0 && !fit.precise && !m.precise_done && !(fit.solve.digits >= kPreciseDigits);
	model.W = fit.w;
	model.b = Eigen::VectorXd::Constant(1, fit.b);
	res.solve_rank = fit.solve.rank;
	res.solve_columns = fit.solve.columns;
	res.solve_condition = fit.solve.condition;
	res.solve_digits = fit.solve.digits;
	res.solve_precise = fit.solve.precise;
	res.solve_collinear = fit.solve.collinear;
	res.solve_constant = fit.solve.constant;
	for (const LinearSolveReport::Warning &w : fit.solve.warnings)
		res.warnings.push_back({w.message, w.detail, w.hint});
	res.inference_json = fit.inference_json;
	model.has_stats = true;
	model.encoder = m.enc;
	model.stats = fit.precise ? m.ptrain->rounded() : m.train;
	if (fit.precise && m.ptrain->precise()) {
		model.has_precise_stats = true;
		model.stats_mean_lo = m.ptrain->mean_lo();
		model.stats_comoment_lo = m.ptrain->comoment_lo();
	}
	model.col_min = m.col_min;
	model.col_max = m.col_max;
	res.log.insert(res.log.end(), fit.log.begin(), fit.log.end());
	const RegressionMetrics train_sample = sample_metrics(m, model, m.train_sample);
	out.train_json = regression_json(m.train.n(), fit.sse, fit.sst, train_sample);
	res.train_sums = {m.train.n(), tm.my, fit.sst, fit.sse, train_sample.mae(), train_sample.count()};
	res.rows_train = m.train.n();
	res.rows_test = m.test.n();
	if (m.test.n() > 0) {
		LinearMoments t = project_moments(m.test, A, c0, ts);
		double tsse = fit.precise && m.ptest ? residual_ss(*m.ptest, fit.setup, fit.w_dd, fit.b_dd)
		                                     : linear_sse(t, m.test.n(), fit.w, model.b(0));
		const RegressionMetrics test_sample = sample_metrics(m, model, m.test_sample);
		out.test_json = regression_json(m.test.n(), tsse, t.Syy, test_sample);
		res.test_sums = {m.test.n(), t.my, t.Syy, tsse, test_sample.mae(), test_sample.count()};
		res.primary_test = t.Syy > 0 ? 1.0 - tsse / t.Syy : (tsse <= 0 ? 1.0 : 0.0);
		// the deployed model keeps no statistics of these rows: both are scored on every
		// held-out row by the comparison pass
		m.compare_pass = compare != nullptr && compare->task == model.task;
	}
	res.primary_metric = "r2";
	// out.test_rows stays nullptr: the comparison is the pass's (compare_pass), or has no rows
	return out;
}

// ---------------------------------------------------------------- the precise pass

bool Trainer::needs_precise_pass() const { return impl_->precise_wanted && !impl_->precise_done; }

void Trainer::add_precise_batch(const Batch &batch, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	if (!needs_precise_pass() || batch.nfeatures != m.spec.features.size())
		throw Error(ErrorCode::Internal, "precise batch without a precise pass");
	const Eigen::Index q = m.enc.dim();
	if (!m.ptrain) {
		const double qd = static_cast<double>(q);
		check_memory(m.spec.memory_limit, 4 * memory::moments_bytes(qd) + static_cast<double>(m.block_rows()) * qd * 16.0,
		             "the precise statistics of the encoded features",
		             "An ill-conditioned least-squares fit reads the rows again into double-double co-moments: four " +
		                 count_text(qd) + " x " + count_text(qd) + " matrices.",
		             "max_levels, exclude columns with many distinct values");
		m.ptrain = std::make_unique<PreciseMoments>(q);
		m.ptest = std::make_unique<PreciseMoments>(q);
		if (m.base_precise) {
			PreciseMoments b = *m.base_precise;
			b.grow(q);
			m.ptrain->merge(b);
		}
	}
	m.ingest_again(batch, m.precise_seen);
	m.train_chunk.clear();
	m.test_chunk.clear();
	for (size_t i = 0; i < m.chunk.size(); i++)
		if (const int role = m.row_role(m.chunk.hash[i]); role != 2)
			(role == 1 ? m.test_chunk : m.train_chunk).append_from(m.chunk, i);
	for (auto [rows, into] : {std::pair{&m.train_chunk, m.ptrain.get()}, std::pair{&m.test_chunk, m.ptest.get()}}) {
		if (rows->size() == 0)
			continue;
		m.enc.allocate(*rows, 0, rows->size());
		if (m.enc.dim() != q)
			throw Error(ErrorCode::DataException, "the relation changed while it was read again",
			            "The precise pass met a category level or a NULL the first read did not.",
			            "Retrain from a table (or a materialized view).");
		const size_t step = static_cast<size_t>(m.block_rows());
		for (size_t b = 0; b < rows->size(); b += step) {
			check_cancel(cancel);
			m.enc.encode(*rows, b, std::min(rows->size(), b + step), m.block);
			into->add_block(m.block);
		}
	}
}

void Trainer::end_precise_pass()
{
	Impl &m = *impl_;
	if (!needs_precise_pass())
		throw Error(ErrorCode::Internal, "precise pass ended twice");
	m.precise_done = true;
	if (!m.ptrain) { // no rows at all: nothing was read
		m.ptrain = std::make_unique<PreciseMoments>(m.enc.dim());
		m.ptest = std::make_unique<PreciseMoments>(m.enc.dim());
	}
	if (m.ptrain->n() != m.train.n() || m.ptest->n() != m.test.n())
		throw Error(ErrorCode::DataException, "the relation changed while it was read again",
		            "The first read trained on " + std::to_string(m.train.n()) + " rows and held out " +
		                std::to_string(m.test.n()) + "; the precise pass read " + std::to_string(m.ptrain->n()) +
		                " and " + std::to_string(m.ptest->n()) +
		                ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Retrain from a table (or a materialized view).");
}

} // namespace pgml
