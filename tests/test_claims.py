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

OLD_RULES = {  # the rule texts as the ledger showed them before the rules became records
    "higher_lr": (
        "A learning-rate multiplier k trains when no seed diverges and the final test accuracy is at least "
        "the no-BN network's at 1x minus 5 points; k_max is the largest swept k such that every multiplier "
        "from 1 to k trains. Supported if BN's k_max is at least 5 and at least twice no-BN's; not supported "
        "if it is no larger than no-BN's; mixed otherwise."
    ),
    "init": (
        "The range of initial weight scales sigma around a network's best one at which its final test "
        "accuracy is within 2 points of that best (the MNIST chapter's sigma range), in decades. Supported if"
        " BN's range is wider than no-BN's and contains it; not supported if it is no wider; mixed otherwise."
    ),
    "regularizer": (
        "On 5,000 training images: BN regularizes if, without dropout, its train-test accuracy gap is smaller"
        " than no-BN's; it reduces the need for dropout if BN without dropout reaches at least the test "
        "accuracy of no BN with dropout. Supported if both hold, not supported if neither, mixed otherwise."
    ),
    "saturating": (
        "Sigmoid CNNs at the largest swept depth, same learning rate: supported if BN's final test accuracy "
        "is at least 5 points above no-BN's and its mean saturated fraction of sigmoid inputs at the end is "
        "no larger; not supported if BN's accuracy is not higher; mixed otherwise."
    ),
    "reduces_ics": (
        "Santurkar et al.'s measure (l2 distance and cosine between a layer's gradient before and after the "
        "earlier layers' update) at every checkpoint and weight layer after the first: supported if BN's "
        "median l2 distance is smaller and its median cosine larger than no-BN's; not supported if both are "
        "the other way; mixed otherwise."
    ),
    "ics_is_why": (
        "Noisy BN injects a random, time-varying shift and scale after every BN. BN's benefits measured "
        "against no BN: early training speed (mean mini-batch loss over the first record interval) and final "
        "test accuracy (eval mode); a benefit counts only where BN beats no BN. Noisy BN keeps a benefit if "
        "it retains at least half of BN's advantage. The test counts only if noisy BN's shift (the MNIST "
        "chapter's drift measure, as training sees the inputs) exceeds no-BN's. Not supported if noisy BN "
        "keeps every benefit; supported if it keeps none; mixed otherwise, and when there is no benefit or no"
        " extra shift."
    ),
    "accelerates": (
        "Speed-ups as each chapter defines them, read off records every few hundred steps: on MNIST (same "
        "learning rate) the steps the network without BN needs to first reach its final test accuracy over "
        "the steps BN needs to reach it; on CIFAR-10 the steps to the no-BN baseline's best test accuracy, "
        "for BN at the baseline's rate and for the whole recipe. Supported if every speed-up is at least 2; "
        "not supported if none exceeds 1; mixed otherwise."
    ),
    "scale_invariance": (
        "Float64, random W, u and a in {0.01, 0.1, 10, 100}: supported if with epsilon = 0 the outputs "
        "BN(aWu) and BN(Wu) differ by at most 1e-9 and the gradient with respect to the weights at aW is 1/a "
        "times the one at W to 1e-9 (relative); not supported otherwise."
    ),
    "small_batches": (
        "One epoch at each training batch size (learning rate 0.5 B / 60): supported if at the smallest batch"
        " size BN's test accuracy (eval mode) is more than 1 point below its own best over the batch sizes "
        "and below the better of Layer Norm and Group Norm; not supported if it is within 1 point of its "
        "best; mixed otherwise."
    ),
    "folding": (
        "The trained MNIST network with every BN folded into the preceding linear layer (inference only): "
        "supported if it predicts the same class as the eval-mode network on at least 99.9% of the test "
        "images and its outputs differ by at most 1e-4; not supported otherwise."
    ),
    "identity": (
        "Float64, random batches: supported if with gamma = sqrt(var + epsilon) and beta = mean the layer "
        "returns its input to 1e-12 (relative), in training mode (batch statistics) and at inference "
        "(population statistics); not supported otherwise."
    ),
    "overhead": (
        "Overhead = per-step wall time with BN / without BN - 1 for every pair of committed runs that differ "
        "only in BN (recording every few hundred steps included; the CPU is shared), median over pairs. The "
        "timings count only if at least 3 in 4 pairs agree that BN is slower; otherwise mixed (too noisy to "
        "measure a cost). Supported if the median is between 15% and 60% ('about 30%' within a factor of "
        "two); not supported if it is 0 or less; mixed otherwise."
    ),
    "smooths": (
        "Medians over the checkpoints of (i) the range of the loss at w - eta g over the step sizes, (ii) the"
        " largest gradient change ||g(w - eta g) - g(w)|| and (iii) the effective beta-smoothness. Supported "
        "if BN's median is lower than no-BN's in all three; not supported if in none; mixed otherwise."
    ),
    "lp_smooth": (
        "Santurkar et al.'s l_p normalizations divide the centred pre-activations by their batch l_1 or l_inf"
        " average instead of the standard deviation (l_2). A run is smoother than no BN on a measure of the "
        "landscape along the gradient (median loss range, largest gradient change, effective beta) if its "
        "value is lower. Supported if every l_p run is smoother than no BN on at least as many measures as BN"
        " is (and on at least one); not supported if no l_p run is smoother on any measure; mixed otherwise."
    ),
    "recipe": (
        "Cumulative ablation from the BN baseline (target: the no-BN baseline's best test accuracy): a change"
        " helps if it lowers the steps to the target, or leaves them equal and raises the final test "
        "accuracy. Supported if every change helps; not supported if none does; mixed otherwise."
    ),
    "bjorck": (
        "BN's advantage = its best final test accuracy over the swept learning rates minus no-BN's best; at "
        "equal rate = BN's minus no-BN's accuracy at no-BN's best rate. Supported if the advantage is "
        "positive and at most half of it remains at equal rate; not supported if all of it remains; mixed "
        "otherwise (also when BN has no advantage to explain)."
    ),
}


