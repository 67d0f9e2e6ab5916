"""Numbers of the CIFAR-10 chapter (book/cifar.ipynb): depth and saturation, the learning-rate sweep at equal
rates, steps to accuracy (the paper's Table 2) and the ablation of the acceleration recipe (Sec. 4.2.1).

The functions take the ``runs`` of an experiment result (labels ``-seedK``) and aggregate over each label's seeds:
a run's accuracy is its final one, BN networks scored with population statistics (:func:`bnlib.results.score`;
a diverged run at chance where it is paired); choices (best rate, target, steps to it) read the validation split;
tables show seed mean ± half-width of the 95% interval; comparisons are paired by seed and read against
:data:`MARGIN`. The ``*_numbers`` functions return what a section's prose glues and raise ValueError when a
claim of that prose no longer holds.
"""

from __future__ import annotations

import math

import numpy as np

from bnlib import results as RS
from bnlib.reports import evidence as EV
from bnlib.reports.evidence import Paired, mean_interval, one_sample
from bnlib.reports.format import Glued, fmt_mean_hw, fmt_paired, md, number, text
from bnlib.reports.rules import CHANCE
from bnlib.results import SATURATION_THRESHOLD, config, curve, final_metric, median_steps, score, seed_groups

#: The chapter's margin for "higher", "lower" and "level" (one percentage point of accuracy): a difference is
#: called higher when its whole paired 95% interval lies above it, level when the interval lies within plus or
#: minus it, inconclusive otherwise.
MARGIN = 0.01
_HLL = ("higher", "lower", "level")
#: "At chance": below this accuracy on every seed (ten classes: 10%, plus the split's sampling noise).
CHANCE_BELOW = 0.12


# --------------------------------------------------------------------------- seeds and scores
def groups(runs: dict) -> dict[str, list[dict]]:
    """Runs grouped by label without its ``-seedK`` suffix (first-seen order), each group in seed order."""
    return {lab: sorted(g, key=lambda r: r["config"].get("seed", 0)) for lab, g in seed_groups(runs).items()}


def acc(run: dict, split: str = "test") -> float:
    """A run's final accuracy on ``split`` as the chapter scores it (population statistics for BN networks; split
    "eval": the test set in eval mode, with running averages), a diverged run at chance."""
    v = final_metric(run, "final_test_acc") if split == "eval" else score(run, split)
    return CHANCE if v is None else float(v)


def best_val(run: dict) -> float:
    """The highest validation accuracy a run recorded (:func:`bnlib.results.val_curve_key`)."""
    return max(v for v in curve(run, RS.val_curve_key(run)) if v is not None)


def fmt_acc(values) -> str:
    """Accuracies over seeds as a table shows them, in percent: "45.12 ± 1.03"."""
    return fmt_mean_hw(*mean_interval(values))


def band(rows, steps) -> dict:
    """Seed mean and min-max band of per-seed curves (one row per seed, one value per record)."""
    a = np.asarray(rows, dtype=float)
    if a.ndim != 2 or not a.size:
        raise ValueError(f"a band needs one curve per seed of equal length, got shape {a.shape}.")
    return {"step": list(steps), "mean": a.mean(0).tolist(), "lo": a.min(0).tolist(), "hi": a.max(0).tolist(),
            "seeds": len(a)}


def _steps(group: list[dict]) -> list:
    return list(curve(group[0], "step"))[:min(len(curve(r, "step")) for r in group)]


def curve_band(group: list[dict], key: str | None = None) -> dict:
    """:func:`band` of one label's accuracy curve ``key`` (default: the validation curve a choice reads) over the
    records every seed has (a diverged seed's missing values at chance)."""
    st = _steps(group)
    rows = [[CHANCE if v is None else v for v in curve(r, key or RS.val_curve_key(r))[:len(st)]] for r in group]
    return band(rows, st)


# --------------------------------------------------------------------------- comparisons
def direction(p: Paired, margin: float = MARGIN) -> str:
    """:func:`bnlib.reports.evidence.direction` against the chapter's :data:`MARGIN` by default."""
    return EV.direction(p, margin)


def phrase(p: Paired, higher: str, lower: str, level: str, undecided: str = "inconclusive",
           margin: float = MARGIN) -> str:
    """A sentence part for ``p`` by :func:`direction`: the matching words, then the interval in parentheses."""
    words = {"higher": higher, "lower": lower, "level": level, "inconclusive": undecided}[direction(p, margin)]
    return f"{words} ({fmt_paired(p)})"


