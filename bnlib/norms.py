"""Layer Normalization, Group Normalization and Batch Renormalization: NumPy functions and torch modules.

The three alternatives to BN that the train/test chapter compares with it. Each comes as a
pair of pure NumPy functions in the style of :mod:`bnlib.functional` (``*_forward`` returns
``(y, cache)``, ``*_backward`` turns ``(dy, cache)`` into gradients) and as a torch module
whose gradient is the same hand-derived formula, written as a ``torch.autograd.Function``
(as :class:`bnlib.nn.BatchNormFunction` does for BN). Arrays have layout ``(N, C)`` or
``(N, C, H, W)`` (the torch modules also take ``(N, C, L)``); the affine parameters
``gamma`` / ``weight`` and ``beta`` / ``bias`` have one value per channel in all three.

Which values share a mean and a variance:

- **Group Norm** (Wu & He, 2018), ``G`` groups of ``C / G`` consecutive channels: one mean
  and one variance per example and group, over that group's channels and all spatial
  positions. ``G`` must divide ``C``.
- **Layer Norm** (Ba et al., 2016), as the book's networks use it: one mean and one
  variance per example, over *every* axis but the batch axis, with a per-channel affine
  part. For an MLP hidden layer ``(N, C)`` that normalizes over the ``C`` units of each
  example and equals ``torch.nn.LayerNorm(C)``; for a convolutional layer ``(N, C, H, W)``
  it normalizes over ``(C, H, W)`` of each example with one ``gamma``/``beta`` per channel,
  which is Group Norm with one group and equals ``torch.nn.GroupNorm(1, C)`` (not
  ``torch.nn.LayerNorm((C, H, W))``, whose affine parameters are per position).
- **Batch Renorm** (Ioffe, 2017, Algorithm 1): per channel over the batch, as BN, then
  corrected towards the moving statistics ``mu`` and ``sigma`` (a moving *standard
  deviation*, not a variance)::

      mu_B = mean(x),  sigma_B = sqrt(mean((x - mu_B)^2) + eps)
      r = clip(sigma_B / sigma, 1 / r_max, r_max)      (treated as a constant: stop-gradient)
      d = clip((mu_B - mu) / sigma, -d_max, d_max)      (treated as a constant: stop-gradient)
      xhat = (x - mu_B) / sigma_B * r + d,   y = gamma * xhat + beta
      mu <- mu + momentum * (mu_B - mu),  sigma <- sigma + momentum * (sigma_B - sigma)

  ``r`` and ``d`` are computed with the moving statistics *before* their update. At
  inference ``y = gamma * (x - mu) / sigma + beta``, which is what training computes when
  neither clip is active. With ``r_max = 1`` and ``d_max = 0`` (``r = 1``, ``d = 0``) Batch
  Renorm *is* BN in training, forward and backward. :func:`renorm_schedule` gives the
  warm-up of ``(r_max, d_max)`` from ``(1, 0)`` to their final values.

And one more, for the "why does BN work" chapter:

- **l_p normalization** (Santurkar et al., 2018, Sec. 3.3): per channel over the batch, as BN,
  but divided by the batch's l_p average of the centred values instead of the standard
  deviation: ``s_p = (mean(|x - mu_B|^p) + eps)^(1/p)`` for finite ``p``, ``s_inf = max|x - mu_B| + eps``.
  ``p = 2`` is BN's training-mode transform exactly. A torch module (:class:`LpNorm`) whose
  gradient is torch autograd's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from bnlib import _checks as C
from bnlib.nn import _NormBase

__all__ = [
    "layer_norm_forward",
    "layer_norm_backward",
    "group_norm_forward",
    "group_norm_backward",
    "batch_renorm_forward",
    "batch_renorm_backward",
    "batch_renorm_inference",
    "renorm_schedule",
    "RenormSchedule",
    "PAPER_SCHEDULE",
    "BOOK_SCHEDULE",
    "GroupNormFunction",
    "BatchRenormFunction",
    "LayerNorm",
    "GroupNorm",
    "BatchRenorm",
    "LpNorm",
]

# --------------------------------------------------------------------------- checks (NumPy)
def _check_input(x) -> np.ndarray:
    x = C.float_array("x", x)
    if x.ndim not in (2, 4):
        raise ValueError(
            f"x must have shape (N, C) or (N, C, H, W), got {x.ndim} dimensions with shape {x.shape}."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must hold at least one example and one channel, got shape {x.shape}.")
    return x


def _check_cache(cache, keys: tuple[str, ...], who: str) -> None:
    if not isinstance(cache, dict):
        raise TypeError(f"cache must be the dict that {who}() returned, got {type(cache).__name__}.")
    missing = [k for k in keys if k not in cache]
    if missing:
        raise ValueError(f"cache must be the dict that {who}() returned; it lacks {', '.join(missing)}.")


def _check_dy(dy, like: np.ndarray) -> np.ndarray:
    dy = C.float_array("dy", dy)
    if dy.shape != like.shape:
        raise ValueError(f"dy must have the shape of the forward input {like.shape}, got {dy.shape}.")
    if dy.dtype != like.dtype:
        raise TypeError(f"dy must have the dtype of the forward input ({like.dtype}), got {dy.dtype}.")
    return dy


def _check_groups(num_groups, c: int) -> None:
    if isinstance(num_groups, bool) or not (isinstance(num_groups, (int, np.integer)) and num_groups >= 1):
        raise ValueError(f"num_groups must be a positive integer, got {num_groups!r}.")
    if c % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the number of channels C={c} (groups of equal size).")


def _check_limits(r_max, d_max) -> tuple[float, float]:
    return (C.number("r_max", r_max, 1.0, what=" (r is clipped to [1/r_max, r_max])"),
            C.number("d_max", d_max, 0.0, what=" (d is clipped to [-d_max, d_max])"))


# --------------------------------------------------------------------------- Group Norm / Layer Norm (NumPy)
def group_norm_forward(x: np.ndarray, num_groups: int, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5):
    """Group Norm: normalize each example over groups of ``C / num_groups`` channels (and all positions).

    ``y = gamma * (x - mu_ng) / sqrt(var_ng + eps) + beta`` with the mean ``mu_ng`` and biased
    variance ``var_ng`` of example ``n``, group ``g``; ``gamma`` and ``beta`` per channel.
    Returns ``(y, cache)``; ``cache["mu"]`` and ``cache["var"]`` have shape ``(N, num_groups)``.
    """
    x = _check_input(x)
    n, c = x.shape[:2]
    _check_groups(num_groups, c)
    num_groups = int(num_groups)
    gamma = C.per_channel("gamma", gamma, c, x.dtype)
    beta = C.per_channel("beta", beta, c, x.dtype)
    C.eps(eps)
    xg = x.reshape(n, num_groups, -1)  # (N, G, M): the M values that share a mean and a variance
    mu = xg.mean(axis=2, keepdims=True)
    xmu = xg - mu
    var = (xmu * xmu).mean(axis=2, keepdims=True)  # biased, 1/M, two-pass
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))
    xhat = (xmu * inv_std).reshape(x.shape)
    bs = C.bshape(x)
    y = xhat * gamma.reshape(bs) + beta.reshape(bs)
    cache = {"xhat": xhat, "inv_std": inv_std, "gamma": gamma, "num_groups": num_groups,
             "mu": mu.reshape(n, num_groups), "var": var.reshape(n, num_groups), "eps": eps}
    return y, cache


def group_norm_backward(dy: np.ndarray, cache: dict):
    """Gradients ``(dx, dgamma, dbeta)`` of Group Norm by the closed form.

    With ``g = dy * gamma`` (per channel) and sums over the ``M`` values of one example's group,
    ``dx = inv_std / M * (M g - sum g - xhat * sum(g * xhat))`` (BN's formula with the roles of the
    axes exchanged); ``dgamma = sum_{n, h, w} dy * xhat``, ``dbeta = sum_{n, h, w} dy``.
    """
    _check_cache(cache, ("xhat", "inv_std", "gamma", "num_groups"), "group_norm_forward")
    xhat = cache["xhat"]
    dy = _check_dy(dy, xhat)
    axes = (0,) if dy.ndim == 2 else (0, 2, 3)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    n, g = xhat.shape[0], cache["num_groups"]
    gx = (dy * cache["gamma"].reshape(C.bshape(dy))).reshape(n, g, -1)
    xh = xhat.reshape(n, g, -1)
    dx = cache["inv_std"] * (gx - gx.mean(axis=2, keepdims=True) - xh * (gx * xh).mean(axis=2, keepdims=True))
    return dx.reshape(dy.shape).astype(xhat.dtype, copy=False), dgamma, dbeta


def layer_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5):
    """Layer Norm as the book uses it: per example over every axis but 0, per-channel ``gamma``/``beta``.

    ``(N, C)``: over the ``C`` units (``torch.nn.LayerNorm(C)``); ``(N, C, H, W)``: over
    ``(C, H, W)`` (``torch.nn.GroupNorm(1, C)``). Returns ``(y, cache)``; it is
    :func:`group_norm_forward` with one group, and ``cache["mu"]``, ``cache["var"]`` have shape ``(N, 1)``.
    """
    return group_norm_forward(x, 1, gamma, beta, eps)


def layer_norm_backward(dy: np.ndarray, cache: dict):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`layer_norm_forward` (Group Norm's formula, one group)."""
    return group_norm_backward(dy, cache)


