"""Numbers of the chapter on why BN works (book/why.ipynb): noisy BN and the distribution shift it
injects, Santurkar et al.'s internal-covariate-shift measure, and the loss landscape along the gradient.

The measures of one run (:func:`early_train_loss`, :func:`ics_summary`, :func:`landscape_summary`) and of a
one-seed result (:func:`why_shift`) are what the claims ledger applies seed by seed. The chapter's numbers
compare networks over every seed: seed means with the half-width of their 95% interval, and paired
differences (same seed: same initial weights and data order) read against the margins of :data:`MARGINS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bnlib.functional import half_life
from bnlib.reports import evidence as EV
from bnlib.reports import rules as R
from bnlib.reports.format import Glued, Table, fmt_mean_hw, fmt_paired, md, number, text
from bnlib.reports.mnist import mnist_drift_rows, mnist_drift_summary, mnist_typical_unit, mnist_wobble
from bnlib.results import by_seed, curve, curves, final_metric, run_of, seeds_of
from bnlib.vocabulary import norm_name, norm_of

#: The share of training at the end over which :func:`late_train_loss` averages.
LATE_FRACTION = 0.2
#: The networks of the noisy-BN experiment, of the landscape runs and of the l_p section, in the book's order.
NOISY_LABELS, LANDSCAPE_LABELS, LP_LABELS = ("none", "bn", "noisy"), ("none", "bn"), ("none", "bn", "l1", "linf")

#: Fixed before the data, in each measure's units. A paired difference A - B reads "higher" (or "lower") when its
#: whole 95% interval lies beyond +MARGINS (or -MARGINS), "level" when inside the equivalence band +-BANDS, and
#: "inconclusive" otherwise or with fewer than MIN_SEEDS seeds. The margins are 0, as the ledger's for the benefits
#: of BN, except for the ICS and landscape measures, which take the ledger's (a cosine difference, and for RATIOS a
#: factor, read on paired log ratios). Bands: accuracy and its record-to-record change (``wobble``) 0.2 points,
#: first-interval loss (``early``) 0.05, late loss 0.002, shift 0.1 spreads; ICS and landscape: their margins.
MARGINS = dict.fromkeys(("acc", "wobble", "early", "late", "shift"), 0.0) | {
    "cos": R.REDUCES_ICS.margins["cos"], "l2": R.REDUCES_ICS.margins["ratio"]} | dict.fromkeys(
    ("beta", "gc", "range"), R.SMOOTHS.margins["ratio"])
BANDS = MARGINS | {"acc": 0.002, "wobble": 0.002, "early": 0.05, "late": 0.002, "shift": 0.1}
RATIOS = frozenset({"l2", "beta", "gc", "range"})
#: How each measure is shown: scale, unit, decimals.
SHOWN = {"acc": (100, " points", 2), "wobble": (100, " points", 2), "early": (1, "", 3), "late": (1, "", 4),
         "shift": (1, " spreads", 2), "l2": (1, "", 4), "cos": (1, "", 4), "beta": (1, "", 3), "gc": (1, "", 4),
         "range": (1, "", 4)}
HIGHER, LOWER, LEVEL, INCONCLUSIVE = "higher", "lower", "level", EV.INCONCLUSIVE
NAMES = {"none": "the network without BN", "bn": "BN", "noisy": "noisy BN", "l1": "l_1", "linf": "l_inf"}


# --------------------------------------------------------------------------- comparisons over seeds
@dataclass(frozen=True)
class Comparison:
    """A paired difference A - B over seeds of one measure (a key of :data:`MARGINS`) and its reading."""

    p: EV.Paired
    measure: str
    reading: str

    @property
    def shown(self) -> str:
        """"+0.42 points [+0.14, +0.70], 5 seeds" in the measure's units; a ratio A / B as "0.31× [0.29, 0.33]"."""
        if self.measure not in RATIOS:
            return fmt_paired(self.p, *SHOWN[self.measure])
        if self.p.n == 1:
            return f"{math.exp(self.p.mean):.3g}× (one seed: no interval)"
        return f"{math.exp(self.p.mean):.3g}× [{math.exp(self.p.lo):.3g}, {math.exp(self.p.hi):.3g}], {self.p.n} seeds"

    @property
    def cell(self) -> str:
        """:attr:`shown` without the seed count, for a table whose caption gives it."""
        return self.shown.removesuffix(f", {self.p.n} seeds")


def reading(p: EV.Paired, margin: float, band: float) -> str:
    """How a paired difference reads: :data:`HIGHER` / :data:`LOWER` (the interval beyond +-``margin``),
    :data:`LEVEL` (inside +-``band``) or :data:`INCONCLUSIVE` (neither, or too few seeds)."""
    if p.n < EV.MIN_SEEDS:
        return INCONCLUSIVE
    if EV.judge(p, margin, 1) == EV.SUPPORTED:
        return HIGHER
    if EV.judge(p, margin, -1) == EV.SUPPORTED:
        return LOWER
    return LEVEL if EV.within(p, -band, band) == EV.SUPPORTED else INCONCLUSIVE


def compare(a: Sequence[float], b: Sequence[float], measure: str) -> Comparison:
    """The paired difference ``a - b`` (one value per seed each, in seed order) read against ``MARGINS[measure]``
    and ``BANDS[measure]``; for a measure of :data:`RATIOS`, that of ``log a - log b`` against log factors."""
    if measure not in MARGINS:
        raise ValueError(f"unknown measure {measure!r}; the margins are for {sorted(MARGINS)}.")
    if measure in RATIOS:
        p = EV.paired(np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float)))
        return Comparison(p, measure, reading(p, math.log(MARGINS[measure]), math.log(BANDS[measure])))
    p = EV.paired(a, b)
    return Comparison(p, measure, reading(p, MARGINS[measure], BANDS[measure]))


def mean_hw(values: Sequence[float], measure: str, unit: str = "") -> str:
    """The seed mean with the half-width of its 95% interval, in the measure's units: "97.92 ± 0.05"."""
    scale, _, digits = SHOWN[measure]
    return fmt_mean_hw(*EV.mean_interval(values), scale=scale, digits=digits, unit=unit)


