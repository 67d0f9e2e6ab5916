"""The residual networks of the practice chapter (bnlib.residual): the forward pass against the same network written
with torch's own functional ops (torch's batch_norm for BN), SkipInit's blocks as the identity at initialization,
the variance argument of De & Smith (2020) at initialization, one short training run on CIFAR-10, and the words and
guards of the section's report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bnlib import residual as R
from bnlib.reports import practice as RP


def _reference_forward(net: R.ResidualNet, x: torch.Tensor) -> torch.Tensor:
    """``net``'s forward in training mode from its parameters, with torch's conv2d, relu and batch_norm."""
    bn = net.kind == "bn"

    def norm(m, z):
        return F.batch_norm(z, None, None, m.weight, m.bias, training=True, eps=m.eps) if bn else z

    h = F.conv2d(x, net.stem.weight, net.stem.bias, stride=2, padding=1)
    for b in net.blocks:
        f = F.conv2d(F.relu(norm(b.norm1, h)), b.conv1.weight, b.conv1.bias, padding=1)
        f = F.conv2d(F.relu(norm(b.norm2, f)), b.conv2.weight, b.conv2.bias, padding=1)
        h = h + (f if b.alpha is None else b.alpha * f)
    return F.linear(F.relu(norm(net.norm, h)).mean((2, 3)), net.head.weight, net.head.bias)


@pytest.mark.parametrize("kind", R.KINDS)
def test_forward_matches_torch_functional_ops(kind):
    net = R.ResidualNet(kind, blocks=3, seed=1).double()
    if kind == "skipinit":
        with torch.no_grad():
            for i, b in enumerate(net.blocks):
                b.alpha.fill_(0.3 * (i + 1))  # a trained SkipInit network: every branch counts
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    net.train()
    torch.testing.assert_close(net(x), _reference_forward(net, x), rtol=1e-10, atol=1e-10)


def test_he_initialization_and_no_bias_before_bn():
    net = R.ResidualNet("bn", seed=0)
    w = net.blocks[0].conv1.weight
    assert abs(float(w.detach().std()) - (2 / w[0].numel()) ** 0.5) < 0.05 * (2 / w[0].numel()) ** 0.5
    assert net.blocks[0].conv1.bias is None and R.ResidualNet("plain").blocks[0].conv1.bias is not None
    # the seed alone decides the weights
    assert torch.equal(R.ResidualNet("bn", seed=3).head.weight, R.ResidualNet("bn", seed=3).head.weight)


def test_variances_at_initialization_follow_de_and_smith():
    x = torch.randn(128, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    bn = R.stream_variances(R.ResidualNet("bn", seed=0), x)
    # the branch is uncorrelated with the stream at init: each BN block adds its branch's variance
    np.testing.assert_allclose(np.diff(bn["stream"]), bn["branch"], rtol=0.3)
    # and that variance is about the same at every block (2 Var relu(z) = 1 - 1/pi for He's init and z ~ N(0, 1)),
    # so the stream grows linearly and block l's branch is downscaled against the skip path
    assert 0.4 < min(bn["branch"]) and max(bn["branch"]) < 1.2
    skip = R.stream_variances(R.ResidualNet("skipinit", seed=0), x)
    assert np.ptp(skip["stream"]) == 0  # every block is the identity
    plain = R.stream_variances(R.ResidualNet("plain", seed=0), x)
    assert plain["stream"][-1] / plain["stream"][0] > 1.4 ** R.BLOCKS  # without BN it roughly doubles per block
    net = R.ResidualNet("bn", seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    R.stream_variances(net, x)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # running statistics untouched


def test_bad_kind_and_blocks_say_so(raises_one_sentence):
    raises_one_sentence(lambda: R.ResidualNet("batch"), ValueError, "kind must be one of bn, plain, skipinit")
    raises_one_sentence(lambda: R.ResidualNet("bn", blocks=0), ValueError, "blocks must be a positive integer")


@pytest.mark.data("cifar10")
def test_a_short_run_trains_and_reports():
    r = R.train_one("skipinit", 0.05, seed=0, steps=30)
    assert not r["diverged"] and r["steps_done"] == 30 and np.isfinite(r["final_loss"])
    assert 0.0 <= r["acc"] <= 1.0
    assert R.train_one("skipinit", 0.05, seed=0, steps=30) == r  # the config and the seed decide the numbers


def _check(acc_bn, acc_skip, acc_plain, diverged_plain) -> dict:
    """A residual check at two rates: the given accuracies at 0.05, and at 0.5 BN as at 0.05, the two others
    diverged on every seed."""
    n = len(acc_bn)
    acc = {"bn": (acc_bn, acc_bn), "skipinit": (acc_skip, [0.1] * n), "plain": (acc_plain, [0.1] * n)}
    div = {"bn": ([False] * n, [False] * n), "skipinit": ([False] * n, [True] * n),
           "plain": (diverged_plain, [True] * n)}
    return {"seeds": list(range(n)), "rates": [0.05, 0.5], "kinds": list(R.KINDS), "steps": 1500, "batch": 64,
            "width": 16, "blocks": 6, "momentum": 0.9, "calibration": 5000,
            "acc": {k: {"0.05": a, "0.5": b} for k, (a, b) in acc.items()},
            "diverged": {k: {"0.05": a, "0.5": b} for k, (a, b) in div.items()},
            "steps_done": {k: {r: [7 if d else 1500 for d in v] for r, v in zip(("0.05", "0.5"), ds, strict=True)}
                           for k, ds in div.items()}}


def test_residual_words_follow_the_two_point_margin():
    bn = [0.60, 0.61, 0.59, 0.60, 0.62]
    behind = [a - 0.05 for a in bn]
    n = RP.residual_numbers(_check(bn, behind, [0.1] * 5, [True, True, False, False, False]))
    assert n["pr_res_skipinit_vs_0"].value.startswith("lower (-5.00 points")
    assert n["pr_res_plain_vs_0"].value.startswith("lower")
    assert n["pr_res_bn_rates"].value.startswith("level within two points")
    assert n["pr_res_plain_0_div"].value == "diverges on 2 of the 5 seeds, within 8 steps"
    assert n["pr_res_plain_0_fate"].value.endswith("within 8 steps; 3 more seeds end at chance")
    assert n["pr_res_plain_0_chance"].value == 3 and n["pr_res_skipinit_0_chance"].value == 0
    assert n["pr_res_bn_0_div"].value == "diverges on none of the seeds"
    assert n["pr_res_skipinit_1_div"].value.startswith("diverges on all of the 5 seeds")
    table = RP.residual_table(_check(bn, behind, [0.1] * 5, [True] * 5))
    assert table.cells()[1][2] == "5 of 5" and table.cells()[0][2] == "none"  # rows: bn, plain, skipinit
    # the prose says SkipInit trains at the smaller rate and falls behind BN there: a seed at chance, or SkipInit
    # level with BN or not clearly behind it, breaks it
    for skip, says in (([0.1, *behind[1:]], "BN trains at both rates"), ([a + 0.002 for a in bn], "falls behind"),
                       ([0.55, 0.66, 0.58, 0.63, 0.57], "falls behind")):
        with pytest.raises(ValueError, match=says):
            RP.residual_numbers(_check(bn, skip, [0.1] * 5, [True] * 5))


def test_residual_init_guards():
    def run(stream, branch):
        return [{"stream": stream, "branch": branch}]

    good = {"bn": run([1.0, 1.7, 2.4], [0.7, 0.7]), "plain": run([1.0, 2.0, 4.0], [1.0, 2.0]),
            "skipinit": run([1.0, 1.0, 1.0], [0.7, 0.7])}
    n = RP.residual_init_numbers(RP.residual_init(good))
    assert n["pr_res_plain_growth"].value == pytest.approx(2.0)
    assert n["pr_res_bn_share_last"].value == pytest.approx(100 * 0.7 / 2.4)
    assert n["pr_res_bn_theory"].value == pytest.approx(1 - 1 / np.pi)
    for kind, stream in (("skipinit", [1.0, 1.0, 1.5]), ("bn", [1.0, 3.0, 5.0]), ("plain", [1.0, 1.1, 1.2])):
        with pytest.raises(ValueError, match="the prose says"):
            RP.residual_init_numbers(RP.residual_init(good | {kind: run(stream, good[kind][0]["branch"])}))
    with pytest.raises(ValueError, match="1 - 1/pi"):  # branches of variance 1, the second moment's value
        RP.residual_init_numbers(RP.residual_init(good | {"bn": run([1.0, 2.0, 3.0], [1.0, 1.0])}))
