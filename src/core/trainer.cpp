#include "trainer.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>

#include "json.hpp"
#include "limits.hpp"
#include "serialize.hpp"
#include "trainer_impl.hpp"

namespace pgml {

namespace {

// Whether row i of a batch has a NULL in any feature column (preprocess {"nulls": "drop"}).
bool has_null_feature(const Batch &batch, size_t i)
{
	for (size_t c = 0; c < batch.nfeatures; c++)
		if (batch.features[c].isnull[i])
			return true;
	return false;
}

std::string hex64(uint64_t v)
{
	char buf[17];
	std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
	return buf;
}

} // namespace

const char *const kSquareOverflows = "Training sums the squares of the values, which must lie within +-1e150.";

std::string ClusteringMetrics::to_json() const
{
	JsonWriter w;
	w.begin_object();
	w.key("inertia").value(inertia);
	w.key("silhouette").value(silhouette);
	w.key("rows").value(static_cast<long long>(rows));
	if (silhouette_rows < rows)
		w.key("silhouette_sample_rows").value(static_cast<long long>(silhouette_rows));
	w.end_object();
	return w.str();
}

ClusteringMetrics clustering_metrics(const Estimator &est, const Eigen::MatrixXd &Z, uint64_t seed, CancelCheck cancel)
{
	ClusteringMetrics cm;
	const Eigen::Index n = Z.rows();
	cm.rows = n;
	std::vector<int> label(static_cast<size_t>(n));
	Eigen::RowVectorXd row;
	double d = 0;
	for (Eigen::Index i = 0; i < n; i++) {
		if (i % 4096 == 0)
			check_cancel(cancel);
		row = Z.row(i);
		label[static_cast<size_t>(i)] = est.predict(row.data(), &d);
		cm.inertia += d * d;
	}
	std::vector<Eigen::Index> sample(static_cast<size_t>(n));
	std::iota(sample.begin(), sample.end(), 0);
	std::mt19937_64 rng(seed);
	if (n > 2000) {
		std::shuffle(sample.begin(), sample.end(), rng);
		sample.resize(2000);
	}
	const size_t s = sample.size();
	cm.silhouette_rows = static_cast<int64_t>(s);
	int nclusters = 0;
	for (int l : label)
		nclusters = std::max(nclusters, l + 1);
	if (nclusters < 2 || s < 2)
		return cm;
	double total = 0;
	std::vector<double> sum(static_cast<size_t>(nclusters));
	std::vector<int> cnt(static_cast<size_t>(nclusters));
	for (size_t a = 0; a < s; a++) {
		check_cancel(cancel); // s rows of s distances each
		std::fill(sum.begin(), sum.end(), 0.0);
		std::fill(cnt.begin(), cnt.end(), 0);
		for (size_t b = 0; b < s; b++) {
			if (a == b)
				continue;
			int lb = label[static_cast<size_t>(sample[b])];
			sum[static_cast<size_t>(lb)] += (Z.row(sample[a]) - Z.row(sample[b])).norm();
			cnt[static_cast<size_t>(lb)]++;
		}
		int la = label[static_cast<size_t>(sample[a])];
		if (cnt[static_cast<size_t>(la)] == 0)
			continue; // a singleton's silhouette is 0
		double in = sum[static_cast<size_t>(la)] / cnt[static_cast<size_t>(la)];
		double out = INFINITY;
		for (int c = 0; c < nclusters; c++)
			if (c != la && cnt[static_cast<size_t>(c)] > 0)
				out = std::min(out, sum[static_cast<size_t>(c)] / cnt[static_cast<size_t>(c)]);
		if (std::isfinite(out) && std::max(in, out) > 0)
			total += (out - in) / std::max(in, out);
	}
	cm.silhouette = total / static_cast<double>(s);
	return cm;
}

// Compares rows a and b of s by their values alone: the target, then the features in order
// (NULL first, a number by value, a level by its text, not by its id, which depends on the
// order the levels were met in). <0, 0 or >0. The tie-break between rows of equal hashes or
// draws: rows it finds equal are the same row, whichever comes first.
int TrainRun::compare_values(const RowStore &s, size_t a, size_t b) const
{
	auto cmp = [](double x, double y) {
		const bool nx = std::isnan(x), ny = std::isnan(y);
		if (nx || ny)
			return nx == ny ? 0 : nx ? -1 : 1;
		return x < y ? -1 : y < x ? 1 : 0;
	};
	if (int c = cmp(s.y[a], s.y[b]))
		return c;
	for (size_t c = 0; c < spec.features.size(); c++) {
		if (spec.features[c].categorical()) {
			const int32_t la = s.cat[c][a], lb = s.cat[c][b];
			if (la == lb)
				continue;
			if (la < 0 || lb < 0)
				return la < 0 ? -1 : 1;
			return enc.dictionary(c).name(la) < enc.dictionary(c).name(lb) ? -1 : 1;
		}
		if (int r = cmp(s.num[c][a], s.num[c][b]))
			return r;
	}
	return 0;
}

// Keeps the `cap` rows of s with the smallest draws u, in increasing order of draw (equal
// draws: by hash, then by values), whatever the order they were gathered in.
void TrainRun::order_sample(RowStore &s, std::vector<double> &u, size_t cap) const
{
	std::vector<uint32_t> idx(s.size()); // samples hold at most kSampleRows rows
	std::iota(idx.begin(), idx.end(), 0u);
	std::sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) {
		if (u[a] != u[b])
			return u[a] < u[b];
		if (s.hash[a] != s.hash[b])
			return s.hash[a] < s.hash[b];
		return compare_values(s, a, b) < 0;
	});
	if (idx.size() > cap)
		idx.resize(cap);
	std::vector<double> out_u(idx.size());
	for (size_t k = 0; k < idx.size(); k++)
		out_u[k] = u[idx[k]];
	s.permute(idx);
	u = std::move(out_u);
}

// every group kept its smallest draws: keep the overall smallest, in draw order
void TrainRun::trim_samples()
{
	order_sample(train_sample, train_u, static_cast<size_t>(sample_cap()));
	order_sample(test_sample, test_u, static_cast<size_t>(sample_cap()));
}

// The scaled features of a sample's rows.
Eigen::MatrixXd TrainRun::scaled_rows(const Preprocessor &prep, const Encoder &enc, const RowStore &s)
{
	const int p = prep.p();
	std::vector<double> x(static_cast<size_t>(p));
	Eigen::MatrixXd X(static_cast<Eigen::Index>(s.size()), p);
	for (size_t i = 0; i < s.size(); i++) {
		prep.transform(enc, s, i, x.data());
		for (int f = 0; f < p; f++)
			X(static_cast<Eigen::Index>(i), f) = (x[static_cast<size_t>(f)] - prep.center(f)) / prep.scale(f);
	}
	return X;
}

void TrainRun::init_common()
{
	streaming = algorithm_streams(spec.algorithm);
	task = spec.task;
	chunk.reset(spec.features);
	train_chunk.reset(spec.features);
	test_chunk.reset(spec.features);
	rows.reset(spec.features);
	train_sample.reset(spec.features);
	test_sample.reset(spec.features);
	nulls.assign(spec.features.size(), 0);
	col_min.assign(spec.features.size(), INFINITY);
	col_max.assign(spec.features.size(), -INFINITY);
	median_values.assign(spec.features.size(), {});
}

int TrainRun::row_role(uint64_t hash) const
{
	const bool test = is_test_row(hash, spec.seed, spec.test_size);
	if (!spec.cross_validating())
		return test ? 1 : 0;
	if (test)
		return 2;
	const double d = fold_draw(hash, spec.seed);
	if (spec.cv_holdout > 0)
		return d < spec.cv_holdout ? 1 : 0;
	return static_cast<int>(d * spec.cv_folds) == spec.cv_fold ? 1 : 0;
}

bool TrainRun::wants_median(size_t c) const
{
	return !spec.features[c].categorical() && popts.for_column(spec.features[c].name).impute == Impute::Median;
}

[[noreturn]] void TrainRun::nonfinite(const std::string &col, double v, bool is_target) const
{
	throw Error(ErrorCode::DataException,
	            std::string(is_target ? "target column" : "column") + " \"" + col + "\" contains " +
	                (std::isnan(v) ? "NaN" : "Infinity"),
	            "Training needs finite values; NULL marks a missing value.",
	            "Drop such rows with preprocess => '{\"nonfinite\": \"drop\"}', or replace them with NULL.");
}

// Every numeric feature value read must be at most kMaxFeatureMagnitude in magnitude: the
// moments the preprocessing (and the linear family) fits sum its square. 22003 otherwise.
void TrainRun::check_magnitudes() const
{
	for (size_t c = 0; c < spec.features.size() && c < col_min.size(); c++) {
		if (spec.features[c].categorical())
			continue;
		for (double v : {col_min[c], col_max[c]})
			if (std::isfinite(v) && std::fabs(v) > kMaxFeatureMagnitude)
				feature_out_of_range(spec.features[c].name, v, kSquareOverflows);
	}
}

// Converts a batch into `chunk` (compact rows), skipping NULL targets, non-finite and duplicate rows.
void TrainRun::ingest(const Batch &batch)
{
	chunk.clear();
	const size_t nf = spec.features.size();
	for (size_t i = 0; i < batch.nrows; i++) {
		double y = 0;
		uint64_t h = kRowHashSeed;
		if (batch.target != nullptr) {
			const ColumnData &t = *batch.target;
			if (t.isnull[i]) {
				skipped_null_target++;
				continue;
			}
			if (spec.target.categorical()) {
				const char *s = t.str[i];
				h = hash_target_str(h, s, std::strlen(s));
				y = labels.intern(s);
			} else {
				double v = t.num[i];
				if (!std::isfinite(v)) {
					if (popts.drop_nonfinite) {
						dropped_nonfinite++;
						continue;
					}
					nonfinite(spec.target.name, v, true);
				}
				if (task == Task::Regression && std::fabs(v) > kMaxFeatureMagnitude)
					feature_out_of_range(spec.target.name, v, kSquareOverflows, true);
				h = hash_target_num(h, v);
				y = task == Task::Classification ? labels.intern(numeric_label(spec.target.type_class, v)) : v;
			}
		}
		bool drop = false;
		for (size_t c = 0; c < nf && !drop; c++) {
			const ColumnData &col = batch.features[c];
			if (spec.features[c].categorical())
				continue;
			if (!col.isnull[i] && !std::isfinite(col.num[i])) {
				if (!popts.drop_nonfinite)
					nonfinite(spec.features[c].name, col.num[i], false);
				drop = true;
			} else if (!col.isnull[i] && std::fabs(col.num[i]) > kMaxFeatureMagnitude) {
				feature_out_of_range(spec.features[c].name, col.num[i], kSquareOverflows);
			}
		}
		if (drop) {
			dropped_nonfinite++;
			continue;
		}
		if (popts.drop_nulls && has_null_feature(batch, i)) {
			dropped_null++;
			continue;
		}
		for (size_t c = 0; c < nf; c++) {
			const ColumnData &col = batch.features[c];
			if (spec.features[c].categorical()) {
				int32_t id = -1;
				if (col.isnull[i]) {
					h = hash_str(h, c, nullptr, 0);
				} else {
					const char *s = col.str[i];
					h = hash_str(h, c, s, std::strlen(s));
					id = enc.intern(c, s);
				}
				chunk.cat[c].push_back(id);
			} else {
				double v = col.isnull[i] ? NAN : col.num[i];
				h = hash_num(h, c, col.isnull[i], v);
				chunk.num[c].push_back(v);
			}
		}
		if (popts.dedupe && !seen_rows.insert(h).second) {
			for (size_t c = 0; c < nf; c++) {
				if (spec.features[c].categorical())
					chunk.cat[c].pop_back();
				else
					chunk.num[c].pop_back();
			}
			duplicates++;
			continue;
		}
		chunk.y.push_back(y);
		chunk.hash.push_back(h);
	}
}

// Per-column statistics of training rows that the moments cannot give.
void TrainRun::note_train_row(const RowStore &s, size_t i)
{
	for (size_t c = 0; c < spec.features.size(); c++) {
		if (spec.features[c].categorical()) {
			if (count_levels)
				levels.note(c, s.cat[c][i]);
			continue;
		}
		double v = s.num[c][i];
		if (std::isnan(v)) {
			nulls[c]++;
			continue;
		}
		col_min[c] = std::min(col_min[c], v);
		col_max[c] = std::max(col_max[c], v);
		if (wants_median(c))
			median_values[c].push_back(v);
	}
}

size_t TrainRun::row_bytes() const
{
	size_t per_row = sizeof(double) + sizeof(uint64_t);
	for (const auto &c : spec.features)
		per_row += c.categorical() ? sizeof(int32_t) : sizeof(double);
	return per_row;
}

std::vector<double> TrainRun::medians() const
{
	std::vector<double> out(spec.features.size(), NAN);
	for (size_t c = 0; c < spec.features.size(); c++) {
		std::vector<double> v = median_values[c];
		if (v.empty())
			continue;
		size_t mid = v.size() / 2;
		std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
		double hi = v[mid];
		if (v.size() % 2 == 1) {
			out[c] = hi;
		} else {
			double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
			out[c] = (lo + hi) / 2;
		}
	}
	return out;
}

// Whether label id a sorts before label id b: numerically for numeric / boolean targets, else by bytes.
bool TrainRun::label_less(int a, int b) const
{
	const std::string &x = labels.name(a), &y = labels.name(b);
	if (!spec.target.categorical()) {
		double dx = x == "true" ? 1 : x == "false" ? 0 : std::strtod(x.c_str(), nullptr);
		double dy = y == "true" ? 1 : y == "false" ? 0 : std::strtod(y.c_str(), nullptr);
		return dx < dy;
	}
	return x < y;
}

// Retraining a classifier: the labels of the rows that the base version does not know are
// an error (its classes are the model's contract: the columns of ml_predict_proba), unless
// spec.allow_new_classes and the update can add a class (a refit can; continued training
// goes on from the base's per-class state and keeps its classes). label_rows[id]: the rows
// holding label id. Each unknown label is named with its rows.
void TrainRun::check_new_classes(const std::vector<int64_t> &label_rows) const
{
	if (!check_classes)
		return;
	std::vector<int> unseen;
	for (int k = 0; k < static_cast<int>(labels.size()); k++)
		if (std::find(known_classes.begin(), known_classes.end(), labels.name(k)) == known_classes.end())
			unseen.push_back(k);
	const bool continued = base != nullptr || incremental;
	if (unseen.empty() || (spec.allow_new_classes && !continued))
		return;
	std::sort(unseen.begin(), unseen.end(), [&](int a, int b) { return label_less(a, b); });
	constexpr size_t kListed = 10; // labels named in the message; the count of the others follows
	std::string list;
	for (size_t i = 0; i < unseen.size() && i < kListed; i++) {
		const int k = unseen[i];
		const int64_t n = static_cast<size_t>(k) < label_rows.size() ? label_rows[static_cast<size_t>(k)] : 0;
		list += (i ? ", " : "") + quoted_label(labels.name(k)) + " (" + std::to_string(n) +
		        (n == 1 ? " row)" : " rows)");
	}
	if (unseen.size() > kListed)
		list += " and " + std::to_string(unseen.size() - kListed) + " more";
	std::string known;
	for (size_t i = 0; i < known_classes.size() && i < kListed; i++)
		known += (i ? ", " : "") + quoted_label(known_classes[i]);
	if (known_classes.size() > kListed)
		known += " and " + std::to_string(known_classes.size() - kListed) + " more";
	const std::string classes = unseen.size() == 1 ? "a class" : std::to_string(unseen.size()) + " classes";
	if (continued && spec.allow_new_classes)
		throw Error(ErrorCode::FeatureNotSupported,
		            "incremental retraining cannot add " + (unseen.size() == 1 ? std::string("a class") : "classes") +
		                " the model does not know: " + list,
		            "Target column \"" + spec.target.name + "\": the model's classes are " + known +
		                ". An incremental update goes on from the model's per-class state, which has no place "
		                "for a class it was not trained with.",
		            "Retrain with mode => 'refit' on a relation holding the rows the model learned from and the "
		            "new ones to train a version with the new classes.");
	throw Error(ErrorCode::DataException,
	            "target column \"" + spec.target.name + "\" holds " + classes + " the model does not know: " + list,
	            "The model's classes are " + known +
	                ". A version with other classes would change the columns of ml_predict_proba.",
	            continued ? "Correct the labels, or retrain with mode => 'refit' and allow_new_classes => true on a "
	                        "relation holding the rows the model learned from and the new ones to train a version "
	                        "with the new classes."
	                      : "Correct the labels, or pass allow_new_classes => true to train a version with the "
	                        "new classes.");
}

// A label for a message: quoted, cut after 60 bytes (at a UTF-8 character boundary).
std::string TrainRun::quoted_label(const std::string &label)
{
	constexpr size_t kMax = 60;
	if (label.size() <= kMax)
		return "\"" + label + "\"";
	size_t n = kMax;
	while (n > 0 && (static_cast<unsigned char>(label[n]) & 0xC0) == 0x80)
		n--;
	return "\"" + label.substr(0, n) + "...\"";
}

// Guards (issue 11): a classification whose classes are a number's values (a float target,
// or fractions, with more than kMaxNumberClasses classes: task => 'classification' on a
// price), or whose every row is its own class (a key as the target), is refused.
void TrainRun::check_class_count(int K, int64_t nrows) const
{
	const std::string &col = spec.target.name;
	if (K > kMaxNumberClasses && spec.target.type_class == TypeClass::Numeric) {
		bool fractional = spec.target.type_name == "double precision" || spec.target.type_name == "real";
		for (int k = 0; k < K && !fractional; k++) {
			double v = std::strtod(labels.name(k).c_str(), nullptr);
			fractional = v != std::floor(v);
		}
		if (fractional)
			throw Error(ErrorCode::InvalidParameter,
			            "classification of target column \"" + col + "\" (" + spec.target.type_name + ") would have " +
			                std::to_string(K) + " classes",
			            "Each distinct number would be a class of its own; a classifier learns nothing about the "
			            "numbers between them.",
			            "Predict the number with task => 'regression' (and a regression algorithm), or bucket "
			            "the target into a few classes in a view.");
	}
	if (K == nrows && nrows >= kMinRowsAllDistinct)
		throw Error(ErrorCode::DataException,
		            "target column \"" + col + "\" has a different value in every row",
		            "All " + std::to_string(nrows) +
		                " rows are classes of their own, as in a key: there is nothing to learn about a class.",
		            "Predict another column, or task => 'regression' for a number.");
}

// A regression target with one value in every training row (n rows, minimum lo, maximum hi)
// is refused: every prediction would be that value.
void TrainRun::check_constant_target(int64_t n, double lo, double hi) const
{
	if (n < 2 || lo != hi)
		return;
	throw Error(ErrorCode::DataException,
	            "target column \"" + spec.target.name + "\" has the same value (" +
	                numeric_label(spec.target.type_class, lo) + ") in every training row",
	            "A regression on a constant learns nothing: every prediction would be that value (" +
	                std::to_string(n) + " rows).",
	            "Check the target column and the rows (a view's WHERE may keep only one value), or predict "
	            "another column.");
}

