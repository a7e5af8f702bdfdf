// Drift monitoring (src/core/monitor.hpp): quantile bins, PSI, profiles and the drift of rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "monitor.hpp"

using namespace pgml;

namespace {

// A RowStore with one numeric and one categorical column.
struct Rows {
	std::vector<ColumnInfo> cols;
	Dictionary dict;
	RowStore s;
	Rows()
	{
		cols.resize(2);
		cols[0].name = "x";
		cols[1].name = "c";
		cols[1].type_class = TypeClass::Categorical;
		s.reset(cols);
	}
	void add(double x, const char *c)
	{
		s.num[0].push_back(x);
		s.cat[1].push_back(c == nullptr ? -1 : dict.intern(c));
		s.y.push_back(0);
		s.hash.push_back(s.hash.size());
	}
	std::vector<const Dictionary *> dicts() const { return {nullptr, &dict}; }
	Profile profile() const { return build_profile(cols, dicts(), s, "training rows"); }
};

const DriftMonitor::Drift &find(const std::vector<DriftMonitor::Drift> &d, const char *name)
{
	for (const auto &x : d)
		if (x.name == name)
			return x;
	throw std::runtime_error("no drift for column");
}

} // namespace

TEST(Psi, KnownValues)
{
	// (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
	EXPECT_NEAR(psi({0.5, 0.5}, {0.25, 0.75}), 0.25 * std::log(2.0) + 0.25 * std::log(1.5), 1e-15);
	EXPECT_EQ(psi({0.1, 0.2, 0.7}, {0.1, 0.2, 0.7}), 0.0);
	// ten equal bins, one doubled at the cost of another
	std::vector<double> e(10, 0.1), a(10, 0.1);
	a[0] = 0.2;
	a[9] = 0.0; // an empty bin counts as kPsiEpsilon
	EXPECT_NEAR(psi(e, a), 0.1 * std::log(2.0) + (kPsiEpsilon - 0.1) * std::log(kPsiEpsilon / 0.1), 1e-12);
	// symmetric
	EXPECT_DOUBLE_EQ(psi({0.3, 0.7}, {0.6, 0.4}), psi({0.6, 0.4}, {0.3, 0.7}));
}

TEST(Psi, Severity)
{
	EXPECT_STREQ(psi_severity(0.0), "none");
	EXPECT_STREQ(psi_severity(0.0999), "none");
	EXPECT_STREQ(psi_severity(0.1), "moderate");
	EXPECT_STREQ(psi_severity(0.2499), "moderate");
	EXPECT_STREQ(psi_severity(0.25), "major");
	EXPECT_EQ(psi_severity(NAN), nullptr);
}

TEST(QuantileEdges, Deciles)
{
	std::vector<double> v;
	for (int i = 0; i < 100; i++)
		v.push_back(99 - i);
	std::vector<double> e = quantile_edges(v, 10);
	ASSERT_EQ(e.size(), 9u);
	for (int k = 0; k < 9; k++)
		EXPECT_EQ(e[static_cast<size_t>(k)], 10.0 * (k + 1));
	// ten values per bin
	std::vector<int> count(10, 0);
	for (double x : v)
		count[value_bin(e, x)]++;
	for (int c : count)
		EXPECT_EQ(c, 10);
}

TEST(QuantileEdges, TiesMerge)
{
	// 0/1 column, 70% zeros: one edge at 1
	std::vector<double> v(70, 0.0);
	v.insert(v.end(), 30, 1.0);
	std::vector<double> e = quantile_edges(v, 10);
	ASSERT_EQ(e.size(), 1u);
	EXPECT_EQ(e[0], 1.0);
	// 95% at the minimum: the minimum against the rest
	std::vector<double> w(95, 3.0);
	w.insert(w.end(), 5, 4.0);
	e = quantile_edges(w, 10);
	ASSERT_EQ(e.size(), 1u);
	EXPECT_EQ(value_bin(e, 3.0), 0u);
	EXPECT_EQ(value_bin(e, 3.5), 1u);
}

TEST(QuantileEdges, ConstantAndEmpty)
{
	std::vector<double> v(50, 7.0);
	std::vector<double> e = quantile_edges(v, 10);
	ASSERT_EQ(e.size(), 2u);
	EXPECT_EQ(value_bin(e, 6.9), 0u);
	EXPECT_EQ(value_bin(e, 7.0), 1u);
	EXPECT_EQ(value_bin(e, 7.1), 2u);
	std::vector<double> none;
	EXPECT_TRUE(quantile_edges(none, 10).empty());
}

TEST(Profile, BuildAndJson)
{
	Rows r;
	for (int i = 0; i < 100; i++)
		r.add(i % 10 == 0 ? NAN : i, i % 4 == 0 ? "a" : i % 4 == 1 ? nullptr : "b");
	Profile p = r.profile();
	ASSERT_EQ(p.features.size(), 2u);
	const FeatureProfile &x = p.features[0];
	EXPECT_FALSE(x.categorical);
	EXPECT_DOUBLE_EQ(x.null_share, 0.1);
	double total = x.null_share;
	for (double s : x.shares)
		total += s;
	EXPECT_NEAR(total, 1.0, 1e-12);
	const FeatureProfile &c = p.features[1];
	EXPECT_TRUE(c.categorical);
	ASSERT_EQ(c.levels.size(), 2u);
	EXPECT_EQ(c.levels[0], "b"); // most frequent first
	EXPECT_DOUBLE_EQ(c.shares[0], 0.5);
	EXPECT_DOUBLE_EQ(c.shares[1], 0.25);
	EXPECT_DOUBLE_EQ(c.null_share, 0.25);
	std::string j = p.to_json();
	EXPECT_NE(j.find("\"from\":\"training rows\""), std::string::npos);
	EXPECT_NE(j.find("\"levels\":[\"b\",\"a\"]"), std::string::npos);
}

TEST(DriftMonitor, SameRowsNoDrift)
{
	Rows r;
	for (int i = 0; i < 1000; i++)
		r.add(i, i % 3 == 0 ? "a" : "b");
	Profile p = r.profile();
	DriftMonitor m(p, r.cols);
	m.add_rows(r.s, r.dicts());
	for (const auto &d : m.drifts()) {
		EXPECT_NEAR(d.psi, 0.0, 1e-12) << d.name;
		EXPECT_STREQ(d.severity, "none");
		EXPECT_EQ(d.rows, 1000);
	}
}

TEST(DriftMonitor, ShiftedNumericUnseenLevelsNulls)
{
	Rows r;
	for (int i = 0; i < 1000; i++)
		r.add(i, i % 2 == 0 ? "a" : "b");
	Profile p = r.profile();
	// the relation: x shifted by half its range, a NULL in 10% of c, an unseen level in 20%
	Rows q;
	for (int i = 0; i < 1000; i++)
		q.add(i + 500, i % 10 == 0 ? nullptr : i % 10 < 3 ? "z" : i % 2 == 0 ? "a" : "b");
	DriftMonitor m(p, r.cols);
	m.add_rows(q.s, q.dicts());
	auto d = m.drifts();
	const auto &x = find(d, "x");
	// half the rows fall in the top bin, the bottom five bins are empty:
	// 5 * (eps - 0.1) ln(eps / 0.1) + 4 * 0 + (0.6 - 0.1) ln(0.6 / 0.1)
	EXPECT_NEAR(x.psi, 5 * (kPsiEpsilon - 0.1) * std::log(kPsiEpsilon / 0.1) + 0.5 * std::log(6.0), 1e-9);
	EXPECT_STREQ(x.severity, "major");
	EXPECT_DOUBLE_EQ(x.null_share, 0.0);
	const auto &c = find(d, "c");
	EXPECT_DOUBLE_EQ(c.unseen_share, 0.2);
	EXPECT_DOUBLE_EQ(c.null_share, 0.1);
	EXPECT_DOUBLE_EQ(c.train_null_share, 0.0);
	EXPECT_STREQ(c.severity, "major");
	EXPECT_NE(m.summary_json().find("\"x\":{\"psi\":"), std::string::npos);
}

