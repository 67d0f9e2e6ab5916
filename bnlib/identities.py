"""Numerical checks of BN's exact identities with :mod:`bnlib.functional` in float64: scale invariance,
the identity transform, and the gradient's projection. The claims ledger reports them as checked,
apart from the empirical verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bnlib import functional as F


def scale_invariance_check(seed: int = 0, scales: Sequence[float] = (0.01, 0.1, 10.0, 100.0), m: int = 32,
                           n_in: int = 20, n_out: int = 8, eps: float = 1e-5) -> dict:
    """BN(aWu) against BN(Wu) with bnlib.functional (forward and hand-derived backward), float64.

    Returns ``max_out_diff`` and ``max_grad_rel`` (over ``scales``, with epsilon = 0), and the
    same two with the given ``eps`` (``*_eps``): with epsilon > 0 the invariance is only
    approximate, most visibly for small ``a``.
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(m, n_in))
    w = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
    gamma, beta, dy = rng.normal(size=n_out), rng.normal(size=n_out), rng.normal(size=(m, n_out))
    out = {}
    for tag, e in (("", 0.0), ("_eps", eps)):
        y0, cache0 = F.forward(u @ w.T, gamma, beta, eps=e)
        g0 = F.backward(dy, cache0)[0].T @ u
        d_out = d_grad = 0.0
        for a in scales:
            y, cache = F.forward(u @ (a * w).T, gamma, beta, eps=e)
            g = F.backward(dy, cache)[0].T @ u
            d_out = max(d_out, float(np.abs(y - y0).max()))
            d_grad = max(d_grad, float(np.abs(a * g - g0).max() / np.abs(g0).max()))
        out["max_out_diff" + tag], out["max_grad_rel" + tag] = d_out, d_grad
    out["eps"] = eps
    return out



def identity_check(seed: int = 0, m: int = 64, c: int = 10, eps: float = 1e-5) -> dict:
    """BN set to the identity with bnlib.functional: ``train_rel`` (batch statistics, gamma = sqrt(sigma_B^2 + eps),
    beta = mu_B) and ``inference_rel`` (given statistics) are the max |y - x| / max |x|."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=rng.normal(size=c) * 3, scale=rng.uniform(0.1, 5, size=c), size=(m, c))
    mu, var = x.mean(axis=0), x.var(axis=0)
    y, _ = F.forward(x, np.sqrt(var + eps), mu, eps=eps)
    pm, pv = rng.normal(size=c), rng.uniform(0.5, 2, size=c)
    yi = F.inference(x, pm, pv, np.sqrt(pv + eps), pm, eps=eps)
    scale = float(np.abs(x).max())
    return {"train_rel": float(np.abs(y - x).max()) / scale, "inference_rel": float(np.abs(yi - x).max()) / scale}



def gradient_projection_check(seed: int = 0, m: int = 60, c: int = 5, eps: float = 0.0) -> dict:
    """The squared norm of BN's input gradient against the projection formula of the why chapter:
    ``||dL/dx||^2 = gamma^2 / (sigma^2 + eps) * (||g||^2 - <1, g>^2 / m - <g, xhat>^2 / m)`` per
    channel, for a random batch and a random upstream gradient ``g`` (float64), with ``dL/dx``
    from :func:`bnlib.functional.backward`. Exact for ``eps = 0``.

    Returns ``max_rel`` (largest relative difference over channels) and ``shrink`` (per channel,
    ``||dL/dx|| / (gamma / sigma ||g||)``: the fraction of the rescaled gradient the projection keeps).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=rng.normal(size=c), scale=rng.uniform(0.5, 3, size=c), size=(m, c))
    gamma, beta = rng.uniform(0.5, 2, size=c), rng.normal(size=c)
    g = rng.normal(size=(m, c)) + rng.normal(size=c)  # an upstream gradient with a non-zero mean
    _, cache = F.forward(x, gamma, beta, eps=eps)
    dx = F.backward(g, cache)[0]
    xhat, var = cache["xhat"], cache["var"]
    scale2 = gamma**2 / (var + eps)
    formula = scale2 * ((g * g).sum(0) - g.sum(0) ** 2 / m - (g * xhat).sum(0) ** 2 / m)
    lhs = (dx * dx).sum(0)
    return {"max_rel": float(np.max(np.abs(lhs - formula) / formula)),
            "shrink": (np.sqrt(lhs / (scale2 * (g * g).sum(0)))).tolist()}
