"""The CIFAR-10 chapter's derived tables (bnlib.reports), on tiny hand-made results whose answers are known."""

from __future__ import annotations

import json

import pytest

from bnlib import results as RR
from bnlib.plots import cifar as PC
from bnlib.reports import cifar as RC
from bnlib.reports import format as RF

STEPS = [0, 100, 200, 300, 400]


def _run(accs, lr=0.1, norm=None, final=0.5, diverged_at=None, saturated=None, **cfg):
    """A result dict shaped like bnlib.train's, with the test-accuracy curve ``accs`` at STEPS."""
    n = len(accs)
    config = {"lr": lr, "norm": norm, "dropout": 0.0, "weight_decay": 0.0, "lr_decay": 1.0, "lr_decay_every": 0,
              "seed": 0, "depth": 3, **cfg}
    return {
        "config": config,
        "curves": {"step": STEPS[:n], "test_acc": list(accs),
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

