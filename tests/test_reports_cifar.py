"""The CIFAR-10 chapter's derived tables (bnlib.reports), on tiny hand-made results whose answers are known."""

from __future__ import annotations

import json

import pytest

from bnlib import results as RR
from bnlib.plots import cifar as PC
from bnlib.reports import cifar as RC
from bnlib.reports import format as RF

STEPS = [0, 100, 200, 300, 400]


def _run(accs, lr=0.1, norm=None, final=0.5, diverged_at=None, saturated=None, train_loss=2.0, **cfg):
    """A result dict shaped like bnlib.train's, with the test-accuracy curve ``accs`` at STEPS."""
    n = len(accs)
    config = {"lr": lr, "norm": norm, "dropout": 0.0, "weight_decay": 0.0, "lr_decay": 1.0, "lr_decay_every": 0,
              "seed": 0, "depth": 3, "train_subset": 0, **cfg}
    return {
        "config": config,
        "curves": {"step": STEPS[:n], "test_acc": list(accs), "train_loss": [None] + [train_loss] * (n - 1),
                   "saturated": saturated if saturated is not None else [[0.0, 0.0]] * n},
        "summary": {"diverged_at": diverged_at, "best_test_acc": max(accs),
                    "final_test_acc": None if diverged_at else final},
    }


# --------------------------------------------------------------------------- steps to accuracy
def test_steps_to_accuracy_paper_table():
    runs = {
        "none-x1": _run([0.1, 0.3, 0.5, 0.6, 0.55], final=0.55),  # target 0.6, reached at step 300
        "bn-x1": _run([0.1, 0.4, 0.6, 0.65, 0.7], norm="torch", final=0.7),  # reaches exactly 0.6 at 200
        "bn-x5": _run([0.1, 0.62, 0.7, 0.71, 0.72], lr=0.5, norm="torch", final=0.72),  # step 100
        "none-x5": _run([0.1, 0.2, 0.2, 0.2, 0.2], lr=0.5, final=0.2),  # never
        "none-x30": _run([0.1, 0.15], lr=3.0, diverged_at=150),  # diverged
    }
    target, rows = RC.steps_to_accuracy(runs, baseline="none-x1")
    assert target == 0.6
    by = {r["label"]: r for r in rows}
    assert [r["label"] for r in rows] == list(runs)
    assert by["none-x1"]["steps"] == 300 and by["none-x1"]["speedup"] == 1.0
    assert by["bn-x1"]["steps"] == 200 and by["bn-x1"]["speedup"] == pytest.approx(1.5)
    assert by["bn-x5"]["steps"] == 100 and by["bn-x5"]["speedup"] == pytest.approx(3.0)
    assert by["bn-x5"]["best_acc"] == 0.72 and by["bn-x5"]["final_acc"] == 0.72 and by["bn-x5"]["lr"] == 0.5
    assert by["none-x5"]["steps"] is None and by["none-x5"]["speedup"] is None
    assert by["none-x30"]["diverged"] == 1 and by["none-x30"]["diverged_at"] == 150
    assert by["none-x30"]["final_acc"] is None and by["none-x30"]["best_acc"] == 0.15
    # a subset of rows, in the order asked for
    _, rows = RC.steps_to_accuracy(runs, baseline="none-x1", labels=["bn-x5", "none-x1"])
    assert [r["label"] for r in rows] == ["bn-x5", "none-x1"]


def test_steps_to_accuracy_unknown_label():
    runs = {"a": _run([0.1, 0.2])}
    with pytest.raises(ValueError, match="no run labelled 'b'"):
        RC.steps_to_accuracy(runs, baseline="b")
    with pytest.raises(ValueError, match="non-empty dict"):
        RC.steps_to_accuracy({}, baseline="a")


def test_seeds_are_aggregated():
    runs = {
        "base-seed0": _run([0.1, 0.4, 0.5], final=0.5),  # best 0.5
        "base-seed1": _run([0.1, 0.6, 0.7], final=0.7),  # best 0.7 -> target = mean = 0.6
        "bn-seed0": _run([0.1, 0.6, 0.6], final=0.6),  # reaches 0.6 at 100
        "bn-seed1": _run([0.1, 0.2, 0.3], final=0.3),  # never
        "bn-seed2": _run([0.1, 0.5, 0.61], final=0.61),  # at 200
    }
    target, rows = RC.steps_to_accuracy(runs, baseline="base")
    assert target == pytest.approx(0.6)
    bn = rows[1]
    assert bn["label"] == "bn" and bn["seeds"] == 3
    assert bn["steps"] == 200  # median of (100, 200, never)
    assert bn["best_acc"] == pytest.approx((0.6 + 0.3 + 0.61) / 3)
    assert bn["final_acc"] == pytest.approx((0.6 + 0.3 + 0.61) / 3)
    # the baseline's seeds: seed1 reaches 0.6 at 100, seed0 never -> upper median of two = never
    assert rows[0]["steps"] is None and rows[0]["speedup"] is None


