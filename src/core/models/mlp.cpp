#include "mlp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "limits.hpp"

namespace pgml {

namespace {

// Sub-format versions: 1 = regression fitted on the raw target; 2 = adds the target's mean and
// scale after the epoch count (regression fits (y - mean) / scale and unscales its output).
constexpr uint16_t kMlpVersion = 2;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxHiddenLayers = 100;
constexpr int kMaxHiddenUnits = 100000;
constexpr double kMaxWeights = 5e7; // 400 MB of weights, and as much again for Adam's moments
constexpr uint32_t kMaxClasses = 1u << 16;

using PK = ParamSpec::Kind;

// Throws the DataCorrupted error of a malformed svm/mlp section.
[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "mlp: " + detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

// Output units: K for softmax (K > 2), else 1 (logistic unit or identity).
int n_outputs(Task task, int K) { return task == Task::Classification && K > 2 ? K : 1; }

// A uniform double in [0, 1) (portable: no std distribution).
double uniform01(std::mt19937_64 &gen) { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }

// Logistic function without overflow.
double sigmoid(double z)
{
	if (z >= 0)
		return 1 / (1 + std::exp(-z));
	const double e = std::exp(z);
	return e / (1 + e);
}

// Applies the output function to each row of Z.
void output_activation(Task task, int K, Eigen::MatrixXd &Z)
{
	if (task != Task::Classification)
		return;
	if (K == 2) {
		Z = Z.unaryExpr([](double v) { return sigmoid(v); });
		return;
	}
	for (Eigen::Index i = 0; i < Z.rows(); i++) {
		const double mx = Z.row(i).maxCoeff();
		Z.row(i) = (Z.row(i).array() - mx).exp();
		Z.row(i) /= Z.row(i).sum();
	}
}

// Forward pass of the rows of X: acts[0] = X, acts[l + 1] = output of layer l.
void forward(const MlpWeights &net, bool tanh_act, Task task, int K, const Eigen::MatrixXd &X,
             std::vector<Eigen::MatrixXd> &acts)
{
	const size_t L = net.W.size();
	acts.resize(L + 1);
	acts[0] = X;
	for (size_t l = 0; l < L; l++) {
		Eigen::MatrixXd &Z = acts[l + 1];
		Z.noalias() = acts[l] * net.W[l];
		Z.rowwise() += net.b[l].transpose();
		if (l + 1 < L) {
			if (tanh_act)
				Z = Z.array().tanh().matrix();
			else
				Z = Z.cwiseMax(0.0);
		} else {
			output_activation(task, K, Z);
		}
	}
}

// Loss of the forward pass in acts against y (penalty included) and, if grad is not null, its
// gradient by backpropagation (scikit-learn's _backprop).
double loss_backprop(const MlpWeights &net, bool tanh_act, Task task, int K, double alpha,
                     const std::vector<Eigen::MatrixXd> &acts, const Eigen::VectorXd &y, MlpWeights *grad)
{
	const size_t L = net.W.size();
	const Eigen::MatrixXd &out = acts[L];
	const Eigen::Index m = out.rows();
	const double md = static_cast<double>(m);
	constexpr double eps = std::numeric_limits<double>::epsilon(); // probabilities clipped as log_loss does
	double loss = 0;
	for (Eigen::Index i = 0; i < m; i++) {
		if (task != Task::Classification) {
			const double r = out(i, 0) - y(i);
			loss += 0.5 * r * r;
		} else if (K == 2) {
			const double p = std::min(std::max(out(i, 0), eps), 1 - eps);
			loss -= y(i) > 0.5 ? std::log(p) : std::log(1 - p);
		} else {
			const double p = std::min(std::max(out(i, static_cast<Eigen::Index>(y(i))), eps), 1 - eps);
			loss -= std::log(p);
		}
	}
	double w2 = 0;
	for (const Eigen::MatrixXd &W : net.W)
		w2 += W.squaredNorm();
	loss = loss / md + 0.5 * alpha * w2 / md;
	if (grad == nullptr)
		return loss;
	// output delta: prediction - target for all three output/loss pairs
	Eigen::MatrixXd delta = out;
	for (Eigen::Index i = 0; i < m; i++) {
		if (task == Task::Classification && K > 2)
			delta(i, static_cast<Eigen::Index>(y(i))) -= 1;
		else
			delta(i, 0) -= y(i);
	}
	grad->W.resize(L);
	grad->b.resize(L);
	for (size_t l = L; l-- > 0;) {
		grad->W[l].noalias() = acts[l].transpose() * delta;
		grad->W[l] += alpha * net.W[l];
		grad->W[l] /= md;
		grad->b[l] = delta.colwise().sum().transpose() / md;
		if (l > 0) {
			Eigen::MatrixXd back = delta * net.W[l].transpose();
			if (tanh_act)
				delta = back.array() * (1 - acts[l].array().square());
			else
				delta = back.array() * (acts[l].array() > 0).cast<double>();
		}
	}
	return loss;
}

// Adam (scikit-learn's AdamOptimizer), one moment pair per parameter.
struct Adam {
	double lr, beta1, beta2, eps;
	long long t = 0;
	MlpWeights m, v;

	Adam(const MlpWeights &net, double lr_, double b1, double b2, double e) : lr(lr_), beta1(b1), beta2(b2), eps(e)
	{
		for (size_t l = 0; l < net.W.size(); l++) {
			m.W.push_back(Eigen::MatrixXd::Zero(net.W[l].rows(), net.W[l].cols()));
			m.b.push_back(Eigen::VectorXd::Zero(net.b[l].size()));
		}
		v = m;
	}

	// One step against the gradient g.
	void step(MlpWeights &net, const MlpWeights &g)
	{
		t++;
		const double lr_t = lr * std::sqrt(1 - std::pow(beta2, static_cast<double>(t))) /
		                    (1 - std::pow(beta1, static_cast<double>(t)));
		auto update = [&](auto &param, auto &mom, auto &vel, const auto &gr) {
			mom = beta1 * mom + (1 - beta1) * gr;
			vel = beta2 * vel + (1 - beta2) * gr.cwiseProduct(gr);
			param.array() -= lr_t * mom.array() / (vel.array().sqrt() + eps);
		};
		for (size_t l = 0; l < net.W.size(); l++) {
			update(net.W[l], m.W[l], v.W[l], g.W[l]);
			update(net.b[l], m.b[l], v.b[l], g.b[l]);
		}
	}
};

// The training hyperparameters, read once.
struct TrainOptions {
	double learning_rate, beta1, beta2, epsilon, alpha, tol, validation_fraction;
	int batch_size, max_iter, n_iter_no_change;
	bool early_stopping;
};

// Reads the training hyperparameters.
TrainOptions read_train_options(const Params &p)
{
	TrainOptions o;
	o.learning_rate = p.num("learning_rate");
	o.beta1 = p.num("beta1");
	o.beta2 = p.num("beta2");
	o.epsilon = p.num("epsilon");
	o.alpha = p.num("alpha");
	o.tol = p.num("tol");
	o.validation_fraction = p.num("validation_fraction");
	o.batch_size = p.integer("batch_size");
	o.max_iter = p.integer("max_iter");
	o.n_iter_no_change = p.integer("n_iter_no_change");
	o.early_stopping = p.flag("early_stopping");
	return o;
}

// Rows of a matrix picked by index (idx[from..to)).
Eigen::MatrixXd take_rows(const Eigen::MatrixXd &X, const std::vector<int> &idx, size_t from, size_t to)
{
	Eigen::MatrixXd out(static_cast<Eigen::Index>(to - from), X.cols());
	for (size_t k = from; k < to; k++)
		out.row(static_cast<Eigen::Index>(k - from)) = X.row(idx[k]);
	return out;
}

// Entries of a vector picked by index.
Eigen::VectorXd take(const Eigen::VectorXd &y, const std::vector<int> &idx, size_t from, size_t to)
{
	Eigen::VectorXd out(static_cast<Eigen::Index>(to - from));
	for (size_t k = from; k < to; k++)
		out(static_cast<Eigen::Index>(k - from)) = y(idx[k]);
	return out;
}

// The fitted network.
class MlpModel : public Estimator {
  public:
	Task task = Task::Regression;
	int n_classes = 0;
	bool tanh_act = false;
	int hidden_units = 0; // as fitted (0 when there is no hidden layer)
	uint64_t epochs = 0;  // epochs trained so far, over every fit
	uint16_t version = kMlpVersion; // a model read from an older blob keeps its version
	// regression: the network predicts (y - y_mean) / y_scale (version 1: 0 and 1, the raw target)
	double y_mean = 0, y_scale = 1;
	MlpWeights net;

	int p() const { return static_cast<int>(net.W.front().rows()); }
	int hidden_layers() const { return static_cast<int>(net.W.size()) - 1; }

	// Glorot-uniform weights and biases for p inputs (scikit-learn's _init_coef, factor 6).
	void init(int p, int layers, int units, std::mt19937_64 &gen)
	{
		hidden_units = layers > 0 ? units : 0;
		net.W.clear();
		net.b.clear();
		int fan_in = p;
		for (int l = 0; l <= layers; l++) {
			const int fan_out = l < layers ? units : n_outputs(task, n_classes);
			const double bound = std::sqrt(6.0 / (fan_in + fan_out));
			Eigen::MatrixXd W(fan_in, fan_out);
			Eigen::VectorXd b(fan_out);
			// row-major draw order, as numpy fills a (fan_in, fan_out) array
			for (int i = 0; i < fan_in; i++)
				for (int j = 0; j < fan_out; j++)
					W(i, j) = (2 * uniform01(gen) - 1) * bound;
			for (int j = 0; j < fan_out; j++)
				b(j) = (2 * uniform01(gen) - 1) * bound;
			net.W.push_back(std::move(W));
			net.b.push_back(std::move(b));
			fan_in = fan_out;
		}
	}

	// Validation score: accuracy, or R^2 for regression.
	double score(const Eigen::MatrixXd &X, const Eigen::VectorXd &y) const
	{
		std::vector<Eigen::MatrixXd> acts;
		forward(net, tanh_act, task, n_classes, X, acts);
		const Eigen::MatrixXd &out = acts.back();
		const Eigen::Index n = X.rows();
		if (task == Task::Classification) {
			double hits = 0;
			for (Eigen::Index i = 0; i < n; i++) {
				int c;
				if (n_classes == 2) {
					c = out(i, 0) > 0.5 ? 1 : 0;
				} else {
					Eigen::Index k;
					out.row(i).maxCoeff(&k);
					c = static_cast<int>(k);
				}
				hits += c == static_cast<int>(y(i));
			}
			return hits / static_cast<double>(n);
		}
		const double mean = y.mean();
		const double ss_res = (out.col(0) - y).squaredNorm(), ss_tot = (y.array() - mean).square().sum();
		return ss_tot > 0 ? 1 - ss_res / ss_tot : (ss_res == 0 ? 1.0 : 0.0);
	}

	// Trains up to o.max_iter epochs from the current weights on in's rows (see mlp.hpp).
	void train(const FitInput &in, const TrainOptions &o, std::mt19937_64 &gen)
	{
		const Eigen::MatrixXd &X = *in.X;
		Eigen::VectorXd y_scaled;
		if (task == Task::Regression && (y_mean != 0 || y_scale != 1))
			y_scaled = (in.y->array() - y_mean) / y_scale;
		const Eigen::VectorXd &y = y_scaled.size() > 0 ? y_scaled : *in.y;
		const int n_all = static_cast<int>(X.rows());
		// training / validation rows
		std::vector<int> train_idx, valid_idx;
		Eigen::MatrixXd Xv;
		Eigen::VectorXd yv;
		const bool external = o.early_stopping && in.X_valid != nullptr && in.y_valid != nullptr &&
		                      in.X_valid->rows() > 0 && in.X_valid->cols() == X.cols() &&
		                      in.y_valid->size() == in.X_valid->rows();
		if (o.early_stopping && !external) {
			std::vector<int> order(static_cast<size_t>(n_all));
			for (int i = 0; i < n_all; i++)
				order[static_cast<size_t>(i)] = i;
			for (int i = n_all - 1; i > 0; i--)
				std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(gen() % static_cast<uint64_t>(i + 1))]);
			// stratified for classification: each class gives round(fraction * its rows)
			const int groups = task == Task::Classification ? n_classes : 1;
			std::vector<int> count(static_cast<size_t>(groups), 0), quota(static_cast<size_t>(groups), 0);
			auto group = [&](int i) { return task == Task::Classification ? static_cast<int>(y(i)) : 0; };
			for (int i = 0; i < n_all; i++)
				count[static_cast<size_t>(group(i))]++;
			int total = 0;
			for (int g = 0; g < groups; g++) {
				quota[static_cast<size_t>(g)] = static_cast<int>(std::lround(o.validation_fraction * count[static_cast<size_t>(g)]));
				total += quota[static_cast<size_t>(g)];
			}
			if (task != Task::Classification)
				quota[0] = total = static_cast<int>(std::ceil(o.validation_fraction * n_all));
			if (total < 1 || total >= n_all)
				throw Error(ErrorCode::DataException, "too few rows for early stopping",
				            "Holding out validation_fraction of " + std::to_string(n_all) +
				                " rows leaves no validation or no training rows.",
				            "Set early_stopping to false, or change validation_fraction.");
			for (int i : order) {
				int &q = quota[static_cast<size_t>(group(i))];
				if (q > 0) {
					valid_idx.push_back(i);
					q--;
				} else {
					train_idx.push_back(i);
				}
			}
			std::sort(train_idx.begin(), train_idx.end());
			Xv = take_rows(X, valid_idx, 0, valid_idx.size());
			yv = take(y, valid_idx, 0, valid_idx.size());
		} else {
			for (int i = 0; i < n_all; i++)
				train_idx.push_back(i);
			if (external) {
				Xv = *in.X_valid;
				yv = *in.y_valid;
				if (task == Task::Regression)
					yv = (yv.array() - y_mean) / y_scale;
			}
		}
		const size_t n = train_idx.size();
		const size_t batch = std::min(n, static_cast<size_t>(o.batch_size));
		Adam adam(net, o.learning_rate, o.beta1, o.beta2, o.epsilon);
		MlpWeights grad, best = net;
		std::vector<Eigen::MatrixXd> acts;
		double best_loss = kInf, best_score = -kInf;
		int no_improvement = 0;
		for (int it = 0; it < o.max_iter; it++) {
			check_cancel(in.cancel);
			for (size_t i = n; i > 1; i--)
				std::swap(train_idx[i - 1], train_idx[static_cast<size_t>(gen() % static_cast<uint64_t>(i))]);
			double total = 0;
			for (size_t from = 0; from < n; from += batch) {
				check_cancel(in.cancel);
				const size_t to = std::min(n, from + batch);
				Eigen::MatrixXd Xb = take_rows(X, train_idx, from, to);
				Eigen::VectorXd yb = take(y, train_idx, from, to);
				forward(net, tanh_act, task, n_classes, Xb, acts);
				total += loss_backprop(net, tanh_act, task, n_classes, o.alpha, acts, yb, &grad) *
				         static_cast<double>(to - from);
				adam.step(net, grad);
			}
			const double loss = total / static_cast<double>(n);
			if (!std::isfinite(loss))
				throw Error(ErrorCode::DataException, "mlp training diverged",
				            "The training loss became " + std::to_string(loss) + " at epoch " +
				                std::to_string(epochs + 1) + ".",
				            "Lower learning_rate.");
			epochs++;
			// scikit-learn's _update_no_improvement_count
			double valid = NAN;
			if (o.early_stopping) {
				valid = score(Xv, yv);
				no_improvement = valid < best_score + o.tol ? no_improvement + 1 : 0;
				if (valid > best_score) {
					best_score = valid;
					best = net;
				}
			} else {
				no_improvement = loss > best_loss - o.tol ? no_improvement + 1 : 0;
				best_loss = std::min(best_loss, loss);
			}
			if (in.log != nullptr)
				in.log->push_back({static_cast<int>(epochs), loss, NAN, valid});
			report_iteration(in.progress, static_cast<int>(epochs), "loss", loss);
			if (no_improvement > o.n_iter_no_change)
				break;
		}
		if (o.early_stopping)
			net = best;
	}

