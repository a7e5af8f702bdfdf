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

// The columns of a Gram matrix by role: those that vary (live; the others are constant) and,
// per one-hot group whose slots sum to the intercept, its last varying slot (by design).
struct Columns {
	std::vector<Eigen::Index> live, diag; // diag: live without the by-design ones
	std::vector<int> constant;
	std::vector<char> by_design; // per column
};

Columns classify(const Eigen::VectorXd &d, const Eigen::VectorXd *floor, const std::vector<std::vector<int>> &groups)
{
	const Eigen::Index q = d.size();
	Columns c;
	std::vector<char> varies(static_cast<size_t>(q), 0);
	c.by_design.assign(static_cast<size_t>(q), 0);
	for (Eigen::Index i = 0; i < q; i++) {
		if (d(i) > 0 && std::isfinite(d(i)) && (floor == nullptr || d(i) > (*floor)(i))) {
			c.live.push_back(i);
			varies[static_cast<size_t>(i)] = 1;
		} else {
			c.constant.push_back(static_cast<int>(i));
		}
	}
	for (const auto &grp : groups)
		for (auto it = grp.rbegin(); it != grp.rend(); ++it)
			if (*it >= 0 && *it < q && varies[static_cast<size_t>(*it)]) {
				c.by_design[static_cast<size_t>(*it)] = 1;
				break;
			}
	for (Eigen::Index i : c.live)
		if (!c.by_design[static_cast<size_t>(i)])
			c.diag.push_back(i);
	return c;
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
	const Columns cols = classify(G.diagonal(), floor, groups);
	s.constant = cols.constant;
	const std::vector<Eigen::Index> &live = cols.live, &diag = cols.diag;
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

bool dd_cholesky(DDMatrix &L, double tol)
{
	const Eigen::Index n = L.n;
	for (Eigen::Index j = 0; j < n; j++) {
		DD d = L(j, j);
		for (Eigen::Index k = 0; k < j; k++)
			d -= L(j, k) * L(j, k);
		if (!(d.hi > tol))
			return false;
		const DD r = dd::sqrt(d);
		L(j, j) = r;
		for (Eigen::Index i = j + 1; i < n; i++) {
			DD v = L(i, j);
			for (Eigen::Index k = 0; k < j; k++)
				v -= L(i, k) * L(j, k);
			L(i, j) = v / r;
		}
	}
	return true;
}

void dd_solve(const DDMatrix &L, std::vector<DD> &x)
{
	const Eigen::Index n = L.n;
	for (Eigen::Index i = 0; i < n; i++) {
		DD v = x[static_cast<size_t>(i)];
		for (Eigen::Index k = 0; k < i; k++)
			v -= L(i, k) * x[static_cast<size_t>(k)];
		x[static_cast<size_t>(i)] = v / L(i, i);
	}
	for (Eigen::Index i = n - 1; i >= 0; i--) {
		DD v = x[static_cast<size_t>(i)];
		for (Eigen::Index k = i + 1; k < n; k++)
			v -= L(k, i) * x[static_cast<size_t>(k)];
		x[static_cast<size_t>(i)] = v / L(i, i);
	}
}

namespace {

DD dd_dot(const std::vector<DD> &a, const std::vector<DD> &b)
{
	DD s;
	for (size_t i = 0; i < a.size(); i++)
		s += a[i] * b[i];
	return s;
}

// The smallest eigenvalue of the equilibrated matrix Z (factor L) and its eigenvector, by
// inverse iteration in double-double from the double eigensolver's guess.
double smallest_eigen(const DDMatrix &Z, const DDMatrix &L, std::vector<DD> &v)
{
	const Eigen::Index n = Z.n;
	Eigen::MatrixXd hi(n, n);
	for (Eigen::Index i = 0; i < n; i++)
		for (Eigen::Index j = 0; j < n; j++)
			hi(i, j) = Z(i, j).hi;
	Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(hi);
	v.assign(static_cast<size_t>(n), DD(1.0 / std::sqrt(static_cast<double>(n))));
	if (es.info() == Eigen::Success)
		for (Eigen::Index i = 0; i < n; i++)
			v[static_cast<size_t>(i)] = es.eigenvectors()(i, 0);
	for (int it = 0; it < 30; it++) {
		dd_solve(L, v);
		const DD norm = dd::sqrt(dd_dot(v, v));
		for (DD &x : v)
			x = x / norm;
	}
	std::vector<DD> zv(static_cast<size_t>(n));
	for (Eigen::Index i = 0; i < n; i++)
		for (Eigen::Index j = 0; j < n; j++)
			zv[static_cast<size_t>(i)] += Z(i, j) * v[static_cast<size_t>(j)];
	return dd_dot(v, zv).value(); // the Rayleigh quotient (v has unit norm)
}

} // namespace

GramSolution solve_gram_precise(const DDMatrix &G, const std::vector<DD> &g, const Eigen::VectorXd *floor,
                                const std::vector<std::vector<int>> &groups)
{
	GramSolution s;
	s.precise = true;
	const Eigen::Index q = G.n;
	s.columns = static_cast<int>(q);
	s.w = Eigen::VectorXd::Zero(q);
	s.w_dd.assign(static_cast<size_t>(q), DD());
	Eigen::VectorXd d(q);
	for (Eigen::Index i = 0; i < q; i++)
		d(i) = G(i, i).hi;
	const Columns cols = classify(d, floor, groups);
	s.constant = cols.constant;
	const std::vector<Eigen::Index> &live = cols.live, &red = cols.diag;
	if (live.empty())
		return s;
	// equilibrated: Z = D^-1 G D^-1 on the live columns, D = sqrt(diag G)
	const Eigen::Index k = static_cast<Eigen::Index>(live.size()), kr = static_cast<Eigen::Index>(red.size());
	std::vector<DD> D(static_cast<size_t>(q));
	for (Eigen::Index i : live)
		D[static_cast<size_t>(i)] = dd::sqrt(G(i, i));
	auto z = [&](Eigen::Index i, Eigen::Index j) { return G(i, j) / (D[static_cast<size_t>(i)] * D[static_cast<size_t>(j)]); };
	DDMatrix Z(kr), L(kr);
	for (Eigen::Index a = 0; a < kr; a++)
		for (Eigen::Index b = 0; b < kr; b++)
			Z(a, b) = z(red[static_cast<size_t>(a)], red[static_cast<size_t>(b)]);
	L = Z;
	if (!dd_cholesky(L, kPreciseRankTol)) {
		s.deficient = true; // the double solve's minimum-norm solution and diagnosis stand
		s.condition = std::numeric_limits<double>::infinity();
		return s;
	}
	// the solution with the by-design columns at 0 ...
	std::vector<DD> x(static_cast<size_t>(kr));
	for (Eigen::Index a = 0; a < kr; a++)
		x[static_cast<size_t>(a)] = g[static_cast<size_t>(red[static_cast<size_t>(a)])] / D[static_cast<size_t>(red[static_cast<size_t>(a)])];
	dd_solve(L, x);
	// ... then of minimum norm, as solve_gram's: the part along the null space of the by-design
	// dependence (one vector per group: 1 on its dropped column, -Z_rr^-1 Z_rj on the others)
	// is projected out
	std::vector<Eigen::Index> pos(static_cast<size_t>(q), -1); // live column -> index in the full live vector
	for (Eigen::Index a = 0; a < k; a++)
		pos[static_cast<size_t>(live[static_cast<size_t>(a)])] = a;
	std::vector<DD> full(static_cast<size_t>(k));
	for (Eigen::Index a = 0; a < kr; a++)
		full[static_cast<size_t>(pos[static_cast<size_t>(red[static_cast<size_t>(a)])])] = x[static_cast<size_t>(a)];
	std::vector<std::vector<DD>> N;
	for (Eigen::Index j : live) {
		if (!cols.by_design[static_cast<size_t>(j)])
			continue;
		std::vector<DD> c(static_cast<size_t>(kr));
		for (Eigen::Index a = 0; a < kr; a++)
			c[static_cast<size_t>(a)] = z(red[static_cast<size_t>(a)], j);
		dd_solve(L, c);
		std::vector<DD> nv(static_cast<size_t>(k));
		for (Eigen::Index a = 0; a < kr; a++)
			nv[static_cast<size_t>(pos[static_cast<size_t>(red[static_cast<size_t>(a)])])] = -c[static_cast<size_t>(a)];
		nv[static_cast<size_t>(pos[static_cast<size_t>(j)])] = DD(1.0);
		N.push_back(std::move(nv));
	}
	if (!N.empty()) {
		const Eigen::Index m = static_cast<Eigen::Index>(N.size());
		DDMatrix NN(m);
		std::vector<DD> t(static_cast<size_t>(m));
		for (Eigen::Index a = 0; a < m; a++) {
			t[static_cast<size_t>(a)] = dd_dot(N[static_cast<size_t>(a)], full);
			for (Eigen::Index b = 0; b < m; b++)
				NN(a, b) = dd_dot(N[static_cast<size_t>(a)], N[static_cast<size_t>(b)]);
		}
		if (dd_cholesky(NN, 0)) {
			dd_solve(NN, t);
			for (Eigen::Index a = 0; a < m; a++)
				for (Eigen::Index i = 0; i < k; i++)
					full[static_cast<size_t>(i)] -= N[static_cast<size_t>(a)][static_cast<size_t>(i)] * t[static_cast<size_t>(a)];
		}
	}
	for (Eigen::Index a = 0; a < k; a++) {
		const Eigen::Index i = live[static_cast<size_t>(a)];
		s.w_dd[static_cast<size_t>(i)] = full[static_cast<size_t>(a)] / D[static_cast<size_t>(i)];
		s.w(i) = s.w_dd[static_cast<size_t>(i)].value();
	}
	s.rank = static_cast<int>(kr);
	// the diagnosis: the condition number of the equilibrated matrix without the by-design
	// columns, and for an ill-conditioned one the columns of its smallest direction
	if (kr == 0)
		return s;
	Eigen::MatrixXd hi(kr, kr);
	for (Eigen::Index a = 0; a < kr; a++)
		for (Eigen::Index b = 0; b < kr; b++)
			hi(a, b) = Z(a, b).hi;
	const double lmax = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(hi, Eigen::EigenvaluesOnly).eigenvalues()(kr - 1);
	std::vector<DD> v;
	const double lmin = smallest_eigen(Z, L, v);
	s.condition = lmin > 0 ? std::sqrt(lmax / lmin) : std::numeric_limits<double>::infinity();
	if (s.condition > kIllConditioned) {
		s.ill_conditioned = true;
		for (Eigen::Index a = 0; a < kr; a++)
			if (std::abs(v[static_cast<size_t>(a)].hi) > 0.05)
				s.collinear.push_back(static_cast<int>(red[static_cast<size_t>(a)]));
	}
	return s;
}

double estimated_digits(const GramSolution &gs, double u_moments, double amp)
{
	if (gs.deficient || !std::isfinite(gs.condition))
		return NAN;
	const double lost = (gs.condition * 0x1.0p-53 + gs.condition * gs.condition * u_moments) * std::max(1.0, amp);
	return std::min(15.0, std::max(0.0, -std::log10(lost)));
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
