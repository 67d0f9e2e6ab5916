"""One seeded, deterministic training loop for every experiment of the book, with recorders.

:func:`train` takes a :class:`RunConfig` and returns a plain dict (JSON-ready) with the
configuration, the recorded curves and a summary. Every ``record_every`` steps it records:

- ``test_acc``/``test_loss``: on the test set in eval mode (population statistics);
- ``test_acc_batchstats``: the same test set pushed through in mini-batches of
  ``batch_size`` in training mode (batch statistics, running statistics left untouched);
- ``train_loss``: the mean mini-batch loss since the previous record;
- ``percentiles``: the 15th, 50th and 85th percentiles of the input to ``probe_units`` fixed
  units of every hidden layer over a fixed probe batch of test images (eval mode), shape
  ``[layer][unit][3]``; for a CNN a unit is a feature map and all positions count;
- ``saturated``: per hidden layer, the fraction of (example, unit) inputs ``x`` over the probe
  batch at which the sigmoid is saturated, defined as ``sigmoid'(x) < 0.01``, i.e.
  ``|x| > 4.5849`` (:data:`SATURATION_THRESHOLD`);
- ``hist``: per hidden layer, counts of those inputs in the bins :data:`HIST_EDGES`;
- ``grad_norm``: per weight layer, the l2 norm of the loss gradient on the current batch;
- ``units``: the last hidden layer over all its units (see :func:`bnlib.evaluate.probe_stats`),
  with population statistics when the run recomputes them;
- with ``validation=n`` (the last n training images held out, never trained on): ``val_acc`` and
  ``val_loss`` in eval mode; the probe batch then comes from the validation split;
- with ``calibration=n``: ``test_acc_pop`` (and ``val_acc_pop``), the accuracy of a copy of the
  network whose BN layers hold population statistics recomputed by the paper's Algorithm 2 over
  the first n training images in mini-batches of ``batch_size``. For a network without BN layers
  (or with a batch-dependent layer that is not BN, such as Batch Renorm, which keeps its own
  inference rule) these equal the eval-mode values.

The summary holds the final test accuracy and loss on the whole test set (eval mode), the
final training accuracy and loss on the first 10,000 training images (eval mode), and the
best recorded test accuracy; with a validation split also ``final_val_acc``/``final_val_loss``;
with ``calibration`` also ``final_test_acc_pop``, ``final_test_loss_pop`` (and ``final_val_acc_pop``),
population statistics recomputed over the whole training split.

A run whose loss becomes NaN or infinite stops at once and is recorded as diverged at that
step (``summary["diverged_at"]``); curves hold only the finite records before it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from bnlib import analysis, models
from bnlib import data as bdata
from bnlib.evaluate import calibratable, calibrated, evaluate, probe_stats


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run (and so its result)."""

    dataset: str = "mnist"  # "mnist" | "fashion_mnist" | "cifar10"
    model: str = "mlp"  # "mlp" | "cnn"
    sizes: tuple[int, ...] = (784, 100, 100, 100, 10)  # mlp only
    depth: int = 6  # cnn only
    width: int = 16  # cnn only
    norm: str | None = None
    norm_position: str = "pre"  # mlp only: "pre" (paper) or "post" (after the nonlinearity)
    activation: str = "sigmoid"
    dropout: float = 0.0
    init: str = "gaussian"
    init_sigma: float = 0.1
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # multiply the learning rate by this ...
    lr_decay_every: int = 0  # ... every this many steps (0: constant rate)
    batch_size: int = 60
    steps: int = 1000
    record_every: int = 100
    train_subset: int = 0  # first n training images (0: all)
    test_subset: int = 0  # first n test images for the curves (0: all); the summary uses all
    probe_batch: int = 1000
    probe_units: tuple[int, ...] = (0, 1, 2)
    batch_sampler: str = "iid"  # "iid" | "classes:k" (each batch from k random classes)
    seed: int = 0
    device: str = "cpu"
    recorders: tuple[str, ...] = ()  # extra recorders from bnlib.analysis.RECORDERS, e.g. ("ics", "landscape")
    analyses: tuple[str, ...] = ()  # post-training analyses from bnlib.analysis.ANALYSES
    validation: int = 0  # hold out the last n training images as a validation split (never trained on)
    calibration: int = 0  # records also score BN networks with population statistics (Algorithm 2) of n images
    inputs: str = "standardized"  # "standardized" (per-channel mean 0, sd 1) | "unit" (pixels / 255, in [0, 1])

    def __post_init__(self):
        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, ("mlp", "cnn"))
        _choice("norm", self.norm, models.NORMS)
        _choice("norm_position", self.norm_position, ("pre", "post"))
        _choice("activation", self.activation, models.ACTIVATIONS)
        _choice("init", self.init, models.INITS)
        _choice("optimizer", self.optimizer, ("sgd", "adam"))
        _choice("inputs", self.inputs, ("standardized", "unit"))
        for name in ("batch_size", "steps", "record_every", "probe_batch"):
            _integer(name, getattr(self, name), 1)
        for name in ("train_subset", "test_subset", "lr_decay_every", "validation", "calibration", "seed"):
            _integer(name, getattr(self, name), 0)
        _number("lr", self.lr, low=0.0, low_open=True)
        _number("init_sigma", self.init_sigma, low=0.0, low_open=True)
        _number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        _number("lr_decay", self.lr_decay, low=0.0, high=1.0, low_open=True)
        _sequence("sizes", self.sizes, 2)
        _sequence("probe_units", self.probe_units, 1, low=0)
        if self.model == "cnn":
            _integer("depth", self.depth, 1)
            _integer("width", self.width, 1)
        if not isinstance(self.batch_sampler, str) or not (
                self.batch_sampler == "iid" or self.batch_sampler.startswith("classes:")):
            raise ValueError(f"batch_sampler must be 'iid' or 'classes:k', got {self.batch_sampler!r}.")
        if self.batch_sampler != "iid":
            k = self.batch_sampler.split(":", 1)[1]
            if not (k.isdigit() and 1 <= int(k) <= 10):
                raise ValueError(f"batch_sampler 'classes:k' needs k, the number of classes in each batch, between 1 "
                                 f"and 10, got {self.batch_sampler!r}.")
        for kind, names, known in (("recorders", self.recorders, analysis.RECORDERS),
                                   ("analyses", self.analyses, analysis.ANALYSES)):
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise TypeError(f"{kind} must be a tuple of names, got {names!r}.")
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"unknown {kind} {unknown}; known: {sorted(known)}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        d["probe_units"] = list(self.probe_units)
        d["recorders"] = list(self.recorders)
        d["analyses"] = list(self.analyses)
        return d

    def identity(self) -> dict:
        """The settings that differ from the defaults: what an experiment's hash is taken over.

        ``device`` is left out: where a run executes does not change what it is.
        New fields can then be added (with a default that keeps the old behaviour) without
        invalidating committed results; the defaults themselves must never change
        (tests/test_engine.py pins them).
        """
        defaults = RunConfig().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != defaults[k] and k != "device"}