# --------------------------------------------------------------------------- Batch Renorm (NumPy)
def batch_renorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_std: np.ndarray,
    r_max: float,
    d_max: float,
    eps: float = 1e-5,
    momentum: float = 0.01,
):
    """Batch Renorm in training (Ioffe 2017, Algorithm 1), per channel over every axis but 1.

    Returns ``(y, new_running_mean, new_running_std, cache)``: the output, the moving mean and
    moving standard deviation after the update ``s <- s + momentum * (batch value - s)`` (the
    paper's ``alpha`` is ``momentum``), and a cache with ``r``, ``d``, the batch mean ``mu`` and
    ``sigma`` (= ``sqrt(var + eps)``), one value per channel each. ``r`` and ``d`` use the
    moving statistics passed in, before their update.
    """
    x = _check_input(x)
    c = x.shape[1]
    gamma = C.per_channel("gamma", gamma, c, x.dtype)
    beta = C.per_channel("beta", beta, c, x.dtype)
    running_mean = C.per_channel("running_mean", running_mean, c, x.dtype)
    running_std = C.per_channel("running_std", running_std, c, x.dtype)
    if np.any(running_std <= 0):
        raise ValueError("running_std must be positive (it is a moving standard deviation).")
    r_max, d_max = _check_limits(r_max, d_max)
    C.eps(eps)
    C.momentum(momentum)
    eps, momentum = float(eps), float(momentum)
    m = x.size // c
    if m < 2:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input of shape {x.shape}: "
            "batch statistics need at least two values per channel."
        )
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    bs = C.bshape(x)
    mu = x.mean(axis=axes)
    xmu = x - mu.reshape(bs)
    sigma = np.sqrt((xmu * xmu).mean(axis=axes) + x.dtype.type(eps))  # sigma_B, eps inside the root
    r = np.clip(sigma / running_std, 1.0 / r_max, r_max).astype(x.dtype)
    d = np.clip((mu - running_mean) / running_std, -d_max, d_max).astype(x.dtype)
    z = xmu / sigma.reshape(bs)  # BN's normalized value
    xhat = z * r.reshape(bs) + d.reshape(bs)
    y = xhat * gamma.reshape(bs) + beta.reshape(bs)
    new_mean = running_mean + x.dtype.type(momentum) * (mu - running_mean)
    new_std = running_std + x.dtype.type(momentum) * (sigma - running_std)
    cache = {"z": z, "xhat": xhat, "r": r, "d": d, "mu": mu, "sigma": sigma, "gamma": gamma,
             "axes": axes, "m": m}
    return y, new_mean, new_std, cache


