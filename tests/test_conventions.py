"""Keras's BatchNormalization conventions with bnlib's layer (bnlib.conventions), against Keras's documented
formulas written out in NumPy (moving = momentum * moving + (1 - momentum) * batch, the batch variance without
Bessel's correction, epsilon 1e-3; with trainable = False, inference mode in every call) and torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnlib import conventions as K


def _batches(n=3, shape=(16, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 2 for _ in range(n)]


def test_training_and_moving_statistics_follow_keras_formulas():
    bn = K.KerasBatchNorm(5).double()
    with torch.no_grad():
        bn.gamma.copy_(torch.linspace(0.5, 2, 5))
        bn.beta.copy_(torch.linspace(-1, 1, 5))
    gamma, beta = bn.gamma.detach().numpy(), bn.beta.detach().numpy()
    mm, mv = np.zeros(5), np.ones(5)
    bn.train()
    for x in _batches():
        a = x.numpy()
        mean, var = a.mean(0), a.var(0)  # NumPy's var: no Bessel correction, as Keras's ops.moments
        np.testing.assert_allclose(bn(x).detach().numpy(), gamma * (a - mean) / np.sqrt(var + 1e-3) + beta,
                                   rtol=1e-12, atol=1e-12)
        mm, mv = 0.99 * mm + 0.01 * mean, 0.99 * mv + 0.01 * var
        np.testing.assert_allclose(bn.moving_mean.numpy(), mm, rtol=1e-12)
        np.testing.assert_allclose(bn.moving_variance.numpy(), mv, rtol=1e-12)
    bn.eval()
    a = _batches(1, seed=1)[0]
    np.testing.assert_allclose(bn(a).detach().numpy(), gamma * (a.numpy() - mm) / np.sqrt(mv + 1e-3) + beta,
                               rtol=1e-12, atol=1e-12)


def test_gradients_match_torch_autograd_on_conv_input():
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    bn = K.KerasBatchNorm(3).double().train()
    w = torch.randn(4, 3, 5, 6, dtype=torch.float64)
    (bn(x) * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    g2, b2 = (t.detach().clone().requires_grad_(True) for t in (bn.gamma, bn.beta))
    (torch.nn.functional.batch_norm(x2, None, None, g2, b2, training=True, eps=1e-3) * w).sum().backward()
    for got, want in ((x.grad, x2.grad), (bn.gamma.grad, g2.grad), (bn.beta.grad, b2.grad)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_trainable_false_is_inference_mode_even_in_training():
    bn = K.KerasBatchNorm(5).double().train()
    for x in _batches(2):
        bn(x)
    bn.trainable = False
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    x = _batches(1, seed=2)[0].requires_grad_(True)
    y = bn(x)  # still in training mode
    y.sum().backward()
    want = (x.detach() - state["moving_mean"]) / torch.sqrt(state["moving_variance"] + 1e-3)
    torch.testing.assert_close(y.detach(), want, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(v, state[k]) for k, v in bn.state_dict().items())
    assert bn.gamma.grad is None and bn.beta.grad is None and x.grad is not None
    bn.trainable = True
    assert bn.gamma.requires_grad


def test_keras_check_measures_the_pitfall_and_the_variance_convention():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(640, 784, generator=g), torch.randint(0, 10, (640,), generator=g)
    r = K.keras_check(x, y, steps=20, batch=32)
    assert r["torch"]["mean_moved"] > 1e-3 and not r["torch"]["gamma_moved"]  # model.train() undid eval()
    assert r["keras"]["mean_moved"] == 0.0 and not r["keras"]["gamma_moved"]
    assert r["var_ratio"] == pytest.approx(32 / 31, rel=1e-12)
    assert r["out_diff"] < 1e-12 and r["mean_diff"] < 1e-12


def test_bad_arguments_say_so(raises_one_sentence):
    raises_one_sentence(lambda: K.KerasBatchNorm(0), ValueError, "num_features must be a positive integer")
    raises_one_sentence(lambda: K.KerasBatchNorm(3, momentum=1.5), ValueError, "momentum must lie in")
    raises_one_sentence(lambda: K.keras_check(torch.rand(10, 784), torch.zeros(10, dtype=torch.long)), ValueError,
                        "keras_check needs")


def test_keras_words_and_their_prose_check():
    from bnlib.reports import practice as RP

    g = torch.Generator().manual_seed(1)
    r = K.keras_check(torch.rand(320, 784, generator=g), torch.randint(0, 10, (320,), generator=g), steps=10,
                      batch=32)
    n = RP.keras_numbers(r)
    assert n["pr_keras_ratio"].value == pytest.approx(32 / 31) and n["pr_keras_keras_moved"].value == 0.0
    with pytest.raises(ValueError, match="trainable = False"):
        RP.keras_numbers(r | {"keras": {"mean_moved": 0.01, "gamma_moved": False}})