def test_median_steps():
    assert RR.median_steps([100, None, 300]) == 300
    assert RR.median_steps([100, None, None]) is None
    assert RR.median_steps([300, 100]) == 300
    assert RR.median_steps([500]) == 500


def test_one_diverged_seed_voids_the_final_accuracy():
    group = [_run([0.1, 0.5], final=0.5), _run([0.1, 0.3], diverged_at=170), _run([0.1, 0.4], diverged_at=120)]
    s = RC.run_stats(group)
    assert s["final_acc"] is None and s["diverged"] == 2 and s["diverged_at"] == 120
    with pytest.raises(ValueError, match="at least one"):
        RC.run_stats([])


# --------------------------------------------------------------------------- learning-rate tolerance
MULTS = (1 / 3, 1, 2, 5, 10, 30)


def _sweep(none_finals, bn_finals, none_diverged=()):
    runs = {}
    for norm, finals in ((None, none_finals), ("torch", bn_finals)):
        for k, f in zip(MULTS, finals, strict=True):
            div = 50 if (norm is None and k in none_diverged) else None
            runs[f"{'bn' if norm else 'none'}-x{k:.3g}"] = _run([0.1, f], lr=0.1 * k, norm=norm, final=f,
                                                                diverged_at=div)
    return runs


def test_lr_sweep_rows_and_multipliers():
    rows = RC.lr_sweep(_sweep([0.3] * 6, [0.5] * 6), base_lr=0.1)
    assert [r["multiplier"] for r in rows] == [0.333333, 1, 2, 5, 10, 30] * 2
    assert [r["norm"] for r in rows] == [None] * 6 + ["torch"] * 6
    assert rows[3]["label"] == "none-x5" and rows[3]["lr"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="base_lr must be positive"):
        RC.lr_sweep(_sweep([0.3] * 6, [0.5] * 6), base_lr=0)


def test_max_tolerated_multiplier():
    # without BN: 1 and 2 train, 5 diverges, 10 would train again but the range is broken at 5
    rows = RC.lr_sweep(_sweep([0.3, 0.4, 0.4, 0.0, 0.4, 0.1], [0.5, 0.5, 0.52, 0.5, 0.48, 0.45],
                             none_diverged=(5,)), base_lr=0.1)
    assert RC.max_tolerated_multiplier(rows, None, threshold=0.35) == 2
    assert RC.max_tolerated_multiplier(rows, "torch", threshold=0.35) == 30
    # a threshold between 0.45 and 0.48 stops BN at 10
    assert RC.max_tolerated_multiplier(rows, "torch", threshold=0.46) == 10
    # the rate below the baseline does not count; a baseline that fails gives None
    assert RC.max_tolerated_multiplier(rows, None, threshold=0.45) is None
    with pytest.raises(ValueError, match="no run at multiplier 1"):
        RC.max_tolerated_multiplier(rows, "layer", threshold=0.1)


# --------------------------------------------------------------------------- depth and saturation
def test_depth_saturation():
    runs = {
        "none-depth9": _run([0.1, 0.1], depth=9, saturated=[[0.0, 0.2], [0.5, 0.9]]),
        "bn-depth9": _run([0.1, 0.4], norm="torch", depth=9, saturated=[[0.0, 0.0], [0.02, 0.04]]),
    }
    rows = RC.depth_saturation(runs)
    assert [r["depth"] for r in rows] == [9, 9]
    assert rows[0]["sat_final"] == [0.5, 0.9] and rows[0]["sat_final_mean"] == pytest.approx(0.7)
    assert rows[0]["sat_init"] == [0.0, 0.2] and rows[0]["sat_init_mean"] == pytest.approx(0.1)
    assert rows[1]["sat_final_mean"] == pytest.approx(0.03) and rows[1]["best_acc"] == 0.4
    # over two seeds, the per-layer mean
    two = {"a-seed0": _run([0.1], saturated=[[0.2, 0.4]]), "a-seed1": _run([0.1], saturated=[[0.4, 0.0]])}
    assert RC.depth_saturation(two)[0]["sat_final"] == pytest.approx([0.3, 0.2])


