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

import torch
from torch import nn

from bnlib import _checks as C

__all__ = ["BatchNormFunction", "BatchNorm", "batch_norm"]

def _reduce_dims(x: torch.Tensor) -> list[int]:
    """Every axis but the channel axis 1: the axes BN takes its statistics over."""
    return [0, *range(2, x.dim())]


def _per_channel(x: torch.Tensor) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``x`` (``(C,)``, ``(C, 1)``, ``(C, 1, 1)``)."""
    return (x.shape[1],) + (1,) * (x.dim() - 2)


class BatchNormFunction(torch.autograd.Function):
    """``y = gamma * (x - mu_B) / sqrt(sigma_B^2 + eps) + beta`` with batch statistics.

    ``BatchNormFunction.apply(x, weight, bias, eps[, running_mean, running_var, factor])``
    returns ``y``; ``weight`` and ``bias`` may be None (no affine part). Given running statistics,
    they are updated in place by PyTorch's rule ``r <- (1 - factor) r + factor * batch`` with the
    unbiased batch variance (``1/(m - 1)``); ``factor=1`` leaves exactly the batch statistics.

    ``backward`` is the compact formula of :func:`bnlib.functional.backward` (``m`` values per
    channel, sums over them)::

        dgamma = sum(dy * xhat),  dbeta = sum(dy)
        dx = gamma / sqrt(var + eps) * (dy - (dbeta + xhat * dgamma) / m)

    First-order only: a second derivative (``create_graph=True``) raises instead of being wrong.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, running_mean=None, running_var=None, factor=0.0):
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ValueError(f"Batch statistics need at least two values per channel, got input size {tuple(x.shape)}.")
        dims, shape = _reduce_dims(x), _per_channel(x)
        mean = x.mean(dims)
        xc = x - mean.view(shape)
        var = (xc * xc).mean(dims)  # biased variance, about the mean (two passes)
        inv_std = torch.rsqrt(var + eps)
        xhat = xc * inv_std.view(shape)
        if running_mean is not None:
            running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
            running_var.mul_(1.0 - factor).add_(var, alpha=factor * m / (m - 1))
        y = xhat.clone() if weight is None else xhat * weight.view(shape)  # y is the caller's, xhat is saved
        if bias is not None:
            y = y + bias.view(shape)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(xhat, inv_std if weight is None else inv_std * weight)  # gamma / sqrt(var + eps)
        ctx.m = m
        ctx.affine = (weight is not None, bias is not None)
        return y

    @staticmethod
    def backward(ctx, dy):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "BatchNormFunction's backward is first-order only; a second derivative (create_graph=True) "
                "is not supported."
            )
        has_weight, has_bias = ctx.affine
        if dy is None:  # y did not contribute to the loss
            return None, None, None, None, None, None, None
        xhat, scale = ctx.saved_tensors
        dims, shape = _reduce_dims(dy), _per_channel(dy)
        dbeta = dy.sum(dims)
        dgamma = (dy * xhat).sum(dims)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = scale.view(shape) * (dy - (dbeta.view(shape) + xhat * dgamma.view(shape)) / ctx.m)
        return (
            dx,
            dgamma if has_weight and ctx.needs_input_grad[1] else None,
            dbeta if has_bias and ctx.needs_input_grad[2] else None,
            None,  # eps
            None,  # running_mean
            None,  # running_var
            None,  # factor
        )


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked=None,
               function: type[torch.autograd.Function] = BatchNormFunction):
    """Functional BN with PyTorch's running-statistics rule; in training the gradient is the hand-derived one.

    Arguments as ``torch.nn.functional.batch_norm`` (plus ``num_batches_tracked``, the number of
    batches seen including this one, needed only for ``momentum=None``, the cumulative average).
    ``training=True`` uses batch statistics and updates ``running_mean``/``running_var`` in
    place when they are given; ``training=False`` uses the running statistics. ``function`` is the
    autograd Function of the batch-statistics path (the benchmarks swap in one around torch's kernels).
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
            return function.apply(x, weight, bias, eps)
        if running_var is None:
            raise ValueError("running_mean and running_var must be given together (or both be None).")
        if momentum is None:
            if num_batches_tracked is None or int(num_batches_tracked) < 1:
                raise ValueError("momentum=None (cumulative average) needs num_batches_tracked >= 1.")
            factor = 1.0 / float(num_batches_tracked)
        else:
            factor = float(momentum)
        return function.apply(x, weight, bias, eps, running_mean, running_var, factor)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm with training=False needs running_mean and running_var.")
    shape = _per_channel(x)
    scale = (running_var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    if bias is None:
        return (x - running_mean.view(shape)) * scale.view(shape)
    shift = torch.addcmul(bias, running_mean, scale, value=-1.0)  # beta - mean * scale, rounded once
    return torch.addcmul(shift.view(shape), x, scale.view(shape))



class _NormBase(nn.Module):
    """What every normalization module of bnlib shares: per-channel ``weight`` (ones) and ``bias`` (zeros),
    registered as None when not ``affine``, and ``reset_parameters`` (running statistics, then the affine pair)."""

    def _register_affine(self, n: int, affine: bool, factory: dict) -> None:
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n, **factory))
            self.bias = nn.Parameter(torch.zeros(n, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_running_stats(self) -> None:
        """Nothing to reset for a layer without running statistics; subclasses that keep them override this."""

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)


class BatchNorm(_NormBase):
    """Batch Normalization for ``(N, C)``, ``(N, C, L)`` and ``(N, C, H, W)`` input.

    Behaves as ``torch.nn.BatchNorm1d`` / ``BatchNorm2d`` with the same arguments: batch
    statistics in training mode (and updates of the running statistics, momentum weighting
    the new batch, unbiased variance, or a cumulative average when ``momentum=None``);
    running statistics in eval mode; batch statistics always when
    ``track_running_stats=False``.

    The batch-statistics computation is the class attribute ``function``
    (:class:`BatchNormFunction`); the benchmarks swap in a Function around PyTorch's own
    kernels to measure what the Function mechanism alone costs.
    """

    function: type[torch.autograd.Function] = BatchNormFunction

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
        C.positive_int("num_features", num_features)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1] or be None, got {momentum!r}.")
        if not eps >= 0:
            raise ValueError(f"eps must be non-negative, got {eps!r}.")
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        self._register_affine(num_features, affine, factory)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training or not self.track_running_stats
        ref = self.weight if self.weight is not None else self.running_mean
        C.tensor("BatchNorm", x, self.num_features, None if ref is None else ref.dtype, "features", (2, 3, 4))
        if use_batch_stats:
            C.batch_stats(x, self.num_features)
        update = self.training and self.track_running_stats  # batch statistics and running ones updated
        if update:
            self.num_batches_tracked.add_(1)
        keep = update or not use_batch_stats
        return batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None, self.weight,
                          self.bias, use_batch_stats, self.momentum, self.eps, self.num_batches_tracked, self.function)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )
