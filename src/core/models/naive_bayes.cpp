#include "naive_bayes.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <string>

namespace pgml {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

constexpr uint16_t kSubFormat = 1;
constexpr uint32_t kMaxClasses = 1u << 20;
constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kMinAlpha = 1e-10; // sklearn 1.2 raises a smaller alpha to this (force_alpha=False)

[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

// The active level of a one-hot group in row z: the index (into feats) of its largest value,
// or -1 when no value is positive (a level not seen in training, or none).
int active_level(const std::vector<int> &feats, const double *z, Index stride)
{
	int best = -1;
	double bv = 0;
	for (size_t l = 0; l < feats.size(); l++) {
		double v = z[static_cast<Index>(feats[l]) * stride];
		if (v > bv) {
			bv = v;
			best = static_cast<int>(l);
		}
	}
	return best;
}

class NaiveBayes : public Estimator {
  public:
	NaiveBayes(int p, int K, std::vector<int> group, double var_smoothing, double alpha)
		: p_(p), K_(K), group_(std::move(group)), var_smoothing_(var_smoothing), alpha_(alpha),
		  count_(VectorXd::Zero(K)), mean_(MatrixXd::Zero(K, p)), m2_(MatrixXd::Zero(K, p)),
		  level_(MatrixXd::Zero(K, p))
	{
		std::map<int, size_t> ids;
		for (int f = 0; f < p_; f++) {
			int g = group_[static_cast<size_t>(f)];
			if (g < 0) {
				numeric_.push_back(f);
				continue;
			}
			auto it = ids.find(g);
			if (it == ids.end()) {
				it = ids.emplace(g, groups_.size()).first;
				groups_.emplace_back();
			}
			groups_[it->second].push_back(f);
		}
	}

	// Adds the rows of X (class ids y) to the statistics, merging per class means and squared
	// deviations with Chan et al.'s formula, then recomputes the tables predict uses.
	void add_rows(const MatrixXd &X, const VectorXd &y, CancelCheck cancel)
	{
		const Index n = X.rows();
		std::vector<int> cls(static_cast<size_t>(n));
		VectorXd nb = VectorXd::Zero(K_);
		for (Index i = 0; i < n; i++) {
			double v = y(i);
			if (!(v >= 0 && v < K_) || v != std::floor(v))
				throw Error(ErrorCode::Internal, "naive Bayes got a class id out of range");
			cls[static_cast<size_t>(i)] = static_cast<int>(v);
			nb(cls[static_cast<size_t>(i)]) += 1;
		}
		// batch means, then squared deviations (two passes), per class and numeric feature
		MatrixXd mb = MatrixXd::Zero(K_, p_), m2b = MatrixXd::Zero(K_, p_);
		for (int f : numeric_) {
			check_cancel(cancel);
			for (Index i = 0; i < n; i++)
				mb(cls[static_cast<size_t>(i)], f) += X(i, f);
			for (int k = 0; k < K_; k++)
				if (nb(k) > 0)
					mb(k, f) /= nb(k);
			for (Index i = 0; i < n; i++) {
				double d = X(i, f) - mb(cls[static_cast<size_t>(i)], f);
				m2b(cls[static_cast<size_t>(i)], f) += d * d;
			}
		}
		for (const auto &feats : groups_) {
			check_cancel(cancel);
			for (Index i = 0; i < n; i++) {
				int l = active_level(feats, X.data() + i, X.rows());
				if (l >= 0)
					level_(cls[static_cast<size_t>(i)], feats[static_cast<size_t>(l)]) += 1;
			}
		}
		add_stats(nb, mb, m2b, MatrixXd::Zero(K_, p_));
	}

	// Adds the statistics of more rows (per class: count, numeric means and squared
	// deviations, level counts), then recomputes the tables predict uses.
	void add_stats(const VectorXd &nb, const MatrixXd &mb, const MatrixXd &m2b, const MatrixXd &levelb)
	{
		if (nb.size() != K_ || mb.rows() != K_ || mb.cols() != p_ || m2b.rows() != K_ || m2b.cols() != p_ ||
		    levelb.rows() != K_ || levelb.cols() != p_)
			throw Error(ErrorCode::Internal, "naive Bayes statistics of the wrong shape");
		level_ += levelb;
		for (int k = 0; k < K_; k++) {
			const double na = count_(k), nbk = nb(k), nt = na + nbk;
			if (nbk == 0)
				continue;
			for (int f : numeric_) {
				if (na == 0) {
					mean_(k, f) = mb(k, f);
					m2_(k, f) = m2b(k, f);
				} else {
					double delta = mb(k, f) - mean_(k, f);
					mean_(k, f) += delta * nbk / nt;
					m2_(k, f) += m2b(k, f) + delta * delta * na * nbk / nt;
				}
			}
			count_(k) = nt;
		}
		derive();
	}

	// Computes the priors, smoothed variances and level log-probabilities from the statistics.
	void derive()
	{
		const double N = count_.sum();
		// largest (population) variance of a numeric feature over all rows, from the class statistics
		double maxvar = 0;
		for (int f : numeric_) {
			double mu = 0;
			for (int k = 0; k < K_; k++)
				mu += count_(k) * mean_(k, f);
			mu /= N;
			double m2 = 0;
			for (int k = 0; k < K_; k++)
				m2 += m2_(k, f) + count_(k) * (mean_(k, f) - mu) * (mean_(k, f) - mu);
			maxvar = std::max(maxvar, m2 / N);
		}
		// sklearn: epsilon = var_smoothing * max variance (0 when every feature is constant: use 1 then)
		epsilon_ = std::max(DBL_MIN, var_smoothing_ * (maxvar > 0 ? maxvar : 1.0));
		log_prior_.resize(K_);
		var_.setZero(K_, p_);
		log_norm_.setZero(K_);
		log_level_.setZero(K_, p_);
		const double a = std::max(alpha_, kMinAlpha);
		for (int k = 0; k < K_; k++) {
			log_prior_(k) = count_(k) > 0 ? std::log(count_(k) / N) : -INFINITY;
			double ln = 0;
			for (int f : numeric_) {
				var_(k, f) = (count_(k) > 0 ? m2_(k, f) / count_(k) : 0) + epsilon_;
				ln -= 0.5 * std::log(kTwoPi * var_(k, f));
			}
			log_norm_(k) = ln;
			for (const auto &feats : groups_) {
				double total = 0;
				for (int f : feats)
					total += level_(k, f);
				const double denom = total + a * static_cast<double>(feats.size());
				for (int f : feats)
					log_level_(k, f) = std::log((level_(k, f) + a) / denom);
			}
		}
	}

	// Joint log-likelihoods of row z (stride between features) per class.
	void joint(const double *z, Index stride, double *jll) const
	{
		std::vector<int> lv(groups_.size());
		for (size_t g = 0; g < groups_.size(); g++)
			lv[g] = active_level(groups_[g], z, stride);
		for (int k = 0; k < K_; k++) {
			if (count_(k) <= 0) {
				jll[k] = -INFINITY;
				continue;
			}
			double s = log_prior_(k) + log_norm_(k);
			for (int f : numeric_) {
				double d = z[static_cast<Index>(f) * stride] - mean_(k, f);
				s -= 0.5 * d * d / var_(k, f);
			}
			for (size_t g = 0; g < groups_.size(); g++)
				if (lv[g] >= 0)
					s += log_level_(k, groups_[g][static_cast<size_t>(lv[g])]);
			jll[k] = s;
		}
	}

	// Class probabilities (log-sum-exp of the joint log-likelihoods) into out; returns the argmax.
	int proba(const double *z, Index stride, double *out) const
	{
		joint(z, stride, out);
		int best = 0;
		for (int k = 1; k < K_; k++)
			if (out[k] > out[best])
				best = k;
		const double m = out[best];
		if (!std::isfinite(m)) { // a non-finite input: no evidence either way
			for (int k = 0; k < K_; k++)
				out[k] = 1.0 / K_;
			return 0;
		}
		double s = 0;
		for (int k = 0; k < K_; k++)
			s += out[k] = std::exp(out[k] - m);
		for (int k = 0; k < K_; k++)
			out[k] /= s;
		return best;
	}

	int predict(const double *z, double *out) const override { return proba(z, 1, out); }

	void write(Writer &w) const override
	{
		w.u16(kSubFormat);
		w.u32(static_cast<uint32_t>(p_));
		w.u32(static_cast<uint32_t>(K_));
		for (int g : group_)
			w.i64(g);
		w.f64(var_smoothing_);
		w.f64(alpha_);
		w.vec(count_);
		w.mat(mean_);
		w.mat(m2_);
		w.mat(level_);
	}

	// Numeric feature: variance of the class means (weighted by class size) over the pooled
	// within-class variance (plus epsilon). One-hot group: the same ratio summed over the level
	// indicators, given to every feature of the group.
	Eigen::VectorXd importance() const override
	{
		const double N = count_.sum();
		VectorXd imp = VectorXd::Zero(p_);
		for (int f : numeric_) {
			double mu = 0, within = 0, between = 0;
			for (int k = 0; k < K_; k++)
				mu += count_(k) * mean_(k, f) / N;
			for (int k = 0; k < K_; k++) {
				between += count_(k) * (mean_(k, f) - mu) * (mean_(k, f) - mu) / N;
				within += m2_(k, f) / N;
			}
			imp(f) = between / (within + epsilon_);
		}
		for (const auto &feats : groups_) {
			double within = 0, between = 0;
			for (int f : feats) {
				double mu = 0;
				for (int k = 0; k < K_; k++)
					mu += level_(k, f) / N;
				for (int k = 0; k < K_; k++) {
					if (count_(k) <= 0)
						continue;
					double q = std::min(1.0, level_(k, f) / count_(k));
					between += count_(k) / N * (q - mu) * (q - mu);
					within += count_(k) / N * q * (1 - q);
				}
			}
			for (int f : feats)
				imp(f) = between / (within + 1e-9);
		}
		return imp;
	}

	const char *importance_kind() const override { return "separation"; }

	bool can_continue() const override { return true; }

	// Adds the new rows to the sufficient statistics (exact; var_smoothing and alpha stay those of the fit).
	void continue_fit(const FitInput &in, const Params &) override
	{
		if (in.X == nullptr || in.y == nullptr || in.X->cols() != p_ || in.y->size() != in.X->rows())
			throw Error(ErrorCode::Internal, "naive Bayes retraining got inconsistent inputs");
		if (in.n_classes != K_)
			throw Error(ErrorCode::Internal, "naive Bayes retraining got a different number of classes");
		add_rows(*in.X, *in.y, in.cancel);
		log_training_loss(in);
	}

	// One IterationLog: the mean negative log-likelihood of the true classes of in.X.
	void log_training_loss(const FitInput &in) const
	{
		if (in.log == nullptr)
			return;
		const MatrixXd &X = *in.X;
		std::vector<double> pr(static_cast<size_t>(K_));
		double loss = 0;
		for (Index i = 0; i < X.rows(); i++) {
			if (i % 4096 == 0)
				check_cancel(in.cancel);
			proba(X.data() + i, X.rows(), pr.data());
			loss -= std::log(std::max(pr[static_cast<size_t>((*in.y)(i))], 1e-300));
		}
		in.log->push_back({1, X.rows() > 0 ? loss / static_cast<double>(X.rows()) : 0.0, NAN, NAN});
	}

	// For the reader: the statistics, then derive().
	void set_stats(VectorXd count, MatrixXd mean, MatrixXd m2, MatrixXd level)
	{
		count_ = std::move(count);
		mean_ = std::move(mean);
		m2_ = std::move(m2);
		level_ = std::move(level);
		derive();
	}

	const std::vector<std::vector<int>> &groups() const { return groups_; }

  private:
	int p_, K_;
	std::vector<int> group_;  // per feature: -1 numeric, else its one-hot group's id
	double var_smoothing_, alpha_;
	// sufficient statistics
	VectorXd count_; // K: rows per class
	MatrixXd mean_;  // K x p: per class mean of each numeric feature
	MatrixXd m2_;    // K x p: per class sum of squared deviations from mean_ (numeric features)
	MatrixXd level_; // K x p: per class rows whose active level is this (one-hot) feature
	// derived
	std::vector<int> numeric_;              // numeric features
	std::vector<std::vector<int>> groups_;  // features of each one-hot group
	double epsilon_ = 0;                    // variance added to every Gaussian variance
	VectorXd log_prior_;                    // K
	MatrixXd var_;                          // K x p smoothed variances
	VectorXd log_norm_;                     // K: -0.5 * sum_f log(2 pi var)
	MatrixXd log_level_;                    // K x p: log P(level | class) for one-hot features
};

} // namespace

std::vector<ParamSpec> naive_bayes_params()
{
	using K = ParamSpec::Kind;
	return {num_param("var_smoothing", K::Float, 0, INFINITY, 1e-9, true),
	        num_param("alpha", K::Float, 0, INFINITY, 1.0)};
}

std::unique_ptr<Estimator> fit_naive_bayes(const FitInput &in, const Params &params)
{
	if (in.X == nullptr || in.y == nullptr || in.y->size() != in.X->rows())
		throw Error(ErrorCode::Internal, "naive Bayes got inconsistent inputs");
	if (in.task != Task::Classification || in.n_classes < 2 || in.n_classes > static_cast<int>(kMaxClasses))
		throw Error(ErrorCode::Internal, "naive Bayes is for classification with at least two classes");
	const MatrixXd &X = *in.X;
	const int p = static_cast<int>(X.cols());
	if (X.rows() == 0)
		throw Error(ErrorCode::DataException, "naive Bayes needs at least one training row");
	for (Index j = 0; j < X.cols(); j++)
		if (!X.col(j).allFinite())
			throw Error(ErrorCode::DataException, "naive Bayes got a non-finite feature value");
	std::vector<int> group(static_cast<size_t>(p), -1);
	if (in.feature_group != nullptr) {
		if (in.feature_group->size() != static_cast<size_t>(p))
			throw Error(ErrorCode::Internal, "naive Bayes got a feature_group of the wrong size");
		group = *in.feature_group;
		for (int &g : group)
			g = std::max(g, -1);
	}
	auto nb = std::make_unique<NaiveBayes>(p, in.n_classes, std::move(group), params.num("var_smoothing"),
	                                       params.num("alpha"));
	check_cancel(in.cancel);
	nb->add_rows(X, *in.y, in.cancel);
	nb->log_training_loss(in);
	return nb;
}

std::unique_ptr<Estimator> naive_bayes_from_stats(int p, int n_classes, const std::vector<int> &feature_group,
                                                  const Params &params, const Eigen::VectorXd &count,
                                                  const Eigen::MatrixXd &mean, const Eigen::MatrixXd &m2,
                                                  const Eigen::MatrixXd &level)
{
	if (n_classes < 2 || n_classes > static_cast<int>(kMaxClasses) || feature_group.size() != static_cast<size_t>(p))
		throw Error(ErrorCode::Internal, "naive Bayes statistics do not match the features");
	if (!(count.sum() > 0))
		throw Error(ErrorCode::DataException, "naive Bayes needs at least one training row");
	std::vector<int> group = feature_group;
	for (int &g : group)
		g = std::max(g, -1);
	auto nb = std::make_unique<NaiveBayes>(p, n_classes, std::move(group), params.num("var_smoothing"),
	                                       params.num("alpha"));
	nb->add_stats(count, mean, m2, level);
	return nb;
}

void naive_bayes_add_stats(Estimator &est, const Eigen::VectorXd &count, const Eigen::MatrixXd &mean,
                           const Eigen::MatrixXd &m2, const Eigen::MatrixXd &level)
{
	NaiveBayes *nb = dynamic_cast<NaiveBayes *>(&est);
	if (nb == nullptr)
		throw Error(ErrorCode::Internal, "not a naive Bayes estimator");
	nb->add_stats(count, mean, m2, level);
}

int naive_bayes_active_level(const std::vector<int> &feats, const double *z)
{
	return active_level(feats, z, 1);
}

std::unique_ptr<Estimator> read_naive_bayes(Reader &r, const EstimatorShape &shape)
{
	uint16_t version = r.u16();
	if (version != kSubFormat)
		corrupt("Unknown naive Bayes sub-format " + std::to_string(version) + ".");
	if (shape.task != Task::Classification)
		corrupt("A naive Bayes model must be a classification model.");
	uint32_t p = r.u32(), K = r.u32();
	if (static_cast<int64_t>(p) != shape.p || static_cast<int64_t>(K) != shape.n_classes || K < 2 || K > kMaxClasses)
		corrupt("The naive Bayes model's shape does not match the model's.");
	std::vector<int> group(p);
	for (uint32_t f = 0; f < p; f++) {
		int64_t g = r.i64();
		if (g < -1 || g > (int64_t(1) << 30))
			corrupt("A naive Bayes feature group is invalid.");
		group[f] = static_cast<int>(g);
	}
	double vs = r.f64(), alpha = r.f64();
	if (!std::isfinite(vs) || vs <= 0 || !std::isfinite(alpha) || alpha < 0)
		corrupt("The naive Bayes smoothing parameters are invalid.");
	VectorXd count = r.vec();
	if (count.size() != static_cast<Index>(K) || !count.allFinite() || (count.array() < 0).any() ||
	    !(count.sum() > 0) || !std::isfinite(count.sum()))
		corrupt("The naive Bayes class counts are invalid.");
	MatrixXd mean = r.mat(), m2 = r.mat(), level = r.mat();
	for (const MatrixXd *m : {&mean, &m2, &level})
		if (m->rows() != static_cast<Index>(K) || m->cols() != static_cast<Index>(p) || !m->allFinite())
			corrupt("A naive Bayes statistics table does not match the declared shape or is not finite.");
	if ((m2.array() < 0).any() || (level.array() < 0).any())
		corrupt("The naive Bayes statistics are negative.");
	auto nb = std::make_unique<NaiveBayes>(static_cast<int>(p), static_cast<int>(K), std::move(group), vs, alpha);
	nb->set_stats(std::move(count), std::move(mean), std::move(m2), std::move(level));
	return nb;
}

} // namespace pgml
