"""Layer Norm, Group Norm and Batch Renorm (bnlib.norms) against independent references.

Layer Norm and Group Norm: torch's own ``layer_norm`` / ``group_norm`` with autograd in
float64, central finite differences, and torch's modules over a few training steps.
Batch Renorm: its equations (Ioffe 2017, Algorithm 1) written out again here channel by
channel, torch autograd of the same forward with ``r`` and ``d`` detached, finite
differences with ``r`` and ``d`` held fixed, and plain BN (bnlib.functional) when
``r_max = 1``, ``d_max = 0``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import functional as BN
from bnlib import norms

TOL = 1e-10  # float64 relative error


def rel(a, b) -> float:
    a, b = (t.detach() if isinstance(t, torch.Tensor) else t for t in (a, b))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _t(a, grad=True):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _data(shape, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.normal(size=shape) * rng.uniform(0.5, 3.0, size=(1, c) + (1,) * (len(shape) - 2)) + shift
    gamma = rng.normal(size=c)
    beta = rng.normal(size=c)
    dy = rng.normal(size=shape)
    return x, gamma, beta, dy


def _central_diff(f, arrays, dy, h=1e-6):
    """Gradients of L = sum(f(*arrays) * dy) with respect to each array by central differences."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            lp = np.sum(f(*arrays) * dy)
            a[i] = old - h
            lm = np.sum(f(*arrays) * dy)
            a[i] = old
            g[i] = (lp - lm) / (2 * h)
        grads.append(g)
    return grads


def _bs(c, ndim):
    return (1, c) + (1,) * (ndim - 2)


# =========================================================================== Group Norm / Layer Norm, NumPy
GN_CASES = [((6, 12), 1), ((6, 12), 4), ((6, 12), 6), ((4, 6, 3, 5), 1), ((4, 6, 3, 5), 3), ((4, 6, 3, 5), 6)]


