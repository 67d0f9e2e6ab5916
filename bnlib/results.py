"""The results JSON, defined once: what a run and an experiment result hold, typed accessors,
atomic load and save, seed groups and steps-to-target.

An experiment result (``results/<name>-<hash>.json``) is ``{"name", "scale", "hash",
"description", "runs": {label: run}, "provenance"}``. A run is ``{"config": RunConfig as a dict,
"curves": {key: [one value per record]}, "summary": {...}, "analysis": {...}}``; the curve keys
are :data:`CURVES`. Labels of repeated seeds end in ``-seedK``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: sigmoid'(x) = s(1 - s) < 0.01 exactly when |x| > 2 * arccosh(1 / (2 * sqrt(0.01))) = 2 arccosh 5 = 4.5849...;
#: the ``saturated`` curve counts the inputs beyond it.
SATURATION_THRESHOLD = 2.0 * math.acosh(1.0 / (2.0 * math.sqrt(0.01)))
#: Bin edges of the ``hist`` curve (inputs clipped to the outer edges first).
HIST_EDGES = np.linspace(-12.0, 12.0, 49)
#: The percentiles of the ``percentiles`` curve, in order.
PERCENTILES = (15.0, 50.0, 85.0)
#: The quantiles, across the units of the last hidden layer, of each unit's PERCENTILES (the ``units`` curve).
UNIT_QUANTILES = (10.0, 25.0, 50.0, 75.0, 90.0)

#: What each curve holds, one value per record (record 0 is step 0, before any update).
CURVES = {
    "step": "the training step of the record",
    "test_acc": "test accuracy in eval mode (running statistics)",
    "test_loss": "test cross-entropy in eval mode",
    "test_acc_batchstats": "test accuracy with batch statistics, in batches of the training batch size",
    "train_loss": "mean mini-batch loss since the previous record (None at step 0)",
    "grad_norm": "per weight layer, the l2 norm of the loss gradient on the current batch (None at step 0)",
    "percentiles": "per hidden layer and probed unit, the PERCENTILES of its pre-activation over the probe batch",
    "saturated": "per hidden layer, the fraction of pre-activations with |x| > SATURATION_THRESHOLD",
    "hist": "per hidden layer, counts of pre-activations in the bins HIST_EDGES",
    "units": "the last hidden layer over all its units: per PERCENTILE (rows), its UNIT_QUANTILES across units; "
             "with population statistics where the run recomputes them",
    "val_acc": "validation accuracy in eval mode (running statistics), when the run holds out a validation split",
    "val_loss": "validation cross-entropy in eval mode, when the run holds out a validation split",
    "val_acc_pop": "validation accuracy with population statistics recomputed on training images (Algorithm 2)",
    "test_acc_pop": "test accuracy with population statistics recomputed on training images (Algorithm 2)",
    "ics": "the 'ics' recorder (bnlib.analysis.record_ics), when the run asked for it",
    "landscape": "the 'landscape' recorder (bnlib.analysis.record_landscape), when the run asked for it",
}

_SEED_SUFFIX = re.compile(r"-seed\d+$")


# --------------------------------------------------------------------------- accessors
def curve(run: dict, key: str) -> list:
    """The curve ``key`` of one run (one value per record)."""
    if key not in CURVES:
        raise ValueError(f"unknown curve {key!r}; the curves are {sorted(CURVES)}.")
    recorded = curves(run)
    if key not in recorded:
        raise ValueError(f"this run has no {key!r} curve (recorded: {sorted(recorded)}).")
    return recorded[key]


def curves(run: dict) -> dict[str, list]:
    """Every curve of one run (``key -> one value per record``)."""
    c = run.get("curves") if isinstance(run, dict) else None
    if not isinstance(c, dict):
        raise TypeError("expected a run: a dict with a 'curves' dict (one entry of a result's 'runs').")
    return c


def steps(run: dict) -> list[int]:
    """The steps at which the run recorded its curves."""
    return curve(run, "step")


def config(run: dict) -> dict:
    """The run's configuration (a :class:`bnlib.train.RunConfig` as a dict)."""
    return run["config"]


def summary(run: dict, key: str):
    """``run["summary"][key]`` (None when missing)."""
    return run["summary"].get(key)