def test_the_ledger_shows_the_same_rules_as_before():
    assert [c.key for c in R.CLAIMS] == list(OLD_RULES)
    for c in R.CLAIMS:
        assert c.rule == OLD_RULES[c.key], c.key


@pytest.mark.parametrize(("value", "spec", "shown"), [
    (0.05, "pts", "5 points"), (0.01, "pts", "1 point"), (0.15, "pct", "15%"), (0.999, "pct", "99.9%"),
    (1e-9, "exp", "1e-9"), (1e-4, "exp", "1e-4"), (2.5e-3, "exp", "2.5e-3"), (0.5, "of", "half"), (0.6, "of", "60%"),
    (2, "times", "twice"), (3, "times", "3 times"), (0.75, "in", "3 in 4"), (0.8, "in", "4 in 5"), (2, "word", "two"),
    (1.5, "word", "1.5"), (1.5, "g", "1.5")])
def test_margin_formats(value, spec, shown):
    assert format(R.Margin(value), spec) == shown


# claim, hand-made numbers, the margin moved and its new value, verdict before and after, text before and after
FLIPS = [
    (R.HIGHER_LR, {"k_bn": 4, "k_none": 1}, "k_min", 4, R.MIXED, R.SUPPORTED, "at least 5 and", "at least 4 and"),
    (R.HIGHER_LR, {"k_bn": 5, "k_none": 3}, "ratio", 1.5, R.MIXED, R.SUPPORTED, "at least twice no-BN's",
     "at least 1.5 times no-BN's"),
    (R.SATURATING, {"acc_bn": 0.54, "acc_none": 0.50, "sat_bn": 0.1, "sat_none": 0.2}, "gain", 0.03, R.MIXED,
     R.SUPPORTED, "at least 5 points above", "at least 3 points above"),
    (R.ICS_IS_WHY, {"kept": {"early speed": 0.6, "test accuracy": 0.4}, "shift": {"none": 0.2, "noisy": 1.0}}, "keep",
     0.4, R.MIXED, R.NOT_SUPPORTED, "at least half of BN's", "at least 40% of BN's"),
    (R.ICS_IS_WHY, {"kept": {"early speed": 0.6, "test accuracy": 0.4}, "shift": {"none": 0.2, "noisy": 1.0}}, "keep",
     0.7, R.MIXED, R.SUPPORTED, "at least half of BN's", "at least 70% of BN's"),
    (R.ACCELERATES, {"speedups": {"a": 1.8, "b": 3.0}}, "speedup", 1.5, R.MIXED, R.SUPPORTED, "at least 2;",
     "at least 1.5;"),
    (R.ACCELERATES, {"speedups": {"a": 1.2, "b": None}}, "no_gain", 1.25, R.MIXED, R.NOT_SUPPORTED,
     "none exceeds 1;", "none exceeds 1.25;"),
    (R.SCALE_INVARIANCE, {"max_out_diff": 1e-10, "max_grad_rel": 5e-9}, "tol", 1e-8, R.NOT_SUPPORTED, R.SUPPORTED,
     "at most 1e-9", "at most 1e-8"),
    (R.IDENTITY, {"train_rel": 1e-13, "inference_rel": 3e-12}, "tol", 1e-11, R.NOT_SUPPORTED, R.SUPPORTED,
     "to 1e-12 (relative)", "to 1e-11 (relative)"),
    (R.FOLDING, {"same_predictions": 0.9985, "max_abs_diff": 1e-5}, "same", 0.998, R.NOT_SUPPORTED, R.SUPPORTED,
     "at least 99.9% of", "at least 99.8% of"),
    (R.FOLDING, {"same_predictions": 1.0, "max_abs_diff": 5e-4}, "diff", 1e-3, R.NOT_SUPPORTED, R.SUPPORTED,
     "at most 1e-4;", "at most 1e-3;"),
    (R.SMALL_BATCHES, {"acc_bn": 0.92, "best_bn": 0.935, "best_other": 0.95}, "drop", 0.02, R.SUPPORTED,
     R.NOT_SUPPORTED, "more than 1 point below", "more than 2 points below"),
    (R.OVERHEAD, {"median": 0.3, "slower": 0.7}, "agree", 0.6, R.MIXED, R.SUPPORTED, "at least 3 in 4 pairs",
     "at least 3 in 5 pairs"),
    (R.OVERHEAD, {"median": 0.5, "slower": 1.0}, "claimed", 0.2, R.SUPPORTED, R.MIXED,
     "between 15% and 60% ('about 30%'", "between 10% and 40% ('about 20%'"),
    (R.OVERHEAD, {"median": 0.5, "slower": 1.0}, "factor", 1.5, R.SUPPORTED, R.MIXED, "within a factor of two",
     "within a factor of 1.5"),
    (R.LP_SMOOTH, {"wins": {"bn": 0, "l1": 1, "linf": 1}}, "min_wins", 2, R.SUPPORTED, R.MIXED,
     "(and on at least one)", "(and on at least two)"),
    (R.BJORCK, {"advantage": 0.08, "at_same_rate": 0.03}, "remains", 0.25, R.SUPPORTED, R.MIXED, "at most half of it",
     "at most 25% of it"),
]