def ratio_interval(values) -> Paired:
    """The geometric mean of positive ratios (one per seed) with its 95% interval, on a log scale."""
    v = [float(x) for x in values]
    if not v or min(v) <= 0:
        raise ValueError("ratios must be a non-empty list of positive numbers.")
    return one_sample([math.log(x) for x in v])


def fmt_ratio_interval(p: Paired | None) -> str:
    """A geometric-mean ratio with its interval: "2.1× [1.6×, 2.8×], 5 seeds" (one seed: no interval; None:
    the baseline itself)."""
    if p is None:
        return "1× (baseline)"
    if p.n == 1 or not math.isfinite(p.lo):
        return f"{math.exp(p.mean):.3g}× (one seed)"
    return f"{math.exp(p.mean):.3g}× [{math.exp(p.lo):.3g}×, {math.exp(p.hi):.3g}×], {p.n} seeds"


def _claim(ok: bool, sentence: str) -> None:
    if not ok:
        raise ValueError(sentence)


# --------------------------------------------------------------------------- one label over its seeds
def run_stats(group: list[dict], target: float | None = None, interpolate: bool = False) -> dict:
    """Seed-aggregated numbers of one label (a list of its seeds' runs).

    ``test``, ``val``, ``eval``: per seed the final test accuracy (population statistics for BN), the final
    validation accuracy and the eval-mode final test accuracy (diverged: chance); ``final_acc``: the mean of
    ``test``, None when a seed diverged; ``diverged`` and ``diverged_at``: how many seeds diverged and the
    earliest step; with ``target``: ``steps_seeds`` (per seed, the first step the validation curve reaches it, a
    seed that never does counting one record after its last), ``steps`` (their median, None when at least half
    never reach it: :func:`bnlib.results.median_steps`) and ``never`` (how many seeds never do); ``interpolate``:
    steps interpolated between the records around the crossing (:func:`bnlib.results.steps_interpolated`)."""
    if not group:
        raise ValueError("a run group must hold at least one seed's result.")
    div = [r["summary"]["diverged_at"] for r in group if r["summary"].get("diverged_at") is not None]
    cfg = group[0]["config"]
    test = [acc(r) for r in group]
    out = {"lr": cfg["lr"], "norm": cfg["norm"], "seeds": len(group), "test": test,
           "val": [acc(r, "val") for r in group], "eval": [acc(r, "eval") for r in group],
           "final_acc": None if div else float(np.mean(test)), "diverged": len(div),
           "diverged_at": min(div) if div else None}
    if target is not None:
        reach = [(RS.steps_interpolated if interpolate else RS.steps_to_reach)(r, target, RS.val_curve_key(r))
                 for r in group]
        out |= {"steps": median_steps(reach), "never": sum(s is None for s in reach),
                "steps_seeds": [RS.steps_or_after(r, target, RS.val_curve_key(r), interpolate) for r in group]}
    return out


def steps_to_accuracy(runs: dict, baseline: str, labels: list[str] | None = None,
                      interpolate: bool = False) -> tuple[float, list[dict]]:
    """The paper's Table 2 on validation: the target is the ``baseline`` label's best validation accuracy (mean
    over seeds of each seed's highest record). Returns ``(target, rows)``, one row per label (all, in order, by
    default) with the keys of :func:`run_stats` plus ``label``, ``baseline`` (whether it is) and ``speedup``
    (:func:`ratio_interval` of the baseline's steps over the row's, per seed); ``interpolate`` as in
    :func:`run_stats`."""
    g = groups(runs)
    labels = list(g) if labels is None else list(labels)
    missing = [lab for lab in [baseline, *labels] if lab not in g]
    if missing:
        raise ValueError(f"no run labelled {missing[0]!r}; the runs are {', '.join(g)}.")
    target = float(np.mean([best_val(r) for r in g[baseline]]))
    base = run_stats(g[baseline], target, interpolate)["steps_seeds"]
    rows = []
    for lab in labels:
        row = {"label": lab, "baseline": lab == baseline, **run_stats(g[lab], target, interpolate)}
        row["speedup"] = ratio_interval([b / s for b, s in zip(base, row["steps_seeds"], strict=True)])
        rows.append(row)
    return target, rows


# --------------------------------------------------------------------------- depth: gradients and layers
def gradient_ratio(group: list[dict], record: int = -1) -> float:
    """How much smaller the loss gradient of the first conv layer is than that of the last one (``depth - 1``),
    at ``record`` (default: the last), as the geometric mean over seeds."""
    return math.exp(float(np.mean([math.log(x) for x in gradient_ratios(group, record)])))


