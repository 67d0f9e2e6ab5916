"""The one-sentence argument checks that functional, nn and norms share: each says what was wrong and
what was expected, as a ValueError or TypeError."""

from __future__ import annotations

import math

import numpy as np
import torch


def float_array(name: str, a, finite: bool = True) -> np.ndarray:
    """``a`` is a float32/float64 NumPy array (and, with ``finite``, has no NaN or infinity)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of float32 or float64, got {type(a).__name__}.")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}.")
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values; the statistics would be undefined.")
    return a


def per_channel(name: str, a, c: int, dtype) -> np.ndarray:
    """``a`` is a finite float vector of one value per channel, returned in ``dtype``."""
    float_array(name, a)
    if a.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},), one value per channel of x, got {a.shape}.")
    return a.astype(dtype, copy=False)


def bshape(x: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``x``."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def positive_int(name: str, v) -> None:
    if isinstance(v, bool) or not (isinstance(v, (int, np.integer)) and v >= 1):
        raise ValueError(f"{name} must be a positive integer, got {v!r}.")


def eps(value) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float, np.integer, np.floating))
                                       and math.isfinite(value) and value >= 0):
        raise ValueError(f"eps must be a finite non-negative number, got {value!r}.")


def momentum(value) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float, np.integer, np.floating))
                                       and 0.0 <= value <= 1.0):
        raise ValueError(f"momentum must be a number in [0, 1] (the weight of the new batch), got {value!r}.")


def tensor(name: str, x, n: int, dtype, unit: str = "channels", ranks: tuple[int, ...] | None = None) -> None:
    """``x`` is a floating-point torch tensor of layout ``(N, C, ...)`` with ``C == n`` (and, when the module
    has parameters or buffers, their ``dtype``); ``ranks`` restricts its number of dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}.")
    if ranks is not None and x.dim() not in ranks:
        shapes = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}
        names = [shapes[r] for r in ranks]
        raise ValueError(f"{name} expects input of shape {', '.join(names[:-1])} or {names[-1]}, got {x.dim()}-D "
                         f"input of shape {tuple(x.shape)}.")
    if x.dim() < 2:
        raise ValueError(f"{name} expects input of shape (N, C, ...), got {x.dim()}-D input of shape {tuple(x.shape)}.")
    if x.shape[1] != n:
        raise ValueError(f"{name} has {n} {unit} but the input has {x.shape[1]} channels (axis 1) in shape "
                         f"{tuple(x.shape)}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point tensor, got dtype {x.dtype}.")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}'s parameters and buffers are {dtype} but the input is {x.dtype}; convert one of them "
                        "(e.g. module.to(x.dtype)).")


def batch_stats(x, n: int) -> None:
    """Training-mode statistics need at least two values per channel."""
    if x.numel() < 2 * n:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}: "
                         "batch statistics need at least two values per channel.")