def test_gradient_ratio_and_names():
    a = _run([0.1, 0.2, 0.3], depth=3)
    a["curves"]["grad_norm"] = [None, [1e-3, 1e-2, 1e-1, 5.0], [1e-4, 1e-3, 1e-2, 5.0]]  # last entry: classifier
    assert RC.gradient_ratio([a]) == pytest.approx(100.0)  # 1e-2 / 1e-4
    assert RC.gradient_ratio([a], record=1) == pytest.approx(100.0)
    b = _run([0.1, 0.2, 0.3], depth=3)
    b["curves"]["grad_norm"] = [None, [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 10000.0, 1.0]]
    assert RC.gradient_ratio([a, b]) == pytest.approx(1000.0)  # geometric mean of 100 and 10,000
    with pytest.raises(ValueError, match="step 0 has none"):
        RC.gradient_ratio([a], record=0)
    assert RC.sweep_name("torch", 5.0) == "BN-x5" and RC.sweep_name(None, 1 / 3) == "no BN-x0.333"


# --------------------------------------------------------------------------- the recipe's ablation
def test_ablation_changes_and_steps():
    runs = {
        "none-baseline": _run([0.1, 0.3, 0.5, 0.5, 0.52], dropout=0.3, weight_decay=5e-4, final=0.5),
        "bn-baseline": _run([0.1, 0.4, 0.52, 0.6, 0.6], norm="torch", dropout=0.3, weight_decay=5e-4),
        "+lr x5": _run([0.1, 0.55, 0.6], lr=0.5, norm="torch", dropout=0.3, weight_decay=5e-4),
        "+no dropout": _run([0.1, 0.52, 0.6], lr=0.5, norm="torch", dropout=0.0, weight_decay=5e-4),
        "+decay": _run([0.1, 0.4, 0.6], lr=0.5, norm="torch", weight_decay=1e-4, lr_decay=0.5, lr_decay_every=200),
    }
    target, rows = RC.ablation(runs, baseline="none-baseline")
    assert target == 0.52
    assert [r["steps"] for r in rows] == [400, 200, 100, 100, 200]
    assert [r["speedup"] for r in rows] == [1, 2, 4, 4, 2]
    assert [r["change"] for r in rows] == [
        "",
        "BN added",
        "learning rate 0.1 → 0.5",
        "dropout 0.3 → 0",
        "decay factor 1 → 0.5, decay every (steps) 0 → 200, L2 weight decay 0.0005 → 0.0001",
    ]


def test_describe_change_ignores_seed_and_device():
    assert RC.describe_change({"lr": 0.1, "seed": 0, "device": "cpu"}, {"lr": 0.1, "seed": 3, "device": "cuda"}) == ""
    assert RC.describe_change({"norm": "torch"}, {"norm": None}) == "BN removed"
    assert RC.describe_change({"init": "xavier"}, {"init": "gaussian"}) == "init xavier → gaussian"


# --------------------------------------------------------------------------- rendering
def test_formatters():
    assert RF.fmt_pct(0.4567) == "45.7%" and RF.fmt_pct(None) == "–" and RF.fmt_pct(0.5, 0) == "50%"
    assert RF.fmt_steps(12000) == "12,000" and RF.fmt_steps(None) == "never"
    assert RF.fmt_ratio(3.5) == "3.5×" and RF.fmt_ratio(None) == "–" and RF.fmt_ratio(14.0) == "14×"


# --------------------------------------------------------------------------- committed results
@pytest.mark.parametrize("name", ["cifar_lr_sweep", "cifar_sigmoid_depth", "cifar_recipe"])
def test_committed_results_agree_with_the_engine(name):
    """On the committed book-scale results (when present): the target is the baseline's recorded best
    accuracy and each run's steps-to-target is the first recorded step at or above it (found here with NumPy)."""
    import numpy as np

    from bnlib import experiments as E

    exp = E.get(name, "book")
    if not exp.path.exists():
        pytest.skip(f"{exp.path.name} not computed")
    with open(exp.path) as fh:
        runs = json.load(fh)["runs"]
    baseline = {"cifar_lr_sweep": "none-x1", "cifar_sigmoid_depth": "none-depth3",
                "cifar_recipe": "none-baseline"}[name]
    target, rows = RC.steps_to_accuracy(runs, baseline=baseline)
    assert target == runs[baseline]["summary"]["best_test_acc"] == max(runs[baseline]["curves"]["test_acc"])
    for row in rows:
        c = runs[row["label"]]["curves"]
        hit = np.flatnonzero(np.array([-1.0 if a is None else a for a in c["test_acc"]]) >= target)
        assert row["steps"] == (c["step"][hit[0]] if len(hit) else None)