@pytest.mark.parametrize("shape,groups", GN_CASES)
def test_group_norm_matches_torch_autograd(shape, groups):
    x, gamma, beta, dy = _data(shape, seed=groups)
    y, cache = norms.group_norm_forward(x, groups, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = norms.group_norm_backward(dy, cache)
    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    yt = F.group_norm(xt, groups, gt, bt, eps=1e-5)
    yt.backward(torch.tensor(dy))
    assert rel(y, yt.detach()) <= TOL
    assert rel(dx, xt.grad) <= TOL
    assert rel(dgamma, gt.grad) <= TOL
    assert rel(dbeta, bt.grad) <= TOL
    assert y.dtype == dx.dtype == np.float64


@pytest.mark.parametrize("shape", [(6, 12), (4, 6, 3, 5)])
def test_layer_norm_matches_torch_autograd(shape):
    """2-D: torch's layer_norm over C; 4-D: torch's layer_norm over (C, H, W), then a per-channel affine."""
    x, gamma, beta, dy = _data(shape, seed=3)
    y, cache = norms.layer_norm_forward(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = norms.layer_norm_backward(dy, cache)
    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    bs = _bs(shape[1], len(shape))
    yt = F.layer_norm(xt, tuple(shape[1:]), eps=1e-5) * gt.view(bs) + bt.view(bs)
    yt.backward(torch.tensor(dy))
    assert rel(y, yt.detach()) <= TOL
    assert rel(dx, xt.grad) <= TOL
    assert rel(dgamma, gt.grad) <= TOL
    assert rel(dbeta, bt.grad) <= TOL
    # each example's normalized values have mean 0 and variance 1 / (1 + eps / var) over every axis but 0
    xhat = cache["xhat"].reshape(shape[0], -1)
    assert np.max(np.abs(xhat.mean(axis=1))) < 1e-12
    assert np.max(np.abs(xhat.var(axis=1) - 1)) < 1e-4


@pytest.mark.parametrize("shape,groups", [((3, 4), 2), ((2, 4, 2, 3), 2), ((2, 3, 2, 2), 1)])
def test_group_and_layer_norm_finite_differences(shape, groups):
    x, gamma, beta, dy = _data(shape, seed=7)
    _, cache = norms.group_norm_forward(x, groups, gamma, beta)
    analytic = norms.group_norm_backward(dy, cache)
    numeric = _central_diff(lambda a, g, b: norms.group_norm_forward(a, groups, g, b)[0], [x, gamma, beta], dy)
    for a, n in zip(analytic, numeric, strict=True):
        assert rel(a, n) < 1e-7
    if groups == 1:
        _, lcache = norms.layer_norm_forward(x, gamma, beta)
        for a, n in zip(norms.layer_norm_backward(dy, lcache), numeric, strict=True):
            assert rel(a, n) < 1e-7


def test_group_norm_float32_keeps_dtype():
    x, gamma, beta, dy = (a.astype(np.float32) for a in _data((4, 6, 2, 2), seed=1))
    y, cache = norms.group_norm_forward(x, 3, gamma, beta)
    dx, dgamma, dbeta = norms.group_norm_backward(dy, cache)
    assert y.dtype == dx.dtype == np.float32
    ref = F.group_norm(torch.tensor(x), 3, torch.tensor(gamma), torch.tensor(beta))
    assert rel(y, ref) < 1e-5


def test_group_norm_bad_inputs():
    x, gamma, beta, dy = _data((4, 6, 2, 2))
    with pytest.raises(ValueError, match="must divide the number of channels C=6"):
        norms.group_norm_forward(x, 4, gamma, beta)
    with pytest.raises(ValueError, match="num_groups must be a positive integer"):
        norms.group_norm_forward(x, 0, gamma, beta)
    with pytest.raises(ValueError, match="num_groups must be a positive integer"):
        norms.group_norm_forward(x, 2.0, gamma, beta)
    with pytest.raises(ValueError, match=r"shape \(N, C\) or \(N, C, H, W\)"):
        norms.layer_norm_forward(x[:, :, 0], gamma, beta)
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        norms.layer_norm_forward(x.astype(np.int64), gamma, beta)
    with pytest.raises(TypeError, match="NumPy array"):
        norms.layer_norm_forward(x.tolist(), gamma, beta)
    with pytest.raises(ValueError, match=r"gamma must have shape \(6,\)"):
        norms.layer_norm_forward(x, gamma[:5], beta)
    with pytest.raises(ValueError, match="NaN or infinite"):
        norms.layer_norm_forward(np.where(x > 2, np.nan, x), gamma, beta)
    with pytest.raises(ValueError, match="eps must be a finite non-negative number"):
        norms.layer_norm_forward(x, gamma, beta, eps=-1.0)
    _, cache = norms.group_norm_forward(x, 2, gamma, beta)
    with pytest.raises(ValueError, match="dy must have the shape of the forward input"):
        norms.group_norm_backward(dy[:2], cache)


# =========================================================================== Group Norm / Layer Norm, torch
@pytest.mark.parametrize("groups,shape", [(3, (5, 6)), (2, (5, 6, 3, 3)), (1, (2, 6, 2, 2))])
def test_group_norm_function_backward_vs_autograd_float64(groups, shape):
    x, gamma, beta, dy = _data(shape, seed=11)
    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    norms.GroupNormFunction.apply(xt, groups, gt, bt, 1e-5).backward(torch.tensor(dy))
    xr, gr, br = _t(x), _t(gamma), _t(beta)
    F.group_norm(xr, groups, gr, br, eps=1e-5).backward(torch.tensor(dy))
    for a, b in ((xt.grad, xr.grad), (gt.grad, gr.grad), (bt.grad, br.grad)):
        assert rel(a, b) <= TOL
    # finite differences (torch's gradcheck) of the hand-derived backward, with and without affine
    xs, gs, bs_ = (torch.tensor(a, requires_grad=True) for a in _data((3, 4, 2), seed=2)[:3])
    assert torch.autograd.gradcheck(lambda a, g, b: norms.GroupNormFunction.apply(a, 2, g, b, 1e-5), (xs, gs, bs_))
    assert torch.autograd.gradcheck(lambda a: norms.GroupNormFunction.apply(a, 2, None, None, 1e-5), (xs,))


def _train_pair(ours, ref, x_shape, steps=4, seed=0):
    """Train the same small network with our norm layer and torch's; compare outputs and gradients."""
    torch.manual_seed(seed)
    conv = len(x_shape) == 4
    c_in, c = x_shape[1], ours.num_channels
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    ours.load_state_dict(ref.state_dict())  # torch's state dict loads into ours: the same keys

    def net(norm):
        first = nn.Conv2d(c_in, c, 3, padding=1, bias=False) if conv else nn.Linear(c_in, c, bias=False)
        return nn.Sequential(first, norm, nn.Sigmoid(), nn.Flatten())

    torch.manual_seed(seed)
    net_ref = net(ref)
    torch.manual_seed(seed)
    net_ours = net(ours)
    opt_ref = torch.optim.SGD(net_ref.parameters(), lr=0.5)
    opt_ours = torch.optim.SGD(net_ours.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(x_shape, generator=g) * 2 + 0.5
        target = torch.randn((x_shape[0], c) + tuple(x_shape[2:]), generator=g).flatten(1)
        outs = []
        for model, opt in ((net_ref, opt_ref), (net_ours, opt_ours)):
            opt.zero_grad()
            out = model(x)
            ((out - target) ** 2).mean().backward()
            outs.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
            opt.step()
        (y_ref, g_ref), (y_ours, g_ours) = outs
        torch.testing.assert_close(y_ours, y_ref, rtol=1e-6, atol=1e-6)
        for a, b in zip(g_ours, g_ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    for a, b in zip(net_ours.parameters(), net_ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_layer_norm_module_matches_torch_layernorm_2d():
    _train_pair(norms.LayerNorm(8), nn.LayerNorm(8), (16, 5))


def test_layer_norm_module_matches_torch_groupnorm1_4d():
    _train_pair(norms.LayerNorm(6), nn.GroupNorm(1, 6), (4, 3, 5, 5))


@pytest.mark.parametrize("groups,channels,shape", [(2, 8, (16, 5)), (3, 6, (4, 3, 5, 5)), (6, 6, (4, 3, 4, 4))])
def test_group_norm_module_matches_torch(groups, channels, shape):
    _train_pair(norms.GroupNorm(groups, channels), nn.GroupNorm(groups, channels), shape)


def test_norm_modules_state_dict_keys_and_eval_mode():
    gn = norms.GroupNorm(2, 4)
    assert set(gn.state_dict()) == set(nn.GroupNorm(2, 4).state_dict()) == {"weight", "bias"}
    with torch.no_grad():
        gn.weight.normal_()
    nn.GroupNorm(2, 4).load_state_dict(gn.state_dict())  # and ours loads into torch's
    x = torch.randn(3, 4, 2, 2)
    y_train = gn.train()(x)
    assert torch.equal(gn.eval()(x), y_train)  # no batch statistics: the same in both modes
    ln = norms.LayerNorm(4, elementwise_affine=False)
    assert dict(ln.named_parameters()) == {}
    torch.testing.assert_close(ln(x), F.group_norm(x, 1), rtol=1e-6, atol=1e-6)
    # one example alone: Layer Norm needs no batch
    torch.testing.assert_close(norms.LayerNorm(4)(x[:1]), F.group_norm(x[:1], 1), rtol=1e-6, atol=1e-6)


def test_norm_modules_bad_inputs():
    with pytest.raises(ValueError, match="must divide the number of channels C=6"):
        norms.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="num_channels must be a positive integer"):
        norms.GroupNorm(1, 0)
    with pytest.raises(ValueError, match="num_features must be a positive integer|num_channels must be"):
        norms.LayerNorm(-3)
    gn = norms.GroupNorm(2, 4)
    with pytest.raises(ValueError, match="has 4 channels but the input has 5"):
        gn(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"shape \(N, C, \.\.\.\)"):
        gn(torch.randn(4))
    with pytest.raises(TypeError, match="floating-point"):
        gn(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.float32 but the input is torch.float64"):
        gn(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gn(np.zeros((2, 4)))


# =========================================================================== Batch Renorm, NumPy
def _renorm_reference(x, gamma, beta, mu, sigma, r_max, d_max, eps, momentum):
    """Algorithm 1 of Ioffe (2017), one channel at a time with explicit sums."""
    c = x.shape[1]
    y = np.empty_like(x)
    r_all, d_all, new_mu, new_sigma = [], [], [], []
    for k in range(c):
        v = np.moveaxis(x, 1, 0)[k].ravel()
        m = v.size
        mu_b = sum(v) / m
        sigma_b = np.sqrt(sum((vi - mu_b) ** 2 for vi in v) / m + eps)
        r = min(max(sigma_b / sigma[k], 1 / r_max), r_max)
        d = min(max((mu_b - mu[k]) / sigma[k], -d_max), d_max)
        xhat = (np.moveaxis(x, 1, 0)[k] - mu_b) / sigma_b * r + d
        np.moveaxis(y, 1, 0)[k] = gamma[k] * xhat + beta[k]
        r_all.append(r)
        d_all.append(d)
        new_mu.append(mu[k] + momentum * (mu_b - mu[k]))
        new_sigma.append(sigma[k] + momentum * (sigma_b - sigma[k]))
    return y, np.array(r_all), np.array(d_all), np.array(new_mu), np.array(new_sigma)


def _renorm_case(shape=(8, 5), seed=0):
    """Channels whose batch std is 0.2, 1, 5, 1, 1 and mean 0, 0, 0, 3, 0.4 against moving (0, 1):
    with r_max = 2, d_max = 1, r clips high (channel 2) and low (channel 0), d clips (channel 3),
    channels 1 and 4 are not clipped."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=shape)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    z = (z - z.mean(axis=axes, keepdims=True)) / z.std(axis=axes, keepdims=True)
    bs = _bs(shape[1], len(shape))
    x = z * np.array([0.2, 1.0, 5.0, 1.0, 1.0]).reshape(bs) + np.array([0.0, 0.1, 0.0, 3.0, 0.4]).reshape(bs)
    gamma, beta, dy = rng.normal(size=5), rng.normal(size=5), rng.normal(size=shape)
    return x, gamma, beta, dy, np.zeros(5), np.ones(5)


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 2, 3)])
def test_batch_renorm_forward_matches_equations_and_clips(shape):
    x, gamma, beta, _, mu, sigma = _renorm_case(shape)
    y, new_mu, new_sigma, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, 1.0, eps=1e-5,
                                                             momentum=0.1)
    y_ref, r_ref, d_ref, mu_ref, sigma_ref = _renorm_reference(x, gamma, beta, mu, sigma, 2.0, 1.0, 1e-5, 0.1)
    assert rel(y, y_ref) <= TOL
    assert rel(cache["r"], r_ref) <= TOL and rel(cache["d"], d_ref) <= TOL
    assert rel(new_mu, mu_ref) <= TOL and rel(new_sigma, sigma_ref) <= TOL
    # the clipping is active: r at r_max and at 1/r_max, d at d_max, and two channels inside the box
    r, d = cache["r"], cache["d"]
    assert r[2] == 2.0 and r[0] == 0.5 and d[3] == 1.0
    assert 0.5 < r[1] < 2.0 and 0.5 < r[4] < 2.0 and abs(d[4]) < 1.0 and abs(d[1]) < 1.0
    assert abs(d[4] - 0.4) < 1e-12  # unclipped d is (mu_B - mu) / sigma


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 2, 3)])
def test_batch_renorm_backward_matches_autograd_with_detached_r_d(shape):
    x, gamma, beta, dy, mu, sigma = _renorm_case(shape, seed=1)
    _, _, _, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, 1.0)
    dx, dgamma, dbeta = norms.batch_renorm_backward(dy, cache)

    def torch_renorm(xt, gt, bt, detach=True):
        dims = [0] + list(range(2, xt.dim()))
        bs = _bs(xt.shape[1], xt.dim())
        mu_b = xt.mean(dims, keepdim=True)
        sigma_b = torch.sqrt(((xt - mu_b) ** 2).mean(dims, keepdim=True) + 1e-5)
        mt, st = torch.tensor(mu).view(bs), torch.tensor(sigma).view(bs)
        r = torch.clamp(sigma_b / st, 0.5, 2.0)
        d = torch.clamp((mu_b - mt) / st, -1.0, 1.0)
        if detach:
            r, d = r.detach(), d.detach()
        return gt.view(bs) * ((xt - mu_b) / sigma_b * r + d) + bt.view(bs)

    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    torch_renorm(xt, gt, bt).backward(torch.tensor(dy))
    assert rel(dx, xt.grad) <= TOL
    assert rel(dgamma, gt.grad) <= TOL
    assert rel(dbeta, bt.grad) <= TOL
    # the stop-gradient matters: letting gradients flow through the unclipped r and d changes dx
    xf = _t(x)
    torch_renorm(xf, _t(gamma), _t(beta), detach=False).backward(torch.tensor(dy))
    assert rel(dx, xf.grad) > 1e-3


def test_batch_renorm_finite_differences_with_r_d_fixed():
    x, gamma, beta, dy, mu, sigma = _renorm_case((6, 5), seed=2)
    _, _, _, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, 1.0)
    r0, d0 = cache["r"].copy(), cache["d"].copy()

    def f(a, g, b):  # the forward with r and d frozen at their values for the original x
        mu_b = a.mean(axis=0)
        return g * ((a - mu_b) / np.sqrt(((a - mu_b) ** 2).mean(axis=0) + 1e-5) * r0 + d0) + b

    numeric = _central_diff(f, [x, gamma, beta], dy)
    for a, n in zip(norms.batch_renorm_backward(dy, cache), numeric, strict=True):
        assert rel(a, n) < 1e-7


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 2, 3)])
def test_batch_renorm_with_r_max_1_d_max_0_is_batch_norm(shape):
    x, gamma, beta, dy, _, _ = _renorm_case(shape, seed=3)
    mu, sigma = np.array([5.0, -2.0, 0.3, 1.0, 0.0]), np.array([0.01, 10.0, 0.5, 2.0, 1.0])  # far from the batch
    y, _, _, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 1.0, 0.0)
    y_bn, bn_cache = BN.forward(x, gamma, beta, eps=1e-5)
    assert np.all(cache["r"] == 1.0) and np.all(cache["d"] == 0.0)
    assert rel(y, y_bn) <= 1e-13
    for a, b in zip(norms.batch_renorm_backward(dy, cache), BN.backward(dy, bn_cache), strict=True):
        assert rel(a, b) <= 1e-13


def test_batch_renorm_unclipped_training_equals_inference():
    """The paper's point: when neither clip is active, training computes gamma * (x - mu) / sigma + beta."""
    x, gamma, beta, _, _, _ = _renorm_case((8, 5), seed=4)
    mu, sigma = np.array([0.1, -0.2, 0.3, 2.5, 0.0]), np.array([0.3, 1.2, 4.0, 0.9, 1.1])
    y, _, _, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 100.0, 100.0)
    assert np.all(cache["r"] != 1.0)
    y_inf = norms.batch_renorm_inference(x, mu, sigma, gamma, beta)
    assert rel(y_inf, gamma * (x - mu) / sigma + beta) <= TOL
    assert rel(y, y_inf) <= 1e-12


def test_renorm_schedule_values():
    # the paper's schedule (the defaults): BN for 5,000 steps, r_max = 3 at 40,000, d_max = 5 at 25,000
    assert norms.renorm_schedule(0) == (1.0, 0.0)
    assert norms.renorm_schedule(5000) == (1.0, 0.0)
    r, d = norms.renorm_schedule(15_000)  # 10,000 steps into the ramps: r 10/35 of the way, d 10/20
    assert abs(r - (1 + 2 * 10 / 35)) < 1e-15 and abs(d - 2.5) < 1e-15
    r, d = norms.renorm_schedule(22_500)  # halfway up the r ramp
    assert abs(r - 2.0) < 1e-15 and abs(d - 5 * 17.5 / 20) < 1e-15
    r, d = norms.renorm_schedule(25_000)
    assert abs(r - (1 + 2 * 20 / 35)) < 1e-15 and d == 5.0
    assert norms.renorm_schedule(40_000) == (3.0, 5.0)
    assert norms.renorm_schedule(10**7) == (3.0, 5.0)
    assert norms.renorm_schedule(7, norms.PAPER_SCHEDULE) == (1.0, 0.0)
    # the book's default is the paper's shortened tenfold, and BatchRenorm uses it
    assert norms.BOOK_SCHEDULE == norms.RenormSchedule(3.0, 5.0, 500, 3500, 2000)
    assert norms.BatchRenorm(3).schedule == norms.BOOK_SCHEDULE and norms.BatchRenorm(3).limits(4000) == (3.0, 5.0)
    # a configurable schedule, and a ramp of 0 steps (a jump)
    assert norms.renorm_schedule(15, norms.RenormSchedule(5.0, 2.0, 10, 20, 10)) == (2.0, 1.0)
    assert norms.RenormSchedule(bn_steps=10, r_ramp_steps=0, d_ramp_steps=0).limits(9) == (1.0, 0.0)
    assert norms.RenormSchedule(bn_steps=10, r_ramp_steps=0, d_ramp_steps=0).limits(10) == (3.0, 5.0)


def test_batch_renorm_bad_inputs():
    x, gamma, beta, dy, mu, sigma = _renorm_case()
    with pytest.raises(ValueError, match="running_std must be positive"):
        norms.batch_renorm_forward(x, gamma, beta, mu, np.zeros(5), 2.0, 1.0)
    with pytest.raises(ValueError, match="r_max must be a finite number >= 1"):
        norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 0.5, 1.0)
    with pytest.raises(ValueError, match="d_max must be a finite number >= 0"):
        norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, -1.0)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, 1.0, momentum=1.5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        norms.batch_renorm_forward(x[:1], gamma, beta, mu, sigma, 2.0, 1.0)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(5,\)"):
        norms.batch_renorm_forward(x, gamma, beta, mu[:3], sigma, 2.0, 1.0)
    with pytest.raises(ValueError, match="running_std must be positive"):
        norms.batch_renorm_inference(x, mu, -sigma, gamma, beta)
    _, _, _, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, 1.0)
    with pytest.raises(ValueError, match="dy must have the shape"):
        norms.batch_renorm_backward(dy.T, cache)
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        norms.renorm_schedule(-1)
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        norms.renorm_schedule(2.5)
    with pytest.raises(ValueError, match="r_ramp_steps must be a non-negative integer"):
        norms.RenormSchedule(r_ramp_steps=-5)
    with pytest.raises(ValueError, match="r_max must be a finite number >= 1"):
        norms.RenormSchedule(r_max=0.9)


# =========================================================================== Batch Renorm, torch
def test_batch_renorm_function_matches_numpy_float64():
    x, gamma, beta, dy, mu, sigma = _renorm_case((4, 5, 2, 3), seed=5)
    y_np, _, _, cache = norms.batch_renorm_forward(x, gamma, beta, mu, sigma, 2.0, 1.0)
    grads_np = norms.batch_renorm_backward(dy, cache)
    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    y, mean, sig, r, d = norms.BatchRenormFunction.apply(xt, gt, bt, torch.tensor(mu), torch.tensor(sigma),
                                                         1e-5, 2.0, 1.0)
    y.backward(torch.tensor(dy))
    assert rel(y.detach(), y_np) <= TOL
    assert rel(r, cache["r"]) <= TOL and rel(d, cache["d"]) <= TOL
    assert rel(mean, cache["mu"]) <= TOL and rel(sig, cache["sigma"]) <= TOL
    for a, b in zip((xt.grad, gt.grad, bt.grad), grads_np, strict=True):
        assert rel(a, b) <= TOL
    assert not (r.requires_grad or d.requires_grad or mean.requires_grad)
    # without affine parameters: the gradient of x alone
    xn = _t(x)
    norms.BatchRenormFunction.apply(xn, None, None, torch.tensor(mu), torch.tensor(sigma), 1e-5, 2.0, 1.0)[0].backward(
        torch.tensor(dy))
    _, _, _, c1 = norms.batch_renorm_forward(x, np.ones(5), np.zeros(5), mu, sigma, 2.0, 1.0)
    assert rel(xn.grad, norms.batch_renorm_backward(dy, c1)[0]) <= TOL


def test_batch_renorm_module_follows_schedule_and_equations():
    """Several training steps of the module against the NumPy functional run alongside, then eval mode."""
    m = norms.BatchRenorm(5, momentum=0.2, schedule=norms.RenormSchedule(2.0, 1.0, 2, 2, 4))
    m = m.double()
    with torch.no_grad():
        m.weight.copy_(torch.linspace(0.5, 1.5, 5))
        m.bias.copy_(torch.linspace(-1, 1, 5))
    mu, sigma = np.zeros(5), np.ones(5)
    expected_limits = [(1.0, 0.0), (1.0, 0.0), (1.0, 0.0), (1.5, 0.25), (2.0, 0.5), (2.0, 0.75), (2.0, 1.0)]
    clipped_high = False
    for step, limits in enumerate(expected_limits):
        x, _, _, dy, _, _ = _renorm_case((8, 5), seed=10 + step)
        x = x * (1 + step)  # growing scale: the batch std runs ahead of the moving std, so r clips at r_max
        assert m.limits() == limits
        xt = _t(x)
        y = m(xt)
        y.backward(torch.tensor(dy))
        y_np, mu, sigma, cache = norms.batch_renorm_forward(
            x, m.weight.detach().numpy(), m.bias.detach().numpy(), mu, sigma, *limits, momentum=0.2)
        assert m.last_limits == limits
        assert rel(y.detach(), y_np) <= TOL
        assert rel(m.running_mean, mu) <= TOL and rel(m.running_std, sigma) <= TOL
        assert rel(xt.grad, norms.batch_renorm_backward(dy, cache)[0]) <= TOL
        assert int(m.num_batches_tracked) == step + 1
        clipped_high |= bool((m.last_r == limits[0]).any()) and limits[0] > 1
        m.zero_grad()
    assert clipped_high
    # eval mode: the moving statistics, y = weight * (x - running_mean) / running_std + bias
    x = _renorm_case((3, 5), seed=99)[0]
    y_eval = m.eval()(_t(x, grad=False))
    ref = norms.batch_renorm_inference(x, mu, sigma, m.weight.detach().numpy(), m.bias.detach().numpy())
    assert rel(y_eval, ref) <= TOL
    assert int(m.num_batches_tracked) == len(expected_limits)  # eval does not advance the schedule
    # state dict: the documented keys; a reloaded module resumes the warm-up where it stopped
    sd = m.state_dict()
    assert set(sd) == {"weight", "bias", "running_mean", "running_std", "num_batches_tracked"}
    m2 = norms.BatchRenorm(5, schedule=norms.RenormSchedule(2.0, 1.0, 2, 2, 4)).double()
    m2.load_state_dict(sd)
    assert m2.limits() == (2.0, 1.0)


@pytest.mark.parametrize("shape", [(16, 6), (4, 6, 3, 3)])
def test_batch_renorm_module_limits_1_0_train_like_torch_batchnorm(shape):
    torch.manual_seed(0)
    ours = norms.BatchRenorm(6, schedule=norms.RenormSchedule(1.0, 0.0, 0, 0, 0))
    ref = nn.BatchNorm1d(6) if len(shape) == 2 else nn.BatchNorm2d(6)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
        ours.weight.copy_(ref.weight)
        ours.bias.copy_(ref.bias)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.3)
    opt_r = torch.optim.SGD(ref.parameters(), lr=0.3)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(shape, generator=g) * 3 + 1
        t = torch.randn(shape, generator=g)
        grads = []
        for mod, opt in ((ours, opt_o), (ref, opt_r)):
            xx = x.clone().requires_grad_()
            opt.zero_grad()
            y = mod(xx)
            ((y - t) ** 2 * torch.arange(1.0, 7.0).view(_bs(6, len(shape)))).mean().backward()
            grads.append((y.detach(), xx.grad, mod.weight.grad.clone(), mod.bias.grad.clone()))
            opt.step()
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_batch_renorm_module_bad_inputs():
    m = norms.BatchRenorm(4)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m(torch.randn(1, 4))
    with pytest.raises(ValueError, match="has 4 channels but the input has 3"):
        m(torch.randn(5, 3))
    with pytest.raises(TypeError, match="torch.float32 but the input is torch.float64"):
        m(torch.randn(5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="r_max must be a finite number >= 1"):
        norms.BatchRenorm(4, schedule=norms.RenormSchedule(r_max=0.0))
    with pytest.raises(ValueError, match="momentum must be a number in"):
        norms.BatchRenorm(4, momentum=-0.1)
    with pytest.raises(ValueError, match="bn_steps must be a non-negative integer"):
        norms.BatchRenorm(4, schedule=norms.RenormSchedule(bn_steps=-1))
    with pytest.raises(TypeError, match="schedule must be a RenormSchedule"):
        norms.BatchRenorm(4, schedule={"r_max": 3.0})
    assert int(m.num_batches_tracked) == 0  # failed calls left the module untouched
    m.eval()
    assert m(torch.randn(1, 4)).shape == (1, 4)  # one example is fine at inference


# --------------------------------------------------------------------------- l_p normalization
def _lp_reference(x: np.ndarray, p: float, gamma, beta, eps: float) -> np.ndarray:
    """Santurkar et al.'s l_p normalization written out channel by channel (NumPy, float64)."""
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c]
        mu = v.mean()
        s = np.abs(v - mu).max() + eps if np.isinf(p) else (np.mean(np.abs(v - mu) ** p) + eps) ** (1 / p)
        y[:, c] = gamma[c] * (v - mu) / s + beta[c]
    return y


@pytest.mark.parametrize("p", [1.0, 3.0, np.inf])
@pytest.mark.parametrize("shape", [(16, 5), (6, 3, 4, 4)])
def test_lp_norm_matches_its_equations_and_finite_differences(p, shape):
    x, gamma, beta, _ = _data(shape, seed=3, shift=1.0)
    m = norms.LpNorm(shape[1], p=p, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(gamma))
        m.bias.copy_(torch.from_numpy(beta))
    xt = _t(x)
    assert rel(m(xt), _lp_reference(x, p, gamma, beta, 1e-5)) < TOL
    m.momentum = 0.0  # keep the moving statistics out of gradcheck's repeated calls
    assert torch.autograd.gradcheck(lambda t: m(t), (xt,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("shape", [(32, 7), (8, 4, 3, 3)])
def test_lp_norm_p2_trains_like_torch_batchnorm(shape):
    x, gamma, beta, _ = _data(shape, seed=5)
    ref = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1]).double()
    m = norms.LpNorm(shape[1], p=2, dtype=torch.float64)
    for mod in (ref, m):
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(gamma))
            mod.bias.copy_(torch.from_numpy(beta))
    xa, xb = _t(x), _t(x)
    ya, yb = ref(xa), m(xb)
    assert rel(yb, ya) < TOL
    g = torch.from_numpy(np.random.default_rng(1).normal(size=shape))
    ya.backward(g)
    yb.backward(g)
    for a, b in ((xb.grad, xa.grad), (m.weight.grad, ref.weight.grad), (m.bias.grad, ref.bias.grad)):
        assert rel(a, b) < TOL


