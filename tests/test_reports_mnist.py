"""The MNIST chapter's derived numbers (bnlib.reports.mnist_*), on tiny hand-made results whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bnlib import results as RR
from bnlib.plots import mnist as PM
from bnlib.reports import mnist as RM

STEPS = [0, 100, 200, 300, 400]


def _run(accs, norm=None, final=None, diverged_at=None, percentiles=None, saturated=None, hist=None, **cfg):
    """A run shaped like bnlib.train's output with the test-accuracy curve ``accs`` at STEPS."""
    n = len(accs)
    config = {"lr": 0.5, "norm": norm, "probe_units": [0, 1, 2], "init_sigma": 0.1, "batch_size": 10,
              "train_subset": 0, "test_subset": 0, "seed": 0, **cfg}
    curves = {"step": STEPS[:n], "test_acc": list(accs), "test_loss": [1.0] * n,
              "percentiles": percentiles if percentiles is not None else [[[[-1.0, 0.0, 1.0]] * 3] * 2] * n,
              "saturated": saturated if saturated is not None else [[0.0, 0.0]] * n,
              "hist": hist if hist is not None else [[[1, 1], [1, 1]]] * n}
    final = accs[-1] if final is None else final
    return {"config": config, "curves": curves,
            "summary": {"diverged_at": diverged_at, "steps_done": STEPS[n - 1] if diverged_at is None else diverged_at,
                        "best_test_acc": max(accs), "final_test_acc": None if diverged_at else final,
                        "final_test_loss": None if diverged_at else 0.3, "final_train_loss": 0.1}}


# --------------------------------------------------------------------------- speed-up
def test_speedup_counts_recorded_steps_both_ways():
    res = {"runs": {
        "none": _run([0.1, 0.80, 0.90, 0.88, 0.90]),  # final 0.90, first reached at step 200
        "bn": _run([0.1, 0.91, 0.93, 0.95, 0.96], norm="torch"),  # reaches 0.90 at step 100; final 0.96
    }}
    s = RM.mnist_speedup(res)
    assert s["final_fast"] == 0.96 and s["final_slow"] == 0.90 and s["steps"] == 400
    assert s["fast_to_slow"] == 100 and s["slow_to_slow"] == 200
    assert s["slow_to_fast"] is None and s["fast_to_fast"] == 400
    assert s["speedup"] == pytest.approx(2.0)


def test_speedup_none_when_fast_never_gets_there_and_errors():
    res = {"runs": {"none": _run([0.1, 0.5, 0.9]), "bn": _run([0.1, 0.2, 0.3], norm="torch")}}
    s = RM.mnist_speedup(res)
    assert s["fast_to_slow"] is None and s["speedup"] is None and s["slow_to_fast"] == 100
    res["runs"]["bn"] = _run([0.1, 0.2], norm="torch", diverged_at=150)
    with pytest.raises(ValueError, match="'bn' diverged"):
        RM.mnist_speedup(res)
    with pytest.raises(ValueError, match="no run 'fast'"):
        RM.mnist_speedup(res, fast="fast")


# --------------------------------------------------------------------------- percentiles and drift
def _pct_run(medians, widths, norm=None):
    """Two hidden layers, three probed units; layer 1 (the last), unit 1 carries the given median and spread;
    every other unit sits still at (-1, 0, 1)."""
    recs = []
    for m, w in zip(medians, widths, strict=True):
        still = [-1.0, 0.0, 1.0]
        recs.append([[still] * 3, [still, [m - w / 2, m, m + w / 2], still]])
    return _run([0.1] * len(medians), norm=norm, percentiles=recs)


def test_percentiles_of_one_unit_and_layer_bounds():
    run = _pct_run([5.0, 1.0, 2.0], [1.0, 2.0, 4.0])
    t = RR.unit_percentiles(run, layer=-1, unit=1)
    assert t == {"step": [0, 100, 200], "p15": [4.5, 0.0, 0.0], "p50": [5.0, 1.0, 2.0], "p85": [5.5, 2.0, 4.0]}
    assert RR.unit_percentiles(run, layer=1, unit=1) == t
    with pytest.raises(ValueError, match="hidden layers 0..1"):
        RR.unit_percentiles(run, layer=2, unit=0)
    with pytest.raises(ValueError, match="unit 7 was not probed"):
        RR.unit_percentiles(run, layer=0, unit=7)


def test_median_drift_skips_step_zero_by_default():
    # step 0 (median 5) is left out: from step 100 the medians are 1, 2, 0.5, 1.5
    run = _pct_run([5.0, 1.0, 2.0, 0.5, 1.5], [9.0, 1.0, 2.0, 2.0, 3.0])
    d = RM.mnist_median_drift(run, layer=-1, unit=1)
    assert d["from_step"] == 100
    assert d["range"] == pytest.approx(1.5)  # 2 - 0.5
    assert d["net"] == pytest.approx(0.5)  # 1.5 - 1
    assert d["width"] == pytest.approx(2.0)  # mean of 1, 2, 2, 3
    assert d["relative"] == pytest.approx(0.75)
    assert d["width_ratio"] == pytest.approx(3.0)
    full = RM.mnist_median_drift(run, layer=-1, unit=1, from_step=0)
    assert full["range"] == pytest.approx(4.5) and full["width_ratio"] == pytest.approx(9.0)
    still = RM.mnist_median_drift(run, layer=0, unit=2)
    assert still["range"] == 0.0 and still["relative"] == 0.0 and still["width_ratio"] == 1.0
    with pytest.raises(ValueError, match="no record at or after step 1000"):
        RM.mnist_median_drift(run, layer=0, unit=0, from_step=1000)