	// Class probabilities (or the value) of one scaled row z; returns the class.
	int predict(const double *z, double *out) const override
	{
		Eigen::RowVectorXd a = Eigen::Map<const Eigen::RowVectorXd>(z, p());
		const size_t L = net.W.size();
		for (size_t l = 0; l < L; l++) {
			Eigen::RowVectorXd next = a * net.W[l] + net.b[l].transpose();
			if (l + 1 < L)
				a = tanh_act ? Eigen::RowVectorXd(next.array().tanh()) : Eigen::RowVectorXd(next.cwiseMax(0.0));
			else
				a = next;
		}
		if (task != Task::Classification) {
			out[0] = a(0) * y_scale + y_mean;
			return 0;
		}
		if (n_classes == 2) {
			const double p1 = sigmoid(a(0));
			out[0] = 1 - p1;
			out[1] = p1;
			return p1 > 0.5 ? 1 : 0;
		}
		const double mx = a.maxCoeff();
		double sum = 0;
		int best = 0;
		for (int k = 0; k < n_classes; k++) {
			out[k] = std::exp(a(k) - mx);
			sum += out[k];
			if (a(k) > a(best))
				best = k;
		}
		for (int k = 0; k < n_classes; k++)
			out[k] /= sum;
		return best;
	}

	// Versioned encoding, read back by read_mlp.
	void write(Writer &w) const override
	{
		w.u16(version);
		w.u8(static_cast<uint8_t>(task));
		w.u32(static_cast<uint32_t>(n_classes));
		w.u8(tanh_act ? 1 : 0);
		w.u32(static_cast<uint32_t>(p()));
		w.u32(static_cast<uint32_t>(hidden_layers()));
		w.u32(static_cast<uint32_t>(hidden_units));
		w.u64(epochs);
		if (version >= 2) {
			w.f64(y_mean);
			w.f64(y_scale);
		}
		for (size_t l = 0; l < net.W.size(); l++) {
			w.mat(net.W[l]);
			w.vec(net.b[l]);
		}
	}

