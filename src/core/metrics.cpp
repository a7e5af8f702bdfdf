// pg_ml core: evaluation metrics. Definitions follow scikit-learn 1.2
// (r2_score, mean_squared_error, mean_absolute_error, accuracy_score,
// precision/recall/f1 with average='macro', zero_division=0 and labels=all K
// classes, roc_auc_score, log_loss).
#include "metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common.hpp"
#include "json.hpp"

namespace pgml {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Clipping bound of log_loss (sklearn's historical eps=1e-15).
constexpr double kLogLossEps = 1e-15;

// AUC of scores against 0/1 labels via the Mann-Whitney statistic with tied
// scores given their average rank (identical to sklearn's trapezoidal ROC AUC).
// NaN when there are no positives or no negatives, or a score is NaN (it has no rank).
double binary_auc(std::vector<std::pair<double, bool>> &scored)
{
	const size_t n = scored.size();
	size_t npos = 0;
	for (const auto &s : scored) {
		if (std::isnan(s.first))
			return kNaN;
		npos += s.second ? 1 : 0;
	}
	const size_t nneg = n - npos;
	if (npos == 0 || nneg == 0)
		return kNaN;
	std::sort(scored.begin(), scored.end(),
	          [](const std::pair<double, bool> &a, const std::pair<double, bool> &b) { return a.first < b.first; });
	double rank_sum = 0; // sum of the (1-based, tie-averaged) ranks of the positives
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		size_t pos_in_group = 0;
		while (j < n && scored[j].first == scored[i].first) {
			pos_in_group += scored[j].second ? 1 : 0;
			++j;
		}
		// ranks i+1 .. j share the average rank (i+1+j)/2
		const double avg_rank = (static_cast<double>(i) + 1.0 + static_cast<double>(j)) / 2.0;
		rank_sum += avg_rank * static_cast<double>(pos_in_group);
		i = j;
	}
	const double p = static_cast<double>(npos), q = static_cast<double>(nneg);
	return (rank_sum - p * (p + 1.0) / 2.0) / (p * q);
}

// a / b, or 0 when b == 0 (sklearn zero_division=0).
double safe_div(double a, double b)
{
	return b == 0 ? 0.0 : a / b;
}

} // namespace

// ---------------------------------------------------------------------------
// RegressionMetrics

// Records one (truth, prediction) pair.
void RegressionMetrics::add(double y, double yhat)
{
	++n_;
	const double delta = y - mean_y_;
	mean_y_ += delta / static_cast<double>(n_);
	m2_y_ += delta * (y - mean_y_);
	const double e = y - yhat;
	sse_ += e * e;
	sae_ += std::fabs(e);
}

// Combines another accumulator into this one (Chan et al. parallel variance).
void RegressionMetrics::merge(const RegressionMetrics &other)
{
	if (other.n_ == 0)
		return;
	if (n_ == 0) {
		*this = other;
		return;
	}
	const double na = static_cast<double>(n_), nb = static_cast<double>(other.n_);
	const double n = na + nb;
	const double delta = other.mean_y_ - mean_y_;
	mean_y_ += delta * nb / n;
	m2_y_ += other.m2_y_ + delta * delta * na * nb / n;
	sse_ += other.sse_;
	sae_ += other.sae_;
	n_ += other.n_;
}

// Mean squared error; NaN when empty.
double RegressionMetrics::mse() const
{
	return n_ == 0 ? kNaN : sse_ / static_cast<double>(n_);
}

// Root mean squared error; NaN when empty.
double RegressionMetrics::rmse() const
{
	return std::sqrt(mse());
}

// Mean absolute error; NaN when empty.
double RegressionMetrics::mae() const
{
	return n_ == 0 ? kNaN : sae_ / static_cast<double>(n_);
}

// Coefficient of determination as sklearn's r2_score (force_finite=True):
// NaN with fewer than two rows; constant truth gives 1 if perfect else 0.
double RegressionMetrics::r2() const
{
	if (n_ < 2)
		return kNaN;
	if (m2_y_ == 0)
		return sse_ == 0 ? 1.0 : 0.0;
	return 1.0 - sse_ / m2_y_;
}

