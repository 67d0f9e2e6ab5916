"""Fault injection: a small experiment's run is killed with SIGKILL at random moments, over and over; the
results folder must only ever hold complete, valid JSON files (temporary files of the killed writers aside),
and the next run must finish the experiment and leave no temporary file behind.

Smoke-scale results are never written, so the run here is the smoke-size configuration of a registered
experiment labelled as a book-scale result (``dataclasses.replace(exp, scale="book")``): the same code path
as a book-scale run (partial results saved as each run finishes, the result file written at the end, orphans
removed at the start), at the size of a smoke test. ``BNLIB_RESULTS_DIR`` points it at a temporary folder.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnlib import results

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = "mnist_fig1"
KILLS = 10
#: Imports bnlib once, then for each line on stdin forks a child that runs the experiment, prints the child's
#: pid, reaps it and prints its wait status: the kills then cost no interpreter start-up each.
DRIVER = f"""
import dataclasses, os, sys
from bnlib import experiments as E
exp = dataclasses.replace(E.get({EXPERIMENT!r}, "smoke"), scale="book")
print(exp.path, flush=True)
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            E.run_all([exp], progress=False, jobs=1)
            code = 0
        finally:
            os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def _start(res: Path, home: Path, code: str = DRIVER) -> subprocess.Popen:
    env = dict(os.environ, BNLIB_RESULTS_DIR=str(res), HOME=str(home), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)


def _assert_only_valid_files(res: Path) -> None:
    for p in res.rglob("*.json"):
        if p.parent == res:
            assert results.load(p)["runs"], p
        else:  # a partial result: one finished run
            assert "config" in results.load_run(p), p


def _temporary(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".download-")]


@pytest.mark.slow
@pytest.mark.data("mnist")
def test_killed_runs_leave_only_complete_files(tmp_path):
    res, home = tmp_path / "results", tmp_path / "home"
    home.mkdir()
    rng = random.Random(19)
    t0 = time.perf_counter()
    driver = _start(res, home)
    final = Path(driver.stdout.readline().strip())
    assert final.parent == res
    work, kills, completed = 3.0, 0, 0  # work: the seconds a whole run took, as last seen
    try:
        while kills < KILLS:
            if final.exists():  # the previous run finished: start again from nothing, to kill it again
                final.unlink()
            driver.stdin.write("run\n")
            pid = int(driver.stdout.readline())
            started = time.perf_counter()
            time.sleep(rng.uniform(0.0, 1.2) * work)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it finished and was reaped already
                pass
            status = int(driver.stdout.readline())
            if os.WIFSIGNALED(status):
                kills += 1
            else:
                assert os.WEXITSTATUS(status) == 0
                work, completed = time.perf_counter() - started, completed + 1
            _assert_only_valid_files(res)
    finally:
        driver.stdin.close()
        driver.wait(timeout=60)
    # a new process finishes the experiment and cleans up after the killed ones
    p = _start(res, home, DRIVER.split("for _ in sys.stdin:")[0] + "E.run_all([exp], progress=False, jobs=1)\n")
    p.stdin.close()
    assert p.wait(timeout=120) == 0
    _assert_only_valid_files(res)
    assert results.load(final)["runs"]
    assert _temporary(res) == [] and _temporary(home) == []
    assert not (res / ".partial" / final.stem).exists()
    print(f"{kills} kills, {completed} runs finished between them, {time.perf_counter() - t0:.0f} s in all")
