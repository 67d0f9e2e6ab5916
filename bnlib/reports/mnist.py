"""Numbers of the MNIST chapter (book/mnist.ipynb): the paper's Figure 1 (final accuracies, the
steps each network needs to reach the other's final accuracy, the drift of the sigmoid-input
percentiles), the saturated fraction and input histograms per layer, the learning-rate choice, the
initialization sweep and the Dense-128 demo. Each function takes an experiment result or one run;
the ``mnist_*_numbers`` functions return every value one section's prose glues, and raise a
ValueError when a result no longer supports what that prose says.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from bnlib.reports.cifar import run_stats
from bnlib.reports.format import Glued, Table, md, number, percent, text
from bnlib.results import (
    HIST_EDGES,
    SATURATION_THRESHOLD,
    curve,
    curves,
    final_metric,
    probe_index,
    run_of,
    seed_groups,
    steps_to_reach,
    unit_percentiles,
)
from bnlib.vocabulary import norm_name


def _final_acc(run: dict, label: str) -> float:
    acc = final_metric(run, "final_test_acc")
    if acc is None:
        raise ValueError(f"run {label!r} diverged or has no final test accuracy.")
    return acc


def mnist_speedup(res: dict, fast: str = "bn", slow: str = "none") -> dict:
    """Final test accuracies of two runs and the recorded steps each needs to reach the other's.

    Returns ``final_fast``, ``final_slow``, ``steps`` (the slow run's steps done) and, as the
    first recorded step at which a run's test accuracy is at least a target (None: never),
    ``fast_to_slow`` (fast run, slow run's final accuracy), ``slow_to_slow`` (slow run, its own
    final accuracy: when it first got there), ``slow_to_fast`` and ``fast_to_fast``.
    ``speedup = slow_to_slow / fast_to_slow``: how many times fewer steps the fast run needs to
    reach the accuracy the slow run ends with, counting for the slow run only the steps until
    it first reached it (conservative); None when the fast run never gets there.
    """
    rf, rs = run_of(res, fast), run_of(res, slow)
    af, a_s = _final_acc(rf, fast), _final_acc(rs, slow)
    out = {"final_fast": af, "final_slow": a_s, "steps": rs["summary"]["steps_done"],
           "fast_to_slow": steps_to_reach(rf, a_s), "slow_to_slow": steps_to_reach(rs, a_s),
           "slow_to_fast": steps_to_reach(rs, af), "fast_to_fast": steps_to_reach(rf, af)}
    f2s, s2s = out["fast_to_slow"], out["slow_to_slow"]
    out["speedup"] = s2s / f2s if f2s and s2s else None
    return out


def mnist_median_drift(run: dict, layer: int, unit: int, from_step: int | None = None) -> dict:
    """How much one sigmoid's input distribution moves over training, from ``from_step`` on.

    ``from_step`` defaults to the first record after step 0: at step 0 a BN network is
    evaluated with its initial running averages (mean 0, variance 1), not with the statistics
    it trains with, so that record is left out of both networks' drift.

    Returns ``range`` (largest minus smallest recorded median), ``net`` (last minus first
    median), ``width`` (mean 85th-minus-15th-percentile spread), ``relative = range / width``
    (the drift in units of the distribution's own spread), ``width_ratio`` (largest over
    smallest spread) and ``from_step``.
    """
    t = unit_percentiles(run, layer, unit)
    if from_step is None:
        later = [s for s in t["step"] if s > 0]
        if not later:
            raise ValueError("the run has no record after step 0.")
        from_step = later[0]
    keep = [i for i, s in enumerate(t["step"]) if s >= from_step]
    if not keep:
        raise ValueError(f"the run has no record at or after step {from_step}.")
    p50 = np.array([t["p50"][i] for i in keep])
    width = np.array([t["p85"][i] - t["p15"][i] for i in keep])
    rng = float(p50.max() - p50.min())
    w = float(width.mean())
    return {"range": rng, "net": float(p50[-1] - p50[0]), "width": w, "relative": rng / w if w > 0 else math.inf,
            "width_ratio": float(width.max() / width.min()) if width.min() > 0 else math.inf,
            "from_step": int(from_step)}


def mnist_typical_unit(run: dict, layer: int = -1) -> int:
    """The probed unit of ``layer`` whose median drift (:func:`mnist_median_drift` ``range``) is the
    median over the probed units (the lower middle one for an even count): a typical unit, neither
    the steadiest nor the most drifting."""
    probe_index(run, layer, run["config"]["probe_units"][0])
    n = len(curve(run, "percentiles")[0][layer])
    units = list(run["config"]["probe_units"])[:n]
    ranked = sorted(units, key=lambda u: (mnist_median_drift(run, layer, u)["range"], u))
    return ranked[(len(ranked) - 1) // 2]


def mnist_drift_rows(res: dict, from_step: int | None = None) -> list[dict]:
    """:func:`mnist_median_drift` for every run, hidden layer and probed unit, one dict each with
    ``network`` (book label of the norm), ``label``, ``layer`` (1-based) and ``unit`` added."""
    rows = []
    for label, run in res["runs"].items():
        pct = curve(run, "percentiles")
        for li in range(len(pct[0])):
            for u in list(run["config"]["probe_units"])[: len(pct[0][li])]:
                d = mnist_median_drift(run, li, u, from_step)
                rows.append({"network": norm_name(run["config"]["norm"]), "label": label, "layer": li + 1,
                             "unit": u, **d})
    return rows


def mnist_drift_summary(rows: list[dict], network: str, layer: int | None = None) -> dict:
    """Mean over units (of one ``layer``, 1-based, or all) of a network's ``range``, ``relative`` and
    ``width_ratio`` from :func:`mnist_drift_rows`."""
    mine = [r for r in rows if r["network"] == network and (layer is None or r["layer"] == layer)]
    if not mine:
        raise ValueError(f"no drift rows for network {network!r}, layer {layer}; networks: "
                         f"{sorted({r['network'] for r in rows})}.")
    return {k: float(np.mean([r[k] for r in mine])) for k in ("range", "relative", "width_ratio")}


def mnist_drift_table(rows: list[dict]) -> Table:
    """One row per network, layer and probed unit: the median's drift, the mean spread, their ratio."""
    return Table(["network", "layer", "unit", "median drift", "mean 15-85 spread", "drift / spread",
                  "max/min spread"],
                 [[r["network"], r["layer"], r["unit"], r["range"], r["width"], r["relative"], r["width_ratio"]]
                  for r in rows], [None, None, None, ".2f", ".2f", ".2f", ".2f"])


def mnist_saturation(run: dict) -> list[dict]:
    """Per hidden layer (1-based ``layer``): the saturated fraction of sigmoid inputs at step 0
    (``initial``), at the last record (``final``), its largest value (``max``) and the step of it
    (``max_step``, the first such record)."""
    c = curves(run)
    sat = np.asarray(c["saturated"], dtype=float)
    if sat.ndim != 2 or not len(sat):
        raise ValueError("the run has no recorded saturated fractions.")
    out = []
    for li in range(sat.shape[1]):
        k = int(np.argmax(sat[:, li]))
        out.append({"layer": li + 1, "initial": float(sat[0, li]), "final": float(sat[-1, li]),
                    "max": float(sat[k, li]), "max_step": int(c["step"][k])})
    return out


def mnist_saturation_table(res: dict) -> Table:
    """Saturated fraction per network and layer at step 0, at its largest, and at the end."""
    rows = [[norm_name(run["config"]["norm"]), s["layer"], s["initial"], s["max"], s["max_step"], s["final"]]
            for run in res["runs"].values() for s in mnist_saturation(run)]
    return Table(["network", "layer", "at step 0", "largest", "at step", "at the end"], rows,
                 [None, None, ".1%", ".1%", ",", ".1%"])


def mnist_checkpoints(run: dict, n: int = 4) -> list[int]:
    """``n`` recorded steps to show distributions at: step 0 (or the first record), the last record,
    and between them the records nearest to ``n - 2`` geometrically spaced steps starting at the
    first record after step 0 (early training changes fastest). Fewer when the run has fewer records."""
    steps = list(curve(run, "step"))
    if n < 2:
        raise ValueError(f"n must be at least 2 (the first and the last record), got {n}.")
    if len(steps) <= n:
        return steps
    later = [s for s in steps if s > 0]
    lo, hi = later[0], later[-1]
    picks = [steps[0], hi]
    for t in np.geomspace(lo, hi, n - 1)[:-1]:
        s = min((x for x in later if x not in picks), key=lambda x: (abs(math.log(x / t)), x))
        picks.append(s)
    return sorted(set(picks))


def mnist_histograms(run: dict, steps: Sequence[int], edges: Sequence[float] | None = None) -> dict:
    """Densities of every hidden layer's sigmoid inputs at the recorded ``steps``.

    Returns ``edges``, ``centers``, ``steps`` and ``density[i][layer]`` (a list over bins) for
    ``steps[i]``: the recorded counts over the probe batch divided by their total and the bin
    width, so each integrates to 1. Inputs outside the edges were clipped into the outer bins
    by the recorder. ``edges`` defaults to :data:`bnlib.results.HIST_EDGES`.
    """
    if edges is None:
        edges = HIST_EDGES
    e = np.asarray(edges, dtype=float)
    c = curves(run)
    index = {s: i for i, s in enumerate(c["step"])}
    missing = [s for s in steps if s not in index]
    if missing:
        raise ValueError(f"step {missing[0]} was not recorded; records are every {c['step'][1] - c['step'][0]} "
                         f"steps from {c['step'][0]} to {c['step'][-1]}." if len(c["step"]) > 1 else
                         f"step {missing[0]} was not recorded; the only record is at step {c['step'][0]}.")
    dens = []
    for s in steps:
        per_layer = []
        for counts in c["hist"][index[s]]:
            h = np.asarray(counts, dtype=float)
            if len(h) != len(e) - 1:
                raise ValueError(f"a histogram has {len(h)} bins but the edges give {len(e) - 1}.")
            per_layer.append((h / h.sum() / np.diff(e)).tolist())
        dens.append(per_layer)
    return {"edges": e.tolist(), "centers": ((e[:-1] + e[1:]) / 2).tolist(), "steps": list(steps), "density": dens}


def mnist_lr_choice(res: dict) -> tuple[list[dict], dict]:
    """The learning-rate grid: one row per rate (:func:`run_stats` plus ``label``, by rate) and the
    row with the highest final test accuracy (diverged runs excluded)."""
    rows = sorted(({"label": lab, **run_stats(g)} for lab, g in seed_groups(res["runs"]).items()),
                  key=lambda r: r["lr"])
    ok = [r for r in rows if r["final_acc"] is not None]
    if not ok:
        raise ValueError("every run of the learning-rate grid diverged.")
    return rows, max(ok, key=lambda r: r["final_acc"])


def mnist_lr_row(rows: list[dict], lr: float) -> dict:
    """The row of :func:`mnist_lr_choice` with learning rate ``lr``."""
    for r in rows:
        if math.isclose(r["lr"], lr, rel_tol=1e-9):
            return r
    raise ValueError(f"no run with learning rate {lr}; the grid has {[r['lr'] for r in rows]}.")


def mnist_init_sweep(res: dict) -> dict:
    """The initialization sweep as a grid: ``sigmas`` (ascending), ``networks`` (book labels, in
    the order first seen) and, per network and sigma, ``acc`` (final test accuracy, None when the
    run diverged), ``sat0`` and ``sat_final`` (saturated fraction of the sigmoid inputs at the
    first and at the last record, mean over hidden layers; None without records).

    At step 0 a BN network is evaluated with its initial running averages (mean 0, variance 1),
    so its ``sat0`` is that of the same weights without normalization, not what it trains on."""
    sigmas, networks, acc, sat0, sat_end = set(), [], {}, {}, {}
    for run in res["runs"].values():
        cfg = run["config"]
        name, s = norm_name(cfg["norm"]), float(cfg["init_sigma"])
        if name not in networks:
            networks.append(name)
        if s in acc.get(name, {}):
            raise ValueError(f"two runs of network {name!r} have init_sigma {s}.")
        sigmas.add(s)
        acc.setdefault(name, {})[s] = final_metric(run, "final_test_acc")
        sat = curve(run, "saturated")
        sat0.setdefault(name, {})[s] = float(np.mean(sat[0])) if sat else None
        sat_end.setdefault(name, {})[s] = float(np.mean(sat[-1])) if sat else None
    return {"sigmas": sorted(sigmas), "networks": networks, "acc": acc, "sat0": sat0, "sat_final": sat_end}


def mnist_sigma_range(grid: dict, network: str, within: float) -> dict:
    """The widest run of consecutive swept sigmas, around the network's best one, at which its
    final test accuracy is within ``within`` (a fraction, 0.01 = one point) of its best.

    Returns ``best_sigma``, ``best_acc``, ``lo`` and ``hi`` (the ends of that run), ``decades``
    (``log10(hi / lo)``), ``worst_acc`` (over the whole sweep; 0 counts for a diverged run).
    """
    if network not in grid["acc"]:
        raise ValueError(f"network {network!r} is not in the sweep; it has {grid['networks']}.")
    if not within >= 0:
        raise ValueError(f"within must be a non-negative fraction, got {within}.")
    by = grid["acc"][network]
    sig = [s for s in grid["sigmas"] if s in by]
    accs = [by[s] if by[s] is not None else 0.0 for s in sig]
    b = int(np.argmax(accs))
    lo = hi = b
    while lo > 0 and accs[lo - 1] >= accs[b] - within:
        lo -= 1
    while hi < len(sig) - 1 and accs[hi + 1] >= accs[b] - within:
        hi += 1
    return {"best_sigma": sig[b], "best_acc": accs[b], "lo": sig[lo], "hi": sig[hi],
            "decades": math.log10(sig[hi] / sig[lo]), "worst_acc": min(accs)}


def mnist_init_table(grid: dict) -> Table:
    """One row per sigma: final test accuracy per network, the saturated fraction at step 0 of the
    network without normalization (``first``, the same weights as every network's at step 0), and
    the saturated fraction at the end per network."""
    nets = grid["networks"]
    first = nets[0]
    rows = [[s, *[grid["acc"][n].get(s) for n in nets], grid["sat0"][first].get(s),
             *[grid["sat_final"][n].get(s) for n in nets]] for s in grid["sigmas"]]
    return Table(["init sigma", *[f"test acc. ({n})" for n in nets], f"saturated at step 0 ({first})",
                  *[f"saturated at the end ({n})" for n in nets]],
                 rows, [".3g", *[".2%"] * len(nets), ".1%", *[".1%"] * len(nets)])


def mnist_dense128(res: dict) -> dict:
    """The Dense-128 demo per run label: ``final_acc``, ``final_loss`` (test), ``train_loss`` (final,
    eval mode, first 10,000 training images), ``best_acc``, ``min_loss`` (lowest recorded test loss)
    and ``min_loss_epoch``, and the curves by epoch: ``epoch``, ``test_loss``, ``test_acc``
    (an epoch is one pass over the training subset at the run's batch size)."""
    out = {}
    for label, run in res["runs"].items():
        cfg, c, s = run["config"], curves(run), run["summary"]
        per_epoch = (cfg.get("train_subset") or 60_000) / cfg["batch_size"]
        epochs = [st / per_epoch for st in c["step"]]
        losses = c["test_loss"]
        k = int(np.argmin(losses))
        out[label] = {"final_acc": final_metric(run, "final_test_acc"),
                      "final_loss": final_metric(run, "final_test_loss"),
                      "train_loss": final_metric(run, "final_train_loss"), "best_acc": s.get("best_test_acc"),
                      "min_loss": float(losses[k]), "min_loss_epoch": epochs[k], "epoch": epochs,
                      "test_loss": list(losses), "test_acc": list(c["test_acc"])}
    return out


def mnist_wobble(run: dict, last: int = 5) -> float:
    """The largest change of the recorded test accuracy between consecutive records among the
    ``last`` records of a run: how much one record can differ from the next by chance of where
    training stopped, a yardstick for differences between runs read off single records."""
    acc = [a for a in curve(run, "test_acc") if a is not None][-last:]
    if last < 2 or len(acc) < 2:
        raise ValueError(f"need at least two records (last >= 2); have {len(acc)} with last={last}.")
    return float(max(abs(b - a) for a, b in zip(acc[:-1], acc[1:], strict=True)))


def mnist_lr_table(rows: list[dict]) -> Table:
    """The learning-rate grid of :func:`mnist_lr_choice`: rate, final and best recorded test accuracy."""
    return Table(["learning rate", "final test acc.", "best recorded test acc.", "diverged at step"],
                 [[r["lr"], r["final_acc"], r["best_acc"], r["diverged_at"]] for r in rows],
                 ["g", ".2%", ".2%", ","])


def mnist_last_lead(res: dict, fast: str = "bn", slow: str = "none") -> int | None:
    """The last recorded step after step 0 at which the ``slow`` run's test accuracy is at least the
    ``fast`` run's (None if never): from the next record on, the fast run stays ahead."""
    cf, cs = curves(run_of(res, fast)), curves(run_of(res, slow))
    acc_f = dict(zip(cf["step"], cf["test_acc"], strict=True))
    lead = [s for s, a in zip(cs["step"], cs["test_acc"], strict=True)
            if s > 0 and s in acc_f and a is not None and acc_f[s] is not None and a >= acc_f[s]]
    return max(lead) if lead else None


def mnist_spread(run: dict, layer: int, unit: int, step: int) -> float:
    """The 85th minus the 15th percentile of one sigmoid's input at the recorded ``step``."""
    t = unit_percentiles(run, layer, unit)
    if step not in t["step"]:
        raise ValueError(f"step {step} was not recorded; records run from {t['step'][0]} to {t['step'][-1]}.")
    i = t["step"].index(step)
    return t["p85"][i] - t["p15"][i]


def mnist_jitter(run: dict, layer: int, unit: int) -> float:
    """Mean absolute change of one sigmoid's input median between consecutive records after step 0:
    how much its curve jitters from record to record."""
    p50 = unit_percentiles(run, layer, unit)["p50"][1:]
    if len(p50) < 2:
        raise ValueError("need at least two records after step 0 to measure the jitter.")
    return float(np.abs(np.diff(p50)).mean())


def mnist_checkpoint_histograms(res: dict, n: int = 4, base: str = "none") -> dict:
    """:func:`mnist_histograms` of every run at the :func:`mnist_checkpoints` of run ``base``."""
    steps = mnist_checkpoints(run_of(res, base), n)
    return {label: mnist_histograms(run, steps) for label, run in res["runs"].items()}


# --------------------------------------------------------------------------- what each section glues
def _cfg(c) -> dict:
    """A run configuration as a dict (a :class:`bnlib.train.RunConfig` or the results' ``config``)."""
    return dataclasses.asdict(c) if dataclasses.is_dataclass(c) else dict(c)


def _pc(fraction: float) -> Glued:
    """A fraction glued as a percentage rounded to 4 decimals (the prose picks the digits it shows)."""
    return percent(fraction, 4)


def _and_list(items: Sequence[str]) -> str:
    """``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def mnist_setup_numbers(cfg, *, n_train: int, n_test: int, mean: float, std: float, bn_momentum: float,
                        bn_eps: float, registered=None) -> dict[str, Glued]:
    """The experiment section's numbers: data, network, training and measurement settings of the
    Figure 1 configuration ``cfg`` (``registered``: the configuration the experiment actually trains)."""
    c = _cfg(cfg)
    if registered is not None and _cfg(registered) != c:
        raise ValueError("the registered mnist_fig1 experiment no longer trains the configuration the prose describes.")
    if c["momentum"] != 0 or c["weight_decay"] != 0 or c["lr_decay_every"] != 0 or c["optimizer"] != "sgd":
        raise ValueError("the prose says plain SGD without momentum, weight decay or learning-rate schedule, "
                         "which the configuration no longer is.")
    if (c["record_every"], c["steps"], c["batch_size"]) != (500, 50_000, 60):
        raise ValueError("the prose says 50,000 steps of mini-batches of 60 recorded every 500 steps, which the "
                         "configuration no longer is.")
    sizes = c["sizes"]
    return {"mnist_ntrain": number(n_train), "mnist_ntest": number(n_test), "mnist_in": number(sizes[0]),
            "mnist_width": number(sizes[1]), "mnist_depth": number(len(sizes) - 2),
            "mnist_classes": number(sizes[-1]), "mnist_batch": number(c["batch_size"]),
            "mnist_steps": number(c["steps"]), "mnist_epochs": number(c["steps"] * c["batch_size"] / n_train),
            "mnist_every": number(c["record_every"]), "mnist_sigma": number(c["init_sigma"]),
            "mnist_lr": number(c["lr"]), "mnist_probe": number(c["probe_batch"]),
            "mnist_nunits": number(len(c["probe_units"])), "mnist_mean": number(mean), "mnist_std": number(std),
            "mnist_bn_momentum": number(bn_momentum), "mnist_bn_eps": number(bn_eps),
            "mnist_threshold": number(SATURATION_THRESHOLD)}


def mnist_lr_numbers(lr_grid: dict, configs: dict, rates: Sequence[float], chosen_lr: float) -> dict[str, Glued]:
    """The learning-rate section's numbers: the grid (``configs``: its run configurations, ``rates``:
    its learning rates), its best rate and the chosen one ``chosen_lr`` against the best run's wobble."""
    rows, best = mnist_lr_choice(lr_grid)
    cfgs = [_cfg(c) for c in configs.values()]
    if any(c["norm"] is not None for c in cfgs):
        raise ValueError("the prose says the learning-rate grid trains only the network without BN, which it no "
                         "longer does.")
    chosen = mnist_lr_row(rows, chosen_lr)
    wob = mnist_wobble(lr_grid["runs"][best["label"]])
    lo, hi = rows[0], rows[-1]
    if any(r["diverged"] for r in rows):
        raise ValueError("the prose says no rate of the learning-rate grid diverges, but one does.")
    if not (best["final_acc"] - chosen["final_acc"] < wob and chosen_lr <= best["lr"]):
        raise ValueError("the prose says the chosen rate is the grid's best or a smaller one within the best run's "
                         "wobble, which no longer holds.")
    within = [r["lr"] for r in rows if best["final_acc"] - r["final_acc"] < wob]
    if not (chosen["final_acc"] - lo["final_acc"] > wob and chosen_lr == min(within)):
        raise ValueError("the prose says the smallest rate is clearly too slow and the chosen one is the smallest "
                         "rate within the best run's wobble of the best, which no longer holds.")
    return {"mnist_lr_steps": number(cfgs[0]["steps"]), "mnist_lr_list": text(_and_list([f"{r:g}" for r in rates])),
            "mnist_lr_best": number(best["lr"]), "mnist_lr_best_acc": _pc(best["final_acc"]),
            "mnist_lr_chosen_acc": _pc(chosen["final_acc"]),
            "mnist_lr_gap": _pc(best["final_acc"] - chosen["final_acc"]),
            "mnist_lr_wobble": _pc(wob), "mnist_lr_lo": number(lo["lr"]), "mnist_lr_lo_acc": _pc(lo["final_acc"]),
            "mnist_lr_hi": number(hi["lr"]), "mnist_lr_hi_acc": _pc(hi["final_acc"])}


