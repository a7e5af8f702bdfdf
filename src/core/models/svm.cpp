#include "svm.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <list>
#include <random>
#include <string>

#include "limits.hpp"
#include "threads.hpp"

namespace pgml {

namespace {

constexpr uint16_t kSvmVersion = 1;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTau = 1e-12;                        // libsvm's TAU: floor of a non-positive curvature
constexpr size_t kKernelCacheBytes = size_t(256) << 20; // kernel row cache, shared by the concurrent problems
constexpr uint32_t kMaxSupportVectors = 1u << 26;
constexpr uint32_t kMaxClasses = 1u << 16;

enum class Kernel : uint8_t { Linear = 0, Rbf = 1 };

using PK = ParamSpec::Kind;

// Throws the DataCorrupted error of a malformed svm/mlp section.
[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "svm: " + detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

// Replaces v[0..k) by its softmax.
void softmax(double *v, int k)
{
	double mx = -kInf;
	for (int i = 0; i < k; i++)
		mx = std::max(mx, v[i]);
	double sum = 0;
	for (int i = 0; i < k; i++) {
		v[i] = std::exp(v[i] - mx);
		sum += v[i];
	}
	for (int i = 0; i < k; i++)
		v[i] /= sum;
}

// A 64-bit mix of the seed and a problem number (splitmix64), so each binary problem has its own
// random stream whatever the thread that solves it.
uint64_t mix_seed(uint64_t seed, uint64_t k)
{
	uint64_t z = seed + 0x9E3779B97F4A7C15ull * (k + 1);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

// Shuffles idx[0..k) (Fisher-Yates with a portable draw).
void shuffle_prefix(std::vector<int> &idx, int k, std::mt19937_64 &gen)
{
	for (int i = k - 1; i > 0; i--)
		std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(gen() % static_cast<uint64_t>(i + 1))]);
}

// The hyperparameters fit_svm uses, read once.
struct SvmOptions {
	Kernel kernel = Kernel::Linear;
	bool l2_loss = true; // squared hinge / squared epsilon-insensitive
	double C = 1;
	double gamma = 0;
	double epsilon = 0;
	int max_iter = 1000;
	double tol = 1e-4;
	int max_kernel_rows = 10000;
};

// One solved binary (or regression) problem and its log.
struct Solution {
	Eigen::VectorXd w;        // linear: weights
	double b = 0;             // linear: intercept; rbf: -rho
	std::vector<double> coef; // rbf: dual coefficient of each of the problem's rows
	std::vector<IterationLog> log;
};

// Appends the per-problem logs to out as one log: entry t sums the problems' losses at their
// iteration t (a finished problem keeps its last value) and takes the largest violation.
void merge_logs(const std::vector<Solution> &sols, std::vector<IterationLog> *out)
{
	if (out == nullptr)
		return;
	size_t len = 0;
	for (const Solution &s : sols)
		len = std::max(len, s.log.size());
	for (size_t t = 0; t < len; t++) {
		IterationLog e{static_cast<int>(t + 1), 0.0, 0.0, NAN};
		for (const Solution &s : sols) {
			if (s.log.empty())
				continue;
			const IterationLog &l = s.log[std::min(t, s.log.size() - 1)];
			e.loss += l.loss;
			if (t < s.log.size())
				e.grad_norm = std::max(e.grad_norm, l.grad_norm);
		}
		out->push_back(e);
	}
}

// ---------------------------------------------------------------------------------------------
// Linear kernel: LIBLINEAR's dual coordinate descent. Xt is p x n (column i = row i), sq[i] =
// ||x_i||^2 + 1 (the constant intercept feature included).

// L2-regularised L1- or L2-loss SVC (solve_l2r_l1l2_svc): y[i] is +1 or -1.
Solution dcd_svc(const Eigen::MatrixXd &Xt, const Eigen::VectorXd &sq, const std::vector<double> &y,
                 const SvmOptions &o, uint64_t seed, CancelCheck cancel)
{
	const int n = static_cast<int>(Xt.cols());
	const double diag = o.l2_loss ? 0.5 / o.C : 0.0;
	const double upper = o.l2_loss ? kInf : o.C;
	Solution s;
	s.w = Eigen::VectorXd::Zero(Xt.rows());
	std::vector<double> alpha(static_cast<size_t>(n), 0.0);
	std::vector<int> index(static_cast<size_t>(n));
	for (int i = 0; i < n; i++)
		index[static_cast<size_t>(i)] = i;
	std::mt19937_64 gen(seed);
	double pg_max_old = kInf, pg_min_old = -kInf;
	int active = n;
	for (int iter = 0; iter < o.max_iter;) {
		check_cancel(cancel);
		double pg_max_new = -kInf, pg_min_new = kInf;
		shuffle_prefix(index, active, gen);
		for (int k = 0; k < active; k++) {
			if ((k & 8191) == 8191)
				check_cancel(cancel);
			const int i = index[static_cast<size_t>(k)];
			const double yi = y[static_cast<size_t>(i)];
			double &a = alpha[static_cast<size_t>(i)];
			const double G = yi * (Xt.col(i).dot(s.w) + s.b) - 1 + a * diag;
			double pg = 0;
			if (a == 0) {
				if (G > pg_max_old) { // shrink: stays at the lower bound
					active--;
					std::swap(index[static_cast<size_t>(k)], index[static_cast<size_t>(active)]);
					k--;
					continue;
				}
				if (G < 0)
					pg = G;
			} else if (a == upper) {
				if (G < pg_min_old) { // shrink: stays at the upper bound
					active--;
					std::swap(index[static_cast<size_t>(k)], index[static_cast<size_t>(active)]);
					k--;
					continue;
				}
				if (G > 0)
					pg = G;
			} else {
				pg = G;
			}
			pg_max_new = std::max(pg_max_new, pg);
			pg_min_new = std::min(pg_min_new, pg);
			if (std::fabs(pg) > 1e-12) {
				const double old = a;
				a = std::min(std::max(a - G / (sq(i) + diag), 0.0), upper);
				const double d = (a - old) * yi;
				s.w += d * Xt.col(i);
				s.b += d;
			}
		}
		iter++;
		// primal objective 0.5 ||(w, b)||^2 + C sum loss(y_i f_i)
		Eigen::VectorXd f = Xt.transpose() * s.w;
		double data_loss = 0;
		for (int i = 0; i < n; i++) {
			double h = std::max(0.0, 1 - y[static_cast<size_t>(i)] * (f(i) + s.b));
			data_loss += o.l2_loss ? h * h : h;
		}
		const double violation = pg_max_new - pg_min_new;
		s.log.push_back({iter, 0.5 * (s.w.squaredNorm() + s.b * s.b) + o.C * data_loss, violation, NAN});
		if (violation <= o.tol) {
			if (active == n)
				break;
			active = n; // check the shrunk variables once more before stopping
			pg_max_old = kInf;
			pg_min_old = -kInf;
			continue;
		}
		pg_max_old = pg_max_new <= 0 ? kInf : pg_max_new;
		pg_min_old = pg_min_new >= 0 ? -kInf : pg_min_new;
	}
	return s;
}

// L2-regularised L1- or L2-loss epsilon-SVR (solve_l2r_l1l2_svr); stops when the summed
// violation falls to tol times that of the first epoch, as LIBLINEAR does.
Solution dcd_svr(const Eigen::MatrixXd &Xt, const Eigen::VectorXd &sq, const Eigen::VectorXd &y,
                 const SvmOptions &o, uint64_t seed, CancelCheck cancel)
{
	const int n = static_cast<int>(Xt.cols());
	const double lambda = o.l2_loss ? 0.5 / o.C : 0.0;
	const double upper = o.l2_loss ? kInf : o.C;
	const double eps = o.epsilon;
	Solution s;
	s.w = Eigen::VectorXd::Zero(Xt.rows());
	std::vector<double> beta(static_cast<size_t>(n), 0.0);
	std::vector<int> index(static_cast<size_t>(n));
	for (int i = 0; i < n; i++)
		index[static_cast<size_t>(i)] = i;
	std::mt19937_64 gen(seed);
	double g_max_old = kInf, g_norm1_init = 0;
	int active = n;
	for (int iter = 0; iter < o.max_iter;) {
		check_cancel(cancel);
		double g_max_new = 0, g_norm1_new = 0;
		shuffle_prefix(index, active, gen);
		for (int k = 0; k < active; k++) {
			if ((k & 8191) == 8191)
				check_cancel(cancel);
			const int i = index[static_cast<size_t>(k)];
			double &bi = beta[static_cast<size_t>(i)];
			const double G = -y(i) + lambda * bi + Xt.col(i).dot(s.w) + s.b;
			const double H = sq(i) + lambda;
			const double gp = G + eps, gn = G - eps;
			double violation = 0;
			bool shrink = false;
			if (bi == 0) {
				if (gp < 0)
					violation = -gp;
				else if (gn > 0)
					violation = gn;
				else if (gp > g_max_old && gn < -g_max_old)
					shrink = true;
			} else if (bi >= upper) {
				if (gp > 0)
					violation = gp;
				else if (gp < -g_max_old)
					shrink = true;
			} else if (bi <= -upper) {
				if (gn < 0)
					violation = -gn;
				else if (gn > g_max_old)
					shrink = true;
			} else if (bi > 0) {
				violation = std::fabs(gp);
			} else {
				violation = std::fabs(gn);
			}
			if (shrink) {
				active--;
				std::swap(index[static_cast<size_t>(k)], index[static_cast<size_t>(active)]);
				k--;
				continue;
			}
			g_max_new = std::max(g_max_new, violation);
			g_norm1_new += violation;
			// Newton direction of the one-variable problem
			double d;
			if (gp < H * bi)
				d = -gp / H;
			else if (gn > H * bi)
				d = -gn / H;
			else
				d = -bi;
			if (std::fabs(d) < 1e-12)
				continue;
			const double old = bi;
			bi = std::min(std::max(bi + d, -upper), upper);
			d = bi - old;
			if (d != 0) {
				s.w += d * Xt.col(i);
				s.b += d;
			}
		}
		if (iter == 0)
			g_norm1_init = g_norm1_new;
		iter++;
		Eigen::VectorXd f = Xt.transpose() * s.w;
		double data_loss = 0;
		for (int i = 0; i < n; i++) {
			double h = std::max(0.0, std::fabs(y(i) - f(i) - s.b) - eps);
			data_loss += o.l2_loss ? h * h : h;
		}
		s.log.push_back({iter, 0.5 * (s.w.squaredNorm() + s.b * s.b) + o.C * data_loss, g_max_new, NAN});
		if (g_norm1_new <= o.tol * g_norm1_init) {
			if (active == n)
				break;
			active = n;
			g_max_old = kInf;
			continue;
		}
		g_max_old = g_max_new;
	}
	return s;
}

// ---------------------------------------------------------------------------------------------
// RBF kernel: libsvm's SMO.

// RBF kernel rows of a set of points, computed on demand and kept in an LRU cache.
class KernelRows {
  public:
	// X: the points as rows.
	KernelRows(const Eigen::MatrixXd &X, double gamma, size_t budget_bytes)
		: Xt_(X.transpose()), sq_(X.rowwise().squaredNorm()), gamma_(gamma), n_(static_cast<int>(X.rows())),
		  slot_of_(static_cast<size_t>(n_), -1), pos_(static_cast<size_t>(n_))
	{
		size_t row_bytes = sizeof(double) * static_cast<size_t>(std::max(n_, 1));
		capacity_ = std::max<size_t>(2, std::min<size_t>(static_cast<size_t>(n_), budget_bytes / row_bytes));
	}
	int size() const { return n_; }
	// K(x_i, x_j) for every j; valid until the next call that misses the cache twice.
	const double *row(int i)
	{
		const size_t ui = static_cast<size_t>(i);
		if (slot_of_[ui] >= 0) {
			lru_.splice(lru_.begin(), lru_, pos_[ui]);
			return slots_[static_cast<size_t>(slot_of_[ui])].data();
		}
		int slot;
		if (slots_.size() < capacity_) {
			slot = static_cast<int>(slots_.size());
			slots_.emplace_back(static_cast<size_t>(n_));
		} else { // evict the least recently used row
			int victim = lru_.back();
			lru_.pop_back();
			slot = slot_of_[static_cast<size_t>(victim)];
			slot_of_[static_cast<size_t>(victim)] = -1;
		}
		std::vector<double> &buf = slots_[static_cast<size_t>(slot)];
		Eigen::Map<Eigen::VectorXd> out(buf.data(), n_);
		out.noalias() = Xt_.transpose() * Xt_.col(i);
		for (int j = 0; j < n_; j++)
			out(j) = std::exp(-gamma_ * std::max(0.0, sq_(i) + sq_(j) - 2 * out(j)));
		slot_of_[ui] = slot;
		lru_.push_front(i);
		pos_[ui] = lru_.begin();
		return buf.data();
	}

