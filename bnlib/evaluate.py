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

#: Examples per eval-mode forward pass: feature maps of 500 CIFAR-10 images stay in the cache (a pass of 2,000
#: cost each image about four times what it costs in a training step); vectors go through matrix products, for
#: which larger passes are faster.
IMAGE_CHUNK, VECTOR_CHUNK = 500, 2000
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


def _batch_dependent_only_bn(model: nn.Module) -> bool:
    """Whether every layer of ``model`` whose training-mode output depends on the batch is a BN layer (torch's or
    bnlib's); Batch Renorm and l_p normalization are not (their training-mode output depends on their state or on
    more than the batch's mean and variance)."""
    return not any(isinstance(m, (norms.BatchRenorm, norms.LpNorm)) for m in model.modules())


def _chunk(x: torch.Tensor) -> int:
    """Examples per eval-mode pass for inputs like ``x``: :data:`IMAGE_CHUNK` for images, :data:`VECTOR_CHUNK`
    for vectors."""
    return IMAGE_CHUNK if x.dim() > 2 else VECTOR_CHUNK


def _grouped_bn(bn: nn.Module, group: int, x: torch.Tensor) -> torch.Tensor:
    """BN in training mode applied to every ``group`` consecutive rows of the vectors ``x`` (N, C) separately,
    each normalized by its own mean and biased variance per feature."""
    xs = x.reshape(x.shape[0] // group, group, x.shape[1])
    xc = xs - xs.mean(1, keepdim=True)  # two passes (torch.var_mean is much slower over a middle axis)
    y = xc * torch.rsqrt((xc * xc).mean(1, keepdim=True) + bn.eps)
    if bn.weight is not None:
        y = y * bn.weight
    if bn.bias is not None:
        y = y + bn.bias
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


def _batch_passes(model: nn.Module, x: torch.Tensor, n: int, batch_size: int):
    """Yield ``(i, j, model(x[i:j]))`` over ``x[:n]`` in passes of one or more whole consecutive batches of
    ``batch_size`` examples (the last batch may be partial), every batch normalized by its own statistics as in
    training, dropout and injected noise off; on exit every buffer (running statistics, counters) is as it was.

    How the batches go through is chosen for speed: feature maps one batch per pass through the model's own
    layers (passes that fit the cache); vectors, when every batch-dependent layer is BN, in runs of whole batches
    of about :data:`VECTOR_CHUNK` examples, each BN layer normalizing every batch of the run apart
    (:func:`_grouped_bn`, two passes: the same statistics as the layer's own kernel up to rounding), a partial last
    batch through the model's own layers; and a network with another batch-dependent layer one batch at a time,
    each from the state it had before the first (Batch Renorm's corrections depend on its running statistics).
    The model's input decides the path: an MLP's BN layers see vectors, a CNN's feature maps.
    """
    if not _batch_dependent_only_bn(model):
        for i in range(0, n, batch_size):
            with mode(model, "batch"):
                yield i, min(i + batch_size, n), model(x[i:min(i + batch_size, n)])
        return
    with mode(model, "batch"):
        if x.dim() > 2:
            for i in range(0, n, batch_size):
                yield i, min(i + batch_size, n), model(x[i:min(i + batch_size, n)])
            return
        full = n - n % batch_size
        chunk = max(1, VECTOR_CHUNK // batch_size) * batch_size
        with _grouped_batch_statistics(models.bn_layers(model), batch_size):
            for i in range(0, full, chunk):
                yield i, min(i + chunk, full), model(x[i:min(i + chunk, full)])
        if full < n:
            yield full, n, model(x[full:n])


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None,
             batch_stats: bool = False) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``x, y``.

    ``batch_stats=False``: eval mode (population statistics), in passes of ``batch_size`` (None:
    :data:`IMAGE_CHUNK` images or :data:`VECTOR_CHUNK` vectors).
    ``True``: training-mode normalization over consecutive batches of ``batch_size`` (None: the same
    default; the last, partial batch is dropped when it has fewer than 2 examples), each batch
    normalized by its own statistics and the running statistics left as they were.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"evaluate needs batch_size to be a positive whole number of examples (or None for the "
                         f"default), got {batch_size!r}.")
    batch_size = batch_size or _chunk(x)
    n = len(x) if not batch_stats or len(x) % batch_size != 1 else len(x) - 1
    correct, loss = 0, 0.0

    def add(i: int, j: int, out: torch.Tensor):
        nonlocal correct, loss
        loss += nn.functional.cross_entropy(out, y[i:j], reduction="sum").item()
        correct += (out.argmax(1) == y[i:j]).sum().item()

    if not batch_stats:
        with mode(model, "eval"):
            for i in range(0, n, batch_size):
                add(i, min(i + batch_size, n), model(x[i:min(i + batch_size, n)]))
        return correct / n, loss / n
    for i, j, out in _batch_passes(model, x, n, batch_size):
        add(i, j, out)
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
    return bool(models.bn_layers(model)) and _batch_dependent_only_bn(model)


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
            z = args[0]
            batches = z.shape[0] // batch_size  # a pass holds whole batches
            # (batches, examples x positions, channels): a view for channels-last maps and for vectors
            zs = z.movedim(1, -1).reshape(batches, -1, z.shape[1]).double()
            mu = zs.mean(1, keepdim=True)
            var = ((zs - mu) ** 2).mean(1)  # two passes in float64
            s = sums[i]
            s[0] = s[0] + mu.squeeze(1).sum(0)
            s[1] = s[1] + var.sum(0)
            s[2] += batches
            s[3] = zs.shape[1]
        return h

    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(layers)]
    try:
        for _ in _batch_passes(model, x, full, batch_size):
            pass
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
