// pg_ml core: memory estimates, checked against the memory limit (pg_ml.max_memory) before
// anything that grows with the data or the hyperparameters is allocated.
//
// Each estimate is an upper bound in bytes of what one fit keeps alive at its peak, from the
// sizes it is given (rows, features, classes, hyperparameters). check_memory() turns an
// estimate above the limit into Error(ProgramLimit) (54000) that names the setting, the
// estimate and what to lower. A limit of 0 means no limit.
#pragma once

#include <cstddef>
#include <string>

#include "common.hpp"

namespace pgml {

// "12.5 MB": bytes in megabytes for messages.
std::string megabytes(double bytes);
// A count (rows, nodes) as a whole number for messages.
std::string count_text(double v);

// Throws Error(ProgramLimit) when bytes > limit (limit 0: never): the primary line says what
// needs the memory and how much, detail gives the facts behind the estimate, and the hint asks
// to lower `lower` (hyperparameters or data) or to raise pg_ml.max_memory.
void check_memory(size_t limit, double bytes, const std::string &what, const std::string &detail,
                  const std::string &lower);

// Asks the kernel to back [data, data + bytes) with huge pages where it can (Linux's
// transparent huge pages in "madvise" mode, Debian's default): a large matrix filled once is
// then faulted in 2 MB at a time instead of 4 kB, which on a virtual machine was a tenth of a
// fit's time. Call it before the memory is first written; harmless anywhere else.
void advise_huge_pages(void *data, size_t bytes);

namespace memory {

// One Moments of q slots (mean and co-moment matrix).
double moments_bytes(double q);
// A dense n x p matrix of doubles.
double matrix_bytes(double n, double p);
// Nodes one tree can have: at most 2^(depth+1) - 1 (depth 0: unlimited) and 2 n - 1.
double tree_nodes(double n, int max_depth);
// gradient_boosting (xgboost, hist): the float copy and quantized matrix of the rows, gradients
// and prediction caches, the histograms of one tree's nodes, and every round's trees (K trees
// per round for K > 2 classes) in memory and as the JSON text that is saved, checked and loaded.
double gradient_boosting_bytes(double n, double p, int n_classes, int n_estimators, int max_depth, int max_bin);
// The node and leaf arrays of one CART tree grown on n rows (n_outputs values per leaf).
double tree_bytes(double n, int max_depth, int n_outputs);
// svm with the rbf kernel: the kernel row cache (at most cache_cap bytes), the row copies and
// the solver's vectors, for `workers` problems solved at once.
double svm_rbf_bytes(double n, double p, int workers, double cache_cap);
// mlp: weights, gradients and Adam's two moments, and the activations of one batch per layer.
double mlp_bytes(double n, double p, int outputs, int layers, int units, int batch);
// kmeans: n_init runs at once (threads), each with its centres, labels and distances.
double kmeans_bytes(double n, double p, int k, int runs_at_once);

} // namespace memory

} // namespace pgml