  private:
	Eigen::MatrixXd Xt_;
	Eigen::VectorXd sq_;
	double gamma_;
	int n_;
	size_t capacity_ = 2;
	std::vector<std::vector<double>> slots_;
	std::vector<int> slot_of_;
	std::list<int> lru_;
	std::vector<std::list<int>::iterator> pos_;
};

// The dual problem libsvm's Solver minimises: 0.5 a'Qa + p'a subject to y'a = 0, 0 <= a <= C,
// where Q(s, t) = y_s y_t K(s mod n, t mod n) (l = n for SVC, 2n for epsilon-SVR).
struct SmoProblem {
	std::vector<double> y; // +1 / -1
	std::vector<double> p;
	double C = 1;
};

// libsvm's rho (the negated intercept) from the gradient at the solution.
double smo_rho(const SmoProblem &pb, const std::vector<double> &alpha, const std::vector<double> &G)
{
	double ub = kInf, lb = -kInf, sum_free = 0;
	int n_free = 0;
	for (size_t t = 0; t < alpha.size(); t++) {
		const double yg = pb.y[t] * G[t];
		if (alpha[t] >= pb.C) {
			if (pb.y[t] < 0)
				ub = std::min(ub, yg);
			else
				lb = std::max(lb, yg);
		} else if (alpha[t] <= 0) {
			if (pb.y[t] > 0)
				ub = std::min(ub, yg);
			else
				lb = std::max(lb, yg);
		} else {
			n_free++;
			sum_free += yg;
		}
	}
	return n_free > 0 ? sum_free / n_free : (ub + lb) / 2;
}

// Solves the SMO problem with WSS2 working set selection (Fan, Chen and Lin 2005) until the
// maximal violating pair's gap is < tol or after max_steps updates. primal(alpha, G, rho) is
// the primal objective for the log, which gets an entry every l steps and at the end. Returns
// alpha; *rho_out gets rho.
std::vector<double> smo_solve(KernelRows &K, const SmoProblem &pb, double tol, long long max_steps,
                              CancelCheck cancel, std::vector<IterationLog> &log, double *rho_out,
                              const std::function<double(const std::vector<double> &, const std::vector<double> &,
                                                         double)> &primal)
{
	const int l = static_cast<int>(pb.y.size());
	const int n = K.size();
	std::vector<double> alpha(static_cast<size_t>(l), 0.0), G(pb.p);
	std::vector<double> Qi(static_cast<size_t>(l)), Qj(static_cast<size_t>(l));
	// row t of Q into buf
	auto get_q = [&](int t, std::vector<double> &buf) {
		const double *k = K.row(t % n);
		const double yt = pb.y[static_cast<size_t>(t)];
		for (int s = 0; s < l; s++)
			buf[static_cast<size_t>(s)] = yt * pb.y[static_cast<size_t>(s)] * k[s % n];
	};
	auto is_upper = [&](int t) { return alpha[static_cast<size_t>(t)] >= pb.C; };
	auto is_lower = [&](int t) { return alpha[static_cast<size_t>(t)] <= 0; };
	auto log_entry = [&](double gap) {
		const double rho = smo_rho(pb, alpha, G);
		log.push_back({static_cast<int>(log.size() + 1), primal(alpha, G, rho), gap, NAN});
	};
	const double QD = 1; // K(x, x) = 1 for the RBF kernel
	double gap = kInf;
	long long step = 0;
	for (; step < max_steps; step++) {
		if (step % 64 == 0)
			check_cancel(cancel);
		if (step > 0 && step % l == 0)
			log_entry(gap);
		// i: the index maximising -y_t G_t over I_up
		double g_max = -kInf, g_max2 = -kInf;
		int i = -1, j = -1;
		for (int t = 0; t < l; t++) {
			const double yg = -pb.y[static_cast<size_t>(t)] * G[static_cast<size_t>(t)];
			if ((pb.y[static_cast<size_t>(t)] > 0 ? !is_upper(t) : !is_lower(t)) && yg >= g_max) {
				g_max = yg;
				i = t;
			}
		}
		if (i < 0)
			break;
		get_q(i, Qi);
		const double yi = pb.y[static_cast<size_t>(i)];
		// j: the second-order choice in I_low
		double obj_diff_min = kInf;
		for (int t = 0; t < l; t++) {
			const double yt = pb.y[static_cast<size_t>(t)];
			const double gt = G[static_cast<size_t>(t)];
			if (yt > 0 ? is_lower(t) : is_upper(t))
				continue;
			const double yg = yt * gt; // = -(-y G) for I_low members
			g_max2 = std::max(g_max2, yg);
			const double grad_diff = g_max + yg;
			if (grad_diff > 0) {
				// Q(i,t) = yi yt K(i,t): the curvature along the pair is K_ii + K_tt - 2 K_it
				const double quad = 2 * QD - 2.0 * yi * yt * Qi[static_cast<size_t>(t)];
				const double obj_diff = -(grad_diff * grad_diff) / (quad > 0 ? quad : kTau);
				if (obj_diff <= obj_diff_min) {
					obj_diff_min = obj_diff;
					j = t;
				}
			}
		}
		gap = g_max + g_max2;
		if (gap < tol || j < 0)
			break;
		get_q(j, Qj);
		const size_t ui = static_cast<size_t>(i), uj = static_cast<size_t>(j);
		const double C = pb.C;
		const double old_i = alpha[ui], old_j = alpha[uj];
		if (pb.y[ui] != pb.y[uj]) {
			double quad = 2 * QD + 2 * Qi[uj];
			if (quad <= 0)
				quad = kTau;
			const double delta = (-G[ui] - G[uj]) / quad;
			const double diff = alpha[ui] - alpha[uj];
			alpha[ui] += delta;
			alpha[uj] += delta;
			if (diff > 0) {
				if (alpha[uj] < 0) {
					alpha[uj] = 0;
					alpha[ui] = diff;
				}
			} else if (alpha[ui] < 0) {
				alpha[ui] = 0;
				alpha[uj] = -diff;
			}
			if (diff > 0) { // C_i == C_j
				if (alpha[ui] > C) {
					alpha[ui] = C;
					alpha[uj] = C - diff;
				}
			} else if (alpha[uj] > C) {
				alpha[uj] = C;
				alpha[ui] = C + diff;
			}
		} else {
			double quad = 2 * QD - 2 * Qi[uj];
			if (quad <= 0)
				quad = kTau;
			const double delta = (G[ui] - G[uj]) / quad;
			const double sum = alpha[ui] + alpha[uj];
			alpha[ui] -= delta;
			alpha[uj] += delta;
			if (sum > C) {
				if (alpha[ui] > C) {
					alpha[ui] = C;
					alpha[uj] = sum - C;
				}
			} else if (alpha[uj] < 0) {
				alpha[uj] = 0;
				alpha[ui] = sum;
			}
			if (sum > C) {
				if (alpha[uj] > C) {
					alpha[uj] = C;
					alpha[ui] = sum - C;
				}
			} else if (alpha[ui] < 0) {
				alpha[ui] = 0;
				alpha[uj] = sum;
			}
		}
		const double di = alpha[ui] - old_i, dj = alpha[uj] - old_j;
		for (int t = 0; t < l; t++)
			G[static_cast<size_t>(t)] += Qi[static_cast<size_t>(t)] * di + Qj[static_cast<size_t>(t)] * dj;
	}
	log_entry(gap);
	*rho_out = smo_rho(pb, alpha, G);
	return alpha;
}

// ||w||^2 = a'Qa = sum_t a_t (G_t - p_t).
double smo_wnorm2(const SmoProblem &pb, const std::vector<double> &alpha, const std::vector<double> &G)
{
	double s = 0;
	for (size_t t = 0; t < alpha.size(); t++)
		s += alpha[t] * (G[t] - pb.p[t]);
	return s;
}

// The fitted SVM. Linear: decision_s(z) = W.col(s).z + b_s. RBF: decision_s(z) =
// sum_m coef(m, s) exp(-gamma ||sv_m - z||^2) + b_s (b = -rho).
class SvmModel : public Estimator {
  public:
	Kernel kernel = Kernel::Linear;
	Task task = Task::Regression;
	int n_classes = 0;
	Eigen::MatrixXd W;    // linear: p x S
	Eigen::VectorXd b;    // S
	double gamma = 0;     // rbf
	Eigen::MatrixXd sv;   // rbf: m x p
	Eigen::MatrixXd coef; // rbf: m x S

	int p() const { return kernel == Kernel::Linear ? static_cast<int>(W.rows()) : static_cast<int>(sv.cols()); }

	// Number of decision functions for a task / class count / kernel.
	static int n_problems(Task task, int K, Kernel kernel)
	{
		if (task == Task::Regression || K == 2)
			return 1;
		return kernel == Kernel::Linear ? K : K * (K - 1) / 2;
	}

	// Fills dec (S values) with the decision values of z.
	void decision(const double *z, std::vector<double> &dec) const
	{
		const Eigen::Index S = b.size();
		dec.assign(static_cast<size_t>(S), 0.0);
		if (kernel == Kernel::Linear) {
			Eigen::Map<const Eigen::VectorXd> zv(z, W.rows());
			for (Eigen::Index s = 0; s < S; s++)
				dec[static_cast<size_t>(s)] = W.col(s).dot(zv) + b(s);
			return;
		}
		Eigen::Map<const Eigen::RowVectorXd> zv(z, sv.cols());
		Eigen::VectorXd k = (-gamma * (sv.rowwise() - zv).rowwise().squaredNorm()).array().exp();
		for (Eigen::Index s = 0; s < S; s++)
			dec[static_cast<size_t>(s)] = coef.col(s).dot(k) + b(s);
	}

	// Class probabilities (or the value) of one scaled row z; returns the class.
	int predict(const double *z, double *out) const override
	{
		std::vector<double> dec;
		decision(z, dec);
		if (task == Task::Regression) {
			out[0] = dec[0];
			return 0;
		}
		const int K = n_classes;
		if (K == 2) {
			out[0] = 0;
			out[1] = dec[0];
		} else if (kernel == Kernel::Linear) {
			for (int k = 0; k < K; k++)
				out[k] = dec[static_cast<size_t>(k)];
		} else {
			// one-vs-one: votes plus confidences squashed into (-1/3, 1/3) (scikit-learn's
			// _ovr_decision_function), so ties in votes go to the more confident class
			std::vector<double> votes(static_cast<size_t>(K), 0.0), conf(static_cast<size_t>(K), 0.0);
			size_t s = 0;
			for (int a = 0; a < K; a++)
				for (int c = a + 1; c < K; c++, s++) {
					votes[static_cast<size_t>(dec[s] > 0 ? c : a)] += 1;
					conf[static_cast<size_t>(c)] += dec[s];
					conf[static_cast<size_t>(a)] -= dec[s];
				}
			for (int k = 0; k < K; k++) {
				const double ck = conf[static_cast<size_t>(k)];
				out[k] = votes[static_cast<size_t>(k)] + ck / (3 * (std::fabs(ck) + 1));
			}
		}
		int best = 0;
		for (int k = 1; k < K; k++)
			if (out[k] > out[best])
				best = k;
		softmax(out, K);
		return best;
	}

