"""Numbers of the CIFAR-10 chapter (book/cifar.ipynb): the depth and saturation table, the
learning-rate sweep and its tolerance, steps to accuracy in the format of the paper's Table 2, and
the ablation of the paper's acceleration recipe (Sec. 4.2.1).

The functions take the ``runs`` mapping of an experiment result (label -> run), or the rows other
functions here return. At paper scale each run is repeated over seeds (labels end in ``-seedK``):
the functions then aggregate over seeds. The ``*_numbers`` functions return what one section's prose
glues and raise ValueError when a claim of that prose no longer holds for the results.
"""

from __future__ import annotations

import math

import numpy as np

from bnlib.reports.format import Glued, Table, fmt_pct, fmt_ratio, fmt_steps, md, number, percent, text
from bnlib.results import SATURATION_THRESHOLD, config, curve, median_steps, seed_groups, steps_to_reach


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
            per_seed = np.array([curve(r, "saturated")[idx] for r in group], dtype=float)
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
        g = curve(run, "grad_norm")[record]
        if g is None:
            raise ValueError(f"no gradient norms at record {record} (step 0 has none).")
        d = run["config"]["depth"]
        ratios.append(math.log(g[d - 1] / g[0]))
    return math.exp(sum(ratios) / len(ratios))


# --------------------------------------------------------------------------- small derivations
def sigmoid_slope(x: float) -> float:
    """sigmoid'(x) = s(1 - s): the factor by which the backward pass scales a gradient at input ``x``."""
    s = 1 / (1 + math.exp(-x))
    return s * (1 - s)


def largest_drop(values: list[float]) -> tuple[int, float, float]:
    """The largest fall between consecutive values: ``(i, values[i], values[i + 1])`` (the first one on ties)."""
    if len(values) < 2:
        raise ValueError(f"a drop needs at least two values, got {len(values)}.")
    i = max(range(len(values) - 1), key=lambda i: values[i] - values[i + 1])
    return i, values[i], values[i + 1]


def last_spread(values: list[float], n: int = 3) -> float:
    """max - min over the last ``n`` values: how far a curve still moves at the end."""
    if not 1 <= n <= len(values):
        raise ValueError(f"need 1 <= n <= {len(values)} values, got n={n}.")
    tail = values[-n:]
    return max(tail) - min(tail)


def gradient_spread(norms: list[float]) -> float:
    """The largest over the smallest of a set of gradient norms (1: all alike)."""
    if not norms or min(norms) <= 0:
        raise ValueError("gradient norms must be a non-empty list of positive numbers.")
    return max(norms) / min(norms)


def tolerance_threshold(rows: list[dict]) -> float:
    """The final accuracy a rate must reach to count as tolerated: that of the network without BN at
    the baseline rate (multiplier 1); ``rows`` as from :func:`lr_sweep`."""
    base = [r for r in rows if r["norm"] is None and r["multiplier"] == 1]
    if not base or base[0]["final_acc"] is None:
        raise ValueError("the sweep needs a run without BN at multiplier 1 that did not diverge.")
    return base[0]["final_acc"]


def speedup_bounds(base_steps: int, steps: int, record_every: int) -> tuple[float, float | None]:
    """Bounds on a true speed-up when each run first crossed the target somewhere in the ``record_every``
    steps before its recorded step: ``((S_b - h) / S, S_b / (S - h))``, None for an unbounded upper one."""
    if not steps or not base_steps:
        raise ValueError("both runs must reach the target after step 0 to bound a speed-up.")
    return (base_steps - record_every) / steps, (None if steps <= record_every else base_steps / (steps - record_every))


def per_layer_factor(ratio: float, layers: int) -> float:
    """The average per-layer factor of a ``ratio`` accumulated over ``layers`` layer-to-layer steps."""
    if layers < 1 or ratio <= 0:
        raise ValueError(f"need a positive ratio over at least one layer, got {ratio} over {layers}.")
    return ratio ** (1 / layers)


def _row(rows: list[dict], what: str, **match) -> dict:
    """The one row whose fields equal ``match`` (``what`` names it in the error)."""
    hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
    if len(hits) != 1:
        raise ValueError(f"expected one row for {what}, found {len(hits)}.")
    return hits[0]


def _claim(ok: bool, sentence: str) -> None:
    if not ok:
        raise ValueError(sentence)


# --------------------------------------------------------------------------- the chapter's sections
def setup_numbers(base: dict, depths: tuple[int, ...], multipliers: tuple[float, ...], n_train: int, n_test: int,
                  results: list[dict]) -> dict[str, Glued]:
    """The overview's and the setup section's numbers: ``base`` is the base configuration as a dict,
    ``results`` the ``runs`` of every experiment of the chapter (whose prose says they use all images)."""
    if any(config(r)["train_subset"] != 0 for runs in results for r in runs.values()):
        raise ValueError("the chapter says every run trains on all training images, but one uses a subset.")
    slope = sigmoid_slope(SATURATION_THRESHOLD)
    return {
        "cifar_steps": number(base["steps"]),
        "cifar_epochs": number(base["steps"] * base["batch_size"] / n_train),
        "cifar_ntrain": number(n_train),
        "cifar_ntest": number(n_test),
        "cifar_ntest_curve": number(base["test_subset"]),
        "cifar_record_every": number(base["record_every"]),
        "cifar_batch": number(base["batch_size"]),
        "cifar_lr": number(base["lr"]),
        "cifar_momentum": number(base["momentum"]),
        "cifar_width": number(base["width"]),
        "cifar_probe": number(base["probe_batch"]),
        "cifar_depth_list": text(", ".join(map(str, depths[:-1])) + f" and {depths[-1]}"),
        "cifar_depth_max": number(max(depths)),
        "cifar_depth_min": number(min(depths)),
        "cifar_sweep_depth": number(base["depth"]),
        "cifar_n_rates": number(len(multipliers)),
        "cifar_mult_min": text(f"{min(multipliers):.3g}"),
        "cifar_mult_max": text(f"{max(multipliers):g}"),
        "cifar_sat_threshold": number(SATURATION_THRESHOLD),
        "cifar_sat_level": number(round(slope, 12)),
        "cifar_mult_list": text(", ".join(f"{k:.3g}" for k in multipliers)),
    }