def test_typical_unit_is_the_middle_drifter():
    recs = []
    for k in range(3):
        # unit 0 drifts by 0.2 per record, unit 1 by 1.0, unit 2 by 0.5
        units = [[-1 + 0.2 * k, 0.2 * k, 1 + 0.2 * k], [-1 + k, float(k), 1 + k], [-1 + 0.5 * k, 0.5 * k, 1 + 0.5 * k]]
        recs.append([units])
    run = _run([0.1] * 3, percentiles=recs)
    assert RM.mnist_typical_unit(run, -1) == 2
    run["config"]["probe_units"] = [4, 9, 7]  # unit numbers come from the configuration
    assert RM.mnist_typical_unit(run, 0) == 7


def test_drift_rows_summary_and_table():
    res = {"runs": {"none": _pct_run([5.0, 1.0, 3.0], [1.0, 2.0, 2.0]),
                    "bn": _pct_run([0.0, 0.0, 0.5], [2.0, 2.0, 2.0], norm="torch")}}
    rows = RM.mnist_drift_rows(res)
    assert len(rows) == 2 * 2 * 3
    mine = [r for r in rows if r["layer"] == 2 and r["unit"] == 1]
    assert [(r["network"], r["range"]) for r in mine] == [("none", 2.0), ("BN", 0.5)]
    s = RM.mnist_drift_summary(rows, "none", layer=2)
    assert s["range"] == pytest.approx(2.0 / 3) and s["relative"] == pytest.approx(1.0 / 3)
    assert RM.mnist_drift_summary(rows, "BN")["range"] == pytest.approx(0.5 / 6)
    with pytest.raises(ValueError, match="no drift rows for network 'LN'"):
        RM.mnist_drift_summary(rows, "LN")
    text = repr(RM.mnist_drift_table(rows))
    assert "drift / spread" in text and "2.00" in text


# --------------------------------------------------------------------------- saturation and histograms
def test_saturation_per_layer():
    sat = [[0.1, 0.0], [0.5, 0.02], [0.7, 0.01], [0.6, 0.01]]
    run = _run([0.1] * 4, saturated=sat)
    s = RM.mnist_saturation(run)
    assert s[0] == {"layer": 1, "initial": 0.1, "final": 0.6, "max": 0.7, "max_step": 200}
    assert s[1] == {"layer": 2, "initial": 0.0, "final": 0.01, "max": 0.02, "max_step": 100}
    table = repr(RM.mnist_saturation_table({"runs": {"bn": _run([0.1] * 4, norm="torch", saturated=sat)}}))
    assert "70.0%" in table and "BN" in table


def test_checkpoints_geometric_and_short_runs():
    run = {"curves": {"step": list(range(0, 10_001, 100))}}
    assert RM.mnist_checkpoints(run, 4) == [0, 100, 1000, 10_000]
    assert RM.mnist_checkpoints(run, 2) == [0, 10_000]
    assert RM.mnist_checkpoints({"curves": {"step": [0, 5, 10]}}, 4) == [0, 5, 10]
    with pytest.raises(ValueError, match="at least 2"):
        RM.mnist_checkpoints(run, 1)


def test_histograms_are_densities():
    edges = [-2.0, -1.0, 0.0, 2.0]  # widths 1, 1, 2
    hist = [[[1, 1, 2]], [[0, 4, 0]]]
    run = _run([0.1, 0.2], hist=hist)
    h = RM.mnist_histograms(run, [0, 100], edges=edges)
    assert h["centers"] == [-1.5, -0.5, 1.0]
    assert h["density"][0][0] == pytest.approx([0.25, 0.25, 0.25])
    assert h["density"][1][0] == pytest.approx([0.0, 1.0, 0.0])
    for dens in (h["density"][0][0], h["density"][1][0]):
        assert float(np.dot(dens, np.diff(edges))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="step 50 was not recorded"):
        RM.mnist_histograms(run, [50], edges=edges)
    with pytest.raises(ValueError, match="3 bins but the edges give 2"):
        RM.mnist_histograms(run, [0], edges=[0.0, 1.0, 2.0])


def test_histograms_default_edges_are_the_engines():
    bins = 48
    run = _run([0.1], hist=[[[1] * bins]])
    h = RM.mnist_histograms(run, [0])
    assert len(h["edges"]) == bins + 1 and h["edges"][0] == -12.0 and h["edges"][-1] == 12.0
    assert h["density"][0][0] == pytest.approx([1 / 24] * bins)


