"""Bad arguments, module by module: each call must raise the expected exception with one sentence that names
the argument (never a deep traceback from NumPy, torch or SymPy, never a silent wrong answer); and the NumPy
scalars and byte orders that stand for Python numbers and native arrays are accepted.

The cases are tables of ``(callable, kwargs, exception, argument name)``: append rows to extend them. Each
table's rows become one parametrized test each (:data:`CASES` joins them).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from bnlib import data, functional, models, norms, symbolic
from bnlib.symbolic import core as sym_core

ROOT = Path(__file__).resolve().parent.parent
T, V = TypeError, ValueError

# --------------------------------------------------------------------------- fixtures (plain data)
_rng = np.random.default_rng(0)
X2 = _rng.normal(size=(8, 3))
X4 = _rng.normal(size=(4, 3, 2, 2))
G3, B3 = np.ones(3), np.zeros(3)
MASKED = np.ma.masked_array(X2, mask=X2 > 1.0)
_, CACHE = functional.forward(X2, G3, B3)
_, GN_CACHE = norms.group_norm_forward(X4, 3, G3, B3)
_, _, _, BR_CACHE = norms.batch_renorm_forward(X2, G3, B3, np.zeros(3), np.ones(3), 3.0, 5.0)
W2 = _rng.normal(size=(3, 5))
W4 = _rng.normal(size=(3, 2, 3, 3))
BM, BV = _rng.normal(size=(4, 3)), np.abs(_rng.normal(size=(4, 3)))

#: Values that are not arrays (or not float arrays), for an array argument.
NOT_ARRAYS = [None, "abc", 3, [1.0, 2.0, 3.0], np.arange(3), np.ones(3, dtype=complex), np.ma.masked_array(G3)]
#: Values that are not a valid eps (all ValueError, as the shared check has always raised).
BAD_EPS = [-1e-5, math.nan, math.inf, "1e-5", None, True, 1j]
BAD_MOMENTUM = [-0.1, 1.5, math.nan, "0.1", None, True]
#: Values that are not a positive integer count.
BAD_COUNTS = [0, -1, 2.5, "3", None, True, np.float64(3.0)]


def _rows(fn, arg: str, values, exc, **base):
    """One row per bad value of ``arg``, the other arguments from ``base``."""
    return [(fn, {**base, arg: v}, exc, arg) for v in values]


def _arrays(fn, arg: str, good, **base):
    """Rows for an array argument: non-arrays (TypeError), a wrong shape and NaN values (ValueError)."""
    bad_shape = np.ones(good.shape[:-1] + (good.shape[-1] + 1,))
    nan = np.full(good.shape, np.nan)
    return (_rows(fn, arg, NOT_ARRAYS, T, **base) + _rows(fn, arg, [bad_shape], V, **base)
            + _rows(fn, arg, [nan], V, **base))


# --------------------------------------------------------------------------- functional
_F = dict(x=X2, gamma=G3, beta=B3)
_INF = dict(x=X2, mean=np.zeros(3), var=np.ones(3), gamma=G3, beta=B3)
_UPD = dict(running_mean=np.zeros(3), running_var=np.ones(3), batch_mean=np.zeros(3), batch_var=np.ones(3), n=8)
_FOLD = dict(W=W2, b=np.zeros(3), mean=np.zeros(3), var=np.ones(3), gamma=G3, beta=B3)
_FUSE = dict(linear_w=W2, linear_b=np.zeros(3), bn_rm=np.zeros(3), bn_rv=np.ones(3), bn_eps=1e-5, bn_w=G3,
             bn_b=B3)
FUNCTIONAL = (
    _rows(functional.forward, "x", [None, [[1.0, 2.0]], np.ones((4, 3), dtype=int), MASKED, np.ones((2, 3, 4)),
                                    np.ones(3), np.ones((4, 0)), np.ones((1, 3)), X2.astype(complex)],
          (T, V), **_F)
    + _arrays(functional.forward, "gamma", G3, **_F) + _arrays(functional.forward, "beta", B3, **_F)
    + _rows(functional.forward, "eps", BAD_EPS, V, **_F)
    + _rows(functional.backward, "cache", [None, {}, [1, 2], "cache", {"xhat": X2}, GN_CACHE], (T, V), dy=X2)
    + _rows(functional.backward_staged, "cache", [None, {}, [1, 2], {"xhat": X2}], (T, V), dy=X2)
    + _rows(functional.backward, "dy", [None, X2[:4], X2.astype(np.float32), [[0.0]], MASKED, X2.astype(int)],
            (T, V), cache=CACHE)
    + _rows(functional.backward_staged, "dy", [None, X2[:4], X2.astype(np.float32), MASKED], (T, V), cache=CACHE)
    + _rows(functional.inference, "x", [None, MASKED, np.ones(3), np.full((2, 3), np.nan)], (T, V), **_INF)
    + _arrays(functional.inference, "mean", np.zeros(3), **_INF) + _arrays(functional.inference, "var", G3, **_INF)
    + _rows(functional.inference, "var", [-np.ones(3)], V, **_INF)
    + _arrays(functional.inference, "gamma", G3, **_INF) + _rows(functional.inference, "eps", BAD_EPS, V, **_INF)
    + _rows(functional.update_running, "n", [0, 1, -3, 2.5, "8", None, True], V, **_UPD)
    + _rows(functional.update_running, "momentum", [-0.1, 1.5, math.nan], V, **_UPD)
    + _rows(functional.update_running, "momentum", ["0.1", [0.1], True], T, **_UPD)
    + _rows(functional.update_running, "convention", ["pytorch", None, 1, "TORCH"], V, **_UPD)
    + _rows(functional.update_running, "num_batches_tracked", [None, 0, -1, 2.5, True], V, **_UPD, momentum=None)
    + _rows(functional.update_running, "running_mean", [["a", "b", "c"], MASKED[:, 0], None], (T, V), **_UPD)
    + _rows(functional.update_running, "batch_var", [-np.ones(3), [np.nan] * 3], V, **_UPD)
    + _rows(functional.population_stats, "m", [0, 1, 2.5, "4", None, True], V, batch_means=BM, batch_vars=BV)
    + _rows(functional.population_stats, "batch_means", [None, np.ones(3), np.ones((0, 3)), MASKED], (T, V),
            batch_vars=BV, m=4)
    + _rows(functional.fold_linear, "W", [None, np.ones((3, 5, 1, 1)), np.ones((3, 5), dtype=int), "W", MASKED],
            (T, V), **{k: v for k, v in _FOLD.items() if k != "W"})
    + _rows(functional.fold_linear, "b", [np.zeros(4), "b", np.zeros(3, dtype=int)], (T, V),
            **{k: v for k, v in _FOLD.items() if k != "b"})
    + _rows(functional.fold_linear, "var", [-G3, np.full(3, np.nan), np.ones(4)], V,
            **{k: v for k, v in _FOLD.items() if k != "var"})
    + _rows(functional.fold_linear, "eps", BAD_EPS, V, **_FOLD)
    + _rows(functional.fold_conv, "W", [None, W2, np.ones((3, 2, 3, 3), dtype=int)], (T, V),
            **{k: v for k, v in _FOLD.items() if k != "W"})
    + _rows(functional.fuse_linear_bn_weights, "linear_w", [None, np.ones((3, 5, 1, 1))], (T, V),
            **{k: v for k, v in _FUSE.items() if k != "linear_w"})
    + _rows(functional.fuse_linear_bn_weights, "bn_rv", [-G3, np.ones(4)], V,
            **{k: v for k, v in _FUSE.items() if k != "bn_rv"})
    + _rows(functional.fuse_linear_bn_weights, "bn_eps", BAD_EPS[:4], V,
            **{k: v for k, v in _FUSE.items() if k != "bn_eps"})
    + _rows(functional.fuse_conv_bn_weights, "conv_w", [None, W2], (T, V), conv_b=None, bn_rm=np.zeros(3),
            bn_rv=G3, bn_eps=1e-5, bn_w=G3, bn_b=B3)
    + _rows(functional.running_conventions, "n", [0, 1, 2.5, "8", None, True], V, batch_means=BM, batch_vars=BV)
    + _rows(functional.running_conventions, "torch_momentum", [-0.1, 1.5, math.nan, "0.1", None], (T, V),
            batch_means=BM, batch_vars=BV, n=8)
    + _rows(functional.running_conventions, "init", [None, (0.0,), ("a", 1.0), (math.nan, 1.0), (0.0, -1.0)],
            (T, V), batch_means=BM, batch_vars=BV, n=8)
    + _rows(functional.running_conventions, "batch_means", [None, np.ones(3), [["a"]]], (T, V), batch_vars=BV, n=8)
    + _rows(functional.half_life, "torch_momentum", [0.0, 1.0, -0.5, math.nan, "0.1", None, True], (T, V))
    + _rows(functional.steps_to_forget, "weight", [0.0, 1.0, math.nan, "0.5", None], (T, V), torch_momentum=0.1)
    + _rows(functional.steps_to_forget, "torch_momentum", [0.0, 1.0, "0.1"], (T, V), weight=0.5)
)

# --------------------------------------------------------------------------- norms: NumPy
_GN = dict(x=X4, num_groups=3, gamma=G3, beta=B3)
_BR = dict(x=X2, gamma=G3, beta=B3, running_mean=np.zeros(3), running_std=G3, r_max=3.0, d_max=5.0)
NORMS_NUMPY = (
    _rows(norms.group_norm_forward, "x", [None, MASKED, np.ones(3), np.ones((0, 3, 2, 2)), np.ones((4, 3, 2, 2),
                                          dtype=int), np.ones((2, 3, 2))], (T, V), **{k: v for k, v in _GN.items()
                                                                                      if k != "x"})
    + _rows(norms.group_norm_forward, "num_groups", [0, 2, -1, 1.5, "3", None, True], V, **_GN)
    + _arrays(norms.group_norm_forward, "gamma", G3, **_GN)
    + _rows(norms.group_norm_forward, "eps", BAD_EPS, V, **_GN)
    + _rows(norms.group_norm_backward, "cache", [None, {}, CACHE, "c"], (T, V), dy=X4)
    + _rows(norms.group_norm_backward, "dy", [None, X2, MASKED, X4.astype(np.float32)], (T, V), cache=GN_CACHE)
    + _rows(norms.layer_norm_forward, "x", [None, MASKED, np.ones((0, 3))], (T, V), gamma=G3, beta=B3)
    + _rows(norms.layer_norm_forward, "eps", BAD_EPS[:4], V, x=X2, gamma=G3, beta=B3)
    + _rows(norms.layer_norm_backward, "cache", [None, {}], (T, V), dy=X2)
    + _rows(norms.batch_renorm_forward, "x", [None, MASKED, np.ones((1, 3))], (T, V),
            **{k: v for k, v in _BR.items() if k != "x"})
    + _rows(norms.batch_renorm_forward, "r_max", [0.5, math.nan, math.inf, "3", None, True], (T, V), **_BR)
    + _rows(norms.batch_renorm_forward, "d_max", [-1.0, math.nan, "5", None], (T, V), **_BR)
    + _rows(norms.batch_renorm_forward, "running_std", [-G3, np.zeros(3), None], (T, V), **_BR)
    + _rows(norms.batch_renorm_forward, "momentum", BAD_MOMENTUM, V, **_BR)
    + _rows(norms.batch_renorm_forward, "eps", BAD_EPS[:4], V, **_BR)
    + _rows(norms.batch_renorm_backward, "cache", [None, {}, CACHE], (T, V), dy=X2)
    + _rows(norms.batch_renorm_backward, "dy", [None, X4, MASKED], (T, V), cache=BR_CACHE)
    + _rows(norms.batch_renorm_inference, "running_std", [-G3, None, np.ones(4)], (T, V), x=X2,
            running_mean=np.zeros(3), gamma=G3, beta=B3)
    + _rows(norms.RenormSchedule, "r_max", [0.5, math.nan, "3", None], (T, V))
    + _rows(norms.RenormSchedule, "bn_steps", [-1, 2.5, "5", None, True], V)
    + _rows(norms.renorm_schedule, "step", [-1, 2.5, "5", None, True], V)
    + _rows(norms.renorm_schedule, "schedule", [None, (3.0, 5.0), "paper"], T, step=0)
    + _rows(norms.PAPER_SCHEDULE.scaled, "factor", [0, -1.0, math.nan, math.inf, "2", None, True], (T, V))
)

# --------------------------------------------------------------------------- norms: torch modules
NORMS_MODULES = (
    _rows(norms.GroupNorm, "num_groups", [0, 5, -1, 1.5, "2", None, True], V, num_channels=4)
    + _rows(norms.GroupNorm, "num_channels", BAD_COUNTS, V, num_groups=1)
    + _rows(norms.GroupNorm, "eps", BAD_EPS, V, num_groups=2, num_channels=4)
    + _rows(norms.LayerNorm, "num_features", BAD_COUNTS, V)
    + _rows(norms.LayerNorm, "eps", BAD_EPS[:4], V, num_features=4)
    + _rows(norms.BatchRenorm, "num_features", BAD_COUNTS, V)
    + _rows(norms.BatchRenorm, "eps", BAD_EPS[:4], V, num_features=4)
    + _rows(norms.BatchRenorm, "momentum", BAD_MOMENTUM, V, num_features=4)
    + _rows(norms.BatchRenorm, "schedule", [None, "book", (3.0, 5.0)], T, num_features=4)
    + _rows(norms.LpNorm, "num_features", BAD_COUNTS, V)
    + _rows(norms.LpNorm, "p", [0.5, -1.0, math.nan, "2", None, True], (T, V), num_features=4)
    + _rows(norms.LpNorm, "eps", BAD_EPS[:4], V, num_features=4)
    + _rows(norms.LpNorm, "momentum", BAD_MOMENTUM, V, num_features=4)
)


def _module_call(module):
    def call(x):
        return module(x)

    return call


#: Bad inputs to the modules' forward passes (the argument is the input, named by the module's class).
NORMS_FORWARD = [
    (_module_call(mod), {"x": x}, exc, name)
    for mod, name in ((norms.GroupNorm(2, 4), "GroupNorm"), (norms.LayerNorm(4), "LayerNorm"),
                      (norms.BatchRenorm(4), "BatchRenorm"), (norms.LpNorm(4), "LpNorm"))
    for x, exc in ((None, T), (np.ones((2, 4), dtype=np.float32), T), (torch.ones(2, 3), V), (torch.ones(4), V),
                   (torch.ones(2, 4, dtype=torch.long), T), (torch.ones(2, 4, dtype=torch.float64), T))
]

# --------------------------------------------------------------------------- models
_MLP_SIZES = [(), (784,), (784, 0, 10), (784, -3, 10), (784, 100.5, 10), ("784", 10), None, 5, (784, True, 10)]
MODELS = (
    _rows(models.SigmoidMLP, "sizes", _MLP_SIZES, (T, V))
    + _rows(models.SigmoidMLP, "norm", ["batch", "BN", 1, True], V, sizes=(4, 3, 2))
    + _rows(models.SigmoidMLP, "activation", ["softmax", None, 1], V, sizes=(4, 3, 2))
    + _rows(models.SigmoidMLP, "dropout", [-0.1, 1.0, 1.5, math.nan, "0.1", None], (T, V), sizes=(4, 3, 2))
    + _rows(models.SigmoidMLP, "seed", [-1, 2.5, "0", None, True], V, sizes=(4, 3, 2))
    + _rows(models.SigmoidMLP, "norm_position", ["before", None, 0], V, sizes=(4, 3, 2))
    + _rows(models.SigmoidCNN, "depth", BAD_COUNTS, V, width=2)
    + _rows(models.SigmoidCNN, "width", BAD_COUNTS, V, depth=1)
    + _rows(models.SigmoidCNN, "in_channels", BAD_COUNTS, V, depth=1, width=2)
    + _rows(models.SigmoidCNN, "num_classes", BAD_COUNTS, V, depth=1, width=2)
    + _rows(models.SigmoidCNN, "pool_every", [0, -1, 2.5, "2", True], V, depth=1, width=2)
    + _rows(models.SigmoidCNN, "dropout", [-0.1, 1.0, math.nan, "0.1", None], (T, V), depth=1, width=2)
    + _rows(models.SigmoidCNN, "norm", ["batch", 1], V, depth=1, width=2)
    + _rows(models.SigmoidCNN, "activation", ["softmax", None], V, depth=1, width=2)
    + _rows(models.SigmoidCNN, "seed", [-1, "0", None], V, depth=1, width=2)
    + _rows(models.Activation, "kind", ["softmax", None, 1, "Sigmoid"], V)
    + _rows(models.NoisyShift, "num_features", BAD_COUNTS, V)
    + _rows(models.NoisyShift, "shift_std", [-1.0, math.nan, math.inf, "0.5", None], (T, V), num_features=3)
    + _rows(models.NoisyShift, "scale_spread", [-1.0, math.nan, "1", None], (T, V), num_features=3)
    + _rows(models.NoisyShift, "seed", [-1, 2.5, "0", None], V, num_features=3)
    + _rows(models.make_norm, "norm", ["batch", 1, True], V, num_features=3, conv=False)
    + _rows(models.make_norm, "num_features", BAD_COUNTS, V, norm="bnlib", conv=False)
    + _rows(models.make_norm, "conv", [None, "yes", 1], T, norm="torch", num_features=3)
    + _rows(models.group_count, "c", BAD_COUNTS, V)
    + _rows(models.init_weights, "model", [None, "mlp", 3], T)
    + _rows(models.init_weights, "init", ["normal", None, 1], V, model=torch.nn.Linear(2, 2))
    + _rows(models.init_weights, "sigma", [0.0, -0.01, math.nan, math.inf, "0.01", None], (T, V),
            model=torch.nn.Linear(2, 2))
    + _rows(models.init_weights, "seed", [-1, 2.5, "0", None], V, model=torch.nn.Linear(2, 2))
    + _rows(models.Probe, "model", [None, "mlp"], T)
    + _rows(models.Probe, "layers", [[5], [-1], ["0"], [0.5], 3, [True]], (T, V),
            model=models.SigmoidMLP((4, 3, 2)))
    + _rows(models.build, "model", ["MLP", "resnet", None, 1], V)
    + _rows(models.build, "norm", ["batch", 1], V, model="mlp")
)

# --------------------------------------------------------------------------- data
_IMG = np.zeros((4, 28, 28), dtype=np.uint8)
_LAB = np.zeros(4, dtype=np.int64)
DATA = (
    _rows(data.locate, "dataset", ["MNIST", "imagenet", None, 1, ""], V)
    + _rows(data.load_mnist, "data_dir", [3, 2.5, ["a"], b"\xff"], T, download=False)
    + _rows(data.load_mnist, "download", ["yes", None, 1], T, data_dir="/nonexistent-bnlib")
    + _rows(data.load_cifar10, "download", ["no", 0], T)
    + _rows(data.load_fashion_mnist, "data_dir", [1, object()], T)
    + _rows(data.to_tensors, "dataset", ["MNIST", None, 1, "imagenet"], V, x=_IMG, y=_LAB)
    + _rows(data.to_tensors, "x", [_IMG.astype(np.float32), "img", None, np.zeros((4, 28), dtype=np.uint8),
                                   np.zeros((4, 28, 28, 3), dtype=np.uint8), np.ma.masked_array(_IMG)], (T, V),
            y=_LAB, dataset="mnist")
    + _rows(data.to_tensors, "y", [_LAB[:3], _LAB.astype(float), None, "y", _LAB.reshape(2, 2)], (T, V), x=_IMG,
            dataset="mnist")
    + _rows(data.to_tensors, "flatten", [None, "yes", 1], T, x=_IMG, y=_LAB, dataset="mnist")
    + _rows(data.to_tensors, "normalize", [None, "no"], T, x=_IMG, y=_LAB, dataset="mnist")
    + _rows(data.read_idx, "path", [None, 3, ["a"]], T)
    + _rows(data.read_idx, "magic", ["2051", 2.5, -1, True], (T, V), path="/nonexistent-bnlib.gz")
    + _rows(data.read_cifar_bin, "path", [None, 3], T)
    + _rows(data.read_cifar_bin, "records", [0, -1, 2.5, "10", True], V, path="/nonexistent-bnlib.bin")
)

# --------------------------------------------------------------------------- symbolic
_MM_FUNCTIONS = [symbolic.batch, symbolic.mean_of_xhat, symbolic.variance_of_xhat, symbolic.output_moments,
                 symbolic.identity_recovery, symbolic.bias_cancels, symbolic.central_moment_of_xhat,
                 symbolic.staged_dx, symbolic.compact_dx, symbolic.autodiff_dx, symbolic.jacobian,
                 symbolic.jacobian_formula, symbolic.gradient_sums_to_zero, symbolic.scale_forward,
                 symbolic.weight_direction]
_BAD_MM = [1, 0, -2, 2.5, "m", True, None, sp.Symbol("n")]
SYMBOLIC = (
    [(fn, {"mm": v}, V, "mm") for fn in _MM_FUNCTIONS for v in _BAD_MM]
    + _rows(symbolic.close, "expr", ["x[1] + 1", b"1", "__import__('os')"], T)
    + _rows(symbolic.close, "expr", [object(), [1, 2]], (T, V))
    + _rows(symbolic.display, "expr", ["x[1]", b"x"], T)
    + _rows(symbolic.display, "mm", [3, 1, "m"], V, expr=sp.Integer(1))
    + _rows(symbolic.residual, "expr", ["1 - 1", b"0"], T)
    + _rows(symbolic.decimal_exponent, "value", [0, -1.0, math.nan, math.inf, "10", None, True], (T, V))
    + _rows(symbolic.power_of_ten, "value", [0, -1.0, "1e-6", None], (T, V))
    + _rows(symbolic.central_moment_of_xhat, "order", [0, -1, 2.5, "3", True, None], V)
    + _rows(symbolic.sigmoid_linear_fit, "scale", [math.nan, math.inf, "1", None], (T, V))
    + _rows(symbolic.sigmoid_linear_fit, "shift", [math.nan, "0", None], (T, V))
    + _rows(symbolic.sigmoid_linear_fit, "dps", [0, -5, 2.5, "30", True], V)
    + _rows(symbolic.scale_layer, "mm", [1, 2.5, "3", True], V)
    + _rows(symbolic.scale_layer, "n", [0, 2.5, "2", True], V)
    + _rows(symbolic.conv_effective_batch, "shape", [(1, 1, 1), (2, 0, 2), (2, 2), "222", None, (2.5, 2, 2)],
            (T, V))
    + _rows(symbolic.relative_error, "got", [None, "a"], (T, V), want=np.ones(3))
    + _rows(symbolic.numeric_report, "m_values", [(1,), (0,), ("a",), (2.5,), ()], (T, V),
            forward=functional.forward, backward=functional.backward)
    + _rows(symbolic.numeric_report, "channels", BAD_COUNTS, V, forward=functional.forward,
            backward=functional.backward)
    + _rows(symbolic.numeric_report, "eps_value", [-1.0, math.nan, "1e-5", None], (T, V),
            forward=functional.forward, backward=functional.backward)
    + _rows(symbolic.numeric_report, "forward", [None, "forward"], T, backward=functional.backward)
    + _rows(symbolic.equation, "sides", [()], V)
)

CASES = {"functional": FUNCTIONAL, "norms": NORMS_NUMPY, "norm modules": NORMS_MODULES,
         "norm forward": NORMS_FORWARD, "models": MODELS, "data": DATA, "symbolic": SYMBOLIC}
ALL = [(group, *row) for group, rows in CASES.items() for row in rows]


def _id(k: int, row) -> str:
    group, fn, kwargs, _exc, arg = row
    name = getattr(fn, "__qualname__", getattr(fn, "__name__", "call"))
    v = kwargs.get(arg, "?")
    shown = repr(v) if isinstance(v, (int, float, str, bytes, type(None))) else type(v).__name__
    return f"{group}:{name}:{arg}={shown[:30]}#{k}"


@pytest.mark.parametrize("row", ALL, ids=[_id(k, r) for k, r in enumerate(ALL)])
def test_bad_argument(row):
    _group, fn, kwargs, exc, arg = row
    if arg == "sides":
        call = lambda: fn(*kwargs["sides"])  # noqa: E731
    else:
        call = lambda: fn(**kwargs)  # noqa: E731
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert arg.split(".")[-1] in msg or (arg == "sides" and "side" in msg), msg
    assert msg.rstrip().endswith((".", ")")) and "\n" not in msg.strip(), msg
    assert type(info.value) not in (KeyError, AttributeError, IndexError, ZeroDivisionError)


def test_enough_bad_inputs():
    assert len(ALL) + len(CLI) >= 250


def test_masked_array_is_refused_not_misread():
    # np.ma arithmetic honours the mask in .mean() but not in every ufunc, so forward and backward would disagree
    with pytest.raises(TypeError, match="masked"):
        functional.forward(MASKED, G3, B3)


# --------------------------------------------------------------------------- the CLIs
CLI = [
    (["bnlib.experiments"], "cmd"),
    (["bnlib.experiments", "frobnicate"], "frobnicate"),
    (["bnlib.experiments", "run"], "NAME"),
    (["bnlib.experiments", "run", "no-such-experiment", "--scale", "smoke"], "no-such-experiment"),
    (["bnlib.experiments", "run", "--all", "--scale", "huge"], "--scale"),
    (["bnlib.experiments", "run", "--all", "--jobs", "0"], "--jobs"),
    (["bnlib.experiments", "run", "--all", "--jobs", "abc"], "--jobs"),
    (["bnlib.experiments", "run", "x", "--all"], "--all"),
    (["bnlib.data", "frobnicate"], "frobnicate"),
    (["bnlib.data", "check", "imagenet"], "imagenet"),
]


@pytest.mark.parametrize(("argv", "arg"), CLI, ids=[" ".join(a[1:]) or "(none)" for a, _ in CLI])
def test_cli_bad_arguments(argv, arg, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BNLIB_RESULTS_DIR": str(tmp_path / "results")}
    p = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=120)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert arg in last, p.stderr


# --------------------------------------------------------------------------- NumPy scalars and byte orders
def test_numpy_scalars_are_numbers():
    y, cache = functional.forward(X2, G3, B3, eps=np.float32(1e-5))
    want, _ = functional.forward(X2, G3, B3, eps=1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-6)
    functional.backward(X2, cache)
    functional.update_running(np.zeros(3), G3, np.zeros(3), G3, np.int64(8), momentum=np.float32(0.1))
    functional.population_stats(BM, BV, np.int32(4))
    assert functional.half_life(np.float32(0.5)) == pytest.approx(1.0)
    assert functional.steps_to_forget(np.float64(0.5), np.float32(0.25)) == 2
    functional.running_conventions(BM, BV, np.int64(8), torch_momentum=np.float32(0.1))
    norms.group_norm_forward(X4, np.int64(3), G3, B3, eps=np.float32(1e-5))
    norms.batch_renorm_forward(X2, G3, B3, np.zeros(3), G3, np.float32(3.0), np.int64(5), eps=np.float32(1e-5),
                               momentum=np.float32(0.01))
    norms.RenormSchedule(np.float32(3.0), np.float64(5.0), np.int64(10), np.int32(20), np.int64(30)).limits(
        np.int64(15))
    norms.PAPER_SCHEDULE.scaled(np.float32(0.5))
    for mod in (norms.GroupNorm(np.int64(2), np.int64(4), eps=np.float32(1e-5)),
                norms.LayerNorm(np.int64(4), eps=np.float32(1e-5)),
                norms.BatchRenorm(np.int64(4), eps=np.float32(1e-5), momentum=np.float32(0.01)),
                norms.LpNorm(np.int64(4), p=np.float32(2.0), eps=np.float32(1e-5), momentum=np.float32(0.1))):
        out = mod(torch.randn(3, 4))
        assert out.shape == (3, 4) and isinstance(mod.eps, float)
    m = models.SigmoidMLP(np.array([4, 3, 2]), dropout=np.float32(0.1), seed=np.int64(1))
    assert m(torch.randn(2, 4)).shape == (2, 2)
    c = models.SigmoidCNN(depth=np.int64(1), width=np.int64(2), in_channels=np.int64(1), num_classes=np.int64(3))
    assert c(torch.randn(2, 1, 4, 4)).shape == (2, 3)
    models.NoisyShift(np.int64(3), shift_std=np.float32(0.5), scale_spread=np.float64(1.0), seed=np.int64(0))
    models.init_weights(m, sigma=np.float32(0.01), seed=np.int64(0))
    assert models.group_count(np.int64(64)) == 32
    assert symbolic.batch(np.int64(3)).concrete and symbolic.mean_of_xhat(np.int64(2)).holds
    assert symbolic.decimal_exponent(np.float32(1e-6)) == -6


def test_big_endian_arrays_are_converted():
    be = X2.astype(">f8")
    y, cache = functional.forward(be, G3.astype(">f8"), B3.astype(">f8"))
    want, _ = functional.forward(X2, G3, B3)
    np.testing.assert_array_equal(y, want)
    dx, _, _ = functional.backward(be, cache)
    assert dx.dtype == np.float64 and dx.dtype.isnative
    np.testing.assert_array_equal(functional.inference(be, B3.astype(">f8"), G3, G3, B3),
                                  functional.inference(X2, B3, G3, G3, B3))
    np.testing.assert_array_equal(norms.group_norm_forward(X4.astype(">f8"), 3, G3, B3)[0],
                                  norms.group_norm_forward(X4, 3, G3, B3)[0])
    np.testing.assert_array_equal(functional.fold_linear(W2.astype(">f8"), None, B3, G3, G3, B3)[0],
                                  functional.fold_linear(W2, None, B3, G3, G3, B3)[0])


def test_empty_batch_group_norm_is_one_sentence():
    with pytest.raises(ValueError, match="x"):
        norms.group_norm_forward(np.ones((0, 4)), 2, np.ones(4), np.zeros(4))


def test_text_is_never_evaluated(tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for fn in (symbolic.close, symbolic.display, symbolic.residual, sym_core.latex):
        try:
            fn(code)
        except TypeError:
            pass
    assert not marker.exists()
