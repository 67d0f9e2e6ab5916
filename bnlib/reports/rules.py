"""The rules of the claims ledger (book/claims.ipynb): one :class:`Claim` record per claim, whose margins are
its rule's thresholds, written once, formatted into the rule's text and applied by its verdict function to the
numbers that :mod:`bnlib.reports.claims` measures from committed results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from bnlib.reports.evidence import (
    CHECKED,
    INCONCLUSIVE,
    MIXED,
    NOT_SUPPORTED,
    SUPPORTED,
    Paired,
    agreeing,
    agreeing_band,
    combine,
    judge,
    one_sample,
    paired,
    within,
)

NOT_TESTED = "not tested"


VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MIXED, CHECKED, NOT_TESTED)
#: The verdicts that count as evidence (the identities are checked, not tested on data).
EMPIRICAL = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MIXED)
#: A diverged run's accuracy, where a rule pairs it with others: chance level on ten classes.
CHANCE = 0.1


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
    parts: Callable[..., list] | None = field(default=None, compare=False)

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

    def tested_parts(self, numbers: dict) -> list[Part]:
        """The paired comparisons behind the verdict (empty for a check), by this claim's margins."""
        return self.parts(numbers, **self.margins) if self.parts else []

    def row(self, verdict: str, measured: str, numbers: dict | None = None) -> dict:
        """One ledger row with the given verdict (see :func:`_row`)."""
        return _row(self.key, self.text, self.sources, self.where, self.rule, verdict, measured, numbers,
                    self.source_note, self.margins)

    def judged(self, measured: str, numbers: dict) -> dict:
        """The row whose verdict is :meth:`decide` of ``numbers``, with its parts (each comparison's interval,
        verdict and the seeds that agree with it) under ``"parts"``."""
        row = self.row(self.decide(numbers), measured, numbers)
        row["parts"] = [p.as_dict() for p in self.tested_parts(numbers)]
        return row

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


@dataclass(frozen=True)
class Part:
    """One comparison behind a verdict: what it asks (``name``), its paired interval (None for a part decided
    by a choice, such as where a best rate lies), the margin and direction it is read against, its verdict and
    how many seeds, taken alone, point the same way (:func:`bnlib.reports.evidence.agreeing`; for a part read
    against a ``band``, as :func:`bnlib.reports.evidence.within` reads it, inside or outside the band:
    :func:`bnlib.reports.evidence.agreeing_band`)."""

    name: str
    verdict: str
    p: Paired | None = None
    margin: float = 0.0
    direction: int = 1
    band: tuple[float, float] | None = None

    @property
    def agree(self) -> int | None:
        if self.p is None or self.verdict not in (SUPPORTED, NOT_SUPPORTED):
            return None
        if self.band is not None:
            return agreeing_band(self.p, self.verdict, *self.band)
        return agreeing(self.p, self.verdict, self.margin, self.direction)

    def as_dict(self) -> dict:
        p = self.p
        return {"name": self.name, "verdict": self.verdict, "margin": self.margin, "direction": self.direction,
                "n": p.n if p else None, "mean": p.mean if p else None, "lo": p.lo if p else None,
                "hi": p.hi if p else None, "agree": self.agree}


def _part(name: str, a, b, margin: float, direction: int = 1) -> Part:
    """The part "``a`` exceeds ``b`` by more than ``margin``" (``direction`` -1: falls below), paired by seed."""
    p = paired(a, b)
    return Part(name, judge(p, margin, direction), p, margin, direction)


def _one(name: str, values, margin: float, direction: int = 1) -> Part:
    """The part "the mean of ``values`` exceeds ``margin``" (one value per seed)."""
    p = one_sample(values)
    return Part(name, judge(p, margin, direction), p, margin, direction)


def _logs(v) -> list[float]:
    return [math.log(x) for x in v]


def _combined(parts: Callable[..., list]) -> Callable[..., str]:
    """The verdict function of a claim whose verdict combines its parts (:func:`bnlib.reports.evidence.combine`)."""
    def verdict(n: dict, **margins) -> str:
        return combine([p.verdict for p in parts(n, **margins)])
    return verdict