def depth_numbers(runs: dict, depths: tuple[int, ...], mid_depth: int, n_params: dict[str, int]) -> dict[str, Glued]:
    """The depth section's numbers (Table 1's runs): accuracies, saturation and gradient ratios of the
    shallowest, ``mid_depth`` and deepest networks; ``n_params`` maps run labels to parameter counts."""
    rows = depth_saturation(runs)
    groups = seed_groups(runs)
    dmin, dmax = min(depths), max(depths)
    out = {}
    for role, d in (("shallow", dmin), ("mid", mid_depth), ("deep", dmax)):
        for r in (r for r in rows if r["depth"] == d):
            key = f"cifar_{role}_{'bn' if r['norm'] else 'none'}"
            out[key + "_best"] = percent(r["best_acc"])
            out[key + "_final"] = percent(r["final_acc"])
            out[key + "_sat"] = percent(r["sat_final_mean"])
            out[key + "_sat_last"] = percent(r["sat_final"][-1])
            out[key + "_sat_last_init"] = percent(r["sat_init"][-1])
            out[key + "_sat_front"] = percent(max(r["sat_final"][:-1]))
    deep_bn, deep_none = groups[f"bn-depth{dmax}"], groups[f"none-depth{dmax}"]
    row_bn = _row(rows, f"bn-depth{dmax}", label=f"bn-depth{dmax}")
    row_none = _row(rows, f"none-depth{dmax}", label=f"none-depth{dmax}")
    _claim(row_bn["best_acc"] > max(r["best_acc"] for r in rows if not r["norm"]),
           f"the prose says the {dmax}-layer BN network's best accuracy is above every network's without BN, but it "
           "is not.")
    _claim(row_none["best_acc"] < 0.11,
           f"the prose says the {dmax}-layer network without BN stays at chance (best below 11%), but it does not.")
    _claim(max(row_none["sat_final"][:-1]) < 0.01,
           f"the prose says the first {dmax - 1} layers without BN are practically unsaturated (below 1%), "
           "but one is not.")
    out["cifar_deep_bn_final_bs"] = percent(sum(r["summary"]["final_test_acc_batchstats"] for r in deep_bn)
                                            / len(deep_bn))
    out["cifar_deep_none_train_loss"] = number(curve(deep_none[0], "train_loss")[-1])
    out["cifar_log10"] = number(math.log(10))
    out["cifar_grad_spread_bn"] = number(gradient_spread(curve(deep_bn[0], "grad_norm")[-1][:dmax]))
    out["cifar_deep_bn_sat_max"] = percent(max(row_bn["sat_final"]))
    out["cifar_deep_front"] = number(dmax - 1)
    out["cifar_grad_ratio_none"] = number(gradient_ratio(deep_none))
    out["cifar_grad_ratio_bn"] = number(gradient_ratio(deep_bn))
    out["cifar_grad_ratio_none_first"] = number(gradient_ratio(deep_none, record=1))
    params = seed_groups(n_params)
    out["cifar_params_min"] = number(params[f"none-depth{dmin}"][0])
    out["cifar_params_max"] = number(params[f"bn-depth{dmax}"][0])
    return out


def depth_table(rows: list[dict]) -> Table:
    """Table 1: one line per network of :func:`depth_saturation`."""
    return Table(["conv layers", "BN", "best acc.", "final acc.", "saturated (mean)", "saturated (worst layer)"],
                 [[r["depth"], "yes" if r["norm"] else "no", fmt_pct(r["best_acc"]), fmt_pct(r["final_acc"]),
                   fmt_pct(r["sat_final_mean"]), fmt_pct(max(r["sat_final"]))] for r in rows])


def lr_numbers(runs: dict, base_lr: float, max_multiplier: float) -> dict[str, Glued]:
    """The learning-rate section's numbers: the tolerance (:func:`tolerance_threshold`,
    :func:`max_tolerated_multiplier`), the runs at ``max_multiplier`` and the best rate with and without BN."""
    rows = lr_sweep(runs, base_lr)
    groups = seed_groups(runs)
    none_rows = [r for r in rows if r["norm"] is None]
    bn_rows = [r for r in rows if r["norm"] is not None]
    if not none_rows or not bn_rows:
        raise ValueError("the sweep needs runs both without and with BN.")
    none_max = _row(none_rows, f"no BN at x{max_multiplier:g}", multiplier=max_multiplier)
    bn_max = _row(bn_rows, f"BN at x{max_multiplier:g}", multiplier=max_multiplier)
    threshold = tolerance_threshold(rows)
    tol_none = max_tolerated_multiplier(rows, None, threshold)
    tol_bn = max_tolerated_multiplier(rows, bn_rows[0]["norm"], threshold)
    best_none = max(none_rows, key=lambda r: r["best_acc"])
    best_bn = max(bn_rows, key=lambda r: r["best_acc"])
    _claim(not any(r["diverged"] for r in rows), "the prose says no run of the sweep diverged, but one did.")
    _claim(none_max["best_acc"] < 0.12,
           f"the prose says the network without BN stays at chance (best below 12%) at x{max_multiplier:g}, "
           "but it does not.")
    _claim(tol_none is not None and tol_bn is not None,
           "the prose says both networks tolerate the baseline rate, but one does not.")
    _claim(tol_none < max_multiplier and tol_bn == max_multiplier,
           f"the prose says only the BN network tolerates every rate up to x{max_multiplier:g}, which no longer holds.")
    _claim(best_none["multiplier"] > 1,
           "the prose says a rate above the baseline's is best for the network without BN, but it is not.")
    _claim(best_bn["best_acc"] > best_none["best_acc"],
           "the prose says the best BN run beats the best run without BN, but it does not.")
    return {
        "cifar_tol_threshold": percent(threshold),
        "cifar_tol_none": text(f"{tol_none:g}"),
        "cifar_tol_bn": text(f"{tol_bn:g}"),
        "cifar_tol_ratio": number(tol_bn / tol_none),
        "cifar_n_runs_sweep": number(len(rows)),
        "cifar_none_xmax_best": percent(none_max["best_acc"]),
        "cifar_none_xmax_final": percent(none_max["final_acc"]),
        "cifar_none_xmax_loss": number(curve(groups[none_max["label"]][0], "train_loss")[-1]),
        "cifar_bn_xmax_final": percent(bn_max["final_acc"]),
        "cifar_best_none_mult": text(f"{best_none['multiplier']:g}"),
        "cifar_best_none_acc": percent(best_none["best_acc"]),
        "cifar_best_bn_mult": text(f"{best_bn['multiplier']:g}"),
        "cifar_best_bn_acc": percent(best_bn["best_acc"]),
        "cifar_bn_x1_final": percent(_row(bn_rows, "BN at x1", multiplier=1)["final_acc"]),
    }