// {"r2":..,"rmse":..,"mse":..,"mae":..,"rows":n}
std::string RegressionMetrics::to_json() const
{
	JsonWriter w;
	w.begin_object();
	w.key("r2").value(r2());
	w.key("rmse").value(rmse());
	w.key("mse").value(mse());
	w.key("mae").value(mae());
	w.key("rows").value(static_cast<long long>(n_));
	w.end_object();
	return w.str();
}

// ---------------------------------------------------------------------------
// ClassificationMetrics

// Sets up an empty K x K confusion matrix for the given class names.
ClassificationMetrics::ClassificationMetrics(std::vector<std::string> class_names)
	: names_(std::move(class_names))
{
	if (names_.empty())
		throw Error(ErrorCode::Internal, "classification metrics need at least one class");
	const Eigen::Index k = static_cast<Eigen::Index>(names_.size());
	confusion_ = Eigen::MatrixXd::Zero(k, k);
}

// Records one row: true class, predicted class and (optionally) its probability vector.
void ClassificationMetrics::add(int truth, int predicted, const double *proba)
{
	const int k = static_cast<int>(names_.size());
	if (truth < 0 || truth >= k || predicted < 0 || predicted >= k)
		throw Error(ErrorCode::Internal, "class id out of range in classification metrics");
	confusion_(truth, predicted) += 1.0;
	++n_;
	if (proba == nullptr) {
		if (have_proba_) {
			have_proba_ = false;
			truth_.clear();
			truth_.shrink_to_fit();
			proba_.clear();
			proba_.shrink_to_fit();
		}
		return;
	}
	if (!have_proba_)
		return;
	truth_.push_back(truth);
	proba_.insert(proba_.end(), proba, proba + k);
}

// Fraction of rows whose predicted class is the true class; NaN when empty.
double ClassificationMetrics::accuracy() const
{
	if (n_ == 0)
		return kNaN;
	return confusion_.trace() / static_cast<double>(n_);
}

// Unweighted mean over all K classes of tp / (tp + fp), 0 for never-predicted classes.
double ClassificationMetrics::precision_macro() const
{
	if (n_ == 0)
		return kNaN;
	const Eigen::VectorXd predicted = confusion_.colwise().sum().transpose();
	double sum = 0;
	for (Eigen::Index c = 0; c < confusion_.rows(); ++c)
		sum += safe_div(confusion_(c, c), predicted(c));
	return sum / static_cast<double>(confusion_.rows());
}

// Unweighted mean over all K classes of tp / (tp + fn), 0 for classes absent from the truth.
double ClassificationMetrics::recall_macro() const
{
	if (n_ == 0)
		return kNaN;
	const Eigen::VectorXd actual = confusion_.rowwise().sum();
	double sum = 0;
	for (Eigen::Index c = 0; c < confusion_.rows(); ++c)
		sum += safe_div(confusion_(c, c), actual(c));
	return sum / static_cast<double>(confusion_.rows());
}

// Unweighted mean over all K classes of the per-class F1 (0 when precision + recall == 0).
double ClassificationMetrics::f1_macro() const
{
	if (n_ == 0)
		return kNaN;
	const Eigen::VectorXd predicted = confusion_.colwise().sum().transpose();
	const Eigen::VectorXd actual = confusion_.rowwise().sum();
	double sum = 0;
	for (Eigen::Index c = 0; c < confusion_.rows(); ++c) {
		const double p = safe_div(confusion_(c, c), predicted(c));
		const double r = safe_div(confusion_(c, c), actual(c));
		sum += safe_div(2.0 * p * r, p + r);
	}
	return sum / static_cast<double>(confusion_.rows());
}

// Mean cross-entropy as sklearn's log_loss(labels=0..K-1, eps=1e-15): each
// probability clipped to [eps, 1-eps], the row renormalised, then -log(p_true).
// NaN when probabilities were not supplied for every row, when empty or K < 2.
double ClassificationMetrics::log_loss() const
{
	const size_t k = names_.size();
	if (!have_proba_ || n_ == 0 || k < 2)
		return kNaN;
	double total = 0;
	for (size_t i = 0; i < truth_.size(); ++i) {
		const double *row = &proba_[i * k];
		double row_sum = 0;
		for (size_t c = 0; c < k; ++c)
			row_sum += std::clamp(row[c], kLogLossEps, 1.0 - kLogLossEps);
		const double p_true = std::clamp(row[truth_[i]], kLogLossEps, 1.0 - kLogLossEps) / row_sum;
		total -= std::log(p_true);
	}
	return total / static_cast<double>(truth_.size());
}