#: How every empirical rule reads its parts, said once in the claims chapter.
READING = ("Every comparison is paired by seed (same initialization and data order): the mean difference over the "
           "seeds with its two-sided 95% t interval. A part is supported when the whole interval lies beyond its "
           "margin in the claimed direction, not supported when the whole interval lies short of it, and "
           "inconclusive when the interval straddles the margin or rests on fewer than five seeds. A claim with "
           "several parts is supported if every part is, not supported if every part is not, mixed if some are "
           "supported and others not, and inconclusive otherwise. Accuracies of BN networks use population "
           "statistics recomputed over the training split; a diverged run counts at chance (10%); choices (a best "
           "rate, a best batch size, a target accuracy) are made on the validation split.")


# --------------------------------------------------------------------------- the claims, in the ledger's order
def _p_higher_lr(n: dict, k: float, drop: float) -> list[Part]:
    return [_part(f"BN at {k:g}x vs no BN at 1x", n["bn_k"], n["none_1"], -drop),
            _part(f"no BN at {k:g}x vs no BN at 1x", n["none_k"], n["none_1"], drop, -1)]


HIGHER_LR = Claim(
    "higher_lr", "allows much higher learning rates", ("ioffe2015batch", "bjorck2018understanding"),
    (("cifar", "learning-rate sweep", "cifar-lr"),), {"k": 5, "drop": 0.02},
    "CIFAR-10 learning-rate sweep, final test accuracy: (a) BN at {k:g}x the baseline rate is not worse than no BN "
    "at 1x by more than {drop:pts}; (b) without BN, {k:g}x is worse than 1x by more than {drop:pts} (the higher rate "
    "is one that only BN allows).", _combined(_p_higher_lr), parts=_p_higher_lr)


def _p_init(n: dict, within: float, wider: float) -> list[Part]:
    return [_part("BN's sigma range minus no-BN's, in decades", n["dec_bn"], n["dec_none"], wider)]


INIT = Claim(
    "init", "less careful initialization", ("ioffe2015batch",), (("mnist", "initialization sweep", "mnist-init"),),
    {"within": 0.01, "wider": 0.5},
    "MNIST initialization sweep: per seed, the range of initial weight scales sigma around a network's best one at "
    "which its final validation accuracy is within {within:pts} of that best, in decades. Supported if BN's range is "
    "wider than no-BN's by more than {wider:g} decades (one step of the grid).", _combined(_p_init), parts=_p_init)


def _p_regularizer(n: dict, gap: float, worse: float) -> list[Part]:
    return [_part("train-test gap, no BN minus BN (no dropout)", n["gap_none"], n["gap_bn"], gap),
            _part("BN without dropout vs no BN with dropout", n["test_bn"], n["test_none_dropout"], -worse)]


REGULARIZER = Claim(
    "regularizer", "regularizes, reduces the need for dropout", ("ioffe2015batch",),
    (("train_test", "BN as a regularizer", "tt-regularizer"),), {"gap": 0.0025, "worse": 0.0025},
    "MNIST on 5,000 training images: (a) without dropout, BN's train-test accuracy gap is smaller than no-BN's by "
    "more than {gap:pts}; (b) BN without dropout is not worse than no BN with dropout by more than {worse:pts}.",
    _combined(_p_regularizer), parts=_p_regularizer)


def _p_saturating(n: dict, gain: float) -> list[Part]:
    return [_part("test accuracy, BN minus no BN", n["acc_bn"], n["acc_none"], gain),
            _part("saturated fraction at the end, no BN minus BN", n["sat_none"], n["sat_bn"], 0.0)]


SATURATING = Claim(
    "saturating", "makes saturating nonlinearities trainable", ("ioffe2015batch",),
    (("cifar", "sigmoid networks by depth", "cifar-depth"),), {"gain": 0.05},
    "Sigmoid CNNs at the largest swept depth, BN at the baseline's learning rate against the network without BN at "
    "its best rate on validation (where the experiment has several): (a) BN's final test accuracy is more than "
    "{gain:pts} above no-BN's; (b) its mean saturated fraction of sigmoid inputs at the end is lower.",
    _combined(_p_saturating), parts=_p_saturating)


