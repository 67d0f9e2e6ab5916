"""Numbers of the chapter on why BN works (book/why.ipynb): noisy BN and the distribution shift it
injects, Santurkar et al.'s internal-covariate-shift measure, and the loss landscape along the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from bnlib.functional import half_life
from bnlib.reports.format import Glued, Table, md, number, percent, text
from bnlib.reports.mnist import mnist_drift_rows, mnist_drift_summary, mnist_typical_unit, mnist_wobble
from bnlib.results import curve, curves, final_metric, run_of

#: The share of training at the end over which :func:`late_train_loss` averages.
LATE_FRACTION = 0.2
#: The networks of the noisy-BN experiment, of the landscape runs and of the l_p section, in the book's order.
NOISY_LABELS, LANDSCAPE_LABELS, LP_LABELS = ("none", "bn", "noisy"), ("none", "bn"), ("none", "bn", "l1", "linf")


def _check_run(run, what: str = "run") -> dict:
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict) or not isinstance(run.get("curves"), dict):
        raise TypeError(f"{what} must be one run of an experiment result: a dict with 'config' and 'curves'.")
    return run


def as_trained(run: dict, draws: dict | None = None) -> dict:
    """A copy of ``run`` whose recorded percentiles are those of each probed unit's sigmoid input as
    *training* sees it, so that the MNIST chapter's drift measures (:func:`mnist_median_drift`)
    apply unchanged.

    The engine records the percentiles in eval mode. For a network without injected noise they
    are what the next training step sees (up to batch versus population statistics) and the
    run is returned as it is. For noisy BN the next training step, ``t + 1`` after a record at
    step ``t``, sees ``s_{t+1} z + b_{t+1}`` of the recorded value ``z``; ``s > 0``, so
    percentiles map to percentiles. ``draws`` maps a hidden layer to its
    :func:`bnlib.analysis.noisy_shift_draws` (required for a noisy-BN run).
    """
    run = _check_run(run)
    cfg, c = run["config"], curves(run)
    if cfg.get("norm") != "noisy":
        return run
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


def why_shift(res: dict, draws: dict | None = None) -> dict:
    """The distribution shift each network of the noisy-BN experiment trains with, in the MNIST
    chapter's measure: per run label, :func:`mnist_drift_summary` over every hidden layer and probed
    unit of the run :func:`as_trained` (``range`` of the median, ``relative`` to the mean 15-85 spread,
    ``width_ratio``)."""
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


def setup_numbers(noisy: dict, land: dict, *, shift_std: float, scale_spread: float,
                  landscape_steps: Sequence[float], n_test: int, momentum: float) -> dict[str, Glued]:
    """The setup the chapter describes, from the BN runs' configurations of ``why_noisy`` and ``why_landscape``,
    the noise of ``bnlib.models.NoisyShift`` (``shift_std``, ``scale_spread``), the landscape recorder's step
    multiples, the test-set size and PyTorch's BN momentum."""
    cfg, lcfg = run_of(noisy, "bn")["config"], run_of(land, "bn")["config"]
    _require(cfg["norm"] == "torch" and all(cfg[k] == lcfg[k] for k in ("lr", "steps", "seed")),
             "that the landscape runs repeat the noisy-BN experiment's BN network (PyTorch's BN, same learning "
             "rate, steps and seed)")
    _require(tuple(lcfg["recorders"]) == ("ics", "landscape") and cfg["optimizer"] == "sgd" and cfg["momentum"] == 0,
             "that the landscape runs record 'ics' and 'landscape' and that every network trains by plain SGD")
    return {"why_steps": number(cfg["steps"]), "why_every": number(cfg["record_every"]), "why_lr": number(cfg["lr"]),
            "why_batch": number(cfg["batch_size"]), "why_depth": number(len(cfg["sizes"]) - 2),
            "why_width": number(cfg["sizes"][1]), "why_sigma": number(cfg["init_sigma"]),
            "why_shift_std": number(shift_std), "why_scale_hi": number(1 + scale_spread),
            "why_eta_lo": number(cfg["lr"] * landscape_steps[0]), "why_eta_hi": number(cfg["lr"] * landscape_steps[-1]),
            "why_n_eta": number(len(landscape_steps)), "why_nunits": number(len(cfg["probe_units"])),
            "why_ntest": number(n_test), "why_momentum": number(momentum),
            "why_half_life": number(half_life(momentum), 4)}


def trained_runs(noisy: dict, draws: dict) -> dict:
    """The runs of the noisy-BN experiment (no BN, BN, noisy BN) with their percentiles :func:`as_trained`."""
    return {k: as_trained(run_of(noisy, k), draws) for k in NOISY_LABELS}


def _wobble(run: dict, key: str, tail: int) -> float:
    return mnist_wobble({"curves": {"test_acc": curve(run, key)}}, tail)


def noisy_numbers(noisy: dict, draws: dict, tail: int = 10) -> dict[str, Glued]:
    """The noisy-BN section: per network the shift it trains with (:func:`why_shift`), its early and late training
    loss and final test accuracy; the batch-statistics accuracies; the largest record-to-record change of the test
    accuracy among the last ``tail`` records; the typical unit of the last hidden layer that the figure shows."""
    runs = {k: run_of(noisy, k) for k in NOISY_LABELS}
    shift = {k: v["relative"] for k, v in why_shift(noisy, draws).items()}
    early = {k: early_train_loss(r) for k, r in runs.items()}
    late = {k: late_train_loss(r, LATE_FRACTION) for k, r in runs.items()}
    acc = {k: final_metric(r, "final_test_acc") for k, r in runs.items()}
    acc_b = {k: final_metric(runs[k], "final_test_acc_batchstats") for k in ("bn", "noisy")}
    wob = {"noisy": _wobble(runs["noisy"], "test_acc", tail), "bn": _wobble(runs["bn"], "test_acc", tail),
           "noisy_b": _wobble(runs["noisy"], "test_acc_batchstats", tail)}
    _require(shift["noisy"] > 2 * max(shift["none"], shift["bn"]), "that noisy BN trains with more than twice the "
             "shift")
    _require(early["noisy"] <= early["bn"] < early["none"] / 2, "that noisy BN starts at least as fast as BN")
    _require(acc["bn"] > acc["noisy"] and acc["bn"] > acc["none"] and abs(acc["noisy"] - acc["none"]) < 0.002,
             "that noisy BN ends at the test accuracy of no BN, below BN's")
    cfg = runs["bn"]["config"]
    names = {"none": "the network without BN", "bn": "BN", "noisy": "noisy BN"}
    order = sorted(late, key=late.get)
    late_text = (f"*Later*, the ordering of the training losses {'turns around' if order[0] == 'none' else 'changes'}. "
                 f"Over the last fifth of training (steps after {int((1 - LATE_FRACTION) * cfg['steps']):,}) "
                 f"{names[order[0]]} has the lowest training loss, {late[order[0]]:.4f}, then {names[order[1]]} with "
                 f"{late[order[1]]:.4f} and {names[order[2]]} with {late[order[2]]:.4f}"
                 + (": at this learning rate BN's advantage in optimization is confined to the first few hundred "
                    "steps." if order[0] == "none" else "."))
    d_b = acc_b["noisy"] - acc_b["bn"]
    level = (f"With batch statistics on both, noisy BN ({100 * acc_b['noisy']:.2f}%) and BN "
             f"({100 * acc_b['bn']:.2f}%) are level." if abs(d_b) < 0.002 else
             f"With batch statistics on both, noisy BN ({100 * acc_b['noisy']:.2f}%) is even "
             f"{'ahead of' if d_b > 0 else 'behind'} BN ({100 * acc_b['bn']:.2f}%), by {100 * abs(d_b):.2f} points "
             "in this one run.")
    _require(wob["noisy"] > 3 * wob["noisy_b"] and wob["noisy"] > 3 * wob["bn"],
             "that noisy BN's eval-mode accuracy jumps between records, unlike BN's or its own with batch statistics")
    out: dict[str, Glued] = {}
    for k in runs:
        out |= {f"why_shift_{k}": number(shift[k], 4), f"why_early_{k}": number(early[k], 4),
                f"why_late_{k}": number(late[k], 4), f"why_acc_{k}": percent(acc[k], 4)}
    out |= {f"why_accb_{k}": percent(v, 4) for k, v in acc_b.items()}
    out |= {"why_late_text": md(late_text), "why_level": md(level)}
    out |= {"why_shift_ratio": number(shift["noisy"] / shift["none"], 4),
            "why_late_from": number(int((1 - LATE_FRACTION) * cfg["steps"])), "why_tail": number(tail),
            "why_wob_noisy": percent(wob["noisy"], 4), "why_wob_noisy_b": percent(wob["noisy_b"], 4),
            "why_wob_bn": percent(wob["bn"], 4)}
    return out | {"why_unit": number(mnist_typical_unit(runs["none"], layer=-1)),
                  "why_last_layer": number(len(cfg["sizes"]) - 2)}