# --------------------------------------------------------------------------- learning rate, init sweep, Dense-128
def test_lr_choice_picks_the_best_final_accuracy_and_skips_diverged():
    res = {"runs": {"lr2": _run([0.1, 0.9], lr=2.0), "lr0.1": _run([0.1, 0.8], lr=0.1),
                    "lr0.5": _run([0.1, 0.95], lr=0.5), "lr9": _run([0.1], lr=9.0, diverged_at=50)}}
    rows, best = RM.mnist_lr_choice(res)
    assert [r["lr"] for r in rows] == [0.1, 0.5, 2.0, 9.0]
    assert best["lr"] == 0.5 and best["final_acc"] == 0.95
    assert RM.mnist_lr_row(rows, 2.0)["final_acc"] == 0.9 and RM.mnist_lr_row(rows, 9.0)["final_acc"] is None
    with pytest.raises(ValueError, match="no run with learning rate 1"):
        RM.mnist_lr_row(rows, 1.0)
    with pytest.raises(ValueError, match="every run"):
        RM.mnist_lr_choice({"runs": {"lr9": _run([0.1], lr=9.0, diverged_at=50)}})


def test_wobble():
    run = _run([0.1, 0.90, 0.95, 0.93, 0.94])
    assert RM.mnist_wobble(run, last=3) == pytest.approx(0.02)
    assert RM.mnist_wobble(run, last=5) == pytest.approx(0.80)
    with pytest.raises(ValueError, match="at least two records"):
        RM.mnist_wobble(run, last=1)


def _sweep():
    runs = {}
    accs = {None: {0.01: 0.11, 0.1: 0.96, 1.0: 0.95, 10.0: 0.5}, "torch": {0.01: 0.97, 0.1: 0.975, 1.0: 0.97,
                                                                         10.0: 0.94}}
    for norm, by in accs.items():
        for sigma, a in by.items():
            runs[f"{norm}-{sigma}"] = _run([0.1, a], norm=norm, init_sigma=sigma,
                                           saturated=[[sigma / 20, sigma / 10], [0.0, 0.0]])
    runs["none-diverged"] = _run([0.1], init_sigma=100.0, diverged_at=10, saturated=[[1.0, 1.0]])
    return {"runs": runs}


def test_init_sweep_grid_and_sigma_range():
    grid = RM.mnist_init_sweep(_sweep())
    assert grid["sigmas"] == [0.01, 0.1, 1.0, 10.0, 100.0] and grid["networks"] == ["none", "BN"]
    assert grid["acc"]["none"][0.1] == 0.96 and grid["acc"]["none"][100.0] is None
    assert grid["sat0"]["BN"][10.0] == pytest.approx(0.75)  # mean of 0.5 and 1.0
    assert grid["sat_final"]["BN"][10.0] == 0.0 and grid["sat_final"]["none"][100.0] == 1.0
    r = RM.mnist_sigma_range(grid, "none", within=0.01)
    assert (r["best_sigma"], r["lo"], r["hi"]) == (0.1, 0.1, 1.0) and r["decades"] == pytest.approx(1.0)
    assert r["worst_acc"] == 0.0  # the diverged run counts as 0
    r = RM.mnist_sigma_range(grid, "BN", within=0.01)
    assert (r["lo"], r["hi"], r["best_acc"]) == (0.01, 1.0, 0.975) and r["decades"] == pytest.approx(2.0)
    assert RM.mnist_sigma_range(grid, "BN", within=0.05)["decades"] == pytest.approx(3.0)
    assert math.isclose(RM.mnist_sigma_range(grid, "BN", within=0.0)["decades"], 0.0)
    with pytest.raises(ValueError, match="network 'LN' is not in the sweep"):
        RM.mnist_sigma_range(grid, "LN", 0.01)
    with pytest.raises(ValueError, match="two runs of network 'none' have init_sigma 0.1"):
        RM.mnist_init_sweep({"runs": {"a": _run([0.1, 0.5]), "b": _run([0.1, 0.6])}})
    assert "96.00%" in repr(RM.mnist_init_table(grid))


def test_dense128_epochs_and_lowest_loss():
    run = _run([0.1, 0.9, 0.95, 0.96], batch_size=10, train_subset=1000)  # 100 steps per epoch
    run["curves"]["test_loss"] = [2.3, 0.3, 0.2, 0.25]
    d = RM.mnist_dense128({"runs": {"none": run}})["none"]
    assert d["epoch"] == [0.0, 1.0, 2.0, 3.0]
    assert d["min_loss"] == 0.2 and d["min_loss_epoch"] == 2.0
    assert d["final_acc"] == 0.96 and d["final_loss"] == 0.3 and d["train_loss"] == 0.1 and d["best_acc"] == 0.96
    run["config"]["train_subset"] = 0  # all 60,000 images: 6,000 steps per epoch at batch 10
    assert RM.mnist_dense128({"runs": {"none": run}})["none"]["epoch"][1] == pytest.approx(100 / 6000)


