"""Batch Normalization as a torch module whose gradient is the hand-derived formula.

:class:`BatchNorm` is a drop-in for ``torch.nn.BatchNorm1d`` / ``BatchNorm2d`` / ``BatchNorm3d``
(and :class:`BatchNorm1d`, :class:`BatchNorm2d`, :class:`BatchNorm3d` add torch's checks of the
number of dimensions): same constructor arguments (``bias=False`` included), same train/eval
behaviour, same ``state_dict`` keys (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``) and version, so a state dict saved from one loads into the other.
:func:`batch_norm` takes ``torch.nn.functional.batch_norm``'s arguments and defaults. In
training mode the gradient comes from :class:`BatchNormFunction`, a ``torch.autograd.Function``
whose ``backward`` is the compact closed form of :func:`bnlib.functional.backward`, written with
torch operations; autograd never differentiates through the forward computation. Second
derivatives (``create_graph=True``) and forward-mode AD (``torch.func.jvp``,
``torch.autograd.forward_ad``) work too. In eval mode BN is the fixed affine map
``x * scale + shift`` and autograd differentiates that directly. float16 and bfloat16 input is
normalized with statistics and sums accumulated in float32, as torch does on the CPU.

Bad input (wrong number of dimensions or channels, integer dtype, a dtype other than the
module's, a single value per channel in training, a non-positive ``eps`` in training) raises a
one-sentence ``ValueError`` or ``TypeError``. NaN or infinite values are *not* searched for in the
input (that would cost a pass over the data and a synchronization at every call); as in
``torch.nn.BatchNorm``, they make the affected channel's output, gradients and running statistics
NaN, and leave the other channels untouched (a test checks this against torch).

Deliberate differences from torch: a non-finite ``eps`` is refused (torch's output is then
``beta`` everywhere), a negative ``eps`` already at construction, and a ``running_var`` with a
negative value in eval mode (torch returns NaN silently; the check is one pass over a
per-channel vector); a batch of one value per channel in training raises before
``num_batches_tracked`` is counted (torch counts it, then raises); the argument errors are
``ValueError``/``TypeError`` sentences where torch's are sometimes ``RuntimeError``. In eval mode
forward-mode AD also carries tangents of the running statistics (the eval map is plain differentiable
arithmetic; torch refuses them); in training such tangents are ignored (the running statistics do not
enter the output). ``torch.func.vmap`` is refused (no vmap rule), as before.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from torch import nn

from bnlib import _checks as C

__all__ = ["BatchNormFunction", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "batch_norm"]

_HALF = (torch.float16, torch.bfloat16)  # computed in float32, as torch's CPU kernels do
_NUMBER = (int, float, np.integer, np.floating)


def _reduce_dims(x: torch.Tensor) -> list[int]:
    """Every axis but the channel axis 1: the axes BN takes its statistics over."""
    return [0, *range(2, x.dim())]


def _per_channel(x: torch.Tensor) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``x`` (``(C,)``, ``(C, 1)``, ``(C, 1, 1)``)."""
    return (x.shape[1],) + (1,) * (x.dim() - 2)


def _f32(t: torch.Tensor | None) -> torch.Tensor | None:
    """``t`` in float32 when it is float16/bfloat16 (the accumulation type), else ``t`` itself."""
    return t.float() if t is not None and t.dtype in _HALF else t


def _as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t if t.dtype == dtype else t.to(dtype)


def _number(name: str, value, expected: str) -> float:
    if isinstance(value, torch.Tensor) or not isinstance(value, _NUMBER):
        raise TypeError(f"{name} must be a real number ({expected}), got {type(value).__name__} {value!r}.")
    return float(value)


def _eps(value, training: bool | None) -> float:
    """``eps`` as a float: finite, positive in training (torch's rule), non-negative otherwise."""
    eps = _number("eps", value, "a small positive constant")
    if not math.isfinite(eps):
        raise ValueError(f"eps must be a finite number, got {value!r}: with an infinite eps the output is beta.")
    if training and not eps > 0:
        raise ValueError(f"batch_norm eps must be positive during training, got {value!r}.")
    if not eps >= 0:
        raise ValueError(f"batch_norm eps must be non-negative, got {value!r}.")
    return eps


def _need_two_values(x: torch.Tensor) -> None:
    """torch's rule in training: refuse exactly one value per channel (an empty batch is fine)."""
    if x.numel() // max(x.shape[1], 1) == 1 and x.shape[1] > 0:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}: "
                         "batch statistics need at least two values per channel.")