TEST(DriftMonitor, ConstantAndAllNull)
{
	Rows r;
	for (int i = 0; i < 100; i++)
		r.add(5.0, nullptr); // x constant, c NULL everywhere
	Profile p = r.profile();
	EXPECT_DOUBLE_EQ(p.features[1].null_share, 1.0);
	EXPECT_TRUE(p.features[1].levels.empty());
	{
		DriftMonitor m(p, r.cols);
		m.add_rows(r.s, r.dicts());
		for (const auto &d : m.drifts())
			EXPECT_NEAR(d.psi, 0.0, 1e-12) << d.name;
	}
	// the constant moves; the NULLs become a level
	Rows q;
	for (int i = 0; i < 100; i++)
		q.add(6.0, "a");
	DriftMonitor m(p, r.cols);
	m.add_rows(q.s, q.dicts());
	auto d = m.drifts();
	EXPECT_STREQ(find(d, "x").severity, "major");
	EXPECT_DOUBLE_EQ(find(d, "c").unseen_share, 1.0);
	EXPECT_STREQ(find(d, "c").severity, "major");
}

TEST(DriftMonitor, Batches)
{
	Rows r;
	for (int i = 0; i < 100; i++)
		r.add(i, i % 2 ? "a" : "b");
	Profile p = r.profile();
	DriftMonitor m(p, r.cols);
	double x[3] = {1, 2, 0};
	const char *c[3] = {"a", "new", nullptr};
	bool xn[3] = {false, false, true}, cn[3] = {false, false, true};
	ColumnData cols[2];
	cols[0].num = x;
	cols[0].isnull = xn;
	cols[1].str = c;
	cols[1].isnull = cn;
	Batch b;
	b.nrows = 3;
	b.nfeatures = 2;
	b.features = cols;
	m.add_batch(b, nullptr);
	EXPECT_EQ(m.rows(), 3);
	auto d = m.drifts();
	EXPECT_NEAR(find(d, "c").unseen_share, 1.0 / 3, 1e-15);
	EXPECT_NEAR(find(d, "x").null_share, 1.0 / 3, 1e-15);
	// a column the profile lacks
	std::vector<ColumnInfo> other = r.cols;
	other[0].name = "y";
	EXPECT_THROW(DriftMonitor(p, other), Error);
	// nothing read: no PSI
	DriftMonitor empty(p, r.cols);
	EXPECT_TRUE(std::isnan(empty.drifts()[0].psi));
	EXPECT_EQ(empty.drifts()[0].severity, nullptr);
}

TEST(Profile, MergeKeepsBaseBins)
{
	Rows r;
	for (int i = 0; i < 100; i++)
		r.add(i, i % 2 ? "a" : "b");
	Profile base = r.profile();
	// as many added rows, all in the top bin and a new level
	Rows q;
	for (int i = 0; i < 100; i++)
		q.add(1000, i % 2 ? "a" : "new");
	Profile m = merge_profile(base, 100, r.cols, q.dicts(), q.s, 100, "parent profile + training rows");
	EXPECT_EQ(m.rows, 200);
	const FeatureProfile &x = m.features[0];
	EXPECT_EQ(x.edges, base.features[0].edges);
	EXPECT_NEAR(x.shares.back(), 0.5 * 0.1 + 0.5, 1e-12);
	EXPECT_NEAR(x.shares.front(), 0.05, 1e-12);
	const FeatureProfile &c = m.features[1];
	ASSERT_EQ(c.levels.size(), 3u);
	EXPECT_EQ(c.levels[0], "a");
	EXPECT_NEAR(c.shares[0], 0.5, 1e-12);
	EXPECT_NEAR(c.shares[1] + c.shares[2], 0.5, 1e-12);
	// the merged profile sees the added rows as no drift at half their weight... and the base
	// rows with it: both drift less than against the base
	DriftMonitor against_base(base, r.cols), against_merged(m, r.cols);
	against_base.add_rows(q.s, q.dicts());
	against_merged.add_rows(q.s, q.dicts());
	EXPECT_LT(against_merged.drifts()[0].psi, against_base.drifts()[0].psi);
	// without added rows: the base itself
	Rows none;
	Profile same = merge_profile(base, 100, r.cols, none.dicts(), none.s, 0, "x");
	EXPECT_EQ(same.features[0].shares, base.features[0].shares);
}
