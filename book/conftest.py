"""nbval over the chapters: every chapter must execute from committed results within CHAPTER_BUDGET_S seconds (the
time of its cells, summed; a chapter that needs longer is recomputing something it should load)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

CHAPTER_BUDGET_S = 90.0
_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    if report.when == "call" and path.endswith(".ipynb"):
        _SECONDS[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if _SECONDS:
        times = ", ".join(f"{Path(p).stem} {s:.0f}" for p, s in sorted(_SECONDS.items(), key=lambda kv: -kv[1]))
        terminalreporter.write_line(f"seconds per chapter (budget {CHAPTER_BUDGET_S:.0f} s): {times}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    over = {p: s for p, s in _SECONDS.items() if s > CHAPTER_BUDGET_S}
    if over:
        for p, s in sorted(over.items()):
            print(f"\n{Path(p).name} took {s:.0f} s to execute, over the {CHAPTER_BUDGET_S:.0f} s a chapter may take "
                  "from committed results.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
