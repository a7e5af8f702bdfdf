// Shared helpers for the unit tests that drive the core the way the PostgreSQL glue
// does: tables written row by row, turned into column-major Batches, fed to a Trainer.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "data.hpp"
#include "model.hpp"
#include "trainer.hpp"

namespace pgml_test {

// One value of a table: NULL, a number, or a string.
struct Cell {
	bool null = true;
	double num = 0;
	std::string str;
};

inline Cell num(double v)
{
	Cell c;
	c.null = false;
	c.num = v;
	return c;
}

inline Cell str(std::string s)
{
	Cell c;
	c.null = false;
	c.str = std::move(s);
	return c;
}

inline Cell null() { return Cell{}; }

inline pgml::ColumnInfo numeric_col(const std::string &name)
{
	return pgml::ColumnInfo{name, pgml::TypeClass::Numeric, "double precision"};
}

inline pgml::ColumnInfo text_col(const std::string &name)
{
	return pgml::ColumnInfo{name, pgml::TypeClass::Categorical, "text"};
}

// Rows written one at a time: feature cells plus a target cell.
struct Table {
	std::vector<pgml::ColumnInfo> features;
	pgml::ColumnInfo target;
	std::vector<std::vector<Cell>> rows;
	std::vector<Cell> y;

	void add(std::vector<Cell> r, Cell t)
	{
		rows.push_back(std::move(r));
		y.push_back(std::move(t));
	}
	size_t size() const { return rows.size(); }
	// Rows [begin, end) with the same columns.
	Table slice(size_t begin, size_t end) const
	{
		Table t;
		t.features = features;
		t.target = target;
		t.rows.assign(rows.begin() + static_cast<long>(begin), rows.begin() + static_cast<long>(end));
		t.y.assign(y.begin() + static_cast<long>(begin), y.begin() + static_cast<long>(end));
		return t;
	}
	// This table's rows followed by other's.
	Table concat(const Table &other) const
	{
		Table t = *this;
		t.rows.insert(t.rows.end(), other.rows.begin(), other.rows.end());
		t.y.insert(t.y.end(), other.y.begin(), other.y.end());
		return t;
	}
};

// Owns the column-major arrays behind one pgml::Batch (rows [begin, end) of a table).
class BatchData {
  public:
	BatchData(const Table &t, size_t begin, size_t end) : cols_(t.features.size())
	{
		const size_t n = end - begin;
		for (size_t c = 0; c < t.features.size(); c++) {
			std::vector<const Cell *> cells(n);
			for (size_t i = 0; i < n; i++)
				cells[i] = &t.rows[begin + i][c];
			fill(cols_[c], t.features[c].categorical(), cells);
		}
		std::vector<const Cell *> tcells(n);
		for (size_t i = 0; i < n; i++)
			tcells[i] = &t.y[begin + i];
		fill(target_, t.target.categorical(), tcells);
		for (auto &c : cols_)
			data_.push_back(c.view());
		tdata_ = target_.view();
		batch_.nrows = n;
		batch_.nfeatures = t.features.size();
		batch_.features = data_.data();
		batch_.target = &tdata_;
	}
	BatchData(const BatchData &) = delete;
	BatchData &operator=(const BatchData &) = delete;
	const pgml::Batch &batch() const { return batch_; }

  private:
	struct Col {
		bool categorical = false;
		std::vector<double> num;
		std::vector<std::string> strs;
		std::vector<const char *> ptrs;
		std::unique_ptr<bool[]> isnull;
		pgml::ColumnData view() const
		{
			pgml::ColumnData d;
			d.isnull = isnull.get();
			if (categorical)
				d.str = ptrs.data();
			else
				d.num = num.data();
			return d;
		}
	};

