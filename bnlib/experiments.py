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
    python -m bnlib.experiments run NAME [--scale smoke|book|paper] [--force]
    python -m bnlib.experiments run --all [--scale book] [--force]
    python -m bnlib.experiments stale
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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bnlib import train as T
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
    return replace(cfg, steps=min(cfg.steps, 12), record_every=6, train_subset=max(256, cfg.batch_size),
                   test_subset=128, probe_batch=64, sizes=sizes, width=min(cfg.width, 4),
                   depth=min(cfg.depth, 3), lr_decay_every=min(cfg.lr_decay_every, 6))


def _scaled(name: str, scale: str, runs: dict[str, RunConfig], description: str,
            paper: Callable[[RunConfig], RunConfig] | None = None) -> Experiment:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")
    if scale == "smoke":
        runs = {k: smoke(c) for k, c in runs.items()}
    elif scale == "paper":
        runs = {k: replace(paper(c) if paper else c, device=default_device()) for k, c in runs.items()}
    return Experiment(name, scale, tuple(runs.items()), description)


# --------------------------------------------------------------------------- the registry
REGISTRY: dict[str, Callable[[str], Experiment]] = {}


def register(fn: Callable[[str], Experiment]) -> Callable[[str], Experiment]:
    REGISTRY[fn.__name__] = fn
    return fn


#: The paper's MNIST setting (Sec. 4.1): 784-100-100-100-10 sigmoid MLP, batch 60, 50,000 steps.
MNIST_FIG1 = RunConfig(dataset="mnist", model="mlp", sizes=(784, 100, 100, 100, 10), init="gaussian",
                       init_sigma=0.1, optimizer="sgd", lr=0.5, batch_size=60, steps=50_000, record_every=500,
                       probe_batch=1000, probe_units=(0, 1, 2))


@register
def mnist_fig1(scale: str = "book") -> Experiment:
    """The paper's Figure 1: the MNIST MLP with and without BN, plain SGD, same learning rate."""
    runs = {"none": MNIST_FIG1, "bn": replace(MNIST_FIG1, norm="torch")}
    return _scaled("mnist_fig1", scale, runs, mnist_fig1.__doc__)


MNIST_INIT_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@register
def mnist_init_sweep(scale: str = "book") -> Experiment:
    """Final accuracy vs the Gaussian init scale sigma, with and without BN (same SGD as Figure 1)."""
    base = replace(MNIST_FIG1, steps=10_000, record_every=1000)
    runs = {f"{norm or 'none'}-sigma{sigma:g}": replace(base, norm=norm, init_sigma=sigma)
            for norm in (None, "torch") for sigma in MNIST_INIT_SIGMAS}
    return _scaled("mnist_init_sweep", scale, runs, mnist_init_sweep.__doc__,
                   paper=lambda c: replace(c, steps=50_000, record_every=2500))


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
                     train_subset=48_000, norm_position="post")
    runs = {"none": base, "bn": replace(base, norm="torch")}
    return _scaled("mnist_dense128", scale, runs, mnist_dense128.__doc__)


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


def provenance(wall: float, device: str) -> dict:
    return {
        "bnlib_revision": _git_revision(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
        "wall_seconds": round(wall, 2),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
    }


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _round_floats(obj, digits: int = 7):
    """Round floats for storage: the results are compared at lower precision anyway."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def compute(exp: Experiment, progress: bool = True, keep_models: bool = False) -> dict:
    """Train every run of ``exp`` (no cache); returns the result dict (models kept on request)."""
    from tqdm.auto import tqdm

    total = sum(c.steps for _, c in exp.runs)
    t0 = time.perf_counter()
    out: dict = {"name": exp.name, "scale": exp.scale, "hash": exp.hash, "description": exp.description,
                 "runs": {}}
    models = {}
    with tqdm(total=total, desc=f"{exp.name} ({exp.scale})", unit="step", disable=not progress,
              mininterval=2.0) as bar:
        for label, cfg in exp.runs:
            bar.set_postfix_str(label)
            res = T.train(cfg, progress=bar.update)
            models[label] = res.pop("model")
            bar.update(cfg.steps - res["summary"]["steps_done"])
            out["runs"][label] = _round_floats(res)
    out["provenance"] = provenance(time.perf_counter() - t0, exp.runs[0][1].device if exp.runs else "cpu")
    if keep_models:
        out["models"] = models
    return out


def run(exp: Experiment | str, scale: str = "book", force: bool = False, progress: bool = True) -> dict:
    """Load ``exp``'s cached result, or compute it and write it to ``results/`` atomically.

    Smoke-scale results are never written to ``results/`` (they are for tests).
    """
    if isinstance(exp, str):
        exp = get(exp, scale)
    if not force and exp.path.exists():
        with open(exp.path) as fh:
            return json.load(fh)
    res = compute(exp, progress=progress)
    if exp.scale != "smoke":
        write_json_atomic(exp.path, res)
    return res


def stale() -> list[Path]:
    """Files in ``results/`` that match no registered experiment at the book or paper scale."""
    current = {get(n, s).path.name for n in REGISTRY for s in ("book", "paper")}
    return sorted(p for p in RESULTS_DIR.glob("*.json") if p.name not in current)


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bnlib.experiments", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the registered experiments and their cache status")
    r = sub.add_parser("run", help="run (or load) an experiment")
    r.add_argument("name", nargs="?")
    r.add_argument("--all", action="store_true", help="every registered experiment")
    r.add_argument("--scale", default="book", choices=SCALES)
    r.add_argument("--force", action="store_true", help="recompute even when a cached result exists")
    sub.add_parser("stale", help="list committed results whose configuration no longer matches")
    a = p.parse_args(argv)
    if a.cmd == "list":
        for name in sorted(REGISTRY):
            e = get(name, "book")
            status = "cached" if e.path.exists() else "not computed"
            steps = sum(c.steps for _, c in e.runs)
            print(f"{name:28s} {len(e.runs):3d} runs {steps:9d} steps  book: {status}  ({e.path.name})")
        return 0
    if a.cmd == "stale":
        files = stale()
        for f in files:
            print(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)
        return 1 if files else 0
    if a.all == bool(a.name):
        p.error("give either an experiment NAME or --all")
    names = sorted(REGISTRY) if a.all else [a.name]
    for name in names:
        try:
            exp = get(name, a.scale)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        res = run(exp, force=a.force)
        where = exp.path if exp.scale != "smoke" else "(smoke results are not written)"
        print(f"{name}: {len(res['runs'])} runs, {res['provenance']['wall_seconds']} s -> {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