def ics_summaries(land: dict, labels: Sequence[str] = LANDSCAPE_LABELS) -> dict:
    """:func:`ics_summary` of each run ``labels`` of ``why_landscape``."""
    return {k: ics_summary(run_of(land, k)) for k in labels}


def landscape_summaries(land: dict, labels: Sequence[str] = LANDSCAPE_LABELS) -> dict:
    """:func:`landscape_summary` of each run ``labels`` of ``why_landscape``."""
    return {k: landscape_summary(run_of(land, k)) for k in labels}


def ics_numbers(ics: Mapping[str, dict]) -> dict[str, Glued]:
    """The ICS section from :func:`ics_summaries` (``"none"``, ``"bn"``): medians over every checkpoint and layer,
    the layers measured, the checkpoints, and in how many layers BN's median l2 distance is lower."""
    none, bn = ics["none"], ics["bn"]
    cos_higher = [b > n for b, n in zip(bn["median_cos"], none["median_cos"], strict=True)]
    l2_lower = [b < n for b, n in zip(bn["median_l2"], none["median_l2"], strict=True)]
    _require(all(cos_higher) and sum(l2_lower) > 0,
             "that BN's median cosine is higher in every layer and its l2 distance lower in some layers")
    _require(bn["median_l2_all"] < none["median_l2_all"], "that BN's median l2 distance is lower overall")
    out: dict[str, Glued] = {}
    for k, s in ics.items():
        out |= {f"why_l2_{k}": number(s["median_l2_all"], 4), f"why_cos_{k}": number(s["median_cos_all"], 4)}
    return out | {"why_ics_first": number(none["layers"][0] + 1), "why_ics_last": number(none["layers"][-1] + 1),
                  "why_ics_n": number(len(none["steps"])), "why_l2_lower": number(sum(l2_lower)),
                  "why_n_layers": number(len(l2_lower))}


def ics_table(ics: Mapping[str, dict]) -> Table:
    """Per weight layer, the median l2 distance and cosine without and with BN (from :func:`ics_summaries`)."""
    none, bn = ics["none"], ics["bn"]
    return Table(["weight layer", "median l2 (no BN)", "median l2 (BN)", "median cosine (no BN)", "median cosine (BN)"],
                 [[layer + 1, a, b, c, d] for layer, a, b, c, d in zip(none["layers"], none["median_l2"],
                                                                       bn["median_l2"], none["median_cos"],
                                                                       bn["median_cos"], strict=True)],
                 [None, ".4f", ".4f", ".4f", ".4f"])