	static void fill(Col &col, bool categorical, const std::vector<const Cell *> &cells)
	{
		const size_t n = cells.size();
		col.categorical = categorical;
		col.isnull.reset(new bool[n > 0 ? n : 1]);
		if (categorical) {
			col.strs.resize(n);
			for (size_t i = 0; i < n; i++)
				col.strs[i] = cells[i]->str;
			col.ptrs.resize(n);
			for (size_t i = 0; i < n; i++)
				col.ptrs[i] = cells[i]->null ? nullptr : col.strs[i].c_str();
		} else {
			col.num.resize(n);
			for (size_t i = 0; i < n; i++)
				col.num[i] = cells[i]->null ? 0.0 : cells[i]->num;
		}
		for (size_t i = 0; i < n; i++)
			col.isnull[i] = cells[i]->null;
	}

	std::vector<Col> cols_;
	Col target_;
	std::vector<pgml::ColumnData> data_;
	pgml::ColumnData tdata_;
	pgml::Batch batch_;
};

inline pgml::TrainSpec make_spec(const Table &t, pgml::Algorithm a, double test_size = 0, uint64_t seed = 42)
{
	pgml::TrainSpec s;
	s.features = t.features;
	s.target = t.target;
	s.algorithm = a;
	// the task the algorithm does; for algorithms doing both, classification when the target is text / boolean
	const pgml::AlgorithmDef &def = pgml::algorithm_def(a);
	bool text_target = t.target.type_class == pgml::TypeClass::Categorical || t.target.type_class == pgml::TypeClass::Boolean;
	s.task = def.regression && (!def.classification || !text_target) ? pgml::Task::Regression
	         : def.classification                                       ? pgml::Task::Classification
	                                                                    : pgml::Task::Clustering;
	s.test_size = test_size;
	s.seed = seed;
	return s;
}

// Feeds every row of t to the trainer in batches of batch_rows.
inline void feed(pgml::Trainer &tr, const Table &t, size_t batch_rows = 7)
{
	for (size_t b = 0; b < t.size(); b += batch_rows) {
		BatchData bd(t, b, std::min(t.size(), b + batch_rows));
		tr.add_batch(bd.batch(), nullptr);
	}
}

struct Trained {
	std::unique_ptr<pgml::Model> model;
	pgml::TrainResult result;
};

// finish(), and as the glue does when the fit asks for it, the precise pass over t and
// finish() again.
inline Trained finish(pgml::Trainer &tr, const Table &t, size_t batch_rows = 7)
{
	Trained out;
	out.model = tr.finish(nullptr, nullptr);
	if (tr.needs_precise_pass()) {
		for (size_t b = 0; b < t.size(); b += batch_rows) {
			BatchData bd(t, b, std::min(t.size(), b + batch_rows));
			tr.add_precise_batch(bd.batch(), nullptr);
		}
		tr.end_precise_pass();
		out.model = tr.finish(nullptr, nullptr);
	}
	out.result = tr.result();
	return out;
}

inline Trained train(const pgml::TrainSpec &spec, const Table &t, size_t batch_rows = 7)
{
	pgml::Trainer tr(spec);
	feed(tr, t, batch_rows);
	return finish(tr, t, batch_rows);
}

inline Trained retrain(const pgml::TrainSpec &spec, const pgml::Model &base, bool incremental, const Table &t,
                       size_t batch_rows = 7)
{
	pgml::Trainer tr(spec, base, incremental);
	feed(tr, t, batch_rows);
	return finish(tr, t, batch_rows);
}

// Predicts one row (cells in the model's feature order); returns the n_outputs() values.
// The model's input values of one row (cells in the model's feature order; they must outlive them).
inline std::vector<pgml::Value> to_values(const pgml::Model &m, const std::vector<Cell> &row)
{
	std::vector<pgml::Value> vals(row.size());
	for (size_t i = 0; i < row.size(); i++) {
		vals[i].isnull = row[i].null;
		vals[i].num = row[i].num;
		if (!row[i].null && i < m.features.size() && m.features[i].categorical()) {
			vals[i].str = row[i].str.c_str();
			vals[i].len = row[i].str.size();
		}
	}
	return vals;
}

inline std::vector<double> predict(const pgml::Model &m, const std::vector<Cell> &row, int *cls = nullptr)
{
	std::vector<pgml::Value> vals = to_values(m, row);
	std::vector<double> out(static_cast<size_t>(std::max(1, m.n_outputs())));
	int k = m.predict(vals.data(), out.data());
	if (cls)
		*cls = k;
	return out;
}

// The number after "k1": ... "k2": ... "kn": in a JSON text (a naive search that is
// enough for the trainer's flat-ish reports); NaN when a key is missing.
inline double json_number(const std::string &json, std::initializer_list<const char *> path)
{
	size_t pos = 0;
	for (const char *k : path) {
		std::string needle = std::string("\"") + k + "\":";
		pos = json.find(needle, pos);
		if (pos == std::string::npos)
			return NAN;
		pos += needle.size();
	}
	const char *start = json.c_str() + pos;
	char *end = nullptr;
	double v = std::strtod(start, &end);
	return end == start ? NAN : v;
}

// Runs f, which must throw pgml::Error with the given code; returns the error.
template <class F>
pgml::Error expect_error(F &&f, pgml::ErrorCode code)
{
	try {
		f();
	} catch (const pgml::Error &e) {
		EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << e.what();
		return e;
	}
	ADD_FAILURE() << "expected a pgml::Error";
	return pgml::Error(pgml::ErrorCode::Internal, "(no error was thrown)");
}

// Deterministic random numbers with a portable uniform / normal conversion.
struct Rng {
	std::mt19937_64 gen;
	explicit Rng(uint64_t seed) : gen(seed) {}
	double uniform() { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }
	double normal()
	{
		double u1 = uniform(), u2 = uniform();
		if (u1 < 1e-300)
			u1 = 1e-300;
		return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
	}
	size_t below(size_t n) { return static_cast<size_t>(gen() % n); }
};

// Largest |a - b| / max(1, |b|) over two equally sized matrices.
inline double max_rel_diff(const Eigen::MatrixXd &a, const Eigen::MatrixXd &b)
{
	EXPECT_EQ(a.rows(), b.rows());
	EXPECT_EQ(a.cols(), b.cols());
	if (a.rows() != b.rows() || a.cols() != b.cols())
		return INFINITY;
	double worst = 0;
	for (Eigen::Index i = 0; i < a.rows(); i++)
		for (Eigen::Index j = 0; j < a.cols(); j++)
			worst = std::max(worst, std::fabs(a(i, j) - b(i, j)) / std::max(1.0, std::fabs(b(i, j))));
	return worst;
}

// Estimator::contributions of row z (p features) for output k add up to the prediction `pred`
// (to 1e-9 of the magnitudes involved: a crafted model may hold huge values).
inline void expect_contributions_add_up(const pgml::Estimator &est, const double *z, int k, int p, double pred)
{
	std::vector<double> c(static_cast<size_t>(p) + 1);
	ASSERT_TRUE(est.contributions(z, k, c.data()));
	double sum = 0, mag = std::fabs(pred);
	for (double v : c) {
		sum += v;
		mag += std::fabs(v);
	}
	EXPECT_NEAR(sum, pred, 1e-9 * (1 + mag));
}

// Rows for ml_explain's tests: numbers x, z and a text k ("a" every third row), y = 3 x - 2 z
// + 1.5 [k = a] + noise; classify: y's sign as "pos" / "neg". varied: more noise, x NULL every
// seventh row, and three classes ("low", "mid", "high").
inline Table explain_rows(int rows, bool classify, bool varied = false)
{
	Rng rng(5);
	Table t;
	t.features = {numeric_col("x"), numeric_col("z"), text_col("k")};
	t.target = classify ? text_col("y") : numeric_col("y");
	for (int i = 0; i < rows; i++) {
		double x = rng.normal(), z = rng.normal();
		bool a = i % 3 == 0;
		double y = 3 * x - 2 * z + (a ? 1.5 : 0) + (varied ? 0.5 : 0.1) * rng.normal();
		std::string label = varied ? (y > 1.5 ? "high" : y > -1.5 ? "mid" : "low") : y > 0 ? "pos" : "neg";
		t.add({varied && i % 7 == 2 ? null() : num(x), num(z), str(a ? "a" : "b")}, classify ? str(label) : num(y));
	}
	return t;
}

} // namespace pgml_test
