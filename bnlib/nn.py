"""Batch Normalization as a torch module whose gradient is the hand-derived formula.

:class:`BatchNorm` is a drop-in for ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``: same
constructor arguments, same train/eval behaviour, same ``state_dict`` keys
(``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``), so a
state dict saved from one loads into the other. In training mode its gradient comes from
:class:`BatchNormFunction`, a ``torch.autograd.Function`` whose ``backward`` is the compact
closed form of :func:`bnlib.functional.backward`, written with torch operations; autograd
never differentiates through the forward computation. In eval mode BN is the fixed affine
map ``x * scale + shift`` and autograd differentiates that directly.

Bad input (wrong number of dimensions or channels, integer dtype, a dtype other than the
module's, a single value per channel in training) raises a one-sentence ``ValueError`` or
``TypeError``. NaN or infinite values are *not* searched for (that would cost a pass over
the data and a synchronization at every call); as in ``torch.nn.BatchNorm``, they make the
affected channel's output, gradients and running statistics NaN, and leave the other
channels untouched (a test checks this against torch).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

__all__ = ["BatchNormFunction", "BatchNorm", "batch_norm"]

_DIMS = {2: [0], 3: [0, 2], 4: [0, 2, 3]}


def _reduce_dims(x: torch.Tensor) -> list[int]:
    """Every axis but the channel axis 1: the axes BN takes its statistics over."""
    return _DIMS.get(x.dim()) or [0] + list(range(2, x.dim()))


def _per_channel(x: torch.Tensor) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``x`` (``(C,)``, ``(C, 1)``, ``(C, 1, 1)``)."""
    return (x.shape[1],) + (1,) * (x.dim() - 2)


class BatchNormFunction(torch.autograd.Function):
    """``y = gamma * (x - mu_B) / sqrt(sigma_B^2 + eps) + beta`` with batch statistics.

    ``BatchNormFunction.apply(x, weight, bias, eps[, running_mean, running_var, factor, n])``
    returns ``(y, mean, var)``: ``mean`` and ``var`` (biased, ``1/m``) have one value per
    channel and carry no gradient. ``weight`` and ``bias`` may be None (no affine part).
    When ``running_mean`` and ``running_var`` are given they are updated in place by
    PyTorch's rule, ``r <- (1 - factor) r + factor * batch``, the variance made unbiased by
    ``n / (n - 1)`` first.

    ``backward`` is the compact formula of :func:`bnlib.functional.backward` (``m`` values
    per channel, sums over them)::

        dgamma = sum(dy * xhat),  dbeta = sum(dy)
        dx = gamma / sqrt(var + eps) * (dy - dbeta / m - xhat * dgamma / m)

    For speed ``xhat`` is not stored: the forward keeps ``x - mu`` and ``1 / sqrt(var + eps)``,
    so ``xhat = (x - mu) * inv_std`` and ``sum(dy * xhat) = inv_std * sum(dy * (x - mu))``; the
    backward makes five passes over the data (two sums, a product, two fused multiply-adds)
    and a few per-channel operations. It is first-order only: asking for a second derivative
    (``create_graph=True``) raises ``RuntimeError`` instead of returning a wrong one.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, running_mean=None, running_var=None, factor=0.0, n=0):
        nd = x.dim()
        m = x.numel() // x.shape[1]
        inv_m = _const(1.0 / m, x)
        if nd == 2:  # (N, C): per-channel vectors broadcast as they are
            mean = x.sum(0).mul_(inv_m)  # mini-batch mean
            xmu = x - mean
            var = torch.linalg.vecdot(xmu, xmu, dim=0).mul_(inv_m)  # mini-batch variance (biased, 1/m), two-pass
        else:
            dims = _reduce_dims(x)
            mean = x.sum(dims).mul_(inv_m)
            xmu = x - mean.view(_per_channel(x))
            var = (xmu * xmu).sum(dims).mul_(inv_m)
        inv_std = torch.add(var, _const(eps, x)).rsqrt_()
        scale = inv_std if weight is None else inv_std * weight  # gamma / sqrt(var + eps)
        if nd == 2:
            y = xmu * scale if bias is None else torch.addcmul(bias, xmu, scale)  # gamma * xhat + beta
        else:
            shape = _per_channel(x)
            y = xmu * scale.view(shape) if bias is None else torch.addcmul(bias.view(shape), xmu, scale.view(shape))
        if running_mean is not None:
            w = _const(factor, x)
            running_mean.lerp_(mean, w)
            running_var.lerp_(var * _const(n / (n - 1), x), w)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(xmu, inv_std, scale)
        ctx.m = m
        ctx.affine = (weight is not None, bias is not None)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "BatchNormFunction's backward is first-order only; a second derivative (create_graph=True) "
                "is not supported."
            )
        has_weight, has_bias = ctx.affine
        if dy is None:  # y did not contribute to the loss
            return None, None, None, None, None, None, None, None
        xmu, inv_std, scale = ctx.saved_tensors
        if dy.dim() == 2:
            dbeta = dy.sum(0)  # sum_i dy_i
            dgamma = torch.linalg.vecdot(dy, xmu, dim=0).mul_(inv_std)  # sum_i dy_i xhat_i
        else:
            dims = _reduce_dims(dy)
            dbeta = dy.sum(dims)
            dgamma = (dy * xmu).sum(dims).mul_(inv_std)
        dx = None
        if ctx.needs_input_grad[0]:
            # dx = scale * dy - scale * dbeta / m - xhat * scale * dgamma / m, with xhat = xmu * inv_std
            k = scale * _const(-1.0 / ctx.m, dy)
            c0, c1 = k * dbeta, (k * inv_std).mul_(dgamma)
            if dy.dim() == 2:
                dx = torch.addcmul(c0, dy, scale).addcmul_(xmu, c1)
            else:
                shape = _per_channel(dy)
                dx = torch.addcmul(c0.view(shape), dy, scale.view(shape)).addcmul_(xmu, c1.view(shape))
        return (
            dx,
            dgamma if has_weight and ctx.needs_input_grad[1] else None,
            dbeta if has_bias and ctx.needs_input_grad[2] else None,
            None,  # eps
            None,  # running_mean
            None,  # running_var
            None,  # factor
            None,  # n
        )


def _const(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a 0-dim tensor of ``like``'s dtype and device, cached.

    An operation with a Python number first converts it to a tensor (a few microseconds on a
    CPU, as long as the operation itself on a small batch); the per-call constants of BN
    (``1/m``, ``eps``, the momentum) repeat from step to step, so they are made once.
    """
    return _const_cached(float(value), like.dtype, like.device)