def lr_table(rows: list[dict]) -> Table:
    """Table 2: one line per run of :func:`lr_sweep`."""
    return Table(["learning rate", "multiplier", "BN", "best acc.", "final acc.", "diverged"],
                 [[f"{r['lr']:.3g}", f"x{r['multiplier']:.3g}", "yes" if r["norm"] else "no", fmt_pct(r["best_acc"]),
                   fmt_pct(r["final_acc"]), "no" if r["diverged_at"] is None else f"at step {r['diverged_at']:,}"]
                  for r in rows])


def sweep_steps(runs: dict, base_lr: float, baseline: str = "none-x1") -> tuple[float, list[dict]]:
    """Table 3: :func:`steps_to_accuracy` over the sweep's runs at the baseline rate and above."""
    labels = [r["label"] for r in lr_sweep(runs, base_lr) if r["multiplier"] >= 1]
    return steps_to_accuracy(runs, baseline=baseline, labels=labels)


def steps_numbers(runs: dict, base_lr: float, last_step: int, baseline: str = "none-x1") -> dict[str, Glued]:
    """The steps section's numbers (:func:`sweep_steps`): the target, the baseline's and the BN networks'
    steps to it, and how many higher rates without BN reach it; ``last_step``: the runs' length."""
    target, rows = sweep_steps(runs, base_lr, baseline)
    base = _row(rows, baseline, label=baseline)
    bn = [r for r in rows if r["norm"] is not None]
    others = [r for r in rows if r["norm"] is None and r["label"] != baseline]
    reached = [r["steps"] for r in others if r["steps"] is not None]
    _claim(base["steps"] == last_step, f"the prose says the baseline reaches its best only at step {last_step}, "
           f"but it does at step {base['steps']}.")
    by = {r["label"]: r for r in bn}
    _claim(bool(bn) and all(r["steps"] is not None and r["steps"] < base["steps"] for r in bn),
           "the prose says every BN network reaches the target sooner than the baseline, but one does not.")
    _claim("bn-x1" in by and "bn-x5" in by and by["bn-x1"]["steps"] <= by["bn-x5"]["steps"],
           "the prose says BN-x1 reaches the target no later than BN-x5, but it does not.")
    _claim(bool(reached), "the prose names the fastest higher rate without BN to reach the target, but none does.")
    return {
        "cifar_target": percent(target),
        "cifar_steps_base": number(base["steps"]),
        "cifar_steps_bn_min": number(min(r["steps"] for r in bn)),
        "cifar_steps_bn_max": number(max(r["steps"] for r in bn)),
        "cifar_speedup_bn_min": number(min(r["speedup"] for r in bn)),
        "cifar_speedup_bn_max": number(max(r["speedup"] for r in bn)),
        "cifar_steps_bn_x1": number(by["bn-x1"]["steps"]),
        "cifar_steps_bn_x5": number(by["bn-x5"]["steps"]),
        "cifar_last_step": number(last_step),
        "cifar_none_reached": number(len(reached)),
        "cifar_none_others": number(len(others)),
        "cifar_none_fastest": text(fmt_steps(min(reached))),
    }


