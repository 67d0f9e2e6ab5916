"""How the book turns seeds into a verdict: a paired 95% interval and a margin fixed before the data.

A comparison of two settings A and B is paired by seed (same initialization and data order): the effect is
the mean over seeds of ``d_i = A_i - B_i``, its interval the two-sided t interval of that mean
(:func:`scipy.stats.ttest_rel`), and :func:`judge` reads the interval against the claim's margin:

- **supported**: the whole interval lies beyond the margin in the claimed direction;
- **not supported**: the whole interval lies short of the margin (the claimed effect, at the size the
  claim needs, is excluded: the effect is smaller, absent or reversed);
- **inconclusive**: the interval straddles the margin (more seeds could decide it).

Identities (a property that holds by algebra, such as BN's scale invariance) are not evidence of this kind:
they are reported as **checked**, outside the empirical tally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MIXED, CHECKED = (
    "supported", "not supported", "inconclusive", "mixed", "checked")
CONFIDENCE = 0.95
#: The fewest seeds on which a verdict may rest (fewer: inconclusive whatever the interval).
MIN_SEEDS = 5


@dataclass(frozen=True)
class Paired:
    """A paired comparison: ``n`` seeds, mean difference ``mean`` with its ``confidence`` interval
    ``[lo, hi]``, and the per-seed differences ``diffs`` (A - B, in seed order)."""

    n: int
    mean: float
    lo: float
    hi: float
    diffs: tuple[float, ...]
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def _values(name: str, v) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of numbers (one per seed), got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite numbers (a diverged seed has no value to pair), got {v!r}.")
    return a


def paired(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Paired:
    """The mean of ``a_i - b_i`` over seeds with its two-sided t interval (``scipy.stats.ttest_rel``).

    One seed, or differences that are all equal, give an interval of zero width only when there is
    no spread to estimate; with one seed the interval is infinite (nothing can be concluded).
    """
    x, y = _values("a", a), _values("b", b)
    if len(x) != len(y):
        raise ValueError(f"a and b must hold one value per seed each, got {len(x)} and {len(y)} values.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}.")
    d = x - y
    mean = float(d.mean())
    if len(d) == 1:
        return Paired(1, mean, -math.inf, math.inf, (mean,), confidence)
    if np.ptp(d) <= 1e-12 * max(1.0, abs(mean)):  # no spread beyond rounding: nothing for a t interval to estimate
        return Paired(len(d), mean, mean, mean, tuple(map(float, d)), confidence)
    ci = stats.ttest_rel(x, y).confidence_interval(confidence_level=confidence)
    return Paired(len(d), mean, float(ci.low), float(ci.high), tuple(map(float, d)), confidence)


def judge(p: Paired, margin: float, direction: int = 1, min_seeds: int = MIN_SEEDS) -> str:
    """The verdict on the claim "A exceeds B by more than ``margin``" (``direction=1``) or "A falls below B
    by more than ``margin``" (``direction=-1``), read from the interval of ``p`` as the module says."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be 1 (A above B) or -1 (A below B), got {direction!r}.")
    if not (isinstance(margin, (int, float)) and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number (negative: a non-inferiority margin), got {margin!r}.")
    if p.n < min_seeds:
        return INCONCLUSIVE
    lo, hi = (p.lo, p.hi) if direction == 1 else (-p.hi, -p.lo)
    if lo > margin:
        return SUPPORTED
    if hi < margin:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def agreeing(p: Paired, verdict: str, margin: float, direction: int = 1) -> int:
    """How many seeds, taken alone, point the way ``verdict`` does: beyond the margin for supported, short of it
    for not supported (for inconclusive, the larger of the two counts is not meaningful: 0)."""
    d = [direction * v for v in p.diffs]
    if verdict == SUPPORTED:
        return sum(v > margin for v in d)
    if verdict == NOT_SUPPORTED:
        return sum(v < margin for v in d)
    return 0


def agreeing_band(p: Paired, verdict: str, lo: float, hi: float) -> int:
    """How many seeds (or pairs), taken alone, point the way a :func:`within` verdict does: inside ``[lo, hi]``
    for supported, outside it for not supported (inconclusive: 0)."""
    inside = [lo <= v <= hi for v in p.diffs]
    if verdict == SUPPORTED:
        return sum(inside)
    if verdict == NOT_SUPPORTED:
        return len(inside) - sum(inside)
    return 0


def combine(verdicts: Sequence[str]) -> str:
    """One verdict from sub-claims: all alike gives that verdict; supported beside not supported is mixed;
    otherwise (some inconclusive) inconclusive."""
    vs = set(verdicts)
    if not vs:
        raise ValueError("combine needs at least one verdict.")
    if len(vs) == 1:
        return vs.pop()
    if {SUPPORTED, NOT_SUPPORTED} <= vs:
        return MIXED
    return INCONCLUSIVE


def within(p: Paired, lo: float, hi: float, min_seeds: int = MIN_SEEDS) -> str:
    """The verdict on the claim "the effect is about so much", i.e. lies in the band ``[lo, hi]``: supported if
    the whole interval lies inside the band, not supported if it lies wholly outside it, inconclusive otherwise."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the band must be two finite numbers lo < hi, got {lo!r} and {hi!r}.")
    if p.n < min_seeds:
        return INCONCLUSIVE
    if lo <= p.lo and p.hi <= hi:
        return SUPPORTED
    if p.hi < lo or p.lo > hi:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def direction(p: Paired, margin: float) -> str:
    """"higher" or "lower" (the whole interval beyond ``margin`` in that direction), "level" (within plus or minus
    ``margin``, on enough seeds) or "inconclusive"."""
    if judge(p, margin, 1) == SUPPORTED:
        return "higher"
    if judge(p, margin, -1) == SUPPORTED:
        return "lower"
    if p.n >= MIN_SEEDS and within(p, -margin, margin) == SUPPORTED:
        return "level"
    return "inconclusive"


def one_sample(values: Sequence[float], confidence: float = CONFIDENCE) -> Paired:
    """The mean of ``values`` (one per seed or per pair) with its t interval: :func:`paired` against zeros."""
    v = _values("values", values)
    return paired(v, np.zeros_like(v), confidence)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The mean over seeds and the half-width of its t interval (0 for one seed: no spread to show), as a table's
    "mean ± half-width" shows them."""
    v = _values("values", values)
    if len(v) == 1 or np.ptp(v) == 0:
        return float(v.mean()), 0.0
    ci = stats.t.interval(confidence, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    return float(v.mean()), float((ci[1] - ci[0]) / 2)


def per_seed(res_by_seed: dict, fn) -> list:
    """``fn`` of each seed's result (a :func:`bnlib.results.by_seed` mapping), in seed order."""
    return [fn(r) for _, r in sorted(res_by_seed.items())]