def batch_renorm_backward(dy: np.ndarray, cache: dict):
    """Gradients ``(dx, dgamma, dbeta)`` of Batch Renorm with ``r`` and ``d`` held constant.

    With ``z = (x - mu_B) / sigma_B`` and per-channel sums over the ``m`` values of the batch:
    ``dx = gamma * r / (m * sigma_B) * (m dy - sum dy - z * sum(dy * z))`` (BN's formula scaled by
    ``r``), ``dgamma = sum dy * xhat``, ``dbeta = sum dy``.
    """
    _check_cache(cache, ("z", "xhat", "r", "sigma", "gamma", "axes", "m"), "batch_renorm_forward")
    z = cache["z"]
    dy = _check_dy(dy, z)
    axes, m = cache["axes"], cache["m"]
    bs = C.bshape(dy)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache["xhat"]).sum(axis=axes)
    sdz = (dy * z).sum(axis=axes)
    scale = cache["gamma"] * cache["r"] / (m * cache["sigma"])
    dx = scale.reshape(bs) * (m * dy - dbeta.reshape(bs) - z * sdz.reshape(bs))
    return dx.astype(z.dtype, copy=False), dgamma, dbeta


def batch_renorm_inference(x, running_mean, running_std, gamma, beta) -> np.ndarray:
    """Batch Renorm at inference: ``y = gamma * (x - mu) / sigma + beta`` with the moving statistics."""
    x = _check_input(x)
    c = x.shape[1]
    running_mean, running_std, gamma, beta = (
        C.per_channel(name, a, c, x.dtype)
        for name, a in (("running_mean", running_mean), ("running_std", running_std), ("gamma", gamma),
                        ("beta", beta))
    )
    if np.any(running_std <= 0):
        raise ValueError("running_std must be positive (it is a moving standard deviation).")
    bs = C.bshape(x)
    return (x - running_mean.reshape(bs)) / running_std.reshape(bs) * gamma.reshape(bs) + beta.reshape(bs)


