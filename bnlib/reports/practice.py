"""The numbers of book/practice.ipynb, from what :mod:`bnlib.practice` computes (dicts of plain numbers): the
shard check of SyncBatchNorm, the freezing table, the bias before BN, the statistics re-estimated on a shifted
domain and the per-device batch."""

from __future__ import annotations

import numpy as np

from bnlib.reports.evidence import direction, mean_interval, paired
from bnlib.reports.format import Glued, Table, and_list, fmt_mean_hw, fmt_paired, md, number, percent, power_bound, text
from bnlib.reports.rules import CHANCE
from bnlib.results import score, seeds_of

#: Errors at float64 rounding differ from one CPU to another: shown no finer than this.
FLOOR = 1e-13


def shard_numbers(r: dict) -> dict[str, Glued]:
    """:func:`bnlib.practice.shard_check`'s result: the split, and each difference as the power of ten above it."""
    split = r["split"]
    out = {"pr_sync_procs": number(r["processes"]), "pr_sync_steps": number(r["steps"]),
           "pr_sync_split": text(" and ".join(str(k) for k in split)), "pr_sync_total": number(sum(split)),
           "pr_sync_local": number(r["local"], 2)}
    out |= {f"pr_sync_{k}": text(power_bound(r[k], FLOOR)) for k in ("out", "dx", "dparams", "running")}
    return out


def freezing_table(rows: list[dict]) -> Table:
    """One line per way of :func:`bnlib.practice.freezing_check`: what one SGD step changed."""
    yes = {True: "changed", False: "frozen"}
    return Table(["during the step", "gamma, beta", "running statistics", "other weights", "eval output moved by"],
                 [[r["way"], yes[r["gamma_beta"]], yes[r["running"]], yes[r["weights"]], f"{r['output']:.2f}"]
                  for r in rows])


def freezing_numbers(rows: list[dict]) -> dict[str, Glued]:
    """Which ways freeze what, in words, for the prose; raises ValueError when torch no longer behaves as the prose
    says (eval mode stops the running statistics only, ``requires_grad=False`` the parameters only, and only both
    together fix the layer)."""
    by = {r["way"]: r for r in rows}
    frozen = [w for w, r in by.items() if not r["gamma_beta"] and not r["running"]]
    said = {"model.eval()": (True, False), "requires_grad=False": (False, True)}  # (gamma, beta) move, stats move
    for way, (params, running) in said.items():
        if (by[way]["gamma_beta"], by[way]["running"]) != (params, running):
            raise ValueError(f"the prose says {way} {'leaves' if params else 'stops'} gamma and beta and "
                             f"{'leaves' if running else 'stops'} the running statistics, which no longer holds.")
    if frozen != ["eval() and requires_grad=False"]:
        raise ValueError(f"the prose says only eval() with requires_grad=False fixes the layer, but {frozen} do.")
    return {"pr_freeze_eval_running": text(yes_no(not by["model.eval()"]["running"])),
            "pr_freeze_eval_params": text(yes_no(not by["model.eval()"]["gamma_beta"])),
            "pr_freeze_rg_running": text(yes_no(not by["requires_grad=False"]["running"])),
            "pr_freeze_both": text(", ".join(frozen) or "none")}


def keras_numbers(r: dict) -> dict[str, Glued]:
    """:func:`bnlib.conventions.keras_check`: the loop's steps, how far each frozen layer's running mean moved, and
    PyTorch's running-variance update over Keras's for one batch. Raises when what the prose states no longer holds:
    the PyTorch layer frozen with ``eval()`` moves under the loop's ``model.train()``, the Keras one does not,
    neither's gamma moves, the ratio is ``m / (m - 1)`` and the two layers' training outputs agree."""
    m = r["batch"]
    if not (r["torch"]["mean_moved"] > 1e-6 and r["keras"]["mean_moved"] == 0 and not r["torch"]["gamma_moved"]
            and not r["keras"]["gamma_moved"] and abs(r["var_ratio"] - m / (m - 1)) < 1e-9
            and max(r["out_diff"], r["mean_diff"]) < 1e-10):
        raise ValueError(f"the prose about Keras's trainable = False and its moving variance no longer holds: {r}.")
    return {"pr_keras_steps": number(r["steps"]), "pr_keras_batch": number(m),
            "pr_keras_torch_moved": number(r["torch"]["mean_moved"], 3),
            "pr_keras_keras_moved": number(r["keras"]["mean_moved"], 3), "pr_keras_ratio": number(r["var_ratio"], 4),
            "pr_keras_out": text(power_bound(r["out_diff"], FLOOR))}


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def bias_numbers(r: dict) -> dict[str, Glued]:
    """:func:`bnlib.practice.bias_cancels`: the bias's size, the output difference and the bias gradient (bounds)."""
    return {"pr_bias_scale": number(r["scale"]), "pr_bias_out": text(power_bound(r["out_diff"], FLOOR * 10)),
            "pr_bias_grad": text(power_bound(r["bias_grad"], FLOOR * 10)),
            "pr_bias_wgrad": number(r["weight_grad"], 0)}