def _p_reduces_ics(n: dict, ratio: float, cos: float) -> list[Part]:
    return [_part("log l2 change, no BN minus BN", _logs(n["l2_none"]), _logs(n["l2_bn"]), math.log(ratio)),
            _part("cosine, BN minus no BN", n["cos_bn"], n["cos_none"], cos)]


REDUCES_ICS = Claim(
    "reduces_ics", "reduces internal covariate shift", ("ioffe2015batch", "santurkar2018how"),
    (("why", "internal covariate shift measured", "why-ics"),), {"ratio": 1.1, "cos": 0.02},
    "Santurkar et al.'s measure (l2 distance and cosine between a layer's gradient before and after the earlier "
    "layers' update), median over the checkpoints and weight layers after the first: (a) BN's l2 distance is smaller "
    "than no-BN's by a factor of more than {ratio:g}; (b) BN's cosine is larger by more than {cos:g}.",
    _combined(_p_reduces_ics), parts=_p_reduces_ics)


def _mid(n: dict, key: str, keep: float) -> list[float]:
    return [a + keep * (b - a) for a, b in zip(n[key]["none"], n[key]["bn"], strict=True)]


def _p_ics_is_why(n: dict, keep: float) -> list[Part]:
    parts = [_part("shift, noisy BN minus no BN", n["shift"]["noisy"], n["shift"]["none"], 0.0)]
    benefits = (("acc", "test accuracy", 1), ("early", "early training loss", -1))
    for key, words, better in benefits:
        b = _part(f"BN's benefit in {words}", n[key]["bn"], n[key]["none"], 0.0, better)
        parts.append(b)
        if b.verdict == SUPPORTED:  # the claim predicts noisy BN loses more than the share ``keep`` of the benefit
            parts.append(_part(f"noisy BN vs no BN + {keep:g} of BN's benefit in {words}", n[key]["noisy"],
                               _mid(n, key, keep), 0.0, -better))
    return parts


def _v_ics_is_why(n: dict, keep: float) -> str:
    parts = _p_ics_is_why(n, keep)
    keeps = [p.verdict for p in parts if p.name.startswith("noisy BN vs")]
    if parts[0].verdict != SUPPORTED or not keeps:
        return INCONCLUSIVE
    return combine(keeps)


ICS_IS_WHY = Claim(
    "ics_is_why", "its benefit comes from reducing internal covariate shift", ("ioffe2015batch", "santurkar2018how"),
    (("why", "noisy BN", "why-noisy"),), {"keep": 0.5},
    "Noisy BN injects a random, time-varying shift and scale after every BN. BN's benefits over no BN, each counted "
    "only where BN's is supported (interval beyond 0): final test accuracy and early training speed (mean "
    "mini-batch loss over the first record interval). For each benefit: supported if noisy BN keeps less than "
    "{keep:of} of it (noisy BN's value lies short of no-BN's plus {keep:of} of BN's advantage), not supported if it "
    "keeps more. The test counts only if noisy BN's shift (the MNIST chapter's drift measure, as training sees the "
    "inputs) exceeds no-BN's; inconclusive when it does not or when BN has no benefit.", _v_ics_is_why,
    parts=_p_ics_is_why)


def _p_accelerates(n: dict, speedup: float) -> list[Part]:
    return [_one(f"log speed-up, {k}", _logs(v), math.log(speedup)) for k, v in n["speedups"].items()]


ACCELERATES = Claim(
    "accelerates", "accelerates training (14× fewer steps in the paper)", ("ioffe2015batch",),
    (("mnist", "Figure 1", "mnist-accuracy"), ("cifar", "the acceleration recipe", "cifar-recipe")),
    {"speedup": 2},
    "Speed-ups per seed, read off the validation curves (records every few hundred steps; a run that never reaches "
    "the target counts as reaching it one record after its last): on MNIST (same learning rate) the steps the "
    "network without BN needs to first reach its final validation accuracy over the steps BN needs; on CIFAR-10 "
    "the steps to the recipe's no-BN baseline's best validation accuracy (interpolated linearly between records), "
    "for BN at the baseline's rate and for the whole recipe. Supported if in every setting the speed-up (its "
    "geometric mean, on a log scale) exceeds {speedup:g}.",
    _combined(_p_accelerates), parts=_p_accelerates)