def gradient_ratios(group: list[dict], record: int = -1) -> list[float]:
    """Per seed, the last conv layer's gradient norm over the first's at ``record``."""
    gs = [(curve(run, "grad_norm")[record], run["config"]["depth"]) for run in group]
    if any(g is None for g, _ in gs):
        raise ValueError(f"no gradient norms at record {record} (step 0 has none).")
    return [g[d - 1] / g[0] for g, d in gs]


def gradient_spread(norms: list[float]) -> float:
    """The largest over the smallest of a set of gradient norms (1: all alike)."""
    if not norms or min(norms) <= 0:
        raise ValueError("gradient norms must be a non-empty list of positive numbers.")
    return max(norms) / min(norms)


def layer_bands(group: list[dict], depth: int) -> dict:
    """Per conv layer, :func:`band` of the saturated fraction (from step 0) and of the gradient norm (from the
    first training record), for the layer figure."""
    st = _steps(group)
    sat = np.array([curve(r, "saturated")[:len(st)] for r in group], dtype=float)
    grad = np.array([curve(r, "grad_norm")[1:len(st)] for r in group], dtype=float)
    return {"sat": [band(sat[:, :, i], st) for i in range(depth)],
            "grad": [band(grad[:, :, i], st[1:]) for i in range(depth)]}


# --------------------------------------------------------------------------- steps
def speedup_cell(r: dict, base: dict) -> str:
    """A steps-to-target row's speed-up over the baseline row ``base`` (rows of :func:`steps_to_accuracy`). A seed
    that never reaches the target counts one record after its last, so a network none of whose seeds reach it
    would get the same ratio however slow it is: it shows none. Where only some seeds never reach it the ratio is
    a bound: an upper one when they are the row's (its steps are too few), a lower one when they are the
    baseline's, and no bound when both have such seeds."""
    if r["baseline"]:
        return fmt_ratio_interval(None)
    if r["never"] == r["seeds"]:
        return "– (never reaches it)"
    shown = fmt_ratio_interval(r["speedup"])
    if r["never"] and base["never"]:
        return shown + " (no bound)"
    if r["never"]:
        return shown + " (upper bound)"
    if base["never"]:
        return shown + " (lower bound)"
    return shown


def _steps_cell(r: dict) -> str:
    return ("never" if r["steps"] is None else f"{r['steps']:,.0f}") + (f" ({r['never']} never)" if r["never"] else "")


# --------------------------------------------------------------------------- the ledger's verdicts
#: The claims ledger's rows the chapter's verdict section shows, by key (bnlib.reports.claims decides them).
VERDICT_KEYS = ("higher_lr", "bjorck", "saturating", "accelerates", "recipe")


def verdict_numbers(rows: dict[str, dict]) -> dict[str, Glued]:
    """The verdict section's words from the claims ledger's rows (``{key: row}`` as the functions of
    :mod:`bnlib.reports.claims` return them, computed by the notebook): per row its rule (``cifar_rule_<key>``),
    what it measured (``cifar_measured_<key>``), its verdict (``cifar_verdict_<key>``) and those of its parts in
    order (``cifar_parts_<key>``: "(a) supported, (b) not supported"); of "accelerates", its
    CIFAR-10 parts (``cifar_acc_<bn|recipe>`` and ``cifar_acc_<...>_verdict``)."""
    missing = [k for k in VERDICT_KEYS if k not in rows]
    if missing:
        raise ValueError(f"the verdict section needs the ledger's rows {', '.join(missing)}.")
    out: dict[str, Glued] = {}
    for key in (k for k in VERDICT_KEYS if k != "accelerates"):  # its MNIST part belongs to the ledger
        r = rows[key]
        out |= {f"cifar_rule_{key}": md(r["rule"]), f"cifar_measured_{key}": md(r["measured"]),
                f"cifar_verdict_{key}": text(r["verdict"]), f"cifar_parts_{key}": text(", ".join(
                    f"({chr(97 + i)}) {p['verdict']}" for i, p in enumerate(r["parts"])))}
    parts = {p["name"]: p for p in rows["accelerates"]["parts"]}
    for short, name in (("bn", "CIFAR-10, BN"), ("recipe", "CIFAR-10, recipe")):
        p = next((v for k, v in parts.items() if k.endswith(name)), None)
        if p is None:
            raise ValueError(f"the ledger's 'accelerates' row has no part for {name}.")
        out[f"cifar_acc_{short}"] = md(fmt_ratio_interval(Paired(p["n"], p["mean"], p["lo"], p["hi"], ())))
        out[f"cifar_acc_{short}_verdict"] = text(p["verdict"])
    out["cifar_acc_margin"] = number(rows["accelerates"]["margins"]["speedup"])
    return out


