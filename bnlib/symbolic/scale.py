"""Scale invariance (Sec. 3.3 of the paper): BN of a scaled batch, of a linear unit with scaled weights, the
direction of the weight gradient, and convolutional BN as a batch of m' = m p q values."""

from __future__ import annotations

import sympy as sp

from bnlib.symbolic.backward import jacobian
from bnlib.symbolic.core import Identity, _is_int, _pairs, _per_example, a, batch, beta, claim, eps, gamma, j, m, x

__all__ = [
    "scale_forward", "scale_jacobian", "scale_layer", "weight_direction", "conv_effective_batch",
]


# --------------------------------------------------------------------------- scale invariance (Sec. 3.3)
def scale_forward(mm=m) -> Identity:
    r""":math:`\hat x_i(a x;\ \epsilon) = \hat x_i(x;\ \epsilon/a^2)` for :math:`a > 0`; for :math:`\epsilon = 0`,
    :math:`\mathrm{BN}(a x) = \mathrm{BN}(x)`."""
    b = batch(mm)
    return _per_example("BN(a x) with eps = BN(x) with eps/a^2", mm,
                        lambda t: (b.xhat(t, scale=a), b.xhat(t).xreplace({eps: eps / a**2})))


def scale_jacobian(mm=m) -> Identity:
    r""":math:`\partial\hat x_i(a x;\epsilon)/\partial(a x_j) = \frac1a\,\partial\hat x_i(x;\epsilon/a^2)/\partial x_j`
    for :math:`a > 0`."""
    b = batch(mm)
    return claim("Jacobian of BN(a x)", mm,
                 [(jacobian(mm, r, c, scale=a), jacobian(mm, r, c).xreplace({eps: eps / a**2}) / a)
                  for r, c in _pairs(b)])


def scale_layer(mm: int = 3, n: int = 2) -> dict[str, Identity]:
    r"""Sec. 3.3 on a linear unit :math:`x_t = \sum_c w_c u_{t,c}`, by SymPy's derivatives, for a concrete batch.

    With :math:`a > 0`, for every example :math:`t`:
    ``"u"``: :math:`\partial\hat x_t/\partial u_{s,c}` at weights :math:`a w` equals the same
    derivative at :math:`w` with :math:`\epsilon/a^2` in place of :math:`\epsilon`, for every input
    :math:`u_{s,c}`; ``"w"``: :math:`\partial\hat x_t/\partial(a w_c)` at :math:`a w` equals
    :math:`\frac1a\,\partial\hat x_t/\partial w_c` at :math:`w`, with :math:`\epsilon/a^2`. For
    :math:`\epsilon = 0` these are the paper's two equations.
    """
    if not _is_int(mm) or mm < 2 or not _is_int(n) or n < 1:
        raise ValueError(f"mm must be an integer of at least 2 and n a positive integer, got mm={mm!r}, n={n!r}.")
    mm, n = int(mm), int(n)
    b = batch(mm)
    w = sp.symbols(f"w_1:{n + 1}", real=True)
    v = sp.symbols(f"v_1:{n + 1}", real=True)  # v = a w: the scaled weights as variables of their own
    u = [[sp.Symbol(f"u_{t}{c}", real=True) for c in range(1, n + 1)] for t in b.indices]
    at_w = {x[t]: sum(w[c] * u[t - 1][c] for c in range(n)) for t in b.indices}
    at_v = {x[t]: sum(v[c] * u[t - 1][c] for c in range(n)) for t in b.indices}
    v_is_aw = dict(zip(v, [a * wc for wc in w], strict=True))
    cases: dict[str, list] = {"u": [], "w": []}
    for t in b.indices:
        scaled = b.xhat(t).xreplace(at_v)  # xhat_t at weights v, with eps
        plain = b.xhat(t).xreplace(at_w).xreplace({eps: eps / a**2})  # xhat_t at weights w, with eps / a^2
        for s in range(mm):
            for c in range(n):
                cases["u"].append((sp.diff(scaled, u[s][c]).xreplace(v_is_aw), sp.diff(plain, u[s][c])))
        for c in range(n):
            cases["w"].append((sp.diff(scaled, v[c]).xreplace(v_is_aw), sp.diff(plain, w[c]) / a))
    return {"u": claim("d BN/du under w -> a w", mm, cases["u"]),
            "w": claim("d BN/dw under w -> a w", mm, cases["w"])}


def weight_direction(mm=m) -> Identity:
    r""":math:`\sum_j (\partial\hat x_i/\partial x_j)\,x_j = \epsilon\,\hat x_i/(\sigma^2+\epsilon)`: Euler's relation.

    For a unit :math:`x_t = w^\top u_t` the chain rule gives
    :math:`\sum_c w_c\,\partial\hat x_i/\partial w_c = \sum_j (\partial\hat x_i/\partial x_j) x_j`,
    so for :math:`\epsilon = 0` the gradient of any loss with respect to :math:`w` is orthogonal to :math:`w`.
    """
    b = batch(mm)
    return _per_example("Jacobian applied to x", mm,
                        lambda t: (b.sum(jacobian(mm, t, j) * x[j], j), eps / (b.var + eps) * b.xhat(t)))


# --------------------------------------------------------------------------- convolutional BN
def conv_effective_batch(shape: tuple = (2, 2, 2)) -> Identity:
    r"""BN of one feature map of shape ``(m, p, q)``: SymPy's gradient is the compact form with :math:`m' = mpq`.

    The statistics are the mean and biased variance over all :math:`m p q` values of the feature
    map; SymPy differentiates the explicit forward pass with respect to every value.
    """
    if (not isinstance(shape, tuple) or len(shape) != 3
            or any(not _is_int(s) or s < 1 for s in shape)
            or shape[0] * shape[1] * shape[2] < 2):
        raise ValueError(f"shape must be a tuple (m, p, q) of positive integers with m*p*q >= 2, got {shape!r}.")
    X = sp.IndexedBase("x", real=True)
    G = sp.IndexedBase("dy", real=True)
    cells = [(n, h, w) for n in range(1, shape[0] + 1) for h in range(1, shape[1] + 1) for w in range(1, shape[2] + 1)]
    mp = len(cells)
    mean = sp.Add(*(X[c] for c in cells)) / mp
    s = sp.sqrt(sp.Add(*((X[c] - mean) ** 2 for c in cells)) / mp + eps)
    xh = {c: (X[c] - mean) / s for c in cells}
    loss = sp.Add(*(G[c] * (gamma * xh[c] + beta) for c in cells))
    sum_g = sp.Add(*(G[c] for c in cells))
    sum_gx = sp.Add(*(G[c] * xh[c] for c in cells))
    return claim(f"conv BN: m' = {shape[0]}*{shape[1]}*{shape[2]} = {mp}", mp,
                 [(sp.diff(loss, X[c]), gamma / (mp * s) * (mp * G[c] - sum_g - xh[c] * sum_gx)) for c in cells])
