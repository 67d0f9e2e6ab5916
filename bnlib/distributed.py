"""Batch Normalization across processes: :class:`SyncBatchNorm` takes its batch statistics over the examples of
every process of a ``torch.distributed`` process group, so that K processes with m/K examples each compute what
one process with all m examples computes: the same outputs, gradients and running statistics.

Forward, two all-reduces per layer: the per-channel sums of the inputs (with every process's example count, so that
uneven shards weigh right and an empty one is refused on every process at once), then the per-channel sums of
squared deviations from the global mean. Backward, autograd through a differentiable all-reduce (:func:`all_reduce`:
the gradient of a sum every process holds is the all-reduce of the gradients) all-reduces the two per-channel sums
the BN backward pass needs. It works on CPU with the gloo backend (torch's own ``torch.nn.SyncBatchNorm`` refuses
CPU input) and on GPUs with nccl. In eval mode (running statistics) it is :class:`bnlib.nn.BatchNorm` and
communicates nothing.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from bnlib.nn import BatchNorm, _update

_HALF = (torch.float16, torch.bfloat16)


class _AllReduceSum(torch.autograd.Function):
    """The sum over the processes of ``group``, differentiable: the gradient of a sum that every process holds is
    the sum of every process's gradient (itself an all-reduce)."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _AllReduceSum.apply(grad, ctx.group), None


def all_reduce(tensor: torch.Tensor, group) -> torch.Tensor:
    """:class:`_AllReduceSum` applied to ``tensor`` over ``group``."""
    return _AllReduceSum.apply(tensor, group)


class SyncBatchNorm(BatchNorm):
    """:class:`bnlib.nn.BatchNorm` with batch statistics over every process of ``process_group`` (default: the
    whole world) in training mode; all arguments but ``process_group`` as ``torch.nn.BatchNorm2d``'s. Every
    process of the group must call it in the same order (it communicates), each with at least one example.

    A deliberate difference from ``torch.nn.SyncBatchNorm``: without an initialized process group torch's
    normalizes over the local batch without a word, which gives other numbers than the synchronized layer would;
    this one refuses in one sentence. And torch's refuses CPU input in a process group; this one takes it."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *,
                 bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _group(self):
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("SyncBatchNorm in training mode needs an initialized torch.distributed process group "
                               "(call torch.distributed.init_process_group first), or use bnlib.nn.BatchNorm on one "
                               "process.")
        return self.process_group if self.process_group is not None else dist.group.WORLD

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not (self.training or self.running_mean is None):
            return super().forward(x)  # running statistics: nothing to share
        group = self._group()
        world, rank = dist.get_world_size(group), dist.get_rank(group)
        acc = torch.float32 if x.dtype in _HALF else x.dtype
        xa = x.to(acc)
        dims, c = [0, *range(2, x.dim())], x.shape[1]
        shape = (c,) + (1,) * (x.dim() - 2)
        counts = torch.zeros(world, dtype=acc, device=x.device)
        counts[rank] = x.numel() // c if c else 0
        first = all_reduce(torch.cat([xa.sum(dims), counts]), group=group)
        counts = first[c:].detach()
        empty = [r for r, k in enumerate(counts.tolist()) if k == 0]
        if empty:
            raise ValueError(f"SyncBatchNorm got an empty batch on rank {empty[0]} of the process group: in training "
                             "mode every process needs at least one example.")
        n = float(counts.sum())
        if n < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got {n:g} over the process "
                             "group: batch statistics need at least two values per channel.")
        mean = first[:c] / n
        xc = xa - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims), group=group) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            y = y * self.weight.to(acc).view(shape)
        if self.bias is not None:
            y = y + self.bias.to(acc).view(shape)
        if self.training and self.track_running_stats:
            self._track(mean.detach(), var.detach() * n / (n - 1))
        return y.to(x.dtype)

    def _track(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """Update the running statistics with the group's batch statistics, as :class:`bnlib.nn.BatchNorm` does."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        with torch.no_grad():
            _update(self.running_mean, mean, factor)
            _update(self.running_var, unbiased_var, factor)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.process_group is None else ", process_group=given")


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """``module`` with every :class:`bnlib.nn.BatchNorm` and ``torch.nn.BatchNorm1d/2d/3d`` replaced by a
    :class:`SyncBatchNorm` with the same arguments, parameters and running statistics (as
    ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` does for torch's)."""
    bns = (BatchNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    if isinstance(module, bns) and not isinstance(module, SyncBatchNorm):
        ref = module.weight if module.weight is not None else module.running_mean
        kw = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group,
                            bias=module.bias is not None or not module.affine, **kw)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, process_group))
    return module
