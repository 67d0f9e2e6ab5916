"""The derivation chapters' numbers, figures and NumPy SGD (bnlib.reports.derivations, bnlib.plots.derivations,
bnlib.sgd), checked on small hand-made inputs against hand-computed values, finite differences and torch autograd."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bnlib import functional as F  # noqa: E402
from bnlib import sgd  # noqa: E402
from bnlib.plots import derivations as PD  # noqa: E402
from bnlib.reports import derivations as RD  # noqa: E402
from bnlib.results import SATURATION_THRESHOLD  # noqa: E402

EPS = 1e-5


def var_formula(v, e):
    """sigma^2 / (sigma^2 + eps), written out by hand (the theorem tr-var-xhat)."""
    return v / (v + e)


def _values(glued):
    return {k: g.value for k, g in glued.items()}


# --------------------------------------------------------------------------- transform: moments
def _pixel_cache():
    # m = 4: a constant feature, one of variance 0.75 and one of variance 3e-6 (below eps)
    x = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.004]])
    return F.forward(x, np.ones(3), np.zeros(3), eps=EPS)[1]


def test_pixel_moments_on_a_hand_made_batch():
    g = RD.pixel_moments_numbers(_pixel_cache(), EPS, var_formula)
    v = _values(g)
    assert list(g) == ["tr_n_const", "tr_n_moving", "tr_n_below", "tr_min_var", "tr_mean_abs", "tr_var_err", "tr_eps"]
    assert (v["tr_n_const"], v["tr_n_moving"], v["tr_n_below"]) == (1, 2, 1)  # 0.75/(0.75+eps) is above 0.99
    assert v["tr_min_var"] == pytest.approx(3 / 13, abs=1e-12)  # 3e-6 / (3e-6 + 1e-5)
    assert g["tr_min_var"].digits == 4 and g["tr_eps"].value == EPS
    for key in ("tr_mean_abs", "tr_var_err"):  # rounding only: "0" or a power of ten at most 1e-12
        assert g[key].kind == "md" and (v[key] == "0" or float(v[key]) <= 1e-12)


def test_pixel_moments_raise_when_the_variances_leave_the_curve():
    with pytest.raises(ValueError, match="lie on sigma"):
        RD.pixel_moments_numbers(_pixel_cache(), EPS, lambda v, e: v / (v + 2 * e))
    constant = F.forward(np.zeros((4, 2)), np.ones(2), np.zeros(2), eps=EPS)[1]
    with pytest.raises(ValueError, match="every feature"):
        RD.pixel_moments_numbers(constant, EPS, var_formula)


def test_eps_exercise_by_hand_and_with_the_lambdified_formula():
    from bnlib import symbolic as S

    for f in (var_formula, S.numeric()["var_xhat"]):
        v = _values(RD.eps_exercise_numbers(f))
        assert v["tr_ex_var_pt"] == pytest.approx(1 / 11, rel=1e-12)  # 1e-6 / (1e-6 + 1e-5)
        assert v["tr_ex_var_k"] == pytest.approx(1 / 1001, rel=1e-12)  # 1e-6 / (1e-6 + 1e-3)
        assert v["tr_ex_gain_pt"] == pytest.approx(301.5113445777636, rel=1e-12)  # 1 / sqrt(1.1e-5)
        assert v["tr_ex_gain_k"] == pytest.approx(31.606977062050703, rel=1e-12)  # 1 / sqrt(1.001e-3)
    with pytest.raises(ValueError, match="negative"):
        RD.eps_exercise_numbers(var_formula, var=-1.0)


# --------------------------------------------------------------------------- transform: sigmoid
def test_sigmoid_slope_share_against_finite_differences():
    assert RD.sigmoid_slope_share(0.0) == pytest.approx(1.0, rel=1e-15)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    for z in (-3.0, 0.7, 1.96, 5.0):
        h = 1e-5
        assert RD.sigmoid_slope_share(z) == pytest.approx((sig(z + h) - sig(z - h)) / (2 * h) / 0.25, rel=1e-8)
    # the engine's threshold is where the slope is 0.01, i.e. 4% of its maximum 1/4
    assert RD.sigmoid_slope_share(SATURATION_THRESHOLD) == pytest.approx(0.04, rel=1e-12)


def _fits(slope=0.43):
    return {1.0: {"r2": 0.984, "range_95": 0.753, "slope_edge": slope, "hi": 1.959964, "lo": -1.959964},
            4.0: {"r2": 0.838, "range_95": 0.99921, "slope_edge": 0.0016, "hi": 7.84, "lo": -7.84}}


def test_sigmoid_numbers_in_the_prose_order():
    g = RD.sigmoid_numbers(_fits())
    assert list(g) == ["tr_sig_r2", "tr_sig_range", "tr_sig_slope", "tr_sig_hi", "tr_sig_r2_4", "tr_sat_pct",
                       "tr_sig_range_4"]
    v = _values(g)
    assert v["tr_sig_r2"] == pytest.approx(98.4) and v["tr_sig_range"] == pytest.approx(75.3)
    assert v["tr_sig_slope"] == pytest.approx(43.0) and g["tr_sig_slope"].digits == 1  # 0.433 shows as 43.3
    assert v["tr_sig_hi"] == 1.959964 and g["tr_sig_hi"].digits == 2
    assert v["tr_sig_r2_4"] == pytest.approx(83.8) and v["tr_sig_range_4"] == pytest.approx(99.921)
    assert v["tr_sat_pct"] == pytest.approx(4.0, rel=1e-12)


def test_sigmoid_numbers_raise_when_the_edge_is_saturated_or_a_fit_is_missing():
    with pytest.raises(ValueError, match="far from saturation"):
        RD.sigmoid_numbers(_fits(slope=0.03))  # below 4% of the maximum
    with pytest.raises(ValueError, match="gamma = 1 and 4"):
        RD.sigmoid_numbers({1.0: _fits()[1.0]})


# --------------------------------------------------------------------------- scale invariance: learning rates
def _sgd_run(norms, loss, acc, growth=1e-6):
    return {"norm": np.array(norms, dtype=float), "loss": np.array(loss, dtype=float), "acc": acc, "growth": growth}


def _lr_runs(final_norms=(1.0, 4.0), accs=(0.9, 0.8), late=(1.0, 2.0)):
    runs = {}
    for lr, norm, acc, lt, gr in zip((0.1, 1.0), final_norms, accs, late, (3e-6, 2e-4), strict=True):
        runs[(lr, True)] = _sgd_run([0.5, norm], [2.0] * 60, acc, gr)
        runs[(lr, False)] = _sgd_run([0.5, 0.7], [100.0] * 10 + [lt] * 50, 0.85 + lr / 100)
    return runs


def test_lr_rows_and_numbers_by_hand():
    runs = _lr_runs()
    rows = RD.lr_rows(runs, (0.1, 1.0))
    assert [r["eff"] for r in rows] == pytest.approx([0.1 / 1.0, 1.0 / 16.0])
    assert [r["loss_plain"] for r in rows] == pytest.approx([1.0, 2.0])  # the last 50 steps only
    g = RD.lr_numbers(runs, (0.1, 1.0), steps=300, batch=100, n_train=20000)
    v = _values(g)
    assert list(g)[:5] == ["si_acc_bn_0_1", "si_acc_plain_0_1", "si_norm_0_1", "si_eff_0_1", "si_loss_plain_0_1"]
    assert v["si_acc_bn_1"] == pytest.approx(80.0) and v["si_acc_plain_0_1"] == pytest.approx(85.1)
    assert v["si_norm_1"] == 4.0 and v["si_eff_1"] == pytest.approx(0.0625)
    assert v["si_norm_init"] == 0.5 and v["si_growth"] == "1e-3"  # the power of ten above the worst gap, 2e-4
    assert (v["si_steps"], v["si_batch"], v["si_ntrain"]) == (300, 100, 20000)


def test_lr_numbers_raise_where_the_prose_would_be_wrong():
    kw = {"steps": 300, "batch": 100, "n_train": 20000}
    with pytest.raises(ValueError, match="reverse order"):
        RD.lr_numbers(_lr_runs(final_norms=(1.0, 2.0)), (0.1, 1.0), **kw)  # 0.1 < 1 / 4
    with pytest.raises(ValueError, match="behind the smallest"):
        RD.lr_numbers(_lr_runs(accs=(0.8, 0.9)), (0.1, 1.0), **kw)
    diverged = _lr_runs()
    diverged[(1.0, False)]["loss"][-1] = np.inf
    with pytest.raises(ValueError, match="diverge"):
        RD.lr_numbers(diverged, (0.1, 1.0), **kw)
    with pytest.raises(ValueError, match="with and without BN"):
        RD.lr_rows(_lr_runs(), (0.1, 1.0, 10.0))


def test_eps_floor_exercise():
    a = RD.eps_floor_exercise_numbers(EPS)["si_ex_a"].value
    assert a == pytest.approx(math.sqrt(50 * EPS), rel=1e-12)
    assert EPS / (2 * a**2 * 1.0) == pytest.approx(0.01, rel=1e-12)  # the first-order change is 1% there
    with pytest.raises(ValueError, match="positive"):
        RD.eps_floor_exercise_numbers(0.0)


# --------------------------------------------------------------------------- figures
def test_figure_pixel_variance_plots_the_moving_pixels_on_the_curve():
    cache = _pixel_cache()
    fig = PD.figure_pixel_variance(cache, EPS)
    curve, points = fig.axes[0].get_lines()[:2]
    assert np.allclose(curve.get_ydata(), var_formula(curve.get_xdata(), EPS))
    assert np.allclose(points.get_xdata(), [0.75, 3e-6]) and np.allclose(points.get_ydata(), [0.75 / (0.75 + EPS),
                                                                                             3 / 13])
    plt.close(fig)


def test_figure_sigmoid_draws_the_sigmoid_and_its_tangent():
    fig = PD.figure_sigmoid(-1.96, 1.96)
    sig, tangent = fig.axes[0].get_lines()[:2]
    z = sig.get_xdata()
    assert np.allclose(sig.get_ydata(), 1 / (1 + np.exp(-z)))
    assert np.allclose(tangent.get_ydata()[np.abs(z) < 2], 0.5 + z[np.abs(z) < 2] / 4)
    plt.close(fig)


def test_figure_jacobian_against_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 2.0, size=5)
    m, h = len(x), 1e-6

    def xhat(v):
        return F.forward(v[:, None], np.ones(1), np.zeros(1), eps=EPS)[1]["xhat"][:, 0]

    J = np.stack([(xhat(x + h * e) - xhat(x - h * e)) / (2 * h) for e in np.eye(m)], axis=1)  # J[i, j]
    cache = F.forward(x[:, None], np.ones(1), np.zeros(1), eps=EPS)[1]
    var, xh = float(cache["var"][0]), cache["xhat"][:, 0]
    fig = PD.figure_jacobian(x, J, var, EPS)
    order = np.argsort(x)
    want = -(1 + np.outer(xh, xh))[np.ix_(order, order)] / m  # sqrt(var + eps) J - I, by hand
    assert np.allclose(fig.axes[0].get_images()[0].get_array(), want, atol=1e-7)
    eig_line, ratio = fig.axes[1].get_lines()[:2]
    assert np.allclose(ratio.get_ydata(), EPS / (var + EPS))
    eig = np.sort(np.abs(eig_line.get_ydata()))
    assert eig[0] < 1e-6 and np.allclose(eig[2:], 1, atol=1e-6)  # 1 is an eigenvector of eigenvalue 0
    plt.close(fig)


def test_figure_learning_rates_draws_20_step_means():
    runs = _lr_runs()
    for k in runs:
        runs[k]["loss"] = np.arange(40.0)
    fig = PD.figure_learning_rates(runs, (0.1, 1.0))
    a0, a1 = fig.axes[:2]
    assert len(a0.get_lines()) == 2 and len(a1.get_lines()) == 4
    line = a1.get_lines()[0]
    assert line.get_xdata()[0] == 20 and line.get_ydata()[0] == pytest.approx(9.5)  # mean of 0..19
    assert len(line.get_ydata()) == 21
    plt.close(fig)
    with pytest.raises(ValueError, match="colours"):
        PD.figure_learning_rates(runs, (0.1, 1.0, 2.0, 3.0, 4.0))


# --------------------------------------------------------------------------- sgd: against torch autograd
def _torch_loss(x, y, W, bn, eps):
    """Mean cross-entropy of softmax(x W) (batch-normalized when bn) by torch, float64; returns (loss, W, xhat)."""
    Wt = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    z = torch.tensor(x, dtype=torch.float64) @ Wt
    if bn:
        z = torch.nn.functional.batch_norm(z, None, None, training=True, eps=eps)
        z.retain_grad()
    loss = torch.nn.functional.cross_entropy(z, torch.tensor(y, dtype=torch.long))
    loss.backward()
    return loss, Wt, z


def _toy(n=200, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x @ rng.normal(size=(d, classes))).argmax(axis=1)
    return x, y


@pytest.mark.parametrize("bn", [True, False])
def test_loss_and_grad_match_torch_autograd(bn):
    x, y = _toy(n=12)
    W = np.random.default_rng(1).normal(0, 0.5, size=(6, 3))
    loss, grad = sgd.loss_and_grad(x, y, W, bn, EPS)
    tl, Wt, _ = _torch_loss(x, y, W, bn, EPS)
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    assert np.allclose(grad, Wt.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_bn_layer_matches_torch_autograd():
    rng = np.random.default_rng(2)
    u, W, dy = rng.normal(size=(10, 4)), rng.normal(size=(4, 3)), rng.normal(size=(10, 3))
    out, dW, du = sgd.bn_layer(u, W, dy, EPS)
    ut = torch.tensor(u, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    yt = torch.nn.functional.batch_norm(ut @ Wt, None, None, training=True, eps=EPS)
    (yt * torch.tensor(dy)).sum().backward()
    assert np.allclose(out, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert np.allclose(dW, Wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.allclose(du, ut.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_one_step_of_run_follows_the_growth_identity():
    """|w'|^2 = |w|^2 + lr^2 |g|^2 - 2 lr w.g per unit, with w.g = eps/(var+eps) sum_i dl/dxhat_i xhat_i."""
    x, y = _toy()
    lr, batch, seed, init = 3.0, 16, 5, 0.1
    r = sgd.run(x, y, x, y, lr, True, steps=1, batch=batch, classes=3, seed=seed, eps=EPS, init_std=init)
    rng = np.random.default_rng(seed)  # the run's documented draws: initial weights, then one batch
    W0 = rng.normal(0, init, size=(6, 3))
    idx = rng.integers(0, len(x), batch)
    _, Wt, z = _torch_loss(x[idx], y[idx], W0, True, EPS)
    g = Wt.grad.numpy()
    W1 = W0 - lr * g
    assert np.allclose(r["unit_norms"][0], np.linalg.norm(W0, axis=0), rtol=1e-14)
    assert np.allclose(r["unit_norms"][1], np.linalg.norm(W1, axis=0), rtol=1e-12)
    assert np.allclose(r["weights"], W1, rtol=1e-10, atol=1e-14)
    var = (x[idx] @ W0).var(axis=0)
    w_dot_g = EPS / (var + EPS) * (z.grad.numpy() * z.detach().numpy()).sum(axis=0)
    lhs = r["unit_norms"][1] ** 2 - r["unit_norms"][0] ** 2 - lr**2 * (g**2).sum(axis=0)
    assert np.allclose(lhs, -2 * lr * w_dot_g, rtol=1e-6, atol=1e-15)


def test_a_run_grows_the_norm_exactly_for_eps_zero_and_not_without_bn():
    x, y = _toy()
    kw = {"steps": 40, "batch": 20, "classes": 3, "seed": 0}
    exact = sgd.run(x, y, x, y, 1.0, True, eps=0.0, **kw)
    assert exact["growth"] < 1e-10
    assert np.all(np.diff(exact["unit_norms"], axis=0) > 0)  # the norm can only grow
    assert sgd.run(x, y, x, y, 1.0, True, eps=EPS, **kw)["growth"] > exact["growth"]  # the eps term
    assert sgd.run(x, y, x, y, 1.0, False, eps=EPS, **kw)["growth"] > 1e-3  # no such law without BN


def test_run_is_deterministic_and_scores_its_final_weights():
    x, y = _toy()
    kw = {"steps": 30, "batch": 20, "classes": 3, "seed": 4}
    a, b = sgd.run(x, y, x[:50], y[:50], 0.5, True, **kw), sgd.run(x, y, x[:50], y[:50], 0.5, True, **kw)
    assert np.array_equal(a["weights"], b["weights"]) and np.array_equal(a["loss"], b["loss"])
    assert a["norm"] == pytest.approx(a["unit_norms"].mean(axis=1))
    z = x[:50] @ a["weights"]
    z = (z - z.mean(0)) / np.sqrt(z.var(0) + EPS)  # BN with the statistics of the test set, by hand
    assert a["acc"] == pytest.approx(float((z.argmax(1) == y[:50]).mean()))
    for bn in (True, False):
        plain = sgd.run(x, y, x, y, 0.5, bn, **kw)
        assert plain["loss"][-10:].mean() < plain["loss"][:10].mean()  # SGD learns the toy problem
    with pytest.raises(ValueError, match="at least one step"):
        sgd.run(x, y, x, y, 0.5, True, steps=0)
