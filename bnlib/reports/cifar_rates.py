"""Numbers of the CIFAR-10 chapter's learning-rate sections (book/cifar.ipynb): the sweep (each network's usable
range of rates, how it fails outside it, its best rate, BN against no BN at equal rates) and steps to accuracy in
the format of the paper's Table 2, against the network without BN at its own best rate, with steps interpolated
between records.

Rows come from :func:`bnlib.reports.cifar.run_stats` (seed-aggregated; choices read the validation split; BN scored
with population statistics); the ``*_numbers`` functions return what a section's prose glues, its words computed
from the numbers.
"""

from __future__ import annotations

import math

import numpy as np

from bnlib import results as RS
from bnlib.reports.cifar import (
    _HLL,
    CHANCE_BELOW,
    _steps_cell,
    best_val,
    curve_band,
    direction,
    fmt_acc,
    fmt_ratio_interval,
    gradient_ratio,
    groups,
    per_layer_factor,
    phrase,
    ratio_interval,
    run_stats,
    sigmoid_slope,
    speedup_bounds,
    speedup_cell,
    steps_to_accuracy,
)
from bnlib.reports.evidence import mean_interval, paired
from bnlib.reports.format import Glued, Table, fmt_paired, md, number, percent, text
from bnlib.results import SATURATION_THRESHOLD, curve, median_steps

#: A rate is *usable* for a network when its mean final validation accuracy is within this much (5 points) of that
#: at the network's best rate. Fixed before the ten-epoch sweep was run.
USABLE_WITHIN = 0.05
#: A seed-mean validation curve is *still rising* when its last record is above the one before by more than this.
RISING = 0.005


# --------------------------------------------------------------------------- the sweep's rows
def sweep_name(norm: str | None, multiplier: float) -> str:
    """The paper's way of naming a run by its learning rate: ``"BN-x5"``, ``"no BN-x1"``."""
    return f"{'BN' if norm else 'no BN'}-x{multiplier:.3g}"


def lr_sweep(runs: dict, base_lr: float) -> list[dict]:
    """One row per label of a learning-rate sweep: :func:`run_stats` plus ``label`` and ``multiplier`` (the
    run's learning rate over ``base_lr``, to 6 significant digits), sorted by normalization (none first) and
    then multiplier."""
    if not base_lr > 0:
        raise ValueError(f"base_lr must be positive, got {base_lr}.")
    rows = [{"label": lab, **run_stats(g), "multiplier": float(f"{g[0]['config']['lr'] / base_lr:.6g}")}
            for lab, g in groups(runs).items()]
    return sorted(rows, key=lambda r: (r["norm"] is not None, str(r["norm"]), r["multiplier"]))


def best_multiplier(rows: list[dict], bn: bool) -> dict:
    """The row of the best rate of one network (``bn``: with BN) of :func:`lr_sweep`, chosen on the mean final
    validation accuracy over seeds (the rule of the claims ledger's :func:`bnlib.reports.claims.best_rates`)."""
    mine = [r for r in rows if bool(r["norm"]) == bn]
    if not mine:
        raise ValueError(f"the sweep has no runs {'with' if bn else 'without'} BN.")
    return max(mine, key=lambda r: np.mean(r["val"]))


def equal_rates(rows: list[dict]) -> list[dict]:
    """At every multiplier both networks ran: ``multiplier``, ``none`` and ``bn`` (their rows) and ``p``, BN minus
    no BN in final test accuracy, paired by seed."""
    none = {r["multiplier"]: r for r in rows if not r["norm"]}
    return [{"multiplier": r["multiplier"], "none": none[r["multiplier"]], "bn": r,
             "p": paired(r["test"], none[r["multiplier"]]["test"])}
            for r in rows if r["norm"] and r["multiplier"] in none]


def usable_range(rows: list[dict], bn: bool, within: float = USABLE_WITHIN) -> tuple[float, float]:
    """The lowest and highest multiplier of the unbroken run of rates around one network's best rate at which its
    mean final validation accuracy is within ``within`` of the best's."""
    mine = [r for r in rows if bool(r["norm"]) == bn]
    best = best_multiplier(rows, bn)
    i = mine.index(best)
    ok = [np.mean(r["val"]) >= np.mean(best["val"]) - within for r in mine]
    lo, hi = i, i
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(mine) - 1 and ok[hi + 1]:
        hi += 1
    return mine[lo]["multiplier"], mine[hi]["multiplier"]