def _update(running: torch.Tensor, batch: torch.Tensor, factor: float) -> None:
    """``running <- running + factor * (batch - running)`` in place (in float32 for a half-precision buffer)."""
    batch = batch.view_as(running)
    if running.dtype == batch.dtype:
        running.lerp_(batch, factor)
    else:
        running.copy_(torch.lerp(running.to(batch.dtype), batch, factor))


class BatchNormFunction(torch.autograd.Function):
    """``y = gamma * (x - mu_B) / sqrt(sigma_B^2 + eps) + beta`` with batch statistics.

    ``BatchNormFunction.apply(x, weight, bias, eps[, running_mean, running_var, factor])``
    returns ``(y, mean, inv_std)`` (the batch mean and ``1 / sqrt(var + eps)``, not differentiable);
    ``weight`` and ``bias`` may be None (no affine part). Given running statistics, they are updated in
    place by PyTorch's rule ``r <- (1 - factor) r + factor * batch`` with the unbiased batch variance
    (``1/(m - 1)``); ``factor=1`` leaves exactly the batch statistics. The forward takes the mean, then
    the variance about it from ``xc = x - mean`` (two passes, as torch's kernel), and writes
    ``y = xc * gamma / sqrt(var + eps) + beta`` into ``xc``'s memory.

    ``backward`` is the compact formula of :func:`bnlib.functional.backward` (``m`` values per
    channel, sums over them)::

        dgamma = sum(dy * xhat),  dbeta = sum(dy)
        dx = gamma / sqrt(var + eps) * (dy - (dbeta + xhat * dgamma) / m)

    It saves ``x`` (not ``xhat``: ``xhat`` is recomputed, centred, inside the same passes). Under
    ``create_graph=True`` the same formula is evaluated with differentiable operations from the saved
    ``x`` and ``weight``, so autograd can differentiate it again (second derivatives, checked by
    ``gradgradcheck``). ``jvp`` is the forward-mode derivative of the same map::

        dxhat = (dx - mean(dx) - xhat * mean(dx * xhat)) / sqrt(var + eps)
        dy = gamma * dxhat + dgamma * xhat + dbeta
    """

    @staticmethod
    def forward(x, weight, bias, eps, running_mean=None, running_var=None, factor=0.0):
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ValueError(f"Batch statistics need at least two values per channel, got input size {tuple(x.shape)}.")
        shape = _per_channel(x)
        xs = _f32(x)  # statistics accumulated in float32 at least
        mean = xs.mean(0) if x.dim() == 2 else _channel_sum(xs) / m
        xc = xs - (mean if x.dim() == 2 else mean.view(shape))  # a new tensor: it becomes y below
        var = _sum_of_squares(xc) / m  # biased variance, about the mean (two passes, as torch's)
        inv_std = (var + eps).rsqrt_()
        if running_mean is not None:
            _update(running_mean, mean, factor)
            _update(running_var, var * (m / (m - 1)), factor)
        scale = inv_std if weight is None else inv_std * weight
        if x.dim() == 2:
            y = xc.mul_(scale) if bias is None else torch.addcmul(bias, xc, scale, out=xc)  # in place
        else:  # two in-place passes: a three-operand op broadcasting (C, 1, 1) is slower than both together
            y = xc.mul_(scale.view(shape))
            if bias is not None:
                y = y.add_(bias.view(shape))
        return (y if y.dtype == x.dtype else y.to(x.dtype)), mean, inv_std

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, eps = inputs[:4]
        _, mean, inv_std = output
        ctx.mark_non_differentiable(mean, inv_std)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight, mean, inv_std)
        ctx.save_for_forward(x, weight, mean, inv_std)
        ctx.eps = eps
        ctx.n_inputs = len(inputs)
        ctx.bias_dtype = None if bias is None else bias.dtype

    @staticmethod
    def backward(ctx, dy, _dmean=None, _dinv_std=None):
        if dy is None:  # y did not contribute to the loss
            return (None,) * ctx.n_inputs
        x, weight, mean, inv_std = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: a graph autograd can differentiate again
            dx, dgamma, dbeta = _backward_graph(x, weight, dy, ctx.eps)
        else:
            dx, dgamma, dbeta = _backward_fast(x, weight, mean, inv_std, dy, need_x)
        grads = (
            _as(dx, x.dtype) if need_x else None,
            _as(dgamma, weight.dtype) if weight is not None and need_w else None,
            _as(dbeta, ctx.bias_dtype) if ctx.bias_dtype is not None and need_b else None,
        )
        return grads + (None,) * (ctx.n_inputs - 3)  # eps, running_mean, running_var, factor

    @staticmethod
    def jvp(ctx, dx, dweight, dbias, *_):
        x, weight, mean, inv_std = ctx.saved_tensors
        dims, shape = _reduce_dims(x), _per_channel(x)
        xhat = (_f32(x) - mean.view(shape)) * inv_std.view(shape)
        dy = torch.zeros_like(xhat)
        if dx is not None:
            dx = _f32(dx)
            dxhat = (dx - dx.mean(dims).view(shape) - xhat * (dx * xhat).mean(dims).view(shape)) * inv_std.view(shape)
            dy = dxhat if weight is None else dxhat * _f32(weight).view(shape)
        if dweight is not None:
            dy = dy + _f32(dweight).view(shape) * xhat
        if dbias is not None:
            dy = dy + _f32(dbias).view(shape)
        return dy.to(x.dtype), None, None


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """Per-channel ``sum(t)`` over every axis but 1: for contiguous ``(N, C, L, ...)`` input over the inner axis
    of its ``(N, C, L)`` view first, then over ``N`` (faster than one reduction over the axes 0, 2, 3, ...)."""
    if t.dim() > 2 and t.is_contiguous():
        return t.view(t.shape[0], t.shape[1], -1).sum(2).sum(0)
    return t.sum(_reduce_dims(t))