def margin_text(measure: str, of: Mapping = MARGINS) -> str:
    """A margin (or with ``of=BANDS`` a band) as the prose states it: "0.2 points", "0.05", "a factor of 1.1"."""
    scale, unit, _ = SHOWN[measure]
    return f"a factor of {of[measure]:g}" if measure in RATIOS else f"{scale * of[measure]:g}{unit}"


def _word(c: Comparison, higher: str, lower: str, level: str = "level with",
          unclear: str = "not distinguishable from") -> str:
    """The reading of ``c`` as the phrase the caller gives for it."""
    return {HIGHER: higher, LOWER: lower, LEVEL: level, INCONCLUSIVE: unclear}[c.reading]


def _band(rows: Sequence[Sequence[float]], log: bool = True) -> dict:
    """Per column of ``rows`` (one row per seed): the seed mean and its 95% interval (``mean``, ``lo``, ``hi``) on the
    log scale (geometric mean, for positive quantities) or, with ``log=False``, for a cosine (clipped at 1)."""
    a = np.asarray(rows, dtype=np.float64)
    mh = np.array([EV.mean_interval(c) if np.all(np.isfinite(c)) else (math.nan, math.nan)
                   for c in (np.log(a) if log else a).T])
    m, lo, hi = mh[:, 0], mh[:, 0] - mh[:, 1], mh[:, 0] + mh[:, 1]
    return {k: (np.exp(x) if log else np.minimum(x, 1.0)).tolist() for k, x in (("mean", m), ("lo", lo), ("hi", hi))}


def _check_run(run) -> dict:
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict) or not isinstance(run.get("curves"), dict):
        raise TypeError("run must be one run of an experiment result: a dict with 'config' and 'curves'.")
    return run


# --------------------------------------------------------------------------- measures of one run
def _layer_draws(draws: Mapping | None, run: dict) -> Mapping | None:
    """``draws`` when it maps layers to (scale, shift), ``draws[seed of run]`` when it maps seeds to such maps."""
    if draws and all(isinstance(v, Mapping) for v in draws.values()):
        seed = run["config"].get("seed", 0)
        if seed not in draws:
            raise ValueError(f"the draws hold seeds {sorted(draws)}, not the run's seed {seed}: compute them with "
                             "bnlib.analysis.noisy_run_draws for every seed.")
        return draws[seed]
    return draws


def as_trained(run: dict, draws: Mapping | None = None) -> dict:
    """A copy of ``run`` whose recorded percentiles are those of each probed unit's sigmoid input as *training*
    sees it, so that the MNIST chapter's drift measures (:func:`mnist_median_drift`) apply unchanged.

    The engine records the percentiles in eval mode. For a network without injected noise they are what the next
    training step sees (up to batch versus population statistics) and the run is returned as it is. For noisy BN the
    next training step, ``t + 1`` after a record at step ``t``, sees ``s_{t+1} z + b_{t+1}`` of the recorded value
    ``z``; ``s > 0``, so percentiles map to percentiles. ``draws`` maps a hidden layer to its
    :func:`bnlib.analysis.noisy_shift_draws` (required for a noisy-BN run), or maps seeds to such mappings (the
    run's ``config["seed"]`` picks one)."""
    cfg, c = (run := _check_run(run))["config"], curves(run)
    if cfg.get("norm") != "noisy":
        return run
    draws = _layer_draws(draws, run)
    pct = np.asarray(c["percentiles"], dtype=float)
    if pct.ndim != 4 or pct.shape[-1] != 3:
        raise ValueError(f"the run's percentiles must have shape (records, layers, units, 3), got {pct.shape}.")
    steps = np.asarray(c["step"], dtype=int)
    units = list(cfg["probe_units"])[: pct.shape[2]]
    out = pct.copy()
    for layer in range(pct.shape[1]):
        if draws is None or layer not in draws:
            raise ValueError(f"a noisy-BN run needs the draws of every hidden layer (layer {layer} is missing): "
                             "compute them with bnlib.analysis.noisy_shift_draws.")
        scale, shift = draws[layer]
        if len(scale) <= steps.max():
            raise ValueError(f"layer {layer} has draws for {len(scale)} steps; the records need {steps.max() + 1}.")
        s, b = scale[steps][:, units], shift[steps][:, units]  # row t holds the draw of step t + 1
        out[:, layer] = s[:, :, None] * pct[:, layer] + b[:, :, None]
    return {**run, "curves": {**c, "percentiles": out.tolist()}}


def why_shift(res: dict, draws: Mapping | None = None) -> dict:
    """The distribution shift each network of the noisy-BN experiment trains with, in the MNIST
    chapter's measure: per run label, :func:`mnist_drift_summary` over every hidden layer and probed
    unit of the run :func:`as_trained` (``range`` of the median, ``relative`` to the mean 15-85 spread,
    ``width_ratio``). ``draws`` as for :func:`as_trained` (by layer, or by seed)."""
    out = {}
    for label, run in res["runs"].items():
        rows = mnist_drift_rows({"runs": {label: as_trained(run, draws)}})
        out[label] = mnist_drift_summary(rows, rows[0]["network"])
    return out


def _recorded_steps(run: dict, key: str) -> list[int]:
    """The steps at which a recorder ran: every record after step 0 (the recorders skip step 0)."""
    c = curves(run)
    if key not in c or not c[key]:
        raise ValueError(f"the run has no {key!r} recorder curve (train it with recorders=({key!r},)).")
    steps = [s for s in c["step"] if s > 0]
    if len(steps) != len(c[key]):
        raise ValueError(f"the {key!r} curve has {len(c[key])} entries for {len(steps)} records after step 0.")
    return steps


def ics_summary(run: dict) -> dict:
    """Santurkar et al.'s internal covariate shift of a run (recorder ``"ics"``).

    Returns ``steps``, ``layers`` (the weight layers measured: 1, 2, ... in the engine's 0-based
    numbering; layer 0 has no earlier layer), ``l2`` and ``cos`` (per layer, lists over steps),
    ``median_l2`` and ``median_cos`` (per layer) and ``median_l2_all``/``median_cos_all`` (over
    every step and layer).
    """
    run = _check_run(run)
    steps = _recorded_steps(run, "ics")
    recs = curve(run, "ics")
    layers = [i for i, v in enumerate(recs[0]["l2"]) if v is not None]
    l2 = np.array([[r["l2"][i] for i in layers] for r in recs], dtype=float)
    cos = np.array([[r["cos"][i] for i in layers] for r in recs], dtype=float)
    return {"steps": steps, "layers": layers, "l2": l2.T.tolist(), "cos": cos.T.tolist(),
            "median_l2": np.median(l2, axis=0).tolist(), "median_cos": np.median(cos, axis=0).tolist(),
            "median_l2_all": float(np.median(l2)), "median_cos_all": float(np.median(cos))}


def landscape_summary(run: dict) -> dict:
    """The loss landscape along the gradient of a run (recorder ``"landscape"``), per checkpoint and in medians.

    Per checkpoint (lists over ``steps``): ``loss_min``/``loss_max`` of the loss at
    ``w - eta g`` over the step sizes, ``loss_range`` (their difference), ``gc_min``/``gc_max``
    (smallest and largest l2 change of the gradient, ``||g(w - eta g) - g(w)||``) and ``beta``
    (effective beta-smoothness), and ``loss0`` (the loss at ``w``). ``median_loss_range``,
    ``median_gc_max``, ``median_beta``, ``median_loss0``: medians over the checkpoints;
    ``median_rel_range``: median of ``loss_range / loss0``.
    """
    run = _check_run(run)
    steps = _recorded_steps(run, "landscape")
    recs = curve(run, "landscape")

    def finite(vals):
        v = [x for x in vals if x is not None and math.isfinite(x)]
        return v or [math.nan]

    out: dict = {"steps": steps, "loss_min": [min(finite(r["loss"])) for r in recs],
                 "loss_max": [max(finite(r["loss"])) for r in recs],
                 "gc_min": [min(finite(r["grad_change"])) for r in recs],
                 "gc_max": [max(finite(r["grad_change"])) for r in recs], "beta": [r["beta"] for r in recs],
                 "loss0": [r["loss0"] for r in recs]}
    out["loss_range"] = [a - b for a, b in zip(out["loss_max"], out["loss_min"], strict=True)]
    for k in ("loss_range", "gc_max", "beta", "loss0"):
        out[f"median_{k}"] = float(np.nanmedian(np.asarray(out[k], dtype=float)))
    out["median_rel_range"] = float(np.nanmedian(np.asarray(out["loss_range"]) / np.asarray(out["loss0"])))
    return out


def late_train_loss(run: dict, fraction: float = LATE_FRACTION) -> float | None:
    """Mean of the recorded training losses (mini-batch losses, as trained) over the last ``fraction`` of
    the run's steps; None when the run diverged or recorded none there."""
    run = _check_run(run)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}.")
    s = run["summary"]
    if s.get("diverged_at") is not None:
        return None
    done = s.get("steps_done", run["config"].get("steps"))
    vals = [v for st, v in zip(curve(run, "step"), curve(run, "train_loss"), strict=True)
            if v is not None and st > (1.0 - fraction) * done]
    return float(np.mean(vals)) if vals else None


def early_train_loss(run: dict) -> float | None:
    """The mean mini-batch training loss over the first record interval (steps 1 to ``record_every``,
    as trained): how fast a network starts; None when the run diverged before its first record."""
    run = _check_run(run)
    c = curves(run)
    vals = [v for st, v in zip(c["step"], c["train_loss"], strict=True) if st > 0 and v is not None]
    return float(vals[0]) if vals else None


# --------------------------------------------------------------------------- what book/why.ipynb glues
def _require(ok: bool, prose: str) -> None:
    if not ok:
        raise ValueError(f"the why chapter's prose says {prose}, which the committed results no longer show.")


def _says(c: Comparison) -> str:
    """The reading of a difference, as a parenthesis: "higher", "level within ±0.2 points", ..."""
    b = margin_text(c.measure, BANDS) if c.measure in RATIOS else f"±{margin_text(c.measure, BANDS)}"
    m = f"inconclusive at a margin of {b}" if MARGINS[c.measure] else f"inconclusive: it includes 0 and leaves {b}"
    return {LEVEL: f"level within {b}", INCONCLUSIVE: m}.get(c.reading, c.reading)


def setup_numbers(noisy: dict, land: dict, *, shift_std: float, scale_spread: float,
                  landscape_steps: Sequence[float], n_test: int, momentum: float) -> dict[str, Glued]:
    """The setup the chapter describes, from the BN runs' configurations of ``why_noisy`` and ``why_landscape``,
    the noise of ``bnlib.models.NoisyShift`` (``shift_std``, ``scale_spread``), the landscape recorder's step
    multiples, the test-set size and PyTorch's BN momentum; the seeds and the margins of :data:`MARGINS`."""
    seeds = sorted(by_seed(noisy))
    cfg, lcfg = run_of(noisy, "bn")["config"], run_of(land, "bn")["config"]
    same = set(seeds) <= set(by_seed(land)) and all(cfg[k] == lcfg[k] for k in ("lr", "steps"))
    _require(cfg["norm"] == "torch" and same,
             "that the landscape runs repeat the noisy-BN experiment's BN network (PyTorch's BN, same learning "
             "rate, steps and seeds, and more seeds)")
    _require(tuple(lcfg["recorders"]) == ("ics", "landscape") and cfg["optimizer"] == "sgd" and cfg["momentum"] == 0,
             "that the landscape runs record 'ics' and 'landscape' and that every network trains by plain SGD")
    return {"why_steps": number(cfg["steps"]), "why_every": number(cfg["record_every"]), "why_lr": number(cfg["lr"]),
            "why_batch": number(cfg["batch_size"]), "why_depth": number(len(cfg["sizes"]) - 2),
            "why_width": number(cfg["sizes"][1]), "why_sigma": number(cfg["init_sigma"]),
            "why_shift_std": number(shift_std), "why_scale_hi": number(1 + scale_spread),
            "why_eta_lo": number(cfg["lr"] * landscape_steps[0]), "why_eta_hi": number(cfg["lr"] * landscape_steps[-1]),
            "why_n_eta": number(len(landscape_steps)), "why_nunits": number(len(cfg["probe_units"])),
            "why_ntest": number(n_test), "why_momentum": number(momentum),
            "why_half_life": number(half_life(momentum), 4), "why_seeds": number(len(seeds)),
            "why_land_seeds": number(len(by_seed(land))), "why_seed_first": number(seeds[0]),
            "why_seed_last": number(seeds[-1])} | {
        f"why_margin_{k}": text(margin_text(k)) for k in MARGINS} | {f"why_band_{k}": text(margin_text(k, BANDS))
                                                                  for k in BANDS}