// The classes in sorted order (numerically for numeric / boolean targets, else by bytes)
// into model.classes, and each label id's class (continued training: the base's classes).
// nrows: the rows read with a target (train and test), for the guards below; label_rows[id]:
// the rows holding label id (for the message about unknown labels).
std::vector<int> TrainRun::order_classes(Model &model, int &K, int64_t nrows,
                                         const std::vector<int64_t> &label_rows) const
{
	check_new_classes(label_rows);
	K = static_cast<int>(labels.size());
	if (K < 2 && base == nullptr)
		throw Error(ErrorCode::DataException,
		            "target column \"" + spec.target.name + "\" has only one class (" + labels.name(0) + ")",
		            "Classification needs at least two distinct target values.",
		            "Check the target column, or train on rows that include other classes.");
	if (base == nullptr)
		check_class_count(K, nrows);
	// classes in sorted order: numerically for numeric / boolean targets, else by bytes
	std::vector<int> order(static_cast<size_t>(K));
	std::iota(order.begin(), order.end(), 0);
	std::sort(order.begin(), order.end(), [&](int a, int b) { return label_less(a, b); });
	std::vector<int> rank(static_cast<size_t>(K));
	for (int k = 0; k < K; k++) {
		rank[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
		model.classes.push_back(labels.name(order[static_cast<size_t>(k)]));
	}
	if (base != nullptr) {
		// continued training keeps the base's classes: map the new rows' labels onto them
		for (int k = 0; k < K; k++) {
			const std::string &label = labels.name(k);
			auto it = std::find(base->classes.begin(), base->classes.end(), label);
			if (it == base->classes.end()) // check_new_classes refused it
				throw Error(ErrorCode::Internal, "a label of the rows is not a class of the model");
			rank[static_cast<size_t>(k)] = static_cast<int>(it - base->classes.begin());
		}
		model.classes = base->classes;
		K = static_cast<int>(model.classes.size());
	}
	return rank;
}

// Row `i` of `s` as prediction values for a model whose features are `cols`.
bool TrainRun::row_values(const RowStore &s, size_t i, const std::vector<ColumnInfo> &cols,
                          std::vector<Value> &vals) const
{
	vals.resize(cols.size());
	for (size_t k = 0; k < cols.size(); k++) {
		size_t c = 0;
		while (c < spec.features.size() && spec.features[c].name != cols[k].name)
			c++;
		if (c == spec.features.size() || spec.features[c].categorical() != cols[k].categorical())
			return false;
		Value &v = vals[k];
		if (spec.features[c].categorical()) {
			int32_t id = s.cat[c][i];
			v.isnull = id < 0;
			if (!v.isnull) {
				const std::string &name = enc.dictionary(c).name(id);
				v.str = name.c_str();
				v.len = name.size();
			}
		} else {
			double x = s.num[c][i];
			v.isnull = std::isnan(x);
			v.num = x;
		}
	}
	return true;
}

// A model of this run's spec, to be fitted.
std::unique_ptr<Model> TrainRun::new_model() const
{
	auto model = std::make_unique<Model>();
	model->task = task;
	model->algorithm = spec.algorithm;
	model->target = spec.target;
	model->features = spec.features;
	model->hyperparams = hp;
	model->preprocess = popts;
	model->test_size = spec.test_size;
	model->seed = spec.seed;
	return model;
}

// A copy of the base version's estimator (through its own encoding) for p features and K
// classes, to continue training.
std::unique_ptr<Estimator> TrainRun::copy_base_estimator(int p, int K) const
{
	Writer w;
	base->estimator->write(w);
	Reader r(w.bytes().data(), w.bytes().size());
	EstimatorShape shape;
	shape.p = p;
	shape.n_classes = K;
	shape.task = task;
	return algorithm_def(spec.algorithm).read(r, shape);
}

// The error of a run without training rows (with_test: the routes whose held-out rows are
// counted apart).
void TrainRun::no_rows_left(int64_t rows_read, bool with_test) const
{
	if (with_test)
		throw Error(ErrorCode::DataException, "no rows left to train on",
		            std::to_string(rows_read) + " rows were read, " + std::to_string(skipped_null_target) +
		                " with a NULL target, " + std::to_string(dropped_nonfinite) + " with a non-finite value, " +
		                std::to_string(test.n()) + " held out for testing.",
		            "Train on more rows, or lower test_size.");
	throw Error(ErrorCode::DataException, "no rows left to train on",
	            std::to_string(rows_read) + " rows were read, " + std::to_string(skipped_null_target) +
	                " with a NULL target, " + std::to_string(dropped_nonfinite) + " with a non-finite value.",
	            "Train on more rows.");
}

Route TrainRun::route() const
{
	if (class_model)
		return finish_class_route;
	if (aggregated && kmeans_aggregate())
		return finish_kmeans_route;
	if (streaming)
		return finish_moments_route;
	return finish_rows_route;
}

Trainer::Trainer(const TrainSpec &spec) : impl_(std::make_unique<Impl>())
{
	Impl &m = *impl_;
	m.spec = spec;
	validate_spec(spec);
	m.hp = parse_params(algorithm_def(spec.algorithm), spec.hyperparams);
	m.popts = parse_preprocess(spec.preprocess, spec.features);
	m.levels = LevelCounter(spec.features, m.popts);
	m.init_common();
	m.enc = Encoder(spec.features, m.streaming);
}

Trainer::Trainer(const TrainSpec &spec, const Model &base, bool incremental) : impl_(std::make_unique<Impl>())
{
	Impl &m = *impl_;
	if (incremental && !model_can_continue(base))
		throw Error(ErrorCode::FeatureNotSupported,
		            std::string(algorithm_name(base.algorithm)) + " cannot be retrained incrementally",
		            "Linear models kept as sufficient statistics add rows exactly; gradient_boosting continues "
		            "boosting, mlp and kmeans warm-start and naive_bayes adds to its counts. " +
		                std::string(algorithm_name(base.algorithm)) + " has no such update.",
		            "Use mode => 'refit'.");
	if (incremental && spec.replace_algorithm)
		throw Error(ErrorCode::FeatureNotSupported,
		            "an incremental retrain cannot change the algorithm or the hyperparameters",
		            "It adds the new rows to version's model as it is.",
		            "Use mode => 'auto' or 'refit' to train a new model on the rows.");
	m.spec = spec;
	m.spec.features = base.features;
	m.spec.target = base.target;
	m.spec.algorithm = spec.replace_algorithm ? spec.algorithm : base.algorithm;
	m.spec.task = base.task;
	validate_spec(m.spec);
	if (spec.replace_algorithm)
		m.hp = parse_params(algorithm_def(m.spec.algorithm), spec.hyperparams,
		                    spec.algorithm == base.algorithm ? &base.hyperparams : nullptr);
	else
		m.hp = base.hyperparams;
	// hyperparameters added since the base was trained (e.g. gradient_boosting's retrain_rounds,
	// 0.3.0) take their defaults, which the new version records
	for (const ParamSpec &ps : algorithm_def(base.algorithm).params) {
		if (m.hp.has(ps.name))
			continue;
		if (ps.kind == ParamSpec::Kind::Choice)
			m.hp.set_choice(ps.name, ps.def_choice);
		else
			m.hp.set_num(ps.name, ps.def);
	}
	m.popts = base.preprocess;
	m.levels = LevelCounter(m.spec.features, m.popts);
	m.init_common();
	if (base.task == Task::Classification) {
		m.check_classes = true;
		m.known_classes = base.classes;
	}
	if (!incremental) {
		m.enc = Encoder(m.spec.features, m.streaming);
		return;
	}
	for (size_t c = 0; c < base.features.size(); c++)
		if (m.wants_median(c))
			throw Error(ErrorCode::FeatureNotSupported, "incremental retraining cannot keep median imputation exact",
			            "Column \"" + base.features[c].name + "\" is imputed with the median of all training rows.",
			            "Use mode => 'refit'.");
	m.incremental = true;
	if (!m.streaming) {
		// continued training: the base's preprocessing stays, the estimator goes on from its state
		m.enc = Encoder(m.spec.features, false);
		m.base = &base;
		m.count_levels = false; // levels the base did not see are ignored, not encoded
		return;
	}
	m.enc = base.encoder;
	// the statistics go on from the base's rows: their levels count towards max_levels
	for (size_t c = 0; c < base.features.size(); c++) {
		if (!base.features[c].categorical() || c >= base.prep.columns.size())
			continue;
		for (const std::string &level : base.prep.columns[c].levels) {
			int32_t id = m.enc.find(c, level);
			if (id >= 0)
				m.levels.note(c, id);
		}
		if (base.prep.columns[c].null_feature >= 0)
			m.levels.note(c, -1);
	}
	m.train = base.stats;
	m.base_precise = std::make_unique<PreciseMoments>(PreciseMoments::from(
	    base.stats, base.has_precise_stats ? &base.stats_mean_lo : nullptr,
	    base.has_precise_stats ? &base.stats_comoment_lo : nullptr));
	m.base_rows = base.stats.n();
	// the earlier rows' min / max, so min-max scaling is refitted over all rows
	m.col_min = base.col_min;
	m.col_max = base.col_max;
}

Trainer::~Trainer() = default;

bool model_continues_exactly(const Model &m)
{
	if (algorithm_streams(m.algorithm))
		return m.has_stats;
	return m.algorithm == Algorithm::NaiveBayes && model_can_continue(m);
}

bool model_can_continue(const Model &m)
{
	if (algorithm_streams(m.algorithm))
		return m.has_stats;
	return m.estimator != nullptr && m.estimator->can_continue();
}

void validate_spec(const TrainSpec &spec)
{
	if (!(spec.test_size >= 0 && spec.test_size < 1))
		throw Error(ErrorCode::InvalidParameter, "test_size must be at least 0 and less than 1",
		            "test_size was " + numeric_label(TypeClass::Numeric, spec.test_size) + ".",
		            "Use 0 to train on every row, or a fraction such as 0.2.");
	if (spec.features.empty())
		throw Error(ErrorCode::InvalidParameter, "no feature columns", "",
		            "The relation needs at least one column besides the target.");
	const AlgorithmDef *def = nullptr;
	for (const AlgorithmDef &d : algorithms())
		if (d.id == spec.algorithm)
			def = &d;
	if (def == nullptr)
		throw Error(ErrorCode::InvalidParameter, "unknown algorithm");
	if (!def->supports(spec.task))
		throw Error(ErrorCode::InvalidParameter, "algorithm " + def->name + " does not do " + task_name(spec.task), "",
		            "Choose an algorithm for " + std::string(task_name(spec.task)) + ", or algorithm => 'auto'.");
	if (spec.task == Task::Regression && spec.target.type_class == TypeClass::Categorical)
		throw Error(
		    ErrorCode::DatatypeMismatch,
		    def->name + " cannot predict target column \"" + spec.target.name + "\" of type " + spec.target.type_name,
		    "Regression needs a numeric target.", "Use a classification algorithm such as logistic_regression.");
	parse_params(*def, spec.hyperparams);
	parse_preprocess(spec.preprocess, spec.features);
}

void Trainer::add_batch(const Batch &batch, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	if (batch.nfeatures != m.spec.features.size() || (batch.target == nullptr) != (m.task == Task::Clustering))
		throw Error(ErrorCode::Internal, "batch does not match the training columns");
	rows_read_ += static_cast<int64_t>(batch.nrows);
	m.ingest(batch);
	if (m.streaming)
		m.stream_chunk();
	else
		m.buffer_chunk();
}

std::unique_ptr<Model> Trainer::finish(CancelCheck cancel, const Model *compare)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	result_ = TrainResult(); // finish() runs again after the precise pass
	m.precise_wanted = false;
	m.flush_groups();
	if (m.aggregated) {
		m.trim_samples();
	} else if (m.streaming) {
		// the row reader's samples, in draw order (the metrics add them up in this order)
		m.order_sample(m.train_sample, m.train_u, kSampleRows);
		m.order_sample(m.test_sample, m.test_u, kSampleRows);
		std::vector<std::pair<double, size_t>>().swap(m.train_heap);
		std::vector<std::pair<double, size_t>>().swap(m.test_heap);
	}
	const TrainSpec &spec = m.spec;
	if (m.skipped_null_target > 0 && m.skipped_null_target == rows_read_)
		throw Error(ErrorCode::DataException, "target column \"" + spec.target.name + "\" is NULL in every row",
		            std::to_string(rows_read_) + " rows were read.", "Train on rows with a known target.");
	m.check_magnitudes();

	RouteFit fit = m.route()(m, rows_read_, compare, result_);
	std::unique_ptr<Model> model = std::move(fit.model);
	// the deployed model on the same held-out rows
	if (compare != nullptr && fit.test_rows != nullptr && fit.test_rows->size() > 0 && compare->task == model->task &&
	    !m.compare_pass)
		m.compare_held_out(*model, *compare, *fit.test_rows, result_);

	JsonWriter w;
	w.begin_object();
	w.key("train").raw(fit.train_json);
	if (!fit.test_json.empty())
		w.key("test").raw(fit.test_json);
	w.end_object();
	result_.metrics_json = w.str();
	result_.test_json = fit.test_json;
	m.kept_train_json = fit.train_json;
	result_.report_json = m.report_json(*model, rows_read_, result_);
	m.profile(result_);
	result_.fingerprint = hex64(m.fingerprint ^ mix64(static_cast<uint64_t>(m.used_rows)));
	return model;
}

