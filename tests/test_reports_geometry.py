"""The trainability map (bnlib.reports.geometry, bnlib.plots.geometry) on hand-built runs shaped like the engine's,
whose answers are set here: which cells train, which seeds diverged, and the map in words."""

from __future__ import annotations

import numpy as np
import pytest
from test_reports_cifar import _t_interval

from bnlib.reports import geometry as RG


def _run(net: str, depth: int, lr: float, val: float | None, seed: int) -> dict:
    """A stored run: ``val`` its final validation accuracy (population statistics for BN), None: diverged."""
    cfg = {"norm": "torch" if net == "bn" else None, "sizes": [784] + [128] * depth + [10], "lr": lr, "seed": seed}
    pop = val if net == "bn" else None
    summary = {"diverged_at": 100 if val is None else None, "final_val_acc": None if val is None else val - 0.05,
               "final_val_acc_pop": pop}
    if net == "none":
        summary["final_val_acc"] = val
    return {"config": cfg, "curves": {}, "summary": summary}


#: (net, depth, lr): final validation accuracy of every seed (None: that seed diverged).
CELLS = {
    ("none", 5, 0.1): [0.9] * 5, ("none", 5, 1.0): [0.9, 0.9, 0.9, None, 0.9],  # mean 0.74: does not train
    ("none", 50, 0.1): [0.5] * 5, ("none", 50, 1.0): [None] * 5,
    ("bn", 5, 0.1): [0.95] * 5, ("bn", 5, 1.0): [0.8] * 5,  # exactly at the threshold: trains
    ("bn", 50, 0.1): [0.85] * 5, ("bn", 50, 1.0): [0.2] * 5,
}


def _runs(cells=CELLS) -> dict:
    return {f"{n}-depth{d}-lr{lr:g}-seed{s}": _run(n, d, lr, v, s)
            for (n, d, lr), vals in cells.items() for s, v in enumerate(vals)}


def test_grid_scores_bn_with_population_statistics_and_a_diverged_seed_at_chance():
    grid = RG.trainability_grid(_runs())
    assert grid[("bn", 5, 0.1)]["val"] == [0.95] * 5  # population statistics, not the eval-mode 0.90
    cell = grid[("none", 5, 1.0)]
    assert cell["val"] == [0.9, 0.9, 0.9, 0.1, 0.9] and cell["diverged"] == 1
    assert cell["mean"] == pytest.approx(0.74) and not cell["trains"]
    assert grid[("bn", 5, 1.0)]["trains"] and not grid[("none", 50, 0.1)]["trains"]
    assert list(grid)[0] == ("bn", 5, 0.1)  # sorted


def test_numbers_say_which_rates_train_at_each_depth():
    base = {"sizes": [784, 128, 128, 10], "steps": 500, "batch_size": 64, "train_subset": 5000}
    out = RG.trainability_numbers(RG.trainability_grid(_runs()), base)
    assert out["geo_map_width"].value == 128 and out["geo_map_images"].value == 5000
    assert out["geo_map_bn_story"].value == "at 5 layers 0.1 to 1; at 50 layers 0.1"
    assert out["geo_map_none_story"].value == "at 5 layers 0.1; at 50 layers no rate"
    assert out["geo_map_none_diverged"].value == 2 and out["geo_map_bn_diverged"].value == 0
    assert out["geo_map_none_tops"].value == "0.1 and none" and out["geo_map_bn_tops"].value == "1 and 0.1"
    assert out["geo_map_bn_top_shallow"].value == "1" and out["geo_map_threshold"].value == pytest.approx(80)
    assert out["geo_map_depths"].value == "5 and 50" and out["geo_map_seeds"].value == 5
    m, lo, hi = _t_interval(np.array([0.85] * 5) - [0.5] * 5 + [0.0, 0.01, -0.01, 0.02, 0.0])
    runs = _runs({**CELLS, ("bn", 50, 0.1): [0.85, 0.86, 0.84, 0.87, 0.85]})
    vs = RG.trainability_numbers(RG.trainability_grid(runs), base)["geo_map_deep_vs"].value
    assert vs == f"{100 * m:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}], 5 seeds"  # BN minus no BN, paired
    word = RG.trainability_numbers(RG.trainability_grid(runs), base)["geo_map_deep_word"].value
    assert word.endswith("excludes zero")
    level = _runs({**CELLS, ("bn", 50, 0.1): [0.45, 0.55, 0.5, 0.6, 0.4]})
    assert RG.trainability_numbers(RG.trainability_grid(level), base)["geo_map_deep_word"].value.endswith(
        "inconclusive")


