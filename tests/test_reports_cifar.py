"""The CIFAR-10 chapter's numbers (bnlib.reports.cifar) on tiny hand-built seeded results whose answers are computed
here directly: intervals with scipy's t distribution, targets and steps by hand. The test-set curves and the
"best test accuracy" of every hand-built run are set to a misleading 0.99, so that a choice read off the test set
instead of the validation split shows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from bnlib import results as RR
from bnlib.plots import cifar as PC
from bnlib.reports import cifar as RC
from bnlib.reports import cifar_depth as RD
from bnlib.reports import cifar_rates as RCR
from bnlib.reports import claims as RL
from bnlib.reports import evidence as RE
from bnlib.reports import format as RF

STEPS = [0, 100, 200, 300, 400]
SEEDS = range(5)


def _run(val, norm=None, test=None, ev=None, seed=0, lr=0.1, diverged_at=None, depth=3, saturated=None, grad=None,
         train_loss=2.0, bs=None, **cfg):
    """A run shaped like bnlib.train's: ``val`` is its validation curve (population statistics for BN) at STEPS,
    ``test`` its final test accuracy (population statistics for BN; default: the last ``val``), ``ev`` a BN
    network's eval-mode final test accuracy (default: ``test``)."""
    n = len(val)
    test = val[-1] if test is None else test
    ev = test if ev is None else ev
    config = {"lr": lr, "norm": norm, "dropout": 0.0, "weight_decay": 0.0, "lr_decay": 1.0, "lr_decay_every": 0,
              "seed": seed, "depth": depth, "train_subset": 0, "validation": 500, **cfg}
    curves = {"step": STEPS[:n], "val_acc_pop": list(val), "val_acc": [v - 0.05 if norm else v for v in val],
              "test_acc": [0.99] * n, "test_acc_pop": [0.99] * n, "train_loss": [None] + [train_loss] * (n - 1),
              "saturated": saturated if saturated is not None else [[0.0] * depth] * n,
              "grad_norm": grad if grad is not None else [None] + [[1.0] * (depth + 1)] * (n - 1)}
    summary = {"diverged_at": diverged_at, "steps_done": STEPS[n - 1], "best_test_acc": 0.99,
               "final_test_acc": None if diverged_at else (ev if norm else test),
               "final_test_acc_pop": None if diverged_at else test, "final_val_acc": val[-1] - (0.05 if norm else 0),
               "final_val_acc_pop": None if diverged_at else val[-1], "final_test_acc_batchstats": bs}
    return {"config": config, "curves": curves, "summary": summary}


def _seeded(labels: dict) -> dict:
    """``{label: [kwargs of _run per seed]}`` -> runs labelled ``label-seedK``."""
    return {f"{lab}-seed{s}": _run(**kw, seed=s) for lab, per in labels.items() for s, kw in enumerate(per)}


def _t_interval(x):
    """Mean and 95% t interval of ``x``, by the formula."""
    x = np.asarray(x, dtype=float)
    hw = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean(), x.mean() - hw, x.mean() + hw


# --------------------------------------------------------------------------- scores and intervals
def test_run_stats_scores_bn_with_population_statistics_and_a_diverged_seed_at_chance():
    group = [_run([0.1, 0.4], norm="torch", test=0.5, ev=0.3, seed=0),
             _run([0.1, 0.45], norm="torch", test=0.55, ev=0.2, seed=1),
             _run([0.1, 0.2], norm="torch", diverged_at=150, seed=2)]
    s = RC.run_stats(group)
    assert s["test"] == [0.5, 0.55, 0.1] and s["eval"] == [0.3, 0.2, 0.1] and s["val"] == [0.4, 0.45, 0.1]
    assert s["final_acc"] is None and s["diverged"] == 1 and s["diverged_at"] == 150 and s["seeds"] == 3
    with pytest.raises(ValueError, match="at least one"):
        RC.run_stats([])


def test_groups_put_seeds_in_seed_order():
    runs = {"a-seed1": _run([0.1, 0.3], seed=1), "a-seed0": _run([0.1, 0.2], seed=0)}
    assert [r["config"]["seed"] for r in RC.groups(runs)["a"]] == [0, 1]


