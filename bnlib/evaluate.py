"""Scoring a network without changing it: accuracy and loss in eval mode or with batch statistics,
and the statistics of every hidden layer's pre-activation over a probe batch.

:func:`mode` is the one context manager that switches a network between its two ways of
normalizing (``"eval"``: running statistics; ``"batch"``: batch statistics, dropout and injected
noise off, running statistics restored) and puts every submodule back as it was on exit.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from bnlib import models, norms
from bnlib.results import HIST_EDGES, PERCENTILES, SATURATION_THRESHOLD, UNIT_QUANTILES

EVAL_CHUNK = 2000  # examples per forward pass when evaluating
MODES = ("eval", "batch")


@contextmanager
def mode(model: nn.Module, kind: str):
    """Run ``model`` in ``kind`` mode inside the block; every submodule's mode (and, for ``"batch"``,
    every buffer: running statistics, counters) is restored on exit.

    ``"eval"``: population (running) statistics. ``"batch"``: training-mode normalization by the
    statistics of each batch, with dropout and :class:`~bnlib.models.NoisyShift` switched off, so the
    same input gives the same output twice.
    """
    if kind not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {kind!r}.")
    modes = [m.training for m in model.modules()]
    saved = {k: v.clone() for k, v in model.named_buffers()} if kind == "batch" else None
    if kind == "eval":
        model.eval()
    else:
        model.train()
        for m in model.modules():
            if isinstance(m, (nn.Dropout, models.NoisyShift)):
                m.eval()
    try:
        yield model
    finally:
        if saved is not None:
            with torch.no_grad():
                for k, v in model.named_buffers():
                    v.copy_(saved[k])
        for m, t in zip(model.modules(), modes, strict=True):
            m.training = t


def _grouped_bn_layers(model: nn.Module) -> list[nn.Module] | None:
    """The BN layers of ``model`` (torch's and bnlib's), or None when another layer's output depends on
    the batch in training mode (Batch Renorm, l_p normalization), so that test batches must be run one by one."""
    if any(isinstance(m, (norms.BatchRenorm, norms.LpNorm)) for m in model.modules()):
        return None
    return models.bn_layers(model)


def _grouped_bn(bn: nn.Module, group: int, x: torch.Tensor) -> torch.Tensor:
    """BN in training mode applied to every ``group`` consecutive examples of ``x`` separately, each
    normalized by its own mean and biased variance (per channel, over the group and all positions)."""
    xs = x.reshape(x.shape[0] // group, group, *x.shape[1:])
    dims = [1, *range(3, xs.dim())]
    xc = xs - xs.mean(dims, keepdim=True)  # two passes (torch.var_mean is much slower over a middle axis)
    y = xc * torch.rsqrt((xc * xc).mean(dims, keepdim=True) + bn.eps)
    if bn.weight is not None:
        shape = (1, 1, -1) + (1,) * (xs.dim() - 3)
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y.reshape(x.shape)


@contextmanager
def _grouped_batch_statistics(layers: list[nn.Module], group: int):
    """Every BN layer in ``layers`` normalizes each ``group`` consecutive examples by their own statistics."""
    try:
        for bn in layers:
            bn.forward = lambda x, bn=bn: _grouped_bn(bn, group, x)
        yield
    finally:
        for bn in layers:
            del bn.forward


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_CHUNK,
             batch_stats: bool = False) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``x, y``.

    ``batch_stats=False``: eval mode (population statistics), in passes of ``batch_size``.
    ``True``: training-mode normalization over consecutive batches of ``batch_size`` (the last,
    partial batch is dropped when it has fewer than 2 examples), each batch normalized by its own
    statistics and the running statistics left as they were.
    """
    n = len(x) if not batch_stats or len(x) % batch_size != 1 else len(x) - 1
    correct, loss = 0, 0.0

    def add(i: int, j: int):
        nonlocal correct, loss
        out = model(x[i:j])
        loss += nn.functional.cross_entropy(out, y[i:j], reduction="sum").item()
        correct += (out.argmax(1) == y[i:j]).sum().item()

    if not batch_stats:
        with mode(model, "eval"):
            for i in range(0, n, batch_size):
                add(i, min(i + batch_size, n))
        return correct / n, loss / n
    layers = _grouped_bn_layers(model)
    if layers is None:  # each batch from the same state: moving statistics restored after every batch
        for i in range(0, n, batch_size):
            with mode(model, "batch"):
                add(i, min(i + batch_size, n))
        return correct / n, loss / n
    # every batch-dependent layer is BN: runs of whole batches go through in one pass
    full = n - n % batch_size
    chunk = max(1, EVAL_CHUNK // batch_size) * batch_size
    with mode(model, "batch"):
        with _grouped_batch_statistics(layers, batch_size):
            for i in range(0, full, chunk):
                add(i, min(i + chunk, full))
        if full < n:
            add(full, n)
    return correct / n, loss / n


@torch.no_grad()
def probe_stats(model: nn.Module, x_probe: torch.Tensor, units: tuple[int, ...]) -> dict:
    """Percentiles, saturated fraction and histogram of every hidden layer's pre-activation input (eval mode).

    ``units``: the last hidden layer summarized over all its units: for each of :data:`PERCENTILES` of one
    unit's input over the probe batch, the :data:`UNIT_QUANTILES` of that percentile across the layer's units
    (shape ``[3][5]``; the middle column is the median unit, the paper's "typical sigmoid").
    """
    with mode(model, "eval"), models.Probe(model) as probe:
        model(x_probe)
    pct, sat, hist = [], [], []
    for i in probe.layers:
        z = probe.inputs[i]
        per_unit = z.transpose(0, 1).reshape(z.shape[1], -1)  # (units, values)
        u = [j for j in units if j < per_unit.shape[0]]
        q = torch.quantile(per_unit[u].double(), torch.tensor(PERCENTILES, dtype=torch.float64) / 100, dim=1)
        pct.append(q.T.tolist())
        sat.append(float((z.abs() > SATURATION_THRESHOLD).double().mean()))
        hist.append(np.histogram(z.numpy().clip(HIST_EDGES[0], HIST_EDGES[-1]), HIST_EDGES)[0].tolist())
    z = probe.inputs[probe.layers[-1]]
    per_unit = z.transpose(0, 1).reshape(z.shape[1], -1).double()
    every = torch.quantile(per_unit, torch.tensor(PERCENTILES, dtype=torch.float64) / 100, dim=1)  # (3, units)
    across = torch.quantile(every, torch.tensor(UNIT_QUANTILES, dtype=torch.float64) / 100, dim=1)  # (5, 3)
    return {"percentiles": pct, "saturated": sat, "hist": hist, "units": across.T.tolist()}


def calibratable(model: nn.Module) -> bool:
    """Whether :func:`population_statistics` applies: ``model`` has BN layers and every batch-dependent layer is BN."""
    return bool(models.bn_layers(model)) and _grouped_bn_layers(model) is not None


@torch.no_grad()
def population_statistics(model: nn.Module, x: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, ...]]:
    """The paper's Algorithm 2 for every BN layer of ``model``: ``E[x] = E_B[mu_B]`` and
    ``Var[x] = m / (m - 1) E_B[sigma_B^2]`` over the consecutive mini-batches of ``batch_size`` examples of ``x``
    (a partial last batch is left out), with the network in training-mode normalization as during training
    (``m`` = ``batch_size`` times the positions per channel). Returns one ``(mean, var)`` pair of float64
    tensors per BN layer; ``model`` is left exactly as it was.
    """
    if not calibratable(model):
        raise ValueError("population_statistics needs a network whose batch-dependent layers are all BN layers.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer of at least 2, got {batch_size!r}.")
    full = len(x) - len(x) % batch_size
    if full == 0:
        raise ValueError(f"population_statistics needs at least one batch of {batch_size} examples, got {len(x)}.")
    layers = models.bn_layers(model)
    sums: list[list] = [[0.0, 0.0, 0, 0] for _ in layers]  # sum of batch means, of batch variances, batches, m

    def hook(i):
        def h(_m, args, _out):
            z = args[0].double()
            zs = z.reshape(z.shape[0] // batch_size, batch_size, *z.shape[1:])
            dims = [1, *range(3, zs.dim())]
            mu = zs.mean(dims, keepdim=True)
            var = ((zs - mu) ** 2).mean(dims)
            s = sums[i]
            s[0] = s[0] + mu.reshape(var.shape).sum(0)
            s[1] = s[1] + var.sum(0)
            s[2] += zs.shape[0]
            s[3] = batch_size * int(np.prod(zs.shape[3:]))
        return h

    chunk = max(1, EVAL_CHUNK // batch_size) * batch_size
    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(layers)]
    try:
        with mode(model, "batch"), _grouped_batch_statistics(layers, batch_size):
            for i in range(0, full, chunk):
                model(x[i:min(i + chunk, full)])
    finally:
        for h in handles:
            h.remove()
    return [(s[0] / s[2], s[1] / s[2] * s[3] / (s[3] - 1)) for s in sums]


def calibrated(model: nn.Module, x: torch.Tensor, batch_size: int) -> nn.Module:
    """A copy of ``model`` whose BN layers hold the population statistics of :func:`population_statistics` over
    ``x`` in mini-batches of ``batch_size`` (Algorithm 2), in place of the running averages; ``model`` is untouched.
    """
    stats = population_statistics(model, x, batch_size)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for b, (mu, var) in zip(models.bn_layers(twin), stats, strict=True):
            b.running_mean.copy_(mu)
            b.running_var.copy_(var)
    return twin
