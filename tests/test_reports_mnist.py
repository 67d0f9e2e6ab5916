"""The MNIST chapter's derived numbers (bnlib.reports.mnist_*), on tiny hand-made results whose answers are
known: seeded results of five seeds whose paired intervals are computed here by hand (mean, t quantile, standard
error), not by the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from seeded import seeded

from bnlib import results as RR
from bnlib.plots import mnist as PM
from bnlib.reports import mnist as RM

STEPS = [0, 100, 200, 300, 400]
SEEDS = range(5)


def _ci(a, b=None):
    """Mean of a - b with its two-sided 95% t interval, computed by hand."""
    d = np.asarray(a, float) - (0 if b is None else np.asarray(b, float))
    h = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean(), d.mean() - h, d.mean() + h


def _fmt(a, b=None, scale=100, unit=" points", digits=2):
    m, lo, hi = _ci(a, b)
    return f"{scale * m:+.{digits}f}{unit} [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}], {len(a)} seeds"


def _run(accs=(0.1, 0.5, 0.9), norm=None, val=None, val_pop=None, final=None, diverged_at=None, units=None,
         saturated=None, hist=None, percentiles=None, summary=None, **cfg):
    """A run shaped like bnlib.train's output: test accuracy ``accs`` at STEPS, validation ``val`` (default:
    the test curve), BN's population-statistics validation ``val_pop`` (default: ``val``)."""
    n = len(accs)
    val = list(accs) if val is None else list(val)
    config = {"lr": 0.5, "norm": norm, "probe_units": [0, 1, 2], "init_sigma": 0.1, "batch_size": 10,
              "train_subset": 0, "test_subset": 0, "seed": 0, **cfg}
    c = {"step": STEPS[:n], "test_acc": list(accs), "test_acc_pop": list(accs), "test_loss": [1.0] * n,
         "val_acc": val, "val_acc_pop": list(val_pop) if val_pop is not None else val,
         "percentiles": percentiles if percentiles is not None else [[[[-1.0, 0.0, 1.0]] * 3] * 2] * n,
         "saturated": saturated if saturated is not None else [[0.0, 0.0]] * n,
         "hist": hist if hist is not None else [[[1, 1], [1, 1]]] * n}
    if units is not None:
        c["units"] = units
    final = accs[-1] if final is None else final
    s = {"diverged_at": diverged_at, "steps_done": STEPS[n - 1] if diverged_at is None else diverged_at,
         "best_test_acc": max(accs), "final_test_acc": None if diverged_at else final,
         "final_test_acc_pop": None if diverged_at else final, "final_val_acc": None if diverged_at else val[-1],
         "final_val_acc_pop": None if diverged_at else c["val_acc_pop"][-1],
         "final_test_loss": None if diverged_at else 0.3, "final_train_loss": 0.1, **(summary or {})}
    return {"config": config, "curves": c, "summary": s}


def _seeded(make, seeds=range(5)):
    return seeded(make, seeds)


# --------------------------------------------------------------------------- Figure 1(a)
def test_speedup_reads_the_validation_curves_and_population_statistics():
    # test curves would say: BN reaches none's final 0.90 at step 100; the validation curves say 300
    none = _run([0.1, 0.80, 0.90, 0.88, 0.90], val=[0.1, 0.7, 0.8, 0.85, 0.85])  # val target 0.85, first at 300
    bn = _run([0.1, 0.91, 0.93, 0.95, 0.96], norm="torch", val=[0.1, 0.9, 0.9, 0.9, 0.9],  # eval mode: would be 100
              val_pop=[0.1, 0.5, 0.86, 0.9, 0.95])  # population statistics: 0.85 first at 200
    s = RM.mnist_speedup({"runs": {"none": none, "bn": bn}})
    assert (s["final_slow"], s["final_fast"], s["steps"]) == (0.85, 0.95, 400)
    assert (s["fast_to_slow"], s["slow_to_slow"], s["slow_to_fast"], s["fast_to_fast"]) == (200, 300, None, 400)
    assert s["speedup"] == pytest.approx(1.5)


def test_speedup_never_and_errors():
    res = {"runs": {"none": _run([0.1, 0.5, 0.9]), "bn": _run([0.1, 0.2, 0.3], norm="torch")}}
    s = RM.mnist_speedup(res)
    assert s["fast_to_slow"] is None and s["speedup"] is None and s["slow_to_fast"] == 100
    res["runs"]["bn"] = _run([0.1, 0.2], norm="torch", diverged_at=150)
    with pytest.raises(ValueError, match="'bn' diverged"):
        RM.mnist_speedup(res)
    with pytest.raises(ValueError, match="no run 'fast'"):
        RM.mnist_speedup(res, fast="fast")
    bare = _run([0.1, 0.5, 0.9])
    del bare["curves"]["val_acc"]
    with pytest.raises(ValueError, match="no 'val_acc' curve"):
        RM.mnist_speedup({"runs": {"none": bare, "bn": _run([0.1, 0.9, 0.95], norm="torch")}})