def test_fmt_acc_is_the_mean_and_t_half_width():
    x = [0.41, 0.44, 0.43, 0.40, 0.47]
    m, lo, hi = _t_interval(x)
    assert RC.fmt_acc(x) == f"{100 * m:.2f} ± {100 * (hi - m):.2f}"
    assert RC.fmt_acc([0.4] * 5) == "40.00"


@pytest.mark.parametrize("diffs, word", [
    ([0.05, 0.06, 0.055, 0.052, 0.058], "higher"),
    ([-0.05, -0.06, -0.055, -0.052, -0.058], "lower"),
    ([0.001, -0.002, 0.0, 0.002, -0.001], "level"),
    ([0.03, -0.02, 0.01, 0.04, -0.01], "inconclusive"),
])
def test_direction_reads_the_interval_against_the_margin(diffs, word):
    p = RE.paired(np.array(diffs) + 0.5, [0.5] * 5)
    m, lo, hi = _t_interval(diffs)
    assert (p.lo, p.hi) == pytest.approx((lo, hi))
    assert RC.direction(p) == word
    assert RC.phrase(p, "up", "down", "same", "unsure").startswith(
        {"higher": "up (", "lower": "down (", "level": "same (", "inconclusive": "unsure ("}[word])
    # four seeds are never enough for a word
    assert RC.direction(RE.paired(np.array(diffs[:4]) + 0.5, [0.5] * 4)) == "inconclusive"


def test_ratio_interval_is_a_t_interval_on_the_log_scale():
    r = [2.0, 3.0, 2.5, 4.0, 2.0]
    m, lo, hi = _t_interval(np.log(r))
    p = RC.ratio_interval(r)
    assert (p.mean, p.lo, p.hi) == pytest.approx((m, lo, hi))
    assert RC.fmt_ratio_interval(p) == f"{math.exp(m):.3g}× [{math.exp(lo):.3g}×, {math.exp(hi):.3g}×], 5 seeds"
    assert RC.fmt_ratio_interval(None) == "1× (baseline)"
    with pytest.raises(ValueError, match="positive"):
        RC.ratio_interval([1.0, 0.0])


# --------------------------------------------------------------------------- steps to accuracy, on validation
def _steps_runs():
    """Baseline best validation accuracies 0.5, 0.6, 0.55, 0.5, 0.6 (target 0.55); per seed it reaches 0.55 at
    never, 300, 400, never, 300; the BN network at 100, 200, 100, 200, 100."""
    base = [[0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.6, 0.6], [0.1, 0.2, 0.3, 0.4, 0.55],
            [0.1, 0.3, 0.5, 0.45, 0.4], [0.1, 0.2, 0.4, 0.6, 0.5]]
    bn = [[0.1, 0.6, 0.6, 0.7, 0.7], [0.1, 0.5, 0.56, 0.6, 0.6], [0.1, 0.55, 0.6, 0.6, 0.6],
          [0.1, 0.3, 0.58, 0.6, 0.6], [0.1, 0.7, 0.6, 0.6, 0.6]]
    return _seeded({"base": [{"val": v} for v in base], "bn": [{"val": v, "norm": "torch"} for v in bn]})


def test_steps_to_accuracy_reads_the_validation_curves():
    target, rows = RC.steps_to_accuracy(_steps_runs(), baseline="base")
    assert target == pytest.approx(np.mean([0.5, 0.6, 0.55, 0.5, 0.6]))
    base, bn = rows
    assert base["baseline"] and not bn["baseline"]
    assert base["steps_seeds"] == [500, 300, 400, 500, 300] and base["never"] == 2 and base["steps"] == 400
    assert bn["steps_seeds"] == [100, 200, 100, 200, 100] and bn["steps"] == 100 and bn["never"] == 0
    m, lo, hi = _t_interval(np.log([5, 1.5, 4, 2.5, 3]))
    assert (bn["speedup"].mean, bn["speedup"].lo, bn["speedup"].hi) == pytest.approx((m, lo, hi))
    with pytest.raises(ValueError, match="no run labelled 'x'"):
        RC.steps_to_accuracy(_steps_runs(), baseline="x")


def test_median_steps():
    assert RR.median_steps([100, None, 300]) == 300
    assert RR.median_steps([100, None, None]) is None
    assert RR.median_steps([300, 100]) == 300