# --------------------------------------------------------------------------- statistics on a shifted domain
#: The margin of the adaptation section's words (one point of accuracy), as in the ledger's rule.
ADAPT_MARGIN = 0.01
#: The words for a change of accuracy, by its direction against :data:`ADAPT_MARGIN`.
CHANGE = {"higher": "a gain", "lower": "a loss", "level": "no change beyond one point",
          "inconclusive": "no clear change"}
#: The prior strength the chapter compares against the target's statistics alone (N of Schneider et al.).
PRIOR = 16


def _pct(values) -> str:
    m, hw = mean_interval(values)
    return fmt_mean_hw(m, hw, digits=1)


def adaptation_table(r: dict) -> Table:
    """Test accuracy (%, seed mean ± half-width) on each shifted test set, with the source statistics and with
    statistics re-estimated from n shifted images, for each prior N, and from every held-out image
    (:func:`bnlib.practice.adaptation_check`)."""
    sizes = r["sizes"]
    cells = []
    for s in r["shifts"]:
        for i, p in enumerate(r["priors"]):
            cells.append([s if i == 0 else "", _pct(r["source"][s]) if i == 0 else "", f"N = {p}",
                          *(_pct(r["adapted"][s][str(p)][str(n)]) for n in sizes), _pct(r["all"][s]) if i == 0 else ""])
    return Table(["shift", "source statistics", "prior", *(f"n = {n}" for n in sizes), f"all {r['n_pool']:,}"],
                 cells)


def _direction(p) -> str:
    return direction(p, ADAPT_MARGIN)


def adaptation_numbers(r: dict) -> dict[str, Glued]:
    """The adaptation section's numbers: the source network's setting and clean accuracy; per shift the accuracy
    with the source statistics, re-estimated from the largest n (prior 0) and from every held-out image, and the
    change from the source statistics in the words of :data:`CHANGE` with its interval;
    for the smallest n, the prior :data:`PRIOR` against none."""
    big, small = max(r["sizes"]), min(r["sizes"])
    out = {"pr_adapt_steps": number(r["steps"]), "pr_adapt_seeds": number(len(r["seeds"])),
           "pr_adapt_pool": number(r["n_pool"]), "pr_adapt_clean": percent(np.mean(r["clean"])),
           "pr_adapt_big": number(big), "pr_adapt_small": number(small), "pr_adapt_prior": number(PRIOR),
           "pr_adapt_sizes": text(", ".join(map(str, r["sizes"])))}
    for s in r["shifts"]:
        adapted = r["adapted"][s]["0"][str(big)]
        p = paired(adapted, r["source"][s])
        out |= {f"pr_adapt_{s}_source": percent(np.mean(r["source"][s])),
                f"pr_adapt_{s}_big": percent(np.mean(adapted)),
                f"pr_adapt_{s}_all": percent(np.mean(r["all"][s])),
                f"pr_adapt_{s}_change": md(f"{CHANGE[_direction(p)]}: {fmt_paired(p)}")}
        m = np.mean(adapted)
        out[f"pr_adapt_{s}_chance"] = text("below chance" if m < 0.08 else "above chance" if m > 0.12 else "at chance")
        q = paired(r["adapted"][s][str(PRIOR)][str(small)], r["adapted"][s]["0"][str(small)])
        out[f"pr_adapt_{s}_prior"] = md(f"{_direction(q)} ({fmt_paired(q)})")
    return out