#: The claims chapter's exercise: the speed-up that the "accelerates" rule would ask for instead of its own.
ACCELERATES_ALT_SPEEDUP = 1.5


def accelerates_alternative(row: dict, speedup: float = ACCELERATES_ALT_SPEEDUP) -> str:
    """The "accelerates" row's verdict had its rule asked for ``speedup`` (its other margins unchanged)."""
    return ACCELERATES.verdict(row["numbers"], **(dict(ACCELERATES.margins) | {"speedup": speedup}))


def _checked(ok: bool) -> str:
    """An identity's verdict: checked when it holds to the tolerance, not supported when it does not."""
    return CHECKED if ok else NOT_SUPPORTED


def _v_scale_invariance(n: dict, tol: float) -> str:
    return _checked(n["max_out_diff"] <= tol and n["max_grad_rel"] <= tol)


SCALE_INVARIANCE = Claim(
    "scale_invariance", "scale invariance: BN(aWu) = BN(Wu)", ("ioffe2015batch",),
    (("scale_invariance", "", None), ("claims", "checked here", "claims-checks")), {"tol": 1e-9},
    "An identity, checked (not an experiment): float64, random W, u and a in {{0.01, 0.1, 10, 100}}: checked if with "
    "epsilon = 0 the outputs BN(aWu) and BN(Wu) differ by at most {tol:exp} and the gradient with respect to the "
    "weights at aW is 1/a times the one at W to {tol:exp} (relative); not supported otherwise.", _v_scale_invariance)


def _v_identity(n: dict, tol: float) -> str:
    return _checked(n["train_rel"] <= tol and n["inference_rel"] <= tol)


IDENTITY = Claim(
    "identity", "can represent the identity", ("ioffe2015batch",),
    (("transform", "", None), ("claims", "checked here", "claims-checks")), {"tol": 1e-12},
    "An identity, checked: float64, random batches: checked if with gamma = sqrt(var + epsilon) and beta = mean the "
    "layer returns its input to {tol:exp} (relative), in training mode (batch statistics) and at inference "
    "(population statistics); not supported otherwise.", _v_identity)


def _v_folding(n: dict, same: float, diff: float) -> str:
    return _checked(n["same_predictions"] >= same and n["max_abs_diff"] <= diff)


FOLDING = Claim(
    "folding", "at inference a linear transform that can be folded", ("ioffe2015batch",),
    (("train_test", "folding", "tt-folding"),), {"same": 0.999, "diff": 1e-4},
    "An identity, checked on trained networks: every seed's MNIST network with every BN folded into the preceding "
    "linear layer (inference only): checked if on every seed it predicts the same class as the eval-mode network on "
    "at least {same:pct} of the test images and its outputs differ by at most {diff:exp}; not supported otherwise.",
    _v_folding)


def _p_small_batches(n: dict, drop: float) -> list[Part]:
    return [_part(f"BN at its best batch size vs at {n['batch']}", n["bn_best"], n["bn_small"], drop),
            _part(f"{n['other']} vs BN at batch {n['batch']}", n["other_small"], n["bn_small"], 0.0)]


SMALL_BATCHES = Claim(
    "small_batches", "poor with small batches", ("ioffe2017batch", "wu2018group"),
    (("train_test", "batch-size sweep", "tt-batch-size"),), {"drop": 0.01},
    "One epoch at each training batch size (the MNIST chapter's learning rate, for its batches of 60, times B / 60): "
    "(a) at the smallest batch size BN's test accuracy is more than {drop:pts} below its accuracy at its best "
    "batch size (chosen on validation); (b) it is below that of the better of Layer Norm and Group Norm at that "
    "size (chosen on validation).",
    _combined(_p_small_batches), parts=_p_small_batches)


def _overhead_band(claimed: float, factor: float) -> dict:
    """The overheads that count as "about ``claimed``": within a factor of ``factor`` of it."""
    return {"lo": claimed / factor, "hi": claimed * factor}


def _p_overhead(n: dict, claimed: float, factor: float) -> list[Part]:
    band = _overhead_band(claimed, factor)
    p = one_sample(n["overheads"])
    return [Part("mean overhead per step", within(p, band["lo"], band["hi"]), p, band["lo"],
                 band=(band["lo"], band["hi"]))]