# --------------------------------------------------------------------------- learning rates
MULTS = (1 / 3, 1, 2, 5, 10, 30)
#: per network and multiplier: final validation accuracy (seed 0; seed s adds s / 1000) and final test accuracy
NONE_VAL = (0.25, 0.30, 0.35, 0.40, 0.38, 0.10)  # best on validation at x5
NONE_TEST = (0.26, 0.31, 0.34, 0.37, 0.41, 0.10)  # best on test at x10: not the choice
BN_VAL = (0.45, 0.50, 0.52, 0.51, 0.48, 0.44)  # best on validation at x2
BN_TEST = (0.46, 0.49, 0.50, 0.53, 0.47, 0.45)


def _sweep(none_val=NONE_VAL, none_test=NONE_TEST, bn_val=BN_VAL, bn_test=BN_TEST, spread=(0.0, 0.004, -0.003,
           0.006, -0.002), diverged=()):
    labels = {}
    for norm, vals, tests in ((None, none_val, none_test), ("torch", bn_val, bn_test)):
        for k, v, t in zip(MULTS, vals, tests, strict=True):
            lab = f"{'bn' if norm else 'none'}-x{k:.3g}"
            labels[lab] = [{"val": [0.1, 0.1 + (v - 0.1) * 0.8, v + d], "test": t + 2 * d, "norm": norm, "lr": 0.1 * k,
                            "diverged_at": 50 if (lab, s) in diverged else None} for s, d in enumerate(spread)]
    return _seeded(labels)


def test_lr_sweep_rows_and_multipliers():
    rows = RCR.lr_sweep(_sweep(), base_lr=0.1)
    assert [r["multiplier"] for r in rows] == [0.333333, 1, 2, 5, 10, 30] * 2
    assert [r["norm"] for r in rows] == [None] * 6 + ["torch"] * 6
    with pytest.raises(ValueError, match="base_lr must be positive"):
        RCR.lr_sweep(_sweep(), base_lr=0)


def test_best_rate_is_chosen_on_validation_as_the_ledger_chooses_it():
    runs = _sweep()
    rows = RCR.lr_sweep(runs, 0.1)
    assert RCR.best_multiplier(rows, False)["multiplier"] == 5  # not 10, where the test accuracy is highest
    assert RCR.best_multiplier(rows, True)["multiplier"] == 2
    assert RL.best_rates({"name": "cifar_lr_sweep", "runs": runs}, 0.1) == {False: 5, True: 2}


def test_equal_rates_pair_bn_with_no_bn_at_each_rate():
    eq = RCR.equal_rates(RCR.lr_sweep(_sweep(), 0.1))
    assert [e["multiplier"] for e in eq] == [0.333333, 1, 2, 5, 10, 30]
    at5 = eq[3]["p"]
    # the same seed's spread is added to both networks: the per-seed differences are all equal
    assert at5.diffs == pytest.approx([BN_TEST[3] - NONE_TEST[3]] * 5) and at5.lo == pytest.approx(at5.hi)
    # unpaired, the seeds' spread would widen the interval; paired, a per-seed offset of BN shows as it is
    runs = _sweep()
    offs = [0.01, 0.03, 0.02, 0.0, 0.04]
    for s, o in enumerate(offs):
        runs[f"bn-x5-seed{s}"]["summary"]["final_test_acc_pop"] += o
    m, lo, hi = _t_interval(np.add(offs, BN_TEST[3] - NONE_TEST[3]))
    p = RCR.equal_rates(RCR.lr_sweep(runs, 0.1))[3]["p"]
    assert (p.mean, p.lo, p.hi) == pytest.approx((m, lo, hi))


def test_lr_table_cells():
    runs = _sweep(diverged={("none-x30", 4)})
    cells = RCR.lr_table(RCR.lr_sweep(runs, 0.1)).cells()
    none_val = [NONE_VAL[1] + d for d in (0.0, 0.004, -0.003, 0.006, -0.002)]
    m, lo, hi = _t_interval(none_val)
    assert cells[1][:3] == ["x1", "0.1", f"{100 * m:.2f} ± {100 * (hi - m):.2f}"]
    assert cells[5][2].endswith("(1 diverged)") and cells[5][0] == "x30"
    assert cells[3][6] == RF.fmt_paired(RE.paired([BN_TEST[3]] * 5, [NONE_TEST[3]] * 5))


