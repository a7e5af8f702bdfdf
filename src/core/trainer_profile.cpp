// pg_ml core, the trainer: the profile of a version's training rows (what ml_monitor compares
// against) and the drift of a retrain's rows against its parent's profile (monitor.hpp).
#include "trainer_impl.hpp"

namespace pgml {

void Trainer::set_drift_reference(const Profile &parent) { impl_->drift_ref = std::make_unique<Profile>(parent); }

// Every route keeps some training rows: the in-memory route all of them (train_chunk after its
// split), the streaming and k-means routes their samples; naive Bayes through the class
// aggregate keeps none, only counts by level (its numeric columns get no bins).
void TrainRun::profile(TrainResult &res) const
{
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
				FeatureProfile f;
				f.name = cols[c].name;
				f.rows = p.rows;
				f.binned = false;
				f.null_share = p.rows > 0 ? static_cast<double>(nulls[c]) / static_cast<double>(p.rows) : 0.0;
				f.shares.push_back(1 - f.null_share);
				p.features.push_back(std::move(f));
			}
		}
	} else {
		p = build_profile(cols, dicts, all_rows ? train_chunk : train_sample, all_rows ? "training rows" : "training sample");
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