FIN_NONE = [0.970, 0.972, 0.975, 0.971, 0.969]
FIN_BN = [0.978, 0.975, 0.981, 0.977, 0.976]
EVAL_BN = [0.977, 0.976, 0.979, 0.977, 0.973]


def _fig1_seed(k, bn_reaches=True):
    # none's validation reaches its final 0.9 at step 300 (k even) or 400; BN's population curve at 100 or 200
    nv = [0.1, 0.5, 0.8, 0.9, 0.9] if k % 2 == 0 else [0.1, 0.5, 0.8, 0.85, 0.9]
    bv = [0.1, 0.9, 0.92, 0.93, 0.94] if k < 3 else [0.1, 0.6, 0.91, 0.93, 0.94]
    if not bn_reaches:
        bv = [0.1, 0.2, 0.3, 0.4, 0.5]
    none = _run([0.1, 0.6, 0.8, 0.9, FIN_NONE[k]], val=nv)
    bn = _run([0.1, 0.7, 0.9, 0.95, FIN_BN[k]], norm="torch", val=[0.1] * 5, val_pop=bv,
              summary={"final_test_acc": EVAL_BN[k]})
    return {"none": none, "bn": bn}


def _values(glued: dict) -> dict:
    return {k: v.value for k, v in glued.items()}


def test_accuracy_numbers_pair_the_seeds_and_summarize_the_speedups():
    res = _seeded(_fig1_seed)
    v = _values(RM.mnist_accuracy_numbers(res, {"record_every": 100}))
    assert v["mnist_gap"] == _fmt(FIN_BN, FIN_NONE) and v["mnist_eval_gap"] == _fmt(EVAL_BN, FIN_NONE)
    assert v["mnist_pop_eval"] == _fmt(FIN_BN, EVAL_BN)
    assert v["mnist_final_bn"] == pytest.approx(100 * np.mean(FIN_BN))
    assert v["mnist_final_bn_eval"] == pytest.approx(100 * np.mean(EVAL_BN))
    assert _ci(FIN_BN, FIN_NONE)[1] > 0 and v["mnist_acc_words"] == "higher with BN" and v["mnist_acc_holds"] == "yes"
    speedups = [3.0, 4.0, 3.0, 2.0, 1.5]  # seeds 0-4: 300/100, 400/100, 300/100, 400/200, 300/200
    assert v["mnist_speedup_median"] == pytest.approx(3.0)
    assert (v["mnist_speedup_min"], v["mnist_speedup_max"]) == (1.5, 4.0)
    m, lo, hi = _ci(np.log(speedups))
    assert (v["mnist_speedup_geo"], v["mnist_speedup_lo"], v["mnist_speedup_hi"]) == pytest.approx(
        (math.exp(m), math.exp(lo), math.exp(hi)), abs=1e-4)
    # the ledger's rule: the interval of the geometric mean against a speed-up of 2 (here it straddles 2)
    assert math.exp(lo) < 2 < math.exp(hi) and v["mnist_speed_holds"] == "inconclusive"
    assert v["mnist_bn_to_none"] == 100 and v["mnist_none_to_none"] == 300  # medians of 100,100,100,200,200 / ...
    assert "never reaches" in v["mnist_other_way"] and "in any seed" in v["mnist_other_way"]
    assert v["mnist_early"].startswith("In every seed")
    assert v["mnist_acc_verdict"] == "for the final test accuracy: supported; for a speed-up over 2x: inconclusive"


def test_accuracy_numbers_inconclusive_and_the_prose_checks():
    def flat(k):
        s = _fig1_seed(k)
        s["bn"]["summary"]["final_test_acc_pop"] = FIN_NONE[k] + (0.002 if k % 2 else -0.002)
        return s

    v = _values(RM.mnist_accuracy_numbers(_seeded(flat), {"record_every": 100}))
    assert v["mnist_acc_words"] == "inconclusive" and v["mnist_acc_holds"] == "inconclusive"
    assert "inconclusive" in v["mnist_acc_verdict"]
    with pytest.raises(ValueError, match="in every seed"):
        RM.mnist_accuracy_numbers(_seeded(lambda k: _fig1_seed(k, bn_reaches=k != 2)), {"record_every": 100})


