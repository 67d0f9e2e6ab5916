"""The SymPy expressions as NumPy functions (``sympy.lambdify``), and their agreement with an implementation."""

from __future__ import annotations

import functools

import sympy as sp

from bnlib.symbolic.backward import autodiff_dx, compact_dx, jacobian, staged_dx
from bnlib.symbolic.core import (
    _as_expression,
    _is_int,
    _is_real,
    _sum_out_delta,
    batch,
    beta,
    dy,
    eps,
    gamma,
    m,
    var,
    x,
)

__all__ = [
    "numeric", "numeric_report", "relative_error",
]


def _sum_out_deltas(expr):
    """``expr`` with each Kronecker delta inside a sum summed out (rule 2); the sums themselves kept."""
    def one(s):
        if not s.function.has(sp.KroneckerDelta):
            return s
        if len(s.limits) > 1:
            return one(sp.Sum(one(sp.Sum(s.function, s.limits[0])), *s.limits[1:]))
        (idx, lo, hi), = s.limits
        terms = []
        for term in sp.Add.make_args(sp.expand_mul(s.function)):
            summed = _sum_out_delta(term, idx)
            terms.append(sp.Sum(term, (idx, lo, hi)) if summed is None else summed)
        return sp.Add(*terms)

    return _as_expression(expr, "numeric").replace(lambda e: isinstance(e, sp.Sum), one)


def numeric():
    """NumPy functions lambdified from this module's SymPy expressions, for every batch size.

    The sums stay sums (``lambdify`` writes them as Python loops over the batch), so ``m`` is
    an argument. ``x`` and ``dy`` are arrays of shape ``(m + 1, C)`` whose row 0 is padding
    (SymPy's indices start at 1); ``t``, ``r``, ``c`` are 1-based indices, integers or integer
    arrays. Returns a dict of functions:

    - ``xhat(x, m, t, eps)`` and ``y(x, m, t, gamma, beta, eps)``: Algorithm 1;
    - ``dx_autodiff``, ``dx_compact``, ``dx_staged``: ``(x, dy, m, t, gamma, eps)``, SymPy's
      derivative, the compact form and the paper's equations composed;
    - ``dgamma(x, dy, m, eps)``, ``dbeta(dy, m)``: SymPy's derivatives;
    - ``jacobian(x, m, r, c, eps)``: SymPy's ``d xhat_r / d x_c``;
    - ``var_xhat(var, eps)``: the variance of xhat that :func:`variance_of_xhat` proves.
    """
    return dict(_numeric())


@functools.lru_cache(maxsize=1)
def _numeric():
    import numpy as np

    b = batch(m)
    t, r, c = sp.symbols("t r c", integer=True, positive=True)
    kd = sp.Function("kronecker")
    mods = [{"kronecker": lambda p, q: np.equal(p, q).astype(float)}, "numpy"]

    def lam(args, expr):
        expr = _sum_out_deltas(expr).replace(lambda e: isinstance(e, sp.KroneckerDelta), lambda e: kd(*e.args))
        return sp.lambdify(args, expr, modules=mods)

    return {
        "xhat": lam((x, m, t, eps), b.xhat(t)),
        "y": lam((x, m, t, gamma, beta, eps), b.y(t)),
        "dx_autodiff": lam((x, dy, m, t, gamma, eps), autodiff_dx(m, t)),
        "dx_compact": lam((x, dy, m, t, gamma, eps), compact_dx(m, t)),
        "dx_staged": lam((x, dy, m, t, gamma, eps), staged_dx(m, t)),
        "dgamma": lam((x, dy, m, eps), sp.diff(b.loss, gamma)),
        "dbeta": lam((dy, m), sp.diff(b.loss, beta)),
        "jacobian": lam((x, m, r, c, eps), jacobian(m, r, c)),
        "var_xhat": lam((var, eps), var / (var + eps)),
    }


