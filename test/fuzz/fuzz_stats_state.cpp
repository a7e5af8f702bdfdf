// libFuzzer target: the train_stats aggregate state (stats_state.cpp) and its parameter
// array, as ml_train_stats' transition and combine functions and the trainer see them: both
// are float8[] values that reach the core as plain doubles.
//
// Input (fuzz_input.hpp): three arrays (the parameters, a state, a second state), then rows.
// Like the glue: the parameters are decoded; rows are added to the state (a fresh one when
// the first array is empty) growing it when add_row asks; the second state is merged in
// (after growing the first to the merged shape); every state is decoded.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "stats_state.hpp"
#include "trainer.hpp"

namespace {

// The trainer's side: a linear regression on these columns fed the state as one group (what
// ml_train does with each row of the statistics query), then fitted. It may refuse the state
// or fail to fit; it must not crash.
void train(const pgml::stats::Params &p, const std::vector<double> &state)
{
	pgml::TrainSpec spec;
	std::vector<const char *> levels;
	for (int c = 0; c < p.nfeat; c++) {
		const bool cat = p.categorical[static_cast<size_t>(c)] != 0;
		spec.features.push_back(pgml::ColumnInfo{"f" + std::to_string(c), cat ? pgml::TypeClass::Categorical : pgml::TypeClass::Numeric,
		                                         cat ? "text" : "double precision"});
		levels.push_back(cat ? (c % 2 ? "a" : nullptr) : nullptr);
	}
	spec.target = pgml::ColumnInfo{"y", pgml::TypeClass::Numeric, "double precision"};
	spec.algorithm = pgml::Algorithm::LinearRegression;
	spec.task = pgml::Task::Regression;
	spec.test_size = p.test_size;
	try {
		pgml::Trainer tr(spec);
		tr.add_stats_group(levels, state.data(), state.size(), nullptr);
		(void)tr.finish(nullptr, nullptr);
	} catch (const pgml::Error &) {
	}
}

void run(const uint8_t *data, size_t size)
{
	pgml_fuzz::Input in(data, size, 3);
	std::vector<double> &state = in.arrays[1];
	const std::vector<double> &other = in.arrays[2];
	pgml_fuzz::ByteSource src(in.rest, in.rest_len);

	pgml::stats::Params p;
	const bool have_params =
		pgml_fuzz::guarded([&]() { p = pgml::stats::Params::decode(in.arrays[0].data(), in.arrays[0].size()); });
	if (have_params) {
		pgml::aggstate::init_if_empty<pgml::stats::State>(state, pgml::stats::initial_shape(p));
		const size_t nf = static_cast<size_t>(p.nfeat);
		std::vector<std::string> levels = {"a", "b", ""};
		std::vector<std::string> strs(nf);
		std::vector<const char *> str(nf);
		std::vector<size_t> len(nf);
		std::vector<double> num(nf);
		std::unique_ptr<bool[]> isnull(new bool[nf]);
		std::string target_str;
		for (int r = 0; r < 64 && !src.empty(); r++) {
			pgml::stats::Row row;
			row.target_null = src.u8() % 8 == 0;
			if (p.target_categorical) {
				target_str = src.str(levels);
				row.target_str = target_str.data();
				row.target_len = target_str.size();
			} else {
				row.target = src.num();
			}
			for (size_t c = 0; c < nf; c++) {
				isnull[c] = src.u8() % 4 == 0;
				if (p.categorical[c]) {
					strs[c] = src.str(levels);
					str[c] = isnull[c] ? nullptr : strs[c].data();
					len[c] = isnull[c] ? 0 : strs[c].size();
				} else {
					num[c] = isnull[c] ? 0 : src.num();
				}
			}
			row.isnull = isnull.get();
			row.num = num.data();
			row.str = str.data();
			row.len = len.data();
			// the glue's transition loop: the state grown when add_row asks
			if (!pgml_fuzz::guarded([&]() {
				    pgml::aggstate::grow_add<pgml::stats::State>(
					    state, pgml::stats::initial_shape(p),
					    [&](double *buf, const pgml::stats::Shape &s, pgml::stats::Shape *need) {
						    return pgml::stats::add_row(buf, s, p, row, need);
					    });
			    }))
				break;
		}
	}
	pgml_fuzz::merge_and_decode<pgml::stats::State>(state, other, [&](const std::vector<double> &s) {
		pgml::stats::Decoded d = pgml::stats::decode(s.data(), s.size());
		if (have_params && d.shape.has_target && d.shape.nfeat == p.nfeat && d.shape.k == p.k)
			train(p, s);
	});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	return 0;
}