def test_lr_table_formats_rows():
    runs = {"a": _run([0.1, 0.9512], lr=0.5), "b": _run([0.1], lr=4.0, diverged_at=1200)}
    rows, _ = RM.mnist_lr_choice({"runs": runs})
    text = repr(RM.mnist_lr_table(rows))
    assert "95.12%" in text and "1,200" in text and "n/a" in text


# --------------------------------------------------------------------------- figures draw the data they are given
def _fig1():
    pct = [[[[-1.0 - k, 0.1 * k, 1.0 + k]] * 3] * 3 for k in range(5)]
    hist = [[[k + 1] * 48] * 3 for k in range(5)]
    sat = [[0.1 * k, 0.01 * k, 0.0] for k in range(5)]
    return {"runs": {"none": _run([0.1, 0.8, 0.9, 0.92, 0.93], percentiles=pct, saturated=sat, hist=hist),
                     "bn": _run([0.1, 0.9, 0.95, 0.96, 0.97], norm="torch", percentiles=pct, saturated=sat, hist=hist)}}


def test_figures_draw_the_given_curves():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    res = _fig1()
    fig = PM.figure_mnist_accuracy(res, RM.mnist_speedup(res))
    ys = [list(line.get_ydata()) for line in fig.axes[0].lines]
    assert [0.1, 0.8, 0.9, 0.92, 0.93] in ys and [0.1, 0.9, 0.95, 0.96, 0.97] in ys
    fig = PM.figure_mnist_percentiles(res, -1, 1)
    med = [list(line.get_ydata()) for line in fig.axes[1].lines if line.get_label() == "median"]
    assert np.allclose(med, [[0.0, 0.1, 0.2, 0.3, 0.4]])
    fig = PM.figure_mnist_saturation(res, 4.58)
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [0, 10, 20, 30, 40])
    assert np.allclose(fig.axes[1].lines[1].get_ydata(), [0, 1, 2, 3, 4])
    hists = {k: RM.mnist_histograms(res["runs"][k], [0, 400]) for k in ("none", "bn")}
    fig = PM.figure_mnist_histograms(res, hists, 4.58)
    assert np.allclose(fig.axes[0].lines[1].get_ydata(), 1 / 24)
    grid = RM.mnist_init_sweep(_sweep())
    fig = PM.figure_mnist_init_sweep(grid)
    assert np.allclose(np.asarray(fig.axes[0].lines[1].get_ydata(), dtype=float), [97, 97.5, 97, 94])
    assert np.allclose(fig.axes[1].lines[0].get_ydata(), [0.075, 0.75, 7.5, 75, 100])  # 100 mean(s/20, s/10)
    run = _run([0.1, 0.9, 0.95], batch_size=10, train_subset=1000)
    run["curves"]["test_loss"] = [2.3, 0.3, 0.2]
    fig = PM.figure_mnist_dense128(RM.mnist_dense128({"runs": {"none": run, "bn": run}}))
    assert list(fig.axes[0].lines[0].get_xdata()) == [1.0, 2.0] and list(fig.axes[0].lines[0].get_ydata()) == [0.3, 0.2]
    plt.close("all")


def test_last_lead_and_spread():
    res = {"runs": {"none": _run([0.1, 0.9, 0.8, 0.93, 0.90]), "bn": _run([0.1, 0.8, 0.9, 0.92, 0.95], norm="torch")}}
    assert RM.mnist_last_lead(res) == 300  # none ahead at 100 and 300; BN from 400 on
    res["runs"]["none"] = _run([0.1, 0.5, 0.5, 0.5, 0.5])
    assert RM.mnist_last_lead(res) is None  # step 0 (a tie) does not count
    run = _pct_run([5.0, 1.0, 2.0], [1.0, 2.0, 4.0])
    assert RM.mnist_spread(run, -1, 1, 200) == 4.0 and RM.mnist_spread(run, 0, 0, 0) == 2.0
    with pytest.raises(ValueError, match="step 50 was not recorded"):
        RM.mnist_spread(run, 0, 0, 50)



# --------------------------------------------------------------------------- what each section glues
def _values(glued: dict) -> dict:
    return {k: v.value for k, v in glued.items()}


def test_jitter_and_checkpoint_histograms():
    run = _pct_run([5.0, 1.0, 2.0, 0.5, 1.5], [1.0] * 5)
    assert RM.mnist_jitter(run, -1, 1) == pytest.approx((1.0 + 1.5 + 1.0) / 3)  # step 0 left out
    assert RM.mnist_jitter(run, 0, 0) == 0.0
    with pytest.raises(ValueError, match="two records after step 0"):
        RM.mnist_jitter(_pct_run([5.0, 1.0], [1.0, 1.0]), -1, 1)
    hist = [[[k + 1] * 48] for k in range(5)]
    res = {"runs": {"none": _run([0.1] * 5, hist=hist), "bn": _run([0.1] * 5, norm="torch", hist=hist)}}
    h = RM.mnist_checkpoint_histograms(res, 2)
    assert h["none"]["steps"] == h["bn"]["steps"] == [0, 400]
    assert h["bn"]["density"][1][0] == pytest.approx([1 / 24] * 48)