def test_accuracy_bands_are_seed_means_and_extremes_of_the_population_curve():
    res = _seeded(_fig1_seed)
    b = RM.mnist_accuracy_bands(res)
    assert b["bn"]["step"] == STEPS and b["bn"]["seeds"] == 5
    assert b["bn"]["mean"][-1] == pytest.approx(np.mean(FIN_BN))
    assert (b["bn"]["lo"][-1], b["bn"]["hi"][-1]) == (min(FIN_BN), max(FIN_BN))


# --------------------------------------------------------------------------- Figure 1(b, c)
def _units(p15, p50, p85, spread=0.2):
    """One record of the units curve: per percentile its quantiles across units, centred on the given medians."""
    return [[m - spread, m - spread / 2, m, m + spread / 2, m + spread] for m in (p15, p50, p85)]


def test_unit_medians_and_endpoint_drift():
    u = [_units(-1, 0, 1), _units(-2, 0.5, 2), _units(-2.5, 0.2, 2.2), _units(-3, 0.1, 3), _units(-3, 0.0, 3.5)]
    run = _run([0.1] * 5, units=u)
    m = RM.mnist_unit_medians(run)
    assert m["step"] == STEPS and m["p15"] == [-1, -2, -2.5, -3, -3] and m["p85"] == [1, 2, 2.2, 3, 3.5]
    d = RM.mnist_endpoint_drift(run, 100, 400)
    assert d == pytest.approx({"p15": 1.0, "p50": 0.5, "p85": 1.5, "mean": 1.0})
    with pytest.raises(ValueError, match="step 50 was not recorded"):
        RM.mnist_endpoint_drift(run, 50, 400)


def _drift_seed(k, bn_move=0.1, none_move=0.5, hi_bn_move=None):
    """Medians moving by the given amount per record from step 100 on (seed k adds 0.01 k, with BN 0.02 k); BN at
    lr 2 moves by ``hi_bn_move`` (default: as at lr 0.5)."""
    def run(move, norm, lr):
        move = move + (0.02 if norm else 0.01) * k
        u = [_units(-0.05, 0, 0.05)] + [_units(-1 - move * i, move * i, 1 + move * i) for i in range(4)]
        return _run([0.1] * 5, norm=norm, units=u, lr=lr)

    return {"none": run(none_move, None, 0.5), "bn": run(bn_move, "torch", 0.5),
            "none-lr2": run(none_move, None, 2.0), "bn-lr2": run(bn_move if hi_bn_move is None else hi_bn_move,
                                                                   "torch", 2.0)}


def test_drift_rows_pair_bn_against_no_bn_per_rate_window_and_percentile():
    res = _seeded(_drift_seed)
    rows = RM.mnist_drift(res, windows=((100, 400), (200, 400)))
    assert len(rows) == 2 * 2 * 4
    r = next(x for x in rows if x["lr"] == 0.5 and x["start"] == 100 and x["measure"] == "p50")
    none = [3 * (0.5 + 0.01 * k) for k in SEEDS]
    bn = [3 * (0.1 + 0.02 * k) for k in SEEDS]
    assert r["none"] == pytest.approx(none) and r["bn"] == pytest.approx(bn)
    assert r["verdict"] == "supported"  # differences -1.2 to -1.08: the interval lies below zero
    m, lo, hi = _ci(bn, none)
    assert (r["paired"].mean, r["paired"].lo, r["paired"].hi) == pytest.approx((m, lo, hi))
    text = repr(RM.mnist_drift_table(rows))
    assert "less with BN" in text and "100 -> 400" in text and "mean of the three" in text


def test_drift_numbers_verdicts_follow_the_intervals():
    cfg = {"lr": 0.5, "record_every": 100}

    def bn_more_at_hi(k):
        s = _drift_seed(k, hi_bn_move=0.6 + 0.05 * (k % 2))
        return s

    windows = ((100, 400), (200, 400))
    v = _values(RM.mnist_drift_numbers(_seeded(_drift_seed), cfg, windows))
    assert v["mnist_dr_lo_100_verdict"] == v["mnist_dr_hi_200_verdict"] == "less with BN"
    assert v["mnist_dr_lo_sentence"].startswith("from step 100 to 400 the percentiles move by 1.56 on average")
    assert v["mnist_dr_lo_100_none"] == pytest.approx(3 * 0.52) and v["mnist_dr_lo_lr"] == 0.5
    assert v["mnist_drift_holds"].startswith("yes") and v["mnist_drift_verdict"].startswith("it holds here")
    assert v["mnist_dr_windows"] == "100 to 400 and 200 to 400"
    mixed = _values(RM.mnist_drift_numbers(_seeded(bn_more_at_hi), cfg, windows))
    hi_bn = [3 * (0.6 + 0.05 * (k % 2) + 0.02 * k) for k in SEEDS]
    assert mixed["mnist_dr_hi_100_pair"] == _fmt(hi_bn, [3 * (0.5 + 0.01 * k) for k in SEEDS], scale=1, unit="")
    assert mixed["mnist_drift_holds"] == "mixed"
    assert "less with BN from step 100 at rate 0.5" in mixed["mnist_drift_verdict"]
    assert "more with BN from step 100 at rate 2" in mixed["mnist_drift_verdict"]
    # the median unit's spread: 0.1 at step 0, 2 at step 100 (none: 1 - (-1)): twentyfold
    assert mixed["mnist_spread0"] == pytest.approx(0.1) and mixed["mnist_spread_growth"] == pytest.approx(20.0)