def _check_steps(name: str, v) -> None:
    if isinstance(v, bool) or not (isinstance(v, (int, np.integer)) and v >= 0):
        raise ValueError(f"{name} must be a non-negative integer number of steps, got {v!r}.")


@dataclass(frozen=True)
class RenormSchedule:
    """Batch Renorm's warm-up of the limits ``(r_max, d_max)``: plain BN for ``bn_steps`` steps, then two
    linear ramps, ``r_max`` reached at ``bn_steps + r_ramp_steps`` and ``d_max`` at ``bn_steps + d_ramp_steps``
    (a ramp of 0 steps is a jump at ``bn_steps``). The defaults are the paper's (Ioffe 2017, Sec. 4.1)."""

    r_max: float = 3.0
    d_max: float = 5.0
    bn_steps: int = 5000
    r_ramp_steps: int = 35_000
    d_ramp_steps: int = 20_000

    def __post_init__(self):
        _check_limits(self.r_max, self.d_max)
        for name in ("bn_steps", "r_ramp_steps", "d_ramp_steps"):
            _check_steps(name, getattr(self, name))

    def limits(self, step: int) -> tuple[float, float]:
        """``(r_max(step), d_max(step))``; ``step`` counts from 0::

            t = clip((step - bn_steps) / ramp_steps, 0, 1),  r_max(step) = 1 + (r_max - 1) t_r,  d_max(step) = d_max t_d
        """
        _check_steps("step", step)

        def frac(ramp: int) -> float:
            if step < self.bn_steps:
                return 0.0
            return 1.0 if ramp == 0 else min(1.0, (step - self.bn_steps) / ramp)

        return 1.0 + (float(self.r_max) - 1.0) * frac(self.r_ramp_steps), float(self.d_max) * frac(self.d_ramp_steps)

    def scaled(self, factor: float) -> RenormSchedule:
        """The same schedule with every step count multiplied by ``factor`` (rounded to whole steps)."""
        factor = C.number("factor", factor, 0.0, lo_open=True)
        return replace(self, **{k: int(round(getattr(self, k) * factor)) for k in ("bn_steps", "r_ramp_steps",
                                                                                     "d_ramp_steps")})


#: Ioffe (2017), Sec. 4.1: BN for 5,000 steps, ``r_max = 3`` at step 40,000, ``d_max = 5`` at 25,000.
PAPER_SCHEDULE = RenormSchedule()
#: The paper's schedule shortened tenfold for the book's runs of a few thousand steps (BatchRenorm's default).
BOOK_SCHEDULE = PAPER_SCHEDULE.scaled(0.1)


def renorm_schedule(step: int, schedule: RenormSchedule = PAPER_SCHEDULE) -> tuple[float, float]:
    """The limits ``(r_max, d_max)`` of ``schedule`` at ``step`` (:meth:`RenormSchedule.limits`)."""
    if not isinstance(schedule, RenormSchedule):
        raise TypeError(f"schedule must be a RenormSchedule, got {type(schedule).__name__}.")
    return schedule.limits(step)


# --------------------------------------------------------------------------- torch: autograd Functions
def _reduce_dims(x: torch.Tensor) -> list[int]:
    """Every axis but the channel axis 1."""
    return [0] + list(range(2, x.dim()))


