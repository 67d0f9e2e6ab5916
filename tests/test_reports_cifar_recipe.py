"""The recipe section of the CIFAR-10 chapter (bnlib.reports.cifar_recipe) and the ledger's recipe rule, on a
hand-built seeded ablation whose answers are computed here: targets and interpolated steps by hand, intervals with
scipy's t distribution (through test_reports_cifar's helpers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_reports_cifar import SEEDS, _depth, _run, _sweep, _t_interval

from bnlib.plots import cifar as PC
from bnlib.reports import cifar as RC
from bnlib.reports import cifar_recipe as RCP
from bnlib.reports import claims as RL
from bnlib.reports import rules as R
from bnlib.reports.format import fmt_paired

#: Final test accuracy of seed 0 per label; seed s adds JITTER[label] * s (so that each paired difference has a
#: known spread); the validation curve of every label rises linearly to its final test accuracy.
FINAL = {"none-baseline": 0.30, "bn-baseline": 0.40, "bn+lr": 0.45, "bn+nodrop": 0.37, "bn+l2": 0.40,
         "bn+decay": 0.40, "bn+all": 0.50, "bn+all-lr": 0.42, "bn+all-nodrop": 0.50, "bn+all-l2": 0.52,
         "bn+all-decay": 0.49}
JITTER = {"bn+l2": 0.0005, "bn+decay": None, "bn+all-decay": 0.004}
DECAY_NOISE = [0.03, -0.04, 0.02, -0.03, 0.05]  # bn+decay minus bn-baseline per seed: straddles the margin
GAP = {"bn-baseline": 0.10, "bn+all": 0.01, "bn+all-decay": 0.08}  # eval mode below population statistics


def _test(label: str, s: int) -> float:
    if label == "bn+decay":
        return FINAL["bn-baseline"] + s * 0.001 + DECAY_NOISE[s]
    return FINAL[label] + s * 0.001 + (JITTER.get(label) or 0.0) * (s - 2)


def _runs(final=_test) -> dict:
    out = {}
    for lab in RCP.recipe_labels():
        norm = None if lab.startswith("none") else "torch"
        for s in SEEDS:
            t = final(lab, s)
            val = [0.1 + (t - 0.1) * k / 4 for k in range(5)]
            out[f"{lab}-seed{s}"] = _run(val, norm=norm, test=t, ev=t - GAP.get(lab, 0.05), seed=s,
                                         lr=0.5 if "lr" in lab and "-lr" not in lab or lab == "bn+all" else 0.1,
                                         lr_decay_every=100 if lab in ("bn+all", "bn+decay") else 600)
    return out


def test_labels_and_names():
    assert RCP.recipe_labels()[:2] == ["none-baseline", "bn-baseline"] and len(RCP.recipe_labels()) == 11
    assert RCP.recipe_name("bn+nodrop") == "BN + no dropout"
    assert RCP.recipe_name("bn+all-l2") == "full recipe but L2 ÷ 5"
    with pytest.raises(ValueError, match="is not a label of the recipe"):
        RCP.recipe_name("bn+lr-x5")
    with pytest.raises(ValueError, match="lack bn\\+all-decay"):
        RCP.recipe_rows({k: v for k, v in _runs().items() if not k.startswith("bn+all-decay")})


def test_rows_steps_are_interpolated_against_the_no_bn_baselines_best():
    target, rows = RCP.recipe_rows(_runs())
    best = [_test("none-baseline", s) for s in SEEDS]
    assert target == pytest.approx(np.mean(best))
    by = {r["label"]: r for r in rows}
    for s in SEEDS:  # bn-baseline's curve rises by (t - 0.1) / 4 per record of 100 steps
        t = _test("bn-baseline", s)
        assert by["bn-baseline"]["steps_seeds"][s] == pytest.approx(400 * (target - 0.1) / (t - 0.1))
    assert by["none-baseline"]["baseline"] and by["bn+all"]["name"] == "full recipe"


def test_effects_read_each_change_added_and_left_out():
    _, rows = RCP.recipe_rows(_runs())
    eff = {e["change"]: e for e in RCP.recipe_effects(rows)}
    assert [eff[c]["added_effect"] for c in R.RECIPE_WORDS] == ["helps", "hurts", "no effect", "inconclusive"]
    assert [eff[c]["dropped_effect"] for c in R.RECIPE_WORDS] == ["helps", "no effect", "hurts", "inconclusive"]
    diff = [_test("bn+all", s) - _test("bn+all-decay", s) for s in SEEDS]
    m, lo, hi = _t_interval(diff)
    p = eff["decay"]["dropped"]
    assert (p.mean, p.lo, p.hi) == pytest.approx((m, lo, hi))
    cells = RCP.effects_table(RCP.recipe_effects(rows)).cells()
    assert cells[0][0] == "learning rate ×5" and cells[0][1] == fmt_paired(eff["lr"]["added"])


def test_numbers_words_and_their_prose_check():
    runs = _runs()
    sweep = {f"none-x1-seed{s}": _run([0.1, 0.2, 0.36], seed=s) for s in SEEDS}
    base = {"dropout": 0.3, "weight_decay": 5e-4, "lr_decay": 0.5, "lr_decay_every": 600}
    out = RCP.recipe_numbers(runs, sweep, base, final_lr=0.001)
    assert out["cifar_recipe_reg"].value.startswith("lower (")
    assert out["cifar_recipe_added_helps"].value == "learning rate ×5"
    assert out["cifar_recipe_dropped_hurts"].value == "L2 ÷ 5"
    assert out["cifar_recipe_added_no_effect"].value == "L2 ÷ 5" and out["cifar_recipe_dropped_no_effect"].value == \
        "no dropout"
    assert out["cifar_recipe_top"].value == "full recipe but L2 ÷ 5"
    assert out["cifar_recipe_gap_change"].value.startswith("smaller (")
    assert out["cifar_recipe_full_vs_none"].value.startswith("higher (")
    assert out["cifar_recipe_fast_every"].value == 100 and out["cifar_recipe_l2"].value == 5e-4
    fast_top = _runs(lambda lab, s: 0.60 + s * 0.001 if lab == "bn+all" else _test(lab, s))
    with pytest.raises(ValueError, match="best on validation is one without the fast decay"):
        RCP.recipe_numbers(fast_top, sweep, base, final_lr=0.001)
    low = _runs(lambda lab, s: 0.25 + s * 0.001 if lab == "bn+all" else _test(lab, s))
    with pytest.raises(ValueError, match="full recipe ends above the network without BN"):
        RCP.recipe_numbers(low, sweep, base, final_lr=0.001)


def test_ledger_rule_has_eight_parts_read_against_one_point():
    row = RL.claim_recipe({"name": "cifar_recipe", "runs": _runs()})
    assert [p["verdict"] for p in row["parts"]] == [
        "supported", "not supported", "not supported", "inconclusive",
        "supported", "not supported", "not supported", "inconclusive"]
    assert row["verdict"] == "mixed" and row["parts"][0]["margin"] == 0.01
    assert row["parts"][4]["mean"] == pytest.approx(0.08 + 0.0)  # full recipe minus the recipe without the 5x rate
    assert "no dropout" in row["measured"] and RL.claim_recipe(None)["verdict"] == "not tested"


def test_accelerates_reads_bn_and_the_full_recipe_against_the_no_bn_baseline():
    row = RL.claim_accelerates(None, {"name": "cifar_recipe", "runs": _runs()})
    target = np.mean([_test("none-baseline", s) for s in SEEDS])
    none = [_test("none-baseline", s) for s in SEEDS]
    base = [400 * (target - 0.1) / (t - 0.1) if t >= target else 500 for t in none]  # never: one record after
    full = [400 * (target - 0.1) / (_test("bn+all", s) - 0.1) for s in SEEDS]
    assert row["parts"][1]["mean"] == pytest.approx(np.mean(np.log(np.divide(base, full))))
    assert math.isfinite(row["parts"][0]["lo"])


def test_figure_shows_both_halves_of_the_ablation():
    import matplotlib.pyplot as plt

    runs = _runs()
    fig = PC.figure_cifar_recipe(RCP.recipe_bands(runs), RCP.recipe_rows(runs)[0])
    added = {ln.get_label() for ln in fig.axes[0].get_lines()}
    dropped = {ln.get_label() for ln in fig.axes[1].get_lines()}
    assert {"no BN (baseline)", "BN (baseline)", "BN + no dropout", "full recipe", "target"} <= added
    assert {"full recipe", "full recipe but decay 6× faster", "target"} <= dropped
    assert "BN + no dropout" not in dropped
    plt.close(fig)


def test_verdict_numbers_glue_the_ledgers_rows():
    sweep = {"name": "cifar_lr_sweep", "runs": _sweep()}
    recipe = {"name": "cifar_recipe", "runs": _runs()}
    depth = {"name": "cifar_sigmoid_depth", "runs": _depth()}
    rows = {"higher_lr": RL.claim_higher_lr(sweep, 0.1), "bjorck": RL.claim_bjorck(sweep, 0.1),
            "saturating": RL.claim_saturating(depth), "accelerates": RL.claim_accelerates(None, recipe),
            "recipe": RL.claim_recipe(recipe)}
    out = RC.verdict_numbers(rows)
    for key in ("higher_lr", "bjorck", "saturating", "recipe"):
        assert out[f"cifar_verdict_{key}"].value == rows[key]["verdict"]
        assert out[f"cifar_rule_{key}"].value == rows[key]["rule"]
        assert out[f"cifar_parts_{key}"].value.split(", ") == [f"({'abcdefgh'[i]}) {p['verdict']}"
                                                               for i, p in enumerate(rows[key]["parts"])]
    assert "cifar_verdict_accelerates" not in out  # its MNIST part is the ledger's
    target = np.mean([_test("none-baseline", s) for s in SEEDS])
    base = [400 * (target - 0.1) / (t - 0.1) if t >= target else 500 for t in (_test("none-baseline", s)
                                                                                for s in SEEDS)]
    speed = [b / (400 * (target - 0.1) / (_test("bn-baseline", s) - 0.1)) for s, b in zip(SEEDS, base, strict=True)]
    m, lo, hi = _t_interval(np.log(speed))
    assert out["cifar_acc_bn"].value == f"{math.exp(m):.3g}× [{math.exp(lo):.3g}×, {math.exp(hi):.3g}×], 5 seeds"
    expected = "supported" if lo > math.log(2) else "not supported" if hi < math.log(2) else "inconclusive"
    assert out["cifar_acc_bn_verdict"].value == expected
    assert out["cifar_acc_margin"].value == 2
    with pytest.raises(ValueError, match="needs the ledger's rows recipe"):
        RC.verdict_numbers({k: v for k, v in rows.items() if k != "recipe"})