# --------------------------------------------------------------------------- figures draw the given numbers
def test_cifar_figures_draw_the_given_numbers():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np


    # lr sweep: best accuracies (in %) at the multipliers; the diverged run is an x at zero
    runs = _sweep([0.3, 0.4, 0.45, 0.0, 0.2, 0.1], [0.5, 0.55, 0.52, 0.5, 0.48, 0.45], none_diverged=(30,))
    rows = RC.lr_sweep(runs, base_lr=0.1)
    fig = PC.figure_cifar_lr_sweep(rows, runs)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    np.testing.assert_allclose(lines["BN: best"].get_xdata(), [1 / 3, 1, 2, 5, 10, 30], rtol=1e-5)
    np.testing.assert_allclose(lines["BN: best"].get_ydata(), [50, 55, 52, 50, 48, 45])
    np.testing.assert_allclose(lines["no BN: final"].get_ydata(), [30, 40, 45, 0, 20])  # x30 diverged: no final
    assert list(lines["no BN: diverged"].get_xdata()) == [30] and list(lines["no BN: diverged"].get_ydata()) == [0]
    curves = {ln.get_label(): ln for ln in fig.axes[1].get_lines()}
    np.testing.assert_allclose(curves["BN, x5"].get_ydata(), [10, 50])
    plt.close(fig)

    # layers: saturated fraction (in %) per layer, gradient norms from the first training record on
    d = {f"{n}-depth2": _run([0.1, 0.2, 0.3], norm=None if n == "none" else "torch", depth=2,
                             saturated=[[0.0, 0.1], [0.2, 0.3], [0.4, 0.5]]) for n in ("none", "bn")}
    for r in d.values():
        r["curves"]["grad_norm"] = [None, [1.0, 2.0], [3.0, 4.0]]
    fig = PC.figure_cifar_layers(d, depth=2)
    sat, grad = fig.axes[0].get_lines(), fig.axes[2].get_lines()
    np.testing.assert_allclose(sat[1].get_ydata(), [10, 30, 50])
    np.testing.assert_allclose(grad[0].get_xdata(), [100, 200])
    np.testing.assert_allclose(grad[1].get_ydata(), [2, 4])
    plt.close(fig)



# --------------------------------------------------------------------------- small derivations
def test_sigmoid_slope_against_cosh_and_a_finite_difference():
    import math

    for x in (-3.0, 0.0, 0.7, RR.SATURATION_THRESHOLD):
        assert RC.sigmoid_slope(x) == pytest.approx(1 / (4 * math.cosh(x / 2) ** 2))
        h = 1e-5
        fd = (1 / (1 + math.exp(-(x + h))) - 1 / (1 + math.exp(-(x - h)))) / (2 * h)
        assert RC.sigmoid_slope(x) == pytest.approx(fd, rel=1e-6)
    assert RC.sigmoid_slope(RR.SATURATION_THRESHOLD) == pytest.approx(0.01)  # the threshold's definition


def test_largest_drop_between_consecutive_records():
    # falls: 0.75 -> 0.25 (0.5, at 1) and 0.5 -> 0.0 (0.5, at 3): the first of equal falls
    assert RC.largest_drop([0.25, 0.75, 0.25, 0.5, 0.0]) == (1, 0.75, 0.25)
    assert RC.largest_drop([0.5, 0.25, 0.75, 0.0]) == (2, 0.75, 0.0)
    # never falling: the smallest rise (1 -> 2)
    assert RC.largest_drop([1, 2, 4]) == (0, 1, 2)
    with pytest.raises(ValueError, match="at least two"):
        RC.largest_drop([0.3])


def test_last_spread_and_gradient_spread():
    assert RC.last_spread([0.9, 0.1, 0.5, 0.3, 0.4]) == pytest.approx(0.5 - 0.3)
    assert RC.last_spread([0.9, 0.1, 0.5], n=2) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="n=4"):
        RC.last_spread([0.1, 0.2, 0.3], n=4)
    assert RC.gradient_spread([2.0, 0.5, 1.0]) == 4.0
    with pytest.raises(ValueError, match="positive"):
        RC.gradient_spread([1.0, 0.0])


def test_tolerance_threshold_is_the_no_bn_baseline_final():
    rows = RC.lr_sweep(_sweep([0.3, 0.37, 0.4, 0.4, 0.4, 0.1], [0.5] * 6), base_lr=0.1)
    assert RC.tolerance_threshold(rows) == 0.37
    with pytest.raises(ValueError, match="multiplier 1"):
        RC.tolerance_threshold([r for r in rows if r["multiplier"] != 1])


def test_speedup_bounds_and_per_layer_factor():
    assert RC.speedup_bounds(1500, 500, 250) == (pytest.approx(1250 / 500), pytest.approx(1500 / 250))
    assert RC.speedup_bounds(1500, 250, 250) == (pytest.approx(5.0), None)  # crossed within the first interval
    with pytest.raises(ValueError, match="after step 0"):
        RC.speedup_bounds(1500, None, 250)
    assert RC.per_layer_factor(1000.0, 3) == pytest.approx(10.0)
    assert RC.per_layer_factor(16.0, 4) == pytest.approx(2.0)