# --------------------------------------------------------------------------- gamma and beta alone
#: How the chapter names the ways of :func:`bnlib.practice.affine_only_check`.
AFFINE_NAMES = {"bn": "only BN's gamma and beta", "random": "as many randomly chosen weights",
                "last": "only the output layer"}


def affine_table(r: dict) -> Table:
    """Test accuracy (%, seed mean ± half-width) of the network trained in each way, with how many values it
    trains."""
    return Table(["trained", "values trained", "test acc. (%)"],
                 [[AFFINE_NAMES[w], f"{r['trained'][w]:,}", _pct(r["acc"][w])] for w in r["ways"]])


def affine_numbers(r: dict) -> dict[str, Glued]:
    """The section's numbers: the setting, each way's mean accuracy, gamma and beta against as many random weights
    and against the output layer (paired by seed, in words), and the fraction of gammas switched off."""
    out = {"pr_affine_steps": number(r["steps"]), "pr_affine_seeds": number(len(r["seeds"])),
           "pr_affine_k": number(r["trained"]["bn"]), "pr_affine_off": percent(np.mean(r["off"])),
           "pr_affine_off_max": percent(max(r["off"])), "pr_affine_gamma_off": number(r["gamma_off"])}
    out |= {f"pr_affine_{w}": percent(np.mean(r["acc"][w])) for w in r["ways"]}
    for w in r["ways"]:
        if w != "bn":
            p = paired(r["acc"]["bn"], r["acc"][w])
            out[f"pr_affine_bn_vs_{w}"] = md(f"{_direction(p)} ({fmt_paired(p)})")
    if "last" in r["trained"]:
        out["pr_affine_k_last"] = number(r["trained"]["last"])
    return out


# --------------------------------------------------------------------------- BN before or after the nonlinearity
#: Where the placement experiment puts BN, as its labels name it (``<activation>-<placement>``).
PLACEMENTS = {"none": "no BN", "pre": "BN before the nonlinearity", "post": "BN after the nonlinearity"}


def _scores(res: dict, label: str, split: str = "test") -> list[float]:
    """Per seed, the final accuracy of ``label`` (population statistics for BN; a diverged run at chance)."""
    return [CHANCE if (v := score(r, split)) is None else float(v) for r in seeds_of(res, label)]


def _diverged_seeds(res: dict, label: str) -> tuple[int, int]:
    """How many of ``label``'s seeds diverged, and how many seeds it has."""
    runs = seeds_of(res, label)
    return sum(r["summary"].get("diverged_at") is not None for r in runs), len(runs)


def placement_table(res: dict, activations=("sigmoid", "relu")) -> Table:
    """Per activation and placement: final validation and test accuracy (%, seed mean ± half-width) and, for BN,
    the difference from BN before the nonlinearity (test, paired by seed). A network with seeds that diverge
    says how many beside its name: they count at chance, which is what widens its interval."""
    cells = []
    for act in activations:
        pre = _scores(res, f"{act}-pre")
        for pos, name in PLACEMENTS.items():
            test = _scores(res, f"{act}-{pos}")
            k, n = _diverged_seeds(res, f"{act}-{pos}")
            name = f"{name} ({k} of {n} seeds diverge)" if k else name
            cells.append([act, name, _pct(_scores(res, f"{act}-{pos}", "val")), _pct(test),
                          fmt_paired(paired(test, pre)) if pos == "post" else ""])
    return Table(["nonlinearity", "network", "val. acc. (%)", "test acc. (%)", "after - before (test)"], cells)


