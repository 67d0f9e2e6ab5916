"""Running an experiment's training runs: one intra-op thread per run, side by side in a local process
pool (or on an existing Dask cluster), each run saved the moment it finishes, stamped with the engine
fingerprint that decides whether a stored result is still current.

A run's numbers depend only on its configuration, its seed and the source of the modules that
compute it (:data:`ENGINE_MODULES`); one thread per run keeps them independent of how many runs
train beside it.
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import hashlib
import os
import platform
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from bnlib import results
from bnlib import train as T
from bnlib.threads import one_thread

PKG = Path(__file__).resolve().parent
#: The modules whose source determines a run's numbers (their code, not their comments or docstrings).
ENGINE_MODULES = ("_checks", "functional", "nn", "norms", "data", "models", "evaluate", "analysis", "train")
#: Significant digits of the stored curves and summaries.
STORED_DIGITS = 7


def _code_only(source: str) -> str:
    """The module's syntax tree without docstrings: what executes, not what explains."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


@functools.cache
def fingerprint() -> str:
    """A SHA-256 (12 hex digits) of the code of :data:`ENGINE_MODULES` as this process loaded it, the schema's
    recording constants and the stored precision: it changes when a run would compute or store different
    numbers, and not when a comment, a docstring or a reader of the results changes."""
    h = hashlib.sha256()
    for name in ENGINE_MODULES:
        h.update(name.encode() + b"\0" + _code_only((PKG / f"{name}.py").read_text()).encode() + b"\0")
    consts = (results.SATURATION_THRESHOLD, results.HIST_EDGES.tolist(), results.PERCENTILES, results.UNIT_QUANTILES,
              STORED_DIGITS)
    h.update(repr(consts).encode())
    return h.hexdigest()[:12]


def round_floats(obj, digits: int = STORED_DIGITS):
    """Floats rounded to ``digits`` significant digits for storage (curves and summaries, never configs).

    JSON has no infinity: a value that is not finite, such as the norm of a gradient too large for float32 in a
    record the loss survived, is stored as ``None`` (null), the value of a quantity that was not measured."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj


def run_one(cfg: T.RunConfig, progress: Callable[[int], None] | None = None, keep_model: bool = False) -> dict:
    """Train one run with one intra-op thread; the stored run: config exactly as trained, rounded curves and
    summary, and the run's own provenance (engine fingerprint, threads, device, versions)."""
    with one_thread():
        res = T.train(cfg, progress=progress)
    model = res.pop("model")
    config = res.pop("config")
    out = {"config": config, **round_floats(res), "provenance": run_provenance(cfg.device)}
    if keep_model:
        out["model"] = model
    return out


@functools.cache
def cpu_model() -> str:
    """The processor's name as the operating system reports it (``platform.processor()`` where /proc/cpuinfo is
    absent): the BLAS library picks its kernels by processor, so the last bits of a run's numbers may differ
    between machines, and the provenance says on which one a run was computed."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_provenance(device: str) -> dict:
    return {"engine": fingerprint(), "threads": 1, "device": device, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def _worker(cfg: T.RunConfig) -> dict:
    return run_one(cfg)


# --------------------------------------------------------------------------- partial results (resume)
def partial_dir(final: Path) -> Path:
    """Where the runs of ``final``'s experiment are kept one by one until all are done."""
    return final.parent / ".partial" / final.stem


def load_partials(final: Path, configs: dict[str, T.RunConfig]) -> dict[str, dict]:
    """Runs already finished by an interrupted computation of the same experiment, still current."""
    d, fp, done = partial_dir(final), fingerprint(), {}
    if not d.is_dir():
        return done
    for label, cfg in configs.items():
        p = d / f"{label}.json"
        if not p.exists():
            continue
        try:
            run = results.load_run(p)
        except ValueError:
            continue  # a damaged partial is simply trained again
        if run.get("config") == cfg.to_dict() and run.get("provenance", {}).get("engine") == fp:
            done[label] = run
    return done


def save_partial(final: Path, label: str, run: dict) -> None:
    """Keep one finished run of ``final``'s experiment until the whole file is written."""
    results.save(partial_dir(final) / f"{label}.json", run)


def clear_partials(final: Path) -> None:
    shutil.rmtree(partial_dir(final), ignore_errors=True)


# --------------------------------------------------------------------------- running many
def run_many(tasks: dict[str, T.RunConfig], jobs: int = 1, on_done: Callable[[str, dict], None] | None = None,
             progress: Callable[[int], None] | None = None, scheduler: str | None = None) -> dict[str, dict]:
    """Train every ``label -> config`` task and return ``label -> run``.

    ``jobs=1`` trains them one after another in this process; ``jobs > 1`` in a pool of that many
    worker processes (spawned: each imports bnlib afresh); ``scheduler`` (``tcp://host:port``)
    submits them to a running Dask cluster instead. ``on_done(label, run)`` is called the moment a
    run finishes (the caller saves it), ``progress(steps)`` with each finished run's steps.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (worker processes), got {jobs!r}.")
    out: dict[str, dict] = {}

    def finished(label: str, run: dict) -> None:
        out[label] = run
        if on_done is not None:
            on_done(label, run)
        if progress is not None:
            progress(tasks[label].steps)

    if scheduler is not None:
        return _run_on_dask(tasks, scheduler, finished, out)
    if jobs == 1 or len(tasks) <= 1:
        for label, cfg in tasks.items():
            finished(label, run_one(cfg))
        return out
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(_worker, cfg): label for label, cfg in tasks.items()}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(pending.pop(fut), fut.result())
    return out


def _run_on_dask(tasks: dict[str, T.RunConfig], scheduler: str, finished, out: dict) -> dict[str, dict]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RuntimeError("--scheduler needs Dask's distributed package: pip install -e .[cluster]") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise RuntimeError(f"could not reach the Dask scheduler at {scheduler} ({type(err).__name__}); is it "
                           "running, and is the address tcp://host:port?") from None
    with client:
        futures = {client.submit(_worker, cfg, key=f"bnlib-{label}-{os.getpid()}", pure=False): label
                   for label, cfg in tasks.items()}
        for fut in as_completed(futures):
            finished(futures[fut], fut.result())
    return out


def default_jobs() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def steps_of(configs: Iterable[T.RunConfig]) -> int:
    return sum(c.steps for c in configs)