def _per_channel(x: torch.Tensor) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


class GroupNormFunction(torch.autograd.Function):
    """Group Norm with the hand-derived backward of :func:`group_norm_backward`.

    ``GroupNormFunction.apply(x, num_groups, weight, bias, eps)`` with ``x`` of shape
    ``(N, C, *)``; ``weight`` and ``bias`` of shape ``(C,)`` or None. Layer Norm as the book
    uses it is ``num_groups=1``. The backward::

        g = dy * weight;  per example and group (M values):
        dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))
        dweight = sum_{n, *} dy * xhat,  dbias = sum_{n, *} dy
    """

    @staticmethod
    def forward(ctx, x, num_groups, weight, bias, eps):
        n = x.shape[0]
        xg = x.reshape(n, num_groups, -1)
        mean = xg.mean(2, keepdim=True)
        xmu = xg - mean
        inv_std = ((xmu * xmu).mean(2, keepdim=True) + eps).rsqrt_()
        xhat = (xmu * inv_std).reshape(x.shape)
        shape = _per_channel(x)
        y = xhat if weight is None else xhat * weight.view(shape)
        if bias is not None:
            y = y + bias.view(shape)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.num_groups = num_groups
        ctx.affine = (weight is not None, bias is not None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        xhat, inv_std, weight = ctx.saved_tensors
        has_weight, has_bias = ctx.affine
        dims = _reduce_dims(dy)
        dx = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            n = dy.shape[0]
            g = dy if weight is None else dy * weight.view(_per_channel(dy))
            g = g.reshape(n, ctx.num_groups, -1)
            xh = xhat.reshape(n, ctx.num_groups, -1)
            dx = (inv_std * (g - g.mean(2, keepdim=True) - xh * (g * xh).mean(2, keepdim=True))).reshape(dy.shape)
        if has_weight and ctx.needs_input_grad[2]:
            dweight = (dy * xhat).sum(dims)
        if has_bias and ctx.needs_input_grad[3]:
            dbias = dy.sum(dims)
        return dx, None, dweight, dbias, None


class BatchRenormFunction(torch.autograd.Function):
    """Batch Renorm in training with ``r`` and ``d`` as constants in the gradient (Ioffe 2017, Alg. 1).

    ``BatchRenormFunction.apply(x, weight, bias, running_mean, running_std, eps, r_max, d_max)``
    returns ``(y, mean, sigma, r, d)``: the output and, per channel, the batch mean, the batch
    standard deviation ``sqrt(var + eps)``, and the corrections ``r`` and ``d`` (computed with the
    moving statistics given, which are not modified); all but ``y`` carry no gradient. The
    backward is :func:`batch_renorm_backward`::

        z = (x - mean) / sigma,  dbias = sum dy,  dweight = r * sum(dy * z) + d * dbias
        dx = weight * r / sigma * (dy - dbias / m - z * sum(dy * z) / m)
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_std, eps, r_max, d_max):
        dims = _reduce_dims(x)
        shape = _per_channel(x)
        mean = x.mean(dims, keepdim=True)
        xmu = x - mean
        sigma = ((xmu * xmu).mean(dims, keepdim=True) + eps).sqrt_()
        rs, rm = running_std.view(shape), running_mean.view(shape)
        r = (sigma / rs).clamp_(1.0 / r_max, r_max)
        d = ((mean - rm) / rs).clamp_(-d_max, d_max)
        z = xmu / sigma
        y = z * r + d
        if weight is not None:
            y = y * weight.view(shape)
        if bias is not None:
            y = y + bias.view(shape)
        ctx.save_for_backward(z, sigma, r, d, weight)
        ctx.affine = (weight is not None, bias is not None)
        outs = (mean.view(-1), sigma.view(-1), r.view(-1), d.view(-1))
        ctx.mark_non_differentiable(*outs)
        return (y, *outs)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dsigma, _dr, _dd):
        z, sigma, r, d, weight = ctx.saved_tensors
        has_weight, has_bias = ctx.affine
        dims = _reduce_dims(dy)
        m = dy.numel() // dy.shape[1]
        dbeta = dy.sum(dims, keepdim=True)
        sdz = (dy * z).sum(dims, keepdim=True)
        dx = None
        if ctx.needs_input_grad[0]:
            scale = r / sigma if weight is None else weight.view(_per_channel(dy)) * r / sigma
            dx = scale * (dy - dbeta / m - z * (sdz / m))
        dweight = (r * sdz + d * dbeta).view(-1) if has_weight and ctx.needs_input_grad[1] else None
        dbias = dbeta.view(-1) if has_bias and ctx.needs_input_grad[2] else None
        return dx, dweight, dbias, None, None, None, None, None


# --------------------------------------------------------------------------- torch: modules
class GroupNorm(_NormBase):
    """Group Norm for ``(N, C, *)`` input, a drop-in for ``torch.nn.GroupNorm``.

    Same arguments (``num_groups``, ``num_channels``, ``eps``, ``affine``) and the same
    ``state_dict`` keys (``weight``, ``bias``, one value per channel), so state dicts load
    both ways. Identical in training and eval mode (no batch statistics). The gradient is
    the hand-derived formula of :class:`GroupNormFunction`.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        C.positive_int("num_groups", num_groups)
        C.positive_int("num_channels", num_channels)
        _check_groups(num_groups, num_channels)
        C.eps(eps)
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = float(eps)
        self._register_affine(num_channels, affine, {"device": device, "dtype": dtype})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C.tensor(type(self).__name__, x, self.num_channels, None if self.weight is None else self.weight.dtype)
        if x.shape[0] == 0:  # an empty batch: an empty output of x's shape, as torch.nn.GroupNorm gives
            return x * 1 if self.weight is None else x * self.weight.view(_per_channel(x)) + self.bias.view(
                _per_channel(x))
        return GroupNormFunction.apply(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm(GroupNorm):
    """Layer Norm as the book's networks use it: per example over every axis but 0, per-channel affine.

    ``LayerNorm(num_features)`` on ``(N, C)`` (an MLP hidden layer) normalizes the ``C`` units of
    each example, equal to ``torch.nn.LayerNorm(C)``; on ``(N, C, H, W)`` (a conv layer) it
    normalizes ``(C, H, W)`` of each example with one ``weight``/``bias`` per channel, equal to
    ``torch.nn.GroupNorm(1, C)``. ``state_dict`` keys ``weight`` and ``bias`` (shape ``(C,)``) load
    into either of those. Identical in training and eval mode.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, elementwise_affine: bool = True, device=None, dtype=None):
        num_features = C.positive_int("num_features", num_features)
        super().__init__(1, num_features, eps=eps, affine=elementwise_affine, device=device, dtype=dtype)
        self.num_features = num_features

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, elementwise_affine={self.affine}"


class BatchRenorm(_NormBase):
    """Batch Renormalization (Ioffe 2017) for ``(N, C)``, ``(N, C, L)`` and ``(N, C, H, W)`` input.

    Training mode: :class:`BatchRenormFunction` with the limits ``(r_max, d_max)`` that
    :func:`renorm_schedule` gives at ``step = num_batches_tracked`` (the number of training
    batches seen before this one), then the moving statistics move towards the batch ones
    with weight ``momentum`` (the paper's ``alpha``). Eval mode:
    ``y = weight * (x - running_mean) / running_std + bias``.

    ``state_dict`` keys: ``weight``, ``bias`` (if ``affine``), ``running_mean`` (starts at 0),
    ``running_std`` (a moving *standard deviation* ``sqrt(var + eps)``, starts at 1; not
    torch's ``running_var``) and ``num_batches_tracked`` (so a reloaded module resumes its
    warm-up where it stopped).

    The default warm-up is :data:`BOOK_SCHEDULE`, the paper's schedule shortened tenfold for the book's
    runs of a few thousand steps: BN for 500 steps, ``r_max = 3`` at step 4,000, ``d_max = 5`` at step 2,500.
    ``momentum = 0.01`` is the paper's ``alpha``. After each training forward, ``last_r`` and
    ``last_d`` hold that batch's corrections (per channel, detached) and ``last_limits`` the
    ``(r_max, d_max)`` used.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.01,
        schedule: RenormSchedule = BOOK_SCHEDULE,
        affine: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        C.positive_int("num_features", num_features)
        C.eps(eps)
        C.momentum(momentum)
        if not isinstance(schedule, RenormSchedule):
            raise TypeError(f"schedule must be a RenormSchedule, got {type(schedule).__name__}.")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.schedule = schedule
        factory = {"device": device, "dtype": dtype}
        self._register_affine(num_features, affine, factory)
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_std", torch.ones(num_features, **factory))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        self.last_r = self.last_d = self.last_limits = None

    def limits(self, step: int | None = None) -> tuple[float, float]:
        """``(r_max, d_max)`` at ``step`` (default: the next training step, ``num_batches_tracked``)."""
        step = int(self.num_batches_tracked) if step is None else step
        return self.schedule.limits(step)

    r_max = property(lambda self: float(self.schedule.r_max), doc="The schedule's final r_max.")
    d_max = property(lambda self: float(self.schedule.d_max), doc="The schedule's final d_max.")
    bn_steps = property(lambda self: self.schedule.bn_steps, doc="Steps of plain BN before the ramps.")
    r_ramp_steps = property(lambda self: self.schedule.r_ramp_steps, doc="Length of the r_max ramp.")
    d_ramp_steps = property(lambda self: self.schedule.d_ramp_steps, doc="Length of the d_max ramp.")

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_std.fill_(1)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C.tensor("BatchRenorm", x, self.num_features, self.running_mean.dtype)
        shape = _per_channel(x)
        if not self.training:
            y = (x - self.running_mean.view(shape)) / self.running_std.view(shape)
            if self.weight is not None:
                y = torch.addcmul(self.bias.view(shape), y, self.weight.view(shape))
            return y
        C.batch_stats(x, self.num_features)
        r_max, d_max = self.limits()
        y, mean, sigma, r, d = BatchRenormFunction.apply(
            x, self.weight, self.bias, self.running_mean, self.running_std, self.eps, r_max, d_max
        )
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_std.lerp_(sigma, self.momentum)
            self.num_batches_tracked.add_(1)
        self.last_r, self.last_d, self.last_limits = r.detach(), d.detach(), (r_max, d_max)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, schedule={self.schedule}, "
            f"affine={self.affine}"
        )


def _check_p(p) -> float:
    if isinstance(p, bool) or not (isinstance(p, (int, float, np.integer, np.floating)) and (p >= 1)):
        raise ValueError(f"p must be a number >= 1 or math.inf (the l_p norm of the centred batch), got {p!r}.")
    return float(p)


class LpNorm(_NormBase):
    """l_p normalization (Santurkar et al., 2018) for ``(N, C)``, ``(N, C, L)`` and ``(N, C, H, W)`` input.

    Training mode, per channel over the batch (and positions): ``mu = mean(x)``,
    ``s = (mean(|x - mu|^p) + eps)^(1/p)`` (``p = math.inf``: ``s = max|x - mu| + eps``),
    ``y = weight * (x - mu) / s + bias``; ``p = 2`` is BN's training-mode output exactly. The
    moving statistics ``running_mean`` and ``running_scale`` (the moving ``s``) follow PyTorch's
    rule ``new = (1 - momentum) * old + momentum * batch``; eval mode computes
    ``weight * (x - running_mean) / running_scale + bias``. The gradient is torch autograd's.
    """

    def __init__(self, num_features: int, p: float = 1.0, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, device=None, dtype=None):
        super().__init__()
        C.positive_int("num_features", num_features)
        C.eps(eps)
        C.momentum(momentum)
        self.p = _check_p(p)
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        factory = {"device": device, "dtype": dtype}
        self._register_affine(num_features, affine, factory)
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_scale", torch.ones(num_features, **factory))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C.tensor("LpNorm", x, self.num_features, self.running_mean.dtype)
        shape = _per_channel(x)
        if self.training:
            C.batch_stats(x, self.num_features)
            dims = _reduce_dims(x)
            mean = x.mean(dim=dims)
            xc = x - mean.view(shape)
            if math.isinf(self.p):
                scale = xc.abs().amax(dim=dims) + self.eps
            else:
                scale = (xc.abs().pow(self.p).mean(dim=dims) + self.eps).pow(1.0 / self.p)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_scale.lerp_(scale, self.momentum)
            y = xc / scale.view(shape)
        else:
            y = (x - self.running_mean.view(shape)) / self.running_scale.view(shape)
        if self.weight is not None:
            y = torch.addcmul(self.bias.view(shape), y, self.weight.view(shape))
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, p={self.p:g}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
