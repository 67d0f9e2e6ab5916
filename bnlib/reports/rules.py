"""The rules of the claims ledger (book/claims.ipynb): one :class:`Claim` record per claim, whose margins are
its rule's thresholds, written once, formatted into the rule's text and applied by its verdict function to the
numbers that :mod:`bnlib.reports.claims` measures from committed results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from bnlib.reports.evidence import MIXED, NOT_SUPPORTED, SUPPORTED

NOT_TESTED = "not tested"


VERDICTS = (SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED)


_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


class Margin:
    """A margin as a rule's text shows it, by format spec: ``pts`` 0.05 -> "5 points", ``pct`` 0.15 -> "15%",
    ``exp`` 1e-9 -> "1e-9", ``of`` 0.5 -> "half", ``times`` 2 -> "twice", ``in`` 0.75 -> "3 in 4", ``word``
    2 -> "two"; any other spec as :func:`format`."""

    def __init__(self, value: float):
        self.value = value

    def __format__(self, spec: str) -> str:
        v = self.value
        if spec == "pts":
            return f"{100 * v:g} point{'' if 100 * v == 1 else 's'}"
        if spec == "pct":
            return f"{100 * v:g}%"
        if spec == "exp":
            mantissa, exponent = f"{v:e}".split("e")
            return f"{float(mantissa):g}e{int(exponent)}"
        if spec == "of":
            return {0.5: "half", 1: "all"}.get(v, f"{100 * v:g}%")
        if spec == "times":
            return "twice" if v == 2 else f"{v:g} times"
        if spec == "in":
            f = Fraction(v).limit_denominator(20)
            return f"{f.numerator} in {f.denominator}"
        if spec == "word":
            return _WORDS.get(v, f"{v:g}")
        return format(v, spec)


@dataclass(frozen=True)
class Claim:
    """One claim of the ledger: ``margins`` are its rule's thresholds; ``rule`` is ``template`` formatted from
    them (and from ``derived(**margins)``, values the rule computes from them); ``verdict(numbers, **margins)``
    decides a row's ``numbers`` by the same margins."""

    key: str
    text: str
    sources: tuple[str, ...]
    where: tuple[tuple, ...]
    margins: Mapping[str, float]
    template: str
    verdict: Callable[..., str]
    source_note: str = ""
    derived: Callable[..., dict] | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "margins", MappingProxyType(dict(self.margins)))

    @property
    def rule(self) -> str:
        """The rule's text with every margin filled in."""
        values = dict(self.margins) | (self.derived(**self.margins) if self.derived else {})
        return self.template.format(**{k: Margin(v) for k, v in values.items()})

    def decide(self, numbers: dict) -> str:
        """The verdict on ``numbers`` (a row's measured numbers) by this claim's margins."""
        return self.verdict(numbers, **self.margins)

    def row(self, verdict: str, measured: str, numbers: dict | None = None) -> dict:
        """One ledger row with the given verdict (see :func:`_row`)."""
        return _row(self.key, self.text, self.sources, self.where, self.rule, verdict, measured, numbers,
                    self.source_note, self.margins)

    def judged(self, measured: str, numbers: dict) -> dict:
        """The row whose verdict is :meth:`decide` of ``numbers``."""
        return self.row(self.decide(numbers), measured, numbers)

    def missing(self, names: Sequence[str]) -> dict:
        """The row of a claim whose results are not yet computed: not tested."""
        return self.row(NOT_TESTED, f"no committed result of {', '.join(names)} yet: nothing measured")