@functools.lru_cache(maxsize=1024)
def _const_cached(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype, device=device)


def _check_input(x, num_features: int, training: bool, dtype: torch.dtype | None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"BatchNorm expects a torch.Tensor, got {type(x).__name__}.")
    if x.dim() not in (2, 3, 4):
        raise ValueError(
            f"BatchNorm expects input of shape (N, C), (N, C, L) or (N, C, H, W), got {x.dim()}-D input "
            f"of shape {tuple(x.shape)}."
        )
    if x.shape[1] != num_features:
        raise ValueError(
            f"BatchNorm has {num_features} features but the input has {x.shape[1]} channels (axis 1) "
            f"in shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise TypeError(f"BatchNorm expects a floating-point tensor, got dtype {x.dtype}.")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"BatchNorm's parameters and buffers are {dtype} but the input is {x.dtype}; convert one of them "
            "(e.g. module.to(x.dtype))."
        )
    if training and x.numel() < 2 * num_features:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}: "
            "batch statistics need at least two values per channel."
        )


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked=None):
    """Functional BN with PyTorch's running-statistics rule; in training the gradient is the hand-derived one.

    Arguments as ``torch.nn.functional.batch_norm`` (plus ``num_batches_tracked``, the number of
    batches seen including this one, needed only for ``momentum=None``, the cumulative average).
    ``training=True`` uses batch statistics and updates ``running_mean``/``running_var`` in
    place when they are given; ``training=False`` uses the running statistics.
    """
    if x.dim() < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got shape {tuple(x.shape)}.")
    c = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.shape != (c,):
            raise ValueError(
                f"{name} must have shape ({c},), one value per channel of the input, got {tuple(t.shape)}."
            )
    if training:
        if x.numel() < 2 * c:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}."
            )
        if running_mean is None:
            return BatchNormFunction.apply(x, weight, bias, eps)[0]
        if running_var is None:
            raise ValueError("running_mean and running_var must be given together (or both be None).")
        if momentum is None:
            if num_batches_tracked is None or int(num_batches_tracked) < 1:
                raise ValueError("momentum=None (cumulative average) needs num_batches_tracked >= 1.")
            factor = 1.0 / float(num_batches_tracked)
        else:
            factor = float(momentum)
        n = x.numel() // c
        return BatchNormFunction.apply(x, weight, bias, eps, running_mean, running_var, factor, n)[0]
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm with training=False needs running_mean and running_var.")
    shape = _per_channel(x)
    scale = (running_var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return torch.addcmul(shift.view(shape), x, scale.view(shape))


class BatchNorm(nn.Module):
    """Batch Normalization for ``(N, C)``, ``(N, C, L)`` and ``(N, C, H, W)`` input.

    Behaves as ``torch.nn.BatchNorm1d`` / ``BatchNorm2d`` with the same arguments: batch
    statistics in training mode (and updates of the running statistics, momentum weighting
    the new batch, unbiased variance, or a cumulative average when ``momentum=None``);
    running statistics in eval mode; batch statistics always when
    ``track_running_stats=False``.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if isinstance(num_features, bool) or not (isinstance(num_features, int) and num_features >= 1):
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}.")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1] or be None, got {momentum!r}.")
        if not eps >= 0:
            raise ValueError(f"eps must be non-negative, got {eps!r}.")
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training or not self.track_running_stats
        ref = self.weight if self.weight is not None else self.running_mean
        _check_input(x, self.num_features, use_batch_stats, None if ref is None else ref.dtype)
        if not use_batch_stats:
            shape = _per_channel(x)
            scale = (self.running_var + self.eps).rsqrt()
            if self.weight is None:
                return (x - self.running_mean.view(shape)) * scale.view(shape)
            scale = scale * self.weight
            shift = torch.addcmul(self.bias, self.running_mean, scale, value=-1.0)
            return torch.addcmul(shift.view(shape), x, scale.view(shape))
        if not (self.training and self.track_running_stats):
            return BatchNormFunction.apply(x, self.weight, self.bias, self.eps)[0]
        self.num_batches_tracked.add_(_const_cached(1, torch.long, self.num_batches_tracked.device))
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        n = x.numel() // self.num_features
        return BatchNormFunction.apply(
            x, self.weight, self.bias, self.eps, self.running_mean, self.running_var, factor, n
        )[0]

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )
