"""The practice chapter's computations (bnlib.practice): SyncBatchNorm in two processes against torch's BatchNorm2d
on the whole batch, the truth table of freezing a BN layer as torch defines it (eval mode stops the running
statistics, requires_grad=False stops gamma and beta), and the bias before BN, which BN cancels."""

from __future__ import annotations

import pytest
import torch

from bnlib import practice as P


def test_shards_in_two_processes_match_one_process_with_every_example():
    r = P.shard_check(split=(8, 4), steps=2)
    assert r["processes"] == 2 and r["steps"] == 2
    for key in ("out", "dx", "dparams", "running"):
        assert r[key] < 1e-10, key
    assert r["local"] > 1e-2  # normalizing each shard on its own is not the same
    with pytest.raises(ValueError, match="at least one of the 12 examples"):
        P.shard_check(split=(12, 0))


def test_what_eval_and_requires_grad_freeze():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 784, generator=g), torch.randint(0, 10, (64,), generator=g)
    rows = {r["way"]: r for r in P.freezing_check(x, y)}
    assert [w for w, *_ in P.FREEZE_WAYS] == list(rows)
    want = {"train mode": (True, True), "model.eval()": (True, False), "requires_grad=False": (False, True),
            "eval() and requires_grad=False": (False, False)}
    for way, (gamma_beta, running) in want.items():
        assert (rows[way]["gamma_beta"], rows[way]["running"]) == (gamma_beta, running), way
        assert rows[way]["weights"] and rows[way]["output"] > 0  # the other layers learn in every case


def test_bn_cancels_the_bias_of_the_layer_before_it():
    r = P.bias_cancels(scale=1000.0)
    assert r["out_diff"] < 1e-9 and r["bias_grad"] < 1e-9 * r["weight_grad"]


def test_freezing_words_and_their_prose_check():
    from bnlib.reports import practice as RP

    truth = {"train mode": (True, True), "model.eval()": (True, False), "requires_grad=False": (False, True),
             "eval() and requires_grad=False": (False, False)}
    rows = [{"way": w, "gamma_beta": g, "running": r} for w, (g, r) in truth.items()]
    out = RP.freezing_numbers(rows)
    assert out["pr_freeze_eval_running"].value == "yes" and out["pr_freeze_eval_params"].value == "no"
    assert out["pr_freeze_rg_running"].value == "no" and out["pr_freeze_both"].value == "eval() and requires_grad=False"
    flipped = [dict(r, running=True) if r["way"] == "model.eval()" else r for r in rows]
    with pytest.raises(ValueError, match="model.eval\\(\\) leaves gamma and beta and stops the running"):
        RP.freezing_numbers(flipped)
    frozen = [dict(r, gamma_beta=False, running=False) if r["way"] == "train mode" else r for r in rows]
    with pytest.raises(ValueError, match="only eval\\(\\) with requires_grad=False fixes the layer"):
        RP.freezing_numbers(frozen)
