"""Batch Normalization as a torch module whose gradient is the hand-derived formula.

:class:`BatchNorm` is a drop-in for ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``: same
constructor arguments, same train/eval behaviour, same ``state_dict`` keys
(``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``), so a
state dict saved from one loads into the other. In training mode its gradient comes from
:class:`BatchNormFunction`, a ``torch.autograd.Function`` whose ``backward`` is the compact
closed form of :func:`bnlib.functional.backward`, written with torch operations.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BatchNormFunction", "BatchNorm", "batch_norm"]


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0] + list(range(2, x.dim()))


def _per_channel(x: torch.Tensor) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


class BatchNormFunction(torch.autograd.Function):
    """``y = gamma * (x - mu_B) / sqrt(sigma_B^2 + eps) + beta`` with batch statistics.

    Returns ``(y, mean, var)``; ``mean`` and ``var`` (biased) are returned for the running
    statistics and carry no gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = _reduce_dims(x)
        shape = _per_channel(x)
        var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
        inv_std = torch.rsqrt(var + eps)
        xhat = (x - mean) * inv_std
        y = xhat * weight.view(shape) + bias.view(shape) if weight is not None else xhat
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.mark_non_differentiable(mean, var)
        return y, mean.view(-1), var.view(-1)

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        xhat, inv_std, weight = ctx.saved_tensors
        dims = _reduce_dims(dy)
        shape = _per_channel(dy)
        m = dy.numel() // dy.shape[1]
        dbeta = dy.sum(dims)
        dgamma = (dy * xhat).sum(dims)
        dx = None
        if ctx.needs_input_grad[0]:
            # dx_i = gamma / (m sqrt(var + eps)) * (m dy_i - sum dy - xhat_i sum dy xhat)
            scale = inv_std / m if weight is None else weight.view(shape) * inv_std / m
            dx = scale * (m * dy - dbeta.view(shape) - xhat * dgamma.view(shape))
        if weight is None:
            return dx, None, None, None
        return dx, dgamma, dbeta, None


def _check_input(x: torch.Tensor, num_features: int, training: bool) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"BatchNorm expects a torch.Tensor, got {type(x).__name__}.")
    if x.dim() not in (2, 3, 4):
        raise ValueError(
            f"BatchNorm expects input of shape (N, C), (N, C, L) or (N, C, H, W), got {x.dim()}-D input "
            f"of shape {tuple(x.shape)}."
        )
    if x.shape[1] != num_features:
        raise ValueError(f"BatchNorm has {num_features} features but the input has {x.shape[1]} channels (axis 1).")
    if not x.is_floating_point():
        raise TypeError(f"BatchNorm expects a floating-point tensor, got {x.dtype}.")
    if training and x.numel() // max(x.shape[1], 1) < 2:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}."
        )


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked=None):
    """Functional BN with PyTorch's running-statistics rule; the gradient is the hand-derived one."""
    if training:
        y, mean, var = BatchNormFunction.apply(x, weight, bias, eps)
        if running_mean is not None:
            with torch.no_grad():
                n = x.numel() // x.shape[1]
                if momentum is None:
                    factor = 1.0 / float(num_batches_tracked)
                else:
                    factor = momentum
                running_mean.mul_(1 - factor).add_(mean, alpha=factor)
                running_var.mul_(1 - factor).add_(var * (n / (n - 1)), alpha=factor)
        return y
    shape = _per_channel(x)
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return x * scale.view(shape) + shift.view(shape)


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
        if not (isinstance(num_features, int) and num_features >= 1):
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training or not self.track_running_stats
        _check_input(x, self.num_features, use_batch_stats)
        update = self.training and self.track_running_stats
        if update:
            self.num_batches_tracked.add_(1)
        if not use_batch_stats:
            return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, None, self.eps)
        nbt = int(self.num_batches_tracked) if update and self.momentum is None else None
        return batch_norm(
            x,
            self.running_mean if update else None,
            self.running_var if update else None,
            self.weight,
            self.bias,
            True,
            self.momentum,
            self.eps,
            nbt,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )
