"""The backward pass (Sec. 3 of the paper): its six equations against SymPy's chain rule, the gradient staged,
compact and by ``sympy.diff``, and the Jacobian of the normalization with its properties."""

from __future__ import annotations

import functools

import sympy as sp

from bnlib.symbolic.core import (
    Batch,
    Identity,
    _k,
    _pairs,
    _per_example,
    batch,
    beta,
    claim,
    close,
    d_beta,
    d_gamma,
    d_mu,
    d_var,
    d_x,
    d_xhat,
    dy,
    eps,
    gamma,
    i,
    j,
    m,
    mu,
    var,
    x,
    xhat,
)

__all__ = [
    "PAPER_EQUATIONS", "chain_rule_equations", "check_paper_equations", "staged_dx", "compact_dx", "autodiff_dx",
    "staged_equals_compact", "autodiff_equals_compact", "autodiff_equals_staged", "autodiff_dgamma_dbeta",
    "mu_term_vanishes",
    "jacobian", "jacobian_formula", "jacobian_rows_sum_to_zero", "jacobian_symmetric", "jacobian_on_xhat",
    "gradient_sums_to_zero", "gradient_along_xhat", "projector_square",
]


# --------------------------------------------------------------------------- backward: the paper's six equations
def _paper_equations() -> dict:
    s = sp.sqrt(var + eps)
    return {
        "dxhat": (d_xhat[i], dy[i] * gamma),
        "dvar": (d_var, sp.Sum(d_xhat[i] * (x[i] - mu), (i, 1, m)) * sp.Rational(-1, 2)
                 * (var + eps) ** sp.Rational(-3, 2)),
        "dmu": (d_mu, sp.Sum(d_xhat[i] * (-1 / s), (i, 1, m)) + d_var * sp.Sum(-2 * (x[i] - mu), (i, 1, m)) / m),
        "dx": (d_x[i], d_xhat[i] / s + d_var * 2 * (x[i] - mu) / m + d_mu / m),
        "dgamma": (d_gamma, sp.Sum(dy[i] * xhat[i], (i, 1, m))),
        "dbeta": (d_beta, sp.Sum(dy[i], (i, 1, m))),
    }


#: The six chain-rule equations as printed in Sec. 3 of the paper, ``name -> (lhs, rhs)``.
#: ``mu``, ``sigma^2`` and ``xhat_i`` are nodes of the graph (independent symbols).
PAPER_EQUATIONS = _paper_equations()


@functools.lru_cache(maxsize=1)
def chain_rule_equations() -> dict:
    """The six equations derived by SymPy: the reverse-mode chain rule over the graph of Algorithm 1.

    Nodes and their definitions in terms of their parents: ``y_j = gamma xhat_j + beta``,
    ``xhat_j = (x_j - mu) / sqrt(sigma^2 + eps)``, ``sigma^2 = sum_k (x_k - mu)^2 / m``,
    ``mu = sum_k x_k / m``. The adjoint of a node is, summed over its children (and over the
    batch for an indexed child), the child's adjoint times SymPy's partial derivative of the
    child's definition with respect to the node. Returns ``name -> (adjoint, closed rhs)``.
    """
    loss = sp.Sum(dy[j] * (gamma * xhat[j] + beta), (j, 1, m))
    xhat_j = (x[j] - mu) / sp.sqrt(var + eps)
    var_def = sp.Sum((x[_k] - mu) ** 2, (_k, 1, m)) / m
    mu_def = sp.Sum(x[_k], (_k, 1, m)) / m

    def through_xhat(node):  # sum_j dl/dxhat_j * d xhat_j / d node
        return sp.Sum(d_xhat[j] * sp.diff(xhat_j, node), (j, 1, m))

    return {
        "dxhat": (d_xhat[i], close(sp.diff(loss, xhat[i]))),
        "dvar": (d_var, close(through_xhat(var))),
        "dmu": (d_mu, close(through_xhat(mu) + d_var * sp.diff(var_def, mu))),
        "dx": (d_x[i], close(through_xhat(x[i]) + d_var * sp.diff(var_def, x[i]) + d_mu * sp.diff(mu_def, x[i]))),
        "dgamma": (d_gamma, close(sp.diff(loss, gamma))),
        "dbeta": (d_beta, close(sp.diff(loss, beta))),
    }


def check_paper_equations(paper: dict | None = None) -> dict[str, Identity]:
    """Each printed equation (``paper``, default :data:`PAPER_EQUATIONS`) against SymPy's chain rule."""
    paper = PAPER_EQUATIONS if paper is None else paper
    derived = chain_rule_equations()
    out = {}
    for name, (lhs, rhs) in paper.items():
        if name not in derived:
            raise ValueError(f"unknown equation {name!r}; expected one of {sorted(derived)}.")
        if lhs != derived[name][0]:
            raise ValueError(f"equation {name!r} must have the left-hand side {derived[name][0]}, got {lhs}.")
        out[name] = claim(f"paper equation {name}", m, [(rhs, derived[name][1])])
    return out


def _rebind(expr, idx=_k):
    """Every sum over ``i`` rewritten as a sum over ``idx``, so that ``i`` is free to be substituted."""
    return expr.replace(lambda e: isinstance(e, sp.Sum) and e.limits[0][0] == i,
                        lambda e: sp.Sum(e.function.xreplace({i: idx}), (idx, *e.limits[0][1:])))


def _sub_indexed(expr, base, fn):
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == base, lambda e: fn(e.indices[0]))


def _to_batch(expr, b: Batch):
    """Graph nodes replaced by the batch's own expressions; for a concrete batch, sums written out."""
    expr = _sub_indexed(expr, xhat, b.xhat).xreplace({mu: b.mu, var: b.var})
    if b.concrete:
        expr = expr.xreplace({m: b.m}).doit()
    return expr


def staged_dx(mm=m, t=i, paper: dict | None = None):
    """dl/dx_t by the paper's equations: each adjoint substituted into the next, then the nodes
    set to the batch's statistics (``mu``: the mean, ``sigma^2``: the biased variance)."""
    paper = PAPER_EQUATIONS if paper is None else paper
    eq = {name: _rebind(rhs) for name, (_, rhs) in paper.items()}

    def dxh(idx):
        return eq["dxhat"].xreplace({i: idx})

    d_v = _sub_indexed(eq["dvar"], d_xhat, dxh)
    d_m = _sub_indexed(eq["dmu"], d_xhat, dxh).xreplace({d_var: d_v})
    d = _sub_indexed(eq["dx"], d_xhat, dxh).xreplace({d_var: d_v, d_mu: d_m}).xreplace({i: t})
    return _to_batch(d, batch(mm))


def compact_dx(mm=m, t=i):
    r"""The compact form
    :math:`\frac{\gamma}{m\sqrt{\sigma^2+\epsilon}}\big(m\,dy_t - \sum_k dy_k - \hat x_t \sum_k dy_k \hat x_k\big)`."""
    b = batch(mm)
    return gamma / (mm * b.std) * (mm * dy[t] - b.sum(dy[_k]) - b.xhat(t) * b.sum(dy[_k] * b.xhat(_k)))


def autodiff_dx(mm=m, t=i):
    """SymPy's own derivative ``diff(l, x[t])`` of the explicit forward expression."""
    return sp.diff(batch(mm).loss, x[t])


def staged_equals_compact(mm=m, paper: dict | None = None) -> Identity:
    """The paper's staged equations, composed, equal the compact form, for every example."""
    return _per_example("staged = compact", mm, lambda t: (staged_dx(mm, t, paper), compact_dx(mm, t)))


def autodiff_equals_compact(mm=m, compact=None) -> Identity:
    """SymPy's derivative of the loss with respect to ``x_i`` equals the compact form, for every example.

    ``compact``: a function ``(mm, t) -> expression`` to check instead of :func:`compact_dx`.
    """
    compact = compact_dx if compact is None else compact
    return _per_example("autodiff = compact", mm, lambda t: (autodiff_dx(mm, t), compact(mm, t)))


def autodiff_equals_staged(mm=m, paper: dict | None = None) -> Identity:
    """SymPy's derivative of the loss with respect to ``x_i`` equals the paper's staged equations."""
    return _per_example("autodiff = staged", mm, lambda t: (autodiff_dx(mm, t), staged_dx(mm, t, paper)))


def autodiff_dgamma_dbeta(mm=m) -> tuple[Identity, Identity]:
    """SymPy's derivatives of the loss with respect to gamma and beta against equations (5) and (6)."""
    b = batch(mm)
    return (claim("dl/dgamma", mm, [(sp.diff(b.loss, gamma), b.sum(dy[j] * b.xhat(j), j))]),
            claim("dl/dbeta", mm, [(sp.diff(b.loss, beta), b.sum(dy[j], j))]))


def mu_term_vanishes(mm=m) -> Identity:
    """The second term of equation (3) is 0 at the batch mean: ``sum_i -2 (x_i - mu) / m = 0``."""
    b = batch(mm)
    return claim("mu term vanishes", mm, [(b.sum(-2 * (x[j] - b.mu), j) / mm, sp.S.Zero)])


# --------------------------------------------------------------------------- the Jacobian
def jacobian(mm=m, r=i, c=j, scale=1):
    """SymPy's ``d xhat_r / d x_c``; with ``scale``, that of the batch ``scale * x`` w.r.t. ``scale * x_c``."""
    b = batch(mm)
    return sp.diff(b.xhat(r, scale), x[c]) / scale


