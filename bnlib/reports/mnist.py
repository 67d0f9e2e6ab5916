"""Numbers of the MNIST chapter (book/mnist.ipynb): the paper's Figure 1 (final accuracies, the
steps each network needs to reach the other's final accuracy, the drift of the sigmoid-input
percentiles), the saturated fraction and input histograms per layer, the learning-rate choice, the
initialization sweep and the Dense-128 demo. Each function takes an experiment result or one run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bnlib.reports.cifar import run_stats
from bnlib.reports.format import Table
from bnlib.results import HIST_EDGES, final_metric, probe_index, run_of, seed_groups, steps_to_reach, unit_percentiles
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
    n = len(run["curves"]["percentiles"][0][layer])
    units = list(run["config"]["probe_units"])[:n]
    ranked = sorted(units, key=lambda u: (mnist_median_drift(run, layer, u)["range"], u))
    return ranked[(len(ranked) - 1) // 2]


def mnist_drift_rows(res: dict, from_step: int | None = None) -> list[dict]:
    """:func:`mnist_median_drift` for every run, hidden layer and probed unit, one dict each with
    ``network`` (book label of the norm), ``label``, ``layer`` (1-based) and ``unit`` added."""
    rows = []
    for label, run in res["runs"].items():
        pct = run["curves"]["percentiles"]
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
    c = run["curves"]
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
    steps = list(run["curves"]["step"])
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
    c = run["curves"]
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
        sat = run["curves"]["saturated"]
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
        cfg, c, s = run["config"], run["curves"], run["summary"]
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
    acc = [a for a in run["curves"]["test_acc"] if a is not None][-last:]
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
    cf, cs = run_of(res, fast)["curves"], run_of(res, slow)["curves"]
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
