"""The benchmark's arithmetic (benchmarks/run.py) on synthetic timings with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import run as B
from benchmarks.run import Settings, Timing, _record_excess, _row, compare


@pytest.mark.parametrize("k,extra", [(500, 0.5), (1000, 1.0)])
def test_record_excess_recovers_a_known_record_cost(k, extra):
    """100-step segments of 1 s; each record adds ``extra`` s to its segment: on/off = 1 + extra / (k/100)."""
    seg = np.ones(100)
    seg[0] = 7.0  # set-up and the step-0 record: skipped
    per = k // 100
    seg[per - 1 :: per] += extra
    out = _record_excess(seg, k)
    assert len(out) == 100 // per - (1 if per == 1 else 0)
    np.testing.assert_allclose([r for _, r in out], 1.0 + extra / per)
    np.testing.assert_allclose([p for p, _ in out], 1.0)


def test_record_excess_compares_each_record_with_its_own_neighbours():
    """A load that doubles every segment from the middle on leaves the ratio where it was."""
    seg = np.ones(100)
    seg[52:] *= 2.0  # between records (segments 49 and 54) and their neighbours
    seg[4::5] += np.where(np.arange(100)[4::5] >= 52, 1.0, 0.5)  # the record costs half a segment in both halves
    ratios = [r for _, r in _record_excess(seg, 500)]
    np.testing.assert_allclose(ratios, 1.1)


def test_targets_are_judged_on_the_quiet_ratio():
    t = Timing(a_s=1.3, b_s=1.0, ratio=1.3, ratio_quiet=1.2)
    assert _row("x", "case", "a", "b", t, "<= 1.25").met is True
    assert _row("x", "case", "a", "b", t, ">= 1.25").met is False
    assert _row("x", "case", "a", "b", t).met is None


def test_compare_times_the_slower_function_as_slower():
    def busy(n):
        return lambda: sum(range(n))

    t = compare(busy(20_000), busy(2_000), Settings(repeats=8, min_time=0.002))
    assert t.a_s > t.b_s and t.ratio > 2 and t.ratio_quiet > 2


def test_json_output_of_rows_judged_with_numpy_numbers(tmp_path):
    """Rows whose ratios are NumPy floats (so the target check gives a NumPy bool) still write as JSON."""
    import json
    from dataclasses import asdict


    t = Timing(np.float64(2.0), np.float64(1.0), np.float64(2.0), np.float64(2.1))
    row = _row("x", "case", "a", "b", t, ">= 2.5")
    assert row.met is False and type(row.met) is bool
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([asdict(row)]))
    assert json.loads(path.read_text())[0]["ratio_quiet"] == 2.1


def test_bandwidth_rows_turn_times_into_gb_per_s(monkeypatch):
    """With a layer 10x slower than the memcpy, the layer moves 8 tensor sizes to memcpy's 2: 0.4 of its GB/s."""
    import benchmarks.run as R

    monkeypatch.setattr(R, "compare", lambda fa, fb, settings: Timing(0.1, 0.01, 10.0, 10.0))
    rows = R.bench_bandwidth(Settings(repeats=1, min_time=0.0))
    size = 128 * 16 * 32 * 32 * 4
    assert [r.slow_name for r in rows] == ["bnlib", "torch"]
    for r in rows:
        assert r.ratio == pytest.approx(0.4) and r.ratio_quiet == pytest.approx(0.4) and r.met is None
        assert f"{8 * size / 0.1 / 1e9:.1f} GB/s, memcpy {2 * size / 0.01 / 1e9:.1f} GB/s" in r.case


def test_a_missing_dataset_is_one_sentence_not_a_traceback(monkeypatch, capsys):
    from bnlib import data

    def bench_needs_mnist(settings):
        yield from ()
        raise data.DatasetNotFound("MNIST not found: set BNLIB_DATA_DIR.")

    monkeypatch.setattr(B, "BENCHMARKS", [bench_needs_mnist])
    assert B.main(["--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "benchmark needs_mnist needs a dataset: MNIST not found: set BNLIB_DATA_DIR."
