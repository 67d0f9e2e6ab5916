"""bnlib.functional against independent references: torch autograd, torch's own BN, finite
differences, NumPy's var, torch.nn.BatchNorm's running statistics, torch's fusion helper.

Also hypothesis properties over shapes and values (offsets up to 1e6, scales 1e-3..1e3) and
every kind of bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bnlib import functional as F

SHAPES = [(2, 1), (2, 3), (5, 4), (64, 10), (2, 3, 1, 1), (2, 2, 3, 3), (4, 3, 5, 2)]


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _bs(x: np.ndarray) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _data(shape, seed=0, dtype=np.float64):
    """x with a different offset and scale per channel; gamma, beta, dy."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    bs = (1, c) + (1,) * (len(shape) - 2)
    x = rng.normal(size=shape) * rng.uniform(0.5, 3.0, c).reshape(bs) + rng.normal(0, 5, c).reshape(bs)
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    dy = rng.normal(size=shape)
    return tuple(a.astype(dtype) for a in (x, gamma, beta, dy))


def _torch_reference(x, gamma, beta, dy, eps):
    """Algorithm 1 written with torch operations, differentiated by autograd (float64)."""
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    dims = list(_axes(x))
    shape = _bs(x)
    mu = xt.mean(dims, keepdim=True)
    var = ((xt - mu) ** 2).mean(dims, keepdim=True)
    xhat = (xt - mu) / torch.sqrt(var + eps)
    y = gt.view(shape) * xhat + bt.view(shape)
    y.backward(torch.tensor(dy))
    return (y.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy(),
            mu.detach().numpy().ravel(), var.detach().numpy().ravel())


def rel_err(a, b, floor: float = 1e-300) -> float:
    """max |a - b| / max |b| (the denominator at least ``floor``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor))


def dx_scale(x, gamma, dy, eps) -> float:
    """Size of one term of dx, max |gamma| / sqrt(var + eps) * max |dy|. With two values per
    channel the terms cancel almost exactly (BN maps them to about -1 and +1 whatever x is), so
    dx's error is measured against this size rather than against the tiny dx itself."""
    return float(np.max(np.abs(gamma) / np.sqrt(np.var(x, axis=_axes(x)) + eps)) * np.max(np.abs(dy)))


# --------------------------------------------------------------------------- vs torch autograd
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_forward_backward_match_torch_autograd_float64(shape, eps):
    x, gamma, beta, dy = _data(shape, seed=sum(shape))
    y_ref, dx_ref, dg_ref, db_ref, mu_ref, var_ref = _torch_reference(x, gamma, beta, dy, eps)
    y, cache = F.forward(x, gamma, beta, eps=eps)
    assert y.dtype == np.float64 and y.shape == x.shape
    assert rel_err(y, y_ref) <= 1e-10
    assert rel_err(cache["mu"], mu_ref) <= 1e-10
    assert rel_err(cache["var"], var_ref) <= 1e-10
    for bwd in (F.backward, F.backward_staged):
        dx, dgamma, dbeta = bwd(dy, cache)
        assert dx.shape == x.shape and dgamma.shape == dbeta.shape == (shape[1],)
        assert rel_err(dx, dx_ref, floor=dx_scale(x, gamma, dy, eps)) <= 1e-10, bwd.__name__
        assert rel_err(dgamma, dg_ref) <= 1e-10, bwd.__name__
        assert rel_err(dbeta, db_ref) <= 1e-10, bwd.__name__


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_torch_batch_norm_and_inference(shape):
    """Also against torch's own kernels: F.batch_norm in training and in eval mode."""
    x, gamma, beta, _ = _data(shape, seed=1)
    y, cache = F.forward(x, gamma, beta)
    ref = torch.nn.functional.batch_norm(
        torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta), training=True, eps=1e-5
    )
    assert rel_err(y, ref.numpy()) <= 1e-10
    rng = np.random.default_rng(2)
    mean, var = rng.normal(size=shape[1]), rng.uniform(0.1, 4.0, shape[1])
    y_inf = F.inference(x, mean, var, gamma, beta, eps=1e-3)
    ref_inf = torch.nn.functional.batch_norm(
        torch.tensor(x), torch.tensor(mean), torch.tensor(var), torch.tensor(gamma), torch.tensor(beta),
        training=False, eps=1e-3,
    )
    assert rel_err(y_inf, ref_inf.numpy()) <= 1e-12
    # inference with the batch's own statistics is the training-mode forward
    assert rel_err(F.inference(x, cache["mu"], cache["var"], gamma, beta), y) <= 1e-12