def _setup_cfg(**kw):
    return {"sizes": [784, 100, 100, 100, 10], "momentum": 0.0, "weight_decay": 0.0, "lr_decay_every": 0,
            "optimizer": "sgd", "record_every": 500, "steps": 50_000, "batch_size": 60, "init_sigma": 0.1,
            "lr": 0.5, "probe_batch": 1000, "probe_units": [0, 1, 2], **kw}


def test_setup_numbers_and_the_prose_checks():
    import dataclasses

    kw = {"n_train": 60_000, "n_test": 10_000, "mean": 0.1307, "std": 0.3081, "bn_momentum": 0.1, "bn_eps": 1e-5}
    v = RM.mnist_setup_numbers(_setup_cfg(), **kw)
    assert _values(v) == {"mnist_ntrain": 60_000, "mnist_ntest": 10_000, "mnist_in": 784, "mnist_width": 100,
                          "mnist_depth": 3, "mnist_classes": 10, "mnist_batch": 60, "mnist_steps": 50_000,
                          "mnist_epochs": 50.0, "mnist_every": 500, "mnist_sigma": 0.1, "mnist_lr": 0.5,
                          "mnist_probe": 1000, "mnist_nunits": 3, "mnist_mean": 0.1307, "mnist_std": 0.3081,
                          "mnist_bn_momentum": 0.1, "mnist_bn_eps": 1e-5,
                          "mnist_threshold": pytest.approx(math.acosh(49))}
    assert all(g.kind == "number" and g.digits == 6 for g in v.values())
    cfg_type = dataclasses.make_dataclass("Cfg", list(_setup_cfg()))
    as_object = cfg_type(**_setup_cfg())
    assert _values(RM.mnist_setup_numbers(as_object, registered=as_object, **kw)) == _values(v)
    with pytest.raises(ValueError, match="registered mnist_fig1 experiment"):
        RM.mnist_setup_numbers(_setup_cfg(), registered=_setup_cfg(lr=1.0), **kw)
    with pytest.raises(ValueError, match="plain SGD"):
        RM.mnist_setup_numbers(_setup_cfg(momentum=0.9), **kw)
    with pytest.raises(ValueError, match="50,000 steps"):
        RM.mnist_setup_numbers(_setup_cfg(batch_size=32), **kw)


def _lr_grid(override=None):
    accs = {0.1: [0.1, 0.5, 0.6, 0.7, 0.8], 0.5: [0.93, 0.94, 0.95, 0.95, 0.955],
            1.0: [0.93, 0.94, 0.95, 0.955, 0.96], 2.0: [0.1, 0.9, 0.92, 0.93, 0.94], **(override or {})}
    return {"runs": {f"lr{lr:g}": _run(a, lr=lr) for lr, a in accs.items()}}


def test_lr_numbers_and_the_prose_checks():
    configs = {"lr0.1": {"norm": None, "steps": 300}, "lr2": {"norm": None, "steps": 300}}
    v = RM.mnist_lr_numbers(_lr_grid(), configs, (0.1, 0.5, 1.0, 2.0), 0.5)
    assert v["mnist_lr_list"].kind == "text" and v["mnist_lr_gap"].digits == 4
    # best: rate 1 (0.96); its largest step between records is 0.01; the chosen rate 0.5 ends at 0.955
    assert _values(v) == pytest.approx({"mnist_lr_steps": 300, "mnist_lr_list": "0.1, 0.5, 1 and 2",
                                        "mnist_lr_best": 1.0, "mnist_lr_best_acc": 96.0, "mnist_lr_chosen_acc": 95.5,
                                        "mnist_lr_gap": 0.5, "mnist_lr_wobble": 1.0, "mnist_lr_lo": 0.1,
                                        "mnist_lr_lo_acc": 80.0, "mnist_lr_hi": 2.0, "mnist_lr_hi_acc": 94.0})
    with pytest.raises(ValueError, match="only the network without BN"):
        RM.mnist_lr_numbers(_lr_grid(), {"a": {"norm": "torch", "steps": 300}}, (0.1,), 0.5)
    with pytest.raises(ValueError, match="best or a smaller one"):
        RM.mnist_lr_numbers(_lr_grid(), configs, (0.1,), 2.0)  # 2 points behind the best
    with pytest.raises(ValueError, match="smallest rate is clearly too slow"):
        RM.mnist_lr_numbers(_lr_grid({0.1: [0.1, 0.9, 0.93, 0.95, 0.95]}), configs, (0.1,), 0.5)
    diverged = _lr_grid()
    diverged["runs"]["lr4"] = _run([0.1], lr=4.0, diverged_at=50)
    with pytest.raises(ValueError, match="diverges"):
        RM.mnist_lr_numbers(diverged, configs, (0.1,), 0.5)