def _acc_pop(run: dict) -> float | None:
    """Final test accuracy with population statistics; a network without BN has none to recompute (eval mode)."""
    v = final_metric(run, "final_test_acc_pop")
    return final_metric(run, "final_test_acc") if v is None and run["config"].get("norm") is None else v


def _wobble(run: dict, key: str, tail: int) -> float:
    return mnist_wobble({"curves": {"test_acc": curve(run, key)}}, tail)


def noisy_seeds(noisy: dict, draws: Mapping | None, tail: int = 10) -> dict[str, dict[str, list]]:
    """Per measure, per network, one value per seed (in seed order): ``shift`` (:func:`why_shift` ``relative``),
    ``early`` and ``late`` training loss, ``acc`` (final test accuracy, population statistics); for BN and noisy BN
    also ``acc_eval`` (eval mode: running averages), ``acc_batch`` (batch statistics) and the largest change of the
    test accuracy between consecutive records among the last ``tail``, in eval mode (``wobble_eval``) and with
    population statistics (``wobble_pop``). ``draws`` as for :func:`as_trained` (by seed for several seeds)."""
    out: dict[str, dict[str, list]] = {m: {k: [] for k in NOISY_LABELS} for m in ("shift", "early", "late", "acc")}
    out |= {m: {k: [] for k in ("bn", "noisy")} for m in ("acc_eval", "acc_batch", "wobble_eval", "wobble_pop")}
    for res in by_seed(noisy).values():
        runs = {k: res["runs"][k] for k in NOISY_LABELS}
        shift = why_shift({"runs": runs}, draws)
        for k, run in runs.items():
            for m, x in (("shift", shift[k]["relative"]), ("early", early_train_loss(run)),
                         ("late", late_train_loss(run)), ("acc", _acc_pop(run))):
                out[m][k].append(x)
            if k != "none":
                for m, x in (("acc_eval", final_metric(run, "final_test_acc")), ("wobble_pop", _wobble(
                        run, "test_acc_pop", tail)), ("acc_batch", final_metric(run, "final_test_acc_batchstats")),
                             ("wobble_eval", _wobble(run, "test_acc", tail))):
                    out[m][k].append(x)
    return out


def trained_runs(noisy: dict, draws: Mapping) -> dict:
    """The first seed's runs of the noisy-BN experiment (no BN, BN, noisy BN), percentiles :func:`as_trained`."""
    return {k: as_trained(run_of(noisy, k), draws) for k in NOISY_LABELS}


def _late_text(v: dict, steps: int) -> tuple[str, dict]:
    late = {k: float(np.mean(x)) for k, x in v["late"].items()}
    order = sorted(late, key=late.get)
    first = order[0]
    cs = {k: compare(v["late"][k], v["late"][first], "late") for k in order[1:]}
    parts = [f"{NAMES[k]} with {mean_hw(v['late'][k], 'late')} ({cs[k].shown} against {NAMES[first]}: {_says(cs[k])})"
             for k in order[1:]]
    out = (f"*Later*, over the last fifth of training (steps after {int((1 - LATE_FRACTION) * steps):,}), "
           f"{NAMES[first]} has the lowest mean training loss, {mean_hw(v['late'][first], 'late')}, then "
           + " and ".join(parts) + ".")
    if first == "none" and all(c.reading == HIGHER for c in cs.values()):
        out += (" The ordering of the start has turned around: at this learning rate BN's advantage in optimization "
                "is confined to the first few hundred steps.")
    return out, cs


#: The differences the noisy-BN section states: name -> (measure, network) of A and of B in A - B; the margin is
#: that of the measure's first word (``acc_eval``: ``acc``).
NOISY_PAIRS = {"shift": ("shift", "noisy", "shift", "none"), "shift_bn": ("shift", "bn", "shift", "none"),
               "early_noisy_bn": ("early", "noisy", "early", "bn"), "early_bn_none": ("early", "bn", "early", "none"),
               "acc_bn_none": ("acc", "bn", "acc", "none"), "acc_noisy_bn": ("acc", "noisy", "acc", "bn"),
               "acc_noisy_none": ("acc", "noisy", "acc", "none"), "eval_noisy": ("acc_eval", "noisy", "acc", "noisy"),
               "eval_bn": ("acc_eval", "bn", "acc", "bn"), "batch": ("acc_batch", "noisy", "acc_batch", "bn"),
               "wob_bn": ("wobble_eval", "noisy", "wobble_eval", "bn"),
               "wob_pop": ("wobble_eval", "noisy", "wobble_pop", "noisy")}