def test_drift_numbers_check_the_spread_growth():
    def calm(k):
        s = _drift_seed(k)
        s["none"]["curves"]["units"][0] = _units(-0.5, 0, 0.5)
        return s

    with pytest.raises(ValueError, match="tenfold"):
        RM.mnist_drift_numbers(_seeded(calm), {"lr": 0.5, "record_every": 100}, ((100, 400),))


# --------------------------------------------------------------------------- the per-unit drift (why chapter)
def _pct_run(medians, widths, norm=None):
    recs = []
    for m, w in zip(medians, widths, strict=True):
        still = [-1.0, 0.0, 1.0]
        recs.append([[still] * 3, [still, [m - w / 2, m, m + w / 2], still]])
    return _run([0.1] * len(medians), norm=norm, percentiles=recs)


def test_median_drift_skips_step_zero_by_default():
    run = _pct_run([5.0, 1.0, 2.0, 0.5, 1.5], [9.0, 1.0, 2.0, 2.0, 3.0])
    d = RM.mnist_median_drift(run, layer=-1, unit=1)
    assert d["from_step"] == 100 and d["range"] == pytest.approx(1.5) and d["net"] == pytest.approx(0.5)
    assert d["width"] == pytest.approx(2.0) and d["relative"] == pytest.approx(0.75)
    assert d["width_ratio"] == pytest.approx(3.0)
    assert RM.mnist_median_drift(run, layer=-1, unit=1, from_step=0)["range"] == pytest.approx(4.5)
    with pytest.raises(ValueError, match="no record at or after step 1000"):
        RM.mnist_median_drift(run, layer=0, unit=0, from_step=1000)


def test_typical_unit_rows_and_summary():
    recs = [[[[-1 + 0.2 * k, 0.2 * k, 1 + 0.2 * k], [-1 + k, float(k), 1 + k], [-1 + 0.5 * k, 0.5 * k, 1 + 0.5 * k]]]
            for k in range(3)]
    run = _run([0.1] * 3, percentiles=recs)
    assert RM.mnist_typical_unit(run, -1) == 2
    res = {"runs": {"none": _pct_run([5.0, 1.0, 3.0], [1.0, 2.0, 2.0]),
                    "bn": _pct_run([0.0, 0.0, 0.5], [2.0, 2.0, 2.0], norm="torch")}}
    rows = RM.mnist_drift_rows(res)
    assert len(rows) == 12
    assert RM.mnist_drift_summary(rows, "none", layer=2)["range"] == pytest.approx(2.0 / 3)
    with pytest.raises(ValueError, match="no drift rows for network 'LN'"):
        RM.mnist_drift_summary(rows, "LN")


# --------------------------------------------------------------------------- saturation and histograms
def test_saturation_per_layer():
    sat = [[0.1, 0.0], [0.5, 0.02], [0.7, 0.01], [0.6, 0.01]]
    s = RM.mnist_saturation(_run([0.1] * 4, saturated=sat))
    assert s[0] == {"layer": 1, "initial": 0.1, "final": 0.6, "max": 0.7, "max_step": 200}
    assert s[1] == {"layer": 2, "initial": 0.0, "final": 0.01, "max": 0.02, "max_step": 100}


def _sat_seed(k, bn_l3=0.02, bn_initial=0.005):
    none = [[0.005, 0.0, 0.0], [0.3, 0.01, 0.02], [0.5, 0.01, 0.01], [0.6 + 0.01 * k, 0.001, 0.01]]
    bn = [[bn_initial, 0.0, 0.0], [0.05, 0.02, 0.03], [0.04, 0.03, 0.04], [0.03 + 0.002 * k, 0.02 + 0.001 * k,
                                                                           bn_l3 + (0.004 if k % 2 else -0.004)]]
    return {"none": _run([0.1] * 4, saturated=none), "bn": _run([0.1] * 4, norm="torch", saturated=bn)}


