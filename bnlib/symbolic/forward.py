"""The forward pass (Sec. 3.1 of the paper, Algorithm 1): the moments of xhat and y, the identity recovered,
a bias cancelled, the shape kept, and how linear a sigmoid is on standardized inputs."""

from __future__ import annotations

import math

import sympy as sp

from bnlib.symbolic.core import Identity, _is_int, _is_real, _per_example, batch, beta, claim, eps, gamma, j, m, var, x

__all__ = [
    "mean_of_xhat", "variance_of_xhat", "variance_limit", "output_moments", "identity_recovery", "bias_cancels",
    "central_moment_of_xhat", "sigmoid_linear_fit",
]


def mean_of_xhat(mm=m) -> Identity:
    r"""The batch mean of :math:`\hat x` is exactly 0, for every :math:`\epsilon \ge 0`."""
    b = batch(mm)
    return claim("mean of xhat", mm, [(b.sum(b.xhat(j), j) / mm, sp.S.Zero)])


def variance_of_xhat(mm=m) -> Identity:
    r"""The biased batch variance of :math:`\hat x` is :math:`\sigma^2/(\sigma^2+\epsilon)`, not 1."""
    b = batch(mm)
    mean = b.sum(b.xhat(j), j) / mm
    return claim("variance of xhat", mm, [(b.sum((b.xhat(j) - mean) ** 2, j) / mm, b.var / (b.var + eps))])


def variance_limit():
    r"""The limit of :math:`\sigma^2/(\sigma^2+\epsilon)` as :math:`\epsilon \to 0` (1 for :math:`\sigma^2 > 0`),
    and its value when :math:`\sigma^2 = \epsilon`."""
    f = var / (var + eps)
    return {"limit": sp.limit(f, eps, 0), "at_var_eq_eps": f.subs(var, eps), "expr": f}


def output_moments(mm=m) -> tuple[Identity, Identity]:
    r"""Mean :math:`\beta` and biased variance :math:`\gamma^2\sigma^2/(\sigma^2+\epsilon)` of
    :math:`y = \gamma\hat x + \beta`."""
    b = batch(mm)
    mean = b.sum(b.y(j), j) / mm
    v = b.sum((b.y(j) - mean) ** 2, j) / mm
    return (claim("mean of y", mm, [(mean, beta)]),
            claim("variance of y", mm, [(v, gamma**2 * b.var / (b.var + eps))]))


def identity_recovery(mm=m) -> Identity:
    r""":math:`\gamma = \sqrt{\sigma^2+\epsilon}` and :math:`\beta = \mu` give :math:`y_i = x_i` for every :math:`i`."""
    b = batch(mm)
    return _per_example("identity recovery", mm, lambda t: (b.y(t).xreplace({gamma: b.std, beta: b.mu}), x[t]))


def _shift(expr, c):
    """``expr`` with every ``x[.]``, bound or free, replaced by ``x[.] + c``."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == x, lambda e: e + c)


def bias_cancels(mm=m) -> Identity:
    r"""A bias added before BN cancels: :math:`\hat x_i(x + c) = \hat x_i(x)` for every constant :math:`c`."""
    b = batch(mm)
    c = sp.Symbol("c", real=True)
    return _per_example("bias cancels", mm, lambda t: (_shift(b.xhat(t), c), b.xhat(t)))


def central_moment_of_xhat(mm=m, order: int = 3) -> Identity:
    r"""The central moment of order ``order`` of :math:`\hat x` is that of :math:`x` over
    :math:`(\sigma^2+\epsilon)^{order/2}`.

    BN is an affine map within a batch, so every standardized moment (skewness for order 3,
    kurtosis for order 4) of :math:`\hat x` equals that of :math:`x` when :math:`\epsilon = 0`, and
    differs only by powers of :math:`\sigma^2/(\sigma^2+\epsilon)` otherwise: the shape stays.
    """
    if not _is_int(order) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}.")
    order = int(order)
    b = batch(mm)
    lhs = b.sum(b.xhat(j) ** order, j) / mm  # the mean of xhat is 0 (mean_of_xhat)
    rhs = b.sum((x[j] - b.mu) ** order, j) / mm / (b.var + eps) ** sp.Rational(order, 2)
    return claim(f"central moment {order} of xhat", mm, [(lhs, rhs)])


# --------------------------------------------------------------------------- sigmoid
def sigmoid_linear_fit(scale: float = 1.0, shift: float = 0.0, dps: int = 30) -> dict[str, float]:
    r"""How linear the sigmoid is on :math:`z = \gamma u + \beta` with :math:`u \sim N(0, 1)`.

    Returns ``r2``: the share of the variance of :math:`\sigma(z)` that the best straight line
    in :math:`u` explains; ``lo``, ``hi``: the central 95% interval of :math:`z`; ``range_95``:
    the part of the sigmoid's range (0, 1) that this interval maps to; ``slope_edge``: the
    sigmoid's slope at the edge of the interval farther from 0, relative to its maximum 1/4.
    The Gaussian integrals are computed by mpmath's quadrature (SymPy's numerics) at ``dps``
    decimal digits.
    """
    import mpmath

    for name, v in (("scale", scale), ("shift", shift)):
        if not _is_real(v) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}.")
    if not _is_int(dps) or dps < 1:
        raise ValueError(f"dps must be a positive integer number of decimal digits, got {dps!r}.")
    scale, shift, dps = float(scale), float(shift), int(dps)
    with mpmath.workdps(dps):
        g, c = mpmath.mpf(scale), mpmath.mpf(shift)

        def sig(z):
            return 1 / (1 + mpmath.exp(-z))

        def expect(f):
            return mpmath.quad(lambda u: mpmath.npdf(u) * f(u), [-mpmath.inf, 0, mpmath.inf])

        mean = expect(lambda u: sig(g * u + c))
        var_s = expect(lambda u: (sig(g * u + c) - mean) ** 2)
        cov = expect(lambda u: sig(g * u + c) * u)  # E[u] = 0 and Var[u] = 1
        z95 = mpmath.sqrt(2) * mpmath.erfinv(mpmath.mpf("0.95"))
        lo, hi = c - z95 * abs(g), c + z95 * abs(g)
        edge = max(abs(lo), abs(hi))
        return {
            "r2": float(cov**2 / var_s),
            "lo": float(lo),
            "hi": float(hi),
            "range_95": float(sig(hi) - sig(lo)),
            "slope_edge": float(4 * sig(edge) * (1 - sig(edge))),
        }
