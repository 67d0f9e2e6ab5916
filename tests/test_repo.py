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
        assert nbclean.dumps(nbclean.normalize(json.loads(text), nbclean.repository())) == text, \
            f"{p.name}: run python tools/nbclean.py"


def test_no_large_or_dataset_file_is_tracked():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    big = [f for f in files if (ROOT / f).is_file() and (ROOT / f).stat().st_size > 5 * 2**20]
    assert not big, f"files over 5 MB are tracked: {big}"
    assert not [f for f in files if "ubyte" in f or "data_batch" in f], "dataset files must not be tracked"


def _install_cells() -> dict[str, str]:
    cells = {}
    for p in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(p.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        cells[p.name] = "".join(code[0]["source"]) if code else ""
    return cells


def test_every_chapter_installs_bnlib_first_when_it_is_missing():
    """The first code cell of every chapter is the same hidden install cell, and nbclean writes the repository in."""
    cells = _install_cells()
    first = next(iter(cells.values()))
    assert "find_spec(\"bnlib\")" in first
    wrong = [name for name, src in cells.items() if src != first]
    assert not wrong, f"these chapters do not start with the install cell: {wrong}"
    nb = json.loads((ROOT / "book" / "mnist.ipynb").read_text(encoding="utf-8"))
    out = nbclean.normalize(nb, "https://example.org/book.git")
    src = "".join(next(c for c in out["cells"] if c["cell_type"] == "code")["source"])
    assert 'BOOK_REPOSITORY = "https://example.org/book.git"' in src


def test_the_install_cell_installs_bnlib_into_a_fresh_environment(tmp_path):
    """Executed, as Binder would, in a fresh venv without bnlib (its dependencies visible on PYTHONPATH, since
    installing torch is not the cell's business), from the book/ folder of a checkout: bnlib imports afterwards."""
    import os
    import sysconfig
    import venv

    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    # the working tree's bnlib and pyproject (what this test run checks), not only the last commit
    for rel in ("pyproject.toml", "README.md"):
        (checkout / rel).write_bytes((ROOT / rel).read_bytes())
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    deps = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": deps, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    probe = [str(py), "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('bnlib') is not None)"]
    assert subprocess.run(probe, env=env, cwd=tmp_path).returncode == 0, "bnlib is importable before the cell ran"
    cell = _install_cells()["mnist.ipynb"]
    done = subprocess.run([str(py), "-c", cell], env=env, cwd=checkout / "book", capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    where = subprocess.run([str(py), "-c", "import bnlib, pathlib; print(pathlib.Path(bnlib.__file__).parent)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True)
    assert where.returncode == 0 and str(env_dir) in where.stdout, (where.stdout, where.stderr[-1000:])


def test_the_install_cell_says_what_to_do_outside_a_checkout_without_a_repository(tmp_path):
    cell = _install_cells()["mnist.ipynb"].replace('importlib.util.find_spec("bnlib") is None', "True")
    done = subprocess.run([sys.executable, "-c", cell], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and "clone the book's repository" in done.stderr