def failure(row: dict, group: list[dict], best: dict) -> str:
    """How a rate fails, in words: it diverges (on how many seeds, from which step), stays at chance, is still
    rising when training stops, or levels off lower (points below the best rate's mean validation accuracy)."""
    if row["diverged"]:
        return f"diverges on {row['diverged']} of {row['seeds']} seeds (from step {row['diverged_at']:,})"
    if max(row["val"]) < CHANCE_BELOW:
        return "stays at chance"
    short = 100 * (np.mean(best["val"]) - np.mean(row["val"]))
    b = curve_band(group)["mean"]
    return (f"is still rising when training stops, {short:.1f} points short" if len(b) > 1 and b[-1] - b[-2] > RISING
            else f"levels off {short:.1f} points lower")


def failures(runs: dict, rows: list[dict], bn: bool) -> dict[str, str]:
    """Below and above a network's usable range (:func:`usable_range`): each rate outside it with
    :func:`failure`'s words, as one text per side ("" when no rate of the grid lies there)."""
    lo, hi = usable_range(rows, bn)
    g, best = groups(runs), best_multiplier(rows, bn)
    mine = [r for r in rows if bool(r["norm"]) == bn]
    words = {side: "; ".join(f"at x{r['multiplier']:.3g} it {failure(r, g[r['label']], best)}" for r in mine
                             if (r["multiplier"] < lo if side == "below" else r["multiplier"] > hi))
             for side in ("below", "above")}
    return words


def lr_table(rows: list[dict]) -> Table:
    """Table 2: per multiplier, each network's final validation and test accuracy (seed mean ± half-width, in %)
    and BN minus no BN in test accuracy at that rate, paired by seed; a diverged seed is marked."""
    def cell(r, key):
        s = fmt_acc(r[key])
        return s + (f" ({r['diverged']} diverged)" if r["diverged"] else "")

    return Table(["multiplier", "learning rate", "no BN: val.", "no BN: test", "BN: val.", "BN: test",
                  "BN - no BN (test)"],
                 [[f"x{e['multiplier']:.3g}", f"{e['bn']['lr']:.3g}", cell(e["none"], "val"), cell(e["none"], "test"),
                   cell(e["bn"], "val"), cell(e["bn"], "test"), fmt_paired(e["p"])] for e in equal_rates(rows)])


def lr_bands(runs: dict, base_lr: float, show: tuple[float, ...]) -> dict:
    """For the sweep figure: ``rates`` (per network ``"none"``/``"bn"``: multipliers and the final test accuracy's
    seed mean and min-max, and the multipliers with a diverged seed) and ``curves`` (per network and multiplier
    in ``show``, the validation accuracy band)."""
    rows = lr_sweep(runs, base_lr)
    g = groups(runs)
    out: dict = {"rates": {}, "curves": {}}
    for key, bn in (("none", False), ("bn", True)):
        mine = [r for r in rows if bool(r["norm"]) == bn]
        out["rates"][key] = {"multiplier": [r["multiplier"] for r in mine],
                             "mean": [float(np.mean(r["test"])) for r in mine],
                             "lo": [min(r["test"]) for r in mine], "hi": [max(r["test"]) for r in mine],
                             "diverged": [r["multiplier"] for r in mine if r["diverged"]]}
        out["curves"][key] = {k: curve_band(g[r["label"]]) for k in show for r in mine if r["multiplier"] == k}
    return out


def _diverged_words(rows: list[dict]) -> str:
    div = [r for r in rows if r["diverged"]]
    n = sum(r["seeds"] for r in rows)
    if not div:
        return f"None of the {n:,} runs diverged: the loss stayed finite at every step of every run"
    return (f"{sum(r['diverged'] for r in div)} of the {n:,} runs diverged (their loss became NaN or infinite): "
            + "; ".join(f"{sweep_name(r['norm'], r['multiplier'])} on {r['diverged']} of {r['seeds']} seeds"
                        for r in div))