def placement_numbers(res: dict, activations=("sigmoid", "relu")) -> dict[str, Glued]:
    """The placement section's numbers: per activation, each network's mean test accuracy, BN after minus BN before
    and the better of the two placements minus no BN, in words with their intervals; the number of seeds."""
    out: dict[str, Glued] = {"pr_place_seeds": number(len(seeds_of(res, f"{activations[0]}-pre")))}
    for act in activations:
        acc = {pos: _scores(res, f"{act}-{pos}") for pos in PLACEMENTS}
        out |= {f"pr_place_{act}_{pos}": percent(np.mean(v)) for pos, v in acc.items()}
        p = paired(acc["post"], acc["pre"])
        out[f"pr_place_{act}_post_vs_pre"] = md(f"{_direction(p)} ({fmt_paired(p)})")
        best = max(("pre", "post"), key=lambda pos: np.mean(_scores(res, f"{act}-{pos}", "val")))
        q = paired(acc[best], acc["none"])
        out[f"pr_place_{act}_best"] = text(PLACEMENTS[best])
        out[f"pr_place_{act}_bn_vs_none"] = md(f"{_direction(q)} ({fmt_paired(q)})")
        k, n = _diverged_seeds(res, f"{act}-none")
        out[f"pr_place_{act}_none_diverged"] = text(f"diverges on {k} of {n} seeds (each counted at chance)"
                                                    if k else "diverges on none of the seeds")
    return out


# --------------------------------------------------------------------------- fine-tuning with BN frozen or not
#: How the chapter names the modes of :func:`bnlib.practice.finetune_check`.
FINETUNE_NAMES = {"none": "not fine-tuned", "updated": "BN updated", "frozen": "BN frozen",
                  "re-estimated": "BN re-estimated, then frozen"}


def finetune_table(r: dict) -> Table:
    """Test accuracy (%, seed mean ± half-width) on each shifted test set after fine-tuning in each mode."""
    return Table(["shift", *(FINETUNE_NAMES[m] for m in r["modes"])],
                 [[s, *(_pct(r["acc"][s][m]) for m in r["modes"])] for s in r["shifts"]])


def finetune_numbers(r: dict) -> dict[str, Glued]:
    """The fine-tuning section's numbers: the setting; per shift and mode the mean accuracy; per shift BN updated
    against BN frozen, and re-estimated-then-frozen against frozen (paired by seed, in words)."""
    out: dict[str, Glued] = {"pr_tune_n": number(r["n_labelled"]), "pr_tune_steps": number(r["steps"]),
                             "pr_tune_lr": number(r["lr"])}
    for s in r["shifts"]:
        acc = r["acc"][s]
        out |= {f"pr_tune_{s}_{m.replace('-', '_')}": percent(np.mean(v)) for m, v in acc.items()}
        for a, b in (("updated", "frozen"), ("re-estimated", "frozen")):
            p = paired(acc[a], acc[b])
            out[f"pr_tune_{s}_{a.replace('-', '_')}_vs_{b}"] = md(f"{_direction(p)} ({fmt_paired(p)})")
    if {"noise", "inverted"} <= set(r["shifts"]):
        said = {"noise": ("level", "lower", "inconclusive"), "inverted": ("higher",)}
        for s, allowed in said.items():
            if _direction(paired(r["acc"][s]["updated"], r["acc"][s]["frozen"])) not in allowed:
                cost = "costs nothing" if s == "noise" else "costs most of the gain"
                raise ValueError(f"the prose says freezing BN {cost} under {s}, which no longer holds.")
    return out


# --------------------------------------------------------------------------- the per-device batch
#: The words for a difference of accuracy in the per-device section: :data:`CHANGE`, but an interval that straddles
#: the one-point margin may well exclude zero, so it is not called "no clear change".
DEVICE_CHANGE = CHANGE | {"inconclusive": "not clearly beyond one point either way"}
#: How the chapter names the normalizations of :func:`bnlib.practice.device_batch_check`.
DEVICE_NAMES = {"local": "local BN", "sync": "SyncBN", "group": "Group Norm"}


def ddp_numbers(r: dict) -> dict[str, Glued]:
    """:func:`bnlib.practice.ddp_check`: the setting and each parameter difference as the power of ten above it.
    Raises when what the prose states no longer holds: data-parallel local BN equals BN over each shard in one
    process, SyncBN equals BN over the whole batch (both to float64 rounding), and the two differ."""
    if max(r["local_ghost"], r["sync_global"], r["ranks_agree"]) > 1e-10 or r["local_global"] < 1e-6:
        raise ValueError("the prose says data-parallel local BN is BN over each shard and SyncBN is BN over the "
                         f"whole batch, to float64 rounding, and that the two differ; got {r}.")
    return {"pr_ddp_devices": number(r["devices"]), "pr_ddp_per": number(r["per_device"]),
            "pr_ddp_steps": number(r["steps"]), "pr_ddp_local": text(power_bound(r["local_ghost"], FLOOR)),
            "pr_ddp_sync": text(power_bound(r["sync_global"], FLOOR)), "pr_ddp_gap": number(r["local_global"], 2)}