OVERHEAD = Claim(
    "overhead", "adding BN slows each step (about 30%)", ("cs231n",),
    (("claims", "what was timed", "claims-overhead"),),
    {"claimed": 0.30, "factor": 2},
    "Overhead = per-step wall time with BN / without BN - 1 for every pair of committed runs that differ only in BN "
    "(recording every few hundred steps included; the CPU is shared), its mean over the pairs with a 95% t interval. "
    "Supported if the whole interval lies between {lo:pct} and {hi:pct} ('about {claimed:pct}' within a factor of "
    "{factor:word}); not supported if it lies wholly outside; inconclusive otherwise.", _combined(_p_overhead),
    "a rule of thumb repeated in lecture notes based on the course, given there without a measurement",
    _overhead_band, _p_overhead)


LANDSCAPE_KEYS = ("median_loss_range", "median_gc_max", "median_beta")
LANDSCAPE_WORDS = {"median_loss_range": "loss range", "median_gc_max": "gradient change", "median_beta": "beta"}


def _smoother(n: dict, lab: str, ratio: float) -> list[Part]:
    return [_part(f"log {LANDSCAPE_WORDS[k]}, no BN minus {lab}", _logs(n[f"{k}_none"]), _logs(n[f"{k}_{lab}"]),
                  math.log(ratio)) for k in LANDSCAPE_KEYS]


def _p_smooths(n: dict, ratio: float) -> list[Part]:
    return _smoother(n, "bn", ratio)


SMOOTHS = Claim(
    "smooths", "smooths the loss landscape", ("santurkar2018how",),
    (("why", "the landscape along the gradient", "why-landscape"),), {"ratio": 1.1},
    "Medians over the checkpoints of (i) the range of the loss at w - eta g over the step sizes, (ii) the largest "
    "gradient change ||g(w - eta g) - g(w)|| and (iii) the effective beta-smoothness: in each, BN's is lower than "
    "no-BN's by a factor of more than {ratio:g}.", _combined(_p_smooths), parts=_p_smooths)


LP_NORMS = ("l1", "linf")


def _p_lp_smooth(n: dict, ratio: float) -> list[Part]:
    return [p for lab in LP_NORMS for p in _smoother(n, lab, ratio)]


LP_SMOOTH = Claim(
    "lp_smooth", "l_p normalizations smooth as well", ("santurkar2018how",), (("why", "l_p normalizations", "why-lp"),),
    {"ratio": 1.1},
    "Santurkar et al.'s l_p normalizations divide the centred pre-activations by their batch l_1 or l_inf average "
    "instead of the standard deviation (l_2). On each of the three measures of the landscape along the gradient "
    "(median loss range, largest gradient change, effective beta), each l_p run's value is lower than no-BN's by a "
    "factor of more than {ratio:g}.", _combined(_p_lp_smooth), parts=_p_lp_smooth)


#: The recipe's four changes as the labels of the recipe experiment name them (``bn+<change>`` alone on top of BN,
#: ``bn+all-<change>`` the full recipe without it), with the words the ledger and the chapter use for them.
RECIPE_WORDS = {"lr": "5x learning rate", "nodrop": "no dropout", "l2": "L2 / 5", "decay": "6x faster decay"}


def _p_recipe(n: dict, gain: float) -> list[Part]:
    acc = n["test"]
    added = [_part(f"test accuracy, '{w}' added to BN", acc[f"bn+{c}"], acc["bn-baseline"], gain)
             for c, w in RECIPE_WORDS.items()]
    dropped = [_part(f"test accuracy, '{w}' left out of the full recipe (with minus without)", acc["bn+all"],
                     acc[f"bn+all-{c}"], gain) for c, w in RECIPE_WORDS.items()]
    return added + dropped