def test_usable_range_and_how_a_rate_fails_outside_it():
    rows = RCR.lr_sweep(_sweep(), 0.1)
    # seed means: no BN 0.251, 0.301, 0.351, 0.401 (best), 0.381, 0.101; BN 0.451, 0.501, 0.521 (best), 0.511, 0.481
    assert RCR.usable_range(rows, False, within=0.03) == (5, 10)
    assert RCR.usable_range(rows, True, within=0.03) == (1, 5)
    assert RCR.usable_range(rows, True, within=0.2) == (0.333333, 30)
    g = RC.groups(_sweep())
    by = {r["label"]: r for r in rows}
    best = by["none-x5"]
    assert RCR.failure(by["none-x30"], g["none-x30"], best) == "stays at chance"
    # the seed-mean curve 0.1, 0.22, 0.251 still rises by more than RISING at the end
    assert RCR.failure(by["none-x0.333"], g["none-x0.333"], best) == "is still rising when training stops, 15.0 " \
                                                                       "points short"
    flat = _sweep(none_val=(0.25, 0.30, 0.35, 0.40, 0.38, 0.10))
    for s in range(5):
        flat[f"none-x10-seed{s}"]["curves"]["val_acc_pop"][1] = flat[f"none-x10-seed{s}"]["curves"]["val_acc_pop"][2]
    assert RCR.failure(by["none-x10"], RC.groups(flat)["none-x10"], best) == "levels off 2.0 points lower"
    div = RCR.lr_sweep(_sweep(diverged={("none-x30", 1), ("none-x30", 3)}), 0.1)
    assert RCR.failure(div[5], g["none-x30"], best) == "diverges on 2 of 5 seeds (from step 50)"
    words = RCR.failures(_sweep(), rows, False)
    assert words["above"] == "at x30 it stays at chance"
    assert words["below"].startswith("at x0.333 it is still rising") and "at x1 it" in words["below"]


def test_lr_numbers_put_into_words_what_the_numbers_say():
    out = RCR.lr_numbers(_sweep(), base_lr=0.1)
    assert out["cifar_best_none_mult"].value == "5" and out["cifar_best_bn_mult"].value == "2"
    assert out["cifar_best_order"].value == "below"
    assert out["cifar_n_runs_sweep"].value == 60 and out["cifar_n_labels_sweep"].value == 12
    assert out["cifar_sweep_diverged"].value.startswith("None of the 60 runs diverged")
    assert out["cifar_paper_divergence"].value.endswith("not reproduced here")
    assert out["cifar_none_fails_above"].value == "at x30 it stays at chance"
    assert out["cifar_bn_fails_above"].value == "at x30 it is still rising when training stops, 8.0 points short"
    assert (out["cifar_bn_usable_lo"].value, out["cifar_bn_usable_hi"].value) == ("1", "10")
    diffs = np.subtract(BN_TEST, NONE_TEST)
    assert out["cifar_eq_min"].value == pytest.approx(100 * diffs.min(), abs=0.05)
    assert out["cifar_eq_max_mult"].value == "30" and out["cifar_eq_min_mult"].value == "10"
    assert out["cifar_eq_exceptions"].value == "at all 6 rates"
    assert out["cifar_none_x5_vs_x1"].value == "higher (" + RF.fmt_paired(RE.paired([0.37] * 5, [0.31] * 5)) + ")"
    assert out["cifar_best_none_vs_x1"].value == out["cifar_none_x5_vs_x1"].value
    div = RCR.lr_numbers(_sweep(diverged={("none-x30", 2)}), 0.1)
    assert div["cifar_sweep_diverged"].value.startswith("1 of the 60 runs diverged")
    assert div["cifar_sweep_diverged"].value.endswith("no BN-x30 on 1 of 5 seeds")
    assert div["cifar_paper_divergence"].value.startswith("as in the paper")
    level = list(BN_TEST)
    level[1] = NONE_TEST[1]  # BN level with no BN at x1
    assert RCR.lr_numbers(_sweep(bn_test=level), 0.1)["cifar_eq_exceptions"].value.startswith("at every rate but x1 (")