def test_saturation_numbers_pair_the_seeds():
    res = _seeded(_sat_seed)
    v = _values(RM.mnist_saturation_numbers(res))
    none1 = [0.6 + 0.01 * k for k in SEEDS]
    bn1 = [0.03 + 0.002 * k for k in SEEDS]
    assert v["mnist_sat_none_l1"] == pytest.approx(100 * np.mean(none1))
    assert v["mnist_sat_diff_l1"] == _fmt(bn1, none1)
    assert v["mnist_sat_diff_l2"] == _fmt([0.02 + 0.001 * k for k in SEEDS], [0.001] * 5)
    l3 = [0.02 + (0.004 if k % 2 else -0.004) for k in SEEDS]
    assert v["mnist_sat_diff_l3"] == _fmt(l3, [0.01] * 5)
    assert "layer 2: more saturated with BN" in v["mnist_sat_holds"]
    assert "layer 1: fewer saturated with BN" in v["mnist_sat_holds"]
    assert "by the end" in v["mnist_sat_rise"] and v["mnist_checkpoints"] == "0, 100, 200 and 300"
    with pytest.raises(ValueError, match="same function at step 0"):
        RM.mnist_saturation_numbers(_seeded(lambda k: _sat_seed(k, bn_initial=0.2)))


def test_saturation_bands():
    b = RM.mnist_saturation_bands(_seeded(_sat_seed))
    assert b["none"]["step"] == STEPS[:4]
    assert b["none"]["layers"][0]["hi"][-1] == pytest.approx(0.64) and b["none"]["layers"][0]["lo"][-1] == 0.6


def test_checkpoints_and_histograms():
    run = {"curves": {"step": list(range(0, 10_001, 100))}}
    assert RM.mnist_checkpoints(run, 4) == [0, 100, 1000, 10_000]
    assert RM.mnist_checkpoints({"curves": {"step": [0, 5, 10]}}, 4) == [0, 5, 10]
    with pytest.raises(ValueError, match="at least 2"):
        RM.mnist_checkpoints(run, 1)
    edges = [-2.0, -1.0, 0.0, 2.0]
    h = RM.mnist_histograms(_run([0.1, 0.2], hist=[[[1, 1, 2]], [[0, 4, 0]]]), [0, 100], edges=edges)
    assert h["centers"] == [-1.5, -0.5, 1.0] and h["density"][1][0] == pytest.approx([0.0, 1.0, 0.0])
    assert float(np.dot(h["density"][0][0], np.diff(edges))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="step 50 was not recorded"):
        RM.mnist_histograms(_run([0.1, 0.2]), [50], edges=edges)


# --------------------------------------------------------------------------- learning rate
VAL = {0.1: [0.90, 0.91, 0.90, 0.92, 0.91], 0.5: [0.960, 0.962, 0.958, 0.961, 0.959],
       1.0: [0.962, 0.963, 0.960, 0.962, 0.961], 2.0: [0.950, 0.955, 0.952, 0.951, 0.950]}


def _lr_seed(k, val=None, test_best=2.0):
    val = val or VAL
    return {f"lr{lr:g}": _run([0.1, 0.97 if lr == test_best else 0.9], lr=lr, val=[0.1, v[k]])
            for lr, v in val.items()}


def test_lr_rule_reads_validation_and_picks_the_smallest_rate_within_the_margin():
    rows = RM.mnist_lr_rows(_seeded(_lr_seed))
    assert [r["lr"] for r in rows] == [0.1, 0.5, 1.0, 2.0] and all(r["seeds"] == 5 for r in rows)
    best, chosen = RM.mnist_lr_pick(rows, within=0.002)
    # means: 0.5 -> 0.960, 1 -> 0.9616; rate 2 has the best *test* accuracy, which must not count
    assert best["lr"] == 1.0 and chosen["lr"] == 0.5
    assert RM.mnist_lr_pick(rows, within=0.001)[1]["lr"] == 1.0  # 0.0016 behind: outside a 0.1-point margin
    ref = _ci(VAL[0.5])
    assert (rows[1]["val_mean"], rows[1]["val_hw"]) == pytest.approx((ref[0], ref[2] - ref[0]))
    text = repr(RM.mnist_lr_table(rows))
    assert "best" in text and _fmt(VAL[0.1], VAL[1.0]) in text


