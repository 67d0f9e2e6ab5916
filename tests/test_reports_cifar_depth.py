"""The depth section at ten epochs (bnlib.reports.cifar_depth) on a hand-built seeded experiment of two depths whose
answers are set here: which rate is best without BN at each depth (on validation, while the test set says
otherwise), which networks stay at chance, and paired differences computed with scipy's t interval."""

from __future__ import annotations

import numpy as np
import pytest
from test_reports_cifar import SEEDS, _run, _t_interval

from bnlib.reports import cifar_depth as RD

#: label: (final validation accuracy of seed 0, final test accuracy of seed 0); seed s adds s / 1000 to both, and
#: "relu-depth4" adds s / 100 to its test accuracy so that its differences have a spread.
FINAL = {
    "bn-depth2": (0.50, 0.50), "none-x1-depth2": (0.40, 0.45), "none-x5-depth2": (0.44, 0.41),  # val picks x5
    "none-sigmoidinit-depth2": (0.42, 0.42), "relu-depth2": (0.52, 0.52),
    "bn-depth4": (0.55, 0.55), "none-x1-depth4": (0.10, 0.10), "none-x5-depth4": (0.105, 0.10),
    "none-sigmoidinit-depth4": (0.30, 0.31), "relu-depth4": (0.50, 0.50), "bn-x5-depth4": (0.58, 0.57),
}


def _runs(final=FINAL) -> dict:
    out = {}
    for lab, (val, test) in final.items():
        depth = int(lab.rsplit("depth", 1)[1])
        for s in SEEDS:
            v, t = val + s / 1000, test + s / 1000 + (s / 100 if lab == "relu-depth4" else 0)
            curve = [0.1, 0.1 + (v - 0.1) / 2, v] if v > 0.11 else [0.1, 0.1, v]
            sat = [[0.0] * depth, [0.0] * (depth - 1) + [0.1], [0.0] * (depth - 1) + [0.2 + s / 100]]
            grad = [None, [1.0] * depth + [1.0], [10.0 ** -(depth - 1 - i) for i in range(depth)] + [1.0]]
            out[f"{lab}-seed{s}"] = _run(curve, norm="torch" if lab.startswith("bn") else None, test=t,
                                         ev=t - 0.05, seed=s, depth=depth, saturated=sat, grad=grad,
                                         train_loss=2.3, bs=t - 0.1,
                                         activation="relu" if lab.startswith("relu") else "sigmoid",
                                         init="kaiming" if lab.startswith("relu") else
                                         "xavier_sigmoid" if "sigmoidinit" in lab else "xavier")
    return out


def test_kinds_of_labels():
    assert RD.depth_kind("none-x5-depth10") == ("none", 5.0)
    assert RD.depth_kind("none-sigmoidinit-depth4") == ("sigmoidinit", None)
    assert RD.depth_kind("bn-x5-depth10") == ("bn-x5", None) and RD.depth_kind("relu-depth2") == ("relu", None)
    with pytest.raises(ValueError, match="is not a label of the depth experiment"):
        RD.depth_kind("tanh-depth3")


def test_best_rate_without_bn_is_chosen_on_validation_per_depth():
    roles = RD.depth_roles(RD.depth_saturation(_runs()))
    assert list(roles) == [2, 4]
    assert roles[2]["best_none"]["label"] == "none-x5-depth2"  # the test set would pick x1
    assert roles[4]["best_none"]["label"] == "none-x5-depth4"
    assert set(roles[4]) >= {"bn", "none", "sigmoidinit", "relu", "bn-x5"} and "bn-x5" not in roles[2]
    with pytest.raises(ValueError, match="depth 2 needs BN"):
        RD.depth_roles(RD.depth_saturation({k: v for k, v in _runs().items() if not k.startswith("bn-depth2")}))


def test_tables():
    rows = RD.depth_saturation(_runs())
    cells = RD.depth_table(rows).cells()
    assert [c[1] for c in cells] == ["BN-x1", "no BN-x1", "no BN-x5 (best)", "BN-x1", "no BN-x1", "no BN-x5 (best)"]
    assert cells[0][5] == "" and cells[0][4] == RD.fmt_acc([0.45 + s / 1000 for s in SEEDS])
    assert cells[2][5] == "+9.00 points [+9.00, +9.00], 5 seeds"  # 0.50 - 0.41 on every seed
    assert cells[1][6] == "11.0"  # saturated at the end, over layers and seeds: (0 + 0.22) / 2
    ctl = RD.controls_table(rows).cells()
    assert [c[1] for c in ctl] == ["no BN-x5 (best rate)", "no BN, init gain 4", "ReLU, no BN",
                                   "no BN-x5 (best rate)", "no BN, init gain 4", "ReLU, no BN", "BN-x5"]
    diff = [0.55 - (0.50 + s / 100) for s in SEEDS]
    m, lo, hi = _t_interval(diff)
    assert ctl[5][4] == f"{100 * m:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}], 5 seeds"


