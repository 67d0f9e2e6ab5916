"""bnlib.nn.BatchNorm against torch.nn.BatchNorm1d/2d (the reference), torch autograd and
finite differences (gradcheck); running statistics against the PyTorch and Keras rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnlib import functional as F
from bnlib.nn import BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, BatchNormFunction, batch_norm

TOL32 = {"rtol": 1e-6, "atol": 1e-6}


def assert_close32(a: torch.Tensor, b: torch.Tensor, floor: float = 0.0) -> None:
    """Equal to 1e-6 in float32, normwise: max |a - b| <= 1e-6 max(max |b|, floor).

    Elementwise relative error is the wrong yardstick for sums over a batch: the two
    implementations add the same terms in different orders (torch's CPU kernel accumulates
    in float64, bnlib in float32), and a sum that cancels to a small value keeps the rounding
    of its large terms. ``floor`` is the size of those terms (see :func:`_floors`).
    """
    assert a.shape == b.shape and a.dtype == b.dtype
    err = (a - b).abs().max().item()
    assert err <= 1e-6 * max(b.abs().max().item(), floor), f"max abs. difference {err:.3g}, scale {b.abs().max():.3g}"


def _torch_bn(shape, **kwargs) -> torch.nn.Module:
    return (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(shape[1], **kwargs)


def _pair(shape, seed=0, **kwargs):
    """bnlib's and torch's BN with the same (random) affine parameters."""
    ref = _torch_bn(shape, **kwargs)
    ours = BatchNorm(shape[1], **kwargs)
    if ref.affine:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            ref.weight.copy_(1.0 + 0.5 * torch.randn(shape[1], generator=g))
            ref.bias.copy_(torch.randn(shape[1], generator=g))
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _batch(shape, g: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    c = shape[1]
    bs = (1, c) + (1,) * (len(shape) - 2)
    scale = torch.rand(c, generator=g).add(0.5).view(bs)
    offset = torch.randn(c, generator=g).mul(2.0).view(bs)
    return (torch.randn(shape, generator=g) * scale + offset).to(dtype)


def _floors(module, x, w) -> tuple[float, float, float]:
    """Sizes of the terms that the input, weight and bias gradients sum (where they can cancel):
    max |gamma| / sqrt(var + eps) * max |w| for dx; max over channels of sum_i |w_i xhat_i| for
    dgamma and of sum_i |w_i| for dbeta."""
    dims = [0] + list(range(2, x.dim()))
    x64, w64 = x.double(), w.double()
    batch = module.training or not module.track_running_stats
    mean = x64.mean(dims) if batch else module.running_mean.double()
    var = x64.var(dims, correction=0) if batch else module.running_var.double()
    shape = (1, -1) + (1,) * (x.dim() - 2)
    xhat = (x64 - mean.view(shape)) / torch.sqrt(var.view(shape) + module.eps)
    gamma = module.weight.abs().max().item() if module.weight is not None else 1.0
    dx = gamma * (var.min().item() + module.eps) ** -0.5 * w.abs().max().item()
    return dx, (w64 * xhat).abs().sum(dims).max().item(), w64.abs().sum(dims).max().item()


def _step(module, x, w, opt):
    """Forward, loss sum(y * w), backward, SGD step; returns y and the gradients."""
    x = x.clone().requires_grad_(True)
    opt.zero_grad(set_to_none=True) if opt is not None else None
    y = module(x)
    (y * w).sum().backward()
    grads = [x.grad] + ([module.weight.grad.clone(), module.bias.grad.clone()] if module.weight is not None else [])
    if opt is not None:
        opt.step()
    return y.detach(), grads


CONFIGS = [
    # (shape, momentum, affine, track_running_stats)
    ((32, 5), 0.1, True, True),
    ((2, 5), 0.1, True, True),
    ((16, 4, 7), 0.1, True, True),
    ((8, 3, 5, 4), 0.1, True, True),
    ((8, 3, 5, 4), None, True, True),
    ((32, 5), None, True, True),
    ((16, 6), 0.5, False, True),
    ((8, 3, 4, 4), 0.1, True, False),
    ((12, 4), 0.1, False, False),
]


@pytest.mark.parametrize("shape,momentum,affine,track", CONFIGS)
def test_matches_torch_over_20_training_steps_then_eval(shape, momentum, affine, track):
    """Outputs, input and parameter gradients, running statistics and counter equal torch's to
    1e-6 in float32 at each of 20 SGD steps, then in eval mode."""
    ours, ref = _pair(shape, momentum=momentum, affine=affine, track_running_stats=track)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.1) if affine else None
    opt_r = torch.optim.SGD(ref.parameters(), lr=0.1) if affine else None
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        x, w = _batch(shape, g), torch.randn(shape, generator=g)
        floors = _floors(ref, x, w)
        y_o, grads_o = _step(ours, x, w, opt_o)
        y_r, grads_r = _step(ref, x, w, opt_r)
        assert_close32(y_o, y_r)
        for a, b, floor in zip(grads_o, grads_r, floors, strict=False):
            assert_close32(a, b, floor)
        if track:
            assert_close32(ours.running_mean, ref.running_mean)
            assert_close32(ours.running_var, ref.running_var)
            assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)
    for sd_o, sd_r in zip(ours.state_dict().values(), ref.state_dict().values(), strict=True):
        assert_close32(sd_o.float(), sd_r.float())
    ours.eval()
    ref.eval()
    for _ in range(3):
        x, w = _batch(shape, g), torch.randn(shape, generator=g)
        floors = _floors(ref, x, w)
        y_o, grads_o = _step(ours, x, w, None)
        y_r, grads_r = _step(ref, x, w, None)
        assert_close32(y_o, y_r)
        for a, b, floor in zip(grads_o, grads_r, floors, strict=False):
            assert_close32(a, b, floor)
    if track:  # eval mode leaves the statistics alone
        assert_close32(ours.running_mean, ref.running_mean)
        assert int(ours.num_batches_tracked) == 20


def test_eval_accepts_a_single_example():
    ours, ref = _pair((4, 3))
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        x = _batch((16, 3), g)
        ours(x)
        ref(x)
    ours.eval()
    ref.eval()
    x = _batch((1, 3), g)
    assert_close32(ours(x), ref(x))


@pytest.mark.parametrize("shape", [(2, 3), (5, 4), (2, 3, 4), (2, 2, 3, 3), (3, 2, 1, 2)])
def test_function_matches_torch_autograd_float64(shape):
    """BatchNormFunction's hand-derived backward vs autograd through Algorithm 1, rel. error <= 1e-10."""
    g = torch.Generator().manual_seed(3)
    x = _batch(shape, g, torch.float64).requires_grad_(True)
    gamma = torch.randn(shape[1], generator=g, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(shape[1], generator=g, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    m = x.numel() // shape[1]
    mean, var = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    y = BatchNormFunction.apply(x, gamma, beta, 1e-5, mean, var, 1.0)[0]  # factor 1: the batch statistics
    assert "BatchNormFunction" in type(y.grad_fn).__name__  # the gradient is ours, not autograd's
    grads = torch.autograd.grad(y, (x, gamma, beta), dy)
    dims = [0] + list(range(2, len(shape)))
    bs = (1, shape[1]) + (1,) * (len(shape) - 2)
    mu = x.mean(dims, keepdim=True)
    v = ((x - mu) ** 2).mean(dims, keepdim=True)
    y_ref = gamma.view(bs) * (x - mu) / torch.sqrt(v + 1e-5) + beta.view(bs)
    grads_ref = torch.autograd.grad(y_ref, (x, gamma, beta), dy)

    def rel(a, b, floor=0.0):
        return ((a - b).abs().max() / max(b.abs().max().item(), floor)).item()

    assert rel(y, y_ref) <= 1e-10
    assert rel(mean, mu.view(-1)) <= 1e-10 and rel(var, v.view(-1) * m / (m - 1)) <= 1e-10  # unbiased
    term = (gamma.abs().max() / torch.sqrt(v.min() + 1e-5) * dy.abs().max()).item()  # see test_functional
    assert rel(grads[0], grads_ref[0], floor=term) <= 1e-10
    assert rel(grads[1], grads_ref[1]) <= 1e-10
    assert rel(grads[2], grads_ref[2]) <= 1e-10
    if len(shape) == 3:
        return  # bnlib.functional takes (N, C) and (N, C, H, W) only
    # and bnlib.functional gives the same numbers
    _, cache = F.forward(x.detach().numpy(), gamma.detach().numpy(), beta.detach().numpy())
    for a, b in zip(F.backward(dy.numpy(), cache), grads, strict=True):
        assert np.max(np.abs(a - b.numpy())) <= 1e-10 * max(np.max(np.abs(b.numpy())), term)


@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_against_finite_differences(affine):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    if affine:
        w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
        b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    else:
        w = b = None
    assert torch.autograd.gradcheck(lambda *a: BatchNormFunction.apply(*a, 1e-3)[0], (x, w, b), check_forward_ad=True)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2)])
