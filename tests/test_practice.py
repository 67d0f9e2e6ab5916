"""The practice chapter's computations (bnlib.practice): SyncBatchNorm in two processes against torch's BatchNorm2d
on the whole batch, the truth table of freezing a BN layer as torch defines it (eval mode stops the running
statistics, requires_grad=False stops gamma and beta), and the bias before BN, which BN cancels."""

from __future__ import annotations

import pytest
import torch

from bnlib import practice as P
from bnlib.threads import one_thread


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


# --------------------------------------------------------------------------- statistics on a shifted domain
def _net(seed=0):
    from bnlib import models

    torch.manual_seed(seed)
    return models.SigmoidMLP((12, 7, 5, 3), norm="torch")


def test_statistics_are_each_layers_input_moments_layer_after_layer():
    net = _net()
    x = torch.rand(40, 12, generator=torch.Generator().manual_seed(1))
    P.estimate_statistics(net, x)
    lin1, bn1, lin2, bn2 = [m for m in net.modules() if isinstance(m, torch.nn.Linear | torch.nn.BatchNorm1d)][:4]
    with torch.no_grad():
        z1 = lin1(x)
        torch.testing.assert_close(bn1.running_mean, z1.mean(0))
        torch.testing.assert_close(bn1.running_var, z1.var(0, unbiased=False))
        h = torch.sigmoid((z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + bn1.eps) * bn1.weight + bn1.bias)
        z2 = lin2(h)  # the second layer's inputs, with the first layer's statistics already set
        torch.testing.assert_close(bn2.running_mean, z2.mean(0))
        torch.testing.assert_close(bn2.running_var, z2.var(0, unbiased=False))
    before_mean, before_var = bn1.running_mean.clone(), bn1.running_var.clone()
    y = torch.rand(4, 12, generator=torch.Generator().manual_seed(2))
    P.estimate_statistics(net, y, prior=12)
    with torch.no_grad():
        z = lin1(y)
        torch.testing.assert_close(bn1.running_mean, (12 * before_mean + 4 * z.mean(0)) / 16)
        torch.testing.assert_close(bn1.running_var, (12 * before_var + 4 * z.var(0, unbiased=False)) / 16)
    with pytest.raises(ValueError, match="at least one image and a prior >= 0"):
        P.estimate_statistics(net, y, prior=-1)


def test_an_affine_shift_of_the_pixels_is_undone_by_re_estimated_statistics():
    net = _net()
    x = torch.rand(500, 12, generator=torch.Generator().manual_seed(3))
    P.estimate_statistics(net, x)
    with torch.no_grad():
        clean = net(x)
    shifted = P.shift_images(x, "contrast")
    torch.testing.assert_close(shifted, 0.25 + 0.5 * x)
    P.estimate_statistics(net, shifted)
    with torch.no_grad():
        torch.testing.assert_close(net(shifted), clean, atol=1e-3, rtol=0)  # equal but for epsilon
    P.estimate_statistics(net, P.shift_images(x, "inverted"))
    with torch.no_grad():  # the first layer's normalized inputs change sign: not undone
        assert (net(P.shift_images(x, "inverted")) - clean).abs().max() > 0.1
    with pytest.raises(ValueError, match="shift must be one of contrast, noise, inverted"):
        P.shift_images(x, "blur")


def test_adaptation_check_on_a_small_split():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(300, 784, generator=g), torch.randint(0, 10, (300,), generator=g)
    r = P.adaptation_check(x, y, x[:50], y[:50], seeds=range(2), steps=3, n_source=200, sizes=(1, 8))
    assert r["n_pool"] == 100 and len(r["clean"]) == 2 and r["priors"] == [0, 16]
    assert set(r["adapted"]["noise"]["16"]) == {"1", "8"} and all(0 <= a <= 1 for a in r["all"]["inverted"])
    with pytest.raises(ValueError, match="must leave held-out training images"):
        P.adaptation_check(x, y, x, y, n_source=300)