def ddp_train_numbers(ddp: dict, device: dict) -> dict[str, Glued]:
    """:func:`bnlib.practice.ddp_train_check` (one seed trained with ``DistributedDataParallel``) against the same
    seed of :func:`bnlib.practice.device_batch_check` (computed in one process): the seed, the networks compared,
    how many reach exactly the same test accuracy, and the largest difference in points. Raises when what the
    prose states no longer holds: the processes agree, local BN and Group Norm (the same arithmetic) reach exactly
    the one-process accuracy, and no network differs by more than half a point."""
    i = device["seeds"].index(ddp["seed"])
    gaps = [abs(ddp["acc"][n][str(b)] - device["acc"][n][str(b)][i]) for n in device["norms"]
            for b in ddp["per_device"]]
    exact = [ddp["acc"][n][str(b)] == device["acc"][n][str(b)][i] for n in device["norms"] if n != "sync"
             for b in ddp["per_device"]]
    if not ddp["ranks_agree"] or max(gaps) > 0.005 or not all(exact):
        raise ValueError(f"the prose says data-parallel training reproduces the one-process measurement, but the "
                         f"largest difference is {100 * max(gaps):.2f} points (processes agree: {ddp['ranks_agree']}).")
    return {"pr_ddp_train_seed": number(ddp["seed"]), "pr_ddp_train_devices": number(ddp["devices"]),
            "pr_ddp_train_cells": number(len(gaps)),
            "pr_ddp_train_equal": number(sum(g == 0 for g in gaps)), "pr_ddp_train_gap": number(100 * max(gaps), 2)}


def device_table(r: dict) -> Table:
    """Test accuracy (%, seed mean ± half-width) by examples per device, for each normalization of
    :func:`bnlib.practice.device_batch_check`, with SyncBN minus local BN paired by seed."""
    rows = []
    for b in r["per_device"]:
        acc = {n: r["acc"][n][str(b)] for n in r["norms"]}
        rows.append([b, r["devices"] * b, *(_pct(acc[n]) for n in r["norms"]),
                     _diff(paired(acc["sync"], acc["local"]))])
    return Table(["per device", "global batch", *(DEVICE_NAMES[n] for n in r["norms"]), "SyncBN − local BN"], rows)


def ghost_table(r: dict) -> Table:
    """Test accuracy (%) of ghost BN by virtual batch, each against BN over the whole batch, paired by seed."""
    full = r["ghost"][str(r["ghost_batch"])]
    return Table(["virtual batch", "test accuracy", "minus BN over the batch"],
                 [[v, _pct(r["ghost"][str(v)]), "–" if v == r["ghost_batch"] else
                   _diff(paired(r["ghost"][str(v)], full))] for v in r["ghost_sizes"]])