def test_sweep_steps_against_no_bn_at_its_best_rate_interpolated_between_records():
    runs = _sweep()
    target, rows = RCR.sweep_steps(runs, 0.1)
    spread = (0, .004, -.003, .006, -.002)
    # the baseline is no BN at x5, its best rate on validation; its best record per seed is the last
    assert RCR.sweep_baseline(runs, 0.1) == "none-x5"
    assert target == pytest.approx(np.mean([NONE_VAL[3] + d for d in spread]))
    assert [r["label"] for r in rows] == ["none-x5", "none-x1", "bn-x1", "bn-x2", "bn-x5", "bn-x10", "bn-x30"]
    by = {r["label"]: r for r in rows}
    # BN-x1's curve 0.1 -> 0.42 between steps 0 and 100 crosses the target on the straight line between them
    assert by["bn-x1"]["steps_seeds"] == pytest.approx([100 * (target - 0.1) / 0.32] * 5)
    # the baseline's seeds above its mean cross between steps 100 (0.34) and 200; the others never (300)
    want = [300 if d < 0.001 else 100 + 100 * (target - 0.34) / (0.40 + d - 0.34) for d in spread]
    assert by["none-x5"]["steps_seeds"] == pytest.approx(want)
    out = RCR.steps_numbers(runs, 0.1, last_step=200, record_every=100)
    assert out["cifar_baseline_name"].value == "no BN-x5" and out["cifar_base_late"].value == 5
    assert out["cifar_bn_faster"].value == "all 5" and out["cifar_bn_not_faster"].value == ""
    assert out["cifar_x5_sentence"].value.startswith("the five times higher learning rate")
    cells = RCR.steps_table(rows, 0.1).cells()
    assert cells[0][:3] == ["no BN-x5 (baseline)", "0.5", "never (3 never)"] and cells[0][3] == "1× (baseline)"
    assert cells[2][2] == f"{100 * (target - 0.1) / 0.32:,.0f}"
    slow = _sweep(bn_val=BN_VAL[:1] + (0.2,) + BN_VAL[2:])  # BN-x1 never reaches the baseline's target
    assert RCR.steps_numbers(slow, 0.1, last_step=200, record_every=100)["cifar_bn_not_faster"].value.startswith(
        " (not BN-x1: never reaches the target")
    _, slow_rows = RCR.sweep_steps(slow, 0.1)
    slow_cells = {c[0]: c for c in RCR.steps_table(slow_rows, 0.1).cells()}
    assert slow_cells["BN-x1"][3] == "– (never reaches it)"  # not the ratio to one record after its last


# --------------------------------------------------------------------------- depth and saturation
def _depth(deep_none_top=0.105, deep_bn=0.5, front_sat=0.0, eval_gap=0.1):
    """Depths 2, 3, 4 without and with BN over five seeds; seed s adds s / 200 to every BN accuracy."""
    labels = {}
    for d in (2, 3, 4):
        for norm in (None, "torch"):
            per = []
            for s in SEEDS:
                if norm is None:
                    acc = deep_none_top if d == 4 else 0.3 + 0.01 * (d == 3)
                    sat = [front_sat] * (d - 1) + [0.6]
                    grad = [None, [1e-3] + [1.0] * (d - 1) + [7.0], [1e-4 * (s + 1)] + [1.0] * (d - 1) + [7.0]]
                else:
                    acc = (deep_bn if d == 4 else 0.4) + s / 200
                    sat = [0.02] * (d - 1) + [0.06 + 0.01 * s]
                    grad = [None, [0.5] + [1.0] * d, [0.5] + [1.0] * (d - 2) + [2.0 + s, 7.0]]
                per.append({"val": [0.1, (0.1 + acc) / 2, acc], "test": acc - 0.01,
                            "ev": acc - 0.01 - eval_gap * (1 + s / 4), "norm": norm, "depth": d,
                            "saturated": [[0.0] * d, sat, sat], "grad": grad, "train_loss": 2.3,
                            "bs": acc + 0.02})
            labels[f"{'bn' if norm else 'none-x1'}-depth{d}"] = per
    return _seeded(labels)