	// Mean |weight| of each input's connections to the first layer.
	Eigen::VectorXd importance() const override { return net.W.front().cwiseAbs().rowwise().mean(); }
	const char *importance_kind() const override { return "weight"; }

	bool can_continue() const override { return true; }

	// Warm start: max_iter more epochs on in's rows from the current weights.
	void continue_fit(const FitInput &in, const Params &params) override
	{
		if (in.X == nullptr || in.y == nullptr || in.y->size() != in.X->rows())
			throw Error(ErrorCode::Internal, "mlp needs a feature matrix and a target of the same length");
		if (in.task != task || in.X->cols() != p() || (task == Task::Classification && in.n_classes != n_classes))
			throw Error(ErrorCode::Internal, "the new rows do not have the shape of the model's");
		const int layers = params.integer("hidden_layers");
		const bool same = layers == hidden_layers() && (layers == 0 || params.integer("hidden_units") == hidden_units) &&
		                  (params.choice("activation") == "tanh") == tanh_act;
		if (!same)
			throw Error(ErrorCode::InvalidParameter, "an incremental mlp retrain cannot change the network",
			            "hidden_layers, hidden_units and activation must stay as the model was trained.",
			            "Use mode => 'refit' to train a different network.");
		if (in.X->rows() == 0)
			return;
		// a new random stream per continuation, still determined by the seed
		std::mt19937_64 gen(in.seed ^ (0x9E3779B97F4A7C15ull * (epochs + 1)));
		train(in, read_train_options(params), gen);
	}
};

} // namespace