# --------------------------------------------------------------------------- the chapter's numbers
BASE = {"steps": 1000, "batch_size": 50, "test_subset": 500, "record_every": 100, "lr": 0.1, "momentum": 0.9,
        "width": 8, "probe_batch": 200, "depth": 3}


def test_setup_numbers():
    runs = {"a": _run([0.1, 0.2])}
    out = RC.setup_numbers(BASE, (2, 3, 6), (1 / 3, 1, 30), n_train=20000, n_test=4000, results=[runs])
    assert out["cifar_epochs"].value == pytest.approx(1000 * 50 / 20000)
    assert out["cifar_depth_list"] == RF.text("2, 3 and 6")
    assert out["cifar_mult_min"].value == "0.333" and out["cifar_mult_max"].value == "30"
    assert out["cifar_mult_list"].value == "0.333, 1, 30"
    assert out["cifar_depth_max"].value == 6 and out["cifar_depth_min"].value == 2 and out["cifar_n_rates"].value == 3
    assert out["cifar_sat_level"].value == pytest.approx(0.01) and out["cifar_sat_threshold"].value == pytest.approx(
        4.5848, abs=1e-4)
    runs["b"] = _run([0.1, 0.2], train_subset=1000)
    with pytest.raises(ValueError, match="all training images"):
        RC.setup_numbers(BASE, (2, 3), (1,), n_train=20000, n_test=4000, results=[runs])


def _depth_runs(deep_none_best=0.1, deep_bn_best=0.5, front_sat=0.0):
    """Depths 2, 3, 4, without and with BN; the 4-layer networks have two records with gradient norms."""
    runs = {}
    for d in (2, 3, 4):
        for norm, best in ((None, 0.3), ("torch", 0.4)):
            if d == 4:
                best = deep_bn_best if norm else deep_none_best
            sat_final = [front_sat if norm is None else 0.02] * (d - 1) + ([0.6] if norm is None else [0.06])
            r = _run([0.1, best], norm=norm, depth=d, final=best - 0.01, saturated=[[0.0] * d, sat_final],
                     train_loss=2.3)
            r["summary"]["final_test_acc_batchstats"] = best + 0.05
            # layer 1 and layer d of the first record, and of the last; the last entry is the classifier
            r["curves"]["grad_norm"] = [None, [1e-3] + [1.0] * (d - 1) + [7.0]] if norm is None else \
                [None, [0.5] + [1.0] * (d - 1) + [7.0]]
            runs[f"{'bn' if norm else 'none'}-depth{d}"] = r
    return runs


def test_depth_numbers():
    runs = _depth_runs()
    n_params = {lab: 100 * i for i, lab in enumerate(runs, start=1)}
    out = RC.depth_numbers(runs, (2, 3, 4), mid_depth=3, n_params=n_params)
    assert out["cifar_shallow_none_best"] == RF.percent(0.3)
    assert out["cifar_mid_bn_final"].value == pytest.approx(39.0)
    assert out["cifar_deep_none_best"].value == pytest.approx(10.0) and out["cifar_deep_bn_best"].value == 50.0
    assert out["cifar_deep_none_sat_last"].value == pytest.approx(60.0)
    assert out["cifar_deep_none_sat_front"].value == 0.0 and out["cifar_deep_bn_sat_max"].value == pytest.approx(6.0)
    assert out["cifar_deep_bn_final_bs"].value == pytest.approx(55.0)
    assert out["cifar_deep_none_train_loss"].value == 2.3 and out["cifar_deep_front"].value == 3
    assert out["cifar_grad_ratio_none"].value == pytest.approx(1000.0)  # 1.0 / 1e-3
    assert out["cifar_grad_ratio_none_first"].value == pytest.approx(1000.0)
    assert out["cifar_grad_ratio_bn"].value == pytest.approx(2.0)
    assert out["cifar_grad_spread_bn"].value == pytest.approx(2.0)  # 1.0 / 0.5 over the four conv layers
    assert out["cifar_params_min"].value == 100 and out["cifar_params_max"].value == 600  # none-depth2, bn-depth4
    assert out["cifar_log10"].value == pytest.approx(2.302585, abs=1e-6)
    with pytest.raises(ValueError, match="above every network's without BN"):  # 0.25 < the shallow 0.3
        RC.depth_numbers(_depth_runs(deep_bn_best=0.25), (2, 3, 4), 3, n_params)
    RC.depth_numbers(_depth_runs(deep_bn_best=0.35), (2, 3, 4), 3, n_params)  # below a shallow BN net: allowed
    with pytest.raises(ValueError, match="stays at chance"):
        RC.depth_numbers(_depth_runs(deep_none_best=0.2), (2, 3, 4), 3, n_params)
    with pytest.raises(ValueError, match="practically unsaturated"):
        RC.depth_numbers(_depth_runs(front_sat=0.02), (2, 3, 4), 3, n_params)