def _acc_res(none=(0.1, 0.80, 0.85, 0.90, 0.90), bn=(0.1, 0.70, 0.92, 0.95, 0.97)):
    return {"runs": {"none": _run(list(none)), "bn": _run(list(bn), norm="torch")}}


def test_accuracy_numbers_and_the_prose_checks():
    cfg = {"steps": 1000, "record_every": 100}  # the last fifth: 200 steps, the last 3 records
    v = _values(RM.mnist_accuracy_numbers(_acc_res(), cfg))
    assert v == pytest.approx({"mnist_final_none": 90.0, "mnist_final_bn": 97.0, "mnist_final_gap": 7.0,
                               "mnist_err_reduction": 70.0,  # 3% errors instead of 10%
                               "mnist_best_none": 90.0, "mnist_best_bn": 97.0,
                               "mnist_bn_to_none": 200, "mnist_none_to_none": 300, "mnist_bn_to_bn": 400,
                               "mnist_speedup": 1.5, "mnist_speedup_total": 2.0,  # 300 / 200, 400 / 200
                               "mnist_early": "Early on, it is not: at step 100 the network without BN is "
                                              "still ahead, and only from step 200 on is the BN network always ahead.",
                               "mnist_tail": 200, "mnist_wobble_none": 5.0, "mnist_wobble_bn": 3.0,
                               "mnist_acc_holds": "yes", "mnist_gap_sentence": v["mnist_gap_sentence"],
                               "mnist_acc_verdict": v["mnist_acc_verdict"]})
    with pytest.raises(ValueError, match="never reaches"):
        RM.mnist_accuracy_numbers(_acc_res(none=(0.1, 0.8, 0.85, 0.97, 0.90)), cfg)
    early = _values(RM.mnist_accuracy_numbers(_acc_res(bn=(0.1, 0.85, 0.92, 0.95, 0.97)), cfg))["mnist_early"]
    assert early == "Nor is it behind early on: the BN network is ahead at every record after step 0."
    assert "not an accident" in v["mnist_gap_sentence"] and "fewer steps" in v["mnist_acc_verdict"]
    close = _values(RM.mnist_accuracy_numbers(_acc_res(bn=(0.1, 0.70, 0.92, 0.80, 0.93)), cfg))
    assert "within what the BN network's own wobble" in close["mnist_gap_sentence"]
    assert "not clearly for the final accuracy" in close["mnist_acc_verdict"]


def _units(*per_unit):
    """One record of one hidden layer: (median, 15-85 spread) per unit."""
    return [[[m - w / 2, m, m + w / 2] for m, w in per_unit]]


def _drift_res(bn_unit1=((1.0, 2.0), (3.0, 4.0), (1.5, 2.0)), bn_unit2=(1.5, 3.0), none_spread0=0.1):
    """One hidden layer, three probed units, records at steps 0-300. Without BN, from step 100 on, unit 0's
    median moves by 0.2 (spread 1), unit 1's by 1 (spread 2), unit 2's by 4 (spread 2); unit 1 is the typical one."""
    none = [_units((0.0, 1.0), (0.0, none_spread0), (0.0, 2.0)),
            *[_units((0.1 * k, 1.0), (1.0 + 0.5 * k, 2.0), (2.0 * k, 2.0)) for k in range(3)]]
    bn = [none[0], *[_units((0.1 * k, 1.0), bn_unit1[k], (bn_unit2[0] * k, 2.0)) for k in range(3)]]
    return {"runs": {"none": _run([0.1] * 4, percentiles=none), "bn": _run([0.1] * 4, norm="torch", percentiles=bn)}}


def test_percentile_numbers_and_the_prose_checks():
    cfg = {"sizes": [784, 100, 10], "record_every": 100}
    v = _values(RM.mnist_percentile_numbers(_drift_res(), cfg))
    assert v == pytest.approx({"mnist_unit": 1, "mnist_last_layer": 1, "mnist_from_step": 100,
                               "mnist_drift_none": 1.0, "mnist_drift_net_none": 1.0, "mnist_width_none": 2.0,
                               "mnist_rel_none": 0.5, "mnist_wratio_none": 1.0,
                               "mnist_drift_bn": 2.0, "mnist_drift_net_bn": 0.5, "mnist_width_bn": 8 / 3,
                               "mnist_rel_bn": 0.75, "mnist_wratio_bn": 2.0,
                               "mnist_rel_all_none": (0.2 + 0.5 + 2.0) / 3, "mnist_rel_all_bn": (0.2 + 0.75 + 1.5) / 3,
                               "mnist_n_probed": 3, "mnist_spread0": 0.1, "mnist_spread1_none": 2.0,
                               "mnist_spread_growth": 20.0, "mnist_drift_compare": "about as much with BN as without",
                               "mnist_drift_verdict": v["mnist_drift_verdict"], "mnist_texture": v["mnist_texture"],
                               "mnist_drift_holds": "only before the first record"}, abs=1e-4)
    with pytest.raises(ValueError, match="drifts no less with BN"):
        RM.mnist_percentile_numbers(_drift_res(bn_unit1=((1.0, 2.0), (1.2, 2.0), (1.4, 2.0))), cfg)
    more = _values(RM.mnist_percentile_numbers(_drift_res(bn_unit2=(10.0, 2.0)), cfg))
    assert more["mnist_drift_compare"] == "more with BN than without" and "one seed" in more["mnist_drift_verdict"]
    with pytest.raises(ValueError, match="more than tenfold"):
        RM.mnist_percentile_numbers(_drift_res(none_spread0=1.0), cfg)
    assert "texture" in v["mnist_texture"]
    calm = _values(RM.mnist_percentile_numbers(_drift_res(bn_unit1=((1.0, 2.0), (3.0, 4.0), (3.0, 2.0))), cfg))
    assert "not enough to set" in calm["mnist_texture"]  # BN's median moves 1 per record on average, not above 2 x 0.5


