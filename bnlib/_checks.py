"""The one-sentence argument checks that functional, nn and norms share: each says what was wrong and
what was expected, as a ValueError or TypeError."""

from __future__ import annotations

import math

import numpy as np
import torch


def float_array(name: str, a, finite: bool = True) -> np.ndarray:
    """``a`` is a float32/float64 NumPy array (and, with ``finite``, has no NaN or infinity); returned in the
    machine's byte order (a big-endian float64 array is converted, not refused). A masked array is refused:
    NumPy's arithmetic ignores the mask in some operations and not in others, so results would not agree."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain NumPy array, got a masked array; pass a.filled(value) or "
                        "a.compressed() to say what the masked entries mean.")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of float32 or float64, got {type(a).__name__}.")
    if a.dtype.kind == "f" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}.")
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values; the statistics would be undefined.")
    return a


def per_channel(name: str, a, c: int, dtype) -> np.ndarray:
    """``a`` is a finite float vector of one value per channel, returned in ``dtype``."""
    a = float_array(name, a)
    if a.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},), one value per channel of x, got {a.shape}.")
    return a.astype(dtype, copy=False)


def bshape(x: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``x``."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def positive_int(name: str, v) -> int:
    """``v`` is an integer >= 1 (Python or NumPy, not bool); returned as a Python int."""
    if isinstance(v, bool) or not (isinstance(v, (int, np.integer)) and v >= 1):
        raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    return int(v)


def non_negative_int(name: str, v) -> int:
    """``v`` is an integer >= 0 (Python or NumPy, not bool); returned as a Python int."""
    if isinstance(v, bool) or not (isinstance(v, (int, np.integer)) and v >= 0):
        raise ValueError(f"{name} must be a non-negative integer, got {v!r}.")
    return int(v)


def number(name: str, v, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, finite: bool = True, what: str = "") -> float:
    """``v`` is a real number (Python or NumPy, not bool) in the interval given by ``lo``/``hi`` (closed unless
    ``lo_open``/``hi_open``), finite unless ``finite=False``; returned as a Python float. A non-number is a
    TypeError, a number out of range (or NaN) a ValueError."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number{what}, got {type(v).__name__} {v!r}.")
    f = float(v)
    bad = math.isnan(f) or (finite and not math.isfinite(f))
    bad = bad or (lo is not None and (f <= lo if lo_open else f < lo))
    bad = bad or (hi is not None and (f >= hi if hi_open else f > hi))
    if bad:
        lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
        hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
        rng = " and ".join(p for p in (lo_s, hi_s) if p)
        fin = "finite " if finite else ""
        raise ValueError(f"{name} must be a {fin}number{' ' + rng if rng else ''}{what}, got {v!r}.")
    return f


def choice(name: str, v, options) -> None:
    """``v`` is one of ``options`` (strings, numbers or None; compared by type and value, so ``True`` is not 1)."""
    if not any(v is o or (type(v) is type(o) and v == o) for o in options):
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {v!r}.")


def flag(name: str, v) -> bool:
    """``v`` is a bool (or a NumPy bool)."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(v).__name__} {v!r}.")
    return bool(v)


def eps(value) -> None:
    """A finite non-negative number (Python or NumPy)."""
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