def noisy_numbers(noisy: dict, draws: Mapping | None, tail: int = 10) -> dict[str, Glued]:
    """The noisy-BN section from :func:`noisy_seeds`: per network the seed means ± half-widths of the shift, the
    early and late training loss and the test accuracy; the paired differences the prose compares, with their
    readings (``why_r_*``); the computed sentences (markdown); the typical unit of the first seed's last hidden
    layer that the figure shows."""
    v = noisy_seeds(noisy, draws, tail)
    cfg = run_of(noisy, "bn")["config"]
    c = {name: compare(v[m][a], v[m2][b], m.split("_")[0]) for name, (m, a, m2, b) in NOISY_PAIRS.items()}
    _require(c["wob_pop"].reading == HIGHER or c["wob_pop"].p.n < EV.MIN_SEEDS, "(in an exercise) that noisy BN's "
             "eval-mode accuracy jumps between records more than with population statistics")
    late_text, late_c = _late_text(v, cfg["steps"])
    c |= {f"late_{k}": x for k, x in late_c.items()}
    ratio = float(np.mean(v["shift"]["noisy"]) / np.mean(v["shift"]["none"]))
    every = cfg["record_every"]
    e = c["early_noisy_bn"]
    early_text = (f"*At the start*, noisy BN is {_word(e, 'slower than', 'faster than', 'as fast as')} BN: over the "
                  f"first {every} steps its mean training loss is {mean_hw(v['early']['noisy'], 'early')}, BN's "
                  f"{mean_hw(v['early']['bn'], 'early')} and the network without BN's "
                  f"{mean_hw(v['early']['none'], 'early')}. Noisy BN minus BN: {e.shown} ({_says(e)}); BN minus no "
                  f"BN: {c['early_bn_none'].shown} ({_says(c['early_bn_none'])}).")
    if e.reading in (LEVEL, LOWER):
        early_text += " The injected shift costs nothing there."
    a = c["acc_noisy_bn"]
    acc_text = (f"*On the test set*, scored with population statistics (recomputed over the training set, noisy BN's "
                f"noise off), BN ends at {mean_hw(v['acc']['bn'], 'acc', '%')} and the network without BN at "
                f"{mean_hw(v['acc']['none'], 'acc', '%')}: BN minus no BN {c['acc_bn_none'].shown} "
                f"({_says(c['acc_bn_none'])}). Noisy BN ends at {mean_hw(v['acc']['noisy'], 'acc', '%')}, "
                f"{_word(a, 'above', 'below')} BN ({a.shown}; {_says(a)}) and "
                f"{_word(c['acc_noisy_none'], 'above', 'below')} the network without BN "
                f"({c['acc_noisy_none'].shown}; {_says(c['acc_noisy_none'])}).")
    ev, wb, wp = c["eval_noisy"], c["wob_bn"], c["wob_pop"]
    eval_text = (f"In eval mode, with the running averages collected during training, noisy BN scores "
                 f"{mean_hw(v['acc_eval']['noisy'], 'acc', '%')}, {ev.shown} against its own score with population "
                 f"statistics ({_says(ev)}); for BN the same difference is {c['eval_bn'].shown} "
                 f"({_says(c['eval_bn'])}). Among the last {tail} records, noisy BN's eval-mode accuracy changes by up "
                 f"to {mean_hw(v['wobble_eval']['noisy'], 'wobble')} points from one record to the next, BN's by "
                 f"{mean_hw(v['wobble_eval']['bn'], 'wobble')} (noisy BN minus BN {wb.shown}; {_says(wb)}), and noisy "
                 f"BN's with population statistics by {mean_hw(v['wobble_pop']['noisy'], 'wobble')} (eval mode minus "
                 f"population statistics {wp.shown}; {_says(wp)}).")
    if ev.reading == LOWER:
        eval_text += (" Eval mode normalizes with running averages that were collected while the noise was on (see the "
                      "exercises), so what noisy BN loses there is an artefact of evaluation, not of training.")
    b = c["batch"]
    level = (f"With batch statistics on both, noisy BN ({mean_hw(v['acc_batch']['noisy'], 'acc', '%')}) is "
             f"{_word(b, 'ahead of', 'behind')} BN ({mean_hw(v['acc_batch']['bn'], 'acc', '%')}): {b.shown} "
             f"({_says(b)}).")
    speed = _word(e, "slower than", "faster than", "as fast as", "at a speed not distinguishable from")
    where = _word(a, "above", "below", "level with", "at an accuracy not distinguishable from")
    overview = (f"Noisy BN trains with a distribution shift {ratio:.1f} times that of the network without BN (noisy BN "
                f"minus no BN {c['shift'].shown}; {_says(c['shift'])}) and starts {speed} BN (first-interval "
                f"training loss {e.shown} against BN). Scored with population statistics, it ends {where} BN on the "
                f"test set ({a.shown}; {_says(a)})" + (f"; eval mode (running averages collected under the noise) "
                                                         f"minus that: {ev.shown}." if ev.reading == LOWER else "."))
    out: dict[str, Glued] = {}
    for k in NOISY_LABELS:
        out |= {f"why_shift_{k}": text(mean_hw(v["shift"][k], "shift")), f"why_early_{k}": text(
            mean_hw(v["early"][k], "early")), f"why_late_{k}": text(mean_hw(v["late"][k], "late")),
            f"why_acc_{k}": text(mean_hw(v["acc"][k], "acc", "%"))}
    out |= {f"why_d_{k}": text(x.shown) for k, x in c.items()} | {f"why_r_{k}": text(x.reading) for k, x in c.items()}
    out |= {"why_early_text": md(early_text), "why_late_text": md(late_text), "why_acc_text": md(acc_text),
            "why_eval_text": md(eval_text), "why_level": md(level), "why_noisy_overview": md(overview),
            "why_shift_ratio": number(ratio, 4), "why_late_from": number(int((1 - LATE_FRACTION) * cfg["steps"])),
            "why_tail": number(tail)}
    return out | {"why_unit": number(mnist_typical_unit(run_of(noisy, "none"), layer=-1)),
                  "why_last_layer": number(len(cfg["sizes"]) - 2)}


def shift_table(noisy: dict, draws: Mapping | None) -> Table:
    """Per network and hidden layer, the shift as training sees it (:func:`why_shift` ``relative``, mean over the
    probed units) and the ratio of the largest to the smallest spread, seed means ± half-widths; and the shift's
    paired difference from the network without BN in the same layer."""
    vals: dict = {}
    for res in by_seed(noisy).values():
        rows = mnist_drift_rows({"runs": {k: as_trained(res["runs"][k], draws) for k in NOISY_LABELS}})
        for k in NOISY_LABELS:
            net = norm_name(res["runs"][k]["config"]["norm"])
            for layer in sorted({r["layer"] for r in rows}):
                for m, x in mnist_drift_summary(rows, net, layer).items():
                    vals.setdefault((k, layer), {}).setdefault(m, []).append(x)
    out = [[norm_name(norm_of(k)), layer, mean_hw(x["relative"], "shift"),
            "" if k == "none" else compare(x["relative"], vals[("none", layer)]["relative"], "shift").cell,
            mean_hw(x["width_ratio"], "shift")] for (k, layer), x in vals.items()]
    return Table(["network", "layer", "shift (spreads)", "minus no BN", "max/min spread"], out,
                 caption=f"Seed means ± half-widths of 95% intervals over {len(by_seed(noisy))} seeds; minus no BN: "
                         "paired mean difference [95% interval].")