def test_lr_numbers_say_whether_the_rule_picks_figure_1s_rate():
    configs = {"a": {"norm": None, "steps": 300}}
    v = _values(RM.mnist_lr_numbers(_seeded(_lr_seed), configs, (0.1, 0.5, 1.0, 2.0), 0.5))
    assert v["mnist_lr_chosen"] == 0.5 and v["mnist_lr_best"] == 1.0
    assert v["mnist_lr_picks"] == "The rule picks 0.5, the rate Figure 1 uses."
    assert v["mnist_lr_lo_gap"] == _fmt(VAL[0.1], VAL[1.0]) and v["mnist_lr_within"] == pytest.approx(0.2)
    assert v["mnist_lr_diverged"] == "No rate diverges in any seed."
    far = {**VAL, 0.5: [0.95, 0.951, 0.949, 0.95, 0.952]}
    v = _values(RM.mnist_lr_numbers(_seeded(lambda k: _lr_seed(k, far)), configs, (0.1, 0.5, 1.0, 2.0), 0.5))
    assert v["mnist_lr_picks"].startswith("The rule picks 1, not the 0.5 that Figure 1 uses")
    assert _fmt(far[0.5], far[1.0]) in v["mnist_lr_picks"]
    with pytest.raises(ValueError, match="only the network without BN"):
        RM.mnist_lr_numbers(_seeded(_lr_seed), {"a": {"norm": "torch", "steps": 300}}, (0.1,), 0.5)
    with pytest.raises(ValueError, match="no run with learning rate 3"):
        RM.mnist_lr_numbers(_seeded(_lr_seed), configs, (0.1,), 3.0)


# --------------------------------------------------------------------------- initialization sweep
SIG = (0.01, 0.1, 1.0, 10.0)


def _sweep_seed(k, none=(0.5, 0.96, 0.955, 0.3), bn=(0.97, 0.975, 0.972, 0.94)):
    runs = {}
    for norm, accs, end in ((None, none, [0.3, 0.2]), ("torch", bn, [0.01, 0.03])):
        for s, a in zip(SIG, accs, strict=True):
            a = a + 0.001 * k
            runs[f"{norm or 'none'}-sigma{s:g}"] = _run([0.1, a], norm=norm, init_sigma=s, val=[0.1, a - 0.01],
                                                        saturated=[[s / 20, s / 10], end])
    return runs


def test_init_sweep_one_seed_keeps_the_ledgers_keys_and_chooses_on_validation():
    grid = RM.mnist_init_sweep({"runs": _sweep_seed(0)})
    assert grid["sigmas"] == list(SIG) and grid["networks"] == ["none", "BN"]
    assert grid["acc"]["none"][0.1] == 0.96 and grid["val"]["none"][0.1] == pytest.approx(0.95)
    assert grid["sat0"]["BN"][10.0] == pytest.approx(0.75)
    r = RM.mnist_sigma_range(grid, "none", within=0.01)
    assert (r["best_sigma"], r["lo"], r["hi"]) == (0.1, 0.1, 1.0) and r["decades"] == pytest.approx(1.0)
    r = RM.mnist_sigma_range(grid, "BN", within=0.01)
    assert (r["lo"], r["hi"]) == (0.01, 1.0) and r["best_acc"] == pytest.approx(0.965)  # validation
    assert RM.mnist_sigma_range(grid, "BN", within=0.01, metric="acc")["best_acc"] == 0.975
    with pytest.raises(ValueError, match="metric must be"):
        RM.mnist_sigma_range(grid, "BN", 0.01, metric="test")
    with pytest.raises(ValueError, match="network 'LN' is not in the sweep"):
        RM.mnist_sigma_range(grid, "LN", 0.01)
    with pytest.raises(ValueError, match="two runs of network 'none' have init_sigma 0.1"):
        RM.mnist_init_sweep({"runs": {"a": _run([0.1, 0.5]), "b": _run([0.1, 0.6])}})
    per_seed = [RM.mnist_sigma_range(RM.mnist_init_sweep(r), "BN", 0.01)["decades"]
                for r in RR.by_seed(_seeded(_sweep_seed)).values()]
    assert per_seed == pytest.approx([2.0] * 5)


def test_init_seeds_table_and_numbers():
    res = _seeded(_sweep_seed)
    seeded = RM.mnist_init_seeds(res)
    assert seeded["mean"]["acc"]["BN"][0.1] == pytest.approx(0.977)  # 0.975 + 0.001 * mean(0..4)
    assert seeded["hw"]["BN"][0.1] == pytest.approx(_ci([0.975 + 0.001 * k for k in SEEDS])[2] - 0.977)
    text = repr(RM.mnist_init_table(seeded))
    assert "97.70 ± " in text and "points [" in text
    v = _values(RM.mnist_init_numbers(res, {"a": {"steps": 2000}}, within=0.01))
    assert (v["mnist_sw_lo_bn"], v["mnist_sw_hi_bn"], v["mnist_sw_lo_none"], v["mnist_sw_hi_none"]) == (
        0.01, 1.0, 0.1, 1.0)
    assert v["mnist_sw_dec_pair"] == "+1.00 decades [+1.00, +1.00], 5 seeds"  # BN 2 decades, none 1, in every seed
    assert v["mnist_sw_ahead"].startswith("BN is ahead at every")
    assert v["mnist_sw_within_text"] == "1 point" and v["mnist_sw_seeds"] == 5
    assert v["mnist_sw_drop_bn"] == _fmt([0.975 + 0.001 * k for k in SEEDS], [0.94 + 0.001 * k for k in SEEDS])
    assert "does not stop mattering" in v["mnist_sw_verdict"] and v["mnist_sw_holds"] == "yes"