def steps_table(rows: list[dict], base_lr: float) -> Table:
    """Table 3 in the format of the paper's Table 2 (rows from :func:`sweep_steps`)."""
    return Table(["model", "learning rate", "steps to target", "speed-up", "max accuracy"],
                 [[sweep_name(r["norm"], r["lr"] / base_lr), f"{r['lr']:.3g}", fmt_steps(r["steps"]),
                   fmt_ratio(r["speedup"]), fmt_pct(r["best_acc"])] for r in rows])


def recipe_numbers(runs: dict, sweep_target: float, recipe_base: dict, final_lr: float,
                   baseline: str = "none-baseline") -> dict[str, Glued]:
    """The recipe section's numbers (:func:`ablation`, six rows: no BN, BN, then four changes): steps,
    speed-ups and accuracies per row, the BN baseline's largest drop between records, the spread of the
    last three records of the last two rows; ``recipe_base`` is the starting configuration as a dict,
    ``final_lr`` the last row's learning rate at its last step, ``sweep_target`` Table 3's target."""
    target, rows = ablation(runs, baseline)
    if len(rows) != 6:
        raise ValueError(f"the prose describes six rows of the recipe (no BN, BN, four changes), got {len(rows)}.")
    groups = seed_groups(runs)
    out = {
        "cifar_recipe_target": percent(target),
        "cifar_recipe_dropout": number(recipe_base["dropout"]),
        "cifar_recipe_l2": number(recipe_base["weight_decay"]),
        "cifar_recipe_decay": number(recipe_base["lr_decay"]),
        "cifar_recipe_decay_every": number(recipe_base["lr_decay_every"]),
    }
    for i, r in enumerate(rows):
        out[f"cifar_recipe{i}_best"] = percent(r["best_acc"])
        if r["final_acc"] is not None:
            out[f"cifar_recipe{i}_final"] = percent(r["final_acc"])
        out[f"cifar_recipe{i}_steps"] = text(fmt_steps(r["steps"]))
        if r["speedup"] is not None:
            out[f"cifar_recipe{i}_speedup"] = number(r["speedup"])
    acc = [curve(groups[r["label"]][0], "test_acc") for r in rows]  # the first seed of each row
    _, drop_from, drop_to = largest_drop(acc[1])
    out["cifar_recipe_drop_from"] = percent(drop_from)
    out["cifar_recipe_drop_to"] = percent(drop_to)
    spread = [100 * last_spread(acc[i], 3) for i in (4, 5)]
    out["cifar_recipe4_spread"] = number(spread[0])
    out["cifar_recipe5_spread"] = number(spread[1])
    out["cifar_recipe_final_lr"] = number(final_lr)
    out["cifar_recipe_fast_every"] = number(config(groups[rows[5]["label"]][0])["lr_decay_every"])
    out["cifar_sweep_target"] = percent(sweep_target)
    st = [r["steps"] for r in rows]
    _claim(None not in st, "the prose gives every row's step to the target, but one never reaches it.")
    _claim(st[1] < st[0], "the prose says BN alone reaches the target sooner than the baseline, but it does not.")
    _claim(st[5] >= st[4], "the prose says faster decay does not reach the target sooner than the row above it, "
           "but it does.")
    _claim(rows[5]["final_acc"] > max(rows[0]["final_acc"], rows[1]["final_acc"]),
           "the prose says the full recipe ends above both baselines, but it does not.")
    out["cifar_recipe_changes_first"] = text(fmt_steps(min(st[2:])))
    out["cifar_recipe_changes_last"] = text(fmt_steps(max(st[2:])))
    top = max(range(len(rows)), key=lambda i: rows[i]["best_acc"])
    _claim(top >= 2, "the prose says one of the recipe's changes gives the highest best accuracy, but a baseline does.")
    phrase = {2: "raising the learning rate", 3: "removing dropout", 4: "reducing the weight decay",
              5: "the full recipe, with the faster decay,"}[top]
    out["cifar_recipe_top"] = md(f"{phrase} gives the highest best accuracy ({100 * rows[top]['best_acc']:.1f}%, "
                                 f"target at step {fmt_steps(rows[top]['steps'])})")
    _claim(target < sweep_target, "the prose says the regularized baseline's best is below the sweep's target, "
           "but it is not.")
    _claim(spread[1] < spread[0], "the prose says faster decay ends the jumping of the accuracy, but the last "
           "records vary no less.")
    return out


