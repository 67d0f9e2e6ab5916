"""bnlib.geometry and bnlib.symbolic.geometry against independent references: SymPy proofs with a control
that is not scale invariant, the schedule against the closed form of Li & Arora (2020), gradient growth
against Yang et al. (2019)'s predictions and against torch's own BatchNorm1d, and the float64 identities
with controls that must break them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn

from bnlib import geometry as G
from bnlib import models
from bnlib.symbolic import geometry as SG

DATA = pytest.mark.data("mnist")


# --------------------------------------------------------------------------- SymPy
@pytest.mark.parametrize("fn", [SG.orthogonal_gradient, SG.gradient_homogeneity, SG.norm_growth_step,
                                SG.decay_equivalence_step, SG.decay_equivalence_first_step])
def test_identities_hold(fn):
    assert fn().holds


def test_a_loss_that_sees_the_norm_is_not_orthogonal():
    """The control: L = f(w) (not a function of the direction) has w . grad L != 0, so the proof has content."""
    w = sp.symbols("w_1:4", real=True)
    loss = sp.Function("f")(*w)
    assert sp.simplify(sum(wi * sp.diff(loss, wi) for wi in w)) != 0


def test_a_wrong_scale_recurrence_fails():
    """c_{t+1} without the momentum correction breaks the step identity."""
    w_prev, w_now, g_now, v_prev, v_now, h_now, eta_prev, eta_now, c_prev, c_now = SG._step_symbols()
    c_next = (1 - eta_now * SG.lam) * c_now
    lr_prev, lr_now = eta_prev / (c_prev * c_now), eta_now / (c_now * c_next)
    w_next = w_now - eta_now * (SG.mu * (w_prev - w_now) / eta_prev + g_now + SG.lam * w_now)
    v_next = v_now - lr_now * (SG.mu * (v_prev - v_now) / lr_prev + h_now)
    sub = {w_prev: c_prev * v_prev, w_now: c_now * v_now, g_now: h_now / c_now}
    assert sp.simplify(w_next.xreplace(sub) - c_next * v_next) != 0


def test_direction_loss_rejects_bad_n():
    with pytest.raises(ValueError, match="at least 2"):
        SG.direction_loss(1)


# --------------------------------------------------------------------------- the schedule
def test_schedule_without_momentum_is_li_arora_closed_form():
    """mu = 0: c_t = (1 - eta lambda)^t and lr_tilde_t = eta (1 - eta lambda)^(-2t-1) (Li & Arora, 2020)."""
    eta, lam, n = 0.1, 5e-3, 50
    c, lr = G.equivalent_schedule([eta] * n, lam, 0.0)
    t = np.arange(n + 1)
    np.testing.assert_allclose(c, (1 - eta * lam) ** t, rtol=1e-13)
    np.testing.assert_allclose(lr, eta * (1 - eta * lam) ** (-2.0 * t[:-1] - 1), rtol=1e-13)


def test_schedule_with_momentum_is_a_combination_of_the_quadratic_roots():
    """Constant rate: c_t = A a1^t + B a2^t with a1, a2 the roots of a^2 - (1 + mu - eta lambda) a + mu."""
    eta, lam, mu, n = 0.1, 5e-3, 0.9, 80
    c, _ = G.equivalent_schedule([eta] * n, lam, mu)
    a1, a2 = np.roots([1.0, -(1 + mu - eta * lam), mu])
    coef = np.linalg.solve([[1.0, 1.0], [a1, a2]], [1.0, 1 - eta * lam])
    np.testing.assert_allclose(c, coef[0] * a1 ** np.arange(n + 1) + coef[1] * a2 ** np.arange(n + 1), rtol=1e-10)


def test_schedule_bad_input():
    with pytest.raises(ValueError, match="positive learning rates"):
        G.equivalent_schedule([], 1e-3, 0.9)
    with pytest.raises(ValueError, match="too large"):
        G.equivalent_schedule([10.0] * 5, 1.0, 0.0)


# --------------------------------------------------------------------------- float64 identities along runs
@DATA
def test_norm_growth_is_exact_with_tiny_epsilon_and_breaks_with_a_large_one():
    exact = G.norm_growth(steps=20)
    assert exact["growth_rel"] < 1e-12 and exact["cos_max"] < 1e-12
    loose = G.norm_growth(steps=20, eps=1.0)  # epsilon comparable to the variances: no longer scale invariant
    assert loose["growth_rel"] > 1e-6 and loose["cos_max"] > 1e-6
    assert len(exact["norm2"]) == len(exact["angle"]) == 20


@DATA
def test_exp_lr_check_is_exact_and_fails_without_the_schedule():
    r = G.exp_lr_check(steps=30, decay_at=15)
    assert r["out_rel"] < 1e-10 and r["weight_rel"] < 1e-10
    c, lr = G.equivalent_schedule(np.full(30, 0.1), 5e-3, 0.9)
    assert r["lr_tilde"][0] == pytest.approx(lr[0])
    # the control: run B at A's own rates instead of the equivalent ones; the two networks part
    control = G.exp_lr_check(steps=30, decay_at=15, compensate=False)
    assert control["out_rel"] > 1e-4


def test_invariant_weights_are_the_layers_feeding_bn():
    m = models.build("mlp", norm="torch", sizes=(784, 20, 20, 10))
    inv = G.invariant_weights(m)
    linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert [id(p) for p in inv] == [id(linears[0].weight), id(linears[1].weight)]
    with pytest.raises(ValueError, match="no bias-free"):
        G.invariant_weights(models.build("mlp", norm=None, sizes=(784, 20, 10)))


@DATA
def test_equilibrium_angle_is_near_the_formula():
    r = G.equilibrium("mnist", lr=0.1, weight_decay=1e-2, steps=400, n_train=2000)
    assert r["predicted"] == pytest.approx(math.sqrt(2 * 0.1 * 1e-2 / 1.9))
    assert 0.75 < r["ratio"] < 1.15


# --------------------------------------------------------------------------- gradients at initialization
def test_fitted_rate_of_a_geometric_sequence():
    assert G.fitted_rate([3.0 * 1.3 ** -k for k in range(20)]) == pytest.approx(1.3)
    with pytest.raises(ValueError, match="at least"):
        G.fitted_rate([1.0] * 5)


def test_gradient_norms_match_torch_batchnorm():
    """The explicit network of gradient_growth against the same weights in torch.nn layers (BatchNorm1d)."""
    torch.manual_seed(0)
    ws, out = G._deep(16, 4, 0, 1.0)
    x, y = torch.rand(8, 784, dtype=torch.float64), torch.randint(0, 10, (8,))
    _, norms = G._grad_norms(ws, out, x, y, "tanh", True)
    layers = []
    for w in ws:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False).double()
        lin.weight.data.copy_(w.detach())
        layers += [lin, nn.BatchNorm1d(w.shape[0], affine=False, eps=1e-5).double(), nn.Tanh()]
    head = nn.Linear(16, 10, bias=False).double()
    head.weight.data.copy_(out.detach())
    net = nn.Sequential(*layers, head)
    nn.functional.cross_entropy(net(x), y).backward()
    ref = [float((m.weight.grad ** 2).sum()) for m in net if isinstance(m, nn.Linear)][:-1]
    np.testing.assert_allclose(norms, ref, rtol=1e-10)


@DATA
@pytest.mark.parametrize("batch", [8, 16])
def test_linear_bn_network_grows_as_yang_et_al_predict(batch):
    """(B - 2) / (B - 3) per layer for a linear BN network (Yang et al., 2019), over four seeds, to 5%."""
    rates = [G.gradient_growth("linear", batch, depth=30, width=256, seed=s)["rate"] for s in range(4)]
    assert np.mean(rates) == pytest.approx((batch - 2) / (batch - 3), rel=0.05)


@DATA
def test_relu_bn_network_grows_near_pi_over_pi_minus_one_and_no_bn_does_not():
    bn = [G.gradient_growth("relu", 128, depth=30, width=256, seed=s)["rate"] for s in range(3)]
    assert np.mean(bn) == pytest.approx(math.pi / (math.pi - 1), rel=0.05)
    plain = [G.gradient_growth("relu", 128, depth=30, width=256, seed=s, bn=False)["rate"] for s in range(3)]
    assert abs(np.mean(plain) - 1) < 0.1


def test_predicted_rate_and_bad_input():
    assert G.predicted_rate("linear", 10) == pytest.approx(8 / 7)
    assert G.predicted_rate("tanh", 10) is None
    with pytest.raises(ValueError, match="at least 4"):  # refused before any data is read
        G.gradient_growth("relu", 2)
    with pytest.raises(ValueError, match="activation"):
        G.gradient_growth("gelu", 8)