def training_bands(noisy: dict, labels: Sequence[str] = NOISY_LABELS) -> dict:
    """For :func:`bnlib.plots.why.figure_why_training`: per network the geometric seed mean and 95% interval of the
    training loss (``loss_step``, ``train_loss``; records after step 0) and of the test error in percent with population
    statistics (``step``, ``test_err``) and, for networks with BN, in eval mode (``test_err_eval``, else None)."""
    out = {}
    for k in labels:
        runs = seeds_of(noisy, k)
        c0 = curves(runs[0])
        keep = [i for i, s in enumerate(c0["step"]) if s > 0]
        loss = [[curves(r)["train_loss"][i] for i in keep] for r in runs]
        err = {key: _band([[100 * (1 - a) for a in curves(r)[key]] for r in runs])
               for key in ("test_acc_pop", "test_acc") if key == "test_acc_pop" or runs[0]["config"]["norm"]}
        out[k] = {"loss_step": [c0["step"][i] for i in keep], "train_loss": _band(loss), "step": list(c0["step"]),
                  "test_err": err["test_acc_pop"], "test_err_eval": err.get("test_acc")}
    return out


def ics_seeds(land: dict, labels: Sequence[str] = LANDSCAPE_LABELS) -> dict[str, list[dict]]:
    """:func:`ics_summary` of each seed's run ``labels`` of ``why_landscape``, in seed order."""
    return {k: [ics_summary(r) for r in seeds_of(land, k)] for k in labels}


def _layer_cmp(s: dict, key: str, j: int, measure: str) -> Comparison:
    return compare([x[key][j] for x in s["bn"]], [x[key][j] for x in s["none"]], measure)


def ics_numbers(land: dict) -> dict[str, Glued]:
    """The ICS section: medians over every checkpoint and layer (seed means ± half-widths), BN minus no BN paired,
    in how many layers the per-layer medians read higher (cosine) or lower (l2) with BN, and the computed text."""
    s = ics_seeds(land)
    vals = {(m, k): [x[f"median_{m}_all"] for x in s[k]] for m in ("l2", "cos") for k in s}
    cl2, ccos = (compare(vals[(m, "bn")], vals[(m, "none")], m) for m in ("l2", "cos"))
    layers = s["none"][0]["layers"]
    cos_up = sum(_layer_cmp(s, "median_cos", j, "cos").reading == HIGHER for j in range(len(layers)))
    l2_down = sum(_layer_cmp(s, "median_l2", j, "l2").reading == LOWER for j in range(len(layers)))
    txt = (f"Over all checkpoints and layers (the median of each seed, then the mean over seeds), the ℓ₂ "
           f"distance is {mean_hw(vals[('l2', 'bn')], 'l2')} with BN and {mean_hw(vals[('l2', 'none')], 'l2')} without "
           f"(BN over no BN {cl2.shown}; {_says(cl2)}), and the cosine {mean_hw(vals[('cos', 'bn')], 'cos')} with BN "
           f"and {mean_hw(vals[('cos', 'none')], 'cos')} without ({ccos.shown}; {_says(ccos)}). Layer by layer, the "
           f"cosine is higher with BN beyond the margin in {cos_up} of the {len(layers)} layers, and the ℓ₂ "
           f"distance lower in {l2_down}. ")
    concl = {(HIGHER, LOWER): "in this network BN does reduce internal covariate shift in Santurkar et al.'s sense: "
             "the earlier layers' update turns a layer's gradient *less* with BN.",
             (LOWER, HIGHER): "in this network BN does not reduce internal covariate shift in their sense."}.get(
        (ccos.reading, cl2.reading), f"the cosine and the ℓ₂ distance do not both clear their margins (cosine: "
        f"{ccos.reading}; distance: {cl2.reading}): this network does not settle whether BN reduces it.")
    out: dict[str, Glued] = {f"why_{m}_{k}": text(mean_hw(v, m)) for (m, k), v in vals.items()}
    return out | {"why_d_l2": text(cl2.shown), "why_d_cos": text(ccos.shown), "why_r_l2": text(cl2.reading),
                  "why_r_cos": text(ccos.reading), "why_ics_text": md(txt + "So " + concl), "why_ics_concl": md(concl),
                  "why_ics_first": number(layers[0] + 1), "why_ics_last": number(layers[-1] + 1),
                  "why_ics_n": number(len(s["none"][0]["steps"])), "why_cos_higher": number(cos_up),
                  "why_l2_lower": number(l2_down), "why_n_layers": number(len(layers))}


def ics_table(land: dict) -> Table:
    """Per weight layer, the median l2 distance and cosine without and with BN (seed means ± half-widths) and BN
    minus no BN (paired mean difference [95% interval])."""
    s = ics_seeds(land)
    rows = []
    for j, layer in enumerate(s["none"][0]["layers"]):
        row: list = [layer + 1]
        for m in ("l2", "cos"):
            row += [mean_hw([x[f"median_{m}"][j] for x in s[k]], m) for k in ("none", "bn")]
            row.append(_layer_cmp(s, f"median_{m}", j, m).cell)
        rows.append(row)
    return Table(["weight layer", "l2 (no BN)", "l2 (BN)", "l2: BN / no BN", "cosine (no BN)", "cosine (BN)",
                  "cosine: BN - no BN"], rows,
                 caption=f"Medians over the checkpoints; seed means ± half-widths of 95% intervals over "
                         f"{len(s['none'])} seeds; BN / no BN and BN - no BN: paired by seed, mean [95% interval].")


def ics_bands(land: dict) -> dict:
    """For :func:`bnlib.plots.why.figure_why_ics`: per network ``steps``, ``layers`` and, per layer, the seed mean and
    95% interval of the l2 distance (geometric) and of the cosine (clipped at 1) at each checkpoint."""
    return {k: {"steps": v[0]["steps"], "layers": v[0]["layers"],
                "l2": [_band([x["l2"][j] for x in v]) for j in range(len(v[0]["layers"]))],
                "cos": [_band([x["cos"][j] for x in v], log=False) for j in range(len(v[0]["layers"]))]}
            for k, v in ics_seeds(land).items()}


