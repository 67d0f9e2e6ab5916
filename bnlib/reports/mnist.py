"""Numbers of the MNIST chapter (book/mnist.ipynb) over each experiment's seeds: comparisons paired by seed
(:func:`bnlib.reports.evidence.paired`), choices on validation, BN scored with population statistics. Each
``mnist_*_numbers`` returns what a section glues and raises ValueError when the data no longer support its prose."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from bnlib import results as RR
from bnlib.reports import evidence as EV
from bnlib.reports.format import Glued, Table, and_list, fmt_mean_hw, fmt_paired, md, number, percent, text
from bnlib.reports.rules import ACCELERATES, INIT, Margin
from bnlib.results import by_seed, curve, curves, final_metric, run_of, seeds_of
from bnlib.vocabulary import norm_name

ACC_MARGIN = 0.0  # BN's final test accuracy counts as higher when the whole 95% interval of BN - no BN is above
#: The ledger's margins, used by the chapter's verdicts too: the speed-up (factor), the wider sigma range (decades).
SPEEDUP_MARGIN, WIDER_MARGIN = ACCELERATES.margins["speedup"], INIT.margins["wider"]
#: Figure 1(b, c)'s fixed endpoints (steps) between which the percentiles' drift is measured.
DRIFT_WINDOWS = ((1_000, 50_000), (10_000, 50_000))
#: BN counts as drifting less when the whole interval of its drift minus no-BN's lies below -DRIFT_MARGIN.
DRIFT_MARGIN = 0.0
#: The learning-rate rule: the smallest rate whose mean validation accuracy is within this of the best mean.
LR_WITHIN = 0.002
#: Two test losses are "nearly the same" in the Dense-128 solution when BN - no BN lies within plus or minus this.
NEARLY_SAME_LOSS = 0.01
_SAME = {EV.SUPPORTED: "nearly the same", EV.INCONCLUSIVE: "not shown to differ, though the interval leaves the band"}
_MED = RR.UNIT_QUANTILES.index(50.0)
_PNAMES = tuple(f"p{p:g}" for p in RR.PERCENTILES)


# --------------------------------------------------------------------------- scoring one run
def acc_key(run: dict, split: str = "val") -> str:
    """The accuracy curve of ``split`` ("val" or "test"), with population statistics (``_pop``) for BN."""
    return f"{split}_acc" + ("_pop" if run["config"].get("norm") is not None else "")


def final_acc(run: dict, split: str = "test", label: str = "run") -> float:
    """Final accuracy on ``split`` ("test" or "val"), with population statistics for a BN network."""
    v = final_metric(run, key := f"final_{acc_key(run, split)}")
    if v is None:
        raise ValueError(f"{label!r} diverged or has no {key}.")
    return v


def steps_to_target(run: dict, target: float, key: str | None = None) -> int | None:
    """First recorded step at which the curve ``key`` (default: validation, :func:`acc_key`) reaches ``target``."""
    return RR.steps_to_reach(run, target, key or acc_key(run))


def band(rows: Sequence[Sequence[float]], steps: Sequence | None = None) -> dict:
    """Seed mean and min-max band of per-seed curves (one row per seed, one value per record)."""
    a = np.asarray(rows, dtype=float)
    if a.ndim != 2 or not a.size:
        raise ValueError(f"a band needs one curve per seed of equal length, got shape {a.shape}.")
    out = {"mean": a.mean(0).tolist(), "lo": a.min(0).tolist(), "hi": a.max(0).tolist()}
    return out if steps is None else {"step": list(steps)} | out


def _steps_of(runs: list[dict]) -> list:
    if any(curve(r, "step") != curve(runs[0], "step") for r in runs):
        raise ValueError("the seeds of one label recorded at different steps; nothing to average.")
    return list(curve(runs[0], "step"))


def _hw(values) -> tuple[float | None, float | None]:
    """Seed mean and half-width of its 95% interval (None, None when a seed has no value; 0 for equal values)."""
    if any(v is None for v in values):
        return None, None
    return (float(np.mean(values)), 0.0) if np.ptp(values) == 0 else EV.mean_interval(values)


def _cfg(c) -> dict:
    """A run configuration as a dict (a :class:`bnlib.train.RunConfig` or the results' ``config``)."""
    return dataclasses.asdict(c) if dataclasses.is_dataclass(c) else dict(c)


def _pc(fraction: float) -> Glued:
    """A fraction glued as a percentage rounded to 4 decimals (the prose picks the digits it shows)."""
    return percent(fraction, 4)


def _pts(p: EV.Paired) -> Glued:
    return text(fmt_paired(p))


def _yes(verdict: str) -> Glued:
    return text({EV.SUPPORTED: "yes", EV.NOT_SUPPORTED: "no"}.get(verdict, verdict))


def _sign(p: EV.Paired, above: str, below: str, neither: str) -> str:
    """``above`` when the whole interval lies above zero, ``below`` when below, ``neither`` otherwise."""
    return above if p.lo > 0 else below if p.hi < 0 else neither


# --------------------------------------------------------------------------- Figure 1(a)
def mnist_speedup(res: dict, fast: str = "bn", slow: str = "none") -> dict:
    """Steps to a target on one seed's validation curves (:func:`acc_key`): ``final_fast``, ``final_slow`` (last
    records), ``steps`` (slow's), first steps ``fast_to_slow`` (None: never), ``slow_to_slow``, ``slow_to_fast``,
    ``fast_to_fast`` reaching a target, and ``speedup = slow_to_slow / fast_to_slow`` (None: never)."""
    rf, rs = run_of(res, fast), run_of(res, slow)
    if bad := [lab for lab, r in ((fast, rf), (slow, rs)) if r["summary"].get("diverged_at") is not None]:
        raise ValueError(f"run {bad[0]!r} diverged or has no final validation accuracy.")
    af, a_s = curve(rf, acc_key(rf))[-1], curve(rs, acc_key(rs))[-1]
    out = {"final_fast": af, "final_slow": a_s, "steps": rs["summary"]["steps_done"],
           "fast_to_slow": steps_to_target(rf, a_s), "slow_to_slow": steps_to_target(rs, a_s),
           "slow_to_fast": steps_to_target(rs, af), "fast_to_fast": steps_to_target(rf, af)}
    f2s, s2s = out["fast_to_slow"], out["slow_to_slow"]
    return out | {"speedup": s2s / f2s if f2s and s2s else None}


def mnist_accuracy_bands(res: dict, labels: Sequence[str] = ("none", "bn")) -> dict:
    """Per label, the seed mean and min-max band of the test accuracy (:func:`acc_key`) by step."""
    runs = {lab: seeds_of(res, lab) for lab in labels}
    return {lab: band([curve(r, acc_key(r, "test")) for r in g], _steps_of(g)) | {"seeds": len(g)}
            for lab, g in runs.items()}


def mnist_accuracy_numbers(res: dict, cfg) -> dict[str, Glued]:
    """Figure 1(a)'s numbers: the final test accuracies (BN: population statistics and eval mode) paired over seeds,
    the validation speed-up per seed (median, range, geometric mean with its interval) and the sentences they give."""
    rs = [r for _, r in sorted(by_seed(res).items())]
    a = {k: [final_acc(r["runs"][k], label=k) for r in rs] for k in ("none", "bn")}
    a |= {"bn_eval": [final_metric(r["runs"]["bn"], "final_test_acc") for r in rs],
          "speed": [mnist_speedup(r) for r in rs]}
    a |= {"gap": EV.paired(a["bn"], a["none"]), "eval_gap": EV.paired(a["bn_eval"], a["none"]),
          "pop_eval": EV.paired(a["bn"], a["bn_eval"])}
    a["leads"] = [max((s for s, x, y in zip(curve(n, "step"), curve(n, acc_key(n)), curve(b, acc_key(b)), strict=True)
                       if s > 0 and x >= y), default=None)  # the last step at which no BN is level or ahead
                  for n, b in ((r["runs"]["none"], r["runs"]["bn"]) for r in rs)]
    every, sp, n = _cfg(cfg)["record_every"], [s["speedup"] for s in a["speed"]], len(rs)
    if None in sp:
        raise ValueError("the prose says the BN network reaches the final validation accuracy of the network "
                         "without BN in every seed, which no longer holds.")
    g = EV.one_sample(np.log(sp))
    never = sum(s["slow_to_fast"] is None for s in a["speed"])
    other = ("The other way round, the network without BN never reaches the BN network's final validation accuracy "
             "within the run, in any seed." if never == n else f"The other way round, the network without BN "
             f"reaches the BN network's final validation accuracy within the run in {n - never} of the {n} seeds.")
    leads = [v for v in a["leads"] if v is not None]
    early = ("In every seed, the BN network's validation accuracy is ahead at every record after step 0." if not leads
             else f"The BN network is not ahead at every record: in {len(leads)} of the {n} seeds the network without "
             f"BN is level or ahead on validation at some record after step 0, the latest at step {max(leads):,}; from "
             f"step {max(leads) + every:,} on, BN is ahead in every seed.")
    acc, fast = EV.judge(a["gap"], ACC_MARGIN), EV.judge(g, math.log(SPEEDUP_MARGIN))
    verdict = {(EV.SUPPORTED, EV.SUPPORTED): "it holds here, over the seeds: BN ends with the higher test accuracy "
                                             f"and reaches the baseline's accuracy over {SPEEDUP_MARGIN:g}x sooner",
               (EV.INCONCLUSIVE, EV.SUPPORTED): "it holds here for the speed; for the final test accuracy the "
                                                "interval includes zero: inconclusive"}.get(
        (acc, fast), f"for the final test accuracy: {acc}; for a speed-up over {SPEEDUP_MARGIN:g}x: {fast}")
    return {**{f"mnist_final_{k}": _pc(float(np.mean(a[k]))) for k in ("none", "bn", "bn_eval")},
            "mnist_gap": _pts(a["gap"]), "mnist_eval_gap": _pts(a["eval_gap"]), "mnist_pop_eval": _pts(a["pop_eval"]),
            "mnist_pop_eval_words": text(_sign(a["pop_eval"], "population statistics ahead", "running averages ahead",
                                               "no clear difference")),
            "mnist_acc_words": text({EV.SUPPORTED: "higher with BN", EV.NOT_SUPPORTED: "not higher with BN"}.get(
                acc, acc)), "mnist_acc_verdict": md(verdict), "mnist_seeds": number(n),
            "mnist_speedup_median": number(float(np.median(sp)), 4), "mnist_speedup_min": number(min(sp), 4),
            "mnist_speedup_max": number(max(sp), 4), **{f"mnist_speedup_{k}": number(math.exp(v), 4) for k, v in
                                                         (("geo", g.mean), ("lo", g.lo), ("hi", g.hi))},
            "mnist_speed_holds": _yes(fast), "mnist_acc_holds": _yes(acc),
            "mnist_speed_margin": number(SPEEDUP_MARGIN),
            "mnist_bn_to_none": number(int(np.median([s["fast_to_slow"] for s in a["speed"]]))),
            "mnist_none_to_none": number(int(np.median([s["slow_to_slow"] for s in a["speed"]]))),
            "mnist_other_way": md(other), "mnist_early": md(early)}


# --------------------------------------------------------------------------- Figure 1(b, c)
def mnist_unit_medians(run: dict) -> dict:
    """Per PERCENTILE (``p15``, ``p50``, ``p85``) the ``units`` curve's median across the units, and ``step``."""
    u = curve(run, "units")
    return {"step": list(curve(run, "step")), **{p: [rec[k][_MED] for rec in u] for k, p in enumerate(_PNAMES)}}


def mnist_endpoint_drift(run: dict, start: int, end: int) -> dict:
    """Per percentile (``p15``, ``p50``, ``p85``) the absolute change of its median across units between the
    records at steps ``start`` and ``end``; ``mean``: the mean of the three."""
    m = mnist_unit_medians(run)
    if start not in m["step"] or end not in m["step"]:
        raise ValueError(f"step {start if start not in m['step'] else end} was not recorded; records run from "
                         f"{m['step'][0]} to {m['step'][-1]}.")
    d = {p: abs(m[p][m["step"].index(end)] - m[p][m["step"].index(start)]) for p in _PNAMES}
    return d | {"mean": float(np.mean(list(d.values())))}


def mnist_unit_bands(res: dict, label: str) -> dict:
    """Per percentile, the seed mean and min-max band of its median across units, by step, and ``lr``."""
    runs = seeds_of(res, label)
    meds = [mnist_unit_medians(r) for r in runs]
    return {"step": _steps_of(runs), "lr": runs[0]["config"]["lr"], **{p: band([m[p] for m in meds]) for p in _PNAMES}}


def mnist_drift(res: dict, pairs: Sequence[tuple[str, str]] = (("none", "bn"), ("none-lr2", "bn-lr2")),
                windows: Sequence[tuple[int, int]] = DRIFT_WINDOWS) -> list[dict]:
    """Per pair of labels (a learning rate), window and measure (``p15``, ``p50``, ``p85``, ``mean``): per-seed
    drifts ``none``, ``bn`` (:func:`mnist_endpoint_drift`), ``paired`` BN - no BN and ``verdict`` (supported: less)."""
    seeds, rows = list(by_seed(res).values()), []
    for nl, bl in pairs:
        for start, end in windows:
            d = {k: [mnist_endpoint_drift(r["runs"][k], start, end) for r in seeds] for k in (nl, bl)}
            for m in (*_PNAMES, "mean"):
                a, b = [x[m] for x in d[nl]], [x[m] for x in d[bl]]
                p = EV.paired(b, a)
                rows.append({"lr": run_of(res, nl)["config"]["lr"], "start": start, "end": end, "measure": m,
                             "none": a, "bn": b, "paired": p, "verdict": EV.judge(p, DRIFT_MARGIN, direction=-1)})
    return rows


#: With DRIFT_MARGIN = 0, "not supported" means the whole interval lies above zero: more drift with BN.
_DRIFT_WORDS = {EV.SUPPORTED: "less with BN", EV.NOT_SUPPORTED: "more with BN", EV.INCONCLUSIVE: "inconclusive"}


def mnist_drift_table(rows: list[dict]) -> Table:
    """The drift rows: seed means ± half-widths per network and the paired difference with its verdict."""
    names = {"mean": "mean of the three", **{p: f"{p[1:]}th" for p in _PNAMES}}
    return Table(["learning rate", "steps", "percentile", "no BN", "BN", "BN - no BN", "verdict"],
                 [[r["lr"], f"{r['start']:,} -> {r['end']:,}", names[r["measure"]],
                   fmt_mean_hw(*_hw(r["none"]), scale=1), fmt_mean_hw(*_hw(r["bn"]), scale=1),
                   fmt_paired(r["paired"], scale=1, unit=""), _DRIFT_WORDS[r["verdict"]]] for r in rows],
                 ["g", None, None, None, None, None, None])


def mnist_drift_numbers(res: dict, cfg, windows: Sequence[tuple[int, int]] = DRIFT_WINDOWS) -> dict[str, Glued]:
    """Figure 1(b, c)'s numbers: per rate (``lo``: Figure 1's, ``hi``) and window (``1k``, ...) each network's mean
    drift, the paired interval and verdict; a sentence per rate; the verdict; the spread's growth before the first
    record without BN."""
    c = _cfg(cfg)
    rows = [r for r in mnist_drift(res, windows=windows) if r["measure"] == "mean"]
    out, sentences, where = {}, {}, {}
    for r in rows:
        tag = "lo" if math.isclose(r["lr"], c["lr"]) else "hi"
        k = f"mnist_dr_{tag}_" + (f"{r['start'] // 1000}k" if r["start"] and not r["start"] % 1000 else str(r["start"]))
        pair, word = fmt_paired(r["paired"], scale=1, unit=""), _DRIFT_WORDS[r["verdict"]]
        out |= {f"{k}_none": number(float(np.mean(r["none"])), 4), f"{k}_bn": number(float(np.mean(r["bn"])), 4),
                f"{k}_pair": text(pair), f"{k}_verdict": text(word), f"mnist_dr_{tag}_lr": number(r["lr"])}
        sentences.setdefault(tag, []).append(
            f"from step {r['start']:,} to {r['end']:,} the percentiles move by {np.mean(r['none']):.2f} on average "
            f"without BN and {np.mean(r['bn']):.2f} with BN (BN - no BN: {pair}): {word}")
        where.setdefault(word, []).append(f"from step {r['start']:,} at rate {r['lr']:g}")
    out |= {f"mnist_dr_{tag}_sentence": md("; ".join(v) + ".") for tag, v in sentences.items()}
    overall = EV.combine([r["verdict"] for r in rows])
    out["mnist_drift_holds"] = text({EV.SUPPORTED: "yes: less drift with BN, at both rates and from both steps",
                                     EV.NOT_SUPPORTED: "no: more drift with BN"}.get(overall, overall))
    out["mnist_drift_count"] = text(", ".join(f"{w} in {len(x)}" for w, x in where.items()) + f" of the {len(rows)}")
    out["mnist_drift_verdict"] = md(
        "it holds here: between fixed steps, the percentiles of the last hidden layer's sigmoid inputs move less "
        "with BN than without, at both learning rates and from both starting points" if overall == EV.SUPPORTED else
        f"not as a general statement. Of the {len(rows)} comparisons (two learning rates, two starting steps), the "
        "drift is " + "; ".join(f"{word} {and_list(w, empty='')}" for word, w in where.items())
        + " (mean over the three percentiles, paired 95% intervals)")
    runs = seeds_of(res, "none")
    if curve(runs[0], "step")[1] != c["record_every"]:
        raise ValueError("the prose says the first record after step 0 is at the recording interval.")
    spread = np.array([[u[i][-1][_MED] - u[i][0][_MED] for i in (0, 1)] for u in (curve(r, "units") for r in runs)])
    if not (spread[:, 1] / spread[:, 0]).min() > 10:
        raise ValueError("the prose says the median unit's spread grows more than tenfold before the first record "
                         "in every seed, which no longer holds.")
    s0, s1 = spread.mean(0)
    return out | {"mnist_spread0": number(float(s0), 4), "mnist_spread1": number(float(s1), 4),
                  "mnist_spread_growth": number(float(s1 / s0), 4),
                  "mnist_dr_windows": text(and_list([f"{a:,} to {b:,}" for a, b in windows]))}


# --------------------------------------------------------------------------- the per-unit drift (why chapter)
def mnist_median_drift(run: dict, layer: int, unit: int, from_step: int | None = None) -> dict:
    """One probed unit's median drift from ``from_step`` (default: the first record after step 0): ``range`` (max -
    min), ``net`` (last - first), ``width`` (mean 15-85 spread), ``relative``, ``width_ratio``, ``from_step``."""
    t = RR.unit_percentiles(run, layer, unit)
    if from_step is None:
        from_step = next((s for s in t["step"] if s > 0), None)
        if from_step is None:
            raise ValueError("the run has no record after step 0.")
    keep = [i for i, s in enumerate(t["step"]) if s >= from_step]
    if not keep:
        raise ValueError(f"the run has no record at or after step {from_step}.")
    p50, p85, p15 = (np.array([t[k][i] for i in keep]) for k in ("p50", "p85", "p15"))
    width = p85 - p15
    rng, w = float(p50.max() - p50.min()), float(width.mean())
    return {"range": rng, "net": float(p50[-1] - p50[0]), "width": w, "relative": rng / w if w > 0 else math.inf,
            "width_ratio": float(width.max() / width.min()) if width.min() > 0 else math.inf,
            "from_step": int(from_step)}


def mnist_typical_unit(run: dict, layer: int = -1) -> int:
    """The probed unit of ``layer`` whose :func:`mnist_median_drift` ``range`` is the (lower) median one."""
    RR.probe_index(run, layer, run["config"]["probe_units"][0])
    units = list(run["config"]["probe_units"])[: len(curve(run, "percentiles")[0][layer])]
    ranked = sorted(units, key=lambda u: (mnist_median_drift(run, layer, u)["range"], u))
    return ranked[(len(ranked) - 1) // 2]


def mnist_drift_rows(res: dict, from_step: int | None = None) -> list[dict]:
    """:func:`mnist_median_drift` per run, hidden layer (1-based ``layer``) and probed ``unit``, with ``network``."""
    return [{"network": norm_name(run["config"]["norm"]), "label": label, "layer": li + 1, "unit": u,
             **mnist_median_drift(run, li, u, from_step)}
            for label, run in res["runs"].items() for li, units in enumerate(curve(run, "percentiles")[0])
            for u in list(run["config"]["probe_units"])[: len(units)]]


def mnist_drift_summary(rows: list[dict], network: str, layer: int | None = None) -> dict:
    """Mean over units (of one 1-based ``layer``, or all) of :func:`mnist_drift_rows`' range, relative, width_ratio."""
    mine = [r for r in rows if r["network"] == network and (layer is None or r["layer"] == layer)]
    if not mine:
        raise ValueError(f"no drift rows for network {network!r}, layer {layer}; networks: "
                         f"{sorted({r['network'] for r in rows})}.")
    return {k: float(np.mean([r[k] for r in mine])) for k in ("range", "relative", "width_ratio")}


# --------------------------------------------------------------------------- saturation and histograms
def mnist_saturation(run: dict) -> list[dict]:
    """Per hidden layer (1-based ``layer``): the saturated fraction at step 0 (``initial``), at the last record
    (``final``), its largest value (``max``) and its first step (``max_step``)."""
    c = curves(run)
    sat = np.asarray(c["saturated"], dtype=float)
    if sat.ndim != 2 or not len(sat):
        raise ValueError("the run has no recorded saturated fractions.")
    return [{"layer": li + 1, "initial": float(sat[0, li]), "final": float(sat[-1, li]), "max": float(sat[k, li]),
             "max_step": int(c["step"][k])} for li, k in enumerate(np.argmax(sat, axis=0))]


def mnist_saturation_bands(res: dict, labels: Sequence[str] = ("none", "bn")) -> dict:
    """Per label, ``step`` and per hidden layer the seed mean and min-max band of the saturated fraction."""
    runs = {lab: seeds_of(res, lab) for lab in labels}
    sat = {lab: np.asarray([curve(r, "saturated") for r in g], dtype=float) for lab, g in runs.items()}
    return {lab: {"step": _steps_of(g), "layers": [band(sat[lab][:, :, li]) for li in range(sat[lab].shape[2])]}
            for lab, g in runs.items()}


def mnist_saturation_rows(res: dict) -> list[dict]:
    """Per hidden layer, per-seed saturated fractions ``none_initial``, ``none_final``, ``bn_initial``,
    ``bn_final`` and the ``paired`` BN - no BN at the end."""
    s = {k: [mnist_saturation(r["runs"][k]) for _, r in sorted(by_seed(res).items())] for k in ("none", "bn")}
    rows = [{"layer": li + 1, **{f"{k}_{w}": [x[li][w] for x in s[k]] for k in s for w in ("initial", "final")}}
            for li in range(len(s["none"][0]))]
    return [r | {"paired": EV.paired(r["bn_final"], r["none_final"])} for r in rows]


def mnist_checkpoints(run: dict, n: int = 4) -> list[int]:
    """``n`` recorded steps to show distributions at: the first and the last record, and those nearest to ``n - 2``
    geometrically spaced steps from the first record after step 0."""
    steps = list(curve(run, "step"))
    if n < 2:
        raise ValueError(f"n must be at least 2 (the first and the last record), got {n}.")
    if len(steps) <= n:
        return steps
    later = [s for s in steps if s > 0]
    picks = [steps[0], later[-1]]
    for t in np.geomspace(later[0], later[-1], n - 1)[:-1]:
        picks.append(min((x for x in later if x not in picks), key=lambda x: (abs(math.log(x / t)), x)))
    return sorted(set(picks))


def mnist_histograms(run: dict, steps: Sequence[int], edges: Sequence[float] | None = None) -> dict:
    """Densities of every hidden layer's sigmoid inputs at the recorded ``steps`` (counts / total / bin width):
    ``edges`` (default :data:`bnlib.results.HIST_EDGES`), ``centers``, ``steps``, ``density[i][layer]``."""
    e = np.asarray(RR.HIST_EDGES if edges is None else edges, dtype=float)
    c = curves(run)
    index = {s: i for i, s in enumerate(c["step"])}
    missing = [s for s in steps if s not in index]
    if missing:
        raise ValueError(f"step {missing[0]} was not recorded; records run from {c['step'][0]} to {c['step'][-1]}.")
    dens = [[np.asarray(h, dtype=float) for h in c["hist"][index[s]]] for s in steps]
    bad = [len(h) for d in dens for h in d if len(h) != len(e) - 1]
    if bad:
        raise ValueError(f"a histogram has {bad[0]} bins but the edges give {len(e) - 1}.")
    return {"edges": e.tolist(), "centers": ((e[:-1] + e[1:]) / 2).tolist(), "steps": list(steps),
            "density": [[(h / h.sum() / np.diff(e)).tolist() for h in d] for d in dens]}


def mnist_saturation_numbers(res: dict) -> dict[str, Glued]:
    """The saturation section's numbers: per network and layer the mean saturated fraction at the end and at step
    0, the paired BN - no BN at the end per layer, and the sentences that follow from them."""
    rows = mnist_saturation_rows(res)
    if not all(np.allclose(r["none_initial"], r["bn_initial"], atol=1e-3) for r in rows):
        raise ValueError("the prose says both networks compute the same function at step 0, but their saturated "
                         "fractions differ there.")
    first = rows[0]
    if not (first["paired"].hi < 0 and np.mean(first["none_final"]) > 0.2 and max(first["none_initial"]) < 0.01):
        raise ValueError("the prose says few first-layer inputs start saturated, many end saturated without BN and "
                         "fewer with BN (interval below zero), which no longer holds.")
    out = {f"mnist_sat{w}_{key}_l{r['layer']}": _pc(float(np.mean(r[f"{key}_{when}"])))
           for r in rows for key in ("none", "bn") for w, when in (("", "final"), ("0", "initial"))}
    bands = mnist_saturation_bands(res, ("none",))["none"]
    b, steps = bands["layers"][0]["mean"], bands["step"]
    k = int(np.argmax(b))
    out["mnist_sat_rise"] = md(
        f"training then grows its weights, and {b[k]:.1%} of the inputs are saturated at step {steps[k]:,}, the "
        f"largest fraction of the seed-mean curve; it ends at {b[-1]:.1%}" if k < len(steps) - 1 else
        f"training then grows its weights, and the saturated fraction climbs to {b[-1]:.1%} by the end (seed mean)")
    out |= {f"mnist_sat_diff_l{r['layer']}": _pts(r["paired"]) for r in rows}
    out["mnist_sat_later"] = md("; ".join(
        f"in layer {r['layer']}, {np.mean(r['bn_final']):.1%} with BN against {np.mean(r['none_final']):.1%} without "
        f"({fmt_paired(r['paired'])}): {_sign(r['paired'], 'more with BN', 'fewer with BN', 'no clear difference')}"
        for r in rows[1:]))
    out["mnist_sat_holds"] = text("; ".join(f"layer {r['layer']}: " + _sign(
        r["paired"], "more saturated with BN", "fewer saturated with BN", "no clear difference") for r in rows))
    return out | {"mnist_hist_max": number(float(RR.HIST_EDGES[-1])), "mnist_checkpoints": text(
        and_list([f"{s:,}" for s in mnist_checkpoints(run_of(res, "none"), 4)]))}


# --------------------------------------------------------------------------- learning rate
def mnist_lr_rows(res: dict) -> list[dict]:
    """The learning-rate grid by rate: ``label``, ``lr``, ``seeds``, ``diverged`` (seeds), per-seed final ``val``
    and ``test`` accuracies, their means and half-widths ``val_mean``, ``val_hw``, ... (None when a seed diverged)."""
    rows = []
    for lab, group in RR.seed_groups(res["runs"]).items():
        group = sorted(group, key=lambda r: r["config"].get("seed", 0))
        val, test = ([final_metric(r, f"final_{acc_key(r, split)}") for r in group] for split in ("val", "test"))
        (vm, vh), (tm, th) = _hw(val), _hw(test)
        rows.append({"label": lab, "lr": group[0]["config"]["lr"], "seeds": len(group),
                     "diverged": sum(r["summary"].get("diverged_at") is not None for r in group),
                     "val": val, "test": test, "val_mean": vm, "val_hw": vh, "test_mean": tm, "test_hw": th})
    return sorted(rows, key=lambda r: r["lr"])


def mnist_lr_pick(rows: list[dict], within: float = LR_WITHIN) -> tuple[dict, dict]:
    """``(best, chosen)``: the rate with the highest mean validation accuracy, and the rule's choice, the smallest
    rate whose mean validation accuracy is within ``within`` of the best (rates that diverged in a seed excluded)."""
    ok = [r for r in rows if r["val_mean"] is not None]
    if not ok:
        raise ValueError("every rate of the learning-rate grid diverged in some seed.")
    best = max(ok, key=lambda r: r["val_mean"])
    return best, min((r for r in ok if r["val_mean"] >= best["val_mean"] - within), key=lambda r: r["lr"])


def mnist_lr_table(rows: list[dict]) -> Table:
    """Per rate: mean validation and test accuracy ± half-width, validation against the best rate (paired)."""
    best, chosen = mnist_lr_pick(rows)
    return Table(["learning rate", "validation acc. (%)", "test acc. (%)", "validation vs the best rate",
                  "diverged seeds", "rule's choice"],
                 [[r["lr"], fmt_mean_hw(r["val_mean"], r["val_hw"]), fmt_mean_hw(r["test_mean"], r["test_hw"]),
                   "n/a" if r["val_mean"] is None else "best" if r is best else
                   fmt_paired(EV.paired(r["val"], best["val"])), r["diverged"], "yes" if r is chosen else ""]
                  for r in rows], ["g", None, None, None, None, None])


def mnist_lr_numbers(lr_grid: dict, configs: dict, rates: Sequence[float], fig1_lr: float,
                     within: float = LR_WITHIN) -> dict[str, Glued]:
    """The learning-rate section's numbers (``configs``, ``rates``: the grid's; ``fig1_lr``: Figure 1's rate): the
    best and the chosen rate, the rule's margin, the smallest rate against the best, whether the rule picks
    Figure 1's rate."""
    rows, cfgs = mnist_lr_rows(lr_grid), [_cfg(c) for c in configs.values()]
    if any(c["norm"] is not None for c in cfgs):
        raise ValueError("the prose says the learning-rate grid trains only the network without BN, which it no "
                         "longer does.")
    (best, chosen), lo = mnist_lr_pick(rows, within), rows[0]
    if (fig := next((r for r in rows if math.isclose(r["lr"], fig1_lr)), None)) is None:
        raise ValueError(f"no run with learning rate {fig1_lr}; the grid has {[r['lr'] for r in rows]}.")
    gap = fmt_paired(EV.paired(fig["val"], best["val"]))
    picks = (f"The rule picks {chosen['lr']:g}, the rate Figure 1 uses." if math.isclose(chosen["lr"], fig1_lr) else
             f"The rule picks {chosen['lr']:g}, not the {fig1_lr:g} that Figure 1 uses: {fig1_lr:g}'s mean "
             f"validation accuracy is below the best by more than the margin ({gap}, against rate {best['lr']:g}). "
             f"Figure 1 keeps {fig1_lr:g}, chosen before the seeded runs (one seed, a looser rule: within a run's "
             "record-to-record wobble of the best); both networks share it, so neither is favoured.")
    div = [r for r in rows if r["diverged"]]
    diverged = ("No rate diverges in any seed." if not div else
                "Diverged in some seed: " + and_list([f"rate {r['lr']:g} ({r['diverged']} seeds)" for r in div]) + ".")
    lo_gap = "n/a" if lo is best or lo["val_mean"] is None else fmt_paired(EV.paired(lo["val"], best["val"]))
    return {"mnist_lr_steps": number(cfgs[0]["steps"]), "mnist_lr_list": text(and_list([f"{r:g}" for r in rates])),
            "mnist_lr_best": number(best["lr"]), "mnist_lr_best_acc": _pc(best["val_mean"]),
            "mnist_lr_chosen": number(chosen["lr"]), "mnist_lr_chosen_acc": _pc(chosen["val_mean"]),
            "mnist_lr_within": _pc(within), "mnist_lr_picks": md(picks), "mnist_lr_diverged": md(diverged),
            "mnist_lr_lo": number(lo["lr"]), "mnist_lr_lo_gap": text(lo_gap)}


# --------------------------------------------------------------------------- initialization sweep
def mnist_init_sweep(res: dict) -> dict:
    """One seed's sweep as a grid: ``sigmas``, ``networks`` (book labels) and per network and sigma ``acc``, ``val``
    (final test, validation accuracy; population statistics for BN; None: diverged), ``sat0``, ``sat_final`` (mean
    saturated fraction over hidden layers at the first and last record; at step 0 BN uses its initial averages)."""
    sigmas, networks, grid = set(), [], {k: {} for k in ("acc", "val", "sat0", "sat_final")}
    for label, run in res["runs"].items():
        name, s = norm_name(run["config"]["norm"]), float(run["config"]["init_sigma"])
        if s in grid["acc"].get(name, {}):
            raise ValueError(f"two runs of network {name!r} have init_sigma {s}.")
        networks += [name] if name not in networks else []
        sigmas.add(s)
        diverged, sat = run["summary"].get("diverged_at") is not None, curve(run, "saturated")
        for k, split in (("acc", "test"), ("val", "val")):
            grid[k].setdefault(name, {})[s] = None if diverged else final_acc(run, split, label)
        for k, i in (("sat0", 0), ("sat_final", -1)):
            grid[k].setdefault(name, {})[s] = float(np.mean(sat[i])) if sat else None
    return {"sigmas": sorted(sigmas), "networks": networks, **grid}


def mnist_sigma_range(grid: dict, network: str, within: float, metric: str = "val") -> dict:
    """The widest run of consecutive sigmas around the network's best one by ``metric`` ("val", the default, or
    "acc": test) within ``within`` of that best: ``best_sigma``, ``best_acc``, ``lo``, ``hi``, ``decades``
    (log10 hi / lo) and ``worst_acc`` (0 for a diverged run)."""
    if network not in grid["acc"]:
        raise ValueError(f"network {network!r} is not in the sweep; it has {grid['networks']}.")
    if not within >= 0:
        raise ValueError(f"within must be a non-negative fraction, got {within}.")
    if metric not in ("val", "acc"):
        raise ValueError(f"metric must be 'val' (validation) or 'acc' (test), got {metric!r}.")
    by = grid[metric][network]
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


def mnist_init_seeds(res: dict) -> dict:
    """The sweep over seeds: ``grids`` (per seed), ``mean`` (a grid of seed means; None where a seed diverged),
    ``hw`` (per network and sigma, the half-width of the test accuracy's 95% interval) and ``cell(key, net, s)``."""
    grids = [mnist_init_sweep(r) for _, r in sorted(by_seed(res).items())]
    nets, sig = grids[0]["networks"], grids[0]["sigmas"]

    def cell(key, n, s):
        return [g[key][n].get(s) for g in grids]

    mean = {"sigmas": sig, "networks": nets, **{k: {n: {s: _hw(cell(k, n, s))[0] for s in sig} for n in nets}
                                                for k in ("acc", "val", "sat0", "sat_final")}}
    return {"grids": grids, "mean": mean, "hw": {n: {s: _hw(cell("acc", n, s))[1] for s in sig} for n in nets},
            "cell": cell}


def mnist_init_table(seeded: dict) -> Table:
    """Per sigma: test accuracy per network (seed mean ± half-width), BN - no BN (paired), the saturated fraction at
    step 0 (every network's weights then) and at the end per network."""
    m, cell = seeded["mean"], seeded["cell"]
    none, bn = m["networks"]
    rows = [[s, fmt_mean_hw(*_hw(cell("acc", none, s))), fmt_mean_hw(*_hw(cell("acc", bn, s))),
             fmt_paired(EV.paired(cell("acc", bn, s), cell("acc", none, s)))
             if None not in cell("acc", none, s) + cell("acc", bn, s) else "n/a",
             m["sat0"][none][s], m["sat_final"][none][s], m["sat_final"][bn][s]] for s in m["sigmas"]]
    return Table(["init sigma", f"test acc. ({none}, %)", f"test acc. ({bn}, %)", f"{bn} - {none}",
                  "saturated at step 0", f"saturated at the end ({none})", f"saturated at the end ({bn})"],
                 rows, [".3g", None, None, None, ".1%", ".1%", ".1%"])


def mnist_init_numbers(sweep: dict, configs: dict, within: float) -> dict[str, Glued]:
    """The sweep's numbers: per network the sigmas whose mean validation accuracy is within ``within`` of its best
    (:func:`mnist_sigma_range` on the seed means), the per-seed widths paired, where BN is ahead, BN's loss at the
    largest sigma against its best one, the saturation there, and the verdict."""
    seeded = mnist_init_seeds(sweep)
    grids, m, cell = seeded["grids"], seeded["mean"], seeded["cell"]
    none, bn = m["networks"]
    sig, smax = m["sigmas"], max(m["sigmas"])
    r = {"none": mnist_sigma_range(m, none, within), "bn": mnist_sigma_range(m, bn, within)}
    p_dec = EV.paired(*([mnist_sigma_range(g, n, within)["decades"] for g in grids] for n in (bn, none)))
    if any(None in cell("acc", bn, s) for s in sig):
        raise ValueError("the prose says BN never diverges in the sweep, but it does.")
    unclear = [s for s in sig if not EV.paired(cell("acc", bn, s), [v or 0.0 for v in cell("acc", none, s)]).lo > 0]
    clear = and_list([f"{s:g}" for s in sig if s not in unclear], empty="")
    ahead = ("BN is ahead at every σ of the sweep (every paired interval above zero)" if not unclear else
             f"BN is ahead (paired interval above zero) at σ = {clear}, not clearly at " if clear else
             "BN is not clearly ahead (paired interval above zero) at any σ, in particular not at ")
    ahead += and_list([f"{s:g}" for s in unclear]) if unclear else ""
    best_bn = r["bn"]["best_sigma"]
    drop = EV.paired(cell("acc", bn, best_bn), cell("acc", bn, smax))
    drop_text = (f"Yet BN does not make the scale irrelevant: at σ = {smax:g} its test accuracy is below that"
                 f" at its best σ ({best_bn:g}): best σ minus σ = {smax:g}, {fmt_paired(drop)}." if drop.lo > 0 else
                 f"At σ = {smax:g} BN's test accuracy is not clearly below that at its best σ "
                 f"({best_bn:g}): best σ minus σ = {smax:g}, {fmt_paired(drop)}.")
    wider = EV.judge(p_dec, WIDER_MARGIN)
    verdict = ({EV.SUPPORTED: "the claim holds here: with BN, the range of initialization scales near the best is "
                              f"wider by more than {WIDER_MARGIN:g} decades (the ledger's rule), seed by seed",
                EV.INCONCLUSIVE: f"inconclusive: the paired interval straddles {WIDER_MARGIN:g} decades",
                EV.NOT_SUPPORTED: f"not here: BN's range is not wider by more than {WIDER_MARGIN:g} decades"}[wider]
               + ("; but the scale does not stop mattering: at the largest σ BN still loses accuracy"
                  if drop.lo > 0 else ""))
    out = {"mnist_sw_steps": number(_cfg(next(iter(configs.values())))["steps"]), "mnist_sw_min": number(min(sig)),
           "mnist_sw_max": number(smax), "mnist_sw_decades": number(math.log10(smax / min(sig)), 4),
           "mnist_sw_within_text": text(f"{Margin(within):pts}"), "mnist_sw_seeds": number(len(grids)),
           "mnist_sw_margin": number(WIDER_MARGIN),
           "mnist_sw_dec_pair": text(fmt_paired(p_dec, scale=1, unit=" decades")), "mnist_sw_ahead": md(ahead),
           "mnist_sw_drop_sentence": md(drop_text), "mnist_sw_verdict": md(verdict), "mnist_sw_holds": _yes(wider),
           "mnist_sw_sat0_max": _pc(m["sat0"][none][smax]), "mnist_sw_satend_none": _pc(m["sat_final"][none][smax]),
           "mnist_sw_satend_bn": _pc(m["sat_final"][bn][smax]), "mnist_sw_drop_bn": _pts(drop),
           "mnist_sw_sat_pair": _pts(EV.paired(cell("sat_final", bn, smax), cell("sat_final", none, smax)))}
    for key, n in (("none", none), ("bn", bn)):
        out |= {f"mnist_sw_lo_{key}": number(r[key]["lo"]), f"mnist_sw_hi_{key}": number(r[key]["hi"]),
                f"mnist_sw_dec_{key}": number(r[key]["decades"], 4), f"mnist_sw_best_{key}": _pc(r[key]["best_acc"]),
                f"mnist_sw_bestsig_{key}": number(r[key]["best_sigma"]),
                f"mnist_sw_worst_{key}": _pc(min(v or 0.0 for v in m["acc"][n].values()))}
    return out


# --------------------------------------------------------------------------- setup, Dense-128, threshold
def mnist_setup_numbers(cfg, *, n_train: int, n_test: int, mean: float, std: float, bn_momentum: float,
                        bn_eps: float, registered=None) -> dict[str, Glued]:
    """The experiment section's numbers for Figure 1's configuration ``cfg`` (``registered``: one the experiment
    trains, compared without its seed), and a first-layer input's standard deviation at initialization with [0, 1]
    pixels (``mean``, ``std``: theirs) and with standardized ones."""
    c = _cfg(cfg)
    if registered is not None and {**_cfg(registered), "seed": 0} != {**c, "seed": 0}:
        raise ValueError("the registered mnist_fig1 experiment no longer trains the configuration the prose describes.")
    for bad, says in ((c["momentum"] or c["weight_decay"] or c["lr_decay_every"] or c["optimizer"] != "sgd",
                       "plain SGD without momentum, weight decay or learning-rate schedule"),
                      ((c["record_every"], c["steps"], c["batch_size"]) != (500, 50_000, 60),
                       "50,000 steps of mini-batches of 60 recorded every 500 steps"),
                      (c.get("inputs") != "unit" or c.get("init") != "gaussian", "[0, 1] pixels and Gaussian weights")):
        if bad:
            raise ValueError(f"the prose says {says}, which the configuration no longer has.")
    sizes, val, sd = c["sizes"], c.get("validation") or 0, c["init_sigma"]
    return {"mnist_ntrain": number(n_train - val), "mnist_nval": number(val), "mnist_ntest": number(n_test),
            "mnist_ncal": number(c.get("calibration") or 0), "mnist_in": number(sizes[0]),
            "mnist_width": number(sizes[1]), "mnist_depth": number(len(sizes) - 2), "mnist_classes": number(sizes[-1]),
            "mnist_batch": number(c["batch_size"]), "mnist_steps": number(c["steps"]),
            "mnist_epochs": number(c["steps"] * c["batch_size"] / (n_train - val)),
            "mnist_every": number(c["record_every"]), "mnist_sigma": number(sd), "mnist_lr": number(c["lr"]),
            "mnist_probe": number(c["probe_batch"]), "mnist_mean": number(mean), "mnist_std": number(std),
            "mnist_sd_unit": number(sd * math.sqrt(sizes[0] * (mean**2 + std**2)), 4),
            "mnist_sd_std": number(sd * math.sqrt(sizes[0]), 4), "mnist_bn_momentum": number(bn_momentum),
            "mnist_bn_eps": number(bn_eps), "mnist_threshold": number(RR.SATURATION_THRESHOLD)}


def _epochs(cfg: dict, n_train: int = 60_000) -> float:
    return cfg["steps"] * cfg["batch_size"] / (cfg["train_subset"] or n_train)


def mnist_dense128(res: dict) -> dict:
    """The Dense-128 demo of one seed, per label: ``final_acc`` (test; population statistics for BN), and in eval mode
    ``final_loss``, ``min_loss``, ``min_loss_epoch`` and by ``epoch`` ``test_loss``, ``test_acc``."""
    out = {}
    for label, run in res["runs"].items():
        cfg, c = run["config"], curves(run)
        per_epoch = (cfg.get("train_subset") or 60_000) / cfg["batch_size"]
        k = int(np.argmin(c["test_loss"]))
        out[label] = {"final_acc": final_acc(run, label=label), "final_loss": final_metric(run, "final_test_loss"),
                      "min_loss": float(c["test_loss"][k]), "min_loss_epoch": c["step"][k] / per_epoch,
                      "epoch": [st / per_epoch for st in c["step"]], "test_loss": list(c["test_loss"]),
                      "test_acc": list(c["test_acc"])}
    return out


def mnist_dense128_bands(res: dict) -> dict:
    """Per label, ``epoch`` and the seed mean and min-max band of the test loss and accuracy by epoch."""
    per = [mnist_dense128(r) for _, r in sorted(by_seed(res).items())]
    return {lab: {"epoch": per[0][lab]["epoch"], **{k: band([d[lab][k] for d in per]) for k in
                                                     ("test_loss", "test_acc")}} for lab in per[0]}


def mnist_wobble(run: dict, last: int = 5) -> float:
    """The largest change of the recorded test accuracy between consecutive records among the ``last`` records."""
    acc = [a for a in curve(run, "test_acc") if a is not None][-last:]
    if last < 2 or len(acc) < 2:
        raise ValueError(f"need at least two records (last >= 2); have {len(acc)} with last={last}.")
    return float(max(abs(b - a) for a, b in zip(acc[:-1], acc[1:], strict=True)))


def mnist_dense128_numbers(res: dict, cfg, n_train: int = 60_000) -> dict[str, Glued]:
    """The Dense-128 exercise's settings (``cfg``; ``n_train`` training images) and its solution's numbers over
    seeds: per network the mean final accuracy and loss, lowest loss and its (median) epoch; BN - no BN paired for
    those and the loss after one epoch, and the sentences they give."""
    c = _cfg(cfg)
    per = [mnist_dense128(r) for _, r in sorted(by_seed(res).items())]
    v = {lab: {k: [d[lab][k] for d in per] for k in ("final_acc", "final_loss", "min_loss", "min_loss_epoch")}
         | {"loss1": [d[lab]["test_loss"][1] for d in per]} for lab in ("none", "bn")}
    p = {k: EV.paired(v["bn"][k], v["none"][k]) for k in ("final_acc", "final_loss", "min_loss", "loss1")}
    f3, ep1 = {k: fmt_paired(p[k], scale=1, unit="", digits=3) for k in p}, per[0]["none"]["epoch"][1]
    start = _sign(p["loss1"], f"After {ep1:.0f} epoch the BN network's test loss is *higher* (BN - no BN: "
                              f"{f3['loss1']}), so there is no faster start.",
                  f"After {ep1:.0f} epoch the BN network's test loss is lower (BN - no BN: {f3['loss1']}): a faster "
                  "start.", f"After {ep1:.0f} epoch the two test losses cannot be told apart (BN - no BN: "
                  f"{f3['loss1']}): no clear faster start.")
    same = [EV.within(p[k], -NEARLY_SAME_LOSS, NEARLY_SAME_LOSS) for k in ("min_loss", "final_loss")]
    if EV.NOT_SUPPORTED in same:
        raise ValueError("the prose says both networks' lowest and final test losses are nearly the same, but one "
                         "paired interval lies outside the band.")
    over = {lab: sum(e < _epochs(c) for e in v[lab]["min_loss_epoch"]) for lab in v}
    overfit = ("Both networks overfit afterwards, in every seed," if min(over.values()) == len(per) else
               f"In {over['none']} of the {len(per)} seeds without BN and {over['bn']} with BN the test loss is lowest "
               "before the last epoch and rises again (overfitting);")
    parts = (p["loss1"].hi < 0) + (p["min_loss"].hi < -NEARLY_SAME_LOSS)  # a faster start; a lower loss beyond the band
    out = {f"mnist_d_{name}_{key}": number(float(f(v[key][k])), 4) for key in ("none", "bn") for name, k, f in
           (("loss", "final_loss", np.mean), ("min", "min_loss", np.mean), ("minep", "min_loss_epoch", np.median))}
    out |= {"mnist_d_width": number(c["sizes"][1]), "mnist_d_batch": number(c["batch_size"]),
            "mnist_d_lr": number(c["lr"]), "mnist_d_ntrain": number(c["train_subset"]),
            "mnist_d_split": _pc(1 - c["train_subset"] / n_train), "mnist_d_epochs": number(_epochs(c, n_train))}
    return out | {f"mnist_d_acc_{key}": _pc(float(np.mean(v[key]["final_acc"]))) for key in ("none", "bn")} | {
        "mnist_d_gap": _pts(p["final_acc"]), "mnist_d_start": md(start), "mnist_d_overfit": md(overfit),
        "mnist_d_seeds": number(len(per)), "mnist_d_minpair": text(f3["min_loss"]),
        "mnist_d_losspair": text(f3["final_loss"]),
        "mnist_d_verdict": text(["Not clearly", "Only in part", "Yes"][parts]),
        "mnist_d_band": number(NEARLY_SAME_LOSS),
        "mnist_d_same": text(_SAME[same[0]]), "mnist_d_same_final": text(_SAME[same[1]])}


def mnist_threshold_numbers(threshold: float = RR.SATURATION_THRESHOLD) -> dict[str, Glued]:
    """The threshold exercise's numbers: arccosh 49 and the saturated fraction (per million) of a standard normal."""
    if not math.isclose(acosh49 := math.log(49 + math.sqrt(49**2 - 1)), threshold, rel_tol=1e-12):
        raise ValueError("the prose says arccosh 49 is the engine's SATURATION_THRESHOLD, which it no longer is.")
    return {"mnist_acosh49": text(f"{acosh49:.4f}"),
            "mnist_normal_sat_ppm": number(1e6 * math.erfc(threshold / math.sqrt(2)), 4)}
