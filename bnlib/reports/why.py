"""Numbers of the chapter on why BN works (book/why.ipynb): noisy BN and the distribution shift it
injects, Santurkar et al.'s internal-covariate-shift measure, and the loss landscape along the gradient.
"""

from __future__ import annotations

import math

import numpy as np

from bnlib.reports.mnist import mnist_drift_rows, mnist_drift_summary


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
    cfg, c = run["config"], run["curves"]
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
    c = run["curves"]
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
    recs = run["curves"]["ics"]
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
    recs = run["curves"]["landscape"]

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


def late_train_loss(run: dict, fraction: float = 0.2) -> float | None:
    """Mean of the recorded training losses (mini-batch losses, as trained) over the last ``fraction`` of
    the run's steps; None when the run diverged or recorded none there."""
    run = _check_run(run)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}.")
    s = run["summary"]
    if s.get("diverged_at") is not None:
        return None
    done = s.get("steps_done", run["config"].get("steps"))
    vals = [v for st, v in zip(run["curves"]["step"], run["curves"]["train_loss"], strict=True)
            if v is not None and st > (1.0 - fraction) * done]
    return float(np.mean(vals)) if vals else None


def early_train_loss(run: dict) -> float | None:
    """The mean mini-batch training loss over the first record interval (steps 1 to ``record_every``,
    as trained): how fast a network starts; None when the run diverged before its first record."""
    run = _check_run(run)
    c = run["curves"]
    vals = [v for st, v in zip(c["step"], c["train_loss"], strict=True) if st > 0 and v is not None]
    return float(vals[0]) if vals else None
