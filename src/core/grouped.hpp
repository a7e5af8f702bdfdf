// pg_ml core: per-group models (ml_train(group_by => ...)).
//
// A grouped version is one container model: the group columns, a routing table from a group
// key (the group columns' values as text, NULL a value of its own) to a sub-model (a complete
// Model of the version's algorithm, trained on that group's rows alone), and optionally a
// fallback model trained on every row, which serves groups the training rows did not hold.
//
// The container's blob (kind kGroupedKind in the header of serialize.hpp) holds each
// sub-model as a complete blob of its own, bound to the same catalog row; it is read like any
// untrusted blob: every sub-blob is checked as a model, and each must have the container's
// algorithm, task, target and binding, the same features as the others, and classes among the
// container's.
//
// Training (GroupedTrainer) reads the rows once: each row goes to its group's Trainer. The
// train / test split is the container's own (the row-hash rule every route uses,
// is_test_row, also for classification: not stratified), so that the held-out rows of every
// group are scored together: the version's test metrics are pooled over all groups' held-out
// rows (not an average of the groups' metrics), and each group's are in metrics.groups.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "data.hpp"
#include "model.hpp"
#include "monitor.hpp"
#include "trainer.hpp"

namespace pgml {

constexpr uint16_t kGroupedKind = 0x4750; // the blob header's kind of a container ("GP")
constexpr size_t kDefaultMaxGroups = 1000;

// One group's key: per group column, its value as text (null: NULL).
struct GroupKey {
	std::vector<std::string> values;
	std::vector<uint8_t> null;
	// the lookup form: one byte per column (N for NULL, V then a 4-byte length and the bytes)
	std::string encode() const;
	// "store = 'a'", "store = 'a', region IS NULL" (columns names given)
	std::string describe(const std::vector<ColumnInfo> &columns) const;
	// {"store": "a", "region": null}
	std::string to_json(const std::vector<ColumnInfo> &columns) const;
};

// The text of a group column's value as the key keeps it: the string of a categorical column,
// true / false of a boolean one, the integer of a numeric one (an integer-valued double).
std::string group_value_text(TypeClass tc, const Value &v);

class GroupedModel {
  public:
	struct Group {
		GroupKey key;
		std::shared_ptr<const Model> model;
		std::vector<int> class_map; // classification: the container's class of each of the sub-model's classes
	};
	std::vector<ColumnInfo> columns; // the group columns (also the container's last features)
	std::vector<Group> groups;       // in key order
	std::shared_ptr<const Model> fallback; // trained on every row (group_fallback => 'all'), or none
	std::vector<int> fallback_map;

	// Builds the routing table (and the class maps from the container's classes); throws
	// Error(DataCorrupted) on a duplicate key or a class the container does not list.
	void index(const std::vector<std::string> &classes);
	// The group of a row (values of the group columns, in column order); nullptr: unseen.
	const Group *find(const Value *group_values) const;
	// The key of a row's group values (group columns in column order), seen or not.
	GroupKey key_of(const Value *group_values) const;
	// The model that serves a row (values: the container's features): its group's (*group set),
	// or the fallback (*group nullptr); an unseen group without a fallback is
	// Error(InvalidParameter) naming it. *map: the container's class of each of its classes.
	const Model &serving(const Model &container, const Value *values, const Group **group,
	                     const std::vector<int> **map) const;
	// Predicts one row (values: the container's features) as Model::predict does: routes it
	// to its group's model, or the fallback; an unseen group without a fallback is
	// Error(InvalidParameter) naming it.
	int predict(const Model &container, const Value *values, double *out, int64_t *unseen) const;
	// Predicts n rows as Model::predict_batch does: each model's rows together, in one batch of
	// its own (results equal predict() row by row; an unseen group fails before any is scored).
	void predict_batch(const Model &container, const Value *values, size_t n, double *out, int *klass,
	                   int64_t *unseen) const;

  private:
	std::unordered_map<std::string, size_t> index_;
	mutable std::string key_scratch_;
	mutable std::vector<double> out_scratch_;
};

// The container's blob, and reading one back (after open_blob; Model::serialize and
// Model::deserialize dispatch here).
std::vector<uint8_t> serialize_grouped(const Model &container);
std::unique_ptr<Model> deserialize_grouped(uint16_t format, const uint8_t *payload, size_t len);

// What group_by adds to a TrainSpec.
struct GroupSpec {
	std::vector<ColumnInfo> columns;
	bool fallback_all = false; // also train a model on every row, which serves unseen groups
	size_t max_groups = kDefaultMaxGroups;
	size_t min_rows = 2; // training rows a group needs (fewer: an error naming the group)
	// a refit of a grouped version (ml_retrain(mode => 'refit')): each group's trainer takes its
	// spec (columns, algorithm, hyperparameters, preprocessing) from base, one of the version's
	// models; a classifier's labels must be among known_classes (the version's) unless allowed
	std::shared_ptr<const Model> base;
	std::vector<std::string> known_classes;
	bool allow_new_classes = false;
};

// Trains a container in one pass over the rows.
class GroupedTrainer {
  public:
	// spec: the sub-models' spec (features without the group columns); its test_size and seed
	// are the container's split.
	GroupedTrainer(const TrainSpec &spec, GroupSpec groups);
	~GroupedTrainer();
	// A retrain's parent profile: finish() then reports the drift of the training rows (the
	// rows its profile describes) against it in result().drift_json (monitor.hpp).
	void set_drift_reference(const Profile &parent);
	// batch: spec.features, then the group columns.
	void add_batch(const Batch &batch, CancelCheck cancel);
	// The statistics aggregate (Trainer::uses_stats_aggregate: the linear family, whose groups'
	// trainers then split and score the rows themselves, as a single model does): whether this
	// run can train from it, the parameters of ml.train_stats, and one row of
	//   SELECT <group columns as text>, <categorical features>, ml.train_stats(...) GROUP BY ...
	// (group_values: the group columns' text, nullptr for NULL; levels as Trainer::add_stats_group).
	// A run is fed either by add_batch or by add_stats_group, not both; the metrics pool the
	// groups' sums (TrainResult::RegressionSums) exactly. Not with a `compare` (retraining).
	bool uses_stats_aggregate() const;
	std::vector<double> stats_params(double expected_rows) const;
	void add_stats_group(const std::vector<const char *> &group_values, const std::vector<const char *> &levels,
	                     const double *state, size_t len, CancelCheck cancel);
	// Fits every group (and the fallback), scores them on the held-out rows (and `compare`, a
	// container, on the same rows: result().previous_metrics_json), returns the container.
	std::unique_ptr<Model> finish(CancelCheck cancel, const Model *compare);
	// The precise pass of the least-squares fits (Trainer::needs_precise_pass): the rows again
	// (as to add_batch), then finish() again.
	bool needs_precise_pass() const;
	void add_precise_batch(const Batch &batch, CancelCheck cancel);
	void end_precise_pass();
	const TrainResult &result() const { return result_; }
	int64_t rows_read() const { return rows_read_; }
	size_t group_count() const;

  private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
	TrainResult result_;
	int64_t rows_read_ = 0;
};

} // namespace pgml
