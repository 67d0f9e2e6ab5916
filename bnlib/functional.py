"""Batch Normalization in NumPy: forward, backward, inference, running statistics, folding.

Every function is a pure function in the style of CS231n's ``layers.py``: ``forward``
returns ``(y, cache)`` and ``backward`` turns ``(dy, cache)`` into gradients. Arrays are
float32 or float64, with layout ``(N, C)`` or ``(N, C, H, W)``. Statistics are taken over
every axis except axis 1: per feature for a fully connected layer, per feature map (over
the batch and all spatial positions) for a convolutional one, as in Ioffe & Szegedy (2015),
Sec. 3.2.

Equation numbers in the comments refer to Algorithm 1 and the six chain-rule equations of
Sec. 3 of the paper.
"""

from __future__ import annotations

import math

import numpy as np

from bnlib import _checks as C

__all__ = [
    "forward",
    "backward",
    "backward_staged",
    "inference",
    "update_running",
    "population_stats",
    "fuse_linear_bn_weights",
    "fuse_conv_bn_weights",
    "fold_linear",
    "fold_conv",
    "running_conventions",
    "half_life",
    "steps_to_forget",
]


# --------------------------------------------------------------------------- checks
def _check_input(x) -> tuple[np.ndarray, tuple[int, ...]]:
    """Type, dtype and shape of ``x``; returns ``x`` (in native byte order) and the axes the statistics are
    taken over.

    Finiteness is checked on the per-channel sums the callers compute anyway (a NaN or an
    infinity anywhere in a channel makes its sum non-finite), which costs no extra pass.
    """
    x = C.float_array("x", x, finite=False)
    if x.ndim not in (2, 4):
        raise ValueError(
            f"x must have shape (N, C) or (N, C, H, W), got {x.ndim} dimensions with shape {x.shape}."
        )
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one channel (axis 1), got shape {x.shape}.")
    return x, (0,) if x.ndim == 2 else (0, 2, 3)


def _check_finite_stats(name: str, *stats: np.ndarray) -> None:
    # One scalar sum of the per-channel statistics: NaN or infinity anywhere propagates into it.
    if not math.isfinite(sum(float(s.sum()) for s in stats)):
        raise ValueError(
            f"{name} contains NaN or infinite values (or values so large that their per-channel sums overflow); "
            "the batch statistics and gradients would be undefined."
        )


# --------------------------------------------------------------------------- forward
def forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5):
    """Batch-normalize ``x`` with its mini-batch statistics (Algorithm 1), per channel.

    Inputs:
    - x: (N, C) or (N, C, H, W), float32 or float64; statistics over every axis but 1 (m values)
    - gamma, beta: (C,), cast to x's dtype
    - eps: added to the biased batch variance
    Returns (y, cache): y has x's shape and dtype; cache holds what :func:`backward` needs (``xhat``,
    ``mu`` and biased ``var`` of shape (C,), ``inv_std``, ``gamma``, ``m``, ``axes``). The mean and
    variance are two-pass (never E[x^2] - E[x]^2, which cancels catastrophically).
    """
    x, axes = _check_input(x)
    c = x.shape[1]
    gamma = C.per_channel("gamma", gamma, c, x.dtype)
    beta = C.per_channel("beta", beta, c, x.dtype)
    C.eps(eps)
    eps = float(eps)
    m = x.size // c
    if m < 2:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input of shape {x.shape}: "
            "batch statistics need at least two values per channel."
        )
    bs = C.bshape(x)
    with np.errstate(over="ignore", invalid="ignore"):  # NaN, inf and overflow are reported below
        mu = x.mean(axis=axes)  # mini-batch mean
        xmu = x - mu.reshape(bs)
        correction = xmu.mean(axis=axes)  # what rounding left of the mean (zero in exact arithmetic)
        mu += correction
        xmu -= correction.reshape(bs)
        var = (xmu * xmu).mean(axis=axes)  # mini-batch variance (biased, 1/m)
        _check_finite_stats("x", var)  # NaN or inf anywhere in a channel makes its variance NaN or inf
    if eps == 0 and np.any(var == 0):
        raise ValueError("a channel of x is constant and eps is 0, so its normalization divides by zero; use eps > 0.")
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))
    xhat = xmu * inv_std.reshape(bs)  # normalize
    y = xhat * gamma.reshape(bs) + beta.reshape(bs)  # scale and shift
    cache = {
        "x_mu": xmu,
        "xhat": xhat,
        "mu": mu,
        "var": var,
        "inv_std": inv_std,
        "gamma": gamma,
        "eps": eps,
        "axes": axes,
        "m": m,
    }
    return y, cache


