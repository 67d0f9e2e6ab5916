"""Named experiments, their three scales, and the results cache.

An :class:`Experiment` is a frozen, hashable bundle of named training runs
(:class:`bnlib.train.RunConfig`). Its hash is a SHA-256 of the canonical JSON of its
configuration, so any change of any setting gives a new hash. :func:`run` loads
``results/<name>-<hash>.json`` when it exists and otherwise trains every run (with a tqdm
progress bar) and writes that file atomically, with provenance.

Scales: ``smoke`` (seconds, tiny data; what the tests run), ``book`` (what the book shows,
sized for a 2-core CPU), ``paper`` (the paper's scale; on a GPU when there is one).

Command line::

    python -m bnlib.experiments list
    python -m bnlib.experiments run NAME [--scale smoke|book|paper] [--force] [--jobs N] [--device cuda]
    python -m bnlib.experiments run NAME --scheduler tcp://host:8786     # on a running Dask cluster
    python -m bnlib.experiments run --all [--scale book] [--force]
    python -m bnlib.experiments stale          # exits 1 when a result's config or engine fingerprint differs
    python -m bnlib.experiments check NAME|--all [--force]   # a chapter's stored check (results/checks/)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bnlib import checks, engine, results
from bnlib.train import RunConfig

SCALES = ("smoke", "book", "paper")
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("BNLIB_RESULTS_DIR", ROOT / "results"))


@dataclass(frozen=True)
class Experiment:
    name: str
    scale: str
    runs: tuple[tuple[str, RunConfig], ...]
    description: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "scale": self.scale, "runs": {k: c.to_dict() for k, c in self.runs}}

    @property
    def hash(self) -> str:
        ident = {"name": self.name, "scale": self.scale, "runs": {k: c.identity() for k, c in self.runs}}
        blob = json.dumps(ident, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return RESULTS_DIR / f"{self.name}-{self.hash}.json"

    def configs(self) -> dict[str, RunConfig]:
        return dict(self.runs)


# --------------------------------------------------------------------------- scales
def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def smoke(cfg: RunConfig) -> RunConfig:
    """Shrink a configuration to seconds: few steps, tiny data, narrow layers; same structure."""
    sizes = (cfg.sizes[0],) + tuple(min(s, 16) for s in cfg.sizes[1:-1]) + (cfg.sizes[-1],)
    train_subset = max(256, cfg.batch_size)
    return replace(cfg, steps=min(cfg.steps, 12), record_every=6, train_subset=train_subset,
                   test_subset=128, probe_batch=64, sizes=sizes, width=min(cfg.width, 4),
                   depth=min(cfg.depth, 3), lr_decay_every=min(cfg.lr_decay_every, 6),
                   validation=min(cfg.validation, 512), calibration=min(cfg.calibration, train_subset))


#: The seeds (initialization and data order) of every run that a verdict, a table or a sentence compares, at
#: book and paper scale; smoke runs one seed. Labels of seeded runs end in ``-seedK``.
SEEDS = (0, 1, 2, 3, 4)

#: Ten seeds for the experiments behind the claims whose five-seed interval straddled its margin (claim 2: init
#: scale, :func:`mnist_init_sweep`; claim 5: internal covariate shift, :func:`why_landscape`; claim 7: fewer
#: steps, :func:`mnist_fig1`). Decided on the five-seed results before any of seeds 5 to 9 was run.
MORE_SEEDS = tuple(range(10))


def _with_seeds(runs: dict[str, RunConfig], scale: str, seeds=SEEDS) -> dict[str, RunConfig]:
    """Every run repeated over ``seeds`` (labels get a ``-seedK`` suffix), except at smoke scale."""
    if scale == "smoke":
        return runs
    return {f"{k}-seed{s}": replace(c, seed=s) for k, c in runs.items() for s in seeds}


def _scaled(name: str, scale: str, runs: dict[str, RunConfig], description: str,
            paper: Callable[[RunConfig], RunConfig] | None = None, seeds: tuple[int, ...] = SEEDS) -> Experiment:
    """The experiment ``name`` at ``scale``: ``runs`` shrunk (smoke), as they are (book) or through ``paper``,
    each repeated over ``seeds`` (default :data:`SEEDS`) at book and paper scale."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")
    if scale == "smoke":
        runs = {k: smoke(c) for k, c in runs.items()}
    elif scale == "paper":
        runs = {k: replace(paper(c) if paper else c, device=default_device()) for k, c in runs.items()}
    return Experiment(name, scale, tuple(_with_seeds(runs, scale, seeds).items()), description)