def test_inference_single_example():
    x = np.array([[1.0, -2.0]])
    y = F.inference(x, np.array([0.5, 0.0]), np.array([4.0, 1.0]), np.array([2.0, 1.0]), np.array([0.0, 3.0]), eps=0)
    np.testing.assert_allclose(y, [[2.0 * 0.5 / 2.0, -2.0 + 3.0]], rtol=1e-15)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2)])
def test_float32_close_to_float64(shape):
    x, gamma, beta, dy = _data(shape, seed=3)
    y64, c64 = F.forward(x, gamma, beta)
    g64 = F.backward(dy, c64)
    x32, gamma32, beta32, dy32 = (a.astype(np.float32) for a in (x, gamma, beta, dy))
    y32, c32 = F.forward(x32, gamma32, beta32)
    assert y32.dtype == np.float32
    assert rel_err(y32, y64) <= 1e-5
    for bwd in (F.backward, F.backward_staged):
        for a, b, floor in zip(bwd(dy32, c32), g64, (dx_scale(x, gamma, dy, 1e-5), 0, 0), strict=True):
            assert a.dtype == np.float32
            assert rel_err(a, b, floor) <= 1e-5


# --------------------------------------------------------------------------- vs finite differences
@pytest.mark.parametrize("shape", [(2, 1), (2, 3), (6, 2), (2, 2, 2, 1), (3, 2, 2, 2)])
def test_backward_matches_central_differences(shape):
    x, gamma, beta, w = _data(shape, seed=10 + len(shape))

    def loss(x, gamma, beta):
        return float(np.sum(F.forward(x, gamma, beta, eps=1e-3)[0] * w))

    def numeric(which: int) -> np.ndarray:
        args = [x, gamma, beta]
        base = args[which]
        grad = np.zeros_like(base)
        h = 1e-6 * max(1.0, float(np.max(np.abs(base))))
        for idx in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += h
            minus[idx] -= h
            lp = loss(*[plus if i == which else a for i, a in enumerate(args)])
            lm = loss(*[minus if i == which else a for i, a in enumerate(args)])
            grad[idx] = (lp - lm) / (2 * h)
        return grad

    _, cache = F.forward(x, gamma, beta, eps=1e-3)
    for bwd in (F.backward, F.backward_staged):
        dx, dgamma, dbeta = bwd(w, cache)
        assert rel_err(dx, numeric(0), floor=dx_scale(x, gamma, w, 1e-3)) <= 1e-6
        assert rel_err(dgamma, numeric(1)) <= 1e-6
        assert rel_err(dbeta, numeric(2)) <= 1e-6


# --------------------------------------------------------------------------- hypothesis properties
@st.composite
def bn_cases(draw, eps_choices=(0.0, 1e-5)):
    """x = offset + scale * z per channel (offsets up to 1e6, scales 1e-3..1e3), gamma, dy, eps."""
    four_d = draw(st.booleans())
    n = draw(st.integers(2, 6))
    c = draw(st.integers(1, 3))
    shape = (n, c, draw(st.integers(1, 3)), draw(st.integers(1, 3))) if four_d else (n, c)
    unit = st.floats(-1.0, 1.0, allow_nan=False, width=64)
    z = draw(hnp.arrays(np.float64, shape, elements=unit, fill=st.nothing()))
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    assume(np.all(z.std(axis=axes) > 0.05))  # a non-degenerate spread in every channel
    offset = np.array(draw(st.lists(st.floats(-1e6, 1e6), min_size=c, max_size=c)))
    scale = 10.0 ** np.array(draw(st.lists(st.floats(-3, 3), min_size=c, max_size=c)))
    bs = (1, c) + (1,) * (len(shape) - 2)
    x = offset.reshape(bs) + scale.reshape(bs) * z
    gamma = np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=c, max_size=c)))
    gamma *= np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=c, max_size=c)))
    beta = np.array(draw(st.lists(st.floats(-10, 10), min_size=c, max_size=c)))
    dy = draw(hnp.arrays(np.float64, shape, elements=unit, fill=st.nothing()))
    eps = draw(st.sampled_from(eps_choices))
    return x, gamma, beta, dy, eps