@pytest.mark.parametrize("parts", ["weight only", "bias only"])
def test_half_affine_matches_torch_functional(shape, parts):
    """weight without bias and bias without weight (torch.nn.functional.batch_norm allows both):
    outputs and gradients against torch's functional BN in float64."""
    g = torch.Generator().manual_seed(12)
    x = _batch(shape, g, torch.float64).requires_grad_(True)
    p = torch.randn(shape[1], generator=g, dtype=torch.float64, requires_grad=True)
    w, b = (p, None) if parts == "weight only" else (None, p)
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    y = batch_norm(x, None, None, w, b, True, 0.1, 1e-5)
    y_ref = torch.nn.functional.batch_norm(x, None, None, w, b, True, 0.1, 1e-5)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    for a, r in zip(torch.autograd.grad(y, (x, p), dy), torch.autograd.grad(y_ref, (x, p), dy), strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)


def test_output_without_affine_may_be_modified_in_place():
    """Without the affine part the output is not the saved xhat itself, so an in-place op after the
    layer (nn.ReLU(inplace=True), common after BN) leaves the gradient right, as torch's."""
    g = torch.Generator().manual_seed(13)
    x = _batch((4, 3, 2, 2), g).requires_grad_(True)
    grads = []
    for layer in (BatchNorm(3, affine=False), torch.nn.BatchNorm2d(3, affine=False)):
        y = torch.relu_(layer(x))
        grads.append(torch.autograd.grad((y * y).sum(), x)[0])
    assert_close32(grads[0], grads[1])