def _row(key: str, claim: str, sources: Sequence[str], where: Sequence[tuple], rule: str, verdict: str,
         measured: str, numbers: dict | None = None, source_note: str = "", margins: Mapping | None = None) -> dict:
    """One ledger row. ``sources``: bibliography keys; ``where``: ``(chapter, section words, label or None)``
    triples naming the experiment or derivation that tests the claim; ``margins``: the thresholds the rule used."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}.")
    return {"key": key, "claim": claim, "sources": list(sources), "source_note": source_note,
            "where": [tuple(w) for w in where], "rule": rule, "verdict": verdict, "measured": measured,
            "numbers": dict(numbers or {}), "margins": dict(margins or {})}


def _three(good: bool, bad: bool) -> str:
    """Supported if ``good``, else not supported if ``bad``, else mixed."""
    return SUPPORTED if good else NOT_SUPPORTED if bad else MIXED


# --------------------------------------------------------------------------- the claims, in the ledger's order
def _v_higher_lr(n: dict, drop: float, k_min: float, ratio: float) -> str:
    return _three(n["k_bn"] >= k_min and n["k_bn"] >= ratio * n["k_none"], n["k_bn"] <= n["k_none"])


HIGHER_LR = Claim(
    "higher_lr", "allows much higher learning rates", ("ioffe2015batch", "bjorck2018understanding"),
    (("cifar", "learning-rate sweep", "cifar-lr"),), {"drop": 0.05, "k_min": 5, "ratio": 2},
    "A learning-rate multiplier k trains when no seed diverges and the final test accuracy is at least the no-BN "
    "network's at 1x minus {drop:pts}; k_max is the largest swept k such that every multiplier from 1 to k trains. "
    "Supported if BN's k_max is at least {k_min:g} and at least {ratio:times} no-BN's; not supported if it is no "
    "larger than no-BN's; mixed otherwise.", _v_higher_lr)


def _v_init(n: dict, within: float) -> str:
    bn, none = n["bn"], n["none"]
    wider = bn["decades"] > none["decades"]
    return _three(wider and bn["lo"] <= none["lo"] and bn["hi"] >= none["hi"], not wider)


INIT = Claim(
    "init", "less careful initialization", ("ioffe2015batch",), (("mnist", "initialization sweep", "mnist-init"),),
    {"within": 0.02},
    "The range of initial weight scales sigma around a network's best one at which its final test accuracy is "
    "within {within:pts} of that best (the MNIST chapter's sigma range), in decades. Supported if BN's range is "
    "wider than no-BN's and contains it; not supported if it is no wider; mixed otherwise.", _v_init)


def _v_regularizer(n: dict) -> str:
    regularizes, replaces = n["gap_bn"] < n["gap_none"], n["test_bn"] >= n["test_none_dropout"]
    return _three(regularizes and replaces, not (regularizes or replaces))


REGULARIZER = Claim(
    "regularizer", "regularizes, reduces the need for dropout", ("ioffe2015batch",),
    (("train_test", "BN as a regularizer", "tt-regularizer"),), {},
    "On 5,000 training images: BN regularizes if, without dropout, its train-test accuracy gap is smaller than "
    "no-BN's; it reduces the need for dropout if BN without dropout reaches at least the test accuracy of no BN with "
    "dropout. Supported if both hold, not supported if neither, mixed otherwise.", _v_regularizer)


def _v_saturating(n: dict, gain: float) -> str:
    a_bn, a_none = n["acc_bn"] or 0.0, n["acc_none"] or 0.0
    return _three(a_bn - a_none >= gain and n["sat_bn"] <= n["sat_none"], a_bn <= a_none)


SATURATING = Claim(
    "saturating", "makes saturating nonlinearities trainable", ("ioffe2015batch",),
    (("cifar", "sigmoid networks by depth", "cifar-depth"),), {"gain": 0.05},
    "Sigmoid CNNs at the largest swept depth, same learning rate: supported if BN's final test accuracy is at least "
    "{gain:pts} above no-BN's and its mean saturated fraction of sigmoid inputs at the end is no larger; not "
    "supported if BN's accuracy is not higher; mixed otherwise.", _v_saturating)


def _v_reduces_ics(n: dict) -> str:
    smaller, aligned = n["l2_bn"] < n["l2_none"], n["cos_bn"] > n["cos_none"]
    return _three(smaller and aligned, not (smaller or aligned))


REDUCES_ICS = Claim(
    "reduces_ics", "reduces internal covariate shift", ("ioffe2015batch", "santurkar2018how"),
    (("why", "internal covariate shift measured", "why-ics"),), {},
    "Santurkar et al.'s measure (l2 distance and cosine between a layer's gradient before and after the earlier "
    "layers' update) at every checkpoint and weight layer after the first: supported if BN's median l2 distance is "
    "smaller and its median cosine larger than no-BN's; not supported if both are the other way; mixed otherwise.",
    _v_reduces_ics)


def _v_ics_is_why(n: dict, keep: float) -> str:
    held = [v >= keep for v in n["kept"].values()]
    if not held or n["shift"]["noisy"] <= n["shift"]["none"]:
        return MIXED
    return NOT_SUPPORTED if all(held) else SUPPORTED if not any(held) else MIXED


ICS_IS_WHY = Claim(
    "ics_is_why", "its benefit comes from reducing internal covariate shift", ("ioffe2015batch", "santurkar2018how"),
    (("why", "noisy BN", "why-noisy"),), {"keep": 0.5},
    "Noisy BN injects a random, time-varying shift and scale after every BN. BN's benefits measured against no BN: "
    "early training speed (mean mini-batch loss over the first record interval) and final test accuracy (eval "
    "mode); a benefit counts only where BN beats no BN. Noisy BN keeps a benefit if it retains at least {keep:of} of "
    "BN's advantage. The test counts only if noisy BN's shift (the MNIST chapter's drift measure, as training sees "
    "the inputs) exceeds no-BN's. Not supported if noisy BN keeps every benefit; supported if it keeps none; mixed "
    "otherwise, and when there is no benefit or no extra shift.", _v_ics_is_why)


def _v_accelerates(n: dict, speedup: float, no_gain: float) -> str:
    vals = [v or 0.0 for v in n["speedups"].values()]
    return _three(min(vals) >= speedup, max(vals) <= no_gain)


ACCELERATES = Claim(
    "accelerates", "accelerates training (14× fewer steps in the paper)", ("ioffe2015batch",),
    (("mnist", "Figure 1", "mnist-accuracy"), ("cifar", "steps to the baseline", "cifar-steps")),
    {"speedup": 2, "no_gain": 1},
    "Speed-ups as each chapter defines them, read off records every few hundred steps: on MNIST (same learning "
    "rate) the steps the network without BN needs to first reach its final test accuracy over the steps BN needs to "
    "reach it; on CIFAR-10 the steps to the no-BN baseline's best test accuracy, for BN at the baseline's rate and "
    "for the whole recipe. Supported if every speed-up is at least {speedup:g}; not supported if none exceeds "
    "{no_gain:g}; mixed otherwise.", _v_accelerates)


#: The claims chapter's exercise: the speed-up that the "accelerates" rule would ask for instead of its own.
ACCELERATES_ALT_SPEEDUP = 1.5


def accelerates_alternative(row: dict, speedup: float = ACCELERATES_ALT_SPEEDUP) -> str:
    """The "accelerates" row's verdict had its rule asked for ``speedup`` (its other margins unchanged)."""
    return ACCELERATES.verdict(row["numbers"], **(dict(ACCELERATES.margins) | {"speedup": speedup}))