def _sat_res(bn_initial=0.005, none_final=0.65, bn_l3_final=0.02):
    none = [[0.005, 0.0, 0.0], [0.6, 0.01, 0.02], [0.7, 0.02, 0.01], [none_final, 0.01, 0.01]]
    bn = [[bn_initial, 0.0, 0.0], [0.05, 0.02, 0.03], [0.04, 0.03, 0.04], [0.03, 0.02, bn_l3_final]]
    return {"runs": {"none": _run([0.1] * 4, saturated=none), "bn": _run([0.1] * 4, norm="torch", saturated=bn)}}


def test_saturation_numbers_and_the_prose_checks():
    v = RM.mnist_saturation_numbers(_sat_res())
    assert v["mnist_sat_none_l1"].digits == 4 and v["mnist_checkpoints"].kind == "text"
    got = _values(v)
    assert got["mnist_checkpoints"] == "0, 100, 200 and 300" and got["mnist_hist_max"] == 12.0
    assert got["mnist_sat_none_l1"] == pytest.approx(65.0) and got["mnist_sat0_none_l1"] == pytest.approx(0.5)
    assert got["mnist_satmax_none_l1"] == pytest.approx(70.0) and got["mnist_satmax_step_none_l1"] == 200
    assert got["mnist_sat_bn_l1"] == pytest.approx(3.0) and got["mnist_satmax_bn_l3"] == pytest.approx(4.0)
    assert got["mnist_satmax_step_bn_l3"] == 200 and got["mnist_satmax_step_none_l3"] == 100
    assert len(got) == 2 * 3 * 4 + 2
    with pytest.raises(ValueError, match="same function at step 0"):
        RM.mnist_saturation_numbers(_sat_res(bn_initial=0.2))
    with pytest.raises(ValueError, match="many end saturated without BN"):
        RM.mnist_saturation_numbers(_sat_res(none_final=0.08))
    with pytest.raises(ValueError, match="later hidden layers"):
        RM.mnist_saturation_numbers(_sat_res(bn_l3_final=0.005))


def _init_res(none=None, bn=None):
    none = none or {0.01: 0.11, 0.1: 0.96, 1.0: 0.955, 10.0: 0.5}
    bn = bn or {0.01: 0.97, 0.1: 0.975, 1.0: 0.972, 10.0: 0.94}
    runs = {}
    for norm, by, end in ((None, none, [0.3, 0.2]), ("torch", bn, [0.01, 0.03])):
        for s, a in by.items():
            runs[f"{norm}-{s}"] = _run([0.1, a], norm=norm, init_sigma=s, saturated=[[s / 20, s / 10], end])
    return {"runs": runs}


def test_init_numbers_and_the_prose_checks():
    configs = {"a": {"steps": 2000}}
    v = _values(RM.mnist_init_numbers(_init_res(), configs, within=0.01))
    assert v == pytest.approx({"mnist_sw_steps": 2000, "mnist_sw_min": 0.01, "mnist_sw_max": 10.0,
                               "mnist_sw_decades": 3.0, "mnist_sw_within": 1.0,
                               "mnist_sw_lo_none": 0.1, "mnist_sw_hi_none": 1.0, "mnist_sw_dec_none": 1.0,
                               "mnist_sw_best_none": 96.0, "mnist_sw_bestsig_none": 0.1, "mnist_sw_worst_none": 11.0,
                               "mnist_sw_lo_bn": 0.01, "mnist_sw_hi_bn": 1.0, "mnist_sw_dec_bn": 2.0,
                               "mnist_sw_best_bn": 97.5, "mnist_sw_bestsig_bn": 0.1, "mnist_sw_worst_bn": 94.0,
                               "mnist_sw_drop_bn": 3.5, "mnist_sw_sat0_max": 75.0,  # mean of 0.5 and 1.0
                               "mnist_sw_satend_none": 25.0, "mnist_sw_satend_bn": 2.0})
    with pytest.raises(ValueError, match="ahead at every sigma"):
        RM.mnist_init_numbers(_init_res(bn={0.01: 0.10, 0.1: 0.975, 1.0: 0.972, 10.0: 0.94}), configs)
    flat_none = {0.01: 0.95, 0.1: 0.96, 1.0: 0.955, 10.0: 0.955}  # within a point everywhere: 3 decades
    with pytest.raises(ValueError, match="more decades"):
        RM.mnist_init_numbers(_init_res(none=flat_none, bn={0.01: 0.97, 0.1: 0.975, 1.0: 0.972, 10.0: 0.96}),
                              configs)
    with pytest.raises(ValueError, match="worst result is at the largest sigma"):
        RM.mnist_init_numbers(_init_res(none={0.01: 0.11, 0.1: 0.96, 1.0: 0.90, 10.0: 0.5},
                                        bn={0.01: 0.93, 0.1: 0.975, 1.0: 0.972, 10.0: 0.94}), configs)