// ROC AUC. K == 2: AUC of class 1's probability. K > 2: macro average of the
// one-vs-rest AUCs over the classes present in the truth (sklearn multi_class='ovr'
// when every class is present). NaN without probabilities or with fewer than two
// classes present in the truth.
double ClassificationMetrics::roc_auc() const
{
	const size_t k = names_.size();
	if (!have_proba_ || n_ == 0 || k < 2)
		return kNaN;
	const size_t n = truth_.size();
	std::vector<std::pair<double, bool>> scored(n);
	if (k == 2) {
		for (size_t i = 0; i < n; ++i)
			scored[i] = {proba_[i * k + 1], truth_[i] == 1};
		return binary_auc(scored);
	}
	const Eigen::VectorXd actual = confusion_.rowwise().sum();
	double sum = 0;
	int present = 0;
	for (size_t c = 0; c < k; ++c) {
		if (actual(static_cast<Eigen::Index>(c)) == 0)
			continue;
		for (size_t i = 0; i < n; ++i)
			scored[i] = {proba_[i * k + c], truth_[i] == static_cast<int>(c)};
		const double auc = binary_auc(scored);
		if (std::isnan(auc))
			return kNaN; // the only class present: no negatives
		sum += auc;
		++present;
	}
	return present == 0 ? kNaN : sum / present;
}

// Full JSON report; roc_auc / log_loss are left out when not defined.
std::string ClassificationMetrics::to_json() const
{
	return classification_json(names_, confusion_, n_, roc_auc(), log_loss());
}

std::string classification_json(const std::vector<std::string> &names, const Eigen::MatrixXd &confusion, int64_t n,
                                double auc, double ll, int64_t roc_auc_sample_rows)
{
	const Eigen::Index k = confusion.rows();
	const Eigen::VectorXd predicted = confusion.colwise().sum().transpose();
	const Eigen::VectorXd actual = confusion.rowwise().sum();
	const double nd = static_cast<double>(n);
	double acc = kNaN, prec = kNaN, rec = kNaN, f1 = kNaN;
	if (n > 0) {
		acc = confusion.trace() / nd;
		prec = rec = f1 = 0;
		for (Eigen::Index c = 0; c < k; ++c) {
			const double p = safe_div(confusion(c, c), predicted(c));
			const double r = safe_div(confusion(c, c), actual(c));
			prec += p;
			rec += r;
			f1 += safe_div(2.0 * p * r, p + r);
		}
		prec /= static_cast<double>(k);
		rec /= static_cast<double>(k);
		f1 /= static_cast<double>(k);
	}

	JsonWriter w;
	w.begin_object();
	w.key("accuracy").value(acc);
	w.key("precision").value(prec);
	w.key("recall").value(rec);
	w.key("f1").value(f1);
	if (!std::isnan(auc)) {
		w.key("roc_auc").value(auc);
		if (roc_auc_sample_rows >= 0)
			w.key("roc_auc_sample_rows").value(static_cast<long long>(roc_auc_sample_rows));
	}
	if (!std::isnan(ll))
		w.key("log_loss").value(ll);

	w.key("per_class").begin_object();
	for (Eigen::Index c = 0; c < k; ++c) {
		const double p = safe_div(confusion(c, c), predicted(c));
		const double r = safe_div(confusion(c, c), actual(c));
		w.key(names[static_cast<size_t>(c)]).begin_object();
		w.key("precision").value(p);
		w.key("recall").value(r);
		w.key("f1").value(safe_div(2.0 * p * r, p + r));
		w.key("support").value(static_cast<long long>(actual(c)));
		w.end_object();
	}
	w.end_object();

	w.key("confusion_matrix").begin_array();
	for (Eigen::Index r = 0; r < k; ++r) {
		w.begin_array();
		for (Eigen::Index c = 0; c < k; ++c)
			w.value(static_cast<long long>(confusion(r, c)));
		w.end_array();
	}
	w.end_array();

	w.key("classes").begin_array();
	for (const auto &name : names)
		w.value(name);
	w.end_array();

	w.key("rows").value(static_cast<long long>(n));
	w.end_object();
	return w.str();
}

} // namespace pgml