// The rows as the read took them (NULL targets, non-finite and duplicate rows skipped, the
// duplicates against `seen`, this pass's own), without counting them again.
void TrainRun::ingest_again(const Batch &batch, std::unordered_set<uint64_t> &seen)
{
	const int64_t skipped = skipped_null_target, dropped = dropped_nonfinite, dups = duplicates;
	const int64_t dropped_nulls = dropped_null;
	std::swap(seen_rows, seen);
	ingest(batch);
	std::swap(seen_rows, seen);
	skipped_null_target = skipped;
	dropped_nonfinite = dropped;
	duplicates = dups;
	dropped_null = dropped_nulls;
}

void TrainRun::compare_held_out(const Model &model, const Model &compare, const RowStore &te, TrainResult &res) const
{
	// the old model's inputs must be among this training's columns (checked on the first row:
	// it depends on the columns only); then its predictions a block of rows at a time
	std::vector<Value> vals;
	bool ok = row_values(te, 0, compare.features, vals);
	const size_t cnf = compare.features.size();
	const size_t cnout = static_cast<size_t>(std::max(compare.n_outputs(), 1));
	auto compare_rows = [&](auto &&take) {
		constexpr size_t kBlock = 1024;
		std::vector<Value> vb(cnf * kBlock);
		std::vector<double> ob(cnout * kBlock);
		std::vector<int> kb(kBlock);
		for (size_t i0 = 0; i0 < te.size(); i0 += kBlock) {
			const size_t nb = std::min(kBlock, te.size() - i0);
			for (size_t r = 0; r < nb; r++) {
				row_values(te, i0 + r, compare.features, vals);
				std::copy(vals.begin(), vals.end(), vb.begin() + static_cast<std::ptrdiff_t>(r * cnf));
			}
			compare.predict_batch(vb.data(), nb, ob.data(), kb.data());
			for (size_t r = 0; r < nb; r++)
				take(i0 + r, kb[r], ob.data() + r * cnout);
			check_cancel(cancel);
		}
	};
	if (!ok) {
	} else if (model.task == Task::Clustering) {
		// in its own scaling, on the same rows (its inertia and silhouette as it reports them)
		ClusteringMetrics prev =
		    compare.estimator
		        ? clustering_metrics(*compare.estimator, scaled_rows(compare.prep, enc, te), spec.seed, cancel)
		        : ClusteringMetrics();
		res.previous_metrics_json = prev.to_json();
		res.previous_primary = prev.silhouette;
		res.primary_compare_new = res.primary_test;
	} else if (model.task == Task::Regression) {
		RegressionMetrics prev;
		compare_rows([&](size_t i, int, const double *o) { prev.add(te.y[i], o[0]); });
		res.previous_metrics_json = prev.to_json();
		res.previous_primary = prev.r2();
		// the new model on the very same rows (the moments route compares by the pass)
		res.primary_compare_new = res.primary_test;
	} else {
		ClassificationMetrics prev(model.classes);
		// the old model's classes as the new model's class ids, by label (-1: not a class of
		// the new model); its probabilities are carried over to them (roc_auc, log_loss)
		std::vector<int> to_new(compare.classes.size(), -1);
		for (size_t k = 0; k < compare.classes.size(); k++) {
			auto it = std::find(model.classes.begin(), model.classes.end(), compare.classes[k]);
			if (it != model.classes.end())
				to_new[k] = static_cast<int>(it - model.classes.begin());
		}
		std::vector<double> p(static_cast<size_t>(model.n_classes()));
		compare_rows([&](size_t i, int pred, const double *o) {
			std::fill(p.begin(), p.end(), 0.0);
			for (size_t k = 0; k < to_new.size() && k < cnout; k++)
				if (to_new[k] >= 0)
					p[static_cast<size_t>(to_new[k])] += o[k];
			int mapped = to_new[static_cast<size_t>(pred)];
			prev.add(static_cast<int>(te.y[i]),
			         mapped < 0 ? (static_cast<int>(te.y[i]) + 1) % model.n_classes() : mapped, p.data());
		});
		res.previous_metrics_json = prev.to_json();
		res.previous_primary = prev.accuracy();
		res.primary_compare_new = res.primary_test;
	}
	res.compared = ok;
}