def test_function_refuses_one_value_per_channel(raises_one_sentence):
    raises_one_sentence(lambda: BatchNormFunction.apply(torch.randn(1, 3), None, None, 1e-5)[0], ValueError,
                        "at least two values per channel")


def test_under_vmap_the_call_is_refused_by_torch():
    """Under vmap BatchNormFunction.apply refuses (it has no vmap rule) with PyTorch's own message
    instead of running the Function on batched wrappers."""
    bn = BatchNorm(3, track_running_stats=False)
    with pytest.raises(RuntimeError, match="vmap"):
        torch.func.vmap(bn)(torch.randn(2, 4, 3))


def test_gradient_needs_only_what_is_asked():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 3, generator=g)
    bn = BatchNorm(3)
    bn(x).sum().backward()  # x does not require grad: parameter gradients only
    assert bn.weight.grad is not None and x.grad is None
    torch.testing.assert_close(bn.bias.grad, torch.full((3,), 6.0))


def test_running_stats_follow_the_keras_rule_with_one_minus_momentum():
    """The module's running statistics (PyTorch, momentum p) equal Keras' rule with momentum 1 - p
    applied to the batch mean and the unbiased batch variance."""
    p = 0.2
    bn = BatchNorm(4, momentum=p, dtype=torch.float64)
    rm, rv = np.zeros(4), np.ones(4)
    g = torch.Generator().manual_seed(6)
    for _ in range(20):
        x = _batch((10, 4), g, torch.float64)
        bn(x)
        xn = x.numpy()
        rm, rv = F.update_running(rm, rv, xn.mean(0), xn.var(0, ddof=1), 10, momentum=1 - p, convention="keras")
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-12)


