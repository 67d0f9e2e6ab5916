"""Stored checks: computations of a chapter that are not the engine's training runs but take too long to repeat
each time the chapter executes (the practice chapter's per-device batch measurement, its gamma-and-beta networks).

Each is stored in ``results/checks/<name>.json`` with a fingerprint of the engine and of the code of the module
that defines it (:func:`fingerprint`). :func:`stored` reads it back while the fingerprint is current and computes
it again otherwise; ``python -m bnlib.experiments check NAME`` computes it, ``experiments stale`` names one whose
code has changed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bnlib import engine, results

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("BNLIB_RESULTS_DIR", ROOT / "results"))
#: name -> (the module and function that compute the check, and its keyword arguments).
CHECKS: dict[str, tuple[str, str, dict]] = {
    "device_batch": ("bnlib.practice", "device_batch_check", {}),
    "affine": ("bnlib.practice", "affine_only_mnist", {}),
    "residual": ("bnlib.residual", "residual_check", {}),
    "ddp_train": ("bnlib.practice", "ddp_train_check", {}),
    "shifted_domain": ("bnlib.practice", "shifted_domain_mnist", {}),
}


def _spec(name: str) -> tuple[str, str, dict]:
    if name not in CHECKS:
        raise ValueError(f"no stored check named {name!r}; the checks are {', '.join(sorted(CHECKS))}.")
    return CHECKS[name]


def path(name: str, results_dir: Path | None = None) -> Path:
    """Where the check ``name`` is stored."""
    _spec(name)
    return Path(results_dir or RESULTS_DIR) / "checks" / f"{name}.json"


def fingerprint(name: str) -> str:
    """The engine fingerprint combined with the function, its arguments and the code (not the comments or
    docstrings) of the module that defines the check: it changes when the check would compute other numbers."""
    module, fn, kwargs = _spec(name)
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    blob = f"{engine.fingerprint()}\0{fn}\0{json.dumps(kwargs, sort_keys=True)}\0" + engine._code_only(source)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def stored(name: str, force: bool = False, results_dir: Path | None = None) -> dict:
    """The value of the check ``name``: read from its file when that holds the current fingerprint, otherwise (or
    when ``force``) computed, then written atomically. It is returned as it reads back from JSON either way (object
    keys are strings)."""
    module, fn, kwargs = _spec(name)
    where, fp = path(name, results_dir), fingerprint(name)
    if not force and where.exists():
        kept = results.load_check(where)
        if kept.get("fingerprint") == fp:
            return kept["value"]
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create the folder {where.parent} for stored checks ({err.strerror}).") from None
    compute: Callable[..., dict] = getattr(importlib.import_module(module), fn)
    t0 = time.perf_counter()
    value = json.loads(json.dumps(compute(**kwargs), allow_nan=False))
    wall = {"wall_seconds": round(time.perf_counter() - t0, 2)}
    results.save(where, {"name": name, "fingerprint": fp, "value": value,
                         "provenance": engine.run_provenance("cpu") | wall})
    return value


def stale_checks(results_dir: Path | None = None) -> list[tuple[Path, str]]:
    """Stored checks whose file holds another fingerprint than the current code's, each with the reason."""
    out = []
    for name in sorted(CHECKS):
        where = path(name, results_dir)
        if not where.exists():
            continue
        try:
            fp = results.load_check(where).get("fingerprint")
        except ValueError as err:
            out.append((where, f"unreadable: {err}"))
            continue
        now = fingerprint(name)
        if fp != now:
            out.append((where, f"code fingerprint differs: computed by {fp}, the code is now {now}"))
    return out


def command(name: str | None, force: bool, results_dir: Path | None = None) -> int:
    """``python -m bnlib.experiments check NAME`` (``name`` None: every check): compute or load, print where each
    is stored; exit status 2 with one sentence when the folder cannot be written."""
    for n in sorted(CHECKS) if name is None else [name]:
        t0 = time.perf_counter()
        try:
            stored(n, force=force, results_dir=results_dir)
        except PermissionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{n}: {path(n, results_dir)} ({time.perf_counter() - t0:.1f} s)")
    return 0