// The version's report: the rows read, kept and split, the imputed values, the least-squares
// solve's facts, the model's size.
std::string TrainRun::report_json(const Model &model, int64_t rows_read, const TrainResult &res) const
{
	JsonWriter r;
	r.begin_object();
	r.key("rows_read").value(static_cast<long long>(rows_read));
	r.key("rows_skipped_null_target").value(static_cast<long long>(skipped_null_target));
	r.key("rows_dropped_nonfinite").value(static_cast<long long>(dropped_nonfinite));
	if (popts.dedupe)
		r.key("rows_duplicate_removed").value(static_cast<long long>(duplicates));
	r.key("rows_train").value(static_cast<long long>(res.rows_train));
	r.key("rows_test").value(static_cast<long long>(res.rows_test));
	r.key("split").value(task == Task::Classification ? "stratified" : "random");
	r.key("reader").value(aggregated ? "aggregate" : "cursor");
	if (km) {
		r.key("kmeans_init_rows").value(static_cast<long long>(train_sample.size()));
		r.key("kmeans_scans").value(km->scans());
		r.key("kmeans_converged").value(km->converged());
	}
	if (logit) {
		r.key("newton_scans").value(logit->scans());
		r.key("newton_sample_scans").value(logit->sample_scans());
		r.key("newton_converged").value(logit->converged());
	}
	// NULL numbers of the training rows per column: imputed, or (trees, boosting) kept as missing
	for (int native = 0; native < 2; native++) {
		if (native == 1 && !model.prep.native_missing)
			break;
		r.key(native ? "missing_native" : "imputed").begin_object();
		for (size_t c = 0; c < spec.features.size(); c++)
			if (!spec.features[c].categorical() && nulls[c] > 0 && (native == 1) == model.prep.native_missing)
				r.key(spec.features[c].name).value(static_cast<long long>(nulls[c]));
		r.end_object();
	}
	r.key("features").value(model.prep.p());
	if (res.solve_rank >= 0) {
		r.key("rank").value(static_cast<long long>(res.solve_rank));
		r.key("condition_number").value(res.solve_condition);
		r.key("digits").value(res.solve_digits);
		r.key("precision").value(res.solve_precise ? "double-double" : "double");
		if (!res.solve_collinear.empty()) {
			r.key("collinear").begin_array();
			for (const auto &c : res.solve_collinear)
				r.value(c);
			r.end_array();
		}
		if (!res.solve_constant.empty()) {
			r.key("constant").begin_array();
			for (const auto &c : res.solve_constant)
				r.value(c);
			r.end_array();
		}
	}

	if (popts.drop_nulls)
		r.key("rows_dropped_null").value(static_cast<long long>(dropped_null));
	if (!res.inference_json.empty())
		r.key("inference").raw(res.inference_json);
	if (!spec.algorithm_choice.empty())
		r.key("algorithm_choice").value(spec.algorithm_choice);
	if (!spec.search_json.empty())
		r.key("search").raw(spec.search_json);
	if (incremental) {
		r.key("rows_before").value(static_cast<long long>(base_rows));
		r.key("rows_added").value(static_cast<long long>(res.rows_train - base_rows));
	}
	// the model's size (gradient_boosting: rounds and trees), and what continued training added
	if (model.estimator) {
		std::vector<std::pair<std::string, long long>> before;
		if (base != nullptr && base->estimator)
			before = base->estimator->report_counts();
		for (const auto &[key, v] : model.estimator->report_counts()) {
			r.key(key).value(v);
			for (const auto &[bkey, bv] : before)
				if (bkey == key)
					r.key(key + "_added").value(v - bv);
		}
	}
	r.end_object();
	return r.str();
}

bool Trainer::needs_compare_pass() const
{
	return impl_->compare_pass && !impl_->compare_pass_done;
}

void Trainer::add_compare_batch(const Batch &batch, const Model &fresh, const Model &compare, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	if (!m.compare_pass || batch.nfeatures != m.spec.features.size())
		throw Error(ErrorCode::Internal, "comparison batch without a comparison pass");
	m.ingest_again(batch, m.pass_seen);
	const RowStore &c = m.chunk;
	m.pass_out.assign(static_cast<size_t>(std::max({fresh.n_outputs(), compare.n_outputs(), 1})), 0.0);
	for (size_t i = 0; i < c.size(); i++) {
		if (!is_test_row(c.hash[i], m.spec.seed, m.spec.test_size))
			continue;
		m.pass_rows++;
		for (const Model *mod : {&fresh, &compare}) {
			if (!m.row_values(c, i, mod->features, m.pass_vals))
				throw Error(ErrorCode::Internal, "the deployed model's columns are not among the training columns");
			mod->predict(m.pass_vals.data(), m.pass_out.data()); // regression: the value; k-means: the distance
			const bool is_new = mod == &fresh;
			if (m.task == Task::Clustering)
				(is_new ? m.sample_new : m.sample_prev).inertia += m.pass_out[0] * m.pass_out[0];
			else
				(is_new ? m.pass_new : m.pass_prev).add(c.y[i], m.pass_out[0]);
		}
	}
}