#: The landscape measures: summary key, margin key.
LANDSCAPE = {"beta": "median_beta", "gc": "median_gc_max", "range": "median_loss_range"}


def landscape_numbers(land: dict) -> dict[str, Glued]:
    """The landscape section: per network the seed means ± half-widths of the medians of :func:`landscape_summary`,
    BN minus no BN paired with readings, and the computed sentences."""
    s = {k: [landscape_summary(r) for r in seeds_of(land, k)] for k in LANDSCAPE_LABELS}
    vals = {(m, k): [x[key] for x in s[k]] for m, key in (*LANDSCAPE.items(), ("late", "median_loss0")) for k in s}
    c = {m: compare(vals[(m, "bn")], vals[(m, "none")], m) for m in (*LANDSCAPE, "late")}
    rel = {k: float(np.mean([x["median_rel_range"] for x in s[k]])) for k in s}
    smooth = LOWER == c["gc"].reading == c["beta"].reading
    grad = (f"The gradient is {_word(c['gc'], 'less', 'more', 'as')} predictive with BN (its largest change, BN over "
            f"no BN: {c['gc'].shown}; {_says(c['gc'])}), and the effective β "
            f"{_word(c['beta'], 'larger', 'smaller', 'the same')} ({c['beta'].shown}; {_says(c['beta'])})"
            + (", as Santurkar et al. found." if smooth else "."))
    r, l0 = c["range"], c["late"]
    lvl = (f"Part of that is the loss level: at the same step the BN network's mini-batch loss is "
           f"{_word(l0, 'higher than', 'lower than')} that of the network without BN ({l0.shown}; {_says(l0)}). ")
    loss = (f"The range of the loss along the gradient is {_word(r, 'larger', 'smaller', 'the same')} with BN "
            f"({r.shown}; {_says(r)}). " + (lvl if r.reading in (HIGHER, LOWER) and l0.reading == r.reading else "")
            + f"Relative to the loss at w, the range is {100 * rel['bn']:.1f}% with BN and {100 * rel['none']:.1f}% "
            "without (seed means). The ledger's rule uses the absolute range, as Santurkar et al. do.")
    overview = ("BN makes the gradient change less and the effective β smaller" if smooth else
                "the gradient change and the effective β are not both smaller with BN beyond the margins")
    overview += {LOWER: ", and the loss itself varies less", HIGHER: ", while the loss itself varies more"}.get(
        r.reading, ", while the range of the loss is undecided")
    out: dict[str, Glued] = {f"why_{m}_{k}": text(mean_hw(v, m)) for (m, k), v in vals.items() if m != "late"}
    out |= {f"why_loss0_{k}": text(mean_hw(vals[("late", k)], "late")) for k in s}
    return out | {f"why_d_{m}": text(x.shown) for m, x in c.items() if m != "late"} | {
        f"why_r_{m}": text(x.reading) for m, x in c.items() if m != "late"} | {
        "why_grad_text": md(grad), "why_loss_text": md(loss), "why_landscape_overview": md(overview)}


def landscape_bands(land: dict, labels: Sequence[str] = LANDSCAPE_LABELS) -> dict:
    """For :func:`bnlib.plots.why.figure_why_landscape`: per network ``steps`` and the geometric seed mean and 95%
    interval of the loss range, the largest gradient change and the effective beta at each checkpoint."""
    out = {}
    for k in labels:
        s = [landscape_summary(r) for r in seeds_of(land, k)]
        out[k] = {"steps": s[0]["steps"]} | {m: _band([x[m] for x in s]) for m in ("loss_range", "gc_max", "beta")}
    return out


#: The columns of the l_p section: measure (a key of MARGINS) and header.
LP_MEASURES = {"acc": "test accuracy (%)", "beta": "median beta", "gc": "largest gradient change",
               "range": "loss range", "cos": "ICS cosine", "shift": "shift (spreads)"}


def lp_summary(land: dict, labels: Sequence[str] = LP_LABELS) -> dict:
    """Per network of the l_p section and measure, one value per seed: final test accuracy (population statistics
    where they apply), the landscape medians (``beta``, ``gc``, ``range``), the median ICS cosine (``cos``) and the
    shift in the MNIST chapter's measure (``shift``)."""
    out = {k: {m: [] for m in LP_MEASURES} for k in labels}
    for res in by_seed(land).values():
        shift = why_shift({"runs": {k: res["runs"][k] for k in labels}})
        for k in labels:
            run, s = res["runs"][k], landscape_summary(res["runs"][k])
            for m, v in (("acc", _acc_pop(run)), ("beta", s["median_beta"]), ("gc", s["median_gc_max"]),
                         ("range", s["median_loss_range"]), ("cos", ics_summary(run)["median_cos_all"]),
                         ("shift", shift[k]["relative"])):
                out[k][m].append(v)
    return out


def _lp_cmp(lp: Mapping, k: str, m: str, ref: str = "none") -> Comparison:
    return compare(lp[k][m], lp[ref][m], m)


def lp_numbers(lp: Mapping[str, dict], lp_row: dict) -> dict[str, Glued]:
    """The l_p section from :func:`lp_summary` and the ledger's l_p row: its verdict and measured sentence, per
    network the seed means ± half-widths, and the computed sentences on smoothness, accuracy and shift."""
    sm = ("beta", "gc", "range")
    r = {k: [_lp_cmp(lp, k, m).reading for m in sm] for k in ("bn", "l1", "linf")}
    parts = [f"{NAMES[k]} on {x.count(LOWER)} (rougher on {x.count(HIGHER)}, undecided or level on "
             f"{len(sm) - x.count(LOWER) - x.count(HIGHER)})" for k, x in r.items()]
    smooth = ("Counting the three landscape measures on which each network is smoother than the one without "
              "normalization by more than the margin: " + ", ".join(parts) + ".")
    acc = "; ".join(f"{NAMES[k]} minus BN {_lp_cmp(lp, k, 'acc', 'bn').shown} ({_says(_lp_cmp(lp, k, 'acc', 'bn'))})"
                    for k in ("l1", "linf"))
    shift = "; ".join(f"{NAMES[k]} {_lp_cmp(lp, k, 'shift').shown} ({_says(_lp_cmp(lp, k, 'shift'))})"
                      for k in ("l1", "linf"))
    out: dict[str, Glued] = {"why_v_lp": text(lp_row["verdict"]), "why_lp_measured": md(lp_row["measured"]),
                             "why_lp_smooth_text": md(smooth), "why_lp_acc_text": md(f"Test accuracy: {acc}."),
                             "why_lp_shift_text": md(f"Shift minus that of the network without normalization: "
                                                     f"{shift}.")}
    out |= {f"why_lp_{m}_{k}": text(mean_hw(v[m], m, "%" * (m == "acc"))) for k, v in lp.items() for m in LP_MEASURES}
    return out | {f"why_r_lp_{m}_{k}": text(x[i]) for k, x in r.items() for i, m in enumerate(sm)}