def _unit(x, gamma, dy, eps):
    """Per-channel size of one term of dx, |gamma| / sqrt(var + eps) * max|dy|, from NumPy's own var."""
    axes = _axes(x)
    var = np.var(x, axis=axes)
    return np.abs(gamma) / np.sqrt(var + eps) * np.maximum(np.max(np.abs(dy), axis=axes), 1e-300)


PROPERTY = settings(max_examples=80, deadline=None)


@PROPERTY
@given(bn_cases())
def test_property_gradient_orthogonality(case):
    """Per channel: sum_i dx_i = 0 and sum_i dx_i xhat_i = gamma dgamma eps / (var + eps)^(3/2).

    The second sum is 0 for eps = 0; with eps > 0 the normalized values have variance
    var / (var + eps) < 1, which leaves that exact remainder (derived by hand, not from the code).
    The tolerance is a few hundred units of rounding of the size of one term.
    """
    x, gamma, beta, dy, eps = case
    axes, m = _axes(x), x.size // x.shape[1]
    _, cache = F.forward(x, gamma, beta, eps=eps)
    dx, dgamma, _ = F.backward(dy, cache)
    var = np.var(x, axis=axes)  # NumPy's (two-pass) variance, independent of bnlib
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(var + eps).reshape(_bs(x))
    unit = _unit(x, gamma, dy, eps)
    tol = 1e-13 * m * unit
    assert np.all(np.abs(dx.sum(axis=axes)) <= tol)
    expected = gamma * dgamma * eps / (var + eps) ** 1.5
    assert np.all(np.abs((dx * xhat).sum(axis=axes) - expected) <= tol * np.max(np.abs(xhat)))


@PROPERTY
@given(bn_cases(eps_choices=(0.0,)), st.lists(st.floats(-3, 3), min_size=3, max_size=3),
       st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3))
def test_property_invariant_under_affine_maps_of_x(case, log_a, c):
    """With eps = 0, y is unchanged by x -> a x + c per channel for a > 0 (a in 1e-3..1e3).

    Rounding x -> a x + c in float64 perturbs the input by about 1e-16 of its magnitude, so
    the tolerance grows with the condition number max|x| / std(x) of either input.
    """
    x, gamma, beta, _, eps = case
    ch = x.shape[1]
    a = (10.0 ** np.array(log_a[:ch])).reshape(_bs(x))
    shift = np.array(c[:ch]).reshape(_bs(x))
    x2 = a * x + shift
    axes = _axes(x)
    assume(np.all(np.std(x2, axis=axes) > 0))
    y1, _ = F.forward(x, gamma, beta, eps=eps)
    y2, _ = F.forward(x2, gamma, beta, eps=eps)
    kappa = np.max(np.abs(x), axis=axes) / np.std(x, axis=axes) + np.max(np.abs(x2), axis=axes) / np.std(x2, axis=axes)
    tol = (1e-14 * kappa + 1e-13) * np.abs(gamma) * x.size / ch
    assert np.all(np.max(np.abs(y1 - y2), axis=axes) <= tol)


