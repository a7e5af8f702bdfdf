#include "least_squares.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pgml {

namespace {

// The submatrix of G on columns idx, equilibrated to a unit diagonal.
Eigen::MatrixXd equilibrated(const Eigen::MatrixXd &G, const std::vector<Eigen::Index> &idx)
{
	const Eigen::Index k = static_cast<Eigen::Index>(idx.size());
	Eigen::MatrixXd Z(k, k);
	for (Eigen::Index a = 0; a < k; a++)
		for (Eigen::Index b = 0; b < k; b++) {
			const Eigen::Index i = idx[static_cast<size_t>(a)], j = idx[static_cast<size_t>(b)];
			Z(a, b) = G(i, j) / std::sqrt(G(i, i) * G(j, j));
		}
	return Z;
}

} // namespace

GramSolution solve_gram(const Eigen::MatrixXd &G, const Eigen::VectorXd &g, const Eigen::VectorXd *floor,
                        const std::vector<std::vector<int>> &groups)
{
	constexpr double inf = std::numeric_limits<double>::infinity();
	GramSolution s;
	const Eigen::Index q = G.rows();
	s.columns = static_cast<int>(q);
	s.w = Eigen::VectorXd::Zero(q);
	s.condition = 1;
	// the columns that vary; their spread (sqrt of the diagonal) equilibrates them
	std::vector<Eigen::Index> live, diag;
	std::vector<char> varies(static_cast<size_t>(q), 0), by_design(static_cast<size_t>(q), 0);
	for (Eigen::Index i = 0; i < q; i++) {
		const double d = G(i, i);
		if (d > 0 && std::isfinite(d) && (floor == nullptr || d > (*floor)(i))) {
			live.push_back(i);
			varies[static_cast<size_t>(i)] = 1;
		} else {
			s.constant.push_back(static_cast<int>(i));
		}
	}
	// per group, its last slot that varies is left out of the diagnosis
	for (const auto &grp : groups)
		for (auto it = grp.rbegin(); it != grp.rend(); ++it)
			if (*it >= 0 && *it < q && varies[static_cast<size_t>(*it)]) {
				by_design[static_cast<size_t>(*it)] = 1;
				break;
			}
	for (Eigen::Index i : live)
		if (!by_design[static_cast<size_t>(i)])
			diag.push_back(i);
	if (live.empty())
		return s;
	// the solution: minimum norm over the kept directions of the equilibrated matrix
	const Eigen::Index k = static_cast<Eigen::Index>(live.size());
	Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(equilibrated(G, live));
	if (es.info() != Eigen::Success) {
		s.w.setConstant(std::numeric_limits<double>::quiet_NaN());
		return s;
	}
	Eigen::VectorXd gz(k);
	for (Eigen::Index a = 0; a < k; a++)
		gz(a) = g(live[static_cast<size_t>(a)]) / std::sqrt(G(live[static_cast<size_t>(a)], live[static_cast<size_t>(a)]));
	const Eigen::VectorXd &lam = es.eigenvalues(); // ascending
	const Eigen::MatrixXd &V = es.eigenvectors();
	const double cut = lam(k - 1) * kGramRankTol;
	Eigen::VectorXd wz = Eigen::VectorXd::Zero(k);
	for (Eigen::Index j = 0; j < k; j++)
		if (lam(j) > cut) {
			wz += V.col(j) * (V.col(j).dot(gz) / lam(j));
			s.rank++;
		}
	if (s.rank == k) {
		// full rank: Cholesky with iterative refinement, the residual in extended precision,
		// solves the equilibrated system to about its own rounding (the moments' is what is left)
		const Eigen::MatrixXd Z = equilibrated(G, live);
		Eigen::LLT<Eigen::MatrixXd> llt(Z);
		if (llt.info() == Eigen::Success) {
			Eigen::VectorXd x = llt.solve(gz);
			for (int it = 0; it < 3; it++) {
				Eigen::VectorXd r(k);
				for (Eigen::Index a = 0; a < k; a++) {
					long double acc = gz(a);
					for (Eigen::Index b = 0; b < k; b++)
						acc -= static_cast<long double>(Z(a, b)) * x(b);
					r(a) = static_cast<double>(acc);
				}
				x += llt.solve(r);
			}
			if (x.allFinite())
				wz = x;
		}
	}
	for (Eigen::Index a = 0; a < k; a++)
		s.w(live[static_cast<size_t>(a)]) = wz(a) / std::sqrt(G(live[static_cast<size_t>(a)], live[static_cast<size_t>(a)]));

	// the diagnosis, on the columns whose dependence is not by design (a full one-hot group
	// sums to the intercept): rank, condition number, the columns of a (near) dependence
	const Eigen::Index kd = static_cast<Eigen::Index>(diag.size());
	if (kd == 0)
		return s;
	Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ed(equilibrated(G, diag));
	if (ed.info() != Eigen::Success)
		return s;
	const Eigen::VectorXd &dl = ed.eigenvalues();
	const Eigen::MatrixXd &DV = ed.eigenvectors();
	const double dcut = dl(kd - 1) * kGramRankTol;
	std::vector<char> involved(static_cast<size_t>(kd), 0);
	Eigen::Index dropped = 0;
	for (Eigen::Index j = 0; j < kd; j++)
		if (dl(j) <= dcut) {
			dropped++;
			for (Eigen::Index a = 0; a < kd; a++)
				if (std::abs(DV(a, j)) > 0.05)
					involved[static_cast<size_t>(a)] = 1;
		}
	s.deficient = dropped > 0;
	s.condition = dropped > 0 ? inf : std::sqrt(dl(kd - 1) / dl(0));
	if (dropped == 0 && s.condition > kIllConditioned) {
		s.ill_conditioned = true;
		for (Eigen::Index a = 0; a < kd; a++)
			if (std::abs(DV(a, 0)) > 0.05)
				involved[static_cast<size_t>(a)] = 1;
	}
	for (Eigen::Index a = 0; a < kd; a++)
		if (involved[static_cast<size_t>(a)])
			s.collinear.push_back(static_cast<int>(diag[static_cast<size_t>(a)]));
	return s;
}

std::string column_list(const std::vector<std::string> &names, const std::vector<int> &idx, size_t limit)
{
	std::string out;
	const size_t shown = idx.size() > limit ? limit : idx.size();
	for (size_t i = 0; i < shown; i++) {
		if (i > 0)
			out += i + 1 == idx.size() ? " and " : ", ";
		const size_t c = static_cast<size_t>(idx[i]);
		out += c < names.size() ? names[c] : "#" + std::to_string(c + 1);
	}
	if (shown < idx.size())
		out += " and " + std::to_string(idx.size() - shown) + " more";
	return out;
}

} // namespace pgml