# --------------------------------------------------------------------------- setup, Dense-128, threshold
def _setup_cfg(**kw):
    return {"sizes": [784, 100, 100, 100, 10], "momentum": 0.0, "weight_decay": 0.0, "lr_decay_every": 0,
            "optimizer": "sgd", "record_every": 500, "steps": 50_000, "batch_size": 60, "init_sigma": 0.1,
            "lr": 0.5, "probe_batch": 1000, "probe_units": [0, 1, 2], "inputs": "unit", "init": "gaussian",
            "validation": 10_000, "calibration": 10_000, "seed": 0, **kw}


def test_setup_numbers_and_the_prose_checks():
    kw = {"n_train": 60_000, "n_test": 10_000, "mean": 0.1307, "std": 0.3081, "bn_momentum": 0.1, "bn_eps": 1e-5}
    v = _values(RM.mnist_setup_numbers(_setup_cfg(), registered=_setup_cfg(seed=3), **kw))
    assert (v["mnist_ntrain"], v["mnist_nval"], v["mnist_ncal"], v["mnist_epochs"]) == (50_000, 10_000, 10_000, 60.0)
    # a first-layer input at init, sum of 784 w_i x_i, by simulation: pixels with the stated mean and sd
    rng = np.random.default_rng(0)
    p = 0.1307**2 / (0.1307**2 + 0.3081**2)  # pixels in {0, c} with mean 0.1307 and sd 0.3081
    c = 0.1307 / p
    x = c * (rng.random((4000, 784)) < p)
    w = rng.normal(0, 0.1, (784, 200))
    assert v["mnist_sd_unit"] == pytest.approx((x @ w).std(), rel=0.03)
    assert v["mnist_sd_std"] == pytest.approx(0.1 * math.sqrt(784))
    with pytest.raises(ValueError, match="registered mnist_fig1 experiment"):
        RM.mnist_setup_numbers(_setup_cfg(), registered=_setup_cfg(lr=1.0), **kw)
    with pytest.raises(ValueError, match="plain SGD"):
        RM.mnist_setup_numbers(_setup_cfg(momentum=0.9), **kw)
    with pytest.raises(ValueError, match=r"\[0, 1\] pixels"):
        RM.mnist_setup_numbers(_setup_cfg(inputs="standardized"), **kw)


def _dense_seed(k, bn_loss1=0.35, bn_final=0.255, none_loss=(2.3, 0.30, 0.20, 0.22, 0.25)):
    runs = {}
    for label, norm, acc, loss in (("none", None, 0.955, list(none_loss)),
                                   ("bn", "torch", 0.96, [2.3, bn_loss1 + 0.01 * k, 0.195, 0.21, bn_final])):
        run = _run([0.1, 0.9, 0.95, 0.96, acc + 0.001 * k], norm=norm, batch_size=10, train_subset=1000)
        run["curves"]["test_loss"] = loss
        run["summary"]["final_test_loss"] = loss[-1]
        runs[label] = run
    return runs


