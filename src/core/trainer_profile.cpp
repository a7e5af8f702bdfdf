// pg_ml core, the trainer: the profile of a version's training rows (what ml_monitor compares
// against) and the drift of a retrain's rows against its parent's profile (monitor.hpp).
#include "trainer_impl.hpp"

namespace pgml {

namespace {

// the standard normal's deciles
constexpr double kNormalDeciles[] = {
    -1.2815515655446004, -0.8416212335729143, -0.5244005127080407, -0.2533471031357997, 0.0,
    0.2533471031357997,  0.5244005127080407,  0.8416212335729143,  1.2815515655446004};

} // namespace

// A numeric column of the class route, which keeps the training rows' moments but no rows: the
// deciles of a normal distribution with the non-NULL values' mean and standard deviation (what
// Gaussian naive Bayes assumes of each class), a tenth of the non-NULL rows in each bin by
// construction. (A NULL is 0 in the column's slot of the moments, its missing slot 1.)
FeatureProfile TrainRun::normal_profile(size_t c, int64_t rows) const
{
	FeatureProfile f;
	f.name = spec.features[c].name;
	f.rows = rows;
	const double n = static_cast<double>(train.n()), k = static_cast<double>(nulls[c]);
	f.null_share = rows > 0 ? k / static_cast<double>(rows) : 0.0;
	const Eigen::Index slot = enc.value_slot(c);
	if (n - k < 1 || slot < 0 || slot >= train.dim()) {
		f.binned = false;
		f.shares.push_back(1 - f.null_share);
		return f;
	}
	const double mean = train.mean()(slot) * n / (n - k);
	const double sq = train.comoment()(slot, slot) + n * train.mean()(slot) * train.mean()(slot);
	const double sd = std::sqrt(std::max(0.0, sq / (n - k) - mean * mean));
	const double share = 1 - f.null_share;
	if (!(sd > 0) || col_min[c] == col_max[c]) {
		f.edges = {col_min[c], std::nextafter(col_min[c], INFINITY)}; // constant
		f.shares = {0.0, share, 0.0};
		return f;
	}
	for (double z : kNormalDeciles)
		f.edges.push_back(mean + z * sd);
	f.shares.assign(f.edges.size() + 1, share / static_cast<double>(f.edges.size() + 1));
	return f;
}

void Trainer::set_drift_reference(const Profile &parent)
{
	impl_->drift_ref = std::make_unique<Profile>(parent);
}

const RowStore *Trainer::profile_rows(std::vector<const Dictionary *> &dicts) const
{
	const TrainRun &m = *impl_;
	if (!m.class_groups.empty())
		return nullptr;
	dicts.assign(m.spec.features.size(), nullptr);
	for (size_t c = 0; c < m.spec.features.size(); c++)
		if (m.spec.features[c].categorical())
			dicts[c] = &m.enc.dictionary(c);
	return m.route() == finish_rows_route ? &m.train_chunk : &m.train_sample;
}

// Every route keeps some training rows: the in-memory route all of them (train_chunk after its
// split), the streaming and k-means routes their samples; naive Bayes through the class
// aggregate keeps none, only counts by level and moments (normal_profile).
void TrainRun::profile(TrainResult &res) const
{
	if (spec.cross_validating())
		return; // a search's trial fold: scored, never stored as a version
	const std::vector<ColumnInfo> &cols = spec.features;
	std::vector<const Dictionary *> dicts(cols.size(), nullptr);
	for (size_t c = 0; c < cols.size(); c++)
		if (cols[c].categorical())
			dicts[c] = &enc.dictionary(c);
	// (after finish() the class route's model has been handed out: its groups tell it)
	const bool by_class = !class_groups.empty();
	const bool all_rows = !by_class && route() == finish_rows_route;
	// the parent's profile describes these columns (the drift and a continued profile need it)
	bool comparable = drift_ref != nullptr;
	for (size_t c = 0; c < cols.size() && comparable; c++) {
		const FeatureProfile *f = drift_ref->find(cols[c].name);
		comparable = f != nullptr && f->categorical == cols[c].categorical();
	}
	Profile p;
	if (incremental && comparable && !by_class) {
		// continued training learned the parent's rows too: the parent's bins, the new
		// training rows counted in, weighted by the training rows each stands for (the parent's:
		// its statistics' rows, or (warm start, the in-memory algorithms) the rows it profiled)
		const double parent_rows = static_cast<double>(base_rows > 0 ? base_rows : drift_ref->rows);
		p = merge_profile(*drift_ref, parent_rows, cols, dicts, all_rows ? train_chunk : train_sample,
		                  static_cast<double>(res.rows_train - base_rows),
		                  all_rows ? "parent profile + training rows" : "parent profile + training sample");
	} else if (by_class) {
		p.rows = class_train;
		p.from = "class statistics";
		for (size_t c = 0; c < cols.size(); c++) {
			if (cols[c].categorical()) {
				std::vector<int64_t> count(dicts[c]->size(), 0);
				int64_t nulls = 0;
				for (const ClassGroup &g : class_groups) {
					if (g.split != 0)
						continue;
					const int32_t id = g.cats[c];
					if (id < 0 || static_cast<size_t>(id) >= count.size())
						nulls += g.d.train.n();
					else
						count[static_cast<size_t>(id)] += g.d.train.n();
				}
				std::vector<std::pair<std::string, int64_t>> levels;
				for (size_t l = 0; l < count.size(); l++)
					if (count[l] > 0)
						levels.emplace_back(dicts[c]->name(static_cast<int32_t>(l)), count[l]);
				p.features.push_back(level_profile(cols[c].name, std::move(levels), nulls, p.rows));
			} else {
				p.features.push_back(normal_profile(c, p.rows));
			}
		}
	} else {
		p = build_profile(cols, dicts, all_rows ? train_chunk : train_sample,
		                  all_rows ? "training rows" : "training sample");
	}
	res.profile_json = p.to_json();
	if (!comparable)
		return; // no parent profile, or one of other columns: no drift
	DriftMonitor dm(*drift_ref, cols);
	if (all_rows) {
		dm.add_rows(train_chunk, dicts);
		dm.add_rows(test_chunk, dicts);
	} else if (!by_class) {
		dm.add_rows(train_sample, dicts);
		dm.add_rows(test_sample, dicts);
	}
	if (dm.rows() > 0)
		res.drift_json = dm.summary_json();
}

} // namespace pgml