DATASETS = ("mnist", "fashion_mnist", "cifar10")


def _choice(name: str, value, allowed) -> None:
    if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}.")


def _integer(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}.")


def _number(name: str, value, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and (
        value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open or high == math.inf else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}.")


def _sequence(name: str, value, min_len: int, low: int = 1) -> None:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) < min_len:
        raise ValueError(f"{name} must be a sequence of at least {min_len} integers, got {value!r}.")
    for v in value:
        _integer(f"every entry of {name}", v, low)


# --------------------------------------------------------------------------- data
@dataclass
class Data:
    """Float tensors ready for training: x standardized, y int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str = ""
    extra: dict = field(default_factory=dict)


_DATA_CACHE: dict = {}

def load_data(dataset: str, flatten: bool, inputs: str = "standardized") -> Data:
    """Load a dataset through :mod:`bnlib.data` as float32 tensors (cached in memory): ``x / 255`` standardized
    with fixed per-channel float32 constants (``inputs="standardized"``) or left in [0, 1] (``"unit"``).

    Images (``flatten=False``) are stored channels-last, shape ``(N, C, H, W)`` with the channels innermost in
    memory: convolutions and max-pooling on this CPU run 1.6 to 7 times faster on that layout, and every layer
    keeps it. The values are the same; only the order of the additions inside a convolution may differ."""
    _choice("dataset", dataset, DATASETS)
    _choice("inputs", inputs, ("standardized", "unit"))
    key = (dataset, flatten, inputs)
    if key not in _DATA_CACHE:
        loaders = {"mnist": bdata.load_mnist, "fashion_mnist": bdata.load_fashion_mnist, "cifar10": bdata.load_cifar10}
        (xtr, ytr), (xte, yte) = loaders[dataset]()
        norm = inputs == "standardized"  # fixed float32 constants: bit-identical inputs every run
        xtr_t, ytr_t = bdata.to_tensors(xtr, ytr, dataset, flatten=flatten, normalize=norm)
        xte_t, yte_t = bdata.to_tensors(xte, yte, dataset, flatten=flatten, normalize=norm)
        if not flatten:
            xtr_t, xte_t = (t.contiguous(memory_format=torch.channels_last) for t in (xtr_t, xte_t))
        _DATA_CACHE[key] = Data(xtr_t, ytr_t, xte_t, yte_t, name=dataset)
    return _DATA_CACHE[key]


def _fits(cfg: RunConfig, data: Data) -> None:
    """The network of ``cfg`` takes the images of ``data`` (one sentence when it does not)."""
    shape = tuple(data.x_train.shape[1:])
    if cfg.model == "cnn" and (len(shape) != 3 or shape[0] != 3):
        raise ValueError(f"model='cnn' takes 3-channel images (N, 3, H, W) such as CIFAR-10's, but the "
                         f"{data.name or cfg.dataset} images have shape {shape}: use model='mlp'.")
    if cfg.model == "mlp" and shape != (cfg.sizes[0],):
        raise ValueError(f"sizes[0] must be the {int(np.prod(shape))} pixel values of a {data.name or cfg.dataset} "
                         f"image (the MLP's input, flattened), got sizes={tuple(cfg.sizes)}.")


def split(cfg: RunConfig, data: Data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(x_train, y_train, x_val, y_val)`` of a run: the last ``cfg.validation`` training images are the validation
    split (None when 0), and the run trains on the first ``cfg.train_subset`` (0: all) of the rest."""
    n = len(data.x_train)
    if cfg.validation >= n:
        raise ValueError(f"validation must leave training images: got validation={cfg.validation} of the {n} "
                         f"training images of {cfg.dataset}.")
    keep = n - cfg.validation
    if cfg.train_subset > keep:
        raise ValueError(f"train_subset={cfg.train_subset} exceeds the {keep} training images left after the "
                         f"validation split.")
    if cfg.calibration > (cfg.train_subset or keep):
        raise ValueError(f"calibration={cfg.calibration} exceeds the {cfg.train_subset or keep} training images.")
    xtr, ytr = data.x_train[: cfg.train_subset or keep], data.y_train[: cfg.train_subset or keep]
    if not cfg.validation:
        return xtr, ytr, None, None
    return xtr, ytr, data.x_train[keep:], data.y_train[keep:]