# --------------------------------------------------------------------------- the registry
REGISTRY: dict[str, Callable[[str], Experiment]] = {}


def register(fn: Callable[[str], Experiment]) -> Callable[[str], Experiment]:
    REGISTRY[fn.__name__] = fn
    return fn


#: Every MNIST run holds out the last 10,000 training images for its choices (best step, best rate, steps to
#: a target) and trains on the first 50,000; BN networks are also scored with population statistics
#: recomputed (Algorithm 2) over 10,000 training images at every record and the whole training split at the end.
MNIST_VALIDATION = 10_000
MNIST_TRAIN = 60_000 - MNIST_VALIDATION

#: The paper's MNIST setting (Sec. 4.1): 784-100-100-100-10 sigmoid MLP, batch 60, 50,000 steps, "a 28x28
#: binary image as input": pixels / 255 in [0, 1], not standardized, so that N(0, 0.1^2) weights give the
#: first layer inputs of standard deviation about 1 rather than about 3. The paper does not give its rate; 1.0 is
#: what :func:`mnist_lr_choice`'s rule picks on validation for the network without BN (five seeds).
MNIST_FIG1 = RunConfig(dataset="mnist", model="mlp", sizes=(784, 100, 100, 100, 10), init="gaussian",
                       init_sigma=0.1, optimizer="sgd", lr=1.0, batch_size=60, steps=50_000, record_every=500,
                       probe_batch=1000, probe_units=(0, 1, 2), inputs="unit", validation=MNIST_VALIDATION,
                       calibration=10_000)


#: Figure 1 also at a higher learning rate: the largest rate of :data:`MNIST_LR_GRID`.
MNIST_FIG1_HIGH_LR = 2.0


@register
def mnist_fig1(scale: str = "book") -> Experiment:
    """The paper's Figure 1: the MNIST MLP with and without BN, plain SGD, same learning rate; and both again at
    the grid's highest rate (2x), where the drift of the sigmoid inputs is larger."""
    high = replace(MNIST_FIG1, lr=MNIST_FIG1_HIGH_LR)
    runs = {"none": MNIST_FIG1, "bn": replace(MNIST_FIG1, norm="torch"),
            f"none-lr{high.lr:g}": high, f"bn-lr{high.lr:g}": replace(high, norm="torch")}
    return _scaled("mnist_fig1", scale, runs, mnist_fig1.__doc__, seeds=MORE_SEEDS)


MNIST_INIT_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@register
def mnist_init_sweep(scale: str = "book") -> Experiment:
    """Final accuracy vs the Gaussian init scale sigma, with and without BN (same SGD as Figure 1)."""
    base = replace(MNIST_FIG1, steps=10_000, record_every=1000)
    runs = {f"{norm or 'none'}-sigma{sigma:g}": replace(base, norm=norm, init_sigma=sigma)
            for norm in (None, "torch") for sigma in MNIST_INIT_SIGMAS}
    return _scaled("mnist_init_sweep", scale, runs, mnist_init_sweep.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500), seeds=MORE_SEEDS)


MNIST_LR_GRID = (0.1, 0.5, 1.0, 2.0)


@register
def mnist_lr_choice(scale: str = "book") -> Experiment:
    """How Figure 1's learning rate was chosen: a short grid on the network without BN."""
    runs = {f"lr{lr:g}": replace(MNIST_FIG1, lr=lr, steps=5_000, record_every=500) for lr in MNIST_LR_GRID}
    return _scaled("mnist_lr_choice", scale, runs, mnist_lr_choice.__doc__)