def lr_numbers(runs: dict, base_lr: float) -> dict[str, Glued]:
    """The learning-rate section's numbers: what diverged, each network's usable range (:func:`usable_range`) and
    how it fails outside it (:func:`failures`), its best rate on validation, and BN minus no BN at equal rates
    (the smallest and largest advantage, and the rates at which it is not higher)."""
    rows, g = lr_sweep(runs, base_lr), groups(runs)
    best = {bn: best_multiplier(rows, bn) for bn in (False, True)}
    at = {(bool(r["norm"]), r["multiplier"]): r for r in rows}
    if (False, 1) not in at or (False, 5) not in at:
        raise ValueError("the sweep needs the network without BN at 1x and 5x the baseline rate.")
    out: dict[str, Glued] = {
        "cifar_n_runs_sweep": number(sum(r["seeds"] for r in rows)),
        "cifar_n_labels_sweep": number(len(rows)),
        "cifar_usable_within": number(100 * USABLE_WITHIN, 2),
        "cifar_sweep_diverged": text(_diverged_words(rows)),
        "cifar_paper_divergence": text(
            "as in the paper, the network without BN diverges at high rates" if any(
                r["diverged"] for r in rows if not r["norm"]) else
            "no run without BN diverged, so the paper's observation that Inception without BN sent its parameters "
            "to infinity at high rates is not reproduced here"),
        "cifar_none_x5_vs_x1": md(phrase(paired(at[(False, 5)]["test"], at[(False, 1)]["test"]), *_HLL)),
    }
    for key, bn in (("none", False), ("bn", True)):
        lo, hi = usable_range(rows, bn)
        f = failures(runs, rows, bn)
        b = best[bn]
        out |= {
            f"cifar_{key}_usable_lo": text(f"{lo:.3g}"), f"cifar_{key}_usable_hi": text(f"{hi:.3g}"),
            f"cifar_{key}_fails_below": text(f["below"] or "none of the grid's rates"),
            f"cifar_{key}_fails_above": text(f["above"] or "none of the grid's rates"),
            f"cifar_best_{key}_mult": text(f"{b['multiplier']:g}"),
            f"cifar_best_{key}_val": percent(np.mean(b["val"])),
            f"cifar_best_{key}_test": percent(np.mean(b["test"])),
        }
    out["cifar_best_none_vs_x1"] = md(phrase(paired(best[False]["test"], at[(False, 1)]["test"]), *_HLL))
    out["cifar_best_order"] = text("above" if best[True]["multiplier"] > best[False]["multiplier"] else "the same as"
                                   if best[True]["multiplier"] == best[False]["multiplier"] else "below")
    top = max(rows, key=lambda r: r["multiplier"])["multiplier"]
    out["cifar_none_xmax_top"] = percent(max(best_val(r) for r in g[at[(False, top)]["label"]]))
    out["cifar_none_xmax_loss"] = number(float(np.mean([curve(r, "train_loss")[-1] for r in g[at[(False, top)]["label"]]
                                                        if r["summary"].get("diverged_at") is None] or [math.nan])))
    out["cifar_bn_xmax_test"] = percent(np.mean(at[(True, top)]["test"]))
    out["cifar_bn_xmax_hw"] = percent(mean_interval(at[(True, top)]["test"])[1], 2)
    eq = equal_rates(rows)
    means = [e["p"].mean for e in eq]
    not_higher = [e for e in eq if direction(e["p"]) != "higher"]
    out |= {
        "cifar_eq_min": number(100 * min(means), 1),
        "cifar_eq_max": number(100 * max(means), 1),
        "cifar_eq_min_mult": text(f"{eq[int(np.argmin(means))]['multiplier']:.3g}"),
        "cifar_eq_max_mult": text(f"{eq[int(np.argmax(means))]['multiplier']:.3g}"),
        "cifar_eq_at_best_none": md(fmt_paired(next(e["p"] for e in eq
                                                    if e["multiplier"] == best[False]["multiplier"]))),
        "cifar_eq_exceptions": md(f"at all {len(eq)} rates" if not not_higher else "at every rate but " + ", ".join(
            f"x{e['multiplier']:.3g} ({direction(e['p'])}: {fmt_paired(e['p'])})" for e in not_higher)),
    }
    return out


# --------------------------------------------------------------------------- steps to the baseline's accuracy
def sweep_baseline(runs: dict, base_lr: float) -> str:
    """The label of Table 3's baseline: the network without BN at its best rate on validation."""
    return best_multiplier(lr_sweep(runs, base_lr), False)["label"]


def sweep_steps(runs: dict, base_lr: float) -> tuple[float, list[dict]]:
    """Table 3: :func:`bnlib.reports.cifar.steps_to_accuracy` with steps interpolated between records, the baseline
    (:func:`sweep_baseline`) first, then no BN at the baseline rate and BN at every rate from the baseline's up."""
    rows = lr_sweep(runs, base_lr)
    baseline = sweep_baseline(runs, base_lr)
    labels = [baseline] + [r["label"] for r in rows if r["label"] != baseline and r["multiplier"] >= 1
                           and (r["norm"] or r["multiplier"] == 1)]
    return steps_to_accuracy(runs, baseline=baseline, labels=labels, interpolate=True)