	// Versioned encoding, read back by read_svm.
	void write(Writer &w) const override
	{
		w.u16(kSvmVersion);
		w.u8(static_cast<uint8_t>(kernel));
		w.u8(static_cast<uint8_t>(task));
		w.u32(static_cast<uint32_t>(n_classes));
		w.u32(static_cast<uint32_t>(p()));
		if (kernel == Kernel::Linear) {
			w.mat(W);
		} else {
			w.f64(gamma);
			w.mat(sv);
			w.mat(coef);
		}
		w.vec(b);
	}

	// |coefficient| per feature, averaged over the decision functions (zeros for rbf).
	Eigen::VectorXd importance() const override
	{
		if (kernel == Kernel::Rbf)
			return Eigen::VectorXd::Zero(p());
		return W.cwiseAbs().rowwise().mean();
	}

	const char *importance_kind() const override { return kernel == Kernel::Linear ? "coefficient" : "not_available"; }
};

// Reads the hyperparameters.
SvmOptions read_options(const Params &params, Task task)
{
	SvmOptions o;
	o.kernel = params.choice("kernel") == "rbf" ? Kernel::Rbf : Kernel::Linear;
	const std::string &loss = params.choice("loss");
	o.l2_loss = loss == "squared_hinge" || (loss == "auto" && task == Task::Classification);
	o.C = params.num("C");
	o.gamma = params.num("gamma");
	o.epsilon = params.num("epsilon");
	o.max_iter = params.integer("max_iter");
	o.tol = params.num("tol");
	o.max_kernel_rows = params.integer("max_kernel_rows");
	return o;
}

// Fits the linear kernel: one DCD problem per decision function, solved in parallel.
void fit_linear(const FitInput &in, const SvmOptions &o, SvmModel &m)
{
	const Eigen::MatrixXd &X = *in.X;
	const Eigen::Index n = X.rows(), p = X.cols();
	check_memory(in.memory_limit,
	             memory::matrix_bytes(static_cast<double>(n), static_cast<double>(p)) +
	                 static_cast<double>(std::max(1, in.threads)) * static_cast<double>(n) * 8 * 4,
	             "the linear svm", "A transposed copy of the " + std::to_string(n) + " x " + std::to_string(p) +
	                                   " training matrix and per-row solver state.",
	             "the features, train on fewer rows (a view with TABLESAMPLE)");
	const Eigen::MatrixXd Xt = X.transpose();
	const Eigen::VectorXd sq = (X.rowwise().squaredNorm().array() + 1.0).matrix();
	const int S = SvmModel::n_problems(in.task, in.n_classes, Kernel::Linear);
	std::vector<Solution> sols(static_cast<size_t>(S));
	parallel_for(S, in.threads, [&](int s) {
		if (in.task == Task::Regression) {
			sols[0] = dcd_svr(Xt, sq, *in.y, o, mix_seed(in.seed, 0), in.cancel);
			return;
		}
		const int positive = in.n_classes == 2 ? 1 : s;
		std::vector<double> y(static_cast<size_t>(n));
		for (Eigen::Index i = 0; i < n; i++)
			y[static_cast<size_t>(i)] = static_cast<int>((*in.y)(i)) == positive ? 1.0 : -1.0;
		sols[static_cast<size_t>(s)] = dcd_svc(Xt, sq, y, o, mix_seed(in.seed, static_cast<uint64_t>(s)), in.cancel);
	});
	m.W.resize(p, S);
	m.b.resize(S);
	for (int s = 0; s < S; s++) {
		m.W.col(s) = sols[static_cast<size_t>(s)].w;
		m.b(s) = sols[static_cast<size_t>(s)].b;
	}
	merge_logs(sols, in.log);
}

// Fits the RBF kernel: epsilon-SVR, or one C-SVC per pair of classes (solved in parallel).
void fit_rbf(const FitInput &in, const SvmOptions &o, SvmModel &m)
{
	const Eigen::MatrixXd &X = *in.X;
	const Eigen::Index n = X.rows(), p = X.cols();
	if (n > o.max_kernel_rows)
		throw Error(ErrorCode::ProgramLimit, "the svm rbf kernel needs O(n^2) time and memory in the training rows",
		            "There are " + std::to_string(n) + " training rows and max_kernel_rows is " +
		                std::to_string(o.max_kernel_rows) + ".",
		            "Use kernel 'linear', or raise max_kernel_rows.");
	m.gamma = o.gamma;
	if (m.gamma == 0) { // 'scale': 1 / (p * var(X))
		const double mean = X.mean();
		const double var = n * p > 0 ? (X.array() - mean).square().mean() : 0.0;
		m.gamma = var > 0 && p > 0 ? 1.0 / (static_cast<double>(p) * var) : 1.0;
	}
	const int K = in.n_classes;
	const int S = SvmModel::n_problems(in.task, K, Kernel::Rbf);
	// the rows of each problem (all rows for regression)
	std::vector<std::vector<int>> rows(static_cast<size_t>(S));
	std::vector<std::pair<int, int>> pairs; // (negative class, positive class)
	if (in.task == Task::Regression) {
		for (Eigen::Index i = 0; i < n; i++)
			rows[0].push_back(static_cast<int>(i));
	} else {
		for (int a = 0; a < K; a++)
			for (int c = a + 1; c < K; c++)
				pairs.emplace_back(a, c);
		for (int s = 0; s < S; s++)
			for (Eigen::Index i = 0; i < n; i++) {
				const int yi = static_cast<int>((*in.y)(i));
				if (yi == pairs[static_cast<size_t>(s)].first || yi == pairs[static_cast<size_t>(s)].second)
					rows[static_cast<size_t>(s)].push_back(static_cast<int>(i));
			}
	}
	const int workers = std::max(1, std::min(in.threads, S));
	// the kernel cache holds up to n rows of n values per problem solved at once (at most
	// kKernelCacheBytes): refuse it past the memory limit before any of it is allocated
	const double rbf_bytes = memory::svm_rbf_bytes(static_cast<double>(n), static_cast<double>(p), workers,
	                                               static_cast<double>(kKernelCacheBytes));
	check_memory(in.memory_limit, rbf_bytes, "the svm rbf kernel",
	             "The kernel of " + std::to_string(n) + " training rows has " + count_text(static_cast<double>(n) * n) +
	                 " values (max_kernel_rows is " + std::to_string(o.max_kernel_rows) + "); pg_ml caches up to " +
	                 megabytes(static_cast<double>(kKernelCacheBytes)) + " of it.",
	             "max_kernel_rows and train on at most that many rows (a view with TABLESAMPLE), use kernel 'linear'");
	const size_t budget = kKernelCacheBytes / static_cast<size_t>(workers);
	std::vector<Solution> sols(static_cast<size_t>(S));
	parallel_for(S, workers, [&](int s) {
		const std::vector<int> &idx = rows[static_cast<size_t>(s)];
		const int l = static_cast<int>(idx.size());
		Solution &sol = sols[static_cast<size_t>(s)];
		sol.coef.assign(static_cast<size_t>(l), 0.0);
		Eigen::MatrixXd Xs(l, p);
		for (int i = 0; i < l; i++)
			Xs.row(i) = X.row(idx[static_cast<size_t>(i)]);
		SmoProblem pb;
		pb.C = o.C;
		if (in.task == Task::Regression) {
			pb.y.assign(static_cast<size_t>(2 * l), 1.0);
			pb.p.resize(static_cast<size_t>(2 * l));
			for (int i = 0; i < l; i++) {
				const double yi = (*in.y)(idx[static_cast<size_t>(i)]);
				pb.y[static_cast<size_t>(i + l)] = -1;
				pb.p[static_cast<size_t>(i)] = o.epsilon - yi;
				pb.p[static_cast<size_t>(i + l)] = o.epsilon + yi;
			}
		} else {
			const int positive = pairs[static_cast<size_t>(s)].second;
			int n_pos = 0;
			for (int i = 0; i < l; i++) {
				const bool pos = static_cast<int>((*in.y)(idx[static_cast<size_t>(i)])) == positive;
				n_pos += pos;
				pb.y.push_back(pos ? 1.0 : -1.0);
			}
			pb.p.assign(static_cast<size_t>(l), -1.0);
			if (n_pos == 0 || n_pos == l) { // one class only (or none): a constant decision
				check_cancel(in.cancel);
				sol.b = l == 0 ? 0.0 : n_pos > 0 ? 1.0 : -1.0;
				return;
			}
		}
		KernelRows kr(Xs, m.gamma, budget);
		// primal objective 0.5 ||w||^2 + C sum loss_i, from alpha, the gradient and rho
		auto primal = [&](const std::vector<double> &alpha, const std::vector<double> &G, double rho) {
			double loss = 0;
			for (int i = 0; i < l; i++) {
				const size_t ui = static_cast<size_t>(i);
				if (in.task == Task::Regression) {
					const double f = G[ui] - pb.p[ui] - rho; // G_i - p_i = (Qa)_i = f_i + rho
					loss += std::max(0.0, std::fabs((*in.y)(idx[ui]) - f) - o.epsilon);
				} else {
					const double f = pb.y[ui] * (G[ui] + 1) - rho; // G_i + 1 = y_i (f_i + rho)
					loss += std::max(0.0, 1 - pb.y[ui] * f);
				}
			}
			return 0.5 * smo_wnorm2(pb, alpha, G) + o.C * loss;
		};
		double rho = 0;
		const long long max_steps = static_cast<long long>(o.max_iter) * std::max<long long>(100, static_cast<long long>(pb.y.size()));
		const std::vector<double> alpha = smo_solve(kr, pb, o.tol, max_steps, in.cancel, sol.log, &rho, primal);
		sol.b = -rho;
		if (in.task == Task::Regression) {
			for (int i = 0; i < l; i++)
				sol.coef[static_cast<size_t>(i)] = alpha[static_cast<size_t>(i)] - alpha[static_cast<size_t>(i + l)];
		} else {
			for (int i = 0; i < l; i++)
				sol.coef[static_cast<size_t>(i)] = alpha[static_cast<size_t>(i)] * pb.y[static_cast<size_t>(i)];
		}
	});
	// support vectors: the rows with a non-zero coefficient in some problem
	std::vector<int> sv_of(static_cast<size_t>(n), -1);
	int m_sv = 0;
	for (int s = 0; s < S; s++)
		for (size_t i = 0; i < rows[static_cast<size_t>(s)].size(); i++)
			if (sols[static_cast<size_t>(s)].coef[i] != 0 && sv_of[static_cast<size_t>(rows[static_cast<size_t>(s)][i])] < 0)
				sv_of[static_cast<size_t>(rows[static_cast<size_t>(s)][i])] = 0;
	for (Eigen::Index i = 0; i < n; i++)
		if (sv_of[static_cast<size_t>(i)] == 0)
			sv_of[static_cast<size_t>(i)] = m_sv++;
	m.sv.resize(m_sv, p);
	m.coef = Eigen::MatrixXd::Zero(m_sv, S);
	m.b.resize(S);
	for (Eigen::Index i = 0; i < n; i++)
		if (sv_of[static_cast<size_t>(i)] >= 0)
			m.sv.row(sv_of[static_cast<size_t>(i)]) = X.row(i);
	for (int s = 0; s < S; s++) {
		const Solution &sol = sols[static_cast<size_t>(s)];
		m.b(s) = sol.b;
		for (size_t i = 0; i < rows[static_cast<size_t>(s)].size(); i++)
			if (sol.coef[i] != 0)
				m.coef(sv_of[static_cast<size_t>(rows[static_cast<size_t>(s)][i])], s) = sol.coef[i];
	}
	merge_logs(sols, in.log);
}

} // namespace

// The hyperparameters (scikit-learn's LinearSVC / LinearSVR / SVC defaults where they apply).
std::vector<ParamSpec> svm_params()
{
	return {num_param("C", PK::Float, 0, kInf, 1.0, true),
	        choice_param("kernel", "linear,rbf", "linear"),
	        choice_param("loss", "auto,hinge,squared_hinge", "auto"),
	        num_param("gamma", PK::Float, 0, kInf, 0.0),
	        num_param("epsilon", PK::Float, 0, kInf, 0.0),
	        num_param("max_iter", PK::Int, 1, 1e6, 1000),
	        num_param("tol", PK::Float, 0, kInf, 1e-4, true),
	        num_param("max_kernel_rows", PK::Int, 1, 1e7, 10000)};
}

// Fits a linear or RBF SVM on in.X (see svm.hpp).
std::unique_ptr<Estimator> fit_svm(const FitInput &in, const Params &params)
{
	if (in.X == nullptr || in.y == nullptr || in.y->size() != in.X->rows())
		throw Error(ErrorCode::Internal, "svm needs a feature matrix and a target of the same length");
	if (in.task == Task::Clustering)
		throw Error(ErrorCode::FeatureNotSupported, "svm does not do clustering");
	if (in.X->rows() == 0)
		throw Error(ErrorCode::DataException, "no rows to train on");
	if (in.task == Task::Classification && in.n_classes < 2)
		throw Error(ErrorCode::DataException, "svm classification needs at least two classes",
		            "The target has " + std::to_string(in.n_classes) + " class.");
	const SvmOptions o = read_options(params, in.task);
	auto m = std::make_unique<SvmModel>();
	m->kernel = o.kernel;
	m->task = in.task;
	m->n_classes = in.task == Task::Classification ? in.n_classes : 0;
	if (o.kernel == Kernel::Linear)
		fit_linear(in, o, *m);
	else
		fit_rbf(in, o, *m);
	return m;
}

// Reads an SvmModel written by SvmModel::write, checking it against shape.
std::unique_ptr<Estimator> read_svm(Reader &r, const EstimatorShape &shape)
{
	const uint16_t version = r.u16();
	if (version != kSvmVersion)
		corrupt("unknown sub-format version " + std::to_string(version) + ".");
	auto m = std::make_unique<SvmModel>();
	const uint8_t kernel = r.u8();
	if (kernel > static_cast<uint8_t>(Kernel::Rbf))
		corrupt("unknown kernel " + std::to_string(kernel) + ".");
	m->kernel = static_cast<Kernel>(kernel);
	const uint8_t task = r.u8();
	if (task != static_cast<uint8_t>(shape.task) || shape.task == Task::Clustering)
		corrupt("the task does not match the model's.");
	m->task = shape.task;
	const uint32_t K = r.u32();
	if (shape.task == Task::Classification ? (K != static_cast<uint32_t>(shape.n_classes) || K < 2 || K > kMaxClasses)
	                                       : K != 0)
		corrupt("the class count does not match the model's.");
	m->n_classes = static_cast<int>(K);
	const uint32_t p = r.u32();
	if (shape.p < 0 || p != static_cast<uint32_t>(shape.p))
		corrupt("the feature count does not match the model's.");
	const Eigen::Index S = SvmModel::n_problems(m->task, m->n_classes, m->kernel);
	auto finite = [](const Eigen::MatrixXd &a) { return a.size() == 0 || a.allFinite(); };
	if (m->kernel == Kernel::Linear) {
		m->W = r.mat();
		if (m->W.rows() != static_cast<Eigen::Index>(p) || m->W.cols() != S || !finite(m->W))
			corrupt("the weight matrix has the wrong shape or a non-finite value.");
	} else {
		m->gamma = r.f64();
		if (!std::isfinite(m->gamma) || m->gamma <= 0)
			corrupt("gamma is not a positive number.");
		m->sv = r.mat();
		if (m->sv.cols() != static_cast<Eigen::Index>(p) || m->sv.rows() > kMaxSupportVectors || !finite(m->sv))
			corrupt("the support vectors have the wrong shape or a non-finite value.");
		m->coef = r.mat();
		if (m->coef.rows() != m->sv.rows() || m->coef.cols() != S || !finite(m->coef))
			corrupt("the dual coefficients have the wrong shape or a non-finite value.");
	}
	m->b = r.vec();
	if (m->b.size() != S || !m->b.allFinite())
		corrupt("the intercepts have the wrong shape or a non-finite value.");
	return m;
}

} // namespace pgml