def build_model(cfg: RunConfig) -> nn.Module:
    if cfg.model == "mlp":
        model = models.SigmoidMLP(cfg.sizes, norm=cfg.norm, activation=cfg.activation, dropout=cfg.dropout,
                                  seed=cfg.seed, norm_position=cfg.norm_position)
    else:
        model = models.SigmoidCNN(cfg.depth, cfg.width, norm=cfg.norm, activation=cfg.activation,
                                  dropout=cfg.dropout, seed=cfg.seed)
    models.init_weights(model, cfg.init, cfg.init_sigma, seed=cfg.seed)
    return model


# --------------------------------------------------------------------------- batches
class BatchSampler:
    """Deterministic mini-batch indices: shuffled epochs (``iid``) or ``classes:k`` batches."""

    def __init__(self, labels: torch.Tensor, batch_size: int, mode: str, seed: int):
        self.rng = np.random.default_rng(seed)
        self.n, self.bs, self.mode = len(labels), batch_size, mode
        if batch_size > self.n:
            raise ValueError(f"batch_size {batch_size} exceeds the {self.n} training examples.")
        self.order, self.pos = self.rng.permutation(self.n), 0
        if mode.startswith("classes:"):
            self.k = int(mode.split(":", 1)[1])
            y = labels.numpy()
            self.by_class = [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]

    def next(self) -> torch.Tensor:
        if self.mode == "iid":
            if self.pos + self.bs > self.n:
                self.order, self.pos = self.rng.permutation(self.n), 0
            idx = self.order[self.pos : self.pos + self.bs]
            self.pos += self.bs
        else:
            classes = self.rng.choice(len(self.by_class), size=self.k, replace=False)
            pool = np.concatenate([self.by_class[c] for c in classes])
            # with replacement only when k classes hold fewer examples than a batch (tiny subsets)
            idx = self.rng.choice(pool, size=self.bs, replace=len(pool) < self.bs)
        return torch.from_numpy(np.asarray(idx, dtype=np.int64))