// The hyperparameters (scikit-learn's MLPClassifier / MLPRegressor defaults, solver 'adam').
std::vector<ParamSpec> mlp_params()
{
	return {num_param("hidden_layers", PK::Int, 0, kMaxHiddenLayers, 1),
	        num_param("hidden_units", PK::Int, 1, kMaxHiddenUnits, 100),
	        choice_param("activation", "relu,tanh", "relu"),
	        num_param("learning_rate", PK::Float, 0, kInf, 0.001, true),
	        num_param("beta1", PK::Float, 0, 0.999999, 0.9),
	        num_param("beta2", PK::Float, 0, 0.999999, 0.999),
	        num_param("epsilon", PK::Float, 0, kInf, 1e-8, true),
	        num_param("batch_size", PK::Int, 1, 1e6, 200),
	        num_param("max_iter", PK::Int, 1, 1e6, 200),
	        num_param("alpha", PK::Float, 0, kInf, 1e-4),
	        num_param("tol", PK::Float, 0, kInf, 1e-4),
	        num_param("n_iter_no_change", PK::Int, 1, 1e6, 10),
	        num_param("early_stopping", PK::Bool, 0, 1, 0),
	        num_param("validation_fraction", PK::Float, 0, 0.9, 0.1, true)};
}

// Fits a network on in.X (see mlp.hpp).
std::unique_ptr<Estimator> fit_mlp(const FitInput &in, const Params &params)
{
	if (in.X == nullptr || in.y == nullptr || in.y->size() != in.X->rows())
		throw Error(ErrorCode::Internal, "mlp needs a feature matrix and a target of the same length");
	if (in.task == Task::Clustering)
		throw Error(ErrorCode::FeatureNotSupported, "mlp does not do clustering");
	if (in.X->rows() == 0)
		throw Error(ErrorCode::DataException, "no rows to train on");
	if (in.task == Task::Classification && in.n_classes < 2)
		throw Error(ErrorCode::DataException, "mlp classification needs at least two classes",
		            "The target has " + std::to_string(in.n_classes) + " class.");
	const int layers = params.integer("hidden_layers"), units = params.integer("hidden_units");
	const int p = static_cast<int>(in.X->cols());
	const int outs = n_outputs(in.task, in.n_classes);
	const double weights = layers == 0 ? (p + 1.0) * outs
	                                   : (p + 1.0) * units + (layers - 1) * (units + 1.0) * units + (units + 1.0) * outs;
	if (weights > kMaxWeights)
		throw Error(ErrorCode::ProgramLimit, "the mlp would have too many weights",
		            "hidden_layers " + std::to_string(layers) + " of hidden_units " + std::to_string(units) + " on " +
		                std::to_string(p) + " features make " + std::to_string(static_cast<long long>(weights)) +
		                " weights; the limit is " + std::to_string(static_cast<long long>(kMaxWeights)) + ".",
		            "Lower hidden_layers or hidden_units.");
	const int batch = params.integer("batch_size");
	check_memory(in.memory_limit,
	             memory::mlp_bytes(static_cast<double>(in.X->rows()), p, outs, layers, units, batch),
	             "the mlp",
	             std::to_string(layers) + " hidden layers of " + std::to_string(units) + " units on " + std::to_string(p) +
	                 " features make " + count_text(weights) +
	                 " weights, kept five times (weights, best weights, gradient, Adam's two moments), and batches of " +
	                 std::to_string(batch) + " rows.",
	             "hidden_layers, hidden_units or batch_size");
	auto m = std::make_unique<MlpModel>();
	m->task = in.task;
	m->n_classes = in.task == Task::Classification ? in.n_classes : 0;
	m->tanh_act = params.choice("activation") == "tanh";
	if (in.task == Task::Regression) {
		// standardize the target (population sd; a constant target keeps scale 1)
		const double mean = in.y->mean();
		const double sd = std::sqrt((in.y->array() - mean).square().mean());
		if (!std::isfinite(mean) || !std::isfinite(sd))
			throw Error(ErrorCode::DataException, "the mlp target is not finite or too large");
		m->y_mean = mean;
		m->y_scale = sd > 1e-12 * std::max(1.0, std::fabs(mean)) ? sd : 1.0;
	}
	std::mt19937_64 gen(in.seed);
	m->init(p, layers, units, gen);
	m->train(in, read_train_options(params), gen);
	return m;
}

