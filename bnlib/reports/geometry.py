"""The numbers of book/geometry.ipynb, from what :mod:`bnlib.geometry` measures (dicts of plain numbers): the norm
growth along a run, the weight-decay equilibrium, the equivalent learning-rate schedule and the growth of
gradients at initialization; and the depth x learning-rate trainability map from the engine's results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bnlib.reports.evidence import mean_interval, paired
from bnlib.reports.format import Glued, Table, and_list, fmt_mean_hw, fmt_paired, number, power_bound, text
from bnlib.reports.rules import CHANCE
from bnlib.results import score

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
    ``cifar`` a list of :func:`bnlib.geometry.equilibrium` runs of the CNN (one per seed). Raises when what the
    prose states no longer holds: the prediction overestimates the measured rotation in both networks (the 95%
    interval of the ratio below 1) by less than a fifth (its lower end above 0.8)."""
    run = mnist["runs"][0]
    c = cifar[0]
    for name, ratios in (("MNIST MLP", mnist["ratios"]), ("CIFAR-10 CNN", [r["ratio"] for r in cifar])):
        m, hw = mean_interval(ratios)
        if not (0.8 < m - hw and m + hw < 1):
            raise ValueError(f"the prose says the prediction slightly overestimates the rotation of the {name}, but "
                             f"the ratio is {m:.3f} ± {hw:.3f}.")
    return {"geo_eq_lr": number(run["lr"]), "geo_eq_wd": number(run["weight_decay"]),
            "geo_eq_mu": number(run["momentum"]),
            "geo_eq_steps": number(len(run["angle"])), "geo_eq_n": number(len(mnist["ratios"])),
            "geo_eq_pred": number(mnist["predicted"], 4), "geo_eq_meas": text(_mean_hw(mnist["measured"], 4)),
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
    n = len(next(iter(grid.values())))
    return Table(["nonlinearity", "batch", "growth per layer", "after one step", "predicted"], rows,
                 caption=f"Per-layer growth of the squared weight-gradient norm with BN, at initialization and after "
                         f"one SGD step (mean ± 95% half-width over {n} seeds), against Yang et al.'s prediction.")


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


# --------------------------------------------------------------------------- the trainability map
#: A cell of the map *trains* when the seed mean of its final validation accuracy (population statistics for BN;
#: a diverged seed counted at chance) is at least this. Fixed before the map was computed.
TRAINS_ABOVE = 0.8


def trainability_grid(runs: Mapping[str, dict]) -> dict[tuple[str, int, float], dict]:
    """The map from an experiment's runs (:func:`bnlib.experiments.geo_trainability`): per ``(network, depth,
    rate)``, with ``network`` "bn" or "none" and ``depth`` the number of hidden layers, the seeds and their final
    validation accuracies in seed order (``val``; chance for a diverged seed), how many seeds diverged, and whether
    the cell trains (:data:`TRAINS_ABOVE`)."""
    cells: dict[tuple[str, int, float], dict] = {}
    for run in runs.values():
        c = run["config"]
        key = ("bn" if c["norm"] else "none", len(c["sizes"]) - 2, float(c["lr"]))
        v = score(run, "val")
        cells.setdefault(key, []).append((c["seed"], CHANCE if v is None else v,
                                          run["summary"].get("diverged_at") is not None))
    out = {}
    for key, rows in sorted(cells.items()):
        rows.sort()
        val = [v for _, v, _ in rows]
        out[key] = {"seeds": [s for s, _, _ in rows], "val": val, "diverged": sum(d for _, _, d in rows),
                    "mean": float(np.mean(val)), "trains": float(np.mean(val)) >= TRAINS_ABOVE}
    return out


def _rates_that_train(grid: Mapping, net: str, depth: int) -> list[float]:
    return [lr for (n, d, lr), cell in grid.items() if n == net and d == depth and cell["trains"]]


def trainability_numbers(grid: Mapping[tuple[str, int, float], dict], config: Mapping) -> dict[str, Glued]:
    """The map in words, per network: at each depth, the rates that train (``geo_map_{net}_story``), the largest one
    depth by depth (``geo_map_{net}_tops``), and the number of cells with a diverged seed; BN minus no BN at the
    deepest depth and the smallest rate, paired by seed; the threshold; and the setting, from ``config`` (one run's
    configuration: width, steps, batch, training images). Raises when what the prose states no longer holds: the
    largest rate that trains with BN falls with depth (never rising, lower at the deepest than at the shallowest),
    and a seed diverges in some cell without BN and in none with BN."""
    depths = sorted({d for _, d, _ in grid})
    rates = sorted({lr for _, _, lr in grid})
    out = {"geo_map_width": number(config["sizes"][1]), "geo_map_steps": number(config["steps"]),
           "geo_map_batch": number(config["batch_size"]), "geo_map_images": number(config["train_subset"]),
           "geo_map_threshold": number(100 * TRAINS_ABOVE), "geo_map_depths": text(and_list(depths)),
           "geo_map_rates": text(and_list([f"{lr:g}" for lr in rates])),
           "geo_map_seeds": number(len(next(iter(grid.values()))["val"]))}
    tops = {}
    for net in ("none", "bn"):
        parts = []
        for d in depths:
            ok = _rates_that_train(grid, net, d)
            parts.append(f"at {d} layers no rate" if not ok else
                         f"at {d} layers {ok[0]:g}" if len(ok) == 1 else f"at {d} layers {ok[0]:g} to {ok[-1]:g}")
        out[f"geo_map_{net}_story"] = text("; ".join(parts))
        out[f"geo_map_{net}_diverged"] = number(sum(c["diverged"] > 0 for (n, _, _), c in grid.items() if n == net))
        tops[net] = [max(_rates_that_train(grid, net, d), default=0.0) for d in depths]
        out[f"geo_map_{net}_tops"] = text(and_list([f"{t:g}" if t else "none" for t in tops[net]]))
        out[f"geo_map_{net}_top_shallow"] = text(f"{tops[net][0]:g}" if tops[net][0] else "none")
    bn = tops["bn"]
    if any(b > a for a, b in zip(bn, bn[1:], strict=False)) or not bn[-1] < bn[0]:
        raise ValueError("the prose says the largest rate that trains with BN falls with depth, but it does not: "
                         + ", ".join(f"{t:g}" for t in bn) + ".")
    if out["geo_map_bn_diverged"].value or not out["geo_map_none_diverged"].value:
        raise ValueError("the prose says high rates diverge without BN and never with BN, which no longer holds.")
    deep, small = depths[-1], rates[0]
    a, b = grid[("bn", deep, small)], grid[("none", deep, small)]
    if a["seeds"] != b["seeds"]:
        raise ValueError(f"BN and no BN at {deep} layers and rate {small:g} ran different seeds.")
    out |= {"geo_map_deep": number(deep), "geo_map_small": number(small),
            "geo_map_deep_bn": number(100 * a["mean"], 3), "geo_map_deep_none": number(100 * b["mean"], 3),
            "geo_map_deep_vs": text(fmt_paired(p := paired(a["val"], b["val"]))),
            "geo_map_deep_word": text("an interval that contains zero: inconclusive" if p.lo <= 0 <= p.hi else
                                      "an interval that excludes zero")}
    return out

