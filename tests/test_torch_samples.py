"""bnlib.nn against PyTorch's own test samples (``torch.testing._internal``, allowed in tests only).

- ``module_db``'s entries for ``torch.nn.BatchNorm1d/2d/3d``: their ``module_inputs_func`` gives the
  constructor arguments and forward inputs (affine or not, ``bias=False``, no running statistics,
  ``momentum=None``, a zero-size batch, 3-D input ...). torch's module and bnlib's namesake are built
  with the same arguments and the same random parameters and running statistics, then compared in
  train and eval mode, on contiguous, non-contiguous and channels_last copies of each input: outputs,
  input and parameter gradients, running statistics, ``num_batches_tracked``, and a strict
  ``state_dict`` round trip both ways. float64 samples also go through ``gradcheck`` (with forward-mode
  AD) and ``gradgradcheck``.
- ``op_db``'s ``nn.functional.batch_norm`` entries (both variants): each sample's arguments, keyword
  arguments included, go to ``torch.nn.functional.batch_norm`` and to ``bnlib.nn.batch_norm``;
  outputs, updated running statistics and gradients are compared, for the sample and its
  non-contiguous copy; float64 samples also go through ``gradcheck``/``gradgradcheck``.

The reference is always torch itself (or finite differences), never bnlib.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_modules import module_db
from torch.testing._internal.common_utils import noncontiguous_like

from bnlib import nn as bnn

OURS = {torch.nn.BatchNorm1d: bnn.BatchNorm1d, torch.nn.BatchNorm2d: bnn.BatchNorm2d,
        torch.nn.BatchNorm3d: bnn.BatchNorm3d}
INFOS = [info for info in module_db if info.module_cls in OURS]
OPS = [op for op in op_db if op.name == "nn.functional.batch_norm"]
DTYPES = (torch.float32, torch.float64)
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}  # normwise: max |a - b| <= tol * max(max |b|, 1)


def assert_near(a, b, dtype, what):
    if a is None or b is None:
        assert a is None and b is None, what
        return
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    if a.numel() == 0:
        return
    err = (a.double() - b.double()).abs().max().item()
    assert err <= TOL[dtype] * max(b.double().abs().max().item(), 1.0), f"{what}: max abs. difference {err:.3g}"


def _module_samples():
    params = []
    for info in INFOS:
        for dtype in DTYPES:
            for training in (True, False):
                samples = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                                  training=training)
                for i, s in enumerate(samples):
                    mode = "train" if training else "eval"
                    name = f"{info.module_cls.__name__}-{str(dtype)[6:]}-{mode}-{s.desc or i}"
                    params.append(pytest.param(info.module_cls, s, dtype, training, id=name))
    return params


MODULE_SAMPLES = _module_samples()


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    x = x.detach()
    if layout == "noncontiguous":
        x = noncontiguous_like(x)
    elif layout == "channels_last":
        x = x.to(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    return x.requires_grad_(True)


def _build(cls, sample, dtype, seed=0):
    """torch's module and bnlib's with the same constructor arguments, random parameters and statistics."""
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    ref = cls(*args, **kwargs, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    state = ref.state_dict()
    for key, t in state.items():
        if key == "num_batches_tracked":
            t.fill_(3)
        elif key == "running_var":
            t.copy_(torch.rand(t.shape, generator=g, dtype=dtype) + 0.5)
        elif key != "num_batches_tracked":
            t.copy_(torch.randn(t.shape, generator=g, dtype=dtype))
    ref.load_state_dict(state)
    ours = OURS[cls](*args, **kwargs, dtype=dtype)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("layout", ["contiguous", "noncontiguous", "channels_last"])
@pytest.mark.parametrize("cls,sample,dtype,training", MODULE_SAMPLES)
def test_module_db_sample(cls, sample, dtype, training, layout):
    (x0,) = sample.forward_input.args
    if layout == "channels_last" and x0.dim() not in (4, 5):
        pytest.skip("channels_last needs 4-D or 5-D input")
    ref, ours = _build(cls, sample, dtype)
    ref.train(training)
    ours.train(training)
    g = torch.Generator().manual_seed(1)
    for step in range(3):
        x_r = _layout(x0 * (1.0 + step), layout)
        x_o = _layout(x0 * (1.0 + step), layout)
        y_r, y_o = ref(x_r), ours(x_o)
        assert_near(y_o, y_r, dtype, "output")
        if x0.dim() in (4, 5):  # the output keeps the input's memory format, as torch's
            fmt = torch.channels_last if x0.dim() == 4 else torch.channels_last_3d
            assert y_o.is_contiguous(memory_format=fmt) == y_r.is_contiguous(memory_format=fmt)
        dy = torch.randn(y_r.shape, generator=g, dtype=dtype)
        params_r = [p for p in (x_r, ref.weight, ref.bias) if p is not None]
        params_o = [p for p in (x_o, ours.weight, ours.bias) if p is not None]
        for a, b, what in zip(torch.autograd.grad(y_o, params_o, dy), torch.autograd.grad(y_r, params_r, dy),
                              ("input grad", "weight grad", "bias grad"), strict=False):
            assert_near(a, b, dtype, what)
        for key in ("running_mean", "running_var"):
            assert_near(getattr(ours, key), getattr(ref, key), dtype, key)
        if ref.num_batches_tracked is not None:
            assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)
    # state dicts: the same keys and values, and a strict load both ways
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref2, ours2 = _build(cls, sample, dtype, seed=5)
    ref2.load_state_dict(ours.state_dict())
    ours2.load_state_dict(ref.state_dict())
    for a, b in zip(ref2.state_dict().values(), ours.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(ours2.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)


FLOAT64_SAMPLES = [p for p in MODULE_SAMPLES if p.values[2] == torch.float64]


@pytest.mark.parametrize("cls,sample,dtype,training", FLOAT64_SAMPLES)
def test_module_db_sample_gradcheck(cls, sample, dtype, training):
    """Finite differences: first derivatives (reverse and forward mode) and second derivatives."""
    (x0,) = sample.forward_input.args
    if x0.numel() == 0:
        pytest.skip("nothing to differentiate in an empty batch")
    _, ours = _build(cls, sample, dtype)
    ours.train(training)
    ours.eps = 1e-3  # finite differences need a well-conditioned map
    names = [n for n in ("weight", "bias") if getattr(ours, n) is not None]

    def f(x, *p):
        return torch.func.functional_call(ours, dict(zip(names, p, strict=True)), (x,))

    x = x0.detach().clone().requires_grad_(True)
    inputs = (x, *[getattr(ours, n).detach().clone().requires_grad_(True) for n in names])
    assert torch.autograd.gradcheck(f, inputs, check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, inputs)


def _op_samples():
    params = []
    for op in OPS:
        for dtype in DTYPES:
            for i, s in enumerate(op.sample_inputs("cpu", dtype, requires_grad=True)):
                for layout in ("contiguous", "noncontiguous"):
                    name = f"{op.variant_test_name or 'default'}-{str(dtype)[6:]}-{i}-{layout}"
                    params.append(pytest.param(s if layout == "contiguous" else s.noncontiguous(), dtype, id=name))
    return params


OP_SAMPLES = _op_samples()


def _split(sample):
    """The sample's tensors, fresh copies for one call (running statistics are updated in place)."""
    def copy(t):
        return t.detach().clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t

    return copy(sample.input), [copy(a) for a in sample.args], dict(sample.kwargs)