def _sum_of_squares(xc: torch.Tensor) -> torch.Tensor:
    """Per-channel ``sum(xc ** 2)`` over every axis but 1: for contiguous ``(N, C, L, ...)`` input the
    squared row norms of its ``(N, C, L)`` view (no ``xc ** 2`` temporary), else ``(xc * xc).sum``
    (faster than a norm over several axes or a small batch)."""
    if xc.dim() > 2 and xc.is_contiguous():
        n, c = xc.shape[:2]
        return torch.linalg.vector_norm(xc.view(n, c, -1), 2, 2).square_().sum(0)
    return torch.mul(xc, xc).sum(_reduce_dims(xc))


# Function.apply binds its arguments to forward's signature at every call (for setup_context); a
# signature of one *args parameter, computed once, makes that binding cheap (it was half the time of a
# small layer). forward's own defaults still apply.
BatchNormFunction.forward.__signature__ = inspect.Signature(
    [inspect.Parameter("inputs", inspect.Parameter.VAR_POSITIONAL)])


def _backward_fast(x, weight, mean, inv_std, dy, need_x):
    """The compact formula in few passes (no graph): ``xc = x - mean``, ``sum(dy)``, ``sum(dy * xc)``,
    then ``dx = scale * dy + k * xc + c`` in two fused multiply-adds (``k``, ``c`` per channel) written
    into ``xc``. Centred, as torch's kernel: ``sum(dy * x) - mean * sum(dy)`` would lose digits when
    the mean is large against the spread (a batch of two close values)."""
    dims, shape = _reduce_dims(dy), _per_channel(dy)
    dy = _f32(dy)
    two_d = dy.dim() == 2
    xc = _f32(x) - (mean if two_d else mean.view(shape))
    dbeta = dy.sum(dims) if two_d else _channel_sum(dy)
    dgamma = (torch.mul(dy, xc).sum(dims) if two_d else _channel_sum(torch.mul(dy, xc))).mul_(inv_std)  # sum(dy * xhat)
    dx = None
    if need_x:
        m = x.numel() // x.shape[1]
        scale = inv_std if weight is None else inv_std * weight
        c = scale / -m
        k = c * inv_std * dgamma  # dx = scale * dy + k * xc + c with c = -scale * dbeta / m
        c.mul_(dbeta)
        if two_d:
            dx = torch.addcmul(c, xc, k, out=xc).addcmul_(dy, scale)
        else:  # in place, as in the forward: k * xc + c in two passes, then scale * dy
            dx = xc.mul_(k.view(shape)).add_(c.view(shape)).addcmul_(dy, scale.view(shape))
    return dx, dgamma, dbeta