def _runs(res: dict) -> dict:
    runs = res.get("runs") if isinstance(res, dict) else None
    if not isinstance(runs, dict):
        raise TypeError("expected an experiment result: a dict with a 'runs' dict (as bnlib.experiments.run returns).")
    return runs


def run_of(res: dict, label: str) -> dict:
    """The run ``label`` of an experiment result; for a label repeated over seeds, its first seed's run (the one
    a single-seed figure shows). One clear error when it is not there."""
    runs = _runs(res)
    if label in runs:
        return runs[label]
    group = seed_groups(runs).get(label)
    if not group:
        raise ValueError(f"result {res.get('name', '?')!r} has no run {label!r}; its runs are {sorted(runs)}.")
    return group[0]


def seeds_of(res: dict, label: str) -> list[dict]:
    """Every seed's run of ``label`` (a label without its ``-seedK`` suffix), in seed order; a result that ran
    ``label`` once gives that one run."""
    runs = _runs(res)
    group = seed_groups(runs).get(label)
    if not group:
        raise ValueError(f"result {res.get('name', '?')!r} has no run {label!r}; its runs are "
                         f"{sorted(seed_groups(runs))}.")
    return sorted(group, key=lambda r: r["config"].get("seed", 0))


def first_seeds(res: dict) -> dict[str, dict]:
    """One run per label without its ``-seedK`` suffix: the first seed's, in first-seen order."""
    return {lab: g[0] for lab, g in seed_groups(_runs(res)).items()}


def by_seed(res: dict) -> dict[int, dict]:
    """The result split by seed: ``{seed: result}`` where each result holds one run per label without its
    ``-seedK`` suffix (the same keys as ``res`` otherwise), in seed order; so any function of a one-seed
    result applies to each seed. A result that ran once gives ``{its seed: res}``. One clear error when the
    labels were not all run over the same seeds (nothing could be paired)."""
    groups = seed_groups(_runs(res))
    seeds = {lab: [r["config"].get("seed", 0) for r in g] for lab, g in groups.items()}
    common = sorted(set(next(iter(seeds.values()))))
    if any(sorted(v) != common for v in seeds.values()):
        raise ValueError(f"result {res.get('name', '?')!r} ran its labels over different seeds ({seeds}); "
                         "expected the same seeds for every label.")
    out = {}
    for s in common:
        runs = {lab: next(r for r in g if r["config"].get("seed", 0) == s) for lab, g in groups.items()}
        out[s] = {k: v for k, v in res.items() if k != "runs"} | {"runs": runs}
    return out


_CURVE_OF = {"final_test_acc": "test_acc", "final_test_acc_batchstats": "test_acc_batchstats"}


def final_metric(run: dict, key: str) -> float | None:
    """``run["summary"][key]``, or None when the run diverged or the value is missing.

    The final test accuracies (eval mode and batch statistics) are also measured by the
    last record of the curves when that record is at the last step and the curves use the
    whole test set: the same evaluation of the same weights. That record stands in when
    the summary lacks the value.
    """
    s = run["summary"]
    if s.get("diverged_at") is not None:
        return None
    v = s.get(key)
    if v is not None or key not in _CURVE_OF:
        return v
    c, cfg = run.get("curves", {}), run.get("config", {})
    vals = c.get(_CURVE_OF[key]) or []
    if vals and c.get("step") and c["step"][-1] == s.get("steps_done") and not cfg.get("test_subset"):
        return vals[-1]
    return None


def probe_index(run: dict, layer: int, unit: int) -> tuple[int, int]:
    """(layer index, position in the probed units) of hidden ``layer`` (negative counts from the end)
    and unit ``unit`` (a unit number from the configuration's ``probe_units``)."""
    pct = curve(run, "percentiles")
    if not pct:
        raise ValueError("the run has no recorded percentiles.")
    n_layers = len(pct[0])
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"the run has hidden layers 0..{n_layers - 1} (or -1..-{n_layers}); got layer {layer}.")
    units = list(run["config"]["probe_units"])[: len(pct[0][layer])]
    if unit not in units:
        raise ValueError(f"unit {unit} was not probed; the probed units are {units}.")
    return layer % n_layers, units.index(unit)