def test_depth_table_cells():
    table = RC.depth_table(RC.depth_saturation(_depth_runs()))
    assert table.cells()[0] == ["2", "no", "30.0%", "29.0%", "30.0%", "60.0%"]  # saturation mean of (0, 0.6)
    assert table.cells()[-1] == ["4", "yes", "50.0%", "49.0%", "3.0%", "6.0%"]  # mean of (0.02, 0.02, 0.02, 0.06)


NONE_FINALS = [0.3, 0.35, 0.4, 0.41, 0.3, 0.1]  # tolerated up to x5 (threshold 0.35), best at x5, chance at x30
BN_FINALS = [0.4, 0.45, 0.5, 0.55, 0.6, 0.5]  # tolerated everywhere, best at x10


def test_lr_numbers():
    out = RC.lr_numbers(_sweep(NONE_FINALS, BN_FINALS), base_lr=0.1, max_multiplier=30)
    assert out["cifar_tol_threshold"].value == pytest.approx(35.0)
    assert out["cifar_tol_none"].value == "5" and out["cifar_tol_bn"].value == "30"
    assert out["cifar_tol_ratio"].value == pytest.approx(6.0) and out["cifar_n_runs_sweep"].value == 12
    assert out["cifar_none_xmax_best"].value == pytest.approx(10.0)
    assert out["cifar_none_xmax_loss"].value == 2.0 and out["cifar_bn_xmax_final"].value == pytest.approx(50.0)
    assert out["cifar_best_none_mult"].value == "5" and out["cifar_best_none_acc"].value == pytest.approx(41.0)
    assert out["cifar_best_bn_mult"].value == "10" and out["cifar_best_bn_acc"].value == pytest.approx(60.0)
    assert out["cifar_bn_x1_final"].value == pytest.approx(45.0)


@pytest.mark.parametrize("none, bn, diverged, match", [
    (NONE_FINALS, BN_FINALS, (10,), "no run of the sweep diverged"),
    (NONE_FINALS[:-1] + [0.2], BN_FINALS, (), "stays at chance"),
    (NONE_FINALS, BN_FINALS[:-1] + [0.3], (), "only the BN network tolerates"),
    ([0.3, 0.35, 0.2, 0.2, 0.2, 0.1], BN_FINALS, (), "above the baseline's is best"),
    (NONE_FINALS, [0.4, 0.41, 0.38, 0.38, 0.38, 0.38], (), "beats the best run without BN"),
])
def test_lr_numbers_check_the_prose(none, bn, diverged, match):
    with pytest.raises(ValueError, match=match):
        RC.lr_numbers(_sweep(none, bn, none_diverged=diverged), base_lr=0.1, max_multiplier=30)


def _steps_sweep(bn_x5=(0.1, 0.2, 0.6, 0.6, 0.6), base=(0.1, 0.2, 0.3, 0.4, 0.5)):
    """The no-BN baseline reaches its best (0.5) at its last record, 400; BN at 200; no BN x2 at 300, x10 at 400."""
    curves = {"none-x0.333": [0.1] * 5, "none-x1": base, "none-x2": [0.1, 0.2, 0.3, 0.5, 0.5],
              "none-x5": [0.1, 0.2, 0.3, 0.4, 0.4], "none-x10": [0.1, 0.2, 0.3, 0.4, 0.55],
              "none-x30": [0.1] * 5, "bn-x0.333": [0.1, 0.2, 0.3, 0.5, 0.5], "bn-x1": [0.1, 0.2, 0.5, 0.6, 0.6],
              "bn-x2": [0.1, 0.2, 0.55, 0.6, 0.6], "bn-x5": bn_x5, "bn-x10": [0.1, 0.3, 0.5, 0.6, 0.6],
              "bn-x30": [0.1, 0.3, 0.5, 0.5, 0.5]}
    return {lab: _run(list(acc), lr=0.1 * k, norm="torch" if lab.startswith("bn") else None, final=acc[-1])
            for (lab, acc), k in zip(curves.items(), MULTS * 2, strict=True)}


