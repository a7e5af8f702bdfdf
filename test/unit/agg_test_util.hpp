// Shared by the unit tests of the aggregate states (test_stats_state, test_nb_aggregate,
// test_kmeans_step): a table row as the transition functions see it, and states grown and
// combined the way the glue grows and combines them (the protocol of agg_state.hpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agg_state.hpp"
#include "eval_state.hpp"
#include "kmeans_step.hpp"
#include "stats_state.hpp"
#include "test_util.hpp"

namespace pgml_test {

// Row i of t as the transition functions see it: row (ml.train_stats' row, the target as a
// number and as text) and features() (ml.kmeans_step's row) point into the arrays held here.
struct TableRow {
	std::vector<double> num;
	std::vector<const char *> str;
	std::vector<size_t> len;
	std::unique_ptr<bool[]> isnull;
	pgml::stats::Row row;
	TableRow(const Table &t, size_t i) : num(t.features.size()), str(t.features.size()), len(t.features.size())
	{
		const size_t nf = t.features.size();
		isnull.reset(new bool[nf]);
		for (size_t c = 0; c < nf; c++) {
			const Cell &cell = t.rows[i][c];
			isnull[c] = cell.null;
			num[c] = cell.num;
			str[c] = cell.null ? nullptr : cell.str.c_str();
			len[c] = cell.str.size();
		}
		row.target_null = t.y[i].null;
		row.target = t.y[i].num;
		row.target_str = t.y[i].null ? nullptr : t.y[i].str.c_str();
		row.target_len = t.y[i].str.size();
		row.isnull = isnull.get();
		row.num = num.data();
		row.str = str.data();
		row.len = len.data();
	}
	TableRow(const TableRow &) = delete;
	const pgml::aggstate::Features &features() const { return row; }
};

// The GROUP BY key of row i in the statistics queries: its categorical values ("\x01": NULL).
inline std::vector<std::string> group_key(const Table &t, size_t i)
{
	std::vector<std::string> key;
	for (size_t c = 0; c < t.features.size(); c++)
		if (t.features[c].categorical())
			key.push_back(t.rows[i][c].null ? "\x01" : t.rows[i][c].str);
	return key;
}

// A group's levels as the glue hands them to the trainer: per feature, NULL for a numeric
// feature or a NULL level (pointing into key).
inline std::vector<const char *> group_levels(const Table &t, const std::vector<std::string> &key)
{
	std::vector<const char *> lv(t.features.size(), nullptr);
	size_t k = 0;
	for (size_t c = 0; c < t.features.size(); c++)
		if (t.features[c].categorical()) {
			lv[c] = key[k] == "\x01" ? nullptr : key[k].c_str();
			k++;
		}
	return lv;
}

// The trainer's model and result once every group or batch has been added.
inline Trained finished(pgml::Trainer &tr)
{
	Trained out;
	out.model = tr.finish(nullptr, nullptr);
	out.result = tr.result();
	return out;
}

// A metric of a split in a result's metrics JSON.
inline double metric(const std::string &json, const char *split, const char *name)
{
	return json_number(json, {split, name});
}

// ml.kmeans_step parameters over three columns: numeric x (feature 0, NULL imputed as 0.5),
// categorical g with two kept levels (features 1, 2) and NULL (feature 3), numeric y (feature
// 4, NULL imputed as y_impute); centres: k x 5 (scaled space).
inline pgml::kmeans_step::Params three_column_step(uint64_t seed, double test_size, double y_impute,
                                                   std::vector<double> center, std::vector<double> scale,
                                                   Eigen::MatrixXd centres)
{
	pgml::kmeans_step::Params p;
	p.seed = seed;
	p.test_size = test_size;
	p.p = 5;
	p.k = static_cast<int>(centres.rows());
	pgml::kmeans_step::Params::Column x, g, y;
	x.first_feature = 0;
	x.impute = 0.5;
	g.categorical = true;
	g.first_feature = 1;
	g.nlevels = 2;
	g.null_feature = 3;
	y.first_feature = 4;
	y.impute = y_impute;
	p.columns = {x, g, y};
	p.center = std::move(center);
	p.scale = std::move(scale);
	p.centres = std::move(centres);
	return p;
}

// ml.train_stats' transition: a row added to buf (empty: a NULL state), growing it when asked.
inline void stats_add(std::vector<double> &buf, const pgml::stats::Params &p, const pgml::stats::Row &row)
{
	pgml::aggstate::grow_add<pgml::stats::State>(
		buf, pgml::stats::initial_shape(p),
		[&](double *data, const pgml::stats::Shape &s, pgml::stats::Shape *need) {
			return pgml::stats::add_row(data, s, p, row, need);
		});
}

// ml.eval_stats' transition for one evaluated row.
inline void eval_add(std::vector<double> &buf, int K, bool proba, const pgml::evalstate::Params &p, int t, int truth,
                     int pred, const double *pr, double u)
{
	pgml::aggstate::grow_add<pgml::evalstate::State>(
		buf, pgml::evalstate::initial_shape(K, proba, p),
		[&](double *data, const pgml::evalstate::Shape &s, pgml::evalstate::Shape *need) {
			return pgml::evalstate::add_row(data, s, t, truth, pred, pr, u, need);
		});
}

// ml.kmeans_step's transition (the state never grows).
inline void step_add(std::vector<double> &buf, pgml::kmeans_step::Step &step, const pgml::kmeans_step::Row &row)
{
	pgml::aggstate::grow_add<pgml::kmeans_step::State>(
		buf, step.shape(), [&](double *data, const pgml::kmeans_step::Shape &s, pgml::kmeans_step::Shape *) {
			step.add_row(data, s.length(), row);
			return size_t(0);
		});
}

// The combine functions: b merged into a (empty: a NULL state).
inline void stats_merge(std::vector<double> &a, const std::vector<double> &b)
{
	pgml::aggstate::grow_merge<pgml::stats::State>(a, b);
}
inline void eval_merge(std::vector<double> &a, const std::vector<double> &b)
{
	pgml::aggstate::grow_merge<pgml::evalstate::State>(a, b);
}

} // namespace pgml_test