def _v_scale_invariance(n: dict, tol: float) -> str:
    return SUPPORTED if n["max_out_diff"] <= tol and n["max_grad_rel"] <= tol else NOT_SUPPORTED


SCALE_INVARIANCE = Claim(
    "scale_invariance", "scale invariance: BN(aWu) = BN(Wu)", ("ioffe2015batch",),
    (("scale_invariance", "", None), ("claims", "checked here", "claims-checks")), {"tol": 1e-9},
    "Float64, random W, u and a in {{0.01, 0.1, 10, 100}}: supported if with epsilon = 0 the outputs BN(aWu) and "
    "BN(Wu) differ by at most {tol:exp} and the gradient with respect to the weights at aW is 1/a times the one at W "
    "to {tol:exp} (relative); not supported otherwise.", _v_scale_invariance)


def _v_identity(n: dict, tol: float) -> str:
    return SUPPORTED if n["train_rel"] <= tol and n["inference_rel"] <= tol else NOT_SUPPORTED


IDENTITY = Claim(
    "identity", "can represent the identity", ("ioffe2015batch",),
    (("transform", "", None), ("claims", "checked here", "claims-checks")), {"tol": 1e-12},
    "Float64, random batches: supported if with gamma = sqrt(var + epsilon) and beta = mean the layer returns its "
    "input to {tol:exp} (relative), in training mode (batch statistics) and at inference (population statistics); "
    "not supported otherwise.", _v_identity)


def _v_folding(n: dict, same: float, diff: float) -> str:
    return SUPPORTED if n["same_predictions"] >= same and n["max_abs_diff"] <= diff else NOT_SUPPORTED


FOLDING = Claim(
    "folding", "at inference a linear transform that can be folded", ("ioffe2015batch",),
    (("train_test", "folding", "tt-folding"),), {"same": 0.999, "diff": 1e-4},
    "The trained MNIST network with every BN folded into the preceding linear layer (inference only): supported if "
    "it predicts the same class as the eval-mode network on at least {same:pct} of the test images and its outputs "
    "differ by at most {diff:exp}; not supported otherwise.", _v_folding)


def _v_small_batches(n: dict, drop: float) -> str:
    at, best_other = n["acc_bn"], n["best_other"]
    lost = n["best_bn"] - (at if at is not None else 0.0)
    behind = best_other is not None and (at is None or at < best_other)
    return _three(lost > drop and behind, lost <= drop)


SMALL_BATCHES = Claim(
    "small_batches", "poor with small batches", ("ioffe2017batch", "wu2018group"),
    (("train_test", "batch-size sweep", "tt-batch-size"),), {"drop": 0.01},
    "One epoch at each training batch size (learning rate 0.5 B / 60): supported if at the smallest batch size BN's "
    "test accuracy (eval mode) is more than {drop:pts} below its own best over the batch sizes and below the better "
    "of Layer Norm and Group Norm; not supported if it is within {drop:pts} of its best; mixed otherwise.",
    _v_small_batches)


def _overhead_band(agree: float, claimed: float, factor: float) -> dict:
    """The medians that count as "about ``claimed``": within a factor of ``factor`` of it."""
    return {"lo": claimed / factor, "hi": claimed * factor}