@pytest.mark.parametrize("sample,dtype", OP_SAMPLES)
def test_op_db_sample(sample, dtype):
    x_r, args_r, kwargs = _split(sample)
    x_o, args_o, _ = _split(sample)
    y_r = torch.nn.functional.batch_norm(x_r, *args_r, **kwargs)
    y_o = bnn.batch_norm(x_o, *args_o, **kwargs)
    assert_near(y_o, y_r, dtype, "output")
    for a, b, what in zip(args_o[:2], args_r[:2], ("running_mean", "running_var"), strict=True):
        assert_near(a, b, dtype, what)
    diff_r = [t for t in [x_r, *args_r] if isinstance(t, torch.Tensor) and t.requires_grad]
    diff_o = [t for t in [x_o, *args_o] if isinstance(t, torch.Tensor) and t.requires_grad]
    if diff_r and y_r.numel():
        dy = torch.randn(y_r.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
        for a, b in zip(torch.autograd.grad(y_o, diff_o, dy), torch.autograd.grad(y_r, diff_r, dy), strict=True):
            assert_near(a, b, dtype, "gradient")


@pytest.mark.parametrize("sample,dtype", [p for p in OP_SAMPLES if p.values[1] == torch.float64])
def test_op_db_sample_gradcheck(sample, dtype):
    x, args, kwargs = _split(sample)
    diff = [i for i, t in enumerate([x, *args]) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not diff or x.numel() == 0:
        pytest.skip("nothing to differentiate")
    kwargs["eps"] = max(kwargs.get("eps", 1e-5), 1e-3)
    everything = [x, *args]

    def f(*ts):
        full = list(everything)
        for i, t in zip(diff, ts, strict=True):
            full[i] = t
        rm, rv = (None if t is None else t.detach().clone() for t in full[1:3])  # fresh statistics every call
        return bnn.batch_norm(full[0], rm, rv, *full[3:], **kwargs)

    inputs = tuple(everything[i] for i in diff)
    assert torch.autograd.gradcheck(f, inputs, check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_the_samples_are_there():
    """The counts this file runs (so that a torch upgrade that drops samples is noticed)."""
    assert len(INFOS) == 3 and len(OPS) == 2
    assert len(MODULE_SAMPLES) == 2 * 2 * 22 and len(OP_SAMPLES) == 2 * 2 * 12 * 2