void Trainer::end_compare_pass()
{
	Impl &m = *impl_;
	if (!m.compare_pass || m.compare_pass_done)
		throw Error(ErrorCode::Internal, "comparison pass ended twice");
	m.compare_pass_done = true;
	if (m.pass_rows != result_.rows_test)
		throw Error(ErrorCode::DataException, "the relation changed while the versions were compared",
		            "Training held out " + std::to_string(result_.rows_test) + " rows, the comparison read " +
		                std::to_string(m.pass_rows) + ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Retrain from a table (or a materialized view).");
	std::string prev_json;
	if (m.task == Task::Clustering) {
		m.sample_new.rows = m.sample_prev.rows = m.pass_rows;
		result_.test_json = m.sample_new.to_json();
		prev_json = m.sample_prev.to_json();
		result_.primary_test = m.sample_new.silhouette;
		result_.previous_primary = m.sample_prev.silhouette;
	} else {
		result_.test_json = m.pass_new.to_json();
		prev_json = m.pass_prev.to_json();
		result_.primary_test = m.pass_new.r2();
		result_.previous_primary = m.pass_prev.r2();
	}
	result_.primary_compare_new = result_.primary_test;
	result_.previous_metrics_json = prev_json;
	result_.compared = true;
	JsonWriter w;
	w.begin_object();
	w.key("train").raw(m.kept_train_json);
	w.key("test").raw(result_.test_json);
	w.end_object();
	result_.metrics_json = w.str();
}

// ---------------------------------------------------------------- Evaluator

Evaluator::Evaluator(const Model &model) : model_(model)
{
	if (model.task == Task::Classification)
		cls_ = std::make_unique<ClassificationMetrics>(model.classes);
	else if (model.task == Task::Regression)
		reg_ = std::make_unique<RegressionMetrics>();
	values_.resize(model.features.size());
	out_.resize(static_cast<size_t>(std::max(1, model.n_outputs())));
}

Evaluator::~Evaluator() = default;

void Evaluator::add_batch(const Batch &batch, CancelCheck cancel)
{
	check_cancel(cancel);
	const bool clustering = model_.task == Task::Clustering;
	if (batch.nfeatures != model_.features.size() || (batch.target == nullptr) != clustering)
		throw Error(ErrorCode::Internal, "batch does not match the model's columns");
	static const ColumnData no_target;
	const ColumnData &t = clustering ? no_target : *batch.target;
	for (size_t i = 0; i < batch.nrows; i++) {
		if (!clustering && t.isnull[i]) {
			skipped_null_target_++;
			continue;
		}
		for (size_t c = 0; c < model_.features.size(); c++) {
			const ColumnData &col = batch.features[c];
			Value &v = values_[c];
			v.isnull = col.isnull[i];
			if (v.isnull)
				continue;
			if (model_.features[c].categorical()) {
				v.str = col.str[i];
				v.len = std::strlen(v.str);
			} else {
				v.num = col.num[i];
			}
		}
		if (clustering) {
			model_.predict(values_.data(), out_.data(), &unseen_);
			inertia_ += out_[0] * out_[0];
			rows_++;
		} else if (cls_) {
			std::string label = model_.target.categorical() ? std::string(t.str[i])
			                                                : numeric_label(model_.target.type_class, t.num[i]);
			auto it = std::find(model_.classes.begin(), model_.classes.end(), label);
			if (it == model_.classes.end()) {
				unknown_labels_++;
				continue;
			}
			int pred = model_.predict(values_.data(), out_.data(), &unseen_);
			cls_->add(static_cast<int>(it - model_.classes.begin()), pred, out_.data());
		} else {
			if (!std::isfinite(t.num[i]))
				throw Error(ErrorCode::DataException, "target column \"" + model_.target.name + "\" contains " +
				                                          (std::isnan(t.num[i]) ? "NaN" : "Infinity"));
			model_.predict(values_.data(), out_.data(), &unseen_);
			reg_->add(t.num[i], out_[0]);
		}
	}
}

std::string Evaluator::metrics_json() const
{
	if (model_.task == Task::Clustering) {
		JsonWriter c;
		c.begin_object();
		c.key("inertia").value(inertia_);
		c.key("rows").value(static_cast<long long>(rows_));
		c.key("unseen_levels").value(static_cast<long long>(unseen_));
		c.end_object();
		return c.str();
	}
	std::string base = cls_ ? cls_->to_json() : reg_->to_json();
	JsonWriter w;
	w.begin_object();
	w.key("skipped_null_target").value(static_cast<long long>(skipped_null_target_));
	if (cls_)
		w.key("unknown_labels").value(static_cast<long long>(unknown_labels_));
	w.key("unseen_levels").value(static_cast<long long>(unseen_));
	w.end_object();
	// splice the counts into the metrics object
	std::string extra = w.str();
	if (base.size() >= 2 && base.back() == '}' && extra.size() > 2)
		return base.substr(0, base.size() - 1) + (base.size() > 2 ? "," : "") + extra.substr(1);
	return base;
}

double Evaluator::primary() const
{
	if (model_.task == Task::Clustering)
		return rows_ > 0 ? -inertia_ / static_cast<double>(rows_) : NAN;
	if (cls_)
		return cls_->count() > 0 ? cls_->accuracy() : NAN;
	return reg_->count() > 0 ? reg_->r2() : NAN;
}

} // namespace pgml
