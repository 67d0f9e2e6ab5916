"""The numbers of book/geometry.ipynb, from what :mod:`bnlib.geometry` measures (dicts of plain numbers): the norm
growth along a run, the weight-decay equilibrium, the equivalent learning-rate schedule and the growth of
gradients at initialization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bnlib.reports.evidence import mean_interval
from bnlib.reports.format import Glued, Table, fmt_mean_hw, number, power_bound, text

#: Errors at float64 rounding, accumulated over a training run, differ from one CPU to another: shown no finer.
FLOOR = 1e-12


def _contains(values: Sequence[float], x: float) -> bool:
    """Whether the 95% interval of the mean of ``values`` contains ``x``."""
    m, hw = mean_interval(values)
    return m - hw <= x <= m + hw


def norm_growth_numbers(r: dict) -> dict[str, Glued]:
    """The run of :func:`bnlib.geometry.norm_growth`: the identity's error, the largest cosine between a row and its
    gradient, and the mean squared norm, effective rate and rotation at the first and last step."""
    last = len(r["norm2"]) - 1
    return {"geo_ng_steps": number(r["steps"]), "geo_ng_lr": number(r["lr"]), "geo_ng_sigma": number(r["init_sigma"]),
            "geo_ng_eps": text(power_bound(r["eps"])),
            "geo_ng_err": text(power_bound(r["growth_rel"], FLOOR)),
            "geo_ng_cos": text(power_bound(r["cos_max"], FLOOR)),
            "geo_ng_norm0": number(r["norm2"][0], 4), "geo_ng_norm1": number(r["norm2"][last], 3),
            "geo_ng_norm_x": number(r["norm2"][last] / r["norm2"][0], 0),
            "geo_ng_eff0": number(r["eff_lr"][0], 0), "geo_ng_eff1": number(r["eff_lr"][last], 1),
            "geo_ng_ang0": number(r["angle"][0], 3), "geo_ng_ang1": number(r["angle"][last], 3)}


def _mean_hw(values: Sequence[float], digits: int = 2) -> str:
    m, hw = mean_interval(values)
    return fmt_mean_hw(m, hw, scale=1, digits=digits)


def equilibrium_numbers(mnist: dict, cifar: Sequence[dict]) -> dict[str, Glued]:
    """The equilibrium section: ``mnist`` is :func:`bnlib.geometry.ledger_measurements`'s ``"equilibrium"``,
    ``cifar`` a list of :func:`bnlib.geometry.equilibrium` runs of the CNN (one per seed)."""
    run = mnist["runs"][0]
    c = cifar[0]
    return {"geo_eq_lr": number(run["lr"]), "geo_eq_wd": number(run["weight_decay"]),
            "geo_eq_mu": number(run["momentum"]),
            "geo_eq_steps": number(len(run["angle"])), "geo_eq_n": number(len(mnist["ratios"])),
            "geo_eq_pred": number(mnist["predicted"], 4), "geo_eq_meas": text(_mean_hw(mnist["measured"], 3)),
            "geo_eq_ratio": text(_mean_hw(mnist["ratios"])),
            "geo_eq_c_steps": number(len(c["angle"])), "geo_eq_c_wd": number(c["weight_decay"]),
            "geo_eq_c_n": number(len(cifar)), "geo_eq_c_pred": number(c["predicted"], 4),
            "geo_eq_c_ratio": text(_mean_hw([r["ratio"] for r in cifar]))}


def decay_numbers(check: dict) -> dict[str, Glued]:
    """The equivalence section from :func:`bnlib.geometry.exp_lr_check` (with ``control_out_rel``)."""
    lr_t = np.asarray(check["lr_tilde"])
    before = lr_t[check["decay_at"] - 1] / lr_t[0]
    return {"geo_ex_steps": number(check["steps"]), "geo_ex_lr": number(check["lr"]),
            "geo_ex_wd": number(check["weight_decay"]), "geo_ex_mu": number(check["momentum"]),
            "geo_ex_at": number(check["decay_at"]), "geo_ex_decay": number(check["decay"]),
            "geo_ex_out": text(power_bound(check["out_rel"], FLOOR)),
            "geo_ex_w": text(power_bound(check["weight_rel"], FLOOR)),
            "geo_ex_control": number(check["control_out_rel"], 2),
            "geo_ex_grow": number(before, 2), "geo_ex_c": number(check["c"][-1], 3),
            "geo_ex_end": number(lr_t[-1] / (check["lr"] * check["decay"]), 2)}


def growth_table(grid: Mapping[tuple[str, int], Sequence[dict]]) -> Table:
    """Per activation and batch size, the fitted per-layer growth factor with BN (seed mean ± 95% half-width),
    the same after one SGD step, and Yang et al.'s prediction where there is one; ``grid`` maps
    ``(activation, batch)`` to :func:`bnlib.geometry.gradient_growth` results, one per seed."""
    rows = []
    for (act, b), runs in grid.items():
        pred = runs[0]["predicted"]
        rows.append([act, b, _mean_hw([r["rate"] for r in runs], 3), _mean_hw([r["rate_after"] for r in runs], 3),
                     "–" if pred is None else f"{pred:.3f}"])
    return Table(["nonlinearity", "batch", "growth per layer", "after one step", "predicted"], rows)


def growth_numbers(grid: Mapping[tuple[str, int], Sequence[dict]], ledger: dict) -> dict[str, Glued]:
    """The depth section: the ledger's ReLU and tanh factors with and without BN (seed means), the depth, and
    for ReLU at batch 64 the ratio of the first layer's to the last layer's squared gradient norm before and
    after one step (seed medians)."""
    out = {}
    for act in ("relu", "tanh"):
        for key in ("bn", "none"):
            out[f"geo_d_{act}_{key}"] = number(float(np.mean(ledger[act][key])), 2)
    runs = grid[("relu", 64)]
    span = [r["norms2"][0] / r["norms2"][-1] for r in runs]
    after = [r["norms2_after"][0] / r["norms2_after"][-1] for r in runs]
    lin = [b for (act, b), rs in grid.items() if act == "linear"]
    held = [b for b in lin if _contains([r["rate"] for r in grid[("linear", b)]], grid[("linear", b)][0]["predicted"])]
    relu_b = max(b for act, b in grid if act == "relu")
    relu_big = grid[("relu", relu_b)]
    dev = float(np.mean([r["rate"] for r in relu_big])) / relu_big[0]["predicted"] - 1
    out |= {"geo_d_linear_held": text("at every batch size" if held == lin else
                                      "at batch " + ", ".join(map(str, held)) if held else "at no batch size"),
            "geo_d_relu_b": number(relu_b), "geo_d_relu_dev": number(100 * dev, 1),
            "geo_d_step": number(runs[0]["step_lr"])}
    return out | {"geo_d_depth": number(runs[0]["depth"]), "geo_d_width": number(runs[0]["width"]),
                  "geo_d_n": number(len(runs)), "geo_d_span": text(f"{float(np.median(span)):.1e}"),
                  "geo_d_span_after": text(f"{float(np.median(after)):.2g}")}