# --------------------------------------------------------------------------- training
def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # foreach: every parameter updated in one pass of fused list operations, bit-identical to the loop over them
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           foreach=True)


def lr_at(cfg: RunConfig, step: int) -> float:
    """The learning rate used at ``step`` (0-based): step decay by ``lr_decay`` every ``lr_decay_every``."""
    if cfg.lr_decay_every <= 0:
        return cfg.lr
    return cfg.lr * cfg.lr_decay ** (step // cfg.lr_decay_every)


def train(cfg: RunConfig, data: Data | None = None, progress: Callable[[int], None] | None = None,
          record: bool = True) -> dict:
    """Train one network as ``cfg`` says; return ``{"config", "curves", "summary"}``.

    ``progress(n)`` is called with the number of steps done since its last call.
    ``record=False`` switches the recorders off (for measuring their cost).
    """
    torch.manual_seed(cfg.seed)
    if data is None:
        data = load_data(cfg.dataset, flatten=cfg.model == "mlp", inputs=cfg.inputs)
    _fits(cfg, data)
    dev = torch.device(cfg.device)
    xtr, ytr, xval, yval = split(cfg, data)
    xte, yte = data.x_test, data.y_test
    xte_c, yte_c = (xte[: cfg.test_subset], yte[: cfg.test_subset]) if cfg.test_subset else (xte, yte)
    x_probe = (xval if xval is not None else xte)[: cfg.probe_batch].to(dev)
    xtr, ytr, xte_c, yte_c = xtr.to(dev), ytr.to(dev), xte_c.to(dev), yte_c.to(dev)
    if xval is not None:
        xval, yval = xval.to(dev), yval.to(dev)

    model = build_model(cfg).to(dev)
    opt = make_optimizer(cfg, model)
    sampler = BatchSampler(ytr.cpu(), cfg.batch_size, cfg.batch_sampler, cfg.seed)
    wlayers = models.weight_layers(model)
    population = cfg.calibration > 0
    calibrate = population and calibratable(model)

    keys = ["step", "test_acc", "test_loss", "test_acc_batchstats", "train_loss", "grad_norm", "percentiles",
            "saturated", "hist", "units"]
    keys += ["val_acc", "val_loss"] if xval is not None else []
    keys += ["test_acc_pop"] + (["val_acc_pop"] if xval is not None else []) if population else []
    curves: dict[str, list] = {k: [] for k in (*keys, *cfg.recorders)}

    def do_record(step: int, grad_norms: list[float] | None):
        acc, loss = evaluate(model, xte_c, yte_c)
        acc_b, _ = evaluate(model, xte_c, yte_c, batch_size=cfg.batch_size, batch_stats=True) if cfg.norm else (acc,
                                                                                                                 loss)
        ps = probe_stats(model, x_probe, cfg.probe_units)
        curves["step"].append(step)
        curves["test_acc"].append(acc)
        curves["test_loss"].append(loss)
        curves["test_acc_batchstats"].append(acc_b)
        curves["train_loss"].append(float(np.mean(loss_window)) if loss_window else None)
        curves["grad_norm"].append(grad_norms)
        for k in ("percentiles", "saturated", "hist"):
            curves[k].append(ps[k])
        if xval is not None:
            va, vl = evaluate(model, xval, yval)
            curves["val_acc"].append(va)
            curves["val_loss"].append(vl)
        scored = calibrated(model, xtr[: cfg.calibration], cfg.batch_size) if calibrate else model
        curves["units"].append(probe_stats(scored, x_probe, cfg.probe_units)["units"] if calibrate else ps["units"])
        if population:
            curves["test_acc_pop"].append(evaluate(scored, xte_c, yte_c)[0] if calibrate else acc)
            if xval is not None:
                curves["val_acc_pop"].append(evaluate(scored, xval, yval)[0] if calibrate else curves["val_acc"][-1])

    diverged_at = None
    loss_window: list[float] = []
    t0 = time.perf_counter()
    if record:
        do_record(0, None)
    model.train()
    last_progress = 0
    for step in range(1, cfg.steps + 1):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step - 1)
        idx = sampler.next().to(dev)
        out = model(xtr[idx])
        loss = nn.functional.cross_entropy(out, ytr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lv = loss.item()
        if not math.isfinite(lv):
            diverged_at = step
            break
        opt.step()
        loss_window.append(lv)
        if record and step % cfg.record_every == 0:
            norms = [float(m.weight.grad.norm()) for m in wlayers]
            do_record(step, norms)
            for name in cfg.recorders:
                curves[name].append(analysis.RECORDERS[name](model, xtr[idx], ytr[idx], lr_at(cfg, step)))
            loss_window = []
            if not all(math.isfinite(v) for v in curves["test_loss"][-1:]):
                diverged_at = step
                for k in curves:
                    curves[k].pop()
                break
        if progress is not None and (step % 100 == 0 or step == cfg.steps):
            progress(step - last_progress)
            last_progress = step
    wall = time.perf_counter() - t0

    summary: dict = {"diverged_at": diverged_at, "steps_done": (diverged_at - 1) if diverged_at else cfg.steps,
                     "train_seconds": wall}
    if diverged_at is None:
        acc, loss = evaluate(model, xte.to(dev), yte.to(dev))
        tr_n = min(len(xtr), 10000)
        tr_acc, tr_loss = evaluate(model, xtr[:tr_n], ytr[:tr_n])
        summary.update(final_test_acc=acc, final_test_loss=loss, final_train_acc=tr_acc, final_train_loss=tr_loss)
        if cfg.norm:
            summary["final_test_acc_batchstats"] = evaluate(model, xte.to(dev), yte.to(dev),
                                                            batch_size=cfg.batch_size, batch_stats=True)[0]
        if xval is not None:
            summary["final_val_acc"], summary["final_val_loss"] = evaluate(model, xval, yval)
        if population:  # population statistics over the whole training split, with the final weights
            scored = calibrated(model, xtr, cfg.batch_size) if calibrate else model
            summary["final_test_acc_pop"], summary["final_test_loss_pop"] = evaluate(scored, xte.to(dev), yte.to(dev))
            if xval is not None:
                summary["final_val_acc_pop"] = evaluate(scored, xval, yval)[0]
    else:
        summary.update(final_test_acc=None, final_test_loss=None, final_train_acc=None, final_train_loss=None)
    result_analyses = {}
    if diverged_at is None and cfg.analyses:
        sub = Data(xtr, ytr, xte.to(dev), yte.to(dev), name=data.name)
        for name in cfg.analyses:
            result_analyses[name] = analysis.ANALYSES[name](model, sub, cfg)
    accs = [a for a in curves["test_acc"] if a is not None]
    summary["best_test_acc"] = max(accs) if accs else None
    return {"config": cfg.to_dict(), "curves": curves, "summary": summary, "analysis": result_analyses,
            "model": model}