def test_dense128_one_seed_bands_and_numbers():
    d = RM.mnist_dense128({"runs": _dense_seed(0)})["none"]
    assert d["epoch"] == [0.0, 1.0, 2.0, 3.0, 4.0] and d["min_loss"] == 0.2 and d["min_loss_epoch"] == 2.0
    b = RM.mnist_dense128_bands(_seeded(_dense_seed))
    assert b["bn"]["test_loss"]["hi"][1] == pytest.approx(0.39) and b["bn"]["epoch"][1] == 1.0
    cfg = {"steps": 400, "batch_size": 10, "train_subset": 1000, "sizes": [784, 128, 10], "lr": 0.001}
    v = _values(RM.mnist_dense128_numbers(_seeded(_dense_seed), cfg, n_train=4000))
    assert {k: v[k] for k in ("mnist_d_width", "mnist_d_batch", "mnist_d_lr", "mnist_d_ntrain", "mnist_d_split",
                              "mnist_d_epochs")} == pytest.approx({"mnist_d_width": 128, "mnist_d_batch": 10,
                                                                   "mnist_d_lr": 0.001, "mnist_d_ntrain": 1000,
                                                                   "mnist_d_split": 75.0, "mnist_d_epochs": 4.0})
    l1 = [0.35 + 0.01 * k for k in SEEDS]
    assert v["mnist_d_start"].startswith("After 1 epoch the BN network's test loss is *higher*")
    assert _fmt(l1, [0.30] * 5, scale=1, unit="", digits=3) in v["mnist_d_start"]
    assert v["mnist_d_gap"] == _fmt([0.96 + 0.001 * k for k in SEEDS], [0.955 + 0.001 * k for k in SEEDS])
    assert v["mnist_d_verdict"] == "Not clearly" and v["mnist_d_same"] == v["mnist_d_same_final"] == "nearly the same"
    faster = _values(RM.mnist_dense128_numbers(_seeded(lambda k: _dense_seed(k, bn_loss1=0.25)), cfg))
    assert "lower" in faster["mnist_d_start"] and faster["mnist_d_verdict"] == "Only in part"
    with pytest.raises(ValueError, match="nearly the same"):
        RM.mnist_dense128_numbers(_seeded(lambda k: _dense_seed(k, bn_final=0.3)), cfg)
    assert v["mnist_d_overfit"] == "Both networks overfit afterwards, in every seed,"
    late = _values(RM.mnist_dense128_numbers(_seeded(lambda k: _dense_seed(
        k, bn_final=0.205, none_loss=(2.3, 0.3, 0.28, 0.26, 0.2) if k < 2 else (2.3, 0.3, 0.2, 0.22, 0.25))), cfg))
    assert late["mnist_d_overfit"].startswith("In 3 of the 5 seeds without BN and 5 with BN the test loss is lowest")


def test_wobble_and_threshold():
    assert RM.mnist_wobble(_run([0.1, 0.90, 0.95, 0.93, 0.94]), last=3) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="at least two records"):
        RM.mnist_wobble(_run([0.1, 0.9]), last=1)
    v = RM.mnist_threshold_numbers()
    assert v["mnist_acosh49"].value == f"{np.arccosh(49.0):.4f}" == "4.5849"
    assert v["mnist_normal_sat_ppm"].value == pytest.approx(2e6 * stats.norm.sf(np.arccosh(49.0)))
    with pytest.raises(ValueError, match="SATURATION_THRESHOLD"):
        RM.mnist_threshold_numbers(4.0)


# --------------------------------------------------------------------------- figures draw the data they are given
def test_figures_draw_the_given_bands():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean, lo, hi = [0.1, 0.8, 0.9], [0.05, 0.7, 0.85], [0.15, 0.9, 0.95]
    acc = {k: {"step": [0, 1, 2], "mean": mean, "lo": lo, "hi": hi, "seeds": 5} for k in ("none", "bn")}
    fig = PM.figure_mnist_accuracy(acc)
    assert [list(line.get_ydata()) for line in fig.axes[0].lines][0] == mean
    b = {"step": [0, 1, 2], "lr": 0.5, **{p: {"mean": [i, i, i], "lo": [i - 1] * 3, "hi": [i + 1] * 3}
                                          for i, p in enumerate(("p15", "p50", "p85"))}}
    fig = PM.figure_mnist_percentiles({"none": b, "bn": b}, endpoints=[1])
    assert len(fig.axes) == 2 and [1.0, 1.0, 1.0] in [list(line.get_ydata()) for line in fig.axes[1].lines]
    sat = {k: {"step": [0, 1, 2], "layers": [{"mean": [0.1, 0.2, 0.3], "lo": [0] * 3, "hi": [0.5] * 3}] * 2}
           for k in ("none", "bn")}
    fig = PM.figure_mnist_saturation(sat, 4.58)
    assert np.allclose(fig.axes[1].lines[0].get_ydata(), [10, 20, 30])
    grid = RM.mnist_init_seeds(_seeded(_sweep_seed))
    fig = PM.figure_mnist_init_sweep(grid["mean"], grid["hw"])
    assert np.allclose(fig.axes[0].containers[1].lines[0].get_ydata(), [97.2, 97.7, 97.4, 94.2])
    fig = PM.figure_mnist_dense128(RM.mnist_dense128_bands(_seeded(_dense_seed)))
    assert list(fig.axes[0].lines[0].get_xdata()) == [1.0, 2.0, 3.0, 4.0]
    plt.close("all")
    from phone import assert_phone_layout

    from bnlib.plots import style as PS

    for fn, args in ((PM.figure_mnist_percentiles, ({"none": b, "bn": b}, [1])),  # shared y by row
                     (PM.figure_mnist_init_sweep, (grid["mean"], grid["hw"])),  # error bars in a panel's legend
                     (PM.figure_mnist_accuracy, (acc,))):  # one panel
        assert_phone_layout(PS.layouts(fn, *args)[1])
        plt.close("all")
