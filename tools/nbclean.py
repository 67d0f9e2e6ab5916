"""Normalize chapter notebooks so that diffs show only real changes.

``python tools/nbclean.py FILES`` rewrites each notebook with a fixed notebook-level
metadata block (kernelspec and language name only), cell metadata reduced to ``tags``,
no execution timing, and one JSON layout. ``--check`` rewrites nothing and exits with 1
when a file is not normalized (``make lint`` runs it).

It also writes the book's repository (``repository.url`` of ``_config.yml``) into the
``BOOK_REPOSITORY = "..."`` line of each chapter's install cell, from which Colab installs bnlib.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

KEEP_CELL_METADATA = ("tags", "mystnb")
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


CONFIG = Path(__file__).resolve().parent.parent / "_config.yml"
_REPOSITORY_LINE = re.compile(r'^BOOK_REPOSITORY = "[^"]*"', re.M)


def repository() -> str:
    """The book's repository URL as _config.yml states it (empty until the book is published)."""
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) or {}
    url = str((cfg.get("repository") or {}).get("url") or "")
    if '"' in url or "\n" in url:
        raise SystemExit(f"_config.yml: repository.url must be a plain URL, got {url!r}.")
    return url


def normalize(nb: dict, repo: str = "") -> dict:
    nb = dict(nb)
    nb["metadata"] = NOTEBOOK_METADATA
    cells = []
    for cell in nb["cells"]:
        cell = dict(cell)
        cell.pop("id", None)
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in KEEP_CELL_METADATA}
        if cell["cell_type"] == "code":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if _REPOSITORY_LINE.search(src):
                cell["source"] = _REPOSITORY_LINE.sub(f'BOOK_REPOSITORY = "{repo}"', src).splitlines(True)
            for out in cell.get("outputs", []):
                if "metadata" in out and not out["metadata"]:
                    continue
                out.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    nb["cells"] = cells
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return nb


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    files = [a for a in argv if a != "--check"]
    dirty = []
    repo = repository()
    for path in files:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        new = dumps(normalize(json.loads(text), repo))
        if new == text:
            continue
        dirty.append(path)
        if not check:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    if check and dirty:
        print("Notebooks not normalized (run `python -m bnlib.nbclean` on them): " + ", ".join(dirty))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