def lp_table(lp: Mapping[str, dict]) -> Table:
    """The l_p section's table from :func:`lp_summary`: one row per network, seed means ± half-widths, and under them
    one row per normalization compared with no normalization (paired by seed: a ratio for the measures of
    :data:`RATIOS`, a difference for the others)."""
    rows = [[norm_name(norm_of(k))] + [mean_hw(v[m], m) for m in LP_MEASURES] for k, v in lp.items()]
    rows += [[f"{norm_name(norm_of(k))} vs none"] + [_lp_cmp(lp, k, m).cell for m in LP_MEASURES] for k in lp
             if k != "none"]
    return Table(["normalization", *LP_MEASURES.values()], rows, caption=f"Seed means ± half-widths of 95% intervals "
                 f"over {len(lp['none']['acc'])} seeds; 'vs none': paired by seed, mean [95% interval] of the "
                 "difference (ratio, ×, for beta, gradient change and loss range).")


#: The questions of the chapter's last table: ledger key, question, what each explanation predicts.
VIEWS = (
    ("reduces_ics", "Does BN reduce internal covariate shift (Santurkar et al.'s measure)?", "yes, that is its purpose",
     "not necessarily"),
    ("ics_is_why", "Does BN's benefit survive a shift injected after BN (noisy BN)?", "no",
     "yes, the smoothing is untouched"),
    ("smooths", "Is the loss landscape along the gradient smoother with BN?", "not addressed", "yes"),
    ("bjorck", "Does most of BN's advantage need the larger learning rates it allows?", "not addressed",
     "yes (Bjorck et al.)"),
)


def verdict_numbers(rows: Mapping[str, dict]) -> dict[str, Glued]:
    """The chapter's last section from the ledger's rows by key: each row's verdict (``why_v_<key>``) and the two
    explanations side by side with what was measured (markdown)."""
    side = ["| question | internal covariate shift view | smoothness view | measured here | verdict |",
            "|---|---|---|---|---|"]
    side += [f"| {q} | {a} | {b} | {rows[k]['measured']} | **{rows[k]['verdict']}** |" for k, q, a, b in VIEWS]
    return {f"why_v_{k}": text(r["verdict"]) for k, r in rows.items()} | {"why_side_by_side": md("\n".join(side))}


def closing_numbers(glued: Mapping[str, Glued], rows: Mapping[str, dict]) -> dict[str, Glued]:
    """The closing paragraph (``why_closing``), from the readings that :func:`noisy_numbers`, :func:`ics_numbers`
    and :func:`landscape_numbers` glue (``why_r_*``), the seed count (``why_seeds``) and the ledger's verdicts."""
    r = {k[6:]: v.value for k, v in glued.items() if k.startswith("why_r_")}
    against, pro = [], []
    if r["shift"] == HIGHER and r["early_noisy_bn"] in (LEVEL, LOWER):
        speed = "as fast as" if r["early_noisy_bn"] == LEVEL else "faster than"
        against.append(f"noisy BN, with more distribution shift than the network without BN, starts training {speed} "
                       "BN, so BN's early speed does not come from keeping distributions still")
    if r["acc_noisy_bn"] in (LEVEL, HIGHER):
        where = "level with" if r["acc_noisy_bn"] == LEVEL else "above"
        against.append(f"scored with population statistics, noisy BN ends {where} BN on the test set")
    elif r["acc_noisy_bn"] == LOWER:
        pro.append("the injected shift costs noisy BN test accuracy even with population statistics")
    if r["l2"] == LOWER:
        pro.append("the ℓ₂ distance of Santurkar et al.'s measure is smaller with BN")
    if r["cos"] in (HIGHER, LOWER):
        turn = "less" if r["cos"] == HIGHER else "more"
        (pro if r["cos"] == HIGHER else against).append(
            f"by the gradient-based measure, BN makes each layer's gradient turn {turn} under the updates below it")
    smooth = ["the gradient is more predictive and the effective β smaller with BN, which is what a larger "
              "safe step needs"] if r["gc"] == LOWER == r["beta"] else []
    smooth.append({LOWER: "the loss along the gradient also varies less", HIGHER: "the loss along the gradient "
                   "varies more in absolute terms"}.get(r["range"], "the loss range along the gradient is undecided"))
    worse = r.get("late_bn") == HIGHER and r.get("late_noisy") == HIGHER
    tail = ", at which the network without BN in the end optimizes *better* than the ones with BN." if worse else "."
    return {"why_closing": md(" ".join(["Read together on this network, the measurements say this."] + [
        f"{h}: {'; '.join(x)}." for h, x in (("Against the internal-covariate-shift account", against),
                                             ("For it", pro), ("For the smoothness account", smooth)) if x] + [
        "The ledger's verdicts: " + ", ".join(f"{q} **{rows[k]['verdict']}**" for k, q in (
            ("reduces_ics", "BN reduces ICS"), ("ics_is_why", "ICS is why BN helps"), ("smooths", "BN smooths"),
            ("bjorck", "its benefit comes mainly from larger learning rates (CIFAR-10)"))) + ".",
        f"Two limits apply to all of it: one small sigmoid network on one dataset, {glued['why_seeds'].value} seeds "
        f"per network, and a single learning rate{tail}"]))}
