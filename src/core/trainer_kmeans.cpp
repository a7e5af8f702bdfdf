// pg_ml core: the k-means route (trainer_impl.hpp). A fresh k-means fit runs on the statistics
// aggregate (preprocessing from the moments, starting centres from its sample), then on the
// Lloyd-step aggregate (kmeans_step.hpp) until it converges.
#include "models/kmeans.hpp"
#include "trainer_impl.hpp"

namespace pgml {

// Preprocessing from the statistics, starting centres from the sample (kmeans_step.hpp).
void TrainRun::start_kmeans(CancelCheck cancel)
{
	this->cancel = cancel;
	flush_groups();
	check_magnitudes();
	trim_samples();
	if (train.n() == 0)
		throw Error(ErrorCode::DataException, "no rows left to train on",
		            std::to_string(used_rows + dropped_nonfinite) + " rows were read, " +
		                std::to_string(dropped_nonfinite) + " with a non-finite value, " + std::to_string(test.n()) +
		                " held out for testing.",
		            "Train on more rows, or lower test_size.");
	grow_moments();
	Preprocessor prep = fit_preprocessor(spec.features, popts, enc, train, col_min, col_max, medians());
	prep.native_missing = false;
	const int p = prep.p();
	Eigen::MatrixXd A;
	Eigen::VectorXd c0;
	prep.affine(enc, A, c0);
	const Eigen::MatrixXd AC = A * train.comoment();
	km_m2 = AC.cwiseProduct(A).rowwise().sum().array() / prep.scale.array().square();
	km_mean = (A * train.mean() + c0 - prep.center).array() / prep.scale.array();
	const double tol_abs = hp.num("tol") * km_m2.sum() / (static_cast<double>(p) * static_cast<double>(train.n()));
	check_cancel(cancel);
	Eigen::MatrixXd X = scaled_rows(prep, enc, train_sample);
	FitInput in;
	in.X = &X;
	in.task = Task::Clustering;
	in.seed = spec.seed;
	in.native_missing = false;
	in.threads = spec.threads;
	in.memory_limit = spec.memory_limit;
	in.cancel = cancel;
	Eigen::MatrixXd C0 = kmeans_fit_centres(in, hp);
	km = std::make_unique<kmeans_step::Fit>(std::move(prep), spec.features, std::move(C0), tol_abs,
	                                        hp.integer("max_iter"), spec.seed, spec.test_size);
}

bool Trainer::uses_kmeans_steps() const
{
	return impl_->kmeans_aggregate();
}

std::vector<double> Trainer::kmeans_step_params(std::vector<std::string> *levels, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	if (!m.aggregated || !m.kmeans_aggregate())
		return {};
	if (!m.km)
		m.start_kmeans(cancel);
	if (m.km->done())
		return {};
	*levels = m.km->levels();
	return m.km->params();
}

void Trainer::add_kmeans_step(const double *state, size_t len)
{
	Impl &m = *impl_;
	if (!m.km || m.km->done())
		throw Error(ErrorCode::Internal, "k-means step without a fit to add it to");
	kmeans_step::Sums s; // a NULL state (no rows at all) is empty
	if (state != nullptr)
		s = kmeans_step::decode(state, len);
	if (s.rows_train != m.train.n() || s.rows_test != m.test.n())
		throw Error(ErrorCode::DataException, "the relation changed while k-means was trained",
		            "The relation is scanned once per Lloyd step: the statistics scan saw " +
		                std::to_string(m.train.n() + m.test.n()) + " rows, a Lloyd step " +
		                std::to_string(s.rows_train + s.rows_test) +
		                ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Train on a table (or a materialized view), or SET pg_ml.stats_aggregate = off to read the "
		            "rows once.");
	m.km->add(s, m.spec.progress);
}

// k-means through the Lloyd-step aggregate: inertia and rows exact from the last scan, the
// silhouette on the statistics sample (at most 2000 of its rows).
RouteFit finish_kmeans_route(TrainRun &m, int64_t, const Model *compare, TrainResult &res)
{
	const TrainSpec &spec = m.spec;
	const CancelCheck cancel = m.cancel;
	if (!m.km || !m.km->done())
		throw Error(ErrorCode::Internal, "k-means fit finished before its Lloyd steps");
	RouteFit out;
	out.model = m.new_model();
	Model &model = *out.model;
	const kmeans_step::Sums &s = m.km->last();
	model.prep = m.km->prep();
	model.estimator = make_kmeans(m.km->centres(), s.counts, static_cast<double>(m.train.n()), m.km_mean, m.km_m2);
	res.log.insert(res.log.end(), m.km->log().begin(), m.km->log().end());
	report_phase(spec.progress, "evaluating");
	auto metrics = [&](const RowStore &sample, int64_t rows, double inertia) {
		ClusteringMetrics cl =
		    clustering_metrics(*model.estimator, TrainRun::scaled_rows(model.prep, m.enc, sample), spec.seed, cancel);
		cl.inertia = inertia;
		cl.rows = rows;
		return cl;
	};
	out.train_json = metrics(m.train_sample, s.rows_train, s.inertia_train).to_json();
	if (s.rows_test > 0) {
		ClusteringMetrics cl = metrics(m.test_sample, s.rows_test, s.inertia_test);
		out.test_json = cl.to_json();
		res.primary_test = cl.silhouette;
		if (compare != nullptr && compare->task == Task::Clustering && compare->estimator) {
			// the deployed model's silhouette on the same sample (in its own scaling); both
			// inertias over every held-out row come from the comparison pass
			m.sample_new = cl;
			m.sample_prev = clustering_metrics(
			    *compare->estimator, TrainRun::scaled_rows(compare->prep, m.enc, m.test_sample), spec.seed, cancel);
			m.sample_new.inertia = m.sample_prev.inertia = 0; // summed by the pass
			m.compare_pass = true;
		}
	}
	res.primary_metric = "silhouette";
	res.rows_train = s.rows_train;
	res.rows_test = s.rows_test;
	return out;
}

} // namespace pgml
