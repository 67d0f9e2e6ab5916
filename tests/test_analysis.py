"""Measurements of bnlib.analysis against direct, independent computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bnlib import analysis as A
from bnlib import models
from bnlib import train as T


def _data(n=1200, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, d, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, d, generator=g) + centers[y] + 0.5
    return T.Data(x[:1000], y[:1000], x[1000:], y[1000:])


def _trained(norm="torch", steps=60, sizes=(20, 12, 8, 3)):
    data = _data()
    cfg = T.RunConfig(sizes=sizes, norm=norm, steps=steps, record_every=steps, batch_size=25, lr=0.3,
                      probe_batch=50)
    return T.train(cfg, data)["model"], data, cfg


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fold_matches_eval_mode():
    model, data, cfg = _trained()
    res = A.analysis_fold(model, data, cfg, repeats=2)
    assert res["max_abs_diff"] < 1e-5 and res["same_predictions"] == 1.0
    folded = A.fold_model(model)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())


def test_fold_conv_model_matches_eval_mode():
    torch.manual_seed(0)
    m = models.SigmoidCNN(depth=2, width=4, norm="bnlib")
    m.train()
    for _ in range(3):
        m(torch.randn(8, 3, 8, 8))
    m.eval()
    x = torch.randn(5, 3, 8, 8)
    torch.testing.assert_close(A.fold_model(m)(x), m(x), atol=1e-5, rtol=1e-5)


def test_population_estimates_against_direct_computation():
    model, data, cfg = _trained(sizes=(20, 12, 3))  # one BN layer: its input is x W^T
    before = _state(model)
    res = A.analysis_population(model, data, cfg)
    _assert_unchanged(model, before)
    z = (data.x_train.double() @ models.weight_layers(model)[0].weight.detach().double().T).numpy()
    exact_mean, exact_var = z.mean(0), z.var(0, ddof=1)
    bn = models.bn_layers(model)[0]
    assert res["layers"][0]["running_vs_exact_mean"] == pytest.approx(
        np.abs(bn.running_mean.double().numpy() - exact_mean).max(), rel=1e-6)
    # Algorithm 2 by hand: 40 batches of 25, mean of batch means, m/(m-1) times mean of biased variances
    zb = z.reshape(40, 25, -1)
    alg2_var = 25 / 24 * zb.var(1).mean(0)
    assert res["layers"][0]["alg2_vs_exact_var_rel"] == pytest.approx(np.abs(alg2_var / exact_var - 1).max(),
                                                                       rel=1e-6, abs=1e-12)
    assert set(res["test_acc"]) == {"running", "algorithm2", "exact"}


def test_test_batch_analysis_and_model_untouched():
    model, data, cfg = _trained()
    before = _state(model)
    res = A.analysis_test_batches(model, data, cfg, sizes=(2, 50))
    _assert_unchanged(model, before)
    assert set(res["by_size"]) == {"2", "50"} and 0 <= res["one_class_64"] <= 1
    assert A.analysis_test_batches(_trained(norm=None)[0], data, cfg) == {}


def test_landscape_losses_match_manual_steps():
    model, data, cfg = _trained(norm=None)
    x, y = data.x_train[:25], data.y_train[:25]
    before = _state(model)
    res = A.record_landscape(model, x, y, lr=0.3)
    _assert_unchanged(model, before)
    ref = copy.deepcopy(model)
    loss = nn.functional.cross_entropy(ref(x), y)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    eta = 0.3 * A.LANDSCAPE_STEPS[2]
    with torch.no_grad():
        for p, g in zip(ref.parameters(), grads, strict=True):
            p -= eta * g
    assert res["loss"][2] == pytest.approx(float(nn.functional.cross_entropy(ref(x), y)), rel=1e-5)
    assert res["loss0"] == pytest.approx(float(loss), rel=1e-6)
    assert res["beta"] >= max(c / (0.3 * k * float(torch.cat([g.flatten() for g in grads]).norm()))
                              for c, k in zip(res["grad_change"], A.LANDSCAPE_STEPS, strict=True)) * (1 - 1e-6)


def test_ics_against_manual_update():
    model, data, cfg = _trained(norm=None)
    x, y = data.x_train[:25], data.y_train[:25]
    before = _state(model)
    res = A.record_ics(model, x, y, lr=0.3)
    _assert_unchanged(model, before)
    assert res["l2"][0] is None and len(res["l2"]) == 3
    # layer 2 by hand: step layers 0 and 1, recompute layer 2's gradient
    ref = copy.deepcopy(model)
    wl = models.weight_layers(ref)
    grads = torch.autograd.grad(nn.functional.cross_entropy(ref(x), y), list(ref.parameters()))
    g = dict(zip([id(p) for p in ref.parameters()], grads, strict=True))
    g2_before = g[id(wl[2].weight)].clone()
    with torch.no_grad():
        for layer in wl[:2]:
            layer.weight -= 0.3 * g[id(layer.weight)]
            layer.bias -= 0.3 * g[id(layer.bias)]
    g2_after = torch.autograd.grad(nn.functional.cross_entropy(ref(x), y), [wl[2].weight])[0]
    assert res["l2"][2] == pytest.approx(float((g2_before - g2_after).norm()), rel=1e-4)


def test_recorders_in_training_loop_and_unknown_names():
    data = _data()
    cfg = T.RunConfig(sizes=(20, 8, 3), norm="torch", steps=20, record_every=10, batch_size=25,
                      recorders=("ics", "landscape"), analyses=("fold",), probe_batch=50)
    res = T.train(cfg, data)
    assert len(res["curves"]["ics"]) == 2 and len(res["curves"]["landscape"]) == 2
    assert res["analysis"]["fold"]["max_abs_diff"] < 1e-5
    with pytest.raises(ValueError, match="unknown recorders"):
        T.RunConfig(recorders=("hessian",))