def test_momentum_none_is_the_cumulative_average():
    bn = BatchNorm(2, momentum=None, dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    xs = [_batch((8, 2), g, torch.float64) for _ in range(20)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.numpy().mean(0) for x in xs], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean([x.numpy().var(0, ddof=1) for x in xs], axis=0),
                               rtol=1e-12)


def test_state_dict_interchangeable_with_torch():
    for shape in ((4, 3), (2, 3, 2, 2)):
        ours, ref = _pair(shape)
        g = torch.Generator().manual_seed(8)
        for _ in range(3):
            ours(_batch(shape, g))
        assert list(ours.state_dict()) == list(ref.state_dict())
        ref.load_state_dict(ours.state_dict())  # strict: same keys, shapes, dtypes
        ours2 = BatchNorm(shape[1])
        ours2.load_state_dict(ref.state_dict())
        for a, b in zip(ours2.state_dict().values(), ours.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert list(BatchNorm(3, affine=False, track_running_stats=False).state_dict()) == list(
        torch.nn.BatchNorm1d(3, affine=False, track_running_stats=False).state_dict()
    )


def test_nan_input_is_propagated_per_channel_as_torch_does():
    """Documented result: no check (it would cost a pass and a sync); a NaN makes its channel's
    output, gradients and running statistics NaN and leaves the other channels as torch leaves them."""
    ours, ref = _pair((6, 3))
    x = _batch((6, 3), torch.Generator().manual_seed(9))
    x[2, 1] = float("nan")
    w = torch.randn(6, 3, generator=torch.Generator().manual_seed(10))
    y_o, grads_o = _step(ours, x, w, None)
    y_r, grads_r = _step(ref, x, w, None)
    assert torch.isnan(y_o[:, 1]).all() and not torch.isnan(y_o[:, [0, 2]]).any()
    torch.testing.assert_close(y_o, y_r, equal_nan=True, **TOL32)
    for a, b in zip(grads_o, grads_r, strict=True):
        torch.testing.assert_close(a, b, equal_nan=True, **TOL32)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, equal_nan=True, **TOL32)
    assert torch.isnan(ours.running_var[1]) and not torch.isnan(ours.running_var[[0, 2]]).any()


def test_functional_batch_norm_matches_torch_functional():
    g = torch.Generator().manual_seed(11)
    x = _batch((5, 3, 4), g)
    w, b = torch.randn(3, generator=g), torch.randn(3, generator=g)
    rm_o, rv_o = torch.zeros(3), torch.ones(3)
    rm_r, rv_r = torch.zeros(3), torch.ones(3)
    for training in (True, False):
        y_o = batch_norm(x, rm_o, rv_o, w, b, training, 0.3, 1e-5)
        y_r = torch.nn.functional.batch_norm(x, rm_r, rv_r, w, b, training, 0.3, 1e-5)
        assert_close32(y_o, y_r)
        assert_close32(rm_o, rm_r)
        assert_close32(rv_o, rv_r)


def test_repr_and_reset():
    bn = BatchNorm(3, momentum=None)
    assert repr(bn) == "BatchNorm(3, eps=1e-05, momentum=None, affine=True, bias=True, track_running_stats=True)"
    assert repr(bn)[len("BatchNorm"):] == repr(torch.nn.BatchNorm1d(3, momentum=None))[len("BatchNorm1d"):]
    bn(torch.randn(4, 3))
    bn.reset_running_stats()
    assert int(bn.num_batches_tracked) == 0 and torch.equal(bn.running_var, torch.ones(3))