def _backward_graph(x, weight, dy, eps):
    """The compact formula with differentiable operations from ``x`` and ``weight`` (for ``create_graph=True``)."""
    dims, shape = _reduce_dims(dy), _per_channel(dy)
    m = x.numel() // x.shape[1]
    x, dy = _f32(x), _f32(dy)
    var, mean = torch.var_mean(x, dims, correction=0)
    inv_std = torch.rsqrt(var + eps)
    xhat = (x - mean.view(shape)) * inv_std.view(shape)
    dbeta = dy.sum(dims)
    dgamma = (dy * xhat).sum(dims)
    scale = inv_std if weight is None else inv_std * weight
    dx = scale.view(shape) * (dy - (dbeta.view(shape) + xhat * dgamma.view(shape)) / m)
    return dx, dgamma, dbeta


def _per_channel_tensors(x, named) -> None:
    """Each given per-channel tensor is a float tensor of ``C`` values whose dtype goes with ``x``'s."""
    c = x.shape[1] if x.dim() > 1 else 0
    for name, t in named:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"batch_norm expects {name} to be a torch.Tensor or None, got {type(t).__name__}.")
        if t.numel() != c:
            raise ValueError(f"{name} must have {c} values, one per channel of the input (axis 1 of shape "
                             f"{tuple(x.shape)}), got shape {tuple(t.shape)}.")
        if t.dtype != x.dtype and not (x.dtype in _HALF and t.dtype == torch.float32):
            raise TypeError(f"{name} is {t.dtype} but the input is {x.dtype}; they must share a dtype (or the input "
                            "be float16/bfloat16 with float32 parameters).")


def _affine(x, weight, bias, shape):
    """``x * weight + bias`` (either may be None): the output for an empty batch, connected to all three."""
    y = x * 1.0 if weight is None else x * weight.view(shape).to(x.dtype)
    return y if bias is None else y + bias.view(shape).to(x.dtype)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5, *,
               num_batches_tracked=None, function: type[torch.autograd.Function] = BatchNormFunction):
    """Functional BN with PyTorch's running-statistics rule; in training the gradient is the hand-derived one.

    Arguments and defaults as ``torch.nn.functional.batch_norm``, plus two keyword-only ones:
    ``num_batches_tracked`` (the number of batches seen including this one, needed only for
    ``momentum=None``, the cumulative average) and ``function``, the autograd Function of the
    batch-statistics path (the benchmarks swap in one around torch's kernels; it returns ``(y, ...)``).
    ``training=True`` uses batch statistics and updates ``running_mean``/``running_var`` in
    place when they are given; ``training=False`` uses the running statistics. An empty batch gives
    an empty output and leaves the running statistics alone, as torch's.
    """
    x = input
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"batch_norm expects input to be a torch.Tensor, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"batch_norm expects a floating-point input, got dtype {x.dtype}.")
    named = (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias))
    _per_channel_tensors(x, named)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both be None), got only "
                         f"{'running_mean' if running_var is None else 'running_var'}.")
    training = bool(training)
    eps = _eps(eps, training)
    if x.dim() < 2:
        if x.numel() == 0:  # torch's zero-channel case: shape (0,) with empty per-channel tensors
            return x * 1.0
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got shape {tuple(x.shape)}.")
    shape = _per_channel(x)
    if training:
        _need_two_values(x)
        if momentum is None:
            if running_mean is not None and (num_batches_tracked is None or int(num_batches_tracked) < 1):
                raise ValueError("momentum=None (cumulative average) needs num_batches_tracked >= 1, got "
                                 f"{num_batches_tracked!r}.")
            factor = 0.0 if running_mean is None else 1.0 / float(num_batches_tracked)
        else:
            factor = _number("momentum", momentum, "the weight of the new batch, or None")
        if x.numel() == 0:
            return _affine(x, weight, bias, shape)
        return function.apply(x, weight, bias, eps, running_mean, running_var, factor)[0]
    if momentum is not None:
        _number("momentum", momentum, "the weight of the new batch, or None")
    if running_mean is None:
        raise ValueError("batch_norm with training=False needs running_mean and running_var, got None.")
    if bool((running_var < 0).any()):
        raise ValueError(f"running_var must be non-negative (a variance), got {running_var.min().item():.6g} "
                         "among its values.")
    scale = (_f32(running_var) + eps).rsqrt()
    if weight is not None:
        scale = scale * _f32(weight).view_as(scale)
    mean = _f32(running_mean).view_as(scale)
    if bias is None:
        y = (x - mean.view(shape)) * scale.view(shape)
    else:
        shift = torch.addcmul(_f32(bias).view_as(scale), mean, scale, value=-1.0)  # beta - mean * scale
        y = torch.addcmul(shift.view(shape), x, scale.view(shape))
    return y.to(x.dtype)


