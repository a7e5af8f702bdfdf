// libFuzzer target: the eval_stats aggregate state (eval_state.cpp) and its parameter array,
// as ml_eval_stats' transition and combine functions and the trainer see them.
//
// Input (fuzz_input.hpp): three arrays (the parameters, a state, a second state), then the
// class count, whether there are probabilities, and rows. Like the glue: the parameters are
// decoded; rows of a model with that many classes are added to the state (a fresh one when
// the first array is empty), growing it when add_row asks; the second state is merged in;
// every state is decoded and its metrics written.
#include <cstdint>
#include <string>
#include <vector>

#include "eval_state.hpp"
#include "fuzz_input.hpp"

namespace {

using pgml::evalstate::Shape;

void decode(const std::vector<double> &state)
{
	pgml::evalstate::Decoded d = pgml::evalstate::decode(state.data(), state.size());
	std::vector<std::string> classes;
	for (int k = 0; k < d.shape.K; k++)
		classes.push_back("c" + std::to_string(k));
	for (const pgml::evalstate::Split &s : d.split)
		(void)pgml::evalstate::split_json(s, classes, d.shape.proba);
}

void run(const uint8_t *data, size_t size)
{
	pgml_fuzz::Input in(data, size, 3);
	std::vector<double> &state = in.arrays[1];
	const std::vector<double> &other = in.arrays[2];
	pgml_fuzz::ByteSource src(in.rest, in.rest_len);
	const int K = 1 + src.u8() % 6; // the model's classes
	const bool proba = src.u8() % 2 == 0;

	pgml_fuzz::guarded([&]() {
		pgml::evalstate::Params p =
			pgml::evalstate::Params::decode(in.arrays[0].data(), in.arrays[0].size());
		pgml::aggstate::init_if_empty<pgml::evalstate::State>(state, pgml::evalstate::initial_shape(K, proba, p));
		std::vector<double> out(static_cast<size_t>(K));
		for (int r = 0; r < 64 && !src.empty(); r++) {
			Shape s0 = pgml::evalstate::shape_of(state.data(), state.size());
			// the glue refuses a state made for another number of classes
			if (s0.K != K || s0.proba != proba)
				break;
			uint8_t what = src.u8();
			if (what % 8 == 0) {
				pgml::evalstate::add_skipped(state.data(), s0, static_cast<pgml::evalstate::Skip>((what >> 3) % 3));
				continue;
			}
			const int t = what % 2;
			const int truth = src.u8() % K, predicted = src.u8() % K;
			double sum = 0;
			for (int k = 0; k < K; k++)
				sum += out[static_cast<size_t>(k)] = src.u8();
			for (int k = 0; k < K; k++)
				out[static_cast<size_t>(k)] = sum > 0 ? out[static_cast<size_t>(k)] / sum : 1.0 / K;
			const double u = src.u8() / 256.0;
			pgml::aggstate::grow_add<pgml::evalstate::State>(state, s0, [&](double *buf, const Shape &s, Shape *need) {
				return pgml::evalstate::add_row(buf, s, t, truth, predicted, out.data(), u, need);
			});
		}
	});
	pgml_fuzz::merge_and_decode<pgml::evalstate::State>(state, other, decode);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	return 0;
}