def steps_table(rows: list[dict], base_lr: float) -> Table:
    """Table 3 in the format of the paper's Table 2 (rows from :func:`sweep_steps`)."""
    base = next(r for r in rows if r["baseline"])
    return Table(["model", "learning rate", "steps to target (median)", "speed-up", "test acc. (%)"],
                 [[sweep_name(r["norm"], r["lr"] / base_lr) + (" (baseline)" if r["baseline"] else ""),
                   f"{r['lr']:.3g}", _steps_cell(r), speedup_cell(r, base),
                   fmt_acc(r["test"])] for r in rows])


def steps_numbers(runs: dict, base_lr: float, last_step: int, record_every: int) -> dict[str, Glued]:
    """The steps section's numbers (:func:`sweep_steps`): the baseline and its target, how late it gets there,
    the BN networks' speed-ups (which are above 1 by their interval), the fastest BN rate, BN-x1 against BN-x5;
    ``last_step``: the runs' length, ``record_every``: the records' spacing."""
    target, rows = sweep_steps(runs, base_lr)
    by = {r["label"]: r for r in rows}
    base = rows[0]
    bn = [r for r in rows if r["norm"] is not None]
    if "bn-x1" not in by or "bn-x5" not in by:
        raise ValueError("the sweep needs BN-x1 and BN-x5.")
    faster = [r for r in bn if r["speedup"].lo > 0]
    slower = [r for r in bn if r["speedup"].hi < 0]
    x1_x5 = ratio_interval([a / b for a, b in zip(by["bn-x1"]["steps_seeds"], by["bn-x5"]["steps_seeds"],
                                                  strict=True)])
    fastest = min(bn, key=lambda r: median_steps(r["steps_seeds"]))
    speeds = [math.exp(r["speedup"].mean) for r in bn]
    name = lambda r: sweep_name(r["norm"], r["lr"] / base_lr)  # noqa: E731
    return {
        "cifar_target": percent(target),
        "cifar_baseline_name": text(name(base)),
        "cifar_base_steps": text(_steps_cell(base)),
        "cifar_base_late": number(sum(s > last_step - record_every for s in base["steps_seeds"])),
        "cifar_speedup_bn_min": number(min(speeds)),
        "cifar_speedup_bn_max": number(max(speeds)),
        "cifar_bn_faster": text(f"all {len(bn)}" if len(faster) == len(bn) else
                                f"{len(faster)} of the {len(bn)}"),
        "cifar_bn_not_faster": text("" if len(faster) == len(bn) else " (not " + ", ".join(
            name(r) + (": never reaches the target" if r["never"] == r["seeds"] else ": slower" if r in slower
                       else ": inconclusive") for r in bn if r not in faster) + ")"),
        "cifar_fastest_bn": text(name(fastest)),
        "cifar_fastest_bn_speedup": md(fmt_ratio_interval(fastest["speedup"])),
        "cifar_bn_x5_speedup": md(fmt_ratio_interval(by["bn-x5"]["speedup"])),
        "cifar_steps_bn_x1": text(_steps_cell(by["bn-x1"])),
        "cifar_steps_bn_x5": text(_steps_cell(by["bn-x5"])),
        "cifar_x5_vs_x1": md(fmt_ratio_interval(x1_x5)),
        "cifar_x5_sentence": text("the five times higher learning rate adds to BN's own gain" if x1_x5.lo > 0 else
                                  "the five times higher learning rate makes BN slower" if x1_x5.hi < 0 else
                                  "whether the five times higher learning rate adds to BN's own gain is inconclusive"),
        "cifar_last_step": number(last_step),
    }


# --------------------------------------------------------------------------- exercises
def exercise_numbers(depth_runs: dict, sweep_runs: dict, base_lr: float, max_depth: int, record_every: int,
                     fast: str = "bn-x5") -> dict[str, Glued]:
    """The exercises' numbers: where the sigmoid saturates, the per-layer gradient factor of the deepest network
    without BN (at the baseline's rate) at its first record, and the bounds on ``fast``'s speed-up over Table 3's
    baseline (:func:`bnlib.reports.cifar.speedup_bounds`) at the median over seeds of the recorded steps to its target
    (the first record at or above it; a seed that never reaches it: one record after its last)."""
    slope = sigmoid_slope(SATURATION_THRESHOLD)
    ratio0 = gradient_ratio(groups(depth_runs)[f"none-x1-depth{max_depth}"], record=1)
    target, _ = sweep_steps(sweep_runs, base_lr)
    g = groups(sweep_runs)
    s_b, s_5 = (median_steps([RS.steps_or_after(r, target, RS.val_curve_key(r)) for r in g[lab]])
                for lab in (sweep_baseline(sweep_runs, base_lr), fast))
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
