"""Numbers of the three derivation chapters (book/transform.ipynb, book/backward.ipynb,
book/scale_invariance.ipynb): the MNIST pixels' variances after BN, the sigmoid's linear regime and
the learning-rate runs of softmax regression with and without BN.

SymPy stays out of this layer: a lambdified formula (``bnlib.symbolic.numeric()[...]``) or a result of
``bnlib.symbolic`` is computed in the notebook with one call and passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bnlib.reports.format import Glued, md, number, percent, power_bound
from bnlib.results import SATURATION_THRESHOLD

#: The relative error within which the measured variances of the normalized pixels must follow
#: sigma^2 / (sigma^2 + eps) (the transform chapter's assertion).
VAR_XHAT_TOLERANCE = 1e-12
#: The exercise tr-ex-eps: a pixel's batch variance, and the epsilons of PyTorch ("pt") and Keras ("k").
EX_PIXEL_VAR, EX_EPS = 1e-6, {"pt": 1e-5, "k": 1e-3}
#: The number of final steps over which the plain runs' training loss is averaged.
LATE_STEPS = 50


def _rel(got, want) -> float:
    """The normwise relative error ``max|got - want| / max|want|``, as ``bnlib.symbolic.relative_error``."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


# --------------------------------------------------------------------------- transform: moments
def pixel_moments_numbers(cache: Mapping, eps: float, var_xhat: Callable) -> dict[str, Glued]:
    """Section tr-moments on one mini-batch: constant and varying pixels, how many come out with a variance
    below 0.99, the smallest, and how closely the means (0) and variances (``var_xhat(var, eps)``) follow the theorem.

    ``cache`` is the cache of ``bnlib.functional.forward`` on the batch (gamma = 1, beta = 0); ``var_xhat``
    the lambdified sigma^2 / (sigma^2 + eps). Raises ValueError when the variances leave that curve.
    """
    var_x = np.asarray(cache["var"], dtype=float)
    xhat = np.asarray(cache["xhat"], dtype=float)
    var_hat = xhat.var(axis=0)
    predicted = var_xhat(var_x, eps)
    moving = var_x != 0
    if not moving.any():
        raise ValueError("every feature of the batch is constant, so there is no variance to compare.")
    err = _rel(var_hat, predicted)
    if not err <= VAR_XHAT_TOLERANCE:
        raise ValueError(f"the prose says the pixels' variances after BN lie on sigma^2/(sigma^2+eps), but they "
                         f"differ from it by a relative {err:.1e} (more than {VAR_XHAT_TOLERANCE:g}).")
    return {
        "tr_n_const": number(int((~moving).sum())),
        "tr_n_moving": number(int(moving.sum())),
        "tr_n_below": number(int((var_hat[moving] < 0.99).sum())),
        "tr_min_var": number(var_hat[moving].min(), 4),
        "tr_mean_abs": md(power_bound(np.abs(xhat.mean(axis=0)).max())),
        "tr_var_err": md(power_bound(err)),
        "tr_eps": number(eps, 8),
    }


def eps_exercise_numbers(var_xhat: Callable, var: float = EX_PIXEL_VAR,
                         eps_values: Mapping[str, float] = EX_EPS) -> dict[str, Glued]:
    """Exercise tr-ex-eps: the variance of xhat for a feature of batch variance ``var`` and the gain
    ``1/sqrt(var + eps)`` BN applies to it, for each epsilon of ``eps_values`` (key -> eps)."""
    if var < 0:
        raise ValueError(f"a variance cannot be negative, got {var}.")
    out = {}
    for key, e in eps_values.items():
        out[f"tr_ex_var_{key}"] = number(float(var_xhat(var, e)), 6)
        out[f"tr_ex_gain_{key}"] = number(1 / np.sqrt(var + e), 2)
    return out


# --------------------------------------------------------------------------- transform: sigmoid
def sigmoid_slope_share(z: float) -> float:
    """The sigmoid's slope at ``z`` as a share of its maximum 1/4."""
    s = 1 / (1 + math.exp(-z))
    return s * (1 - s) / 0.25