@pytest.mark.parametrize(("claim", "numbers", "margin", "new", "before", "after", "shown", "shown_after"), FLIPS,
                         ids=[f"{f[0].key}-{f[2]}-{f[3]}" for f in FLIPS])
def test_moving_a_margin_flips_the_verdict_and_the_rule_shows_it(claim, numbers, margin, new, before, after, shown,
                                                                  shown_after):
    moved = replace(claim, margins={**claim.margins, margin: new})
    assert claim.decide(numbers) == before and moved.decide(numbers) == after
    assert shown in claim.rule and shown not in moved.rule and shown_after in moved.rule


@pytest.mark.parametrize(("median", "verdict"), [(0.15, R.SUPPORTED), (0.1499, R.MIXED), (0.6, R.SUPPORTED),
                                                 (0.6001, R.MIXED), (0.0, R.NOT_SUPPORTED), (0.0001, R.MIXED)])
def test_overhead_band_edges_come_from_the_claimed_value(median, verdict):
    # "about 30%" within a factor of two: 15% to 60%, both ends included
    assert R.OVERHEAD.decide({"median": median, "slower": 0.75}) == verdict
    assert R.OVERHEAD.decide({"median": median, "slower": 0.7499}) == R.MIXED


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
    row = {"numbers": {"speedups": {"MNIST, BN": 1.67, "CIFAR-10, BN": 3.0, "CIFAR-10, recipe": 6.0}}}
    assert R.ACCELERATES.decide(row["numbers"]) == R.MIXED  # 1.67 < 2
    assert R.accelerates_alternative(row) == R.SUPPORTED  # 1.67 >= 1.5
    assert R.accelerates_alternative(row, 1.7) == R.MIXED
    never = {"numbers": {"speedups": {"MNIST, BN": 1.67, "CIFAR-10, BN": None}}}  # never reached: 0
    assert R.accelerates_alternative(never) == R.MIXED
    slow = {"numbers": {"speedups": {"MNIST, BN": 0.9, "CIFAR-10, BN": 1.0}}}
    assert R.accelerates_alternative(slow) == R.NOT_SUPPORTED
    out = RL.accelerates_exercise(never)
    assert out["claims_acc_min"].value == 0.0 and out["claims_acc_max"].value == 1.67
    assert out["claims_acc_max"].digits == 4 and out["claims_acc_alt"].value == R.MIXED
    assert RL.accelerates_exercise({"numbers": {}}) == {}