def test_numbers_refuse_a_map_whose_largest_rate_with_bn_does_not_fall():
    base = {"sizes": [784, 128, 10], "steps": 1, "batch_size": 1, "train_subset": 1}
    rising = {**CELLS, ("bn", 5, 1.0): [0.2] * 5, ("bn", 50, 1.0): [0.9] * 5}
    with pytest.raises(ValueError, match="falls with depth, but it does not: 0.1, 1"):
        RG.trainability_numbers(RG.trainability_grid(_runs(rising)), base)


def test_figure_draws_each_cell_and_frames_those_that_train():
    import matplotlib.pyplot as plt

    from bnlib.plots import geometry as PG

    fig = PG.figure_trainability(RG.trainability_grid(_runs({**CELLS, ("bn", 50, 0.1): [0.7998] * 5})), 0.8)
    none, bn = fig.axes
    assert [t.get_text() for t in none.texts] == ["90", "74†", "50", "10†"]
    assert [t.get_text() for t in bn.texts] == ["95", "80", "79.9", "20"]  # 79.98 does not train: not shown as 80
    np.testing.assert_allclose(bn.images[0].get_array(), [[95, 80], [79.98, 20]])
    assert len(bn.patches) == 2 and len(none.patches) == 1
    assert [t.get_text() for t in bn.get_xticklabels()] == ["0.1", "1"]
    plt.close(fig)


def test_numbers_refuse_a_map_where_bn_diverges():
    base = {"sizes": [784, 128, 10], "steps": 1, "batch_size": 1, "train_subset": 1}
    with pytest.raises(ValueError, match="never with BN"):
        RG.trainability_numbers(RG.trainability_grid(_runs({**CELLS, ("bn", 50, 1.0): [0.2, None, 0.2, 0.2, 0.2]})),
                                base)


def _equilibrium(ratios: list[float]) -> dict:
    return {"runs": [{"lr": 0.1, "weight_decay": 0.01, "momentum": 0.9, "angle": [0.03] * 8}],
            "ratios": ratios, "measured": [0.0324 * r for r in ratios], "predicted": 0.0324}


def test_equilibrium_numbers_give_the_rotation_and_refuse_a_prediction_that_no_longer_overestimates():
    cnn = [{"angle": [0.03] * 3, "weight_decay": 0.01, "predicted": 0.0324, "ratio": r} for r in (0.9, 0.91, 0.89)]
    out = RG.equilibrium_numbers(_equilibrium([0.95, 0.96, 0.97]), cnn)
    assert out["geo_eq_ratio"].value == f"0.96 ± {_t_interval(np.array([0.95, 0.96, 0.97]))[2] - 0.96:.2f}"
    assert out["geo_eq_meas"].value.startswith("0.0311 ± ") and out["geo_eq_c_n"].value == 3
    with pytest.raises(ValueError, match="overestimates the rotation of the MNIST MLP, but the ratio is 1.000"):
        RG.equilibrium_numbers(_equilibrium([0.99, 1.0, 1.01]), cnn)
    with pytest.raises(ValueError, match="CIFAR-10 CNN"):
        RG.equilibrium_numbers(_equilibrium([0.95, 0.96, 0.97]), [dict(c, ratio=0.7) for c in cnn])