def test_depth_saturation_rows():
    rows = RD.depth_saturation(_depth())
    deep_bn = rows[-1]
    assert (deep_bn["label"], deep_bn["depth"], deep_bn["name"]) == ("bn-depth4", 4, "BN-x1")
    assert deep_bn["sat_final"] == pytest.approx([0.02, 0.02, 0.02, 0.08])  # mean of 0.06 ... 0.10
    assert deep_bn["sat_worst"] == pytest.approx(0.10)
    assert deep_bn["sat_final_mean"] == pytest.approx((3 * 0.02 + 0.08) / 4)
    assert rows[-2]["sat_final_max"] == pytest.approx([0.0, 0.0, 0.0, 0.6]) and rows[-2]["multiplier"] == 1.0


def test_gradient_ratio_and_names():
    a = _run([0.1, 0.2, 0.3], depth=3, grad=[None, [1e-3, 1e-2, 1e-1, 5.0], [1e-4, 1e-3, 1e-2, 5.0]])
    b = _run([0.1, 0.2, 0.3], depth=3, grad=[None, [1.0] * 4, [1.0, 1.0, 10000.0, 1.0]])
    assert RC.gradient_ratio([a]) == pytest.approx(100.0) and RC.gradient_ratio([a], record=1) == pytest.approx(100)
    assert RC.gradient_ratio([a, b]) == pytest.approx(1000.0)  # geometric mean of 100 and 10,000
    with pytest.raises(ValueError, match="step 0 has none"):
        RC.gradient_ratio([a], record=0)
    assert RCR.sweep_name("torch", 5.0) == "BN-x5" and RCR.sweep_name(None, 1 / 3) == "no BN-x0.333"


# --------------------------------------------------------------------------- steps, interpolated
def test_committed_sweep_steps_are_interpolated_as_numpy_interpolates():
    """On the committed sweep (when present): Table 3's baseline is no BN at its best mean final validation accuracy,
    and each run's steps are where the straight line between the records around its first crossing meets the
    target (np.interp on those two records)."""
    from bnlib import experiments as E

    exp = E.get("cifar_lr_sweep", "book")
    if not exp.path.exists():
        pytest.skip(f"{exp.path.name} not computed")
    with open(exp.path) as fh:
        runs = json.load(fh)["runs"]

    def val(r):
        c = r["curves"]
        return np.array(c["val_acc_pop"] if any(v is not None for v in c.get("val_acc_pop") or []) else c["val_acc"],
                        dtype=float)

    finals = {}
    for lab, r in runs.items():
        if r["config"]["norm"] is None:
            finals.setdefault(lab.rsplit("-seed", 1)[0], []).append(val(r)[-1])
    baseline = max(finals, key=lambda k: np.mean(finals[k]))
    target, rows = RCR.sweep_steps(runs, exp.runs[0][1].lr)
    assert rows[0]["label"] == baseline
    by = {r["label"]: r for r in rows}
    for lab, row in by.items():
        for r, got in zip(sorted((r for k, r in runs.items() if k.rsplit("-seed", 1)[0] == lab),
                                 key=lambda r: r["config"]["seed"]), row["steps_seeds"], strict=True):
            v, st = val(r), np.asarray(r["curves"]["step"], dtype=float)
            hit = np.flatnonzero(v >= target)
            if not len(hit):
                assert got == st[-1] + (st[-1] - st[-2])
                continue
            i = hit[0]
            want = st[0] if i == 0 else np.interp(target, v[i - 1:i + 1], st[i - 1:i + 1])
            assert got == pytest.approx(want)


# --------------------------------------------------------------------------- setup, paper scale, exercises
BASE = {"steps": 1000, "batch_size": 50, "test_subset": 500, "record_every": 100, "lr": 0.1, "momentum": 0.9,
        "width": 8, "probe_batch": 200, "depth": 3, "validation": 4000, "calibration": 2000}