def ablation_table(rows: list[dict]) -> Table:
    """Table 4: the recipe as an ablation (rows from :func:`ablation`)."""
    return Table(["network", "change", "steps to target", "speed-up", "best acc.", "final acc."],
                 [[r["label"], r["change"] or "(baseline)", fmt_steps(r["steps"]), fmt_ratio(r["speedup"]),
                   fmt_pct(r["best_acc"]), fmt_pct(r["final_acc"])] for r in rows])


def paper_numbers(experiments: dict[str, dict], n_train: int, sweep: str = "cifar_lr_sweep",
                  first: str = "none-x1-seed0") -> dict[str, Glued]:
    """The paper scale's size: ``experiments`` maps names to experiments as dicts (``{"runs": {label:
    config dict}}``); steps and epochs of ``sweep``'s run ``first``, its seeds, and the runs of all."""
    cfg = experiments[sweep]["runs"][first]
    return {
        "cifar_paper_steps": number(cfg["steps"]),
        "cifar_paper_epochs": number(cfg["steps"] * cfg["batch_size"] / n_train),
        "cifar_paper_seeds": number(len({c["seed"] for c in experiments[sweep]["runs"].values()})),
        "cifar_paper_runs": number(sum(len(e["runs"]) for e in experiments.values())),
    }


def exercise_numbers(depth_runs: dict, sweep_runs: dict, base_lr: float, max_depth: int, record_every: int,
                     baseline: str = "none-x1", fast: str = "bn-x5") -> dict[str, Glued]:
    """The exercises' numbers: where the sigmoid saturates, the per-layer gradient factor of the deepest
    network without BN at its first record, and the bounds on ``fast``'s speed-up (:func:`speedup_bounds`)."""
    slope = sigmoid_slope(SATURATION_THRESHOLD)
    ratio0 = gradient_ratio(seed_groups(depth_runs)[f"none-depth{max_depth}"], record=1)
    _, rows = sweep_steps(sweep_runs, base_lr, baseline)
    s_b = _row(rows, baseline, label=baseline)["steps"]
    s_5 = _row(rows, fast, label=fast)["steps"]
    lo, hi = speedup_bounds(s_b, s_5, record_every)
    return {
        "cifar_sat_cosh": number(1 / (2 * math.sqrt(slope))),
        "cifar_ex_layers": number(max_depth - 1),
        "cifar_ex_per_layer": number(per_layer_factor(ratio0, max_depth - 1)),
        "cifar_ex_sb": number(s_b),
        "cifar_ex_s5": number(s_5),
        "cifar_ex_lo": number(lo),
        "cifar_ex_hi": text("unbounded" if hi is None else f"{hi:.3g}"),
    }