RECIPE = Claim(
    "recipe", "each change of the acceleration recipe helps", ("ioffe2015batch",),
    (("cifar", "the acceleration recipe", "cifar-recipe"),), {"gain": 0.01},
    "An ablation on CIFAR-10 at a fixed budget of steps, scored by the final test accuracy with population "
    "statistics: each of the four changes (a 5x learning rate, no dropout, L2 / 5, a 6x faster decay) is added "
    "alone to the BN network with the baseline's regularization, and left out of the full recipe. A change helps "
    "where it raises the accuracy by more than {gain:pts}: eight parts, four added and four left out.",
    _combined(_p_recipe), parts=_p_recipe)


def _p_bjorck(n: dict, remains: float) -> list[Part]:
    larger = SUPPORTED if n["k_bn"] > n["k_none"] else NOT_SUPPORTED
    excess = [s - a - remains * (b - a) for s, a, b in zip(n["bn_at_none"], n["none_at_none"], n["bn_at_bn"],
                                                           strict=True)]
    return [Part(f"BN's best rate ({n['k_bn']:g}x) above no-BN's ({n['k_none']:g}x)", larger),
            _one(f"advantage at no-BN's best rate minus {remains:g} of BN's best advantage", excess, 0.0, -1)]


BJORCK = Claim(
    "bjorck", "its benefit comes mainly from the larger learning rates it allows", ("bjorck2018understanding",),
    (("cifar", "learning-rate sweep", "cifar-lr"),), {"remains": 0.5},
    "CIFAR-10 learning-rate sweep, each network's best rate chosen on validation (mean over seeds): (a) BN's best "
    "rate is larger than no-BN's; (b) BN's advantage at no-BN's best rate (equal rates) is less than {remains:of} of "
    "its advantage at its own best rate (paired by seed).", _combined(_p_bjorck), parts=_p_bjorck)


# --------------------------------------------------------------------------- the geometry chapter's claims
def _p_explodes(n: dict, rise: float) -> list[Part]:
    return [_part(f"{act}: BN's per-layer growth factor vs no BN's", n[act]["bn"], n[act]["none"], rise)
            for act in ("relu", "tanh")]


EXPLODES = Claim(
    "explodes", "explodes gradients at initialization in deep networks", ("yang2019mean",),
    (("geometry", "gradients at initialization", "geo-depth"),), {"rise": 0.1},
    "Deep fully connected networks at initialization (50 layers of 128 units, a batch of 64 MNIST images, float64), "
    "ReLU and tanh: the per-layer growth factor of the squared weight-gradient norm going backward (a least-squares "
    "fit over the middle layers), with BN against the same network without BN at its critical weight scale (He's "
    "for ReLU, Glorot's for tanh), paired by seed: supported if BN's factor is larger by more than {rise:g} per "
    "layer for both nonlinearities.", _combined(_p_explodes), parts=_p_explodes)


def _v_decay_is_lr(n: dict, tol: float, parts: float) -> str:
    return _checked(n["out_rel"] <= tol and n["weight_rel"] <= tol and n["control_out_rel"] >= parts)


DECAY_IS_LR = Claim(
    "decay_is_lr", "with weight decay is an exponentially increasing learning rate", ("li2020exponential",),
    (("geometry", "weight decay as a learning rate", "geo-exp"),), {"tol": 1e-9, "parts": 1e-4},
    "An identity, checked: two float64 copies of the MNIST MLP with BN on the same batches, one trained by SGD with "
    "momentum, weight decay on the weights that feed BN and a step schedule, the other without weight decay at the "
    "derived rates: checked if over every step their training-mode outputs agree to {tol:exp} (relative) and the "
    "first's weights, divided by the derived scale, equal the second's to {tol:exp}, while the second trained at the "
    "first's own rates parts from it by more than {parts:exp}; not supported otherwise.", _v_decay_is_lr)


def _p_decay_controls_lr(n: dict, band: float) -> list[Part]:
    p = one_sample(n["ratios"])
    return [Part("equilibrium angle / sqrt(2 lr wd / (1 + momentum))", within(p, 1 / band, band), p, 1 / band,
                 band=(1 / band, band))]