def test_numbers_words():
    n_params = {f"{lab}-seed0": 100 + i for i, lab in enumerate(FINAL)}
    out = RD.depth_numbers(_runs(), n_params)
    assert out["cifar_depth_none_chance"].value == "4" and out["cifar_depth_none_learns"].value == "2"
    assert out["cifar_d2_none_mult"].value == "5" and out["cifar_d2_gain"].value.startswith("higher with BN (")
    assert out["cifar_deep_sigmoidinit"].value == "learns on every seed, to 31.2% test accuracy (seed mean)"
    assert out["cifar_depth_sigmoidinit_learns"].value == "2 and 4" and out["cifar_sigmoidinit_top_depth"].value == 4
    assert out["cifar_sigmoidinit_top_vs_bn"].value.startswith("higher with BN (+24.00 points")  # 0.55 - 0.31
    assert out["cifar_d4_none_learning"].value == "stays at chance on every seed"
    assert out["cifar_depth_none_chance_from"].value == 4
    assert out["cifar_deep_bn5_vs_relu"].value.startswith("higher (")
    assert out["cifar_deep_none_top"].value == pytest.approx(100 * (0.105 + 0.004))
    assert out["cifar_grad_ratio_none"].value == pytest.approx(1000.0)  # 1 / 10^-3 on every seed
    assert out["cifar_deep_bn_bs"].value == pytest.approx(100 * (np.mean([0.55 + s / 1000 for s in SEEDS]) - 0.1))
    assert out["cifar_params_min"].value == 100 and out["cifar_params_max"].value == 110
    assert out["cifar_depth_rates"].value == "x1, x5"
    shuffled = dict(sorted(_runs().items(), key=lambda kv: "x5" not in kv[0]))  # x5 first in the file
    assert RD.depth_numbers(shuffled, n_params)["cifar_depth_rates"].value == "x1, x5"
    chance = {**FINAL, "none-sigmoidinit-depth4": (0.10, 0.10)}
    assert RD.depth_numbers(_runs(chance), n_params)["cifar_deep_sigmoidinit"].value == "stays at chance on every seed"


def test_learning_counts_the_seeds_that_leave_chance():
    runs = _runs()
    some = [r for lab, r in runs.items() if lab.startswith("none-x1-depth4-")]
    # two seeds leave chance: one on test at the end, one on validation at a record only
    some[0]["summary"]["final_test_acc_pop"] = some[0]["summary"]["final_test_acc"] = 0.30
    some[1]["curves"]["val_acc_pop"][1] = 0.2
    assert [RD.seed_learns(r) for r in some] == [True, True, False, False, False]
    mean = 100 * np.mean([0.30, 0.10 + 1 / 1000])  # seed 1 is at chance at the end (0.101) but left it on validation
    assert RD.learning(some) == f"learns on 2 of 5 seeds (to {mean:.1f}% test accuracy, their mean) and stays at " \
                                "chance on the other 3"
    assert RD.learning(some[2:]) == "stays at chance on every seed"
    n_params = {f"{lab}-seed0": 1 for lab in FINAL}
    with pytest.raises(ValueError, match="stays at chance at every rate, on every seed, but it does not"):
        RD.depth_numbers(runs, n_params)


def test_prose_guards():
    n_params = {f"{lab}-seed0": 1 for lab in FINAL}
    with pytest.raises(ValueError, match="BN-x1 learns at every depth on every seed, but at 2 conv layers"):
        RD.depth_numbers(_runs({**FINAL, "bn-depth2": (0.10, 0.10)}), n_params)
    runs = _runs()
    runs["none-x1-depth4-seed3"]["curves"]["saturated"][-1][0] = 0.02
    with pytest.raises(ValueError, match="first 3 layers without BN are practically unsaturated"):
        RD.depth_numbers(runs, n_params)


def test_bands_follow_the_best_rate():
    b = RD.depth_bands(_runs())
    assert b[2]["none_mult"] == 5.0 and set(b[4]) >= {"bn", "bn-eval", "none", "sigmoidinit", "relu"}
    np.testing.assert_allclose(b[2]["none"]["mean"][-1], np.mean([0.44 + s / 1000 for s in SEEDS]))


def test_figure_draws_each_depth_with_its_best_rate():
    import matplotlib.pyplot as plt

    from bnlib.plots import cifar as PC

    fig = PC.figure_cifar_depths(RD.depth_bands(_runs()))
    assert [ax.get_title() for ax in fig.axes] == [f"{d} conv layers (no BN best at x5)" for d in (2, 4)]
    lines = {ln.get_label(): ln for ln in fig.axes[1].get_lines()}
    np.testing.assert_allclose(lines["ReLU, no BN"].get_ydata()[-1], 100 * np.mean([0.50 + s / 1000 for s in SEEDS]))
    plt.close(fig)
    three = {k: v for k, v in RD.depth_bands(_runs()).items()} | {6: RD.depth_bands(_runs())[4]}
    fig = PC.figure_cifar_depths(three)  # an odd number of depths leaves the last panel empty
    assert [ax.get_visible() for ax in fig.axes] == [True, True, True, False]
    plt.close(fig)
    from phone import assert_phone_layout

    from bnlib.plots import style as PS

    wide, narrow = PS.layouts(PC.figure_cifar_depths, three)  # shared y, a hidden panel, a legend under all
    assert_phone_layout(narrow)
    assert [ax.get_title() for ax in narrow.axes if ax.get_visible()] == [ax.get_title() for ax in wide.axes[:3]]
    plt.close("all")


def test_ledger_rule_reads_bn_against_the_best_rate_without_bn_at_the_deepest():
    from bnlib.reports import claims as RL

    res = {"name": "cifar_sigmoid_depth", "runs": _runs()}
    assert RL.saturating_labels(res) == (4, "bn-depth4", "none-x5-depth4")  # not the init-gain-4 control
    row = RL.claim_saturating(res)
    gain = [0.55 - 0.10 for _ in SEEDS]  # BN-x1 minus no BN-x5 at depth 4, every seed
    assert row["parts"][0]["mean"] == pytest.approx(np.mean(gain))
    assert row["verdict"] == "inconclusive"  # (b): the saturated fractions are the same by construction
    assert "bn-depth4 against none-x5-depth4" in row["measured"]
