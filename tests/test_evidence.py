"""The paired interval and the verdict rule of bnlib.reports.evidence, against hand arithmetic with the t
quantiles of a printed table (Student's t, two-sided 95%: 2.776445 for 4 degrees of freedom, 12.706205 for 1)."""

from __future__ import annotations

import math

import pytest

from bnlib.reports import evidence as E

T4, T1 = 2.776445, 12.706205


def test_paired_interval_is_the_t_interval_of_the_differences():
    a = [0.95, 0.97, 0.96, 0.99, 0.98]
    b = [0.94, 0.95, 0.96, 0.96, 0.95]
    d = [x - y for x, y in zip(a, b, strict=True)]  # 0.01, 0.02, 0.00, 0.03, 0.03
    mean = sum(d) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 4)
    p = E.paired(a, b)
    assert p.n == 5 and p.mean == pytest.approx(mean)
    assert p.lo == pytest.approx(mean - T4 * sd / math.sqrt(5), rel=1e-6)
    assert p.hi == pytest.approx(mean + T4 * sd / math.sqrt(5), rel=1e-6)
    assert p.half_width == pytest.approx(T4 * sd / math.sqrt(5), rel=1e-6)


def test_two_seeds_use_one_degree_of_freedom_and_one_seed_concludes_nothing():
    p = E.paired([1.0, 3.0], [0.0, 0.0])  # d = 1, 3: mean 2, sd sqrt(2)
    assert p.hi - p.mean == pytest.approx(T1 * math.sqrt(2) / math.sqrt(2), rel=1e-6)
    one = E.paired([1.0], [0.0])
    assert one.lo == -math.inf and one.hi == math.inf


@pytest.mark.parametrize(("diffs", "margin", "direction", "verdict"), [
    ([0.05, 0.06, 0.05, 0.07, 0.06], 0.01, 1, E.SUPPORTED),      # well beyond the margin
    ([0.05, 0.06, 0.05, 0.07, 0.06], 0.10, 1, E.NOT_SUPPORTED),  # real but smaller than the claim needs
    ([-0.05, -0.06, -0.05, -0.07, -0.06], 0.01, 1, E.NOT_SUPPORTED),  # reversed
    ([-0.05, -0.06, -0.05, -0.07, -0.06], 0.01, -1, E.SUPPORTED),     # claimed the other way round
    ([0.05, -0.04, 0.03, -0.02, 0.01], 0.0, 1, E.INCONCLUSIVE),   # straddles
])
def test_judge_reads_the_interval_against_the_margin(diffs, margin, direction, verdict):
    p = E.paired(diffs, [0.0] * len(diffs))
    assert E.judge(p, margin, direction) == verdict


def test_fewer_seeds_than_the_minimum_are_inconclusive_however_clear():
    p = E.paired([0.5, 0.6, 0.55], [0.0, 0.0, 0.0])
    assert E.judge(p, 0.0) == E.INCONCLUSIVE
    assert E.judge(p, 0.0, min_seeds=3) == E.SUPPORTED


def test_seed_agreement_and_combination():
    p = E.paired([0.05, 0.06, -0.01, 0.07, 0.06], [0.0] * 5)
    assert E.agreeing(p, E.SUPPORTED, 0.0) == 4
    assert E.combine([E.SUPPORTED, E.SUPPORTED]) == E.SUPPORTED
    assert E.combine([E.SUPPORTED, E.NOT_SUPPORTED]) == E.MIXED
    assert E.combine([E.SUPPORTED, E.INCONCLUSIVE]) == E.INCONCLUSIVE


def test_a_negative_margin_states_non_inferiority():
    # A falls 1 point short of B on every seed (plus a little spread): within 2 points, not within 0.5
    p = E.paired([0.89, 0.891, 0.889, 0.8905, 0.8895], [0.90] * 5)
    assert E.judge(p, -0.02) == E.SUPPORTED and E.judge(p, -0.005) == E.NOT_SUPPORTED


def test_within_a_band():
    inside = E.one_sample([0.29, 0.31, 0.30, 0.30, 0.30])
    assert E.within(inside, 0.15, 0.60) == E.SUPPORTED
    assert E.within(inside, 0.40, 0.60) == E.NOT_SUPPORTED  # wholly below the band
    assert E.within(inside, 0.30, 0.60) == E.INCONCLUSIVE  # straddles its lower edge
    assert E.within(E.one_sample([0.3, 0.31]), 0.15, 0.60) == E.INCONCLUSIVE  # too few values


def test_mean_interval_and_one_sample_are_the_t_interval_of_the_values():
    v = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, sd sqrt(2.5)
    mean, hw = E.mean_interval(v)
    assert mean == 3.0 and hw == pytest.approx(T4 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    p = E.one_sample(v)
    assert (p.mean, p.lo, p.hi) == pytest.approx((3.0, 3.0 - hw, 3.0 + hw), rel=1e-6)
    assert E.mean_interval([0.5]) == (0.5, 0.0) and E.mean_interval([0.5, 0.5]) == (0.5, 0.0)
    assert E.per_seed({1: "b", 0: "a"}, str.upper) == ["A", "B"]


@pytest.mark.parametrize(("call", "word"), [
    (lambda: E.paired([1.0, 2.0], [1.0]), "one value per seed"),
    (lambda: E.paired([], []), "non-empty"),
    (lambda: E.paired([1.0, float("nan")], [0.0, 0.0]), "finite"),
    (lambda: E.paired([1.0, 2.0], [0.0, 0.0], confidence=1.0), "confidence"),
    (lambda: E.judge(E.paired([1.0, 2.0], [0.0, 0.0]), float("inf")), "margin"),
    (lambda: E.within(E.paired([1.0, 2.0], [0.0, 0.0]), 0.5, 0.1), "band"),
    (lambda: E.judge(E.paired([1.0, 2.0], [0.0, 0.0]), 0.0, direction=0), "direction"),
])
def test_bad_arguments_are_one_sentence(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_agreeing_band_counts_inside_for_supported_and_outside_for_not_supported():
    p = E.Paired(n=5, mean=0.49, lo=0.1, hi=0.9, diffs=(0.1, 0.2, 0.7, 0.8, 0.65))  # overheads of 5 pairs
    assert E.agreeing_band(p, E.SUPPORTED, 0.15, 0.6) == 1  # only 0.2 lies in the band
    assert E.agreeing_band(p, E.NOT_SUPPORTED, 0.15, 0.6) == 4  # below it or above it, both disagree with "about"
    assert E.agreeing_band(p, E.INCONCLUSIVE, 0.15, 0.6) == 0
    from bnlib.reports import rules as R

    above = R.Part("overhead", E.NOT_SUPPORTED, p, 0.15, band=(0.15, 0.6))
    assert above.agree == 4 and above.as_dict()["agree"] == 4  # not the 1 pair below the band's lower edge