def test_adaptation_words_and_the_ledger_rule():
    from bnlib.reports import claims as RL
    from bnlib.reports import practice as RP

    seeds = range(5)
    sizes, priors = [1, 8, 256], [0, 16]
    src = {"contrast": [0.30 + s / 100 for s in seeds], "noise": [0.86 + s / 1000 for s in seeds],
           "inverted": [0.05] * 5}
    big = {"contrast": [0.92 + s / 100 for s in seeds], "noise": [0.862 + s / 1000 + (s % 2) / 500 for s in seeds],
           "inverted": [0.001] * 5}
    r = {"seeds": list(seeds), "steps": 10, "sizes": sizes, "priors": priors,
         "shifts": ["contrast", "noise", "inverted"], "n_pool": 100, "clean": [0.93] * 5, "source": src, "all": big,
         "adapted": {s: {str(p): {str(n): big[s] if n == 256 else src[s] for n in sizes} for p in priors}
                     for s in src}}
    out = RP.adaptation_numbers(r)
    assert out["pr_adapt_contrast_change"].value == "a gain: +62.00 points [+62.00, +62.00], 5 seeds"
    assert out["pr_adapt_noise_change"].value.startswith("no change beyond one point: ")
    assert out["pr_adapt_inverted_change"].value.startswith("a loss: ")
    assert out["pr_adapt_inverted_chance"].value == "below chance" and out["pr_adapt_noise_prior"].value.startswith(
        "level (")
    assert RP.adaptation_table(r).cells()[0][:3] == ["contrast", "32.0 ± 2.0", "N = 0"]  # t half-width 1.96
    row = RL.claim_adapts(r)
    assert [p["verdict"] for p in row["parts"]] == ["supported", "not supported"] and row["verdict"] == "mixed"
    assert RL.claim_adapts(None)["verdict"] == "not tested"


# --------------------------------------------------------------------------- gamma and beta alone
def test_each_way_trains_exactly_its_parameters():
    from bnlib import models

    x = torch.rand(30, 784, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 10, (30,), generator=torch.Generator().manual_seed(5))
    for way in P.AFFINE_WAYS:
        torch.manual_seed(0)
        net = models.SigmoidMLP(P.SOURCE_SIZES, norm="torch")
        params = P._trainable(net, way, seed=0)
        before = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "tracked" not in k}
        opt = torch.optim.SGD(params, lr=0.5)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        after = net.state_dict()
        moved = sum(int((after[k] != v).sum()) for k, v in before.items())
        bn_names = {n for n, m in net.named_modules() if m in models.bn_layers(net)}
        moved_bn = sum(int((after[k] != v).sum()) for k, v in before.items() if k.rsplit(".", 1)[0] in bn_names)
        if way == "bn":
            assert moved == moved_bn == 600
        elif way == "random":
            assert moved == 600 and moved_bn == 0  # a gradient entry of exactly zero is all but impossible
        else:
            assert moved == 1010 and moved_bn == 0
    with pytest.raises(ValueError, match="way must be one of bn, random, last"):
        P._trainable(net, "conv", seed=0)


def test_affine_words_and_the_ledger_rule():
    from bnlib.reports import claims as RL
    from bnlib.reports import practice as RP

    r = {"seeds": list(range(5)), "steps": 10, "ways": ["bn", "random", "last"],
         "acc": {"bn": [0.66 + s / 100 for s in range(5)], "random": [0.45 + s / 200 for s in range(5)],
                 "last": [0.80 + s / 100 for s in range(5)]},
         "trained": {"bn": 600, "random": 600, "last": 1010}, "off": [0.05, 0.04, 0.06, 0.05, 0.05], "gamma_off": 0.05}
    out = RP.affine_numbers(r)
    assert out["pr_affine_bn_vs_random"].value.startswith("higher (+22.00 points [+21.02, +22.98]")
    assert out["pr_affine_bn_vs_last"].value == "lower (-14.00 points [-14.00, -14.00], 5 seeds)"
    assert out["pr_affine_off_max"].value == pytest.approx(6.0)
    assert RP.affine_table(r).cells()[2] == ["only the output layer", "1,010", "82.0 ± 2.0"]
    row = RL.claim_affine(r)
    assert row["verdict"] == "supported" and RL.claim_affine(None)["verdict"] == "not tested"


