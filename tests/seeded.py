"""Hand-made seeded results for the report tests: the labels and configs a five-seed experiment has."""

from __future__ import annotations


def seeded(make, seeds=range(5), name: str = "test") -> dict:
    """A result whose label ``k`` has one run per seed, labelled ``k-seedS``: ``make(seed)`` returns {label: run}
    for one seed (each run's config gets that seed)."""
    runs = {}
    for s in seeds:
        for k, run in make(s).items():
            run["config"]["seed"] = s
            runs[f"{k}-seed{s}"] = run
    return {"name": name, "runs": runs}