def test_steps_numbers_and_table():
    runs = _steps_sweep()
    target, rows = RC.sweep_steps(runs, base_lr=0.1)
    assert target == 0.5 and [r["label"] for r in rows] == ["none-x1", "none-x2", "none-x5", "none-x10", "none-x30",
                                                            "bn-x1", "bn-x2", "bn-x5", "bn-x10", "bn-x30"]
    out = RC.steps_numbers(runs, base_lr=0.1, last_step=400)
    assert out["cifar_target"].value == pytest.approx(50.0)
    assert out["cifar_steps_base"].value == 400
    assert (out["cifar_steps_bn_min"].value, out["cifar_steps_bn_max"].value) == (200, 200)
    assert out["cifar_speedup_bn_min"].value == pytest.approx(2.0)
    slow = _steps_sweep()
    slow["bn-x30"] = _run([0.1, 0.3, 0.4, 0.5, 0.5], lr=3.0, norm="torch", final=0.5)  # reaches 0.5 at 300
    slow_out = RC.steps_numbers(slow, base_lr=0.1, last_step=400)
    assert (slow_out["cifar_steps_bn_min"].value, slow_out["cifar_steps_bn_max"].value) == (200, 300)
    assert slow_out["cifar_speedup_bn_min"].value == pytest.approx(4 / 3)
    assert slow_out["cifar_speedup_bn_max"].value == pytest.approx(2.0)
    assert (out["cifar_steps_bn_x1"].value, out["cifar_steps_bn_x5"].value) == (200, 200)
    assert out["cifar_none_reached"].value == 2 and out["cifar_none_others"].value == 4
    assert out["cifar_none_fastest"].value == "300"
    assert RC.steps_table(rows, base_lr=0.1).cells()[0] == ["no BN-x1", "0.1", "400", "1×", "50.0%"]
    assert RC.steps_table(rows, base_lr=0.1).cells()[7] == ["BN-x5", "0.5", "200", "2×", "60.0%"]
    with pytest.raises(ValueError, match="BN-x1 reaches the target no later than BN-x5"):  # BN-x5 at 100
        RC.steps_numbers(_steps_sweep(bn_x5=(0.1, 0.6, 0.6, 0.6, 0.6)), base_lr=0.1, last_step=400)
    with pytest.raises(ValueError, match="every BN network reaches the target sooner"):  # BN-x5 never
        RC.steps_numbers(_steps_sweep(bn_x5=(0.1, 0.2, 0.3, 0.4, 0.45)), base_lr=0.1, last_step=400)
    with pytest.raises(ValueError, match="only at step 400"):
        RC.steps_numbers(_steps_sweep(base=(0.1, 0.2, 0.5, 0.4, 0.4)), base_lr=0.1, last_step=400)


RECIPE = {  # label: (test accuracy at STEPS, final accuracy); steps to 0.5: 400, 200, 200, 300, 100, 100
    "none-baseline": ([0.1, 0.3, 0.4, 0.45, 0.5], 0.5),
    "bn-baseline": ([0.1, 0.3, 0.55, 0.35, 0.6], 0.45),  # largest drop: 0.55 -> 0.35
    "+lr x5": ([0.1, 0.3, 0.52, 0.5, 0.55], 0.5),
    "+no dropout": ([0.1, 0.3, 0.4, 0.51, 0.5], 0.5),
    "+L2 / 5": ([0.1, 0.6, 0.7, 0.5, 0.65], 0.6),  # best of all; last three vary by 0.2
    "+decay x6 faster": ([0.1, 0.55, 0.6, 0.62, 0.63], 0.63),  # best final; last three vary by 0.03
}
RECIPE_BASE = {"dropout": 0.3, "weight_decay": 5e-4, "lr_decay": 0.5, "lr_decay_every": 600}


def _recipe(**change):
    out = {}
    for i, (lab, (acc, final)) in enumerate(change.get("curves", RECIPE).items()):
        out[lab] = _run(acc, final=final, norm="torch" if i else None, lr=0.5 if i >= 2 else 0.1,
                        dropout=0.0 if i >= 3 else 0.3, weight_decay=1e-4 if i >= 4 else 5e-4,
                        lr_decay=0.5, lr_decay_every=100 if i >= 5 else 600)
    return out


def test_recipe_numbers():
    out = RC.recipe_numbers(_recipe(), sweep_target=0.55, recipe_base=RECIPE_BASE, final_lr=0.004)
    assert out["cifar_recipe_target"].value == pytest.approx(50.0)
    assert out["cifar_recipe_l2"].value == 5e-4 and out["cifar_recipe_decay_every"].value == 600
    assert [out[f"cifar_recipe{i}_steps"].value for i in range(6)] == ["400", "200", "200", "300", "100", "100"]
    assert [out[f"cifar_recipe{i}_speedup"].value for i in range(6)] == pytest.approx([1, 2, 2, 4 / 3, 4, 4])
    assert out["cifar_recipe4_best"].value == pytest.approx(70.0) and out["cifar_recipe5_final"].value == 63.0
    assert out["cifar_recipe_drop_from"].value == pytest.approx(55.0)
    assert out["cifar_recipe_drop_to"].value == pytest.approx(35.0)
    assert out["cifar_recipe4_spread"].value == pytest.approx(20.0)
    assert out["cifar_recipe5_spread"].value == pytest.approx(3.0)
    assert out["cifar_recipe_final_lr"].value == 0.004 and out["cifar_recipe_fast_every"].value == 100
    assert out["cifar_sweep_target"].value == pytest.approx(55.0)
    assert (out["cifar_recipe_changes_first"].value, out["cifar_recipe_changes_last"].value) == ("100", "300")