@PROPERTY
@given(bn_cases())
def test_property_staged_equals_compact_and_nothing_mutated(case):
    x, gamma, beta, dy, eps = case
    originals = [a.copy() for a in (x, gamma, beta, dy)]
    y, cache = F.forward(x, gamma, beta, eps=eps)
    cache_copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in cache.items()}
    dx_c, dg_c, db_c = F.backward(dy, cache)
    dx_s, dg_s, db_s = F.backward_staged(dy, cache)
    unit = _unit(x, gamma, dy, eps).reshape(_bs(x))
    m = x.size // x.shape[1]
    assert np.all(np.abs(dx_c - dx_s) <= 1e-12 * m * unit)
    np.testing.assert_allclose(dg_c, dg_s, rtol=1e-12, atol=1e-12 * m)
    np.testing.assert_array_equal(db_c, db_s)
    np.testing.assert_allclose(db_c, dy.sum(axis=_axes(x)), rtol=1e-12, atol=1e-12 * m)
    F.inference(x, cache["mu"], cache["var"], gamma, beta, eps=max(eps, 1e-12))
    for a, b in zip((x, gamma, beta, dy), originals, strict=True):
        np.testing.assert_array_equal(a, b)
    for k, v in cache_copy.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(cache[k], v)


@PROPERTY
@given(bn_cases())
def test_property_normalized_output_statistics(case):
    """y has per-channel mean beta and standard deviation |gamma| sqrt(var / (var + eps))."""
    x, gamma, beta, _, eps = case
    axes = _axes(x)
    y, _ = F.forward(x, gamma, beta, eps=eps)
    var = np.var(x, axis=axes)
    assert np.all(np.abs(y.mean(axis=axes) - beta) <= 1e-12 * (np.abs(gamma) + np.abs(beta)))
    np.testing.assert_allclose(y.std(axis=axes), np.abs(gamma) * np.sqrt(var / (var + eps)), rtol=1e-9)


# --------------------------------------------------------------------------- running statistics
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 3)])
def test_update_running_torch_convention_matches_torch_batchnorm(momentum, shape):
    """Over several batches, the running statistics equal those torch.nn.BatchNorm keeps."""
    bn = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
        shape[1], momentum=momentum, dtype=torch.float64
    )
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    rng = np.random.default_rng(4)
    for k in range(1, 8):
        x = rng.normal(2.0, 3.0, size=shape)
        bn(torch.tensor(x))
        _, cache = F.forward(x, np.ones(shape[1]), np.zeros(shape[1]))
        rm, rv = F.update_running(rm, rv, cache["mu"], cache["var"], cache["m"], momentum=momentum,
                                  num_batches_tracked=k)
        np.testing.assert_allclose(rm, bn.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rv, bn.running_var.numpy(), rtol=1e-12)


def _keras_assign_moving_average(variable, value, decay):
    """Keras/TensorFlow's written rule (tf.keras BatchNormalization via assign_moving_average):
    variable <- variable - (variable - value) * (1 - decay)."""
    return variable - (variable - value) * (1.0 - decay)