def landscape_numbers(ls: Mapping[str, dict]) -> dict[str, Glued]:
    """The landscape section from :func:`landscape_summaries` (``"none"``, ``"bn"``): per network the medians of
    the loss range, the largest gradient change, the effective beta, the loss at w and the relative range."""
    none, bn = ls["none"], ls["bn"]
    _require(bn["median_beta"] < none["median_beta"] and bn["median_gc_max"] < none["median_gc_max"],
             "that BN's effective beta and largest gradient change are smaller")
    more = bn["median_loss_range"] > none["median_loss_range"]
    higher = bn["median_loss0"] > none["median_loss0"]
    rel = (f"Relative to the loss at $w$, the range is {100 * bn['median_rel_range']:.1f}% with BN and "
           f"{100 * none['median_rel_range']:.1f}% without.")
    if more:
        loss_text = ("The loss, on the other hand, varies *more* along the gradient with BN. "
                     + ("Part of that is the loss level: at the same step the BN network's mini-batch loss is higher "
                        f"(median {bn['median_loss0']:.4f} against {none['median_loss0']:.4f}), and a step along the "
                        "gradient can lower a large loss by more. " if higher else "")
                     + rel + " The ledger's rule uses the absolute range, as Santurkar et al. do, and so counts this "
                     "measure against BN.")
        overview = "while the loss itself varies a little more. Neither explanation wins cleanly on this small network"
    else:
        loss_text = ("The loss also varies less along the gradient with BN, as Santurkar et al. found. "
                     + ("Part of that is the loss level: the BN network's mini-batch loss is lower at the same step "
                        f"(median {bn['median_loss0']:.4f} against {none['median_loss0']:.4f}), so a step has less to "
                        "gain. " if not higher else "")
                     + rel + " The ledger's rule uses the absolute range, as Santurkar et al. do, and so counts this "
                     "measure for BN.")
        overview = ("and the loss itself varies less along the gradient, as Santurkar et al. report; whether that is "
                    "the cause of BN's benefit or a side effect of a lower loss is not something one small network "
                    "can settle")
    out: dict[str, Glued] = {"why_loss_text": md(loss_text), "why_landscape_overview": md(overview)}
    for k, s in ls.items():
        out |= {f"why_range_{k}": number(s["median_loss_range"], 4), f"why_gc_{k}": number(s["median_gc_max"], 4),
                f"why_beta_{k}": number(s["median_beta"], 4), f"why_loss0_{k}": number(s["median_loss0"], 4),
                f"why_relrange_{k}": percent(s["median_rel_range"], 4)}
    return out


def lp_summary(land: dict, labels: Sequence[str] = LP_LABELS) -> dict:
    """Per run of the l_p section: final test accuracy (``acc``), the landscape medians (``beta``, ``gc``,
    ``range``), the median ICS cosine (``cos``) and the shift in the MNIST chapter's measure (``shift``)."""
    shift = why_shift({"runs": {k: run_of(land, k) for k in labels}})
    out = {}
    for k in labels:
        s, run = landscape_summary(run_of(land, k)), run_of(land, k)
        out[k] = {"acc": final_metric(run, "final_test_acc"), "beta": s["median_beta"], "gc": s["median_gc_max"],
                  "range": s["median_loss_range"], "cos": ics_summary(run)["median_cos_all"],
                  "shift": shift[k]["relative"]}
    return out


def lp_numbers(lp: Mapping[str, dict], lp_row: dict) -> dict[str, Glued]:
    """The l_p section from :func:`lp_summary` and the ledger's l_p row: its verdict and, per network, test
    accuracy, shift, effective beta and the number of landscape measures smoother than no normalization."""
    wins = lp_row["numbers"]["wins"]
    _require(wins["l1"] == wins["bn"] >= 2 and wins["linf"] == 0 and lp_row["verdict"] == "mixed",
             "that l_1 is smoother than no BN on as many measures as BN, l_inf on none (verdict mixed)")
    _require(lp["linf"]["shift"] > lp["none"]["shift"] > lp["l1"]["shift"],
             "that l_inf shifts the inputs more than no normalization and l_1 less")
    _require(lp["linf"]["acc"] < lp["none"]["acc"] < lp["l1"]["acc"] and abs(lp["l1"]["acc"] - lp["bn"]["acc"]) < 0.002,
             "that l_inf is the least accurate and l_1 as accurate as BN")
    out: dict[str, Glued] = {"why_v_lp": text(lp_row["verdict"])}
    for k, v in lp.items():
        out |= {f"why_lp_acc_{k}": percent(v["acc"], 4), f"why_lp_shift_{k}": number(v["shift"], 4),
                f"why_lp_beta_{k}": number(v["beta"], 4), f"why_lp_wins_{k}": number(wins.get(k, 0))}
    return out


LP_NAMES = {"none": "none", "bn": "BN (l_2)", "l1": "l_1", "linf": "l_inf"}


def lp_table(lp: Mapping[str, dict]) -> Table:
    """The l_p section's table from :func:`lp_summary`, one row per network."""
    return Table(["normalization", "test accuracy (%)", "median beta", "largest gradient change", "loss range",
                  "ICS cosine", "shift (spreads)"],
                 [[LP_NAMES[k], 100 * v["acc"], v["beta"], v["gc"], v["range"], v["cos"], v["shift"]]
                  for k, v in lp.items()], [None, ".2f", ".3f", ".4f", ".4f", ".4f", ".3f"])


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