def sigmoid_numbers(fits: Mapping[float, Mapping[str, float]],
                    saturation_threshold: float = SATURATION_THRESHOLD) -> dict[str, Glued]:
    """Section tr-why-scale-shift: how linear the sigmoid is on N(0, 1) inputs (gamma = 1) and on gamma = 4.

    ``fits`` maps gamma to ``bnlib.symbolic.sigmoid_linear_fit(gamma)`` (1.0 and 4.0 are needed). The
    glossary's saturation, a slope below the one at ``saturation_threshold``, is shown as a share of
    the maximum. Raises ValueError when the slope at the 95% edge is itself saturated.
    """
    missing = [g for g in (1.0, 4.0) if g not in fits]
    if missing:
        raise ValueError(f"fits must hold the sigmoid fits for gamma = 1 and 4; missing {missing}.")
    f1, f4 = fits[1.0], fits[4.0]
    saturated = sigmoid_slope_share(saturation_threshold)
    if not f1["slope_edge"] > saturated:
        raise ValueError(f"the prose says the sigmoid's slope at the edge of 95% of N(0, 1) inputs is far from "
                         f"saturation, but it is {f1['slope_edge']:.3g} of the maximum (saturated: {saturated:.3g}).")
    return {
        "tr_sig_r2": percent(f1["r2"], 1),
        "tr_sig_range": percent(f1["range_95"], 1),
        "tr_sig_slope": percent(f1["slope_edge"], 1),  # the table beside it shows 0.433: one decimal of a percent
        "tr_sig_hi": number(f1["hi"], 2),
        "tr_sig_r2_4": percent(f4["r2"], 1),
        "tr_sat_pct": percent(saturated, 1),
        "tr_sig_range_4": percent(f4["range_95"], 2),
    }


# --------------------------------------------------------------------------- scale invariance: learning rates
def _lr_key(lr: float) -> str:
    return f"{lr:g}".replace(".", "_")


def lr_rows(runs: Mapping[tuple[float, bool], Mapping], lrs: Sequence[float]) -> list[dict]:
    """Per learning rate, from ``bnlib.sgd.run`` results keyed ``(lr, bn)``: the BN run's final mean
    weight norm, effective learning rate ``lr/|w|^2`` and test accuracy; the plain run's test accuracy
    and mean training loss over the last :data:`LATE_STEPS` steps."""
    missing = [(lr, bn) for lr in lrs for bn in (True, False) if (lr, bn) not in runs]
    if missing:
        raise ValueError(f"runs must hold a run with and without BN for every learning rate; missing {missing}.")
    rows = []
    for lr in lrs:
        r, q = runs[(lr, True)], runs[(lr, False)]
        norm = r["norm"][-1]
        rows.append({"lr": lr, "norm": norm, "eff": lr / norm**2, "acc_bn": r["acc"], "acc_plain": q["acc"],
                     "loss_plain": q["loss"][-LATE_STEPS:].mean()})
    return rows


def lr_numbers(runs: Mapping[tuple[float, bool], Mapping], lrs: Sequence[float], *, steps: int, batch: int,
               n_train: int) -> dict[str, Glued]:
    """Section si-learning-rate: per learning rate the accuracies, the BN run's final norm and effective
    rate and the plain run's late loss; then the initial norm, the growth law's worst gap and the setup.

    Raises ValueError when a run diverged, when the effective rates do not fall as the learning rate grows,
    or when the largest rate does not leave the BN model behind the smallest, as the prose says.
    """
    lrs = sorted(lrs)
    rows = lr_rows(runs, lrs)
    if not all(np.all(np.isfinite(runs[(lr, bn)]["loss"])) for lr in lrs for bn in (True, False)):
        raise ValueError("the prose says no learning rate made either model diverge, but a run's loss is not finite.")
    if not all(a["eff"] > b["eff"] for a, b in zip(rows, rows[1:], strict=False)):
        raise ValueError("the prose says the effective learning rates lr/|w|^2 come out in reverse order of lr, "
                         "but they do not fall as lr grows.")
    if not rows[-1]["acc_bn"] < rows[0]["acc_bn"]:
        raise ValueError("the prose says the largest learning rate leaves the BN model behind the smallest, "
                         "but its test accuracy is not lower.")
    out = {}
    for row in rows:
        key = _lr_key(row["lr"])
        out[f"si_acc_bn_{key}"] = percent(row["acc_bn"], 1)
        out[f"si_acc_plain_{key}"] = percent(row["acc_plain"], 1)
        out[f"si_norm_{key}"] = number(row["norm"], 3)
        out[f"si_eff_{key}"] = number(row["eff"], 6)
        out[f"si_loss_plain_{key}"] = number(row["loss_plain"], 3)
    out.update({
        "si_norm_init": number(runs[(lrs[0], True)]["norm"][0], 4),
        "si_growth": md(power_bound(max(runs[(lr, True)]["growth"] for lr in lrs))),
        "si_steps": number(steps),
        "si_batch": number(batch),
        "si_ntrain": number(n_train),
    })
    return out


def eps_floor_exercise_numbers(eps: float, var: float = 1.0, tolerance: float = 0.01) -> dict[str, Glued]:
    """Exercise si-ex-eps-floor: the scale ``a`` below which BN's output for a unit of variance ``var``
    changes by more than ``tolerance``, ``sqrt(eps / (2 tolerance var))`` (first order in eps/(a^2 var))."""
    if not (eps > 0 and var > 0 and tolerance > 0):
        raise ValueError(f"eps, the variance and the tolerance must be positive, got {eps}, {var}, {tolerance}.")
    return {"si_ex_a": number(np.sqrt(eps / (2 * tolerance * var)), 6)}