def unit_percentiles(run: dict, layer: int, unit: int) -> dict:
    """The recorded 15th, 50th and 85th percentiles of one sigmoid's input over training:
    ``{"step", "p15", "p50", "p85"}`` (lists over the records)."""
    li, ui = probe_index(run, layer, unit)
    c = run["curves"]
    q = [rec[li][ui] for rec in c["percentiles"]]
    return {"step": list(c["step"]), "p15": [v[0] for v in q], "p50": [v[1] for v in q], "p85": [v[2] for v in q]}


# --------------------------------------------------------------------------- seeds and targets
def seed_groups(runs: dict) -> dict[str, list[dict]]:
    """Runs grouped by label without its ``-seedK`` suffix, in first-seen order."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs must be a non-empty dict mapping run labels to results.")
    groups: dict[str, list[dict]] = {}
    for label, run in runs.items():
        groups.setdefault(_SEED_SUFFIX.sub("", label), []).append(run)
    return groups


def steps_to_reach(run: dict, target: float, key: str = "test_acc") -> int | None:
    """First recorded step at which a run's accuracy curve ``key`` (test accuracy by default) is at least
    ``target`` (None if never)."""
    for step, acc in zip(curve(run, "step"), curve(run, key), strict=True):
        if acc is not None and acc >= target:
            return step
    return None


def score(run: dict, split: str = "test") -> float | None:
    """A run's final accuracy on ``split`` ("test" or "val") as the book scores it: with population statistics
    recomputed over the training split where the run has them (BN networks), else as evaluated (eval mode);
    None when the run diverged or holds no such value."""
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}.")
    s = run["summary"]
    if s.get("diverged_at") is not None:
        return None
    pop = s.get(f"final_{split}_acc_pop")
    return pop if pop is not None else final_metric(run, f"final_{split}_acc")


def val_curve_key(run: dict) -> str:
    """The validation accuracy curve a choice reads: ``val_acc_pop`` where the run recomputes population
    statistics at its records, else ``val_acc`` (one clear error when the run holds no validation split)."""
    c = run.get("curves", {})
    if any(v is not None for v in c.get("val_acc_pop") or []):
        return "val_acc_pop"
    if any(v is not None for v in c.get("val_acc") or []):
        return "val_acc"
    raise ValueError("the run has no validation curve (train it with a validation split).")


def steps_interpolated(run: dict, target: float, key: str = "test_acc") -> float | None:
    """The step at which a run's accuracy curve ``key`` first reaches ``target``, interpolated linearly between the
    record before it and the first record at or above it (that record's step when it is the first; None if never)."""
    prev = None
    for step, acc in zip(curve(run, "step"), curve(run, key), strict=True):
        if acc is not None and acc >= target:
            if prev is None or prev[1] is None:
                return float(step)
            s0, a0 = prev
            return float(s0 + (target - a0) / (acc - a0) * (step - s0))
        prev = (step, acc)
    return None


def steps_or_after(run: dict, target: float, key: str, interpolate: bool = False) -> float:
    """:func:`steps_to_reach` (``interpolate``: :func:`steps_interpolated`) on curve ``key``, a run that never
    reaches ``target`` counting as reaching it one record after its last (a lower bound on its steps, so a speed-up
    over it is not overstated)."""
    s = steps_interpolated(run, target, key) if interpolate else steps_to_reach(run, target, key)
    if s is not None:
        return s
    st = curve(run, "step")
    return st[-1] + (st[-1] - st[-2] if len(st) > 1 else st[-1] or 1)


def median_steps(values: list[int | None]) -> int | None:
    """Median over seeds of steps-to-target, a seed that never got there counting as infinitely many.

    With an even number of seeds the upper of the two middle values is taken (the conservative
    choice), so the result is always one of the measured values, or None when at least half
    of the seeds never reached the target.
    """
    ordered = sorted(values, key=lambda s: math.inf if s is None else s)
    return ordered[len(ordered) // 2]


# --------------------------------------------------------------------------- files
def _read_json(path: str | Path, ok: Callable[[object], bool], shape: str, advice: str = "") -> dict:
    """The JSON object in ``path`` when ``ok`` accepts it; one clear error (naming ``shape``, what it should have
    been) when it is damaged or of another kind. ``advice`` follows the error about invalid JSON."""
    path = Path(path)
    with open(path) as fh:
        try:
            res = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}){advice}.") from None
    if not ok(res):
        raise ValueError(f"{path} is not {shape}.")
    return res