@register
def mnist_dense128(scale: str = "book") -> Experiment:
    """The seed article's Keras demo rebuilt: Dense-128 ReLU (+ BN after it), Adam, 10 epochs of 48,000."""
    base = RunConfig(dataset="mnist", model="mlp", sizes=(784, 128, 10), activation="relu", init="xavier",
                     optimizer="adam", lr=1e-3, batch_size=32, steps=15_000, record_every=1500,
                     train_subset=48_000, norm_position="post", inputs="unit", validation=MNIST_VALIDATION,
                     calibration=10_000)
    runs = {"none": base, "bn": replace(base, norm="torch")}
    return _scaled("mnist_dense128", scale, runs, mnist_dense128.__doc__)


# --------------------------------------------------------------------------- CIFAR-10
#: The book's CIFAR-10 setting: a narrow VGG-style sigmoid CNN (3x3 convolutions, BN per feature map before
#: each sigmoid), Glorot init, SGD with momentum 0.9, batch 64, 1,600 steps: ten epochs of the first 10,000 of
#: the first 45,000 training images (the last 5,000 are the validation split); records every 200 steps on the
#: first 2,000 test images and the whole validation split, summary on all 10,000 test images; BN scored also with
#: population statistics recomputed over 2,000 training images at every record. A subset, so that ten epochs of
#: every CIFAR run of the book fit in about four hours of a 2-core CPU; the paper scale trains ten times longer on
#: all 45,000 images.
CIFAR_BASE = RunConfig(dataset="cifar10", model="cnn", depth=3, width=8, init="xavier", optimizer="sgd", lr=0.1,
                       momentum=0.9, batch_size=64, steps=1600, record_every=200, train_subset=10_000,
                       test_subset=2000, probe_batch=500, probe_units=(0, 1, 2), validation=5000, calibration=2000)
#: A log grid from 1/10x to 100x the baseline's rate, dense between 3x and 100x.
CIFAR_LR_MULTIPLIERS = (0.1, 0.3, 1, 3, 5, 10, 20, 30, 50, 100)


def _cifar_paper(cfg: RunConfig) -> RunConfig:
    return replace(cfg, steps=cfg.steps * 10, record_every=cfg.record_every * 5, test_subset=0, train_subset=0,
                   lr_decay_every=cfg.lr_decay_every * 10)


#: The depth experiment: the sweep's setting (ten epochs), recorded every 400 steps; conv layers 2, 4, 6 and 10.
CIFAR_DEPTH_BASE = replace(CIFAR_BASE, record_every=400)
CIFAR_DEPTHS = (2, 4, 6, 10)
#: The network without BN at a small grid of rates at every depth (multiples of the baseline's rate), so that
#: each depth is compared against its own best rate on validation.
CIFAR_DEPTH_RATES = (1, 5, 20)
#: The referee's controls, on the same five seeds: without BN with an init gain of 4 (suited to the sigmoid's
#: slope of 1/4), a ReLU network without BN (He init) at every depth, and the deepest BN network at 5x (the
#: paper's BN-x5-Sigmoid beside the ReLU baseline).


def depth_configs(base: RunConfig = CIFAR_DEPTH_BASE, depths=CIFAR_DEPTHS) -> tuple[dict, dict]:
    """``(main, controls)``: BN at the baseline's rate and no BN at each rate of :data:`CIFAR_DEPTH_RATES`, at
    every depth; and the controls (``none-sigmoidinit-depth{d}``, ``relu-depth{d}``, ``bn-x5-depth{dmax}``)."""
    main, controls = {}, {}
    for d in depths:
        main[f"bn-depth{d}"] = replace(base, depth=d, norm="torch")
        main |= {f"none-x{k:g}-depth{d}": replace(base, depth=d, lr=base.lr * k) for k in CIFAR_DEPTH_RATES}
        controls[f"none-sigmoidinit-depth{d}"] = replace(base, depth=d, init="xavier_sigmoid")
        controls[f"relu-depth{d}"] = replace(base, depth=d, activation="relu", init="kaiming")
    controls[f"bn-x5-depth{max(depths)}"] = replace(base, depth=max(depths), norm="torch", lr=base.lr * 5)
    return main, controls


@register
def cifar_sigmoid_depth(scale: str = "book") -> Experiment:
    """Sigmoid CNNs of 2 to 10 conv layers: BN at the baseline's rate, no BN at three rates, and the controls (no BN
    with an init gain of 4, ReLU without BN, BN-x5 at the deepest)."""
    main, controls = depth_configs()
    return _scaled("cifar_sigmoid_depth", scale, main | controls, cifar_sigmoid_depth.__doc__,
                   paper=_cifar_paper)


@register
def cifar_lr_sweep(scale: str = "book") -> Experiment:
    """Learning rates from 1/10x to 100x the baseline's, with and without BN, same seeds (depth 3)."""
    runs = {f"{'bn' if norm else 'none'}-x{k:.3g}": replace(CIFAR_BASE, norm=norm, lr=CIFAR_BASE.lr * k)
            for norm in (None, "torch") for k in CIFAR_LR_MULTIPLIERS}
    return _scaled("cifar_lr_sweep", scale, runs, cifar_lr_sweep.__doc__, paper=_cifar_paper)


#: The starting point of the paper's acceleration recipe (Sec. 4.2.1): the baseline's regularization (dropout
#: before the classifier, L2 weight decay) and a slow step decay (the rate halves once, at step 960 of 1,600).
CIFAR_RECIPE_BASE = replace(CIFAR_BASE, dropout=0.3, weight_decay=5e-4, lr_decay=0.5, lr_decay_every=960)
#: The recipe's four changes (Sec. 4.2.1): a higher learning rate (the sweep's best on validation for both
#: networks), no dropout, L2 weight decay reduced 5 times, the decay 6 times faster.
RECIPE_CHANGES = {
    "lr": {"lr": CIFAR_BASE.lr * 5},
    "nodrop": {"dropout": 0.0},
    "l2": {"weight_decay": CIFAR_RECIPE_BASE.weight_decay / 5},
    "decay": {"lr_decay_every": CIFAR_RECIPE_BASE.lr_decay_every // 6},
}


def recipe_configs(base: RunConfig = CIFAR_RECIPE_BASE) -> dict[str, RunConfig]:
    """The recipe as an ablation on ``base``: no BN and BN as they are (``none-baseline``, ``bn-baseline``),
    each change alone on top of BN (``bn+lr``, ...), all four (``bn+all``) and all but one (``bn+all-lr``, ...)."""
    bn = replace(base, norm="torch")
    every = {k: v for change in RECIPE_CHANGES.values() for k, v in change.items()}
    runs = {"none-baseline": base, "bn-baseline": bn}
    runs |= {f"bn+{name}": replace(bn, **change) for name, change in RECIPE_CHANGES.items()}
    runs["bn+all"] = replace(bn, **every)
    for name, change in RECIPE_CHANGES.items():
        runs[f"bn+all-{name}"] = replace(bn, **{k: v for k, v in every.items() if k not in change},
                                         **{k: getattr(bn, k) for k in change})
    return runs


@register
def cifar_recipe(scale: str = "book") -> Experiment:
    """The paper's recipe for accelerating BN networks: each change alone on top of BN, all four, and each left
    out of the four."""
    return _scaled("cifar_recipe", scale, recipe_configs(), cifar_recipe.__doc__, paper=_cifar_paper)


# --------------------------------------------------------------------------- train vs test
#: MNIST MLP with BN for the train/test chapter: Figure 1's network, 10,000 steps.
TT_BASE = replace(MNIST_FIG1, norm="torch", steps=10_000, record_every=500)


@register
def tt_population(scale: str = "book") -> Experiment:
    """Population statistics three ways, batch-statistics evaluation by test-batch size, folding."""
    # the first 49,980 training images: 833 whole batches of 60, which Algorithm 2's batches partition
    runs = {"bn": replace(TT_BASE, train_subset=49_980, analyses=("population", "test_batches", "fold"))}
    return _scaled("tt_population", scale, runs, tt_population.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500))


TT_BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128)
TT_NORMS = (None, "torch", "renorm", "layer", "group")
TT_EXAMPLES = MNIST_TRAIN  # one epoch of MNIST's training split at every batch size


@register
def tt_batch_size(scale: str = "book") -> Experiment:
    """Training batch size 2..128 (one epoch each, Figure 1's learning rate times B / 60: linear scaling), five
    norms."""
    runs = {}
    for norm in TT_NORMS:
        for b in TT_BATCH_SIZES:
            steps = TT_EXAMPLES // b
            runs[f"{norm or 'none'}-b{b}"] = replace(MNIST_FIG1, norm=norm, batch_size=b, lr=MNIST_FIG1.lr * b / 60,
                                                     steps=steps, record_every=steps)
    return _scaled("tt_batch_size", scale, runs, tt_batch_size.__doc__,
                   paper=lambda c: replace(c, steps=c.steps * 5, record_every=c.steps * 5))


@register
def tt_noniid(scale: str = "book") -> Experiment:
    """Training batches drawn from 2 classes each vs i.i.d. batches: no BN, BN, Batch Renorm."""
    runs = {f"{norm or 'none'}-{'iid' if s == 'iid' else '2class'}": replace(TT_BASE, norm=norm, batch_sampler=s)
            for norm in (None, "torch", "renorm") for s in ("iid", "classes:2")}
    return _scaled("tt_noniid", scale, runs, tt_noniid.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500))


@register
def tt_regularizer(scale: str = "book") -> Experiment:
    """BN as a regularizer: train/test gap with and without BN and dropout, on 5,000 training images."""
    base = replace(MNIST_FIG1, train_subset=5000, calibration=5000, steps=20_000, record_every=1000)
    runs = {f"{norm or 'none'}-dropout{p:g}": replace(base, norm=norm, dropout=p)
            for norm in (None, "torch") for p in (0.0, 0.3)}
    return _scaled("tt_regularizer", scale, runs, tt_regularizer.__doc__,
                   paper=lambda c: replace(c, steps=100_000, record_every=5000))


# --------------------------------------------------------------------------- BN in practice
@register
def pr_placement(scale: str = "book") -> Experiment:
    """BN before the nonlinearity (the paper's placement) or after it (as many code examples put it), with sigmoid
    and with ReLU, beside the same networks without BN: Figure 1's MLP and SGD, 10,000 steps."""
    base = replace(MNIST_FIG1, steps=10_000, record_every=1000)
    runs = {}
    for act in ("sigmoid", "relu"):
        runs[f"{act}-none"] = replace(base, activation=act)
        runs |= {f"{act}-{pos}": replace(base, activation=act, norm="torch", norm_position=pos)
                 for pos in ("pre", "post")}
    return _scaled("pr_placement", scale, runs, pr_placement.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500))


# --------------------------------------------------------------------------- geometry
#: The trainability map (Yang et al. 2019): fully connected ReLU networks of 128 units per hidden layer, He
#: initialization, plain SGD, batch 64, 500 steps (6.4 epochs) of the first 5,000 MNIST training images; BN networks
#: scored with population statistics over 2,000 of them. The depths and width match the chapter's gradients at
#: initialization (50 layers of 128).
GEO_TRAIN_BASE = replace(MNIST_FIG1, activation="relu", init="kaiming", batch_size=64, steps=500, record_every=250,
                         train_subset=5000, test_subset=1000, probe_batch=256, calibration=2000)
GEO_TRAIN_DEPTHS = (5, 10, 25, 50)
GEO_TRAIN_WIDTH = 128
#: Learning rates of the map, a log grid around the MLP's usual rates.
GEO_TRAIN_RATES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@register
def geo_trainability(scale: str = "book") -> Experiment:
    """Which learning rates train a deep ReLU MLP with and without BN, depth by depth: the depth x learning-rate
    trainability map on an MNIST subset."""
    runs = {f"{'bn' if norm else 'none'}-depth{d}-lr{lr:g}":
            replace(GEO_TRAIN_BASE, norm=norm, lr=lr, sizes=(784,) + (GEO_TRAIN_WIDTH,) * d + (10,))
            for norm in (None, "torch") for d in GEO_TRAIN_DEPTHS for lr in GEO_TRAIN_RATES}
    return _scaled("geo_trainability", scale, runs, geo_trainability.__doc__,
                   paper=lambda c: replace(c, steps=5000, record_every=500, train_subset=0))


# --------------------------------------------------------------------------- why does BN work
@register
def why_noisy(scale: str = "book") -> Experiment:
    """No BN vs BN vs "noisy" BN (random, time-varying shift and scale injected after each BN)."""
    base = replace(MNIST_FIG1, steps=10_000, record_every=500)
    runs = {"none": base, "bn": replace(base, norm="torch"), "noisy": replace(base, norm="noisy")}
    return _scaled("why_noisy", scale, runs, why_noisy.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500))


@register
def why_landscape(scale: str = "book") -> Experiment:
    """Internal covariate shift (Santurkar's measure) and the loss landscape along the gradient: no BN, BN, and
    Santurkar et al.'s l_1 and l_inf normalizations."""
    base = replace(MNIST_FIG1, steps=10_000, record_every=500, recorders=("ics", "landscape"))
    runs = {"none": base, "bn": replace(base, norm="torch"), "l1": replace(base, norm="l1"),
            "linf": replace(base, norm="linf")}
    return _scaled("why_landscape", scale, runs, why_landscape.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500), seeds=MORE_SEEDS)


def get(name: str, scale: str = "book") -> Experiment:
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name](scale)


# --------------------------------------------------------------------------- running and caching
def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(wall: float, device: str, jobs: int = 1) -> dict:
    return {
        "bnlib_revision": _git_revision(),
        "engine": engine.fingerprint(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": 1,
        "jobs": jobs,
        "wall_seconds": round(wall, 2),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
    }


def _result_files() -> list[tuple[Path, dict]]:
    """Every readable experiment result in ``RESULTS_DIR``; a damaged or foreign file is named once and skipped."""
    out = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        try:
            out.append((path, results.load(path)))
        except ValueError as err:
            print(f"warning: skipping {path.name}: {err}", file=sys.stderr)
    return out


def _same_config(stored: dict | None, cfg: dict) -> bool:
    """The stored configuration is ``cfg`` exactly, wherever it ran (the device is not part of what a run is)."""
    return isinstance(stored, dict) and {k: v for k, v in stored.items() if k != "device"} == \
        {k: v for k, v in cfg.items() if k != "device"}


def find_cached_run(cfg: RunConfig, exclude: Path | None = None,
                    stored: list[tuple[Path, dict]] | None = None) -> dict | None:
    """A run with exactly this configuration, computed by the current engine, in another result file
    (``stored``: the files as :func:`_result_files` read them, so that many look-ups read them once)."""
    want, fp = cfg.to_dict(), engine.fingerprint()
    for path, res in _result_files() if stored is None else stored:
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        for run in res["runs"].values():
            if _same_config(run.get("config"), want) and run.get("provenance", {}).get("engine") == fp:
                return dict(run, reused_from=path.name)
    return None


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create the results folder {folder} ({err.strerror}).") from None
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"the results folder {folder} is not writable; nothing was trained.")


def _plan(exp: Experiment, reuse: bool, device: str | None, keep: bool,
          stored: list[tuple[Path, dict]] | None = None) -> tuple[dict, dict]:
    """``(configs, done)``: the runs of ``exp`` (on ``device``) and those already computed that can be taken
    (from its partials, or from ``stored``, the result files read once by the caller)."""
    configs = {label: (replace(c, device=device) if device else c) for label, c in exp.runs}
    done: dict[str, dict] = {}
    if keep:
        _check_writable(RESULTS_DIR)
        results.remove_orphans(RESULTS_DIR)
        if reuse:
            done = engine.load_partials(exp.path, configs)
            if stored is None and len(done) < len(configs):
                stored = _result_files()
            for label, cfg in configs.items():
                if label not in done and (hit := find_cached_run(cfg, exp.path, stored)) is not None:
                    done[label] = hit
        else:
            engine.clear_partials(exp.path)
    return configs, done


def _assemble(exp: Experiment, configs: dict, done: dict, wall: float, jobs: int) -> dict:
    device = next(iter(configs.values())).device if configs else "cpu"
    return {"name": exp.name, "scale": exp.scale, "hash": exp.hash, "description": exp.description,
            "runs": {label: done[label] for label in configs}, "provenance": provenance(wall, device, jobs)}