def numeric_report(forward, backward, m_values=(2, 5, 64), channels: int = 3, eps_value: float = 1e-5,
                   seed: int = 0) -> dict[str, float]:
    """The lambdified SymPy results (:func:`numeric`) against an implementation, at random points.

    ``forward(x, gamma, beta, eps) -> (y, cache)`` and ``backward(dy, cache) -> (dx, dgamma,
    dbeta)`` are the functions to check (``bnlib.functional.forward`` and ``backward`` or
    ``backward_staged``); the cache must hold ``xhat`` and ``var``. For every batch size in
    ``m_values``, float64 data with a different offset and spread per channel are drawn from
    ``numpy.random.default_rng(seed)``. Returns, per quantity, the largest relative error
    ``max|sympy - impl| / max|impl|`` over all batch sizes: ``y``, ``dx`` (against each of
    SymPy's derivative, the compact form and the paper's equations composed), ``dgamma``,
    ``dbeta``, ``mean_xhat`` (absolute: the mean is 0), ``var_xhat`` (against
    sigma^2/(sigma^2+eps)) and ``jacobian`` (each column of SymPy's Jacobian against the
    backward pass of a basis vector).
    """
    import numpy as np

    if not (callable(forward) and callable(backward)):
        raise TypeError(f"forward and backward must be functions, got {type(forward).__name__} and "
                        f"{type(backward).__name__}.")
    if isinstance(m_values, (str, bytes)) or not hasattr(m_values, "__iter__"):
        raise TypeError(f"m_values must be a sequence of batch sizes, got {type(m_values).__name__}.")
    m_values = tuple(m_values)
    if not m_values or not all(_is_int(v) and v >= 2 for v in m_values):
        raise ValueError(f"m_values must be a non-empty sequence of integers of at least 2, got {m_values!r}.")
    if not _is_int(channels) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}.")
    if not _is_real(eps_value) or not (0 <= eps_value < float("inf")):
        raise ValueError(f"eps_value must be a finite non-negative number, got {eps_value!r}.")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    m_values, channels, eps_value = tuple(int(v) for v in m_values), int(channels), float(eps_value)
    fns = numeric()
    rng = np.random.default_rng(seed)
    err: dict[str, float] = {}

    def note(name, value):
        err[name] = max(err.get(name, 0.0), value)

    for mv in m_values:
        xv = rng.normal(size=(mv, channels)) * rng.uniform(0.5, 3.0, channels) + rng.normal(0, 5, channels)
        g, bt, d = rng.normal(size=channels), rng.normal(size=channels), rng.normal(size=(mv, channels))
        y, cache = forward(xv, g, bt, eps_value)
        dx, dg, db = backward(d, cache)
        pad = np.zeros((1, channels))
        X, D, t = np.vstack([pad, xv]), np.vstack([pad, d]), np.arange(1, mv + 1)
        note("y", relative_error(fns["y"](X, mv, t, g, bt, eps_value), y))
        for kind in ("autodiff", "compact", "staged"):
            note(f"dx_{kind}", relative_error(fns[f"dx_{kind}"](X, D, mv, t, g, eps_value), dx))
        note("dgamma", relative_error(fns["dgamma"](X, D, mv, eps_value), dg))
        note("dbeta", relative_error(fns["dbeta"](D, mv), db))
        note("mean_xhat", float(np.max(np.abs(cache["xhat"].mean(axis=0)))))
        note("var_xhat", relative_error(fns["var_xhat"](cache["var"], eps_value), cache["xhat"].var(axis=0)))
        # the Jacobian of channel 0: the backward pass of dy = e_c (gamma = 1) is row c of J
        x0 = np.repeat(xv[:, :1], mv, axis=1)
        _, c0 = forward(x0, np.ones(mv), np.zeros(mv), eps_value)
        rows = backward(np.eye(mv), c0)[0].T
        jac = fns["jacobian"](X[:, 0], mv, t[:, None], t[None, :], eps_value)
        note("jacobian", relative_error(jac, rows))
    return err


def relative_error(got, want) -> float:
    """The normwise relative error ``max|got - want| / max|want|`` (``want`` all zero: divided by 1e-300)."""
    import numpy as np

    arrays = []
    for name, a in (("got", got), ("want", want)):
        if a is None or isinstance(a, (str, bytes)):
            raise TypeError(f"{name} must be an array of numbers, got {type(a).__name__}.")
        try:
            arrays.append(np.asarray(a, dtype=float))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an array of numbers, got {type(a).__name__}.") from None
    got, want = arrays
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))