// Reads an MlpModel written by MlpModel::write, checking it against shape.
std::unique_ptr<Estimator> read_mlp(Reader &r, const EstimatorShape &shape)
{
	const uint16_t version = r.u16();
	if (version < 1 || version > kMlpVersion)
		corrupt("unknown sub-format version " + std::to_string(version) + ".");
	auto m = std::make_unique<MlpModel>();
	m->version = version;
	const uint8_t task = r.u8();
	if (task != static_cast<uint8_t>(shape.task) || shape.task == Task::Clustering)
		corrupt("the task does not match the model's.");
	m->task = shape.task;
	const uint32_t K = r.u32();
	if (shape.task == Task::Classification ? (K != static_cast<uint32_t>(shape.n_classes) || K < 2 || K > kMaxClasses)
	                                       : K != 0)
		corrupt("the class count does not match the model's.");
	m->n_classes = static_cast<int>(K);
	const uint8_t act = r.u8();
	if (act > 1)
		corrupt("unknown activation " + std::to_string(act) + ".");
	m->tanh_act = act == 1;
	const uint32_t p = r.u32();
	if (shape.p < 0 || p != static_cast<uint32_t>(shape.p))
		corrupt("the feature count does not match the model's.");
	const uint32_t layers = r.u32(), units = r.u32();
	if (layers > kMaxHiddenLayers || (layers > 0 ? units < 1 || units > kMaxHiddenUnits : units != 0))
		corrupt("implausible hidden layer sizes.");
	m->hidden_units = static_cast<int>(units);
	m->epochs = r.u64();
	if (version >= 2) {
		m->y_mean = r.f64();
		m->y_scale = r.f64();
		if (!std::isfinite(m->y_mean) || !std::isfinite(m->y_scale) || !(m->y_scale > 0) ||
		    (shape.task != Task::Regression && (m->y_mean != 0 || m->y_scale != 1)))
			corrupt("invalid target scaling.");
	}
	const Eigen::Index outs = n_outputs(m->task, m->n_classes);
	Eigen::Index fan_in = p;
	for (uint32_t l = 0; l <= layers; l++) {
		const Eigen::Index fan_out = l < layers ? static_cast<Eigen::Index>(units) : outs;
		Eigen::MatrixXd W = r.mat();
		if (W.rows() != fan_in || W.cols() != fan_out || (W.size() > 0 && !W.allFinite()))
			corrupt("layer " + std::to_string(l) + " has the wrong shape or a non-finite weight.");
		Eigen::VectorXd b = r.vec();
		if (b.size() != fan_out || !b.allFinite())
			corrupt("layer " + std::to_string(l) + " has the wrong number of biases or a non-finite one.");
		m->net.W.push_back(std::move(W));
		m->net.b.push_back(std::move(b));
		fan_in = fan_out;
	}
	return m;
}

// Loss and gradient on one minibatch made of all of X (exposed for tests).
double mlp_loss_grad(const MlpWeights &net, bool tanh_activation, Task task, int n_classes, double alpha,
                     const Eigen::MatrixXd &X, const Eigen::VectorXd &y, MlpWeights *grad)
{
	std::vector<Eigen::MatrixXd> acts;
	forward(net, tanh_activation, task, n_classes, X, acts);
	return loss_backprop(net, tanh_activation, task, n_classes, alpha, acts, y, grad);
}

} // namespace pgml