DECAY_CONTROLS_LR = Claim(
    "decay_controls_lr", "with weight decay, the decay sets the effective learning rate, not the capacity",
    ("vanlaarhoven2017l2", "wan2021spherical"),
    (("geometry", "the weight-decay equilibrium", "geo-equilibrium"), ("scale_invariance", "", None)), {"band": 1.2},
    "Capacity: weight decay only shrinks weights that feed BN, which changes no output (the scale invariance of row 8, "
    "checked). Learning rate, measured: the MNIST MLP with BN trained by SGD with momentum and weight decay on those "
    "weights; the mean rotation of a unit's weight vector per step over the second half of the run, divided by the "
    "equilibrium prediction sqrt(2 lr wd / (1 + momentum)): supported if the interval of that ratio over the seeds "
    "lies within a factor {band:g} of 1, not supported if it lies wholly outside.", _combined(_p_decay_controls_lr),
    parts=_p_decay_controls_lr)


#: The shifts of the adaptation check that the rule tests: two common corruptions (Hendrycks & Dietterich's kinds,
#: as Schneider et al. test them), not the inversion the chapter shows beside them.
ADAPT_SHIFTS = ("contrast", "noise")


def _p_adapts(n: dict, gain: float) -> list[Part]:
    return [_part(f"test accuracy under {s}, statistics from the shifted images minus the source's",
                  n["adapted"][s], n["source"][s], gain) for s in ADAPT_SHIFTS]


ADAPTS = Claim(
    "adapts", "re-estimating its statistics adapts to a shifted domain", ("schneider2020improving",),
    (("practice", "statistics on a shifted domain", "pr-adapt"),), {"gain": 0.01},
    "The MNIST network with BN, trained on clean images, tested on two shifted versions of the test set (contrast "
    "halved and brightness raised; Gaussian noise of standard deviation 0.3): its test accuracy with BN's "
    "statistics re-estimated from 256 unlabelled shifted images (the target's statistics alone) minus that with "
    "the source statistics, paired by seed. Each shift is a part, supported where the gain exceeds {gain:pts}.",
    _combined(_p_adapts), parts=_p_adapts)


def _p_affine(n: dict, gain: float) -> list[Part]:
    return [_part("test accuracy, gamma and beta only minus as many random weights", n["bn"], n["random"], gain)]


AFFINE = Claim(
    "affine", "gamma and beta alone are expressive", ("frankle2021training",),
    (("practice", "gamma and beta alone", "pr-affine"),), {"gain": 0.01},
    "The MNIST network with BN, randomly initialized, trained with Adam in only some of its parameters: its final "
    "test accuracy (population statistics) when only BN's gamma and beta train, minus when as many randomly chosen "
    "weights of its linear layers train instead (Frankle et al.'s control), paired by seed: supported if the "
    "difference exceeds {gain:pts}.", _combined(_p_affine), parts=_p_affine)


#: The per-device batches of the SyncBN rule: the small ones of the practice chapter's check (2 devices each).
SYNC_BATCHES = (2, 4)


def _p_sync(n: dict, gain: float) -> list[Part]:
    return [_part(f"test accuracy at {b} examples per device, SyncBN minus local BN", n["sync"][b], n["local"][b],
                  gain) for b in SYNC_BATCHES]


SYNC = Claim(
    "sync", "SyncBN fixes small per-device batches", ("hoffer2017train", "wu2021rethinking"),
    (("practice", "the per-device batch", "pr-device"),), {"gain": 0.01},
    "The MNIST network with BN trained data-parallel on 2 devices for half an epoch (SGD, the rate scaled with the "
    "global batch), each device holding 2 or 4 examples of each batch: its final test accuracy (population "
    "statistics) when BN normalizes over both devices' examples (SyncBN) minus when each device normalizes over "
    "its own (local BN), paired by seed. Each per-device batch is a part, supported where SyncBN gains more than "
    "{gain:pts}.", _combined(_p_sync), parts=_p_sync)


#: Every claim, in the ledger's order.
CLAIMS = (HIGHER_LR, INIT, REGULARIZER, SATURATING, REDUCES_ICS, ICS_IS_WHY, ACCELERATES, SCALE_INVARIANCE,
          SMALL_BATCHES, FOLDING, IDENTITY, OVERHEAD, SMOOTHS, LP_SMOOTH, RECIPE, BJORCK, EXPLODES, DECAY_IS_LR,
          DECAY_CONTROLS_LR, ADAPTS, AFFINE, SYNC)