class _NormBase(nn.Module):
    """What every normalization module of bnlib shares: per-channel ``weight`` (ones) and ``bias`` (zeros),
    registered as None when not ``affine`` (``bias`` also without ``bias``), and ``reset_parameters``
    (running statistics, then the affine pair)."""

    def _register_affine(self, n: int, affine: bool, factory: dict, bias: bool = True) -> None:
        self.affine = affine
        self.register_parameter("weight", nn.Parameter(torch.ones(n, **factory)) if affine else None)
        self.register_parameter("bias", nn.Parameter(torch.zeros(n, **factory)) if affine and bias else None)

    def reset_running_stats(self) -> None:
        """Nothing to reset for a layer without running statistics; subclasses that keep them override this."""

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


_SHAPES = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


class BatchNorm(_NormBase):
    """Batch Normalization for ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` and ``(N, C, D, H, W)`` input.

    Behaves as ``torch.nn.BatchNorm1d`` / ``BatchNorm2d`` / ``BatchNorm3d`` with the same arguments
    (``bias=False``: a weight without a bias): batch statistics in training mode (and updates of the
    running statistics, momentum weighting the new batch, unbiased variance, or a cumulative average
    when ``momentum=None``; any real momentum is accepted, as torch does); running statistics in eval
    mode; batch statistics whenever the running statistics are None (``track_running_stats=False``).
    ``BatchNorm`` itself accepts all four ranks; :class:`BatchNorm1d`, :class:`BatchNorm2d` and
    :class:`BatchNorm3d` accept those of torch's namesakes. float16/bfloat16 input works with a
    module of the same dtype or a float32 one (then the output is the input's dtype), as in torch.

    The batch-statistics computation is the class attribute ``function``
    (:class:`BatchNormFunction`); the benchmarks swap in a Function around PyTorch's own
    kernels to measure what the Function mechanism alone costs.
    """

    _version = 2  # torch's: the state dict has num_batches_tracked
    _ranks: tuple[int, ...] = (2, 3, 4, 5)
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
        *,
        bias: bool = True,
    ):
        super().__init__()
        C.positive_int("num_features", num_features)
        if momentum is not None:
            momentum = _number("momentum", momentum, "the weight of the new batch, or None")
        eps = _eps(eps, None)
        factory = {"device": device, "dtype": dtype}
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        self._register_affine(self.num_features, affine, factory, bias)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features, **factory))
            self.register_buffer("running_var", torch.ones(self.num_features, **factory))
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

    def _check_input(self, x) -> None:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}.")
        if x.dim() not in self._ranks:
            names = [_SHAPES[r] for r in self._ranks]
            what = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
            raise ValueError(f"{name} expects input of shape {what}, got {x.dim()}-D input of shape {tuple(x.shape)}.")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name} has {self.num_features} features but the input has {x.shape[1]} channels "
                             f"(axis 1) in shape {tuple(x.shape)}.")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got dtype {x.dtype}.")
        ref = next((t for t in (self.weight, self.running_mean) if t is not None), None)
        if ref is not None and x.dtype != ref.dtype and not (x.dtype in _HALF and ref.dtype == torch.float32):
            raise TypeError(f"{name}'s parameters and buffers are {ref.dtype} but the input is {x.dtype}; convert one "
                            "of them (e.g. module.to(x.dtype)).")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        if bn_training:
            _need_two_values(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        keep = not self.training or self.track_running_stats  # statistics to update or to use
        return batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None, self.weight,
                          self.bias, bn_training, factor, self.eps, function=self.function)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """As torch's: a state dict older than version 2 (or without a version, as a plain dict) gets
        ``num_batches_tracked`` filled in (the module's own, else 0) instead of reporting it missing."""
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                own = self.num_batches_tracked
                keep = own is not None and own.device != torch.device("meta")
                state_dict[key] = own if keep else torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(BatchNorm):
    """:class:`BatchNorm` for ``(N, C)`` or ``(N, C, L)`` input only, as ``torch.nn.BatchNorm1d``."""

    _ranks = (2, 3)


class BatchNorm2d(BatchNorm):
    """:class:`BatchNorm` for ``(N, C, H, W)`` input only, as ``torch.nn.BatchNorm2d``."""

    _ranks = (4,)


class BatchNorm3d(BatchNorm):
    """:class:`BatchNorm` for ``(N, C, D, H, W)`` input only, as ``torch.nn.BatchNorm3d``."""

    _ranks = (5,)