def test_lp_norm_moving_statistics_and_eval_mode():
    x, _, _, _ = _data((20, 4), seed=7, shift=2.0)
    m = norms.LpNorm(4, p=1, momentum=0.25, dtype=torch.float64)
    m(_t(x, grad=False))
    mu = x.mean(0)
    s = np.mean(np.abs(x - mu), axis=0) + 1e-5
    assert rel(m.running_mean, 0.25 * mu) < TOL
    assert rel(m.running_scale, 0.75 + 0.25 * s) < TOL
    m.eval()
    x2 = np.random.default_rng(8).normal(size=(3, 4))
    assert rel(m(_t(x2, grad=False)), (x2 - 0.25 * mu) / (0.75 + 0.25 * s)) < TOL
    m(_t(x2[:1], grad=False))  # one example is fine at inference


def test_lp_norm_bad_inputs():
    for p in (0.5, -1, True, "2"):
        with pytest.raises(ValueError, match="p must be a number >= 1"):
            norms.LpNorm(3, p=p)
    m = norms.LpNorm(3)
    with pytest.raises(ValueError, match="has 3 channels but the input has 4"):
        m(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        m(torch.zeros(1, 3))
    with pytest.raises(TypeError, match="floating-point"):
        m(torch.zeros(5, 3, dtype=torch.long))