def test_recipe_names_the_change_with_the_highest_best_accuracy():
    out = RC.recipe_numbers(_recipe(), 0.55, RECIPE_BASE, final_lr=0.004)
    assert out["cifar_recipe_top"].value.startswith("reducing the weight decay gives the highest best accuracy (70.0%")
    full = RC.recipe_numbers(_recipe(curves=_recipe_with("+decay x6 faster", [0.1, 0.55, 0.6, 0.71, 0.7], 0.63)),
                             0.55, RECIPE_BASE, final_lr=0.004)
    assert full["cifar_recipe_top"].value.startswith("the full recipe, with the faster decay, gives the highest")


def _recipe_with(label, acc, final):
    return {**RECIPE, label: (acc, final)}


@pytest.mark.parametrize("curves, sweep_target, match", [
    (_recipe_with("bn-baseline", [0.1, 0.3, 0.4, 0.35, 0.6], 0.45), 0.55, "BN alone"),
    (_recipe_with("+L2 / 5", [0.1, 0.3, 0.7, 0.5, 0.65], 0.6), 0.55, "faster decay does not reach the target sooner"),
    (RECIPE, 0.5, "below the sweep's target"),
    (_recipe_with("+decay x6 faster", [0.1, 0.55, 0.6, 0.62, 0.63], 0.44), 0.55, "ends above both baselines"),
    (_recipe_with("+decay x6 faster", [0.1, 0.55, 0.4, 0.62, 0.63], 0.63), 0.55, "ends the jumping"),
])
def test_recipe_numbers_check_the_prose(curves, sweep_target, match):
    with pytest.raises(ValueError, match=match):
        RC.recipe_numbers(_recipe(curves=curves), sweep_target, RECIPE_BASE, final_lr=0.004)


def test_recipe_numbers_need_six_rows_and_the_table():
    runs = _recipe()
    runs.pop("+lr x5")
    with pytest.raises(ValueError, match="six rows"):
        RC.recipe_numbers(runs, 0.55, RECIPE_BASE, final_lr=0.004)
    _, rows = RC.ablation(_recipe(), baseline="none-baseline")
    cells = RC.ablation_table(rows).cells()
    assert cells[0] == ["none-baseline", "(baseline)", "400", "1×", "50.0%", "50.0%"]
    assert cells[2] == ["+lr x5", "learning rate 0.1 → 0.5", "200", "2×", "55.0%", "50.0%"]


def test_lr_table_cells():
    runs = _sweep(NONE_FINALS, BN_FINALS, none_diverged=(30,))
    cells = RC.lr_table(RC.lr_sweep(runs, base_lr=0.1)).cells()
    assert cells[0] == ["0.0333", "x0.333", "no", "30.0%", "30.0%", "no"]
    assert cells[5] == ["3", "x30", "no", "10.0%", "–", "at step 50"]
    assert cells[9] == ["0.5", "x5", "yes", "55.0%", "55.0%", "no"]


def test_paper_numbers():
    def cfg(seed):
        return {"steps": 2000, "batch_size": 50, "seed": seed}

    exps = {"cifar_lr_sweep": {"runs": {f"{lab}-seed{s}": cfg(s) for lab in ("none-x1", "bn-x1") for s in range(3)}},
            "cifar_recipe": {"runs": {f"r-seed{s}": cfg(s) for s in range(3)}}}
    out = RC.paper_numbers(exps, n_train=10000)
    assert out["cifar_paper_steps"].value == 2000 and out["cifar_paper_epochs"].value == pytest.approx(10.0)
    assert out["cifar_paper_seeds"].value == 3 and out["cifar_paper_runs"].value == 9


def test_exercise_numbers():
    out = RC.exercise_numbers(_depth_runs(), _steps_sweep(), base_lr=0.1, max_depth=4, record_every=100)
    assert out["cifar_sat_cosh"].value == pytest.approx(5.0)  # 1 / (2 sqrt(0.01))
    assert out["cifar_ex_layers"].value == 3 and out["cifar_ex_per_layer"].value == pytest.approx(10.0)
    assert out["cifar_ex_sb"].value == 400 and out["cifar_ex_s5"].value == 200
    assert out["cifar_ex_lo"].value == pytest.approx(1.5) and out["cifar_ex_hi"].value == "4"
    out = RC.exercise_numbers(_depth_runs(), _steps_sweep(bn_x5=(0.1, 0.6, 0.6, 0.6, 0.6)), 0.1, 4, 100)
    assert out["cifar_ex_hi"].value == "unbounded" and out["cifar_ex_lo"].value == pytest.approx(3.0)
