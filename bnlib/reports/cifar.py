"""Numbers of the CIFAR-10 chapter (book/cifar.ipynb): the depth and saturation table, the
learning-rate sweep and its tolerance, steps to accuracy in the format of the paper's Table 2, and
the ablation of the paper's acceleration recipe (Sec. 4.2.1).

Every function takes the ``runs`` mapping of an experiment result (label -> run). At paper scale
each run is repeated over seeds (labels end in ``-seedK``): the functions then aggregate over seeds.
"""

from __future__ import annotations

import math

import numpy as np

from bnlib.results import median_steps, seed_groups, steps_to_reach


def run_stats(group: list[dict], target: float | None = None) -> dict:
    """Seed-aggregated numbers of one run (a list of its seeds' results).

    ``best_acc``: mean over seeds of the best recorded test accuracy; ``final_acc``: mean final
    test accuracy, None when any seed diverged; ``diverged``: how many seeds diverged and
    ``diverged_at`` the earliest step at which one did; ``steps``: the median steps to reach
    ``target`` (see :func:`_median_steps`); ``lr``, ``norm``: from the configuration.
    """
    if not group:
        raise ValueError("a run group must hold at least one seed's result.")
    s = [r["summary"] for r in group]
    div = [x["diverged_at"] for x in s if x["diverged_at"] is not None]
    bests = [x["best_test_acc"] for x in s]
    finals = [x["final_test_acc"] for x in s]
    cfg = group[0]["config"]
    return {
        "lr": cfg["lr"],
        "norm": cfg["norm"],
        "best_acc": None if None in bests else float(np.mean(bests)),
        "final_acc": None if (div or None in finals) else float(np.mean(finals)),
        "diverged": len(div),
        "diverged_at": min(div) if div else None,
        "steps": None if target is None else median_steps([steps_to_reach(r, target) for r in group]),
        "seeds": len(group),
    }


def steps_to_accuracy(runs: dict, baseline: str, labels: list[str] | None = None) -> tuple[float, list[dict]]:
    """The paper's Table 2 for ``runs``: the target is the ``baseline`` run's best test accuracy.

    Returns ``(target, rows)``; one row per label (all, in order, by default) with the keys of
    :func:`run_stats` plus ``label`` and ``speedup`` (the baseline's steps to the target divided
    by the row's; None when either never reached it).
    """
    groups = seed_groups(runs)
    labels = list(groups) if labels is None else list(labels)
    missing = [lab for lab in [baseline, *labels] if lab not in groups]
    if missing:
        raise ValueError(f"no run labelled {missing[0]!r}; the runs are {', '.join(groups)}.")
    target = run_stats(groups[baseline])["best_acc"]
    base_steps = run_stats(groups[baseline], target)["steps"]
    rows = []
    for lab in labels:
        row = {"label": lab, **run_stats(groups[lab], target)}
        row["speedup"] = base_steps / row["steps"] if base_steps and row["steps"] else None
        rows.append(row)
    return target, rows


def lr_sweep(runs: dict, base_lr: float) -> list[dict]:
    """One row per run of a learning-rate sweep: :func:`run_stats` plus ``label`` and
    ``multiplier`` (the run's learning rate over ``base_lr``, to 6 significant digits),
    sorted by normalization (none first) and then multiplier."""
    if not base_lr > 0:
        raise ValueError(f"base_lr must be positive, got {base_lr}.")
    rows = []
    for lab, group in seed_groups(runs).items():
        row = {"label": lab, **run_stats(group)}
        row["multiplier"] = float(f"{row['lr'] / base_lr:.6g}")
        rows.append(row)
    return sorted(rows, key=lambda r: (r["norm"] is not None, str(r["norm"]), r["multiplier"]))


def max_tolerated_multiplier(rows: list[dict], norm: str | None, threshold: float) -> float | None:
    """The largest learning-rate multiplier ``k`` such that every swept multiplier from 1 to ``k``
    trains: no seed diverged and the final test accuracy is at least ``threshold``.

    ``rows`` as from :func:`lr_sweep`; ``norm`` picks the networks (None: without BN). None when
    the baseline rate (multiplier 1) itself does not train.
    """
    mine = sorted((r for r in rows if r["norm"] == norm and r["multiplier"] >= 1), key=lambda r: r["multiplier"])
    if not mine or mine[0]["multiplier"] != 1:
        raise ValueError(f"the sweep has no run at multiplier 1 for norm={norm!r}.")
    best = None
    for r in mine:
        if r["diverged"] or r["final_acc"] is None or r["final_acc"] < threshold:
            break
        best = r["multiplier"]
    return best


def depth_saturation(runs: dict) -> list[dict]:
    """One row per run of the depth experiment: :func:`run_stats` plus ``label``, ``depth`` and the
    saturated fraction of every hidden layer at the first and the last record (``sat_init``,
    ``sat_final``: lists over layers, seed means) and their means over layers."""
    rows = []
    for lab, group in seed_groups(runs).items():
        row = {"label": lab, "depth": group[0]["config"]["depth"], **run_stats(group)}
        for key, idx in (("sat_init", 0), ("sat_final", -1)):
            per_seed = np.array([r["curves"]["saturated"][idx] for r in group], dtype=float)
            row[key] = per_seed.mean(axis=0).tolist()
            row[key + "_mean"] = float(per_seed.mean())
        rows.append(row)
    return rows


#: Configuration fields the recipe changes, with the words the ablation table uses for them.
RECIPE_FIELDS = {"norm": "BN", "lr": "learning rate", "dropout": "dropout", "weight_decay": "L2 weight decay",
                 "lr_decay": "decay factor", "lr_decay_every": "decay every (steps)"}


def describe_change(before: dict, after: dict) -> str:
    """What differs between two run configurations, e.g. ``"learning rate 0.1 → 0.5"`` ("" if nothing)."""
    parts = []
    for key in sorted(set(before) | set(after)):
        if key in ("seed", "device"):
            continue
        a, b = before.get(key), after.get(key)
        if a != b:
            name = RECIPE_FIELDS.get(key, key)
            if key == "norm":
                parts.append("BN added" if b else "BN removed")
            else:
                parts.append(f"{name} {a:g} → {b:g}" if isinstance(a, float | int) and isinstance(b, float | int)
                             else f"{name} {a} → {b}")
    return ", ".join(parts)


def ablation(runs: dict, baseline: str) -> tuple[float, list[dict]]:
    """The recipe's ablation table: :func:`steps_to_accuracy` over the runs in order, each row
    also saying in ``change`` what differs from the previous row's configuration."""
    target, rows = steps_to_accuracy(runs, baseline)
    groups = seed_groups(runs)
    prev = None
    for row in rows:
        cfg = groups[row["label"]][0]["config"]
        row["change"] = "" if prev is None else describe_change(prev, cfg)
        prev = cfg
    return target, rows


def sweep_name(norm: str | None, multiplier: float) -> str:
    """The paper's way of naming a run by its learning rate: ``"BN-x5"``, ``"no BN-x1"``."""
    return f"{'BN' if norm else 'no BN'}-x{multiplier:.3g}"


def gradient_ratio(group: list[dict], record: int = -1) -> float:
    """How much smaller the loss gradient of the first conv layer is than that of the last one
    (``depth - 1``), at ``record`` (default: the last), as the geometric mean over seeds."""
    ratios = []
    for run in group:
        g = run["curves"]["grad_norm"][record]
        if g is None:
            raise ValueError(f"no gradient norms at record {record} (step 0 has none).")
        d = run["config"]["depth"]
        ratios.append(math.log(g[d - 1] / g[0]))
    return math.exp(sum(ratios) / len(ratios))
