"""Seeded results (labels ``name-seedK``): finding a label's seeds, splitting a result by seed, and how the book
scores a run and counts steps to a target; on hand-made results whose answers are read off by eye."""

from __future__ import annotations

import pytest

from bnlib import results as RR


def _run(seed, norm=None, summary=None, curves=None):
    return {"config": {"seed": seed, "norm": norm}, "summary": {"diverged_at": None, **(summary or {})},
            "curves": curves or {}}


RES = {"name": "x", "runs": {"none-seed1": _run(1), "none-seed0": _run(0), "bn-seed0": _run(0, "torch"),
                             "bn-seed1": _run(1, "torch")}}


def test_a_seeded_label_gives_its_seeds_in_seed_order_and_its_first_seed():
    assert [r["config"]["seed"] for r in RR.seeds_of(RES, "none")] == [0, 1]
    assert RR.run_of(RES, "none") is RES["runs"]["none-seed1"]  # the first seen, as a one-seed figure shows it
    assert RR.run_of(RES, "bn-seed1") is RES["runs"]["bn-seed1"]
    assert list(RR.first_seeds(RES)) == ["none", "bn"]
    with pytest.raises(ValueError, match="has no run 'noisy'"):
        RR.seeds_of(RES, "noisy")
    with pytest.raises(TypeError, match="expected an experiment result"):
        RR.seeds_of({"runs": []}, "none")


def test_by_seed_splits_a_result_into_one_seed_results():
    split = RR.by_seed(RES)
    assert list(split) == [0, 1]
    assert split[1]["runs"] == {"none": RES["runs"]["none-seed1"], "bn": RES["runs"]["bn-seed1"]}
    assert split[0]["name"] == "x"
    single = {"name": "y", "runs": {"none": _run(3), "bn": _run(3, "torch")}}
    assert list(RR.by_seed(single)) == [3] and RR.by_seed(single)[3]["runs"] == single["runs"]
    ragged = {"name": "z", "runs": {"a-seed0": _run(0), "a-seed1": _run(1), "b-seed0": _run(0)}}
    with pytest.raises(ValueError, match="different seeds"):
        RR.by_seed(ragged)


def test_score_uses_population_statistics_where_there_are_some_and_none_for_a_diverged_run():
    bn = _run(0, "torch", {"final_test_acc": 0.30, "final_test_acc_pop": 0.52, "final_val_acc": 0.31})
    assert RR.score(bn) == 0.52 and RR.score(bn, "val") == 0.31
    none = _run(0, None, {"final_test_acc": 0.4})
    assert RR.score(none) == 0.4
    assert RR.score({**bn, "summary": {**bn["summary"], "diverged_at": 10}}) is None
    with pytest.raises(ValueError, match="split must be"):
        RR.score(bn, "train")


def test_steps_to_a_target_on_the_validation_curve_and_a_run_that_never_gets_there():
    run = _run(0, "torch", curves={"step": [0, 250, 500, 750], "val_acc": [0.1, 0.9, 0.9, 0.9],
                                   "val_acc_pop": [0.1, 0.3, 0.6, 0.7], "test_acc": [0.1, 0.9, 0.9, 0.9]})
    assert RR.val_curve_key(run) == "val_acc_pop"
    assert RR.steps_or_after(run, 0.6, "val_acc_pop") == 500
    assert RR.steps_or_after(run, 0.8, "val_acc_pop") == 1000  # one record after the last
    assert RR.steps_to_reach(run, 0.8) == 250  # the test curve, by default
    with pytest.raises(ValueError, match="no validation curve"):
        RR.val_curve_key(_run(0, curves={"step": [0]}))


def test_interpolated_steps_cross_the_target_on_the_straight_line_between_two_records():
    run = _run(0, "torch", curves={"step": [0, 200, 400, 600], "val_acc_pop": [0.1, 0.3, 0.5, 0.5]})
    # 0.4 lies halfway between 0.3 (step 200) and 0.5 (step 400); 0.5 is met exactly at 400
    assert RR.steps_interpolated(run, 0.4, "val_acc_pop") == pytest.approx(300.0)
    assert RR.steps_interpolated(run, 0.5, "val_acc_pop") == pytest.approx(400.0)
    assert RR.steps_interpolated(run, 0.05, "val_acc_pop") == 0.0  # already there at the first record
    assert RR.steps_interpolated(run, 0.6, "val_acc_pop") is None
    assert RR.steps_or_after(run, 0.6, "val_acc_pop", interpolate=True) == 800  # one record after the last
    assert RR.steps_or_after(run, 0.4, "val_acc_pop", interpolate=True) == pytest.approx(300.0)
    assert RR.steps_or_after(run, 0.4, "val_acc_pop") == 400  # the record at or after the crossing