def _jacobian_closed(b: Batch, r, c):
    return (sp.KroneckerDelta(r, c) - sp.S.One / b.m - b.xhat(r) * b.xhat(c) / b.m) / b.std


def jacobian_formula(mm=m) -> Identity:
    r""":math:`\partial\hat x_i/\partial x_j = (\delta_{ij} - 1/m - \hat x_i\hat x_j/m)/\sqrt{\sigma^2+\epsilon}`
    for every :math:`\epsilon`."""
    b = batch(mm)
    return claim("Jacobian", mm, [(jacobian(mm, r, c), _jacobian_closed(b, r, c)) for r, c in _pairs(b)])


def jacobian_rows_sum_to_zero(mm=m) -> Identity:
    r""":math:`\sum_j \partial\hat x_i/\partial x_j = 0`: shifting the whole batch changes no :math:`\hat x_i`."""
    b = batch(mm)
    return _per_example("Jacobian rows sum to 0", mm, lambda t: (b.sum(jacobian(mm, t, j), j), sp.S.Zero))


def jacobian_symmetric(mm=m) -> Identity:
    r""":math:`\partial\hat x_i/\partial x_j = \partial\hat x_j/\partial x_i`."""
    b = batch(mm)
    return claim("Jacobian symmetric", mm, [(jacobian(mm, r, c), jacobian(mm, c, r)) for r, c in _pairs(b, upper=True)])


def jacobian_on_xhat(mm=m) -> Identity:
    r""":math:`\sum_j (\partial\hat x_i/\partial x_j)\,\hat x_j = \epsilon\,\hat x_i/(\sigma^2+\epsilon)^{3/2}`
    (0 for :math:`\epsilon = 0`)."""
    b = batch(mm)
    return _per_example("Jacobian applied to xhat", mm,
                        lambda t: (b.sum(jacobian(mm, t, j) * b.xhat(j), j),
                                   eps / (b.var + eps) ** sp.Rational(3, 2) * b.xhat(t)))


def gradient_sums_to_zero(mm=m) -> Identity:
    r""":math:`\sum_i \partial\ell/\partial x_i = 0` exactly: the gradient is orthogonal to :math:`\mathbf 1`."""
    b = batch(mm)
    lhs = sp.Add(*(autodiff_dx(mm, t) for t in b.indices)) if b.concrete else b.sum(autodiff_dx(mm, j), j)
    return claim("gradient orthogonal to 1", mm, [(lhs, sp.S.Zero)])


def gradient_along_xhat(mm=m) -> Identity:
    r""":math:`\sum_i \hat x_i\,\partial\ell/\partial x_i =
    \gamma\epsilon/(\sigma^2+\epsilon)^{3/2}\,\sum_i dy_i\hat x_i` (0 for :math:`\epsilon = 0`)."""
    b = batch(mm)
    if b.concrete:
        lhs = sp.Add(*(b.xhat(t) * autodiff_dx(mm, t) for t in b.indices))
    else:
        lhs = b.sum(b.xhat(j) * autodiff_dx(mm, j), j)
    rhs = gamma * eps / (b.var + eps) ** sp.Rational(3, 2) * b.sum(dy[j] * b.xhat(j), j)
    return claim("gradient along xhat", mm, [(lhs, rhs)])


def projector_square(mm=m) -> Identity:
    r""":math:`P = I - \mathbf{1}\mathbf{1}^\top/m - \hat x\hat x^\top/m` satisfies
    :math:`P^2 = P - \frac{\epsilon}{\sigma^2+\epsilon}\,\hat x\hat x^\top/m`.

    :math:`P = \sqrt{\sigma^2+\epsilon}\;\partial\hat x/\partial x` (:func:`jacobian_formula`). For
    :math:`\epsilon = 0`, :math:`P^2 = P`: with :math:`P` symmetric, the backward pass multiplies
    ``dy`` by the orthogonal projector onto the vectors orthogonal to both :math:`\mathbf 1` and
    :math:`\hat x`. Checked entry by entry.
    """
    b = batch(mm)

    def P(r, c):
        return sp.KroneckerDelta(r, c) - sp.S.One / mm - b.xhat(r) * b.xhat(c) / mm

    def squared(r, c):
        if b.concrete:
            return sp.Add(*(P(r, q) * P(q, c) for q in b.indices))
        return b.sum(P(r, _k) * P(_k, c))

    def rhs(r, c):
        return P(r, c) - eps / (b.var + eps) * b.xhat(r) * b.xhat(c) / mm

    return claim("P^2", mm, [(squared(r, c), rhs(r, c)) for r, c in _pairs(b, upper=True)])
