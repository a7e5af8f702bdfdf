// libFuzzer target: the kmeans_step aggregate state (kmeans_step.cpp) and its parameter array,
// as ml_kmeans_step's transition and combine functions and the trainer see them.
//
// Input (fuzz_input.hpp): three arrays (the parameters, a state, a second state), then the
// level names and rows. Like the glue: the parameters and levels make a Step; rows are added
// to the state (a fresh one when the first array is empty); the second state is merged in;
// every state is decoded.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "kmeans_step.hpp"

namespace {

void decode(const std::vector<double> &state)
{
	(void)pgml::kmeans_step::decode(state.data(), state.size());
}

void run(const uint8_t *data, size_t size)
{
	pgml_fuzz::Input in(data, size, 3);
	std::vector<double> &state = in.arrays[1];
	const std::vector<double> &other = in.arrays[2];
	pgml_fuzz::ByteSource src(in.rest, in.rest_len);

	pgml_fuzz::guarded([&]() {
		pgml::kmeans_step::Params p = pgml::kmeans_step::Params::decode(in.arrays[0].data(), in.arrays[0].size());
		// the level names: as many as the parameters want, a few of them from the input
		std::vector<std::string> levels;
		const int want = p.total_levels();
		const int given = src.u8() % 4 == 0 ? want + 1 - src.u8() % 3 : want;
		for (int i = 0; i < given && i < 100000; i++)
			levels.push_back(src.u8() % 8 == 0 ? src.str({}) : "l" + std::to_string(i));
		pgml::kmeans_step::Step step(p, levels);
		pgml::aggstate::init_if_empty<pgml::kmeans_step::State>(state, step.shape());
		const size_t nc = step.params().columns.size();
		std::vector<std::string> strs(nc);
		std::vector<const char *> str(nc);
		std::vector<size_t> len(nc);
		std::vector<double> num(nc);
		std::unique_ptr<bool[]> isnull(new bool[nc]);
		for (int r = 0; r < 64 && !src.empty(); r++) {
			for (size_t c = 0; c < nc; c++) {
				isnull[c] = src.u8() % 4 == 0;
				if (step.params().columns[c].categorical) {
					strs[c] = src.str(levels);
					str[c] = isnull[c] ? nullptr : strs[c].data();
					len[c] = isnull[c] ? 0 : strs[c].size();
				} else {
					num[c] = isnull[c] ? 0 : src.num();
				}
			}
			pgml::kmeans_step::Row row;
			row.isnull = isnull.get();
			row.num = num.data();
			row.str = str.data();
			row.len = len.data();
			step.add_row(state.data(), state.size(), row);
		}
	});
	pgml_fuzz::merge_and_decode<pgml::kmeans_step::State>(state, other, decode);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	return 0;
}