def compute(exp: Experiment, progress: bool = True, keep_models: bool = False, reuse: bool = True,
            jobs: int = 1, scheduler: str | None = None, device: str | None = None) -> dict:
    """Train every run of ``exp`` and return the result (models kept on request, in this process).

    With ``reuse``, a run already stored with the same configuration by the current engine (in
    another result file, or finished by an interrupted computation of this one) is taken instead of
    trained. Runs train with one thread each, ``jobs`` at a time (or on the Dask ``scheduler``); at
    book and paper scale each is saved the moment it finishes, so a killed computation resumes.
    """
    from tqdm.auto import tqdm

    keep = exp.scale != "smoke" and not keep_models
    t0 = time.perf_counter()
    configs, done = _plan(exp, reuse, device, keep)
    todo = {label: cfg for label, cfg in configs.items() if label not in done}

    def save_partial(label: str, run: dict) -> None:
        if keep:
            engine.save_partial(exp.path, label, run)

    models = {}
    with tqdm(total=engine.steps_of(configs.values()), desc=f"{exp.name} ({exp.scale})", unit="step",
              disable=not progress, mininterval=2.0) as bar:
        bar.update(engine.steps_of(configs[k] for k in done))
        if keep_models:
            for label, cfg in todo.items():
                run = engine.run_one(cfg, progress=bar.update, keep_model=True)
                models[label] = run.pop("model")
                done[label] = run
        else:
            done.update(engine.run_many(todo, jobs=jobs, on_done=save_partial, progress=bar.update,
                                        scheduler=scheduler))
    out = _assemble(exp, configs, done, time.perf_counter() - t0, jobs)
    if keep_models:
        out["models"] = models
    return out


def run(exp: Experiment | str, scale: str = "book", force: bool = False, progress: bool = True, jobs: int = 1,
        scheduler: str | None = None, device: str | None = None) -> dict:
    """Load ``exp``'s stored result, or compute it and write it to ``results/`` atomically.

    ``force`` retrains every run from scratch: nothing is taken from the file being replaced, from
    other result files or from an interrupted computation. Smoke-scale results are never written.
    """
    if isinstance(exp, str):
        exp = get(exp, scale)
    return run_all([exp], force=force, progress=progress, jobs=jobs, scheduler=scheduler, device=device)[exp.name]


def run_all(exps: list[Experiment], force: bool = False, progress: bool = True, jobs: int = 1,
            scheduler: str | None = None, device: str | None = None) -> dict[str, dict]:
    """:func:`run` for several experiments at once: their runs share one pool, so no core waits for an
    experiment's last run, and a configuration that two of them contain trains once. Each experiment's
    file is written the moment its last run finishes. Returns ``name -> result``."""
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    plans, stored = [], None
    for exp in exps:
        if not force and exp.path.exists():
            out[exp.name] = results.load(exp.path)
            continue
        if not force and stored is None and exp.scale != "smoke":
            stored = _result_files()  # every other result file, read once for all the look-ups below
        configs, done = _plan(exp, not force, device, exp.scale != "smoke", stored)
        plans.append((exp, configs, done))
    tasks: dict[str, RunConfig] = {}
    owners: dict[str, list[tuple[int, str]]] = {}
    ids: dict[str, str] = {}
    for k, (_, configs, done) in enumerate(plans):
        for label, cfg in configs.items():
            if label in done:
                continue
            key = json.dumps(cfg.to_dict(), sort_keys=True)
            tid = ids.setdefault(key, f"run{len(ids)}")
            tasks[tid] = cfg
            owners.setdefault(tid, []).append((k, label))

    def finish(k: int) -> None:
        exp, configs, done = plans[k]
        if len(done) == len(configs) and exp.name not in out:
            res = _assemble(exp, configs, done, time.perf_counter() - t0, jobs)
            if exp.scale != "smoke":
                results.save(exp.path, res)
                engine.clear_partials(exp.path)
            out[exp.name] = res

    def on_done(tid: str, run: dict) -> None:
        for k, label in owners[tid]:
            exp, _, done = plans[k]
            done[label] = run
            if exp.scale != "smoke":
                engine.save_partial(exp.path, label, run)
            finish(k)

    for k in range(len(plans)):
        finish(k)  # experiments with nothing left to train
    if not tasks:
        return out
    from tqdm.auto import tqdm  # only when something trains (importing it in a notebook warns on stderr)
    total = engine.steps_of(tasks.values())
    desc = plans[0][0].name if len(plans) == 1 else f"{len(plans)} experiments"
    with tqdm(total=total, desc=f"{desc}, {len(tasks)} runs", unit="step", disable=not progress,
              mininterval=2.0) as bar:
        engine.run_many(tasks, jobs=jobs, on_done=on_done, progress=bar.update, scheduler=scheduler)
    return out