def test_placement_table_and_words():
    from test_reports_cifar import _run

    from bnlib.reports import practice as RP

    final = {"sigmoid-none": 0.90, "sigmoid-pre": 0.97, "sigmoid-post": 0.95, "relu-none": 0.96, "relu-pre": 0.975,
             "relu-post": 0.977}
    runs = {f"{lab}-seed{s}": _run([0.1, v + s / 1000], norm=None if lab.endswith("none") else "torch",
                                   test=v + s / 1000 + (s % 2) / 1000, seed=s)
            for lab, v in final.items() for s in range(5)}
    res = {"name": "pr_placement", "runs": runs}
    out = RP.placement_numbers(res)
    assert out["pr_place_sigmoid_post_vs_pre"].value == "lower (-2.00 points [-2.00, -2.00], 5 seeds)"
    assert out["pr_place_relu_post_vs_pre"].value.startswith("level (")
    assert out["pr_place_relu_best"].value == "BN after the nonlinearity"  # chosen on validation
    assert out["pr_place_sigmoid_bn_vs_none"].value.startswith("higher (+7.00 points")
    cells = RP.placement_table(res).cells()
    assert cells[0][:2] == ["sigmoid", "no BN"] and cells[2][4] == "-2.00 points [-2.00, -2.00], 5 seeds"
    assert cells[1][4] == ""
    assert out["pr_place_relu_none_diverged"].value == "diverges on none of the seeds"


def test_finetuning_modes_freeze_what_they_say():
    from bnlib import models

    torch.manual_seed(0)
    source = models.SigmoidMLP(P.SOURCE_SIZES, norm="torch").state_dict()
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(6))
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(7))
    keys = list(source)
    for mode in P.FINETUNE_MODES:
        net = P._finetuned(source, x, y, mode, steps=5, lr=0.5, seed=0)
        bn = {n for n, m in net.named_modules() if m in models.bn_layers(net)}
        after = net.state_dict()
        moved = {k.rsplit(".", 1)[0] if k.rsplit(".", 1)[0] in bn else "other" for k in keys
                 if not torch.equal(after[k], source[k])}
        assert not net.training
        if mode == "none":
            assert moved == set()
        elif mode == "updated":
            assert moved == bn | {"other"}
        elif mode == "frozen":
            assert moved == {"other"}  # not even the running statistics
        else:  # re-estimated: the statistics move once, gamma and beta never
            assert moved == bn | {"other"}
            for name in bn:
                assert torch.equal(after[f"{name}.weight"], source[f"{name}.weight"])
    with pytest.raises(ValueError, match="mode must be one of none, updated, frozen, re-estimated"):
        P._finetuned(source, x, y, "partial", steps=1, lr=0.1, seed=0)


def test_finetuning_words():
    from bnlib.reports import practice as RP

    acc = {"none": [0.05] * 5, "updated": [0.80 + s / 100 for s in range(5)], "frozen": [0.20 + s / 50 for s in
                                                                                           range(5)],
           "re-estimated": [0.205 + s / 50 for s in range(5)]}
    r = {"n_labelled": 256, "steps": 300, "lr": 0.1, "shifts": ["inverted"], "modes": list(acc),
         "acc": {"inverted": acc}}
    out = RP.finetune_numbers(r)
    assert out["pr_tune_inverted_updated_vs_frozen"].value.startswith("higher (+58.00 points")
    assert out["pr_tune_inverted_re_estimated_vs_frozen"].value == "level (+0.50 points [+0.50, +0.50], 5 seeds)"
    assert out["pr_tune_inverted_re_estimated"].value == pytest.approx(100 * (0.205 + 0.04))
    assert RP.finetune_table(r).cells()[0][0] == "inverted"
    both = {**r, "shifts": ["noise", "inverted"], "acc": {"noise": acc, "inverted": acc}}
    with pytest.raises(ValueError, match="freezing BN costs nothing under noise"):
        RP.finetune_numbers(both)