_CACHE_KEYS = ("x_mu", "xhat", "mu", "var", "inv_std", "gamma", "eps", "axes", "m")


def _check_cache(cache) -> None:
    if not isinstance(cache, dict):
        raise TypeError(f"cache must be the dict that forward() returned, got {type(cache).__name__}.")
    missing = [k for k in _CACHE_KEYS if k not in cache]
    if missing:
        raise ValueError(f"cache must be the dict that forward() returned; it lacks {', '.join(missing)}.")


def _check_dy(dy, cache) -> np.ndarray:
    _check_cache(cache)
    dy = C.float_array("dy", dy, finite=False)
    xhat = cache["xhat"]
    if dy.shape != xhat.shape:
        raise ValueError(f"dy must have the shape of the forward input {xhat.shape}, got {dy.shape}.")
    if dy.dtype != xhat.dtype:
        raise TypeError(f"dy must have the dtype of the forward input ({xhat.dtype}), got {dy.dtype}.")
    return dy


# --------------------------------------------------------------------------- backward
def backward(dy: np.ndarray, cache: dict):
    """Gradients by the compact closed form the chapter *Backward* derives, per channel:
    ``dx = gamma / sqrt(var + eps) * (dy - (sum dy + xhat * sum dy xhat) / m)``.

    Inputs:
    - dy: upstream gradient, the shape and dtype of the forward input
    - cache: from :func:`forward`
    Returns (dx, dgamma, dbeta): dx like dy; dgamma and dbeta of shape (C,).
    """
    dy = _check_dy(dy, cache)
    axes, m, xhat = cache["axes"], cache["m"], cache["xhat"]
    bs = C.bshape(xhat)
    with np.errstate(over="ignore", invalid="ignore"):  # NaN, inf and overflow are reported just below
        dbeta = dy.sum(axis=axes)
        dgamma = np.einsum(_EINSUM[xhat.ndim], dy, xhat)  # sum_i dy_i xhat_i without a temporary
    _check_finite_stats("dy", dbeta, dgamma)
    scale = cache["gamma"] * cache["inv_std"]  # gamma / sqrt(var + eps)
    # dx = scale * (dy - dbeta / m - xhat * dgamma / m): one temporary, four passes
    dx = xhat * (dgamma / -m).reshape(bs)
    dx += dy
    dx -= (dbeta / m).reshape(bs)
    dx *= scale.reshape(bs)
    return dx, dgamma, dbeta


_EINSUM = {2: "nc,nc->c", 4: "nchw,nchw->c"}


def backward_staged(dy: np.ndarray, cache: dict):
    """Gradients by the paper's six chain-rule equations (Sec. 3), one line each, in its order: the
    derivation as printed, kept for teaching and as a cross-check of :func:`backward`.

    Inputs: dy (the forward input's shape), cache (from :func:`forward`).
    Returns (dx, dgamma, dbeta): dx like dy; dgamma and dbeta of shape (C,).
    """
    dy = _check_dy(dy, cache)
    with np.errstate(over="ignore", invalid="ignore"):  # NaN, inf and overflow are reported at the end
        dx, dgamma, dbeta = _staged(dy, cache)
    _check_finite_stats("dy", dbeta, dgamma)
    return dx, dgamma, dbeta


def _staged(dy: np.ndarray, cache: dict):
    axes, m = cache["axes"], cache["m"]
    xmu, xhat = cache["x_mu"], cache["xhat"]
    bs = C.bshape(xhat)
    var_eps = cache["var"] + xhat.dtype.type(cache["eps"])
    # (1) dl/dxhat_i = dl/dy_i * gamma
    dxhat = dy * cache["gamma"].reshape(bs)
    # (2) dl/dsigma^2 = sum_i dl/dxhat_i (x_i - mu) * (-1/2) (sigma^2 + eps)^(-3/2)
    dvar = (dxhat * xmu).sum(axis=axes) * -0.5 * var_eps**-1.5
    # (3) dl/dmu = sum_i dl/dxhat_i * (-1/sqrt(sigma^2 + eps)) + dl/dsigma^2 * sum_i -2 (x_i - mu) / m
    dmu = (dxhat * -1.0 / np.sqrt(var_eps).reshape(bs)).sum(axis=axes) + dvar * (-2.0 * xmu).sum(axis=axes) / m
    # (4) dl/dx_i = dl/dxhat_i / sqrt(sigma^2 + eps) + dl/dsigma^2 * 2 (x_i - mu) / m + dl/dmu / m
    dx = (
        dxhat / np.sqrt(var_eps).reshape(bs)
        + dvar.reshape(bs) * 2.0 * xmu / m
        + dmu.reshape(bs) / m
    )
    # (5) dl/dgamma = sum_i dl/dy_i xhat_i
    dgamma = (dy * xhat).sum(axis=axes)
    # (6) dl/dbeta = sum_i dl/dy_i
    dbeta = dy.sum(axis=axes)
    return dx.astype(xhat.dtype, copy=False), dgamma, dbeta


# --------------------------------------------------------------------------- inference
def inference(x, mean, var, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """BN at inference, ``y = gamma * (x - mean) / sqrt(var + eps) + beta``, with fixed statistics.

    Inputs:
    - x: (N, C) or (N, C, H, W), any N >= 1
    - mean, var, gamma, beta: (C,), cast to x's dtype
    Returns y, x's shape and dtype (computed as ``x * scale + shift``, the map folding removes).
    """
    x, _ = _check_input(x)
    C.float_array("x", x)
    c = x.shape[1]
    mean, var, gamma, beta = (
        C.per_channel(n, a, c, x.dtype)
        for n, a in (("mean", mean), ("var", var), ("gamma", gamma), ("beta", beta))
    )
    C.eps(eps)
    eps = float(eps)
    if np.any(var < 0):
        raise ValueError("var must be non-negative (it is a variance).")
    if eps == 0 and np.any(var == 0):
        raise ValueError("var has a zero entry and eps is 0, so the normalization would divide by zero; use eps > 0.")
    bs = C.bshape(x)
    scale = gamma / np.sqrt(var + x.dtype.type(eps))
    return x * scale.reshape(bs) + (beta - mean * scale).reshape(bs)


# --------------------------------------------------------------------------- running statistics
def update_running(
    running_mean,
    running_var,
    batch_mean,
    batch_var,
    n: int,
    momentum: float | None = 0.1,
    convention: str = "torch",
    num_batches_tracked: int | None = None,
):
    """One update of the running (population) statistics.

    Inputs:
    - running_mean, running_var: (C,), the statistics so far
    - batch_mean, batch_var: (C,), the batch mean and *biased* variance of ``n`` values per channel
    - convention: ``"torch"``: ``new = (1 - momentum) old + momentum batch`` with the variance made
      unbiased by n/(n-1) (``momentum=None``: cumulative average over ``num_batches_tracked``
      batches, this one included); ``"keras"``: ``new = momentum old + (1 - momentum) batch`` with
      the biased variance (PyTorch's momentum p is Keras' 1 - p)
    Returns (new_mean, new_var), each (C,).
    """
    if convention not in ("torch", "keras"):
        raise ValueError(f"convention must be 'torch' or 'keras', got {convention!r}.")
    n_min = 2 if convention == "torch" else 1
    if isinstance(n, bool) or not (isinstance(n, (int, np.integer)) and n >= n_min):
        raise ValueError(
            f"n must be an integer of at least {n_min} (values per channel in the batch), got {n!r}."
        )
    n = int(n)
    arrays = [
        _as_float_array("running_mean", running_mean),
        _as_float_array("running_var", running_var),
        _as_float_array("batch_mean", batch_mean),
        _as_float_array("batch_var", batch_var),
    ]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(
            "running_mean, running_var, batch_mean and batch_var must have the same shape, got "
            + ", ".join(str(a.shape) for a in arrays) + "."
        )
    rm, rv, bm, bv = arrays
    if np.any(rv < 0) or np.any(bv < 0):
        raise ValueError("running_var and batch_var must be non-negative (they are variances).")
    if momentum is None:
        if convention != "torch":
            raise ValueError("momentum=None (cumulative average) is PyTorch's convention; use convention='torch'.")
        if isinstance(num_batches_tracked, bool) or not (
            isinstance(num_batches_tracked, (int, np.integer)) and num_batches_tracked >= 1
        ):
            raise ValueError(
                "momentum=None needs num_batches_tracked, the number of batches seen including this one (>= 1), "
                f"got {num_batches_tracked!r}."
            )
        factor = 1.0 / num_batches_tracked
    else:
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.integer, np.floating)):
            raise TypeError(f"momentum must be a number in [0, 1] or None, got {type(momentum).__name__}.")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum!r}.")
        factor = float(momentum) if convention == "torch" else 1.0 - float(momentum)
    if convention == "torch":
        bv = bv * (n / (n - 1))
    return (1.0 - factor) * rm + factor * bm, (1.0 - factor) * rv + factor * bv


def _as_float_array(name: str, a) -> np.ndarray:
    """``a`` as a float array (lists and scalars accepted, integers converted to float64), finite."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain NumPy array, got a masked array; pass a.filled(value) or "
                        "a.compressed() to say what the masked entries mean.")
    if a is None or isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be an array of float32 or float64 numbers, got {type(a).__name__}.")
    try:
        arr = np.asarray(a)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers ({e}).") from None
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be an array of float32 or float64 numbers, got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def population_stats(batch_means, batch_vars, m: int):
    """Algorithm 2 of the paper: ``E[x] = E_B[mu_B]``, ``Var[x] = m/(m-1) E_B[sigma_B^2]``.

    Inputs: batch_means, batch_vars: (K, C), each of K mini-batches' mean and biased variance; m: values
    per channel in a mini-batch. Returns (mean, var), each (C,), float64.
    """
    bm = _as_float_array("batch_means", batch_means).astype(np.float64, copy=False)
    bv = _as_float_array("batch_vars", batch_vars).astype(np.float64, copy=False)
    if bm.ndim != 2 or bm.shape != bv.shape or bm.shape[0] == 0:
        raise ValueError(
            f"batch_means and batch_vars must both have shape (K, C) with K >= 1, got {bm.shape} and {bv.shape}."
        )
    if np.any(bv < 0):
        raise ValueError("batch_vars must be non-negative (they are variances).")
    if isinstance(m, bool) or not (isinstance(m, (int, np.integer)) and m >= 2):
        raise ValueError(f"m must be an integer of at least 2 (the mini-batch size), got {m!r}.")
    m = int(m)
    return bm.mean(axis=0), m / (m - 1) * bv.mean(axis=0)


# --------------------------------------------------------------------------- folding
_FOLD_NAMES = ("W", "b", "mean", "var", "gamma", "beta", "eps")


def _fold(W, b, mean, var, gamma, beta, eps, names=_FOLD_NAMES, ndim=2):
    nW, nb, nmean, nvar, ngamma, nbeta, neps = names
    W = C.float_array(nW, W)
    if W.ndim != ndim:
        layout = "(out_features, in_features)" if ndim == 2 else "(out_channels, in_channels, kh, kw)"
        raise ValueError(f"{nW} must have shape {layout}, got shape {W.shape}.")
    c = W.shape[0]
    mean, var, gamma, beta = (
        C.per_channel(n, a, c, W.dtype)
        for n, a in ((nmean, mean), (nvar, var), (ngamma, gamma), (nbeta, beta))
    )
    b = np.zeros(c, dtype=W.dtype) if b is None else C.per_channel(nb, b, c, W.dtype)
    if isinstance(eps, bool) or not (isinstance(eps, (int, float, np.integer, np.floating))
                                     and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{neps} must be a finite non-negative number, got {eps!r}.")
    eps = float(eps)
    if np.any(var < 0):
        raise ValueError(f"{nvar} must be non-negative (it is a variance).")
    if eps == 0 and np.any(var == 0):
        raise ValueError(f"{nvar} has a zero entry and {neps} is 0, so the folded weights would divide by zero; "
                         "use eps > 0.")
    scale = gamma / np.sqrt(var + eps)
    W_f = W * scale.reshape((c,) + (1,) * (W.ndim - 1))
    b_f = (b - mean) * scale + beta
    return W_f.astype(W.dtype, copy=False), b_f.astype(W.dtype, copy=False)


def fold_linear(W, b, mean, var, gamma, beta, eps: float = 1e-5):
    """Fold an inference-mode BN into the preceding linear layer ``y = x W^T + b``.

    ``W`` has shape ``(out, in)`` (PyTorch's layout), ``b`` shape ``(out,)`` or None. Returns
    ``(W', b')`` with ``BN(x W^T + b) = x W'^T + b'``; the argument order follows
    ``torch.nn.utils.fusion.fuse_linear_bn_weights`` with gamma/beta last.
    """
    return _fold(W, b, mean, var, gamma, beta, eps)


def fold_conv(W, b, mean, var, gamma, beta, eps: float = 1e-5):
    """Fold an inference-mode BN into the preceding convolution.

    ``W`` has shape ``(out_channels, in_channels, kh, kw)``, ``b`` shape ``(out_channels,)`` or None.
    """
    return _fold(W, b, mean, var, gamma, beta, eps, ndim=4)


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """:func:`fold_linear` with the names and argument order of ``torch.nn.utils.fusion.fuse_linear_bn_weights``.

    Inputs: ``linear_w`` (out, in), ``linear_b`` (out,) or None, running mean and variance, ``eps``,
    BN's ``gamma`` and ``beta`` (out,). Returns ``(W', b')`` with ``BN(x W^T + b) = x W'^T + b'``.
    """
    return _fold(linear_w, linear_b, bn_rm, bn_rv, bn_w, bn_b, bn_eps,
                 ("linear_w", "linear_b", "bn_rm", "bn_rv", "bn_w", "bn_b", "bn_eps"))


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """:func:`fold_conv` with the names and argument order of ``torch.nn.utils.fusion.fuse_conv_bn_weights``.

    Inputs: ``conv_w`` (out, in, kh, kw), ``conv_b`` (out,) or None, then as :func:`fuse_linear_bn_weights`.
    """
    return _fold(conv_w, conv_b, bn_rm, bn_rv, bn_w, bn_b, bn_eps,
                 ("conv_w", "conv_b", "bn_rm", "bn_rv", "bn_w", "bn_b", "bn_eps"), ndim=4)


# --------------------------------------------------------------------------- running-average conventions
def running_conventions(batch_means, batch_vars, n: int, torch_momentum: float = 0.1,
                        init: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Running averages of a sequence of batch statistics under both conventions.

    ``batch_means`` and ``batch_vars`` (biased) have shape ``(K, C)``, from batches of ``n``
    values per channel. With ``p = torch_momentum`` returns trajectories (shape ``(K, C)``)
    ``torch_mean``/``torch_var`` (PyTorch, momentum ``p``), ``keras_mean``/``keras_var``
    (Keras, momentum ``1 - p``, biased variance), and ``keras_var_unbiased`` (Keras fed the
    unbiased batch variance ``n/(n-1) sigma_B^2``), each from ``init`` = (mean, var).
    """
    bm = _as_float_array("batch_means", batch_means).astype(np.float64, copy=False)
    bv = _as_float_array("batch_vars", batch_vars).astype(np.float64, copy=False)
    if bm.ndim != 2 or bm.shape != bv.shape:
        raise ValueError(f"batch_means and batch_vars must both have shape (K, C), got {bm.shape} and {bv.shape}.")
    if isinstance(n, bool) or not (isinstance(n, (int, np.integer)) and n >= 2):
        raise ValueError(f"n must be an integer of at least 2 (values per channel in a batch), got {n!r}.")
    n = int(n)
    torch_momentum = C.number("torch_momentum", torch_momentum, 0.0, 1.0, what=" (PyTorch's momentum)")
    if not (isinstance(init, (tuple, list)) and len(init) == 2):
        raise ValueError(f"init must be a pair (mean, var) of numbers, got {init!r}.")
    init = (C.number("init mean", init[0]), C.number("init var", init[1], 0.0))
    c = bm.shape[1]
    state = {k: (np.full(c, init[0]), np.full(c, init[1])) for k in ("torch", "keras", "keras_u")}
    traj: dict = {k: [] for k in ("torch_mean", "torch_var", "keras_mean", "keras_var", "keras_var_unbiased")}
    for m, v in zip(bm, bv, strict=True):
        state["torch"] = update_running(*state["torch"], m, v, n, momentum=torch_momentum, convention="torch")
        state["keras"] = update_running(*state["keras"], m, v, n, momentum=1 - torch_momentum, convention="keras")
        state["keras_u"] = update_running(*state["keras_u"], m, v * n / (n - 1), n, momentum=1 - torch_momentum,
                                            convention="keras")
        traj["torch_mean"].append(state["torch"][0])
        traj["torch_var"].append(state["torch"][1])
        traj["keras_mean"].append(state["keras"][0])
        traj["keras_var"].append(state["keras"][1])
        traj["keras_var_unbiased"].append(state["keras_u"][1])
    return {k: np.array(v).reshape(len(bm), c) for k, v in traj.items()}



def half_life(torch_momentum: float) -> float:
    """Number of batches after which an old value keeps half its weight in the running average:
    ``ln 2 / -ln(1 - p)`` for PyTorch momentum ``p`` (Keras momentum ``1 - p``)."""
    torch_momentum = C.number("torch_momentum", torch_momentum, 0.0, 1.0, lo_open=True, hi_open=True)
    return math.log(2.0) / -math.log1p(-torch_momentum)



def stream_of_batches(k: int, c: int, n: int, mean: float, std: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``k`` batches of ``n`` Gaussian values for ``c`` channels: their means and biased variances."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, std, size=(k, n, c))
    return x.mean(axis=1), x.var(axis=1)



def steps_to_forget(torch_momentum: float, weight: float) -> int:
    """Fewest updates ``k`` after which the initial value weighs at most ``weight`` in a running
    average with PyTorch momentum ``p``: the smallest ``k`` with ``(1 - p)^k <= weight``."""
    half_life(torch_momentum)  # validates torch_momentum
    torch_momentum = float(torch_momentum)
    weight = C.number("weight", weight, 0.0, 1.0, lo_open=True, hi_open=True)
    k = math.ceil(math.log(weight) / math.log1p(-torch_momentum))
    # guard the boundary against rounding in the logarithms
    while k > 0 and (1 - torch_momentum) ** (k - 1) <= weight:
        k -= 1
    while (1 - torch_momentum) ** k > weight:
        k += 1
    return k