def device_numbers(r: dict) -> dict[str, Glued]:
    """The per-device section's numbers: the setting; per examples-per-device ``b`` each normalization's mean test
    accuracy (``pr_dev_{norm}_{b}``) and SyncBN and Group Norm against local BN in words (``pr_dev_{norm}_vs_{b}``,
    against a one-point margin, with the interval); ghost BN's mean accuracy per virtual batch and each against BN
    over the whole batch (``pr_ghost_{v}``, ``pr_ghost_{v}_vs``). Raises when what the prose states no longer
    holds: at the smallest per-device batch local BN falls more than ten points below SyncBN, and at the largest
    the two are within two points of each other; no virtual batch of ghost BN may gain a point over BN over the
    batch (the upper end of the interval below one point)."""
    out = {"pr_dev_devices": number(r["devices"]), "pr_dev_seeds": number(len(r["seeds"])),
           "pr_dev_examples": number(r["examples"]), "pr_dev_train": number(r["n_train"]),
           "pr_dev_rate": number(r["rate_at_60"]), "pr_dev_per": text(and_list(r["per_device"])),
           "pr_ghost_batch": number(r["ghost_batch"]), "pr_ghost_sizes": text(and_list(r["ghost_sizes"][1:])),
           "pr_ghost_steps": number(r["examples"] // r["ghost_batch"])}
    for b in r["per_device"]:
        acc = {n: r["acc"][n][str(b)] for n in r["norms"]}
        out |= {f"pr_dev_{n}_{b}": percent(np.mean(acc[n])) for n in r["norms"]}
        for n in ("sync", "group"):
            p = paired(acc[n], acc["local"])
            out[f"pr_dev_{n}_vs_{b}"] = md(f"{DEVICE_CHANGE[_direction(p)]}: {fmt_paired(p)}")
    small, big = (str(b) for b in (min(r["per_device"]), max(r["per_device"])))
    gap = {b: np.mean(r["acc"]["sync"][b]) - np.mean(r["acc"]["local"][b]) for b in (small, big)}
    if not (gap[small] > 0.10 and abs(gap[big]) < 0.02):
        raise ValueError(f"the prose says local BN collapses at {small} examples per device and is within two "
                         f"points of SyncBN at {big}, but SyncBN minus local BN is {100 * gap[small]:+.1f} and "
                         f"{100 * gap[big]:+.1f} points.")
    out |= {"pr_dev_small": number(int(small)), "pr_dev_big": number(int(big)),
            "pr_dev_small_batch": number(r["devices"] * int(small))}
    full = r["ghost"][str(r["ghost_batch"])]
    for v in r["ghost_sizes"]:
        out[f"pr_ghost_{v}"] = percent(np.mean(r["ghost"][str(v)]))
        if v != r["ghost_batch"]:
            p = paired(r["ghost"][str(v)], full)
            if p.hi > ADAPT_MARGIN:
                raise ValueError(f"the prose says ghost BN over {v} examples gains nothing over BN over the batch, "
                                 f"but the interval reaches {100 * p.hi:+.1f} points.")
            out[f"pr_ghost_{v}_vs"] = md(f"{DEVICE_CHANGE[_direction(p)]}: {fmt_paired(p)}")
    return out


def _diff(p) -> str:
    """A paired difference in points for a table cell, its seeds said in the caption: "+3.1 [+2.0, +4.2]"."""
    return fmt_paired(p, unit="", digits=1).removesuffix(f", {p.n} seeds")


# --------------------------------------------------------------------------- residual networks
#: The margin of the residual section's comparisons of test accuracy, fixed before the runs: two points.
RESIDUAL_MARGIN = 0.02
#: How the chapter names the networks of :mod:`bnlib.residual`.
RESIDUAL_NAMES = {"bn": "BN", "plain": "no normalization", "skipinit": "SkipInit"}
#: The words for a difference of accuracy against :data:`RESIDUAL_MARGIN`.
RESIDUAL_CHANGE = {"higher": "higher", "lower": "lower", "level": "level within two points",
                   "inconclusive": "not clearly beyond two points either way"}


def residual_init(init: dict) -> dict:
    """:func:`bnlib.residual.stream_variances` per kind, a list over seeds, averaged over the seeds: per kind the
    stream's variance entering each block and leaving the last (``"stream"``), each branch's variance
    (``"branch"``), and the branch's share of the variance leaving its block, ``Var f_l / Var x_{l+1}``
    (``"share"``)."""
    out = {}
    for kind, per_seed in init.items():
        stream = np.mean([r["stream"] for r in per_seed], axis=0)
        branch = np.mean([r["branch"] for r in per_seed], axis=0)
        out[kind] = {"stream": stream.tolist(), "branch": branch.tolist(), "share": (branch / stream[1:]).tolist(),
                     "seeds": len(per_seed)}
    return out


def residual_init_numbers(init: dict) -> dict[str, Glued]:
    """The numbers of the residual networks at initialization (a :func:`residual_init` summary): the stream's
    variance at the stem and after the last block for each kind, BN's mean branch variance and the branch's share
    at the first and the last block (and at block 100 if every branch added the mean variance), and the plain
    network's mean growth factor per block. Raises when what the
    prose states no longer holds: with BN each block adds its branch's variance (the increments within 25% of
    the branch variances), SkipInit leaves the stream unchanged, and without normalization the stream grows by a
    factor between 1.4 and 2.6 per block (roughly doubling); BN's mean branch variance is within 20% of
    ``1 - 1/pi``."""
    bn, plain, skip = init["bn"], init["plain"], init["skipinit"]
    inc = np.diff(bn["stream"])
    if np.max(np.abs(inc / np.asarray(bn["branch"]) - 1)) > 0.25:
        raise ValueError(f"the prose says each BN block adds its branch's variance, but the stream grows by {inc} "
                         f"against branch variances {bn['branch']}.")
    if np.ptp(skip["stream"]) > 1e-9 * skip["stream"][0]:
        raise ValueError(f"the prose says SkipInit's blocks start as the identity, but its stream is {skip['stream']}.")
    theory = 1 - 1 / np.pi  # 2 Var relu(z) for z ~ N(0, 1): He's gain 2 on a ReLU of a normalized input
    if abs(np.mean(bn["branch"]) / theory - 1) > 0.2:
        raise ValueError(f"the prose says BN's branches have about the variance 1 - 1/pi = {theory:.2f}, but their "
                         f"mean is {np.mean(bn['branch']):.2f}.")
    blocks = len(plain["stream"]) - 1
    growth = (plain["stream"][-1] / plain["stream"][0]) ** (1 / blocks)
    if not 1.4 < growth < 2.6:
        raise ValueError(f"the prose says the unnormalized stream roughly doubles per block, but it grows "
                         f"{growth:.2f}x.")
    out = {"pr_res_init_seeds": number(bn["seeds"]), "pr_res_blocks": number(blocks),
           "pr_res_bn_branch": number(float(np.mean(bn["branch"])), 2), "pr_res_bn_theory": number(theory, 2),
           "pr_res_bn_share_first": percent(bn["share"][0], 0), "pr_res_bn_share_last": percent(bn["share"][-1], 0),
           "pr_res_plain_growth": number(growth, 1),
           "pr_res_share_100": percent(np.mean(bn["branch"]) / (bn["stream"][0] + 100 * np.mean(bn["branch"])), 1)}
    for kind, r in init.items():
        out |= {f"pr_res_{kind}_v0": number(r["stream"][0], 2), f"pr_res_{kind}_vL": number(r["stream"][-1], 1)}
    return out


def _residual_scores(r: dict, kind: str, rate) -> list[float]:
    return [float(a) for a in r["acc"][kind][str(rate)]]


def _diverged(r: dict, kind: str, rate) -> int:
    return sum(bool(d) for d in r["diverged"][kind][str(rate)])


def _stuck(r: dict, kind: str, rate) -> int:
    """The seeds that did not diverge but ended within two points of chance."""
    return sum(a < CHANCE + 0.02 for a, d in zip(_residual_scores(r, kind, rate), r["diverged"][kind][str(rate)],
                                                 strict=True) if not d)


def residual_table(r: dict) -> Table:
    """Test accuracy (%, seed mean ± half-width) of each residual network at each peak rate of
    :func:`bnlib.residual.residual_check`, with the seeds on which training diverged (each scored as it stopped)."""
    rows = []
    for kind in r["kinds"]:
        row = [RESIDUAL_NAMES[kind]]
        for rate in r["rates"]:
            k = _diverged(r, kind, rate)
            row += [_pct(_residual_scores(r, kind, rate)), f"{k} of {len(r['seeds'])}" if k else "none"]
        rows.append(row)
    cols = ["network"]
    for rate in r["rates"]:
        cols += [f"lr {rate:g}: test acc. (%)", f"lr {rate:g}: diverged"]
    return Table(cols, rows)


def residual_points(r: dict) -> dict:
    """For the figure: the peak rates and, per kind, the mean test accuracy at each and the half-width of its
    interval (fractions)."""
    out: dict = {"rates": list(r["rates"])}
    for kind in r["kinds"]:
        m = [mean_interval(_residual_scores(r, kind, rate)) for rate in r["rates"]]
        out[kind] = {"mean": [a for a, _ in m], "hw": [b for _, b in m]}
    return out


def residual_numbers(r: dict) -> dict[str, Glued]:
    """The residual section's training numbers: the setting; per kind and rate the mean test accuracy
    (``pr_res_{kind}_{i}``, ``i`` the rate's index) and the seeds that diverged (``pr_res_{kind}_{i}_div``, in
    words); per rate SkipInit and the unnormalized network against BN, paired by seed, in the words of
    :data:`RESIDUAL_CHANGE` with the interval (``pr_res_{kind}_vs_{i}``)."""
    n = len(r["seeds"])
    out = {"pr_res_seeds": number(n), "pr_res_steps": number(r["steps"]), "pr_res_batch": number(r["batch"]),
           "pr_res_width": number(r["width"]), "pr_res_layers": number(2 * r["blocks"] + 2),
           "pr_res_epochs": number(r["steps"] * r["batch"] / 50_000, 1), "pr_res_momentum": number(r["momentum"]),
           "pr_res_calibration": number(r["calibration"])}
    for i, rate in enumerate(r["rates"]):
        out[f"pr_res_rate_{i}"] = number(rate)
        bn = _residual_scores(r, "bn", rate)
        for kind in r["kinds"]:
            out[f"pr_res_{kind}_{i}"] = percent(np.mean(_residual_scores(r, kind, rate)))
            k = _diverged(r, kind, rate)
            steps = [s for s, d in zip(r["steps_done"][kind][str(rate)], r["diverged"][kind][str(rate)],
                                       strict=True) if d]
            out[f"pr_res_{kind}_{i}_div"] = text(f"diverges on {'all' if k == n else k} of the {n} seeds, within "
                                                 f"{max(steps) + 1} steps" if k else "diverges on none of the seeds")
            stuck = _stuck(r, kind, rate)
            out[f"pr_res_{kind}_{i}_chance"] = number(stuck)
            more = f"; {stuck} more seed{'s end' if stuck != 1 else ' ends'} at chance" if stuck else ""
            out[f"pr_res_{kind}_{i}_fate"] = text(out[f"pr_res_{kind}_{i}_div"].value + more)
            if kind != "bn":
                p = paired(_residual_scores(r, kind, rate), bn)
                out[f"pr_res_{kind}_vs_{i}"] = md(f"{RESIDUAL_CHANGE[direction(p, RESIDUAL_MARGIN)]} "
                                                  f"({fmt_paired(p)})")
    p = paired(_residual_scores(r, "bn", r["rates"][-1]), _residual_scores(r, "bn", r["rates"][0]))
    out["pr_res_bn_rates"] = md(f"{RESIDUAL_CHANGE[direction(p, RESIDUAL_MARGIN)]} ({fmt_paired(p)})")
    _residual_guard(r)
    return out


def _residual_guard(r: dict) -> None:
    """What the prose of Table 6 states: two peak rates, the second ten times the first; BN trains at every rate on
    every seed; SkipInit trains at the first rate (no seed diverges or ends at chance), falls more than the margin
    behind BN there, and fails at the last on every seed (diverged or at chance); the network without either fails
    on most seeds at every rate."""
    if len(r["rates"]) != 2 or abs(r["rates"][1] / r["rates"][0] - 10) > 1e-9:
        raise ValueError(f"the prose says the second peak rate is ten times the first, but the rates are {r['rates']}.")
    lo, hi = (str(x) for x in (r["rates"][0], r["rates"][-1]))

    def failed(kind: str, rate: str) -> int:
        return _diverged(r, kind, rate) + _stuck(r, kind, rate)

    n = len(r["seeds"])
    if failed("bn", lo) or failed("bn", hi) or failed("skipinit", lo) or failed("skipinit", hi) < n or \
            any(2 * failed("plain", x) <= n for x in (lo, hi)):
        raise ValueError("the prose says BN trains at both rates, SkipInit at the smaller only, and the network "
                         "with neither fails on most seeds, which no longer holds.")
    if direction(paired(r["acc"]["skipinit"][lo], r["acc"]["bn"][lo]), RESIDUAL_MARGIN) != "lower":
        raise ValueError("the prose says SkipInit falls behind BN at the smaller rate, which no longer holds.")