def load(path: str | Path) -> dict:
    """An experiment result from its JSON file (one clear error when it is missing or damaged)."""
    try:
        return _read_json(path, lambda r: isinstance(r, dict) and isinstance(r.get("runs"), dict),
                          "an experiment result (a JSON object with a 'runs' object)", "; delete it and rerun")
    except FileNotFoundError:
        raise FileNotFoundError(f"no result file at {path}; run the experiment first.") from None


def load_check(path: str | Path) -> dict:
    """A stored check (``{"name", "fingerprint", "value", "provenance"}``), with one clear error when damaged."""
    return _read_json(path, lambda r: isinstance(r, dict) and {"fingerprint", "value"} <= set(r),
                      "a stored check (a JSON object with 'fingerprint' and 'value')", "; delete it and rerun")


def load_run(path: str | Path) -> dict:
    """One run stored on its own (``{"config", "curves", "summary", ...}``), with one clear error when damaged."""
    return _read_json(path, lambda r: isinstance(r, dict) and isinstance(r.get("config"), dict),
                      "a stored run (a JSON object with a 'config' object)")


def save(path: str | Path, obj) -> None:
    """Write ``obj`` as JSON atomically: a temporary file in the same folder, flushed to disk, then renamed.

    The temporary file is named ``.<name>.<pid>.<random>.tmp``, so that :func:`remove_orphans` can tell one
    left by a killed process from one that a live process is still writing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: A staging folder that names no owner process counts as abandoned once it is this old (seconds).
STALE_SECONDS = 6 * 3600


def remove_orphans(folder: str | Path, staging: str | None = None) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder`` (and its subfolders); returns them.

    With ``staging`` (a name prefix such as ``".download-"``), also the folders in ``folder`` (at any depth) named
    ``<staging><pid>-...`` whose process is dead (or, naming no process, older than :data:`STALE_SECONDS`).
    A folder that does not exist or cannot be listed is left alone."""
    gone: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return gone
    try:
        for p in list(folder.rglob(".*.tmp")):
            parts = p.name.split(".")
            pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
            if pid is None or not _alive(pid):
                p.unlink(missing_ok=True)
                gone.append(p)
        for p in sorted(folder.rglob(f"{staging}*")) if staging else []:
            owner = p.name[len(staging):].split("-", 1)[0]
            dead = not _alive(int(owner)) if owner.isdigit() else time.time() - p.stat().st_mtime > STALE_SECONDS
            if dead and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p)
    except OSError:  # unreadable: nothing of ours can be there
        pass
    return gone


def fsync_dir(folder: str | Path) -> None:
    """Make the renames into ``folder`` durable, where the platform lets a folder be opened and synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def digest(path: str | Path, kinds) -> dict[str, str]:
    """``{kind: hex digest}`` of the file's bytes for each hashlib algorithm in ``kinds`` (read once, in 4 MiB
    chunks); OSError propagates."""
    hashes = {k: hashlib.new(k) for k in kinds}
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            for h in hashes.values():
                h.update(chunk)
    return {k: h.hexdigest() for k, h in hashes.items()}


class VerdictCache:
    """A small JSON file of verdicts, ``{resolved path: [size, mtime_ns, what was checked]}``: a file whose size
    and modification time are unchanged since it was checked against the same expectation need not be read
    again. Read on first use; :meth:`save` writes it atomically (:func:`save`); a cache that cannot be read
    is empty and one that cannot be written is skipped (the files are then checked again next time)."""

    def __init__(self, path: str | Path):
        self.path, self.entries, self.changed = Path(path), None, False

    def _load(self) -> dict:
        if self.entries is None:
            try:
                with open(self.path) as fh:
                    got = json.load(fh)
            except (OSError, ValueError):
                got = {}
            self.entries = got if isinstance(got, dict) else {}
        return self.entries

    @staticmethod
    def _stamp(path: Path, what) -> tuple[str, list]:
        st = path.stat()
        return str(path.resolve()), [st.st_size, st.st_mtime_ns, what]

    def known(self, path: str | Path, what) -> bool:
        key, stamp = self._stamp(Path(path), what)
        return self._load().get(key) == stamp

    def add(self, path: str | Path, what) -> None:
        key, stamp = self._stamp(Path(path), what)
        self._load()[key], self.changed = stamp, True

    def save(self) -> None:
        if self.changed:
            try:
                save(self.path, self.entries)
            except (OSError, TypeError, ValueError):
                pass
            self.changed = False