@pytest.mark.parametrize("momentum", [0.99, 0.9, 0.0, 1.0])
def test_update_running_keras_convention_is_its_written_rule(momentum):
    rng = np.random.default_rng(5)
    rm, rv = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    ref_m, ref_v = rm.copy(), rv.copy()
    for _ in range(5):
        x = rng.normal(1.0, 2.0, size=(16, 4))
        bm, bv = x.mean(axis=0), x.var(axis=0)  # tf.nn.moments: the biased variance
        rm, rv = F.update_running(rm, rv, bm, bv, 16, momentum=momentum, convention="keras")
        ref_m = _keras_assign_moving_average(ref_m, bm, momentum)
        ref_v = _keras_assign_moving_average(ref_v, bv, momentum)
        np.testing.assert_allclose(rm, ref_m, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(rv, ref_v, rtol=1e-13)


@pytest.mark.parametrize("p", [0.1, 0.01, 0.3])
def test_keras_momentum_is_one_minus_torch_momentum(p):
    """torch(momentum=p) == keras(momentum=1-p) once the batch variance is made unbiased by n/(n-1)."""
    rng = np.random.default_rng(6)
    rm, rv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    n = 10
    bm, bv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    tm, tv = F.update_running(rm, rv, bm, bv, n, momentum=p)
    km, kv = F.update_running(rm, rv, bm, bv * n / (n - 1), n, momentum=1 - p, convention="keras")
    np.testing.assert_allclose(tm, km, rtol=1e-14)
    np.testing.assert_allclose(tv, kv, rtol=1e-14)
    # without the correction the variances differ by exactly p * bv / (n - 1)
    _, kv_biased = F.update_running(rm, rv, bm, bv, n, momentum=1 - p, convention="keras")
    np.testing.assert_allclose(tv - kv_biased, p * bv / (n - 1), rtol=1e-10)


def test_update_running_cumulative_average_is_the_plain_mean():
    rng = np.random.default_rng(7)
    means, vars_ = rng.normal(size=(6, 2)), rng.uniform(0.5, 2.0, size=(6, 2))
    rm, rv = np.zeros(2), np.ones(2)
    for k in range(6):
        rm, rv = F.update_running(rm, rv, means[k], vars_[k], 5, momentum=None, num_batches_tracked=k + 1)
    np.testing.assert_allclose(rm, means.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(rv, (vars_ * 5 / 4).mean(axis=0), rtol=1e-13)


def test_update_running_keeps_float32():
    z = np.zeros(2, np.float32)
    o = np.ones(2, np.float32)
    rm, rv = F.update_running(z, o, o, o, 4)
    assert rm.dtype == rv.dtype == np.float32


def test_population_stats_is_algorithm_2():
    """E[x] = mean of the batch means; Var[x] = m/(m-1) mean of the biased batch variances,
    i.e. the mean of NumPy's unbiased (ddof=1) batch variances."""
    rng = np.random.default_rng(8)
    batches = rng.normal(3.0, 2.0, size=(50, 16, 4))  # K=50 batches of m=16 examples, 4 features
    means = batches.mean(axis=1)
    biased = batches.var(axis=1)
    mean, var = F.population_stats(means, biased, 16)
    np.testing.assert_allclose(mean, batches.reshape(-1, 4).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, batches.var(axis=1, ddof=1).mean(axis=0), rtol=1e-12)
    # and it estimates the population: N(3, 2^2)
    np.testing.assert_allclose(mean, 3.0, atol=0.2)
    np.testing.assert_allclose(var, 4.0, rtol=0.15)


# --------------------------------------------------------------------------- folding
@pytest.mark.parametrize("bias", [True, False])
def test_fold_linear_equals_linear_then_bn_in_eval(bias):
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 4, bias=bias, dtype=torch.float64)
    bn = torch.nn.BatchNorm1d(4, eps=1e-3, dtype=torch.float64)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.normal_()
        bn.bias.normal_()
    bn.eval()
    x = torch.randn(7, 5, dtype=torch.float64)
    ref = bn(lin(x)).detach().numpy()
    b = lin.bias.detach().numpy() if bias else None
    W2, b2 = F.fold_linear(lin.weight.detach().numpy(), b, bn.running_mean.numpy(), bn.running_var.numpy(),
                           bn.weight.detach().numpy(), bn.bias.detach().numpy(), eps=1e-3)
    assert rel_err(x.numpy() @ W2.T + b2, ref) <= 1e-12
    # and the same numbers as torch's own fusion helper
    if bias:
        from torch.nn.utils.fusion import fuse_linear_bn_weights

        tw, tb = fuse_linear_bn_weights(lin.weight, lin.bias, bn.running_mean, bn.running_var, 1e-3,
                                        bn.weight, bn.bias)
        assert rel_err(W2, tw.detach().numpy()) <= 1e-13
        assert rel_err(b2, tb.detach().numpy()) <= 1e-13


@pytest.mark.parametrize("bias", [True, False])
def test_fold_conv_equals_conv_then_bn_in_eval(bias):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=bias, dtype=torch.float64)
    bn = torch.nn.BatchNorm2d(4, dtype=torch.float64)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.normal_()
        bn.bias.normal_()
    bn.eval()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    ref = bn(conv(x)).detach().numpy()
    b = conv.bias.detach().numpy() if bias else None
    W2, b2 = F.fold_conv(conv.weight.detach().numpy(), b, bn.running_mean.numpy(), bn.running_var.numpy(),
                         bn.weight.detach().numpy(), bn.bias.detach().numpy())
    out = torch.nn.functional.conv2d(x, torch.tensor(W2), torch.tensor(b2), padding=1).numpy()
    assert rel_err(out, ref) <= 1e-12