# --------------------------------------------------------------------------- setup, paper scale, exercises
def sigmoid_slope(x: float) -> float:
    """sigmoid'(x) = s(1 - s): the factor by which the backward pass scales a gradient at input ``x``."""
    s = 1 / (1 + math.exp(-x))
    return s * (1 - s)


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


#: The configuration fields that make a setting: the sweep's (the chapter's base) and the first setting's.
SETTING_FIELDS = ("steps", "train_subset", "record_every", "calibration", "validation", "batch_size")


def setup_numbers(base: dict, depths: tuple[int, ...], multipliers: tuple[float, ...], n_train: int, n_test: int,
                  results: dict[str, dict]) -> dict[str, Glued]:
    """The overview's and the setup section's numbers: ``base`` is the chapter's setting as a dict (keys
    ``cifar_*``); ``results`` maps ``"sweep"``, ``"depth"`` and ``"recipe"`` to their ``runs``, which must all be in
    that setting (:data:`SETTING_FIELDS`; the depth runs may record less often, as the prose says) and repeated over
    the same seeds."""
    for name, runs in results.items():
        for lab, r in runs.items():
            c = config(r)
            odd = [k for k in SETTING_FIELDS if c.get(k) != base[k] and not (name == "depth" and k == "record_every")]
            if odd:
                raise ValueError(f"the chapter says every run uses its one setting, but the {name} run {lab} differs "
                                 f"in {', '.join(odd)}.")
    seeds = {tuple(sorted(r["config"].get("seed", 0) for r in g)) for runs in results.values()
             for g in groups(runs).values()}
    if len(seeds) != 1:
        raise ValueError("the chapter says every run is repeated over the same seeds, but they differ.")
    slope = sigmoid_slope(SATURATION_THRESHOLD)
    fields = {"steps": "steps", "nval": "validation", "ncalib": "calibration", "ntest_curve": "test_subset",
              "record_every": "record_every", "batch": "batch_size", "lr": "lr", "momentum": "momentum",
              "width": "width", "probe": "probe_batch", "sweep_depth": "depth"}
    out = {f"cifar_{k}": number(base[f]) for k, f in fields.items()}
    n_fit = base["train_subset"] or n_train - base["validation"]
    out |= {"cifar_nfit": number(n_fit), "cifar_epochs": number(base["steps"] * base["batch_size"] / n_fit),
            "cifar_depth_record_every": number(config(next(iter(results["depth"].values())))["record_every"])}
    return out | {
        "cifar_seeds": number(len(next(iter(seeds)))),
        "cifar_ntrain": number(n_train),
        "cifar_nfit_all": number(n_train - base["validation"]),
        "cifar_ntest": number(n_test),
        "cifar_margin": number(100 * MARGIN, 2),
        "cifar_chance_below": number(100 * CHANCE_BELOW, 2),
        "cifar_depth_list": text(", ".join(map(str, depths[:-1])) + f" and {depths[-1]}"),
        "cifar_depth_max": number(max(depths)),
        "cifar_depth_min": number(min(depths)),
        "cifar_n_rates": number(len(multipliers)),
        "cifar_mult_min": text(f"{min(multipliers):.3g}"),
        "cifar_mult_max": text(f"{max(multipliers):g}"),
        "cifar_sat_threshold": number(SATURATION_THRESHOLD),
        "cifar_sat_level": number(round(slope, 12)),
        "cifar_mult_list": text(", ".join(f"{k:.3g}" for k in multipliers)),
    }


def paper_numbers(experiments: dict[str, dict], n_train: int, sweep: str = "cifar_lr_sweep",
                  first: str = "none-x1-seed0") -> dict[str, Glued]:
    """The paper scale's size: ``experiments`` maps names to experiments as dicts (``{"runs": {label:
    config dict}}``); steps and epochs of ``sweep``'s run ``first``, its seeds, and the runs of all."""
    cfg = experiments[sweep]["runs"][first]
    return {
        "cifar_paper_steps": number(cfg["steps"]),
        "cifar_paper_epochs": number(cfg["steps"] * cfg["batch_size"] / (n_train - cfg.get("validation", 0))),
        "cifar_paper_seeds": number(len({c["seed"] for c in experiments[sweep]["runs"].values()})),
        "cifar_paper_runs": number(sum(len(e["runs"]) for e in experiments.values())),
    }