def _dense_res(none_loss=(2.3, 0.30, 0.20, 0.22, 0.25), bn_loss=(2.3, 0.35, 0.195, 0.21, 0.255),
               bn_acc=(0.1, 0.88, 0.94, 0.95, 0.96), bn_final_loss=0.255):
    runs = {}
    for label, norm, acc, loss, final in (("none", None, (0.1, 0.90, 0.95, 0.96, 0.955), none_loss, 0.25),
                                          ("bn", "torch", bn_acc, bn_loss, bn_final_loss)):
        run = _run(list(acc), norm=norm, batch_size=10, train_subset=1000)  # 100 steps per epoch
        run["curves"]["test_loss"] = list(loss)
        run["summary"]["final_test_loss"] = final
        runs[label] = run
    return {"runs": runs}


def test_dense128_setup_and_numbers_and_the_prose_checks():
    cfg = {"sizes": [784, 128, 10], "batch_size": 10, "lr": 0.001, "train_subset": 1000, "steps": 400}
    assert _values(RM.mnist_dense128_setup(cfg, n_train=4000)) == pytest.approx(
        {"mnist_d_width": 128, "mnist_d_batch": 10, "mnist_d_lr": 0.001, "mnist_d_ntrain": 1000,
         "mnist_d_split": 75.0, "mnist_d_epochs": 4.0})
    v = _values(RM.mnist_dense128_numbers(_dense_res(), cfg))
    assert v == pytest.approx({"mnist_d_acc_none": 95.5, "mnist_d_loss_none": 0.25, "mnist_d_min_none": 0.20,
                               "mnist_d_minep_none": 2.0, "mnist_d_loss1_none": 0.30, "mnist_d_ep1_none": 1.0,
                               "mnist_d_acc_bn": 96.0, "mnist_d_loss_bn": 0.255, "mnist_d_min_bn": 0.195,
                               "mnist_d_minep_bn": 2.0, "mnist_d_loss1_bn": 0.35, "mnist_d_ep1_bn": 1.0,
                               "mnist_d_gap": 0.5, "mnist_d_wobble": 6.0,  # BN's last four: 0.88 -> 0.94
                               "mnist_d_start": "After 1 epoch the BN network's test loss is *higher* (0.350 against "
                                                "0.300), so there is no faster start."})
    with pytest.raises(ValueError, match="less than the wobble"):  # 5.5 points behind; the wobble is 5
        RM.mnist_dense128_numbers(_dense_res(bn_acc=(0.1, 0.88, 0.89, 0.895, 0.90)), cfg)
    faster = _values(RM.mnist_dense128_numbers(_dense_res(bn_loss=(2.3, 0.25, 0.195, 0.21, 0.255)), cfg))
    assert faster["mnist_d_start"].startswith("After 1 epoch the BN network's test loss is lower (0.250 against")
    with pytest.raises(ValueError, match="final losses are nearly the same"):  # 0.30 against 0.25
        RM.mnist_dense128_numbers(_dense_res(bn_final_loss=0.3), cfg)
    with pytest.raises(ValueError, match="min losses are nearly the same"):  # 0.18 against 0.20
        RM.mnist_dense128_numbers(_dense_res(bn_loss=(2.3, 0.35, 0.18, 0.21, 0.255)), cfg)
    with pytest.raises(ValueError, match="overfit before the end"):  # lowest at the last epoch without BN
        RM.mnist_dense128_numbers(_dense_res(none_loss=(2.3, 0.30, 0.28, 0.26, 0.20)), cfg)
    with pytest.raises(ValueError, match="overfit before the end"):  # ... and with BN
        RM.mnist_dense128_numbers(_dense_res(bn_loss=(2.3, 0.35, 0.30, 0.28, 0.255), bn_final_loss=0.255,
                                             none_loss=(2.3, 0.30, 0.25, 0.26, 0.255)), cfg)


def test_threshold_numbers():
    from scipy.stats import norm

    v = RM.mnist_threshold_numbers()
    assert v["mnist_acosh49"].kind == "text" and v["mnist_acosh49"].value == f"{np.arccosh(49.0):.4f}" == "4.5849"
    assert v["mnist_normal_sat_ppm"].value == pytest.approx(2e6 * norm.sf(np.arccosh(49.0)))
    with pytest.raises(ValueError, match="SATURATION_THRESHOLD"):
        RM.mnist_threshold_numbers(4.0)