def test_fold_keeps_float32():
    W = np.ones((2, 3), np.float32)
    W2, b2 = F.fold_linear(W, None, np.zeros(2), np.ones(2), np.ones(2), np.zeros(2))
    assert W2.dtype == b2.dtype == np.float32


# --------------------------------------------------------------------------- bad input
def _ok():
    x, gamma, beta, dy = _data((4, 3))
    return x, gamma, beta, dy


def _cache():
    x, gamma, beta, _ = _ok()
    return F.forward(x, gamma, beta)[1]


def _nan_x():
    x = _ok()[0]
    x[1, 2] = np.nan
    return x


def _inf_x():
    x = _ok()[0]
    x[0, 0] = np.inf
    return x


BAD = {
    "x not an array": (lambda: F.forward([[1.0, 2.0], [3.0, 4.0]], np.ones(2), np.zeros(2)), TypeError,
                       "x must be a NumPy array"),
    "integer x": (lambda: F.forward(np.arange(6).reshape(3, 2), np.ones(2), np.zeros(2)), TypeError,
                  "dtype float32 or float64, got int64"),
    "float16 x": (lambda: F.forward(np.ones((3, 2), np.float16), np.ones(2), np.zeros(2)), TypeError, "float16"),
    "1-D x": (lambda: F.forward(np.ones(5), np.ones(1), np.zeros(1)), ValueError, r"shape \(N, C\) or \(N, C, H, W\)"),
    "3-D x": (lambda: F.forward(np.ones((2, 3, 4)), np.ones(3), np.zeros(3)), ValueError, "got 3 dimensions"),
    "no channels": (lambda: F.forward(np.ones((2, 0)), np.ones(0), np.zeros(0)), ValueError, "at least one channel"),
    "gamma shape": (lambda: F.forward(_ok()[0], np.ones(4), np.zeros(3)), ValueError, r"gamma must have shape \(3,\)"),
    "beta shape": (lambda: F.forward(_ok()[0], np.ones(3), np.zeros((3, 1))), ValueError,
                   r"beta must have shape \(3,\)"),
    "gamma list": (lambda: F.forward(_ok()[0], [1.0, 1.0, 1.0], np.zeros(3)), TypeError, "gamma must be a NumPy"),
    "gamma NaN": (lambda: F.forward(_ok()[0], np.array([1.0, np.nan, 1.0]), np.zeros(3)), ValueError,
                  "gamma contains NaN"),
    "one value per channel (2-D)": (lambda: F.forward(np.ones((1, 3)), np.ones(3), np.zeros(3)), ValueError,
                                    "more than 1 value per channel"),
    "one value per channel (4-D)": (lambda: F.forward(np.ones((1, 3, 1, 1)), np.ones(3), np.zeros(3)), ValueError,
                                    "more than 1 value per channel"),
    "NaN in x": (lambda: F.forward(_nan_x(), np.ones(3), np.zeros(3)), ValueError, "x contains NaN or infinite"),
    "inf in x": (lambda: F.forward(_inf_x(), np.ones(3), np.zeros(3)), ValueError, "x contains NaN or infinite"),
    "overflowing variance": (lambda: F.forward(np.array([[1e200], [-1e200]]), np.ones(1), np.zeros(1)), ValueError,
                             "overflow"),
    "negative eps": (lambda: F.forward(_ok()[0], np.ones(3), np.zeros(3), eps=-1.0), ValueError, "eps must be"),
    "constant channel with eps 0": (lambda: F.forward(np.ones((3, 2)), np.ones(2), np.zeros(2), eps=0.0), ValueError,
                                    "constant"),
    "dy shape": (lambda: F.backward(np.ones((4, 2)), _cache()), ValueError, "dy must have the shape"),
    "dy dtype": (lambda: F.backward(np.ones((4, 3), np.float32), _cache()), TypeError, "dy must have the dtype"),
    "dy NaN": (lambda: F.backward(np.full((4, 3), np.nan), _cache()), ValueError, "dy contains NaN"),
    "dy NaN staged": (lambda: F.backward_staged(np.full((4, 3), np.inf), _cache()), ValueError, "dy contains NaN"),
    "inference NaN": (lambda: F.inference(_nan_x(), np.zeros(3), np.ones(3), np.ones(3), np.zeros(3)), ValueError,
                      "x contains NaN"),
    "inference negative var": (lambda: F.inference(_ok()[0], np.zeros(3), -np.ones(3), np.ones(3), np.zeros(3)),
                               ValueError, "non-negative"),
    "inference var shape": (lambda: F.inference(_ok()[0], np.zeros(3), np.ones(2), np.ones(3), np.zeros(3)),
                            ValueError, r"var must have shape \(3,\)"),
    "update convention": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 4,
                                                   convention="tf"), ValueError, "convention must be"),
    "update momentum range": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 4,
                                                       momentum=1.5), ValueError, r"momentum must lie in \[0, 1\]"),
    "update momentum type": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 4,
                                                      momentum="0.1"), TypeError, "momentum must be a number"),
    "update n": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 1), ValueError,
                 "n must be an integer of at least 2"),
    "update shapes": (lambda: F.update_running(np.zeros(2), np.ones(3), np.zeros(2), np.ones(2), 4), ValueError,
                      "same shape"),
    "update cumulative without count": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 4,
                                                                 momentum=None), ValueError, "num_batches_tracked"),
    "update keras cumulative": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 4,
                                                         momentum=None, convention="keras"), ValueError,
                                "PyTorch's convention"),
    "update NaN": (lambda: F.update_running(np.zeros(2), np.ones(2), np.array([0.0, np.nan]), np.ones(2), 4),
                   ValueError, "batch_mean contains NaN"),
    "update negative var": (lambda: F.update_running(np.zeros(2), np.ones(2), np.zeros(2), -np.ones(2), 4),
                            ValueError, "non-negative"),
    "population shapes": (lambda: F.population_stats(np.zeros((3, 2)), np.ones((3, 3)), 4), ValueError,
                          r"shape \(K, C\)"),
    "population m": (lambda: F.population_stats(np.zeros((3, 2)), np.ones((3, 2)), 1), ValueError,
                     "m must be an integer"),
    "fold_linear ndim": (lambda: F.fold_linear(np.ones((2, 3, 1)), None, np.zeros(2), np.ones(2), np.ones(2),
                                               np.zeros(2)), ValueError, "out_features, in_features"),
    "fold_conv ndim": (lambda: F.fold_conv(np.ones((2, 3)), None, np.zeros(2), np.ones(2), np.ones(2), np.zeros(2)),
                       ValueError, "out_channels, in_channels, kh, kw"),
    "fold channel mismatch": (lambda: F.fold_linear(np.ones((2, 3)), None, np.zeros(3), np.ones(2), np.ones(2),
                                                    np.zeros(2)), ValueError, r"mean must have shape \(2,\)"),
    "fold negative var": (lambda: F.fold_linear(np.ones((2, 3)), None, np.zeros(2), -np.ones(2), np.ones(2),
                                                np.zeros(2)), ValueError, "non-negative"),
    "fold integer W": (lambda: F.fold_linear(np.ones((2, 3), int), None, np.zeros(2), np.ones(2), np.ones(2),
                                             np.zeros(2)), TypeError, "W must have dtype"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_raises_one_clear_sentence(name, raises_one_sentence):
    raises_one_sentence(*BAD[name])