def mnist_accuracy_numbers(res: dict, cfg) -> dict[str, Glued]:
    """Figure 1(a)'s numbers: final and best accuracies, the speed-up (:func:`mnist_speedup`), the last
    step at which the network without BN leads, and each network's wobble over the last fifth of ``cfg``'s steps."""
    c = _cfg(cfg)
    sp = mnist_speedup(res)
    none, bn = run_of(res, "none"), run_of(res, "bn")
    if sp["slow_to_fast"] is not None:
        raise ValueError("the prose says the network without BN never reaches the BN network's final accuracy, "
                         "but it does.")
    lead = mnist_last_lead(res)
    early = ("Nor is it behind early on: the BN network is ahead at every record after step 0." if lead is None else
             f"Early on, it is not: at step {lead:,} the network without BN is still ahead, and only from step "
             f"{lead + c['record_every']:,} on is the BN network always ahead.")
    tail = c["steps"] // 5
    last = tail // c["record_every"] + 1
    wob_none, wob_bn = mnist_wobble(none, last), mnist_wobble(bn, last)
    clear = sp["final_fast"] - sp["final_slow"] > 2 * wob_bn
    gap_sentence = ("so the gap is not an accident of where training stopped" if clear else
                    "so the final gap is within what the BN network's own wobble between records could produce: "
                    "where training stopped could decide it")
    verdict = ("it holds here. BN gives the higher test accuracy and gets to the baseline's accuracy in fewer "
               "steps" if clear else
               "it holds here for the speed, not clearly for the final accuracy. BN gets to the baseline's accuracy "
               "in fewer steps; its final lead is within its own wobble")
    return {"mnist_final_none": _pc(sp["final_slow"]), "mnist_final_bn": _pc(sp["final_fast"]),
            "mnist_final_gap": _pc(sp["final_fast"] - sp["final_slow"]),
            "mnist_err_reduction": _pc(1 - (1 - sp["final_fast"]) / (1 - sp["final_slow"])),
            "mnist_best_none": _pc(none["summary"]["best_test_acc"]),
            "mnist_best_bn": _pc(bn["summary"]["best_test_acc"]),
            "mnist_bn_to_none": number(sp["fast_to_slow"]), "mnist_none_to_none": number(sp["slow_to_slow"]),
            "mnist_bn_to_bn": number(sp["fast_to_fast"]), "mnist_speedup": number(sp["speedup"], 4),
            "mnist_speedup_total": number(sp["steps"] / sp["fast_to_slow"], 4),
            "mnist_early": md(early), "mnist_gap_sentence": md(gap_sentence), "mnist_acc_verdict": md(verdict),
            "mnist_acc_holds": text("yes" if clear else "not clearly: within the BN network's wobble"),
            "mnist_tail": number(tail), "mnist_wobble_none": _pc(wob_none), "mnist_wobble_bn": _pc(wob_bn)}