def _v_overhead(n: dict, agree: float, claimed: float, factor: float) -> str:
    if n["slower"] < agree:
        return MIXED
    band = _overhead_band(agree, claimed, factor)
    return _three(band["lo"] <= n["median"] <= band["hi"], n["median"] <= 0)


OVERHEAD = Claim(
    "overhead", "adding BN slows each step (about 30%)", (), (("claims", "what was timed", "claims-overhead"),),
    {"agree": 0.75, "claimed": 0.30, "factor": 2},
    "Overhead = per-step wall time with BN / without BN - 1 for every pair of committed runs that differ only in BN "
    "(recording every few hundred steps included; the CPU is shared), median over pairs. The timings count only if "
    "at least {agree:in} pairs agree that BN is slower; otherwise mixed (too noisy to measure a cost). Supported if "
    "the median is between {lo:pct} and {hi:pct} ('about {claimed:pct}' within a factor of {factor:word}); not "
    "supported if it is 0 or less; mixed otherwise.", _v_overhead, "lecture notes in the CS231n style",
    _overhead_band)


LANDSCAPE_KEYS = ("median_loss_range", "median_gc_max", "median_beta")


def _v_smooths(n: dict) -> str:
    lower = [n[k + "_bn"] < n[k + "_none"] for k in LANDSCAPE_KEYS]
    return _three(all(lower), not any(lower))


SMOOTHS = Claim(
    "smooths", "smooths the loss landscape", ("santurkar2018how",),
    (("why", "the landscape along the gradient", "why-landscape"),), {},
    "Medians over the checkpoints of (i) the range of the loss at w - eta g over the step sizes, (ii) the largest "
    "gradient change ||g(w - eta g) - g(w)|| and (iii) the effective beta-smoothness. Supported if BN's median is "
    "lower than no-BN's in all three; not supported if in none; mixed otherwise.", _v_smooths)


LP_NORMS = ("l1", "linf")


def _v_lp_smooth(n: dict, min_wins: int) -> str:
    wins = n["wins"]
    return _three(all(wins[lab] >= max(wins["bn"], min_wins) for lab in LP_NORMS),
                  all(wins[lab] == 0 for lab in LP_NORMS))


LP_SMOOTH = Claim(
    "lp_smooth", "l_p normalizations smooth as well", ("santurkar2018how",), (("why", "l_p normalizations", "why-lp"),),
    {"min_wins": 1},
    "Santurkar et al.'s l_p normalizations divide the centred pre-activations by their batch l_1 or l_inf average "
    "instead of the standard deviation (l_2). A run is smoother than no BN on a measure of the landscape along the "
    "gradient (median loss range, largest gradient change, effective beta) if its value is lower. Supported if every "
    "l_p run is smoother than no BN on at least as many measures as BN is (and on at least {min_wins:word}); not "
    "supported if no l_p run is smoother on any measure; mixed otherwise.", _v_lp_smooth)


def _v_recipe(n: dict) -> str:
    k = sum(n["helps"].values())
    return _three(k == len(n["helps"]), k == 0)


RECIPE = Claim(
    "recipe", "each step of the acceleration recipe helps", ("ioffe2015batch",),
    (("cifar", "the acceleration recipe", "cifar-recipe"),), {},
    "Cumulative ablation from the BN baseline (target: the no-BN baseline's best test accuracy): a change helps if it "
    "lowers the steps to the target, or leaves them equal and raises the final test accuracy. Supported if every "
    "change helps; not supported if none does; mixed otherwise.", _v_recipe)


def _v_bjorck(n: dict, remains: float) -> str:
    total, same = n["advantage"], n["at_same_rate"]
    return _three(total > 0 and same <= remains * total, total > 0 and same >= total)


BJORCK = Claim(
    "bjorck", "its benefit comes mainly from the larger learning rates it allows", ("bjorck2018understanding",),
    (("cifar", "learning-rate sweep", "cifar-lr"),), {"remains": 0.5},
    "BN's advantage = its best final test accuracy over the swept learning rates minus no-BN's best; at equal rate = "
    "BN's minus no-BN's accuracy at no-BN's best rate. Supported if the advantage is positive and at most "
    "{remains:of} of it remains at equal rate; not supported if all of it remains; mixed otherwise (also when BN has "
    "no advantage to explain).", _v_bjorck)


#: Every claim, in the ledger's order.
CLAIMS = (HIGHER_LR, INIT, REGULARIZER, SATURATING, REDUCES_ICS, ICS_IS_WHY, ACCELERATES, SCALE_INVARIANCE,
          SMALL_BATCHES, FOLDING, IDENTITY, OVERHEAD, SMOOTHS, LP_SMOOTH, RECIPE, BJORCK)