def stale() -> list[tuple[Path, str]]:
    """Files in ``results/`` that are not current, each with the reason: no registered experiment has its
    configuration, a run's stored configuration differs, or a run was computed by another engine; and stored
    checks computed by other code (:func:`bnlib.checks.stale_checks`)."""
    current = {e.path.name: e for e in (get(n, s) for n in REGISTRY for s in ("book", "paper"))}
    fp, out = engine.fingerprint(), []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        exp = current.get(path.name)
        if exp is None:
            out.append((path, "config differs: no registered experiment has this configuration"))
            continue
        try:
            res = results.load(path)
        except ValueError as err:
            out.append((path, f"unreadable: {err}"))
            continue
        configs = {label: c.to_dict() for label, c in exp.runs}
        wrong = [label for label, run in res["runs"].items() if not _same_config(run.get("config"), configs.get(label))]
        if wrong or set(res["runs"]) != set(configs):
            out.append((path, f"config differs: runs {', '.join(sorted(wrong or set(configs) ^ set(res['runs'])))}"))
            continue
        old = sorted({run.get("provenance", {}).get("engine", "none") for run in res["runs"].values()} - {fp})
        if old:
            out.append((path, f"engine fingerprint differs: computed by {', '.join(old)}, the engine is now {fp}"))
    return out + checks.stale_checks(RESULTS_DIR)


# --------------------------------------------------------------------------- CLI
class _Parser(argparse.ArgumentParser):
    """argparse with one-sentence errors: what was wrong and where to look, no usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`).\n")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m bnlib.experiments", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the registered experiments and their cache status")
    r = sub.add_parser("run", help="run (or load) an experiment")
    r.add_argument("name", nargs="?")
    r.add_argument("--all", action="store_true", help="every registered experiment")
    r.add_argument("--scale", default="book", choices=SCALES)
    r.add_argument("--force", action="store_true", help="retrain every run from scratch, reusing nothing")
    r.add_argument("--jobs", type=int, default=engine.default_jobs(), help="runs trained side by side (one per core)")
    r.add_argument("--scheduler", help="submit the runs to a running Dask cluster (tcp://host:port)")
    r.add_argument("--device", help="train on this device (cpu, cuda); results are the same experiment")
    sub.add_parser("stale", help="list results whose configuration or engine fingerprint differs")
    c = sub.add_parser("check", help="compute (or load) a stored check of a chapter")
    c.add_argument("name", nargs="?")
    c.add_argument("--all", action="store_true", help="every stored check")
    c.add_argument("--force", action="store_true", help="compute again even when the stored one is current")
    a = p.parse_args(argv)
    if a.cmd == "check":
        if a.all == bool(a.name) or (a.name and a.name not in checks.CHECKS):
            p.error("give either --all or one of the stored checks " + ", ".join(sorted(checks.CHECKS)))
        return checks.command(a.name, a.force, RESULTS_DIR)
    if a.cmd == "list":
        for name in sorted(REGISTRY):
            e = get(name, "book")
            status = "cached" if e.path.exists() else "not computed"
            steps = sum(c.steps for _, c in e.runs)
            print(f"{name:28s} {len(e.runs):3d} runs {steps:9d} steps  book: {status}  ({e.path.name})")
        return 0
    if a.cmd == "stale":
        found = stale()
        for f, why in found:
            print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: {why}")
        return 1 if found else 0
    if a.all == bool(a.name):
        p.error("give either an experiment NAME or --all")
    if a.jobs < 1:
        p.error(f"--jobs must be at least 1, got {a.jobs}")
    names = sorted(REGISTRY) if a.all else [a.name]
    try:
        exps = [get(name, a.scale) for name in names]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        done = run_all(exps, force=a.force, jobs=a.jobs, scheduler=a.scheduler, device=a.device)
    except (PermissionError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for exp in exps:
        where = exp.path if exp.scale != "smoke" else "(smoke results are not written)"
        print(f"{exp.name}: {len(done[exp.name]['runs'])} runs -> {where}")
    print(f"{len(exps)} experiment(s) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