def test_setup_numbers():
    sub = {**BASE, "train_subset": 8000}
    runs = _seeded({"a": [{"val": [0.1, 0.2], **sub}] * 5})
    depth = _seeded({"b": [{"val": [0.1, 0.2], **sub, "record_every": 400}] * 5})
    res = {"sweep": runs, "depth": depth, "recipe": runs}
    out = RC.setup_numbers(sub, (2, 3, 6), (1 / 3, 1, 30), n_train=20000, n_test=4000, results=res)
    assert out["cifar_epochs"].value == pytest.approx(1000 * 50 / 8000) and out["cifar_nfit"].value == 8000
    assert out["cifar_depth_record_every"].value == 400 and out["cifar_record_every"].value == sub["record_every"]
    assert out["cifar_seeds"].value == 5 and out["cifar_margin"].value == pytest.approx(100 * RC.MARGIN)
    assert out["cifar_depth_list"] == RF.text("2, 3 and 6") and out["cifar_mult_list"].value == "0.333, 1, 30"
    assert out["cifar_sat_level"].value == pytest.approx(0.01)
    assert out["cifar_sat_threshold"].value == pytest.approx(4.5848, abs=1e-4)
    with pytest.raises(ValueError, match="same seeds"):
        RC.setup_numbers(sub, (2, 3), (1,), 20000, 4000,
                         results={**res, "sweep": {**runs, "b-seed0": _run([0.1, 0.2], **sub)}})
    with pytest.raises(ValueError, match="but the depth run b-seed0 differs in steps"):
        RC.setup_numbers(sub, (2, 3), (1,), 20000, 4000, results={**res, "depth": depth | {
            "b-seed0": _run([0.1, 0.2], **{**sub, "steps": 1})}})
    with pytest.raises(ValueError, match="but the recipe run a-seed0 differs in record_every"):
        RC.setup_numbers(sub, (2, 3), (1,), 20000, 4000, results={**res, "recipe": _seeded(
            {"a": [{"val": [0.1, 0.2], **sub, "record_every": 400}] * 5})})


def test_paper_numbers():
    def cfg(seed):
        return {"steps": 2000, "batch_size": 50, "seed": seed, "validation": 0}

    exps = {"cifar_lr_sweep": {"runs": {f"{lab}-seed{s}": cfg(s) for lab in ("none-x1", "bn-x1") for s in range(3)}},
            "cifar_recipe": {"runs": {f"r-seed{s}": cfg(s) for s in range(3)}}}
    out = RC.paper_numbers(exps, n_train=10000)
    assert out["cifar_paper_steps"].value == 2000 and out["cifar_paper_epochs"].value == pytest.approx(10.0)
    assert out["cifar_paper_seeds"].value == 3 and out["cifar_paper_runs"].value == 9


def test_exercise_numbers():
    out = RCR.exercise_numbers(_depth(), _sweep(), base_lr=0.1, max_depth=4, record_every=100)
    assert out["cifar_sat_cosh"].value == pytest.approx(5.0)  # 1 / (2 sqrt(0.01))
    assert out["cifar_ex_layers"].value == 3 and out["cifar_ex_per_layer"].value == pytest.approx(10.0)
    assert out["cifar_ex_sb"].value == 300 and out["cifar_ex_s5"].value == 100  # medians of Table 3's seeds
    assert out["cifar_ex_lo"].value == pytest.approx(2.0) and out["cifar_ex_hi"].value == "unbounded"


def test_small_derivations():
    for x in (-3.0, 0.0, 0.7, RR.SATURATION_THRESHOLD):
        assert RC.sigmoid_slope(x) == pytest.approx(1 / (4 * math.cosh(x / 2) ** 2))
    assert RC.sigmoid_slope(RR.SATURATION_THRESHOLD) == pytest.approx(0.01)
    assert RC.gradient_spread([2.0, 0.5, 1.0]) == 4.0
    with pytest.raises(ValueError, match="positive"):
        RC.gradient_spread([1.0, 0.0])
    assert RC.speedup_bounds(1500, 500, 250) == (2.5, 6.0)
    assert RC.speedup_bounds(1500, 250, 250) == (5.0, None)
    with pytest.raises(ValueError, match="after step 0"):
        RC.speedup_bounds(1500, None, 250)
    assert RC.per_layer_factor(1000.0, 3) == pytest.approx(10.0)


# --------------------------------------------------------------------------- committed results
@pytest.mark.parametrize("name, baseline", [("cifar_lr_sweep", "none-x1"), ("cifar_sigmoid_depth", "none-x1-depth2"),
                                            ("cifar_recipe", "none-baseline")])