def test_the_claims_chapter_states_the_thresholds_of_the_rules():
    nb = json.loads((Path(__file__).resolve().parent.parent / "book" / "claims.ipynb").read_text())
    prose = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").replace("\n", " ")
    assert f"a speed-up of at least {R.ACCELERATES.margins['speedup']:g} in every setting" in prose
    assert f"a threshold of {R.ACCELERATES_ALT_SPEEDUP:g}" in prose
    assert "at least three pairs in four" in prose and R.OVERHEAD.margins["agree"] == 3 / 4


def _row(key, verdict, claim=R.RECIPE):
    return replace(claim, key=key, text=f"claim {key}").row(verdict, f"measured {key}")


def test_ledger_numbers():
    rows = [_row("a", R.SUPPORTED), _row("b", R.MIXED), _row("c", R.MIXED)]
    out = RL.ledger_numbers(rows, {"cifar"})
    assert list(out) == ["claims_n", "claims_n_supported", "claims_n_not_supported", "claims_n_mixed",
                         "claims_n_not_tested", "claims_ledger", "claims_rules", "claims_v_a", "claims_v_b",
                         "claims_v_c"]
    assert [out[k].value for k in list(out)[:5]] == [3, 1, 0, 2, 0]
    ledger = out["claims_ledger"].value
    assert out["claims_ledger"].kind == "md" and [b.splitlines()[0] for b in ledger.split("\n\n")] == [
        "1. **claim a**", "2. **claim b**", "3. **claim c**"]
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
    # sorted by network, then experiment: cnn first, then mlp's a before z
    assert RL.pair_table(ov).cells() == [["b", "c-bn", "c-none", "CNN", "1.50"], ["a", "bn2", "none2", "MLP", "0.90"],
                                         ["z", "bn", "none", "MLP", "1.25"]]