def mnist_percentile_numbers(res: dict, cfg) -> dict[str, Glued]:
    """Figure 1(b, c)'s numbers: the typical unit of the last hidden layer, its median drift in both
    networks, the mean drift over all probed units, and its spread's growth before the first record."""
    c = _cfg(cfg)
    none, bn = run_of(res, "none"), run_of(res, "bn")
    unit = mnist_typical_unit(none, layer=-1)
    d = {"none": mnist_median_drift(none, -1, unit), "bn": mnist_median_drift(bn, -1, unit)}
    rows = mnist_drift_rows(res)
    s_none, s_bn = mnist_drift_summary(rows, norm_name(None)), mnist_drift_summary(rows, norm_name("torch"))
    spread0, spread1 = mnist_spread(none, -1, unit, 0), mnist_spread(none, -1, unit, c["record_every"])
    if not (d["bn"]["range"] >= d["none"]["range"] and d["bn"]["relative"] >= d["none"]["relative"]):
        raise ValueError("the prose says the typical unit's median drifts no less with BN than without, which no "
                         "longer holds.")
    ratio = s_bn["relative"] / s_none["relative"]
    alike = 0.75 < ratio < 4 / 3  # within a third either way: "about as much" (one seed, no interval)
    compare = "about as much with BN as without" if alike else ("less with BN than without" if ratio <= 0.75 else
                                                                 "more with BN than without")
    verdict = ("only in part. BN pins the distribution down while the weights are still small and change fast, "
               f"the phase the records resolve only as a jump between step 0 and step {c['record_every']:,}. Over "
               "the rest of the run, the input distributions of the last hidden layers drift about as much with BN "
               "as without, relative to their spread" if alike else
               "in part. BN pins the distribution down while the weights are still small and change fast, the phase "
               f"the records resolve only as a jump between step 0 and step {c['record_every']:,}; over the rest of "
               f"the run the medians drift {compare}, relative to their spread, in this one run (three probed units "
               "per layer, one seed)")
    holds = ("only before the first record" if alike else
             f"drift {compare} (one seed)")
    if not spread1 / spread0 > 10:
        raise ValueError("the prose says the typical unit's spread grows more than tenfold before the first record, "
                         "which no longer holds.")
    j_bn, j_none = mnist_jitter(bn, -1, unit), mnist_jitter(none, -1, unit)
    texture = ("What the figure does show is a difference in *texture*: the BN network's percentiles jitter from "
               "record to record, because inference-mode BN uses running averages of recent batches' statistics "
               "while the weights keep moving, whereas the curves without BN are smooth." if j_bn > 2 * j_none else
               f"Between consecutive records this unit's median moves by {j_bn:.2f} on average with BN and "
               f"{j_none:.2f} without: the running averages that inference-mode BN uses add some jitter, but not "
               "enough to set the two networks' curves apart.")
    out = {"mnist_unit": number(unit), "mnist_last_layer": number(len(c["sizes"]) - 2),
           "mnist_texture": md(texture), "mnist_drift_compare": text(compare), "mnist_drift_verdict": md(verdict),
           "mnist_drift_holds": text(holds),
           "mnist_from_step": number(d["none"]["from_step"])}
    for key in ("none", "bn"):
        out |= {f"mnist_drift_{key}": number(d[key]["range"], 4), f"mnist_drift_net_{key}": number(d[key]["net"], 4),
                f"mnist_width_{key}": number(d[key]["width"], 4), f"mnist_rel_{key}": number(d[key]["relative"], 4),
                f"mnist_wratio_{key}": number(d[key]["width_ratio"], 4)}
    return out | {"mnist_rel_all_none": number(s_none["relative"], 4), "mnist_rel_all_bn": number(s_bn["relative"], 4),
                  "mnist_n_probed": number(len(rows) // 2), "mnist_spread0": number(spread0, 4),
                  "mnist_spread1_none": number(spread1, 4), "mnist_spread_growth": number(spread1 / spread0, 4)}


def mnist_saturation_numbers(res: dict) -> dict[str, Glued]:
    """The saturation section's numbers: per network and hidden layer the saturated fraction at the
    end, at step 0, at its largest and the step of it; the histograms' range and checkpoints."""
    sat = {"none": mnist_saturation(run_of(res, "none")), "bn": mnist_saturation(run_of(res, "bn"))}
    if not math.isclose(sat["none"][0]["initial"], sat["bn"][0]["initial"], abs_tol=1e-3):
        raise ValueError("the prose says both networks compute the same function at step 0, but their first layers' "
                         "saturated fractions differ there.")
    if not (sat["none"][0]["final"] > 0.2 and sat["bn"][0]["final"] < sat["none"][0]["final"] / 3
            and sat["none"][0]["initial"] < 0.01):
        raise ValueError("the prose says few first-layer inputs start saturated, many end saturated without BN and "
                         "under a third as many with BN, which no "
                         "longer holds.")
    if not all(b["final"] > n["final"] for n, b in zip(sat["none"][1:], sat["bn"][1:], strict=True)):
        raise ValueError("the prose says the BN network ends with more saturated inputs in the later hidden layers, "
                         "which no longer holds.")
    out = {}
    for key in ("none", "bn"):
        for s in sat[key]:
            n = s["layer"]
            out |= {f"mnist_sat_{key}_l{n}": _pc(s["final"]), f"mnist_sat0_{key}_l{n}": _pc(s["initial"]),
                    f"mnist_satmax_{key}_l{n}": _pc(s["max"]), f"mnist_satmax_step_{key}_l{n}": number(s["max_step"])}
    steps = mnist_checkpoints(run_of(res, "none"), 4)
    return out | {"mnist_hist_max": number(float(HIST_EDGES[-1])),
                  "mnist_checkpoints": text(_and_list([f"{s:,}" for s in steps]))}


def mnist_init_numbers(sweep: dict, configs: dict, within: float = 0.01) -> dict[str, Glued]:
    """The initialization sweep's numbers (``configs``: its run configurations): the swept sigmas, per
    network the range of sigmas within ``within`` of its best (:func:`mnist_sigma_range`), and the
    accuracy drop and saturation at the largest sigma."""
    grid = mnist_init_sweep(sweep)
    sig = grid["sigmas"]
    smax = max(sig)
    r = {key: mnist_sigma_range(grid, norm_name(norm), within) for key, norm in (("none", None), ("bn", "torch"))}
    acc_none, acc_bn = grid["acc"][norm_name(None)], grid["acc"][norm_name("torch")]
    if not all(acc_bn.get(s) is not None and (acc_none.get(s) is None or acc_bn[s] > acc_none[s]) for s in sig):
        raise ValueError("the prose says BN is ahead at every sigma of the sweep, which no longer holds.")
    if not (r["bn"]["decades"] > r["none"]["decades"] and r["bn"]["worst_acc"] > r["none"]["worst_acc"]):
        raise ValueError("the prose says BN stays near its best over more decades of sigma and has the better worst "
                         "result, which no longer holds.")
    if acc_bn[smax] != r["bn"]["worst_acc"]:
        raise ValueError("the prose says BN's worst result is at the largest sigma, but it is elsewhere.")
    out = {"mnist_sw_steps": number(_cfg(next(iter(configs.values())))["steps"]), "mnist_sw_min": number(min(sig)),
           "mnist_sw_max": number(smax), "mnist_sw_decades": number(math.log10(smax / min(sig)), 4),
           "mnist_sw_within": _pc(within)}
    for key in ("none", "bn"):
        out |= {f"mnist_sw_lo_{key}": number(r[key]["lo"]), f"mnist_sw_hi_{key}": number(r[key]["hi"]),
                f"mnist_sw_dec_{key}": number(r[key]["decades"], 4), f"mnist_sw_best_{key}": _pc(r[key]["best_acc"]),
                f"mnist_sw_bestsig_{key}": number(r[key]["best_sigma"]),
                f"mnist_sw_worst_{key}": _pc(r[key]["worst_acc"])}
    return out | {"mnist_sw_drop_bn": _pc(r["bn"]["best_acc"] - acc_bn[smax]),
                  "mnist_sw_sat0_max": _pc(grid["sat0"][norm_name(None)][smax]),
                  "mnist_sw_satend_none": _pc(grid["sat_final"][norm_name(None)][smax]),
                  "mnist_sw_satend_bn": _pc(grid["sat_final"][norm_name("torch")][smax])}


def _epochs(cfg: dict, n_train: int = 60_000) -> float:
    return cfg["steps"] * cfg["batch_size"] / (cfg["train_subset"] or n_train)


def mnist_dense128_setup(cfg, n_train: int) -> dict[str, Glued]:
    """The Dense-128 exercise's settings: width, batch size, learning rate, training images, the
    held-out fraction of the ``n_train`` training images and the epochs."""
    c = _cfg(cfg)
    return {"mnist_d_width": number(c["sizes"][1]), "mnist_d_batch": number(c["batch_size"]),
            "mnist_d_lr": number(c["lr"]), "mnist_d_ntrain": number(c["train_subset"]),
            "mnist_d_split": _pc(1 - c["train_subset"] / n_train), "mnist_d_epochs": number(_epochs(c, n_train))}


#: Two test losses are "nearly the same" in the Dense-128 solution when they differ by less than this.
NEARLY_SAME_LOSS = 0.01


def mnist_dense128_numbers(res: dict, cfg) -> dict[str, Glued]:
    """The Dense-128 solution's numbers (:func:`mnist_dense128`): per network the final accuracy and
    loss, the lowest loss and its epoch, the loss after the first epoch; the accuracy gap and wobble."""
    c = _cfg(cfg)
    ds = mnist_dense128(res)
    none, bn = ds["none"], ds["bn"]
    wob = max(mnist_wobble(run_of(res, k), 4) for k in ("none", "bn"))
    if not abs(bn["final_acc"] - none["final_acc"]) < wob:
        raise ValueError("the prose says the two final accuracies differ by less than the wobble between epochs, "
                         "which no longer holds.")
    l1b, l1n = bn["test_loss"][1], none["test_loss"][1]
    start = (f"After {none['epoch'][1]:.0f} epoch the BN network's test loss is *higher* ({l1b:.3f} against "
             f"{l1n:.3f}), so there is no faster start." if l1b > l1n else
             f"After {none['epoch'][1]:.0f} epoch the BN network's test loss is lower ({l1b:.3f} against {l1n:.3f}): "
             "a faster start, in this one run.")
    for what in ("min_loss", "final_loss"):  # "nearly the same": within NEARLY_SAME_LOSS
        if not abs(bn[what] - none[what]) < NEARLY_SAME_LOSS:
            raise ValueError(f"the prose says both networks' {what.replace('_', ' ')}es are nearly the same, but they "
                             f"differ by {NEARLY_SAME_LOSS} or more.")
    if not (none["min_loss_epoch"] < _epochs(c) and bn["min_loss_epoch"] < _epochs(c)):
        raise ValueError("the prose says both networks overfit before the end, but one's test loss is lowest at the "
                         "end.")
    out = {}
    for key, d in (("none", none), ("bn", bn)):
        out |= {f"mnist_d_acc_{key}": _pc(d["final_acc"]), f"mnist_d_loss_{key}": number(d["final_loss"], 4),
                f"mnist_d_min_{key}": number(d["min_loss"], 4), f"mnist_d_minep_{key}": number(d["min_loss_epoch"], 4),
                f"mnist_d_loss1_{key}": number(d["test_loss"][1], 4), f"mnist_d_ep1_{key}": number(d["epoch"][1], 4)}
    return out | {"mnist_d_gap": _pc(bn["final_acc"] - none["final_acc"]), "mnist_d_wobble": _pc(wob),
                  "mnist_d_start": md(start)}


def mnist_threshold_numbers(threshold: float = SATURATION_THRESHOLD) -> dict[str, Glued]:
    """The threshold exercise's numbers: arccosh 49 (four decimals) and the saturated fraction, per
    million, of a standard normal input at ``threshold``."""
    acosh49 = math.log(49 + math.sqrt(49**2 - 1))
    if not math.isclose(acosh49, threshold, rel_tol=1e-12):
        raise ValueError("the prose says arccosh 49 is the engine's SATURATION_THRESHOLD, which it no longer is.")
    return {"mnist_acosh49": text(f"{acosh49:.4f}"),
            "mnist_normal_sat_ppm": number(1e6 * math.erfc(threshold / math.sqrt(2)), 4)}
