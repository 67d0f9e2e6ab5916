"""The claims ledger's rules (bnlib.reports.rules): each claim's margins are its thresholds, shown in its rule
text and used by its verdict; moving a hand-made value across a margin flips the verdict. Also what the claims
chapter glues (bnlib.reports.claims), on small hand-made rows."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from bnlib.reports import claims as RL
from bnlib.reports import rules as R


@pytest.mark.parametrize(("value", "spec", "shown"), [
    (0.05, "pts", "5 points"), (0.01, "pts", "1 point"), (0.15, "pct", "15%"), (0.999, "pct", "99.9%"),
    (1e-9, "exp", "1e-9"), (1e-4, "exp", "1e-4"), (2.5e-3, "exp", "2.5e-3"), (0.5, "of", "half"), (0.6, "of", "60%"),
    (2, "times", "twice"), (3, "times", "3 times"), (0.75, "in", "3 in 4"), (0.8, "in", "4 in 5"), (2, "word", "two"),
    (1.5, "word", "1.5"), (1.5, "g", "1.5")])
def test_margin_formats(value, spec, shown):
    assert format(R.Margin(value), spec) == shown


UP = [0.010, 0.012, 0.011, 0.013, 0.012]  # five seeds' differences, mean 0.0116, 95% interval about [0.0102, 0.0130]
ZERO = [0.0] * 5


def _plus(base, d):
    return [b + x for b, x in zip(base, d, strict=True)]


BASE = [0.90, 0.91, 0.92, 0.905, 0.915]

# claim, hand-made numbers, the margin moved and its new value, verdict before and after, text before and after
FLIPS = [
    # BN at 5x is 1.16 points below no BN at 1x: within 2 points (non-inferior), not within 1; no BN at 5x 3 below
    (R.HIGHER_LR, {"bn_k": _plus(BASE, [-u for u in UP]), "none_1": BASE, "none_k": [b - 0.03 for b in BASE]},
     "drop", 0.005, R.SUPPORTED, R.MIXED, "by more than 2 points", "by more than 0.5 points"),
    (R.INIT, {"dec_bn": [2.0, 2.0, 2.5, 1.5, 2.0], "dec_none": [1.0, 1.0, 1.0, 0.5, 1.0]}, "wider", 1.0, R.SUPPORTED,
     R.INCONCLUSIVE, "by more than 0.5 decades", "by more than 1 decades"),
    (R.REGULARIZER, {"gap_bn": ZERO, "gap_none": UP, "test_bn": BASE, "test_none_dropout": BASE}, "gap", 0.015,
     R.SUPPORTED, R.MIXED, "no-BN's by more than 0.25 points", "no-BN's by more than 1.5 points"),
    (R.SATURATING, {"acc_bn": _plus(BASE, [0.04 + u for u in UP]), "acc_none": BASE, "sat_bn": ZERO, "sat_none": UP},
     "gain", 0.03, R.SUPPORTED, R.SUPPORTED, "more than 5 points above", "more than 3 points above"),
    (R.SATURATING, {"acc_bn": _plus(BASE, [0.04 + u for u in UP]), "acc_none": BASE, "sat_bn": ZERO, "sat_none": UP},
     "gain", 0.06, R.SUPPORTED, R.MIXED, "more than 5 points above", "more than 6 points above"),
    (R.ACCELERATES, {"speedups": {"a": [1.8, 1.9, 1.85, 1.8, 1.9], "b": [3.0, 3.1, 3.0, 2.9, 3.2]}}, "speedup", 1.5,
     R.MIXED, R.SUPPORTED, "exceeds 2.", "exceeds 1.5."),
    (R.SCALE_INVARIANCE, {"max_out_diff": 1e-10, "max_grad_rel": 5e-9}, "tol", 1e-8, R.NOT_SUPPORTED, R.CHECKED,
     "at most 1e-9", "at most 1e-8"),
    (R.IDENTITY, {"train_rel": 1e-13, "inference_rel": 3e-12}, "tol", 1e-11, R.NOT_SUPPORTED, R.CHECKED,
     "to 1e-12 (relative)", "to 1e-11 (relative)"),
    (R.FOLDING, {"same_predictions": 0.9985, "max_abs_diff": 1e-5}, "same", 0.998, R.NOT_SUPPORTED, R.CHECKED,
     "at least 99.9% of", "at least 99.8% of"),
    (R.FOLDING, {"same_predictions": 1.0, "max_abs_diff": 5e-4}, "diff", 1e-3, R.NOT_SUPPORTED, R.CHECKED,
     "at most 1e-4;", "at most 1e-3;"),
    (R.SMALL_BATCHES, {"batch": 2, "other": "Group Norm", "bn_small": BASE, "bn_best": _plus(BASE, UP),
                       "other_small": _plus(BASE, UP)}, "drop", 0.015, R.SUPPORTED, R.MIXED,
     "more than 1 point below", "more than 1.5 points below"),
    (R.OVERHEAD, {"overheads": [0.28, 0.31, 0.30, 0.29, 0.32]}, "claimed", 0.15, R.SUPPORTED, R.INCONCLUSIVE,
     "between 15% and 60% ('about 30%'", "between 7.5% and 30% ('about 15%'"),
    (R.OVERHEAD, {"overheads": [0.5, 0.55, 0.52, 0.58, 0.56]}, "factor", 1.5, R.SUPPORTED, R.NOT_SUPPORTED,
     "within a factor of two", "within a factor of 1.5"),
]


@pytest.mark.parametrize(("claim", "numbers", "margin", "new", "before", "after", "shown", "shown_after"), FLIPS,
                         ids=[f"{f[0].key}-{f[2]}-{f[3]}" for f in FLIPS])
def test_moving_a_margin_flips_the_verdict_and_the_rule_shows_it(claim, numbers, margin, new, before, after, shown,
                                                                  shown_after):
    moved = replace(claim, margins={**claim.margins, margin: new})
    assert claim.decide(numbers) == before and moved.decide(numbers) == after
    assert shown in claim.rule and shown not in moved.rule and shown_after in moved.rule


def test_the_ics_rule_needs_extra_shift_and_a_benefit_and_reads_the_kept_share():
    none, bn = BASE, _plus(BASE, [0.02 + u for u in UP])  # BN 3.16 points better in accuracy
    loss_none, loss_bn = [1.0, 1.1, 1.05, 1.0, 0.95], [0.5, 0.55, 0.5, 0.45, 0.5]
    shift = {"none": [0.1] * 5, "noisy": [1.0, 1.1, 0.9, 1.0, 1.2]}

    def numbers(acc_noisy, loss_noisy, sh=shift):
        return {"acc": {"none": none, "bn": bn, "noisy": acc_noisy},
                "early": {"none": loss_none, "bn": loss_bn, "noisy": loss_noisy}, "shift": sh}

    keeps_all = numbers(bn, loss_bn)  # noisy BN as good as BN: the benefit does not come from less shift
    assert R.ICS_IS_WHY.decide(keeps_all) == R.NOT_SUPPORTED
    loses_all = numbers(none, loss_none)
    assert R.ICS_IS_WHY.decide(loses_all) == R.SUPPORTED
    assert R.ICS_IS_WHY.decide(numbers(bn, loss_none)) == R.MIXED
    assert R.ICS_IS_WHY.decide(numbers(bn, loss_bn, {"none": [1.0] * 5, "noisy": [1.0] * 5})) == R.INCONCLUSIVE
    # noisy BN keeps 60% of the accuracy benefit: not supported at keep = 0.5, supported at keep = 0.7
    sixty = [a + 0.6 * (b - a) for a, b in zip(none, bn, strict=True)]
    only_acc = {**numbers(sixty, loss_bn), "early": {"none": loss_bn, "bn": loss_bn, "noisy": loss_bn}}
    assert R.ICS_IS_WHY.decide(only_acc) == R.NOT_SUPPORTED
    assert replace(R.ICS_IS_WHY, margins={"keep": 0.7}).decide(only_acc) == R.SUPPORTED
    assert "less than half of it" in R.ICS_IS_WHY.rule


def test_the_bjorck_rule_asks_for_a_larger_best_rate_and_a_vanishing_equal_rate_advantage():
    none = BASE
    big = _plus(BASE, [0.05 + u for u in UP])
    small = _plus(BASE, [0.01 + u / 10 for u in UP])
    n = {"k_none": 1, "k_bn": 5, "bn_at_none": small, "none_at_none": none, "bn_at_bn": big}
    assert R.BJORCK.decide(n) == R.SUPPORTED
    assert R.BJORCK.decide({**n, "k_bn": 1}) == R.MIXED  # the best rates do not differ
    assert R.BJORCK.decide({**n, "bn_at_none": big}) == R.MIXED  # all of the advantage remains at equal rates
    assert R.BJORCK.decide({**n, "k_bn": 0.5, "bn_at_none": big}) == R.NOT_SUPPORTED


def test_landscape_rules_read_ratios_on_a_log_scale():
    n = {f"{k}_{lab}": [v * f for v in (1.0, 1.1, 0.9, 1.05, 0.95)]
         for k in R.LANDSCAPE_KEYS for lab, f in (("none", 2.0), ("bn", 1.0), ("l1", 1.0), ("linf", 1.5))}
    assert R.SMOOTHS.decide(n) == R.SUPPORTED  # twice as smooth by every measure, beyond a factor of 1.1
    assert replace(R.SMOOTHS, margins={"ratio": 3.0}).decide(n) == R.NOT_SUPPORTED
    assert R.LP_SMOOTH.decide(n) == R.SUPPORTED  # 2 / 1 and 2 / 1.5 = 1.33 both beyond 1.1
    assert replace(R.LP_SMOOTH, margins={"ratio": 1.5}).decide(n) == R.MIXED


def test_every_margin_is_shown_in_its_rule():
    for c in R.CLAIMS:
        for k, v in c.margins.items():
            moved = replace(c, margins={**c.margins, k: v * 1.3})
            assert moved.rule != c.rule, f"{c.key}: margin {k} does not appear in the rule text"
        assert not re.search(r"\{[a-z_]", c.rule), f"{c.key}: a margin is not filled in"


def test_margins_are_read_only_and_travel_with_the_row():
    with pytest.raises(TypeError):
        R.HIGHER_LR.margins["k_min"] = 4
    row = RL.claim_identity({"train_rel": 1e-16, "inference_rel": 0.0})
    assert row["margins"] == {"tol": 1e-12} and row["rule"] == R.IDENTITY.rule
    moved = RL.claim_identity({"train_rel": 1e-16, "inference_rel": 1e-13}, claim=replace(R.IDENTITY,
                                                                                        margins={"tol": 1e-14}))
    assert moved["verdict"] == R.NOT_SUPPORTED and moved["margins"] == {"tol": 1e-14} and "1e-14" in moved["rule"]
    with pytest.raises(ValueError, match="verdict must be one of"):
        R.HIGHER_LR.row("probably", "m")


def test_accelerates_alternative_reading():
    row = {"numbers": {"speedups": {"MNIST, BN": [1.6, 1.7, 1.65, 1.7, 1.6], "CIFAR-10, BN": [3.0] * 5}}}
    assert R.ACCELERATES.decide(row["numbers"]) == R.MIXED  # about 1.65 < 2
    assert R.accelerates_alternative(row) == R.SUPPORTED  # beyond 1.5
    assert R.accelerates_alternative(row, 1.65) == R.INCONCLUSIVE  # the interval straddles 1.65
    out = RL.accelerates_exercise(row)
    geo = (1.6 * 1.7 * 1.65 * 1.7 * 1.6) ** 0.2
    assert out["claims_acc_min"].value == pytest.approx(geo) and out["claims_acc_max"].value == pytest.approx(3.0)
    assert out["claims_acc_max"].digits == 4 and out["claims_acc_alt"].value == R.SUPPORTED
    assert RL.accelerates_exercise({"numbers": {}}) == {}


def test_the_claims_chapter_states_the_thresholds_of_the_rules():
    nb = json.loads((Path(__file__).resolve().parent.parent / "book" / "claims.ipynb").read_text())
    prose = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").replace("\n", " ")
    assert f"a speed-up of more than {R.ACCELERATES.margins['speedup']:g} in every setting" in prose
    assert f"a threshold of {R.ACCELERATES_ALT_SPEEDUP:g}" in prose


def _run(norm, seed, summary, curves=None, **cfg):
    return {"config": {"norm": norm, "seed": seed, **cfg}, "summary": {"diverged_at": None, **summary},
            "curves": curves or {}}


def test_bjorck_and_higher_lr_choose_rates_on_validation_not_on_test():
    base, runs = 0.1, {}
    # no BN: best on validation at 1x, though its test accuracy is higher at 2x (a test-set choice would pick 2x)
    for s in range(5):
        e = 0.001 * s
        for k, val, test in ((1, 0.60, 0.50), (2, 0.55, 0.58), (5, 0.40, 0.40)):
            runs[f"none-x{k}-seed{s}"] = _run(None, s, {"final_val_acc": val + e, "final_test_acc": test + e},
                                              lr=base * k)
        for k, val, test in ((1, 0.70, 0.62), (2, 0.75, 0.70), (5, 0.80, 0.75)):
            summ = {"final_val_acc_pop": val + e, "final_test_acc_pop": test + 2 * e, "final_test_acc": 0.1}
            runs[f"bn-x{k}-seed{s}"] = _run("torch", s, summ, lr=base * k)
    sweep = {"name": "cifar_lr_sweep", "runs": runs}
    assert RL.best_rates(sweep, base) == {False: 1.0, True: 5.0}
    row = RL.claim_bjorck(sweep, base)
    # at 1x BN leads by 12 points (+0.001 s), at its best by 25: 12 - 12.5 < 0 on every seed: supported
    assert row["verdict"] == R.SUPPORTED and row["numbers"]["k_none"] == 1.0
    assert row["parts"][1]["mean"] == pytest.approx(0.12 + 0.002 - 0.5 * (0.25 + 0.002), abs=1e-9)
    assert "5 seeds" in row["measured"] and "5/5" in row["measured"]
    hi = RL.claim_higher_lr(sweep, base)  # BN at 5x 75% vs no BN at 1x 50%; no BN at 5x 10 points below 1x
    assert hi["verdict"] == R.SUPPORTED
    assert hi["parts"][0]["mean"] == pytest.approx(0.25 + 0.002, abs=1e-9)


def test_a_diverged_run_counts_at_chance_and_small_batches_pick_the_better_other_norm_on_validation():
    runs = {}
    for s in range(5):
        e = 0.002 * s
        for norm, b, val, test in (("torch", 2, 0.50, 0.50), ("torch", 16, 0.97, 0.96), ("layer", 2, 0.90, 0.95),
                                   ("group", 2, 0.93, 0.90), ("torch", 8, 0.95, 0.97)):
            key = "_pop" if norm == "torch" else ""
            runs[f"{norm}-b{b}-seed{s}"] = _run(norm, s, {f"final_val_acc{key}": val + e, f"final_test_acc{key}": test},
                                                batch_size=b)
    runs["torch-b2-seed3"]["summary"]["diverged_at"] = 100
    row = RL.claim_small_batches({"name": "tt_batch_size", "runs": runs})
    n = row["numbers"]
    assert (n["batch"], n["best_batch"], n["other"]) == (2, 16, "Group Norm")  # chosen on validation
    assert n["bn_small"] == [0.5, 0.5, 0.5, R.CHANCE, 0.5] and n["bn_best"] == [0.96] * 5
    assert row["verdict"] == R.SUPPORTED


def test_mnist_speedups_read_the_validation_curves():
    step = [0, 100, 200, 300, 400]
    fig1 = {"name": "mnist_fig1", "runs": {}}
    for s in range(5):
        # no BN reaches its final validation accuracy 0.9 at step 400; BN (population statistics) at 100; the
        # test curves say otherwise and must not count
        fig1["runs"][f"none-seed{s}"] = _run(None, s, {"steps_done": 400},
                                             {"step": step, "val_acc": [0.1, 0.5, 0.7, 0.8, 0.9],
                                              "test_acc": [0.1, 0.9, 0.9, 0.9, 0.9]})
        fig1["runs"][f"bn-seed{s}"] = _run("torch", s, {"steps_done": 400}, {"step": step, "val_acc": [0.1] * 5,
                                                             "val_acc_pop": [0.1, 0.5 + 0.4 * (s > 0), 0.9, 0.9, 0.9],
                                                             "test_acc": [0.1] * 5})
    assert RL._mnist_speedups(fig1) == [2.0, 4.0, 4.0, 4.0, 4.0]
    never = {"name": "x", "runs": {"none": _run(None, 0, {"steps_done": 400},
                                                {"step": step, "val_acc": [0.1, 0.2, 0.3, 0.4, 0.9]}),
                                   "bn": _run("torch", 0, {"steps_done": 400},
                                              {"step": step, "val_acc_pop": [0.1] * 5})}}
    assert RL._mnist_speedups(never) == [400 / 500]  # BN never gets there: counted one record after its last


def test_draws_must_be_given_per_seed():
    with pytest.raises(ValueError, match="each seed to that seed's"):
        RL._draws_by_seed({}, {0: (1, 2), 1: (3, 4)})
    assert RL._draws_by_seed({}, {0: {0: (1, 2)}}) == {0: {0: (1, 2)}}


def _row(key, verdict, claim=R.RECIPE):
    return replace(claim, key=key, text=f"claim {key}").row(verdict, f"measured {key}")


def test_ledger_numbers():
    rows = [_row("a", R.SUPPORTED), _row("b", R.MIXED), _row("c", R.MIXED), _row("d", R.CHECKED)]
    out = RL.ledger_numbers(rows, {"cifar"})
    counts = ["claims_n", "claims_n_supported", "claims_n_not_supported", "claims_n_inconclusive", "claims_n_mixed",
              "claims_n_checked", "claims_n_not_tested", "claims_n_empirical"]
    assert list(out)[:len(counts)] == counts
    assert [out[k].value for k in counts] == [4, 1, 0, 0, 2, 1, 0, 3]
    ledger = out["claims_ledger"].value
    assert out["claims_ledger"].kind == "md" and [b.splitlines()[0] for b in ledger.split("\n\n")] == [
        "1. **claim a**", "2. **claim b**", "3. **claim c**", "4. **claim d**"]
    assert "{ref}`the acceleration recipe <cifar-recipe>`" in out["claims_ledger"].value
    assert out["claims_rules"].value.splitlines()[1] == f"2. **claim b.** {R.RECIPE.rule}"
    assert (out["claims_v_b"].kind, out["claims_v_b"].value) == ("text", R.MIXED)


def test_overhead_numbers_and_pair_table():
    pairs = [{"experiment": "z", "bn": "bn", "none": "none", "model": "mlp", "norm": "torch", "ratio": 1.25},
             {"experiment": "a", "bn": "bn2", "none": "none2", "model": "mlp", "norm": "torch", "ratio": 0.9},
             {"experiment": "b", "bn": "c-bn", "none": "c-none", "model": "cnn", "norm": "torch", "ratio": 1.5}]
    ov = {"pairs": pairs, "median_overhead": {("mlp", "torch"): 0.075, ("cnn", "torch"): 0.5},
          "count": {("mlp", "torch"): 2, ("cnn", "torch"): 1}, "median_overhead_all": 0.25, "slower_fraction": 2 / 3}
    out = RL.overhead_numbers(ov)
    assert out["claims_n_pairs"].value == 3 and out["claims_overhead"].value == 25.0
    assert out["claims_slower"].value == pytest.approx(200 / 3) and out["claims_slower"].digits == 2
    assert out["claims_overhead_mlp_torch"].value == 7.5 and out["claims_n_pairs_cnn_torch"].value == 1
    empty = RL.overhead_numbers({"pairs": [], "median_overhead_all": None})
    assert list(empty) == ["claims_n_pairs"] and empty["claims_n_pairs"].value == 0
    # by network, then experiment: cnn first, then mlp's a before z; one row per experiment
    more = ov | {"pairs": pairs + [{**pairs[0], "bn": "bn-seed1", "ratio": 1.75}, {**pairs[0], "ratio": 1.5}]}
    assert RL.pair_table(more).cells() == [["b", "CNN", "1", "1.50", "1.50", "1.50"],
                                           ["a", "MLP", "1", "0.90", "0.90", "0.90"],
                                           ["z", "MLP", "3", "1.50", "1.25", "1.75"]]