def test_committed_results_agree_with_numpy(name, baseline):
    """On the committed book-scale results (when present): the target is the mean over seeds of the baseline's best
    validation record, and each seed's steps are the first record at or above it (found here with NumPy)."""
    from bnlib import experiments as E

    exp = E.get(name, "book")
    if not exp.path.exists():
        pytest.skip(f"{exp.path.name} not computed")
    with open(exp.path) as fh:
        runs = json.load(fh)["runs"]

    def val(r):  # population statistics where the run recomputed them (BN; equal to eval mode without BN)
        c = r["curves"]
        return np.array(c["val_acc_pop"] if any(v is not None for v in c.get("val_acc_pop") or []) else c["val_acc"],
                        dtype=float)

    base = [r for lab, r in runs.items() if lab.startswith(baseline + "-seed")]
    target = np.mean([np.nanmax(val(r)) for r in base])
    got, rows = RC.steps_to_accuracy(runs, baseline=baseline)
    assert got == pytest.approx(target)
    for row in rows:
        for s, r in enumerate(RC.groups(runs)[row["label"]]):
            c = r["curves"]
            hit = np.flatnonzero(val(r) >= target)
            assert row["steps_seeds"][s] == (c["step"][hit[0]] if len(hit) else 2 * c["step"][-1] - c["step"][-2])


# --------------------------------------------------------------------------- figures draw the given numbers
def test_cifar_figures_draw_the_given_numbers():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _sweep()
    fig = PC.figure_cifar_lr_sweep(RCR.lr_bands(runs, 0.1, show=(1, 5, 30)))
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    spread = (0.0, 0.004, -0.003, 0.006, -0.002)
    np.testing.assert_allclose(lines["BN"].get_xdata(), [1 / 3, 1, 2, 5, 10, 30], rtol=1e-5)
    np.testing.assert_allclose(lines["BN"].get_ydata(), [100 * (t + 2 * np.mean(spread)) for t in BN_TEST])
    curves = {ln.get_label(): ln for ln in fig.axes[1].get_lines()}
    np.testing.assert_allclose(curves["BN, x5"].get_ydata()[-1], 100 * (BN_VAL[3] + np.mean(spread)))
    plt.close(fig)

    div = PC.figure_cifar_lr_sweep(RCR.lr_bands(_sweep(diverged={("none-x30", 1)}), 0.1, show=(1,)))
    marks = {ln.get_label(): ln for ln in div.axes[0].get_lines()}
    assert list(marks["no BN: a seed diverged"].get_xdata()) == [30]
    plt.close(div)

    depth = _depth()
    fig = PC.figure_cifar_layers(RD.depth_layer_bands(depth, 4), 4)
    sat, grad = fig.axes[1].get_lines(), fig.axes[3].get_lines()  # BN: top right, bottom right
    np.testing.assert_allclose(sat[3].get_ydata(), [0, 100 * 0.08, 100 * 0.08])
    np.testing.assert_allclose(grad[3].get_ydata(), [1.0, np.mean([2.0 + s for s in SEEDS])])
    np.testing.assert_allclose(grad[0].get_xdata(), [100, 200])
    plt.close(fig)



def test_speedup_cell_says_which_way_a_never_reached_target_bounds_the_ratio():
    from bnlib.reports.cifar import speedup_cell
    from bnlib.reports.evidence import Paired

    p = Paired(n=5, mean=math.log(2.0), lo=math.log(1.5), hi=math.log(2.5), diffs=(0.7,) * 5)
    base = {"baseline": True, "never": 0, "seeds": 5}
    row = {"baseline": False, "never": 0, "seeds": 5, "speedup": p}
    assert speedup_cell(base, base) == "1× (baseline)"
    assert speedup_cell(row, base) == "2× [1.5×, 2.5×], 5 seeds"
    assert speedup_cell(row | {"never": 2}, base).endswith("(upper bound)")  # its own seeds counted too early
    assert speedup_cell(row, base | {"never": 2}).endswith("(lower bound)")  # the baseline's counted too early
    assert speedup_cell(row | {"never": 1}, base | {"never": 2}).endswith("(no bound)")
    assert speedup_cell(row | {"never": 5}, base) == "– (never reaches it)"