BAD = {
    "numpy input": (lambda: BatchNorm(3)(np.ones((4, 3), np.float32)), TypeError, "expects a torch.Tensor"),
    "1-D input": (lambda: BatchNorm(3)(torch.ones(3)), ValueError, "got 1-D input"),
    "6-D input": (lambda: BatchNorm(3)(torch.ones(2, 3, 2, 2, 2, 2)), ValueError, "got 6-D input"),
    "4-D input to BatchNorm1d": (lambda: BatchNorm1d(3)(torch.ones(2, 3, 2, 2)), ValueError,
                                 r"BatchNorm1d expects input of shape \(N, C\) or \(N, C, L\), got 4-D"),
    "3-D input to BatchNorm2d": (lambda: BatchNorm2d(3)(torch.ones(2, 3, 2)), ValueError,
                                 r"BatchNorm2d expects input of shape \(N, C, H, W\), got 3-D"),
    "4-D input to BatchNorm3d": (lambda: BatchNorm3d(3)(torch.ones(2, 3, 2, 2)), ValueError,
                                 r"BatchNorm3d expects input of shape \(N, C, D, H, W\), got 4-D"),
    "wrong channels": (lambda: BatchNorm(3)(torch.ones(4, 5)), ValueError, "has 3 features but the input has 5"),
    "integer input": (lambda: BatchNorm(3)(torch.ones(4, 3, dtype=torch.int64)), TypeError, "floating-point"),
    "mixed dtype": (lambda: BatchNorm(3)(torch.ones(4, 3, dtype=torch.float64)), TypeError,
                    "float32 but the input is torch.float64"),
    "one value per channel (2-D)": (lambda: BatchNorm(3)(torch.ones(1, 3)), ValueError,
                                    "more than 1 value per channel"),
    "one value per channel (4-D)": (lambda: BatchNorm(3)(torch.ones(1, 3, 1, 1)), ValueError,
                                    "more than 1 value per channel"),
    "one value, no running stats, eval": (
        lambda: BatchNorm(3, track_running_stats=False).eval()(torch.ones(1, 3)), ValueError,
        "more than 1 value per channel"),
    "num_features": (lambda: BatchNorm(0), ValueError, "num_features must be a positive integer"),
    "momentum as a string": (lambda: BatchNorm(3, momentum="0.1"), TypeError, "momentum must be a real number"),
    "eps": (lambda: BatchNorm(3, eps=-1.0), ValueError, "eps must be non-negative"),
    "infinite eps": (lambda: BatchNorm(3, eps=float("inf")), ValueError, "eps must be a finite number"),
    "NaN eps": (lambda: BatchNorm(3, eps=float("nan")), ValueError, "eps must be a finite number"),
    "eps as a string": (lambda: BatchNorm(3, eps="1e-5"), TypeError, "eps must be a real number"),
    "eps=0 in training": (lambda: BatchNorm(3, eps=0.0)(torch.ones(4, 3)), ValueError,
                          "eps must be positive during training, got 0.0"),
    "functional eps=-1 in eval": (lambda: batch_norm(torch.ones(4, 3), torch.zeros(3), torch.ones(3), eps=-1.0),
                                  ValueError, "eps must be non-negative, got -1.0"),
    "functional eps=-1 in training": (lambda: batch_norm(torch.ones(4, 3), None, None, training=True, eps=-1.0),
                                      ValueError, "eps must be positive during training"),
    "negative running_var in eval": (
        lambda: batch_norm(torch.ones(4, 3), torch.zeros(3), torch.tensor([1.0, -1.0, 1.0])), ValueError,
        "running_var must be non-negative"),
    "functional numpy input": (lambda: batch_norm(np.ones((4, 3), np.float32), None, None, training=True), TypeError,
                               "expects input to be a torch.Tensor, got ndarray"),
    "functional numpy weight": (lambda: batch_norm(torch.ones(4, 3), None, None, np.ones(3), training=True),
                                TypeError, "expects weight to be a torch.Tensor or None, got ndarray"),
    "functional momentum as a string": (
        lambda: batch_norm(torch.ones(4, 3), None, None, training=True, momentum="0.1"), TypeError,
        "momentum must be a real number"),
    "functional integer input": (lambda: batch_norm(torch.ones(4, 3, dtype=torch.int64), None, None, training=True),
                                 TypeError, "floating-point input"),
    "functional one running statistic": (lambda: batch_norm(torch.ones(4, 3), torch.zeros(3), None, training=True),
                                         ValueError, "must be given together"),
    "functional mixed dtypes": (lambda: batch_norm(torch.ones(4, 3, dtype=torch.float64), None, None,
                                                   torch.ones(3), training=True), TypeError,
                                "weight is torch.float32 but the input is torch.float64"),
    "functional weight shape": (lambda: batch_norm(torch.ones(4, 3), None, None, torch.ones(2), None, True, 0.1, 1e-5),
                                ValueError, r"weight must have 3 values, one per channel"),
    "functional eval without stats": (lambda: batch_norm(torch.ones(4, 3), None, None, None, None, False, 0.1, 1e-5),
                                      ValueError, "needs running_mean and running_var"),
    "functional cumulative without count": (
        lambda: batch_norm(torch.ones(4, 3), torch.zeros(3), torch.ones(3), None, None, True, None, 1e-5),
        ValueError, "num_batches_tracked"),
    "functional 0-D input": (lambda: batch_norm(torch.tensor(1.0), None, None, training=True), ValueError,
                             r"expects input of shape \(N, C, ...\)"),
    "functional one value per channel": (lambda: batch_norm(torch.ones(1, 3, 1), None, None, training=True),
                                         ValueError, "more than 1 value per channel"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_raises_one_clear_sentence(name, raises_one_sentence):
    raises_one_sentence(*BAD[name])


# --------------------------------------------------------------------------- drop-in for torch: what issue 18 found


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_second_derivatives_against_finite_differences(shape, affine):
    """create_graph=True: the backward is evaluated with differentiable ops, so gradgradcheck holds in training."""
    g = torch.Generator().manual_seed(20)
    x = _batch(shape, g, torch.float64).requires_grad_(True)
    params = [torch.randn(shape[1], generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    inputs = (x, *params) if affine else (x,)

    def f(x, w=None, b=None):
        return batch_norm(x, torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64),
                          w, b, training=True, eps=1e-3)

    assert torch.autograd.gradgradcheck(f, inputs)
    # and the second derivative equals torch's own
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    seconds = []
    for fn in (batch_norm, torch.nn.functional.batch_norm):
        y = fn(x, None, None, *(params if affine else ()), training=True, eps=1e-3)
        (gx,) = torch.autograd.grad(y, x, dy, create_graph=True)
        seconds.append(torch.autograd.grad((gx * gx).sum(), inputs, allow_unused=True, materialize_grads=True))
    for a, b in zip(*seconds, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2), (2, 3, 2, 2, 2)])
def test_forward_mode_ad_equals_torchs(shape, training):
    """torch.func.jvp and torch.autograd.forward_ad through bnlib's batch_norm equal torch's jvp of its own,
    with tangents on the input, weight and bias. In eval mode bnlib also takes tangents on the running
    statistics (torch refuses them): checked against the jvp of the explicit formula with torch ops."""
    g = torch.Generator().manual_seed(21)
    c = shape[1]
    x = _batch(shape, g, torch.float64)
    w, b = torch.randn(c, generator=g, dtype=torch.float64), torch.randn(c, generator=g, dtype=torch.float64)
    rm, rv = torch.randn(c, generator=g, dtype=torch.float64), torch.rand(c, generator=g, dtype=torch.float64) + 0.5
    primals = (x, w, b)
    tangents = tuple(torch.randn(p.shape, generator=g, dtype=torch.float64) for p in primals)

    def call(fn):
        return lambda x, w, b: fn(x, rm.clone(), rv.clone(), w, b, training=training, eps=1e-3)

    y_o, t_o = torch.func.jvp(call(batch_norm), primals, tangents)
    y_r, t_r = torch.func.jvp(call(torch.nn.functional.batch_norm), primals, tangents)
    torch.testing.assert_close(y_o, y_r, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(t_o, t_r, rtol=1e-10, atol=1e-10)
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        duals = [fwad.make_dual(p, t) for p, t in zip(primals, tangents, strict=True)]
        t_dual = fwad.unpack_dual(call(batch_norm)(*duals)).tangent
    torch.testing.assert_close(t_dual, t_r, rtol=1e-10, atol=1e-10)
    if training:
        return
    bs = (1, c) + (1,) * (len(shape) - 2)

    def formula(x, rm, rv, w, b):
        return (x - rm.view(bs)) / torch.sqrt(rv.view(bs) + 1e-3) * w.view(bs) + b.view(bs)

    primals = (x, rm, rv, w, b)
    tangents = tuple(torch.randn(p.shape, generator=g, dtype=torch.float64) for p in primals)
    _, t_o = torch.func.jvp(lambda *a: batch_norm(*a, training=False, eps=1e-3), primals, tangents)
    _, t_r = torch.func.jvp(formula, primals, tangents)
    torch.testing.assert_close(t_o, t_r, rtol=1e-10, atol=1e-10)


def _half_errors(fn, x, dy, w, b):
    """Max errors of the output, input/weight/bias gradients and running mean against float64 from the same input."""
    c = x.shape[1]
    xx, ww, bb = x.clone().requires_grad_(True), w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    rm, rv = torch.zeros(c, dtype=w.dtype), torch.ones(c, dtype=w.dtype)
    y = fn(xx, rm, rv, ww, bb, True, 0.1, 1e-5)
    got = (y, *torch.autograd.grad(y, (xx, ww, bb), dy), rm)
    x64, w64, b64 = (t.detach().double().requires_grad_(True) for t in (x, w, b))
    y64 = torch.nn.functional.batch_norm(x64, None, None, w64, b64, True, 0.1, 1e-5)
    dims = [0, *range(2, x.dim())]
    want = (y64, *torch.autograd.grad(y64, (x64, w64, b64), dy.double()), 0.1 * x64.detach().mean(dims))
    return [((a.double() - r).abs().max().item(), a.dtype, r.abs().max().item())
            for a, r in zip(got, want, strict=True)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(64, 8), (16, 4, 8, 8)])
@pytest.mark.parametrize("params", ["same dtype", "float32"])
def test_half_precision_errors_within_torchs(dtype, shape, params):
    """float16/bfloat16 input: statistics and sums in float32, so every error against a float64 reference is
    at most 1.1x torch's (quantities held in float32, with float32 parameters, within float32 rounding)."""
    for seed in range(3):
        g = torch.Generator().manual_seed(30 + seed)
        c = shape[1]
        x = (_batch(shape, g) * 3.0).to(dtype)
        dy = torch.randn(shape, generator=g).to(dtype)
        pdt = dtype if params == "same dtype" else torch.float32
        w, b = (torch.rand(c, generator=g) + 0.5).to(pdt), torch.randn(c, generator=g).to(pdt)
        ours = _half_errors(batch_norm, x, dy, w, b)
        ref = _half_errors(torch.nn.functional.batch_norm, x, dy, w, b)
        for what, (e_o, dt_o, scale), (e_r, dt_r, _) in zip(("y", "dx", "dweight", "dbias", "running_mean"), ours,
                                                            ref, strict=True):
            assert dt_o == dt_r, what
            slack = 1e-5 * max(scale, 1.0) if dt_o == torch.float32 else 0.0
            assert e_o <= 1.1 * e_r + slack, f"{what}: bnlib's error {e_o:.3g}, torch's {e_r:.3g}"


def test_state_dict_without_num_batches_tracked_loads_as_in_torch():
    """A state dict without num_batches_tracked: without version metadata (a plain dict, an old checkpoint)
    both fill it in, even strictly; with version-2 metadata both report it missing."""
    ref, ours = torch.nn.BatchNorm2d(3), BatchNorm2d(3)
    for m in (ref, ours):
        m.num_batches_tracked.fill_(7)
    plain = {k: v.clone() for k, v in torch.nn.BatchNorm2d(3).state_dict().items() if k != "num_batches_tracked"}
    for m in (ref, ours):
        m.load_state_dict(dict(plain), strict=True)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 7
    versioned = torch.nn.BatchNorm2d(3).state_dict()
    del versioned["num_batches_tracked"]
    results = [m.load_state_dict(versioned, strict=False) for m in (ref, ours)]
    assert results[0].missing_keys == results[1].missing_keys == ["num_batches_tracked"]
    for m in (ref, ours):
        with pytest.raises(RuntimeError, match="num_batches_tracked"):
            m.load_state_dict(versioned, strict=True)
    assert ours.state_dict()._metadata[""]["version"] == ref.state_dict()._metadata[""]["version"]


@pytest.mark.parametrize("kwargs", [{"momentum": 1.5}, {"momentum": -0.5}, {"momentum": np.float32(0.2)},
                                    {"eps": np.float32(1e-3)}, {"momentum": None, "bias": False},
                                    {"affine": False}])
def test_arguments_torch_accepts_are_accepted(kwargs):
    """Momentum outside [0, 1] (torch extrapolates), NumPy scalars, bias=False: the same numbers as torch."""
    ours, ref = BatchNorm3d(np.int64(3), **kwargs), torch.nn.BatchNorm3d(3, **kwargs)
    assert ours.num_features == 3 and type(ours.num_features) is int
    g = torch.Generator().manual_seed(22)
    for _ in range(3):
        x = _batch((4, 3, 2, 3, 2), g)
        assert_close32(ours(x), ref(x))
    assert_close32(ours.running_mean, ref.running_mean)
    assert_close32(ours.running_var, ref.running_var)
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_functional_defaults_and_empty_batches_are_torchs():
    g = torch.Generator().manual_seed(23)
    x, rm, rv = _batch((5, 3, 4), g), torch.randn(3, generator=g), torch.rand(3, generator=g) + 0.5
    assert_close32(batch_norm(x, rm, rv), torch.nn.functional.batch_norm(x, rm, rv))  # eval, no affine
    for shape in ((0, 3), (0, 3, 4, 4)):
        empty = torch.randn(shape, requires_grad=True)
        layers = (BatchNorm(3), torch.nn.BatchNorm1d(3) if len(shape) == 2 else torch.nn.BatchNorm2d(3))
        outs = [layer(empty) for layer in layers]
        assert outs[0].shape == outs[1].shape == shape
        grads = [torch.autograd.grad(y.sum(), (layer.weight, layer.bias)) for y, layer in zip(outs, layers,
                                                                                             strict=True)]
        for a, b in zip(*grads, strict=True):
            assert torch.equal(a, b)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            assert torch.equal(getattr(layers[0], key), getattr(layers[1], key))


def test_half_input_with_a_float32_module_as_torch():
    ours, ref = _pair((8, 3, 4))
    x = _batch((8, 3, 4), torch.Generator().manual_seed(24)).to(torch.bfloat16)
    y_o, y_r = ours(x), ref(x)
    assert y_o.dtype == y_r.dtype == torch.bfloat16 and ours.running_mean.dtype == torch.float32
    torch.testing.assert_close(y_o, y_r)
    assert_close32(ours.running_var, ref.running_var)
