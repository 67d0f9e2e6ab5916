"""Repository hygiene: exact pins, small notebooks, normalized notebook metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbclean  # noqa: E402


def test_every_requirement_is_pinned_exactly():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [l for l in lines if l and not l.startswith("#")]
    loose = [r for r in reqs if "==" not in r]
    assert not loose, f"requirements not pinned with ==: {loose}"
    assert "torch==2.13.0" in reqs and "jupyter-book==1.0.4.post1" in reqs


def test_notebooks_are_small_and_normalized():
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    total = sum(p.stat().st_size for p in notebooks)
    assert total < 15 * 2**20, f"book/*.ipynb total {total / 2**20:.1f} MB exceeds 15 MB"
    for p in notebooks:
        text = p.read_text(encoding="utf-8")
        assert nbclean.dumps(nbclean.normalize(json.loads(text))) == text, f"{p.name}: run python tools/nbclean.py"


def test_no_large_or_dataset_file_is_tracked():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    big = [f for f in files if (ROOT / f).is_file() and (ROOT / f).stat().st_size > 5 * 2**20]
    assert not big, f"files over 5 MB are tracked: {big}"
    assert not [f for f in files if "ubyte" in f or "data_batch" in f], "dataset files must not be tracked"