# --------------------------------------------------------------------------- the per-device batch
def test_ghost_forward_is_bn_over_each_chunk():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3)).double()
    x = torch.randn(12, 5, dtype=torch.float64)
    lin = net[0](x).detach()
    want = torch.cat([torch.nn.functional.batch_norm(c, None, None, training=True) for c in lin.split(4)])
    torch.testing.assert_close(P.ghost_forward(net, x, 4).detach(), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(P.ghost_forward(net, x, 12), net(x))
    for bad in (5, 0, 2.0, True):
        with pytest.raises(ValueError, match="divides the batch of 12 examples"):
            P.ghost_forward(net, x, bad)


def test_data_parallel_local_bn_is_bn_per_shard_and_syncbn_is_bn_over_the_batch():
    r = P.ddp_check(per_device=3, steps=3)
    assert r["devices"] == 2 and r["ranks_agree"] == 0.0  # DDP keeps the replicas identical
    assert r["local_ghost"] < 1e-12 and r["sync_global"] < 1e-12
    assert r["local_global"] > 1e-3


@pytest.mark.data("mnist")
def test_real_data_parallel_training_matches_the_one_process_computation():
    r = P.ddp_train_check(per_device=(4,), examples=1200)
    assert r["ranks_agree"] and r["devices"] == 2
    (xa, xt), (ya, yt) = P._mnist_unit()
    with one_thread():
        for norm in P.DEVICE_NORMS:
            net = P._ghost_trained(xa[:50_000], ya[:50_000], norm, 8, 8 if norm == "sync" else 4, 1200, 0, 2)
            want = P._device_score(net, norm, xa, xt, yt)
            # local BN and Group Norm: the same arithmetic as DDP's, rounding included; SyncBN all-reduces its sums
            assert abs(r["acc"][norm]["4"] - want) <= (0.002 if norm == "sync" else 0.0), norm


def test_ddp_train_words_hold_the_one_process_measurement_to_its_arithmetic():
    from bnlib.reports import practice as RP

    d = _device(0.15, 0.03)
    trained = {"seed": 1, "devices": 2, "per_device": [2, 4, 8], "ranks_agree": True,
               "acc": {n: {b: v[1] for b, v in d["acc"][n].items()} for n in d["norms"]}}
    trained["acc"]["sync"]["2"] += 0.0003
    out = RP.ddp_train_numbers(trained, d)
    assert (out["pr_ddp_train_cells"].value, out["pr_ddp_train_equal"].value) == (9, 8)
    assert out["pr_ddp_train_gap"].value == pytest.approx(0.03)
    for bad in ({"ranks_agree": False}, {"acc": trained["acc"] | {"local": trained["acc"]["local"] | {"4": 0.5}}},
                {"acc": trained["acc"] | {"sync": trained["acc"]["sync"] | {"8": trained["acc"]["sync"]["8"] + 0.01}}}):
        with pytest.raises(ValueError, match="reproduces the one-process measurement"):
            RP.ddp_train_numbers(trained | bad, d)


def _device(gain2: float, gain4: float) -> dict:
    base = [0.90, 0.91, 0.89, 0.92, 0.90]
    gain = {"2": gain2, "4": gain4, "8": 0.0}
    acc = {"local": {b: [a - 0.1 / int(b) for a in base] for b in ("2", "4", "8")},
           "sync": {b: [a - 0.1 / int(b) + gain[b] + 0.002 * i for i, a in enumerate(base)] for b in ("2", "4", "8")},
           "group": {b: list(base) for b in ("2", "4", "8")}}
    return {"seeds": list(range(5)), "devices": 2, "per_device": [2, 4, 8], "norms": ["local", "sync", "group"],
            "examples": 30_000, "n_train": 50_000, "rate_at_60": 1.0, "ghost_batch": 256, "ghost_sizes": [256, 32, 8],
            "acc": acc, "ghost": {"256": base, "32": [a - 0.02 for a in base], "8": [a - 0.003 for a in base]}}


def test_device_table_words_and_the_ledger_rule():
    import numpy as np
    from test_reports_cifar import _t_interval

    from bnlib.reports import claims as RL
    from bnlib.reports import practice as RP

    r = _device(0.15, 0.03)
    out = RP.device_numbers(r)
    m, lo, hi = _t_interval(np.array(r["acc"]["sync"]["2"]) - r["acc"]["local"]["2"])
    assert out["pr_dev_sync_vs_2"].value == f"a gain: {100 * m:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}], 5 seeds"
    assert out["pr_dev_group_vs_8"].value.startswith("a gain: +1.25 points")  # 0.1 / 8 above local BN on every seed
    assert out["pr_ghost_32_vs"].value == "a loss: -2.00 points [-2.00, -2.00], 5 seeds"
    assert out["pr_ghost_8_vs"].value.startswith("no change beyond one point")
    assert out["pr_dev_per"].value == "2, 4 and 8" and out["pr_ghost_sizes"].value == "32 and 8"
    assert out["pr_dev_local_2"].value == pytest.approx(100 * np.mean(r["acc"]["local"]["2"]))
    cells = RP.device_table(r).cells()
    assert cells[0][:2] == ["2", "4"] and cells[0][-1] == f"{100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    assert RP.ghost_table(r).cells()[0] == ["256", "90.4 ± 1.4", "–"]
    assert RL.claim_sync(r)["verdict"] == "supported"
    assert RL.claim_sync(_device(0.0, 0.0))["verdict"] == "not supported"
    assert RL.claim_sync(_device(0.15, 0.006))["verdict"] == "inconclusive"  # mean +1.0 points: on the margin
    assert out["pr_dev_small"].value == 2 and out["pr_dev_small_batch"].value == 4
    with pytest.raises(ValueError, match="local BN collapses at 2 examples per device"):
        RP.device_numbers(_device(0.05, 0.03))
    with pytest.raises(ValueError, match="ghost BN over 32 examples gains nothing"):
        RP.device_numbers(r | {"ghost": r["ghost"] | {"32": [a + 0.02 for a in r["ghost"]["256"]]}})
    assert RL.claim_sync(None)["verdict"] == "not tested"


def test_ddp_words_refuse_a_check_that_no_longer_holds():
    from bnlib.reports import practice as RP

    r = {"devices": 2, "per_device": 4, "steps": 5, "ranks_agree": 0.0, "local_ghost": 0.0, "sync_global": 4e-16,
         "local_global": 0.12}
    out = RP.ddp_numbers(r)
    assert out["pr_ddp_sync"].value == "1e-13" and out["pr_ddp_gap"].value == pytest.approx(0.12)
    with pytest.raises(ValueError, match="local BN is BN over each shard"):
        RP.ddp_numbers(r | {"local_global": 1e-9})


def test_a_batch_that_does_not_split_into_the_shards_says_so(raises_one_sentence):
    x, y = torch.zeros(64, 784), torch.zeros(64, dtype=torch.int64)
    raises_one_sentence(lambda: P._ghost_trained(x, y, "bn", 10, 5, 10, 0, shards=4), ValueError,
                        r"batch must split into 4 equal shards .* got batch=10")
