"""A small residual network on CIFAR-10 for the practice chapter (book/practice.ipynb): with BN, without any
normalization, and with SkipInit (De & Smith 2020), the normalizer-free variant whose residual branches are
scaled by a learnable scalar that starts at zero.

:func:`stream_variances` measures what De and Smith's argument is about: at initialization, BN makes every
residual branch contribute the same variance (``2 Var relu(z) = 1 - 1/pi`` for He's initialization and a
normalized ``z``) to a stream that grows by that much per block, so that block ``l``'s branch is downscaled by
about ``1 / sqrt(l)`` against the skip path; without normalization the stream's variance roughly doubles at each
block; with SkipInit each block starts as the identity. :func:`residual_check` trains the
three on CIFAR-10 at two learning rates and several seeds (a stored check: ``experiments check residual``).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.multiprocessing as mp
from torch import nn

from bnlib import data as bdata
from bnlib import evaluate, models
from bnlib.nn import BatchNorm2d
from bnlib.threads import one_thread

#: The three residual networks: pre-activation BN blocks; the same blocks without normalization (with biases);
#: and those with each residual branch multiplied by a learnable scalar initialized to zero (SkipInit).
KINDS = ("bn", "plain", "skipinit")
#: The network of :func:`residual_check`: a 3 x 3 stem of stride 2 to 16 x 16 maps of WIDTH channels, BLOCKS
#: residual blocks of two 3 x 3 convolutions (2 * BLOCKS + 2 weight layers), global average pooling, a linear layer.
WIDTH, BLOCKS = 16, 6
#: Training of :func:`residual_check`: SGD with momentum, a cosine decay to zero, STEPS batches of BATCH images
#: (about two epochs of CIFAR-10's 50,000 training images), at a moderate and a ten times larger rate.
BATCH, STEPS, MOMENTUM = 64, 1500, 0.9
RATES = (0.05, 0.5)
#: BN networks are scored with population statistics over this many training images, in batches of BATCH.
CALIBRATION = 5000


class ResidualBlock(nn.Module):
    """``x + s * f(x)`` with the pre-activation branch ``f = conv(relu(norm(conv(relu(norm(x))))))`` of He et al.
    (2016); ``norm`` is BN for ``kind="bn"`` (the convolutions then have no bias) and the identity otherwise;
    ``s`` is 1, or for ``kind="skipinit"`` a learnable scalar that starts at 0."""

    def __init__(self, width: int, kind: str):
        super().__init__()
        _check_kind(kind)
        bn = kind == "bn"
        self.norm1 = BatchNorm2d(width) if bn else nn.Identity()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not bn)
        self.norm2 = BatchNorm2d(width) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not bn)
        self.alpha = nn.Parameter(torch.zeros(())) if kind == "skipinit" else None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch ``f(x)``, before SkipInit's scalar."""
        return self.conv2(torch.relu(self.norm2(self.conv1(torch.relu(self.norm1(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(x)
        return x + (f if self.alpha is None else self.alpha * f)


class ResidualNet(nn.Module):
    """The network of :data:`WIDTH` and :data:`BLOCKS` for 32 x 32 RGB images, initialized from ``seed`` with He et
    al.'s (2015) normal initialization for ReLU (``fan_in``, gain sqrt 2), biases zero, BN's gamma one."""

    def __init__(self, kind: str, width: int = WIDTH, blocks: int = BLOCKS, seed: int = 0):
        super().__init__()
        _check_kind(kind)
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks must be a positive integer, got {blocks!r}.")
        self.kind = kind
        self.stem = nn.Conv2d(3, width, 3, stride=2, padding=1, bias=kind != "bn")
        self.blocks = nn.ModuleList(ResidualBlock(width, kind) for _ in range(blocks))
        self.norm = BatchNorm2d(width) if kind == "bn" else nn.Identity()
        self.head = nn.Linear(width, 10)
        models.init_weights(self, "kaiming", seed=seed)

    def streams(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream: the stem's output and each block's output."""
        out = [self.stem(x)]
        for b in self.blocks:
            out.append(b(out[-1]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.streams(x)[-1]))
        return self.head(h.mean((2, 3)))


def _check_kind(kind) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")


def _channel_variance(z: torch.Tensor) -> float:
    """The per-channel variance over the batch and the positions, averaged over the channels."""
    return float(z.double().transpose(0, 1).reshape(z.shape[1], -1).var(1, correction=0).mean())


@torch.no_grad()
def stream_variances(net: ResidualNet, x: torch.Tensor) -> dict:
    """At ``net``'s current weights, in training-mode normalization (the statistics of the batch ``x``): the
    variance of the residual stream entering each block and leaving the last (``"stream"``, ``BLOCKS + 1``
    values) and of each block's branch ``f`` before SkipInit's scalar (``"branch"``), each the per-channel variance
    averaged over channels. ``net`` is left as it was."""
    with evaluate.mode(net, "batch"):
        streams = net.streams(x)
        branches = [b.branch(s) for b, s in zip(net.blocks, streams, strict=False)]
    return {"stream": [_channel_variance(s) for s in streams], "branch": [_channel_variance(f) for f in branches]}


def cifar_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CIFAR-10 standardized per channel: ``x_train, y_train, x_test, y_test``, the images stored channels-last
    (as the engine's; convolutions on this layout run faster on a CPU)."""
    (xtr, ytr), (xte, yte) = bdata.load_cifar10()
    (xtr, ytr), (xte, yte) = bdata.to_tensors(xtr, ytr, "cifar10"), bdata.to_tensors(xte, yte, "cifar10")
    return (xtr.contiguous(memory_format=torch.channels_last), ytr,
            xte.contiguous(memory_format=torch.channels_last), yte)


_DATA: tuple | None = None


def _worker_data() -> tuple:
    global _DATA
    if _DATA is None:
        _DATA = cifar_tensors()
    return _DATA


def train_one(kind: str, rate: float, seed: int, steps: int = STEPS, batch: int = BATCH) -> dict:
    """One network of ``kind`` trained from ``seed`` (initialization and batch order) for ``steps`` SGD steps at
    peak rate ``rate``, with one thread. Returns its test accuracy (BN with population statistics), the mean
    training loss over the last 100 steps, and whether the loss became non-finite (training then stops and the
    network is scored as it is)."""
    x, y, x_test, y_test = _worker_data()
    with one_thread():
        net = ResidualNet(kind, seed=seed)
        opt = torch.optim.SGD(net.parameters(), lr=rate, momentum=MOMENTUM)
        g = torch.Generator().manual_seed(seed)
        losses: list[float] = []
        diverged = False
        net.train()
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = rate * 0.5 * (1 + math.cos(math.pi * step / steps))
            idx = torch.randint(0, len(x), (batch,), generator=g)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            opt.step()
            losses.append(loss.item())
        scored = evaluate.calibrated(net, x[:CALIBRATION], batch) if kind == "bn" else net
        acc = evaluate.evaluate(scored, x_test, y_test)[0]
    tail = losses[-100:]
    return {"kind": kind, "rate": rate, "seed": seed, "acc": acc, "diverged": diverged, "steps_done": len(losses),
            "final_loss": sum(tail) / len(tail) if tail and not diverged else None}


def _task(args: tuple) -> dict:
    return train_one(*args)


def residual_check(seeds=range(5), rates=RATES, kinds=KINDS, steps: int = STEPS, jobs: int = 2) -> dict:
    """Each network of ``kinds`` trained at each peak rate of ``rates`` from each seed (:func:`train_one`), the
    runs spread over ``jobs`` processes of one thread each (a run's numbers do not depend on ``jobs``). Returns
    ``{"acc": {kind: {str(rate): [...]}}, "diverged": ..., "final_loss": ..., "steps_done": ...}``, one value per
    seed, and the setting."""
    seeds, rates, kinds = list(seeds), list(rates), list(kinds)
    tasks = [(k, r, s, steps) for s in seeds for r in rates for k in kinds]
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            runs = list(pool.map(_task, tasks))
    else:
        runs = [_task(t) for t in tasks]
    out: dict = {"seeds": seeds, "rates": rates, "kinds": kinds, "steps": steps, "batch": BATCH, "width": WIDTH,
                 "blocks": BLOCKS, "momentum": MOMENTUM, "calibration": CALIBRATION}
    for key in ("acc", "diverged", "final_loss", "steps_done"):
        out[key] = {k: {str(r): [run[key] for run in runs if run["kind"] == k and run["rate"] == r] for r in rates}
                    for k in kinds}
    return out
