"""The ledger of classic claims about BN (book/claims.ipynb): one rule per claim, each returning
a row whose verdict is computed from committed results by the rule written in the row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from bnlib.reports.cifar import ablation, depth_saturation, lr_sweep, max_tolerated_multiplier, steps_to_accuracy
from bnlib.reports.format import Table, fmt_pct, fmt_ratio
from bnlib.reports.mnist import mnist_init_sweep, mnist_sigma_range, mnist_speedup
from bnlib.reports.train_test import batch_size_grid, fold_summary, regularizer_grid, regularizer_row
from bnlib.reports.why import early_train_loss, ics_summary, landscape_summary, why_shift
from bnlib.results import final_metric, run_of

SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED = "supported", "not supported", "mixed", "not tested"


VERDICTS = (SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED)


def _row(key: str, claim: str, sources: Sequence[str], where: Sequence[tuple], rule: str, verdict: str,
         measured: str, numbers: dict | None = None, source_note: str = "") -> dict:
    """One ledger row. ``sources``: bibliography keys; ``where``: ``(chapter, section words, label or None)``
    triples naming the experiment or derivation that tests the claim."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}.")
    return {"key": key, "claim": claim, "sources": list(sources), "source_note": source_note,
            "where": [tuple(w) for w in where], "rule": rule, "verdict": verdict, "measured": measured,
            "numbers": dict(numbers or {})}


def _missing(key, claim, sources, where, rule, names: Sequence[str]) -> dict:
    return _row(key, claim, sources, where, rule, NOT_TESTED,
                f"no committed result of {', '.join(names)} yet: nothing measured")


def _pts(x: float) -> str:
    """A difference of accuracies in percentage points, signed: 0.0123 -> "+1.2 points"."""
    return f"{100 * x:+.1f} points"


def _by_norm(rows: list[dict], norm) -> list[dict]:
    return [r for r in rows if r["norm"] == norm]


RULE_HIGHER_LR = ("A learning-rate multiplier k trains when no seed diverges and the final test accuracy is at least "
                  "the no-BN network's at 1x minus 5 points; k_max is the largest swept k such that every multiplier "
                  "from 1 to k trains. Supported if BN's k_max is at least 5 and at least twice no-BN's; not "
                  "supported if it is no larger than no-BN's; mixed otherwise.")


def claim_higher_lr(sweep: dict | None, base_lr: float) -> dict:
    """"BN allows much higher learning rates", from the CIFAR-10 learning-rate sweep around ``base_lr``."""
    args = ("higher_lr", "allows much higher learning rates", ["ioffe2015batch", "bjorck2018understanding"],
            [("cifar", "learning-rate sweep", "cifar-lr")], RULE_HIGHER_LR)
    if sweep is None:
        return _missing(*args, ["cifar_lr_sweep"])
    rows = lr_sweep(sweep["runs"], base_lr)
    ones = [r for r in rows if r["norm"] is None and r["multiplier"] == 1]
    if not ones:
        raise ValueError(f"the sweep has no run without BN at the base learning rate {base_lr}.")
    ref = ones[0]["final_acc"]
    if ref is None:
        return _row(*args, MIXED, "the network without BN diverges at the baseline rate: no reference accuracy")
    threshold = ref - 0.05
    norms = sorted({r["norm"] for r in rows if r["norm"] is not None})
    k_bn = max(max_tolerated_multiplier(rows, n, threshold) or 0.0 for n in norms)
    k_none = max_tolerated_multiplier(rows, None, threshold) or 0.0
    if k_bn >= 5 and k_bn >= 2 * k_none:
        verdict = SUPPORTED
    elif k_bn <= k_none:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    return _row(*args, verdict, f"trains up to {_times(k_bn)} the baseline rate with BN, up to {_times(k_none)} "
                f"without (threshold {fmt_pct(threshold)})", {"k_bn": k_bn, "k_none": k_none, "threshold": threshold})


def _times(k: float) -> str:
    return f"{k:g}×" if k else "not even 1×"


RULE_INIT = ("The range of initial weight scales sigma around a network's best one at which its final test "
             "accuracy is within 2 points of that best (the MNIST chapter's sigma range), in decades. Supported if "
             "BN's range is wider than no-BN's and contains it; not supported if it is no wider; mixed otherwise.")


def claim_init(sweep: dict | None) -> dict:
    """"With BN one can be less careful about initialization", from the MNIST init-scale sweep."""
    args = ("init", "less careful initialization", ["ioffe2015batch"],
            [("mnist", "initialization sweep", "mnist-init")], RULE_INIT)
    if sweep is None:
        return _missing(*args, ["mnist_init_sweep"])
    grid = mnist_init_sweep(sweep)
    bn, none = (mnist_sigma_range(grid, n, 0.02) for n in ("BN", "none"))
    wider = bn["decades"] > none["decades"]
    if wider and bn["lo"] <= none["lo"] and bn["hi"] >= none["hi"]:
        verdict = SUPPORTED
    elif not wider:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    return _row(*args, verdict, f"within 2 points of its best for sigma from {bn['lo']:g} to {bn['hi']:g} with BN "
                f"({bn['decades']:.1f} decades), {none['lo']:g} to {none['hi']:g} without ({none['decades']:.1f})",
                {"bn": bn, "none": none})


RULE_REGULARIZER = ("On 5,000 training images: BN regularizes if, without dropout, its train-test accuracy gap is "
                    "smaller than no-BN's; it reduces the need for dropout if BN without dropout reaches at least the "
                    "test accuracy of no BN with dropout. Supported if both hold, not supported if neither, mixed "
                    "otherwise.")


def claim_regularizer(reg: dict | None) -> dict:
    """"BN regularizes and reduces the need for dropout", from the train/test chapter's regularizer runs."""
    args = ("regularizer", "regularizes, reduces the need for dropout", ["ioffe2015batch"],
            [("train_test", "BN as a regularizer", "tt-regularizer")], RULE_REGULARIZER)
    if reg is None:
        return _missing(*args, ["tt_regularizer"])
    rows = regularizer_grid(reg)
    p = max(r["dropout"] for r in rows)
    bn0, none0, nonep = (regularizer_row(rows, "BN", 0.0), regularizer_row(rows, "none", 0.0),
                         regularizer_row(rows, "none", p))
    if None in (bn0["acc_gap"], none0["acc_gap"], bn0["test_acc"], nonep["test_acc"]):
        return _row(*args, MIXED, "a run diverged: no comparison")
    regularizes = bn0["acc_gap"] < none0["acc_gap"]
    replaces = bn0["test_acc"] >= nonep["test_acc"]
    verdict = SUPPORTED if regularizes and replaces else NOT_SUPPORTED if not (regularizes or replaces) else MIXED
    return _row(*args, verdict, f"train-test gap {fmt_pct(bn0['acc_gap'], 2)} with BN vs "
                f"{fmt_pct(none0['acc_gap'], 2)} without; test accuracy of BN without dropout "
                f"{fmt_pct(bn0['test_acc'], 2)} vs no BN with dropout {p:g}: {fmt_pct(nonep['test_acc'], 2)}",
                {"gap_bn": bn0["acc_gap"], "gap_none": none0["acc_gap"], "test_bn": bn0["test_acc"],
                 "test_none_dropout": nonep["test_acc"], "dropout": p})


RULE_SATURATING = ("Sigmoid CNNs at the largest swept depth, same learning rate: supported if BN's final test "
                   "accuracy is at least 5 points above no-BN's and its mean saturated fraction of sigmoid inputs "
                   "at the end is no larger; not supported if BN's accuracy is not higher; mixed otherwise.")


def claim_saturating(depth: dict | None) -> dict:
    """"BN makes saturating nonlinearities trainable", from the CIFAR-10 sigmoid depth experiment."""
    args = ("saturating", "makes saturating nonlinearities trainable", ["ioffe2015batch"],
            [("cifar", "sigmoid networks by depth", "cifar-depth")], RULE_SATURATING)
    if depth is None:
        return _missing(*args, ["cifar_sigmoid_depth"])
    rows = depth_saturation(depth["runs"])
    d = max(r["depth"] for r in rows)
    bn = [r for r in rows if r["depth"] == d and r["norm"] is not None][0]
    none = [r for r in rows if r["depth"] == d and r["norm"] is None][0]
    a_bn, a_none = bn["final_acc"] or 0.0, none["final_acc"] or 0.0
    if a_bn - a_none >= 0.05 and bn["sat_final_mean"] <= none["sat_final_mean"]:
        verdict = SUPPORTED
    elif a_bn <= a_none:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    return _row(*args, verdict, f"depth {d}: test accuracy {fmt_pct(bn['final_acc'])} with BN vs "
                f"{fmt_pct(none['final_acc'])} without; saturated inputs {fmt_pct(bn['sat_final_mean'])} vs "
                f"{fmt_pct(none['sat_final_mean'])}",
                {"depth": d, "acc_bn": bn["final_acc"], "acc_none": none["final_acc"],
                 "sat_bn": bn["sat_final_mean"], "sat_none": none["sat_final_mean"]})


RULE_ICS = ("Santurkar et al.'s measure (l2 distance and cosine between a layer's gradient before and after the "
            "earlier layers' update) at every checkpoint and weight layer after the first: supported if BN's median "
            "l2 distance is smaller and its median cosine larger than no-BN's; not supported if both are the other "
            "way; mixed otherwise.")


def claim_reduces_ics(landscape: dict | None) -> dict:
    """"BN reduces internal covariate shift", measured with Santurkar et al.'s definition."""
    args = ("reduces_ics", "reduces internal covariate shift", ["ioffe2015batch", "santurkar2018how"],
            [("why", "internal covariate shift measured", "why-ics")], RULE_ICS)
    if landscape is None:
        return _missing(*args, ["why_landscape"])
    bn, none = ics_summary(run_of(landscape, "bn")), ics_summary(run_of(landscape, "none"))
    smaller = bn["median_l2_all"] < none["median_l2_all"]
    aligned = bn["median_cos_all"] > none["median_cos_all"]
    verdict = SUPPORTED if smaller and aligned else NOT_SUPPORTED if not (smaller or aligned) else MIXED
    return _row(*args, verdict, f"median l2 change {bn['median_l2_all']:.3g} with BN vs {none['median_l2_all']:.3g} "
                f"without; median cosine {bn['median_cos_all']:.3f} vs {none['median_cos_all']:.3f}",
                {"l2_bn": bn["median_l2_all"], "l2_none": none["median_l2_all"], "cos_bn": bn["median_cos_all"],
                 "cos_none": none["median_cos_all"]})


RULE_ICS_IS_WHY = ("Noisy BN injects a random, time-varying shift and scale after every BN. BN's benefits measured "
                   "against no BN: early training speed (mean mini-batch loss over the first record interval) and "
                   "final test accuracy (eval mode); a benefit counts only where BN beats no BN. Noisy BN keeps a "
                   "benefit if it retains at least half of BN's advantage. The test counts only if noisy BN's "
                   "shift (the MNIST chapter's drift measure, as training sees the inputs) exceeds no-BN's. Not "
                   "supported if noisy BN keeps every benefit; supported if it keeps none; mixed otherwise, and "
                   "when there is no benefit or no extra shift.")


def claim_ics_is_why(noisy: dict | None, draws: dict | None = None) -> dict:
    """"BN helps because it reduces internal covariate shift", tested with Santurkar et al.'s noisy BN."""
    args = ("ics_is_why", "its benefit comes from reducing internal covariate shift",
            ["ioffe2015batch", "santurkar2018how"], [("why", "noisy BN", "why-noisy")], RULE_ICS_IS_WHY)
    if noisy is None:
        return _missing(*args, ["why_noisy"])
    keys = ("none", "bn", "noisy")
    runs = {k: run_of(noisy, k) for k in keys}
    early = {k: early_train_loss(r) for k, r in runs.items()}
    acc = {k: final_metric(r, "final_test_acc") for k, r in runs.items()}
    shifts = why_shift({"runs": {k: runs[k] for k in ("none", "noisy")}}, draws)
    shift = {k: v["relative"] for k, v in shifts.items()}
    kept = {}
    if None not in early.values() and early["bn"] < early["none"]:
        kept["early speed"] = (early["none"] - early["noisy"]) / (early["none"] - early["bn"])
    if None not in acc.values() and acc["bn"] > acc["none"]:
        kept["test accuracy"] = (acc["noisy"] - acc["none"]) / (acc["bn"] - acc["none"])
    nums = {"early": early, "acc": acc, "shift": shift, "kept": kept}
    measured = (f"first-interval training loss {_num(early['noisy'])} with noisy BN, {_num(early['bn'])} with BN, "
                f"{_num(early['none'])} without; final test accuracy {fmt_pct(acc['noisy'], 2)}, "
                f"{fmt_pct(acc['bn'], 2)}, {fmt_pct(acc['none'], 2)}; noisy BN keeps "
                + (", ".join(f"{100 * v:.0f}% of BN's {k} advantage" for k, v in kept.items()) or "nothing to keep")
                + f"; shift {shift['noisy']:.2f} spreads vs {shift['none']:.2f} without BN")
    held = [v >= 0.5 for v in kept.values()]
    if not held or shift["noisy"] <= shift["none"]:
        verdict = MIXED
    elif all(held):
        verdict = NOT_SUPPORTED
    elif not any(held):
        verdict = SUPPORTED
    else:
        verdict = MIXED
    return _row(*args, verdict, measured, nums)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


RULE_ACCELERATES = ("Speed-ups as each chapter defines them, read off records every few hundred steps: on MNIST "
                    "(same learning rate) the steps the network without BN needs to first reach its final test "
                    "accuracy over the steps BN needs to reach it; on CIFAR-10 the steps to the no-BN baseline's "
                    "best test accuracy, for BN at the baseline's rate and for the whole recipe. Supported if every "
                    "speed-up is at least 2; not supported if none exceeds 1; mixed otherwise.")


def claim_accelerates(fig1: dict | None, recipe: dict | None) -> dict:
    """"BN accelerates training (14× fewer steps in the paper)", from MNIST Figure 1 and the CIFAR recipe."""
    args = ("accelerates", "accelerates training (14× fewer steps in the paper)", ["ioffe2015batch"],
            [("mnist", "Figure 1", "mnist-accuracy"), ("cifar", "steps to the baseline", "cifar-steps")],
            RULE_ACCELERATES)
    if fig1 is None and recipe is None:
        return _missing(*args, ["mnist_fig1", "cifar_recipe"])
    speed: dict = {}
    if fig1 is not None:
        speed["MNIST, BN"] = mnist_speedup(fig1)["speedup"]
    if recipe is not None:
        _, rows = steps_to_accuracy(recipe["runs"], "none-baseline")
        by = {r["label"]: r["speedup"] for r in rows}
        speed["CIFAR-10, BN"] = by.get("bn-baseline")
        speed["CIFAR-10, recipe"] = by[rows[-1]["label"]]
    vals = [v or 0.0 for v in speed.values()]
    verdict = SUPPORTED if min(vals) >= 2 else NOT_SUPPORTED if max(vals) <= 1 else MIXED
    measured = "; ".join(f"{k}: {fmt_ratio(v) if v else 'never'}" for k, v in speed.items())
    missing = [n for n, r in (("mnist_fig1", fig1), ("cifar_recipe", recipe)) if r is None]
    if missing:
        measured += f" ({', '.join(missing)} not yet computed)"
    return _row(*args, verdict, measured + " (paper: 14× on ImageNet)", {"speedups": speed})


RULE_SCALE = ("Float64, random W, u and a in {0.01, 0.1, 10, 100}: supported if with epsilon = 0 the outputs "
              "BN(aWu) and BN(Wu) differ by at most 1e-9 and the gradient with respect to the weights at aW is "
              "1/a times the one at W to 1e-9 (relative); not supported otherwise.")


def claim_scale_invariance(check: dict) -> dict:
    """"BN(aWu) = BN(Wu)" (the paper's Sec. 3.3), from :func:`scale_invariance_check`."""
    args = ("scale_invariance", "scale invariance: BN(aWu) = BN(Wu)", ["ioffe2015batch"],
            [("scale_invariance", "", None), ("claims", "checked here", "claims-checks")], RULE_SCALE)
    ok = check["max_out_diff"] <= 1e-9 and check["max_grad_rel"] <= 1e-9
    return _row(*args, SUPPORTED if ok else NOT_SUPPORTED,
                f"epsilon = 0: outputs differ by {check['max_out_diff']:.1e}, gradients by {check['max_grad_rel']:.1e} "
                f"(relative); epsilon = {check['eps']:g}: {check['max_out_diff_eps']:.1e} and "
                f"{check['max_grad_rel_eps']:.1e}", dict(check))


RULE_IDENTITY = ("Float64, random batches: supported if with gamma = sqrt(var + epsilon) and beta = mean the layer "
                 "returns its input to 1e-12 (relative), in training mode (batch statistics) and at inference "
                 "(population statistics); not supported otherwise.")


def claim_identity(check: dict) -> dict:
    """"BN can represent the identity transform", from :func:`identity_check`."""
    args = ("identity", "can represent the identity", ["ioffe2015batch"],
            [("transform", "", None), ("claims", "checked here", "claims-checks")], RULE_IDENTITY)
    ok = check["train_rel"] <= 1e-12 and check["inference_rel"] <= 1e-12
    return _row(*args, SUPPORTED if ok else NOT_SUPPORTED, f"largest relative error {check['train_rel']:.1e} "
                f"(batch statistics), {check['inference_rel']:.1e} (inference)", dict(check))


RULE_FOLD = ("The trained MNIST network with every BN folded into the preceding linear layer (inference only): "
             "supported if it predicts the same class as the eval-mode network on at least 99.9% of the test images "
             "and its outputs differ by at most 1e-4; not supported otherwise.")


def claim_folding(pop: dict | None) -> dict:
    """"At inference BN is a linear transform that can be folded into the layer before it"."""
    args = ("folding", "at inference a linear transform that can be folded", ["ioffe2015batch"],
            [("train_test", "folding", "tt-folding")], RULE_FOLD)
    if pop is None:
        return _missing(*args, ["tt_population"])
    f = fold_summary(run_of(pop, "bn"))
    ok = f["same_predictions"] >= 0.999 and f["max_abs_diff"] <= 1e-4
    return _row(*args, SUPPORTED if ok else NOT_SUPPORTED, f"same predictions on {fmt_pct(f['same_predictions'], 2)} "
                f"of the test images, outputs within {f['max_abs_diff']:.1e}",
                {"same_predictions": f["same_predictions"], "max_abs_diff": f["max_abs_diff"]})


RULE_SMALL_BATCH = ("One epoch at each training batch size (learning rate 0.5 B / 60): supported if at the smallest "
                    "batch size BN's test accuracy (eval mode) is more than 1 point below its own best over the batch "
                    "sizes and below the better of Layer Norm and Group Norm; not supported if it is within 1 point "
                    "of its best; mixed otherwise.")


def claim_small_batches(bs: dict | None) -> dict:
    """"BN works poorly with small batches", from the train/test chapter's batch-size sweep."""
    args = ("small_batches", "poor with small batches", ["ioffe2017batch", "wu2018group"],
            [("train_test", "batch-size sweep", "tt-batch-size")], RULE_SMALL_BATCH)
    if bs is None:
        return _missing(*args, ["tt_batch_size"])
    grid = batch_size_grid(bs)
    b0 = grid["sizes"][0]
    bn = grid["acc"]["BN"]
    best = max(v for v in bn.values() if v is not None)
    at = bn.get(b0)
    others = {n: grid["acc"][n].get(b0) for n in ("Layer Norm", "Group Norm") if n in grid["acc"]}
    best_other = max((v for v in others.values() if v is not None), default=None)
    drop = best - (at if at is not None else 0.0)
    behind = best_other is not None and (at is None or at < best_other)
    if drop > 0.01 and behind:
        verdict = SUPPORTED
    elif drop <= 0.01:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    other_txt = "" if best_other is None else f"; best of Layer/Group Norm there {fmt_pct(best_other, 2)}"
    return _row(*args, verdict, f"batch {b0}: BN {fmt_pct(at, 2)} vs its best {fmt_pct(best, 2)}{other_txt}",
                {"batch": b0, "acc_bn": at, "best_bn": best, "best_other": best_other})


def step_overhead(results: Sequence[dict]) -> dict:
    """Per-step cost of BN from committed results: every pair of runs whose configurations differ only in
    ``norm`` (None vs a BN: ``"torch"`` or ``"bnlib"``) gives ``ratio = (BN seconds / BN steps) / (no-BN seconds
    / no-BN steps)``, from ``summary["train_seconds"]`` (wall time of the training loop, recording included).

    Returns ``pairs`` (list of dicts: ``experiment``, ``bn``, ``none``, ``model``, ``norm``, ``ratio``) and, per
    model kind (``"mlp"``, ``"cnn"``) and BN implementation, the median overhead ``ratio - 1``
    (``median_overhead[(model, norm)]``, ``count``), ``median_overhead_all`` over every pair and
    ``slower_fraction``, the fraction of pairs in which BN took longer per step (None without pairs).
    """

    pairs, seen = [], set()
    for res in results:
        if res is None:
            continue
        runs = res["runs"]
        plain = {}
        for label, run in runs.items():
            if run["config"].get("norm") is None:
                plain[_config_key(run["config"])] = label
        for label, run in runs.items():
            norm = run["config"].get("norm")
            if norm not in ("torch", "bnlib"):
                continue
            other = plain.get(_config_key(run["config"]))
            ident = json.dumps(run["config"], sort_keys=True)
            if other is None or ident in seen:  # a run reused by several experiments counts once
                continue
            seen.add(ident)
            a, b = run["summary"], runs[other]["summary"]
            if not (a.get("train_seconds") and b.get("train_seconds") and a.get("steps_done") and b.get("steps_done")):
                continue
            ratio = (a["train_seconds"] / a["steps_done"]) / (b["train_seconds"] / b["steps_done"])
            pairs.append({"experiment": res.get("name", "?"), "bn": label, "none": other,
                          "model": run["config"].get("model", "mlp"), "norm": norm, "ratio": ratio})
    groups: dict = {}
    for p in pairs:
        groups.setdefault((p["model"], p["norm"]), []).append(p["ratio"] - 1)
    return {"pairs": pairs, "median_overhead": {k: float(np.median(v)) for k, v in groups.items()},
            "count": {k: len(v) for k, v in groups.items()},
            "median_overhead_all": float(np.median([p["ratio"] - 1 for p in pairs])) if pairs else None,
            "slower_fraction": float(np.mean([p["ratio"] > 1 for p in pairs])) if pairs else None}


def _config_key(cfg: dict) -> str:

    return json.dumps({k: v for k, v in cfg.items() if k not in ("norm", "device")}, sort_keys=True)


RULE_OVERHEAD = ("Overhead = per-step wall time with BN / without BN - 1 for every pair of committed runs that differ "
                 "only in BN (recording every few hundred steps included; the CPU is shared), median over pairs. "
                 "The timings count only if at least 3 in 4 pairs agree that BN is slower; otherwise mixed (too "
                 "noisy to measure a cost). Supported if the median is between 15% and 60% ('about 30%' within a "
                 "factor of two); not supported if it is 0 or less; mixed otherwise.")


def claim_overhead(overhead: dict) -> dict:
    """"Adding BN slows each step (about 30%)", from :func:`step_overhead` over the committed results."""
    args = ("overhead", "adding BN slows each step (about 30%)", [], [("claims", "what was timed", "claims-overhead")],
            RULE_OVERHEAD)
    note = "lecture notes in the CS231n style"
    med = overhead["median_overhead_all"]
    if med is None:
        return _row(*args, NOT_TESTED, "no pair of committed runs differing only in BN", source_note=note)
    slower = overhead.get("slower_fraction", 1.0)
    if slower < 0.75:
        verdict = MIXED
    else:
        verdict = SUPPORTED if 0.15 <= med <= 0.60 else NOT_SUPPORTED if med <= 0 else MIXED
    kinds = {"mlp": "MNIST MLP", "cnn": "CIFAR CNN"}
    parts = [f"{kinds.get(m, m)} with {'torch' if n == 'torch' else 'bnlib'} BN {100 * v:+.0f}% "
             f"({overhead['count'][(m, n)]} pairs)" for (m, n), v in sorted(overhead["median_overhead"].items())]
    return _row(*args, verdict, f"median {100 * med:+.0f}% per step: " + ", ".join(parts)
                + f"; BN slower in {100 * slower:.0f}% of the pairs",
                {"median": med, "by_kind": {f"{m}/{n}": v for (m, n), v in overhead["median_overhead"].items()}},
                source_note=note)


RULE_SMOOTH = ("Medians over the checkpoints of (i) the range of the loss at w - eta g over the step sizes, (ii) the "
               "largest gradient change ||g(w - eta g) - g(w)|| and (iii) the effective beta-smoothness. Supported if "
               "BN's median is lower than no-BN's in all three; not supported if in none; mixed otherwise.")


def claim_smooths(landscape: dict | None) -> dict:
    """"BN smooths the loss landscape" (Santurkar et al.), from the landscape recorder."""
    args = ("smooths", "smooths the loss landscape", ["santurkar2018how"],
            [("why", "the landscape along the gradient", "why-landscape")], RULE_SMOOTH)
    if landscape is None:
        return _missing(*args, ["why_landscape"])
    bn, none = landscape_summary(run_of(landscape, "bn")), landscape_summary(run_of(landscape, "none"))
    keys = ("median_loss_range", "median_gc_max", "median_beta")
    lower = [bn[k] < none[k] for k in keys]
    verdict = SUPPORTED if all(lower) else NOT_SUPPORTED if not any(lower) else MIXED
    return _row(*args, verdict, f"with BN vs without: loss range {bn['median_loss_range']:.3g} vs "
                f"{none['median_loss_range']:.3g}, gradient change {bn['median_gc_max']:.3g} vs "
                f"{none['median_gc_max']:.3g}, beta {bn['median_beta']:.3g} vs {none['median_beta']:.3g}",
                {k + "_bn": bn[k] for k in keys} | {k + "_none": none[k] for k in keys})


RULE_LP = ("Santurkar et al.'s l_p normalizations divide the centred pre-activations by their batch l_1 or l_inf "
           "average instead of the standard deviation (l_2). A run is smoother than no BN on a measure of the "
           "landscape along the gradient (median loss range, largest gradient change, effective beta) if its value "
           "is lower. Supported if every l_p run is smoother than no BN on at least as many measures as BN is (and on "
           "at least one); not supported if no l_p run is smoother on any measure; mixed otherwise.")


LP_NORMS = ("l1", "linf")


def claim_lp_smooth(landscape: dict | None) -> dict:
    """"l_p normalizations smooth the landscape as well" (Santurkar et al.), from the landscape runs with
    l_1 and l_inf normalization (``why_landscape``)."""
    args = ("lp_smooth", "l_p normalizations smooth as well", ["santurkar2018how"],
            [("why", "l_p normalizations", "why-lp")], RULE_LP)
    if landscape is None:
        return _missing(*args, ["why_landscape"])
    keys = ("median_loss_range", "median_gc_max", "median_beta")
    summ = {lab: landscape_summary(run_of(landscape, lab)) for lab in ("none", "bn", *LP_NORMS)}
    wins = {lab: sum(summ[lab][k] < summ["none"][k] for k in keys) for lab in ("bn", *LP_NORMS)}
    if all(wins[lab] >= max(wins["bn"], 1) for lab in LP_NORMS):
        verdict = SUPPORTED
    elif all(wins[lab] == 0 for lab in LP_NORMS):
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    names = {"bn": "BN", "l1": "l_1", "linf": "l_inf"}
    measured = "; ".join(f"{names[lab]}: {wins[lab]} of 3 (beta {summ[lab]['median_beta']:.3g})"
                         for lab in ("bn", *LP_NORMS))
    return _row(*args, verdict, f"measures smoother than no BN (beta {summ['none']['median_beta']:.3g}): {measured}",
                {"wins": wins} | {f"{k}_{lab}": summ[lab][k] for lab in summ for k in keys})


RULE_RECIPE = ("Cumulative ablation from the BN baseline (target: the no-BN baseline's best test accuracy): a change "
               "helps if it lowers the steps to the target, or leaves them equal and raises the final test accuracy. "
               "Supported if every change helps; not supported if none does; mixed otherwise.")


def claim_recipe(recipe: dict | None) -> dict:
    """"Each step of the paper's acceleration recipe helps", from the CIFAR-10 ablation."""
    args = ("recipe", "each step of the acceleration recipe helps", ["ioffe2015batch"],
            [("cifar", "the acceleration recipe", "cifar-recipe")], RULE_RECIPE)
    if recipe is None:
        return _missing(*args, ["cifar_recipe"])
    _, rows = ablation(recipe["runs"], "none-baseline")
    start = next(i for i, r in enumerate(rows) if r["norm"] is not None)
    helps = {}
    for prev, cur in zip(rows[start:], rows[start + 1:], strict=False):
        ps, cs = (math.inf if r["steps"] is None else r["steps"] for r in (prev, cur))
        pa, ca = prev["final_acc"] or 0.0, cur["final_acc"] or 0.0
        helps[cur["change"] or cur["label"]] = cs < ps or (cs == ps and ca > pa)
    n = sum(helps.values())
    verdict = SUPPORTED if n == len(helps) else NOT_SUPPORTED if n == 0 else MIXED
    return _row(*args, verdict, "; ".join(f"{k}: {'helps' if v else 'does not help'}" for k, v in helps.items()),
                {"helps": helps})


RULE_BJORCK = ("BN's advantage = its best final test accuracy over the swept learning rates minus no-BN's best; at "
               "equal rate = BN's minus no-BN's accuracy at no-BN's best rate. Supported if the advantage is positive "
               "and at most half of it remains at equal rate; not supported if all of it remains; mixed otherwise "
               "(also when BN has no advantage to explain).")


def claim_bjorck(sweep: dict | None, base_lr: float) -> dict:
    """"BN's benefit comes mainly from the larger learning rates it allows" (Bjorck et al.)."""
    args = ("bjorck", "its benefit comes mainly from the larger learning rates it allows",
            ["bjorck2018understanding"], [("cifar", "learning-rate sweep", "cifar-lr")], RULE_BJORCK)
    if sweep is None:
        return _missing(*args, ["cifar_lr_sweep"])
    rows = lr_sweep(sweep["runs"], base_lr)
    none = {r["multiplier"]: r["final_acc"] for r in rows if r["norm"] is None and r["final_acc"] is not None}
    bn = {r["multiplier"]: r["final_acc"] for r in rows if r["norm"] is not None and r["final_acc"] is not None}
    if not none or not bn:
        return _row(*args, MIXED, "every run of one of the networks diverged: no comparison")
    k_star = max(none, key=none.get)
    total = max(bn.values()) - none[k_star]
    same = (bn.get(k_star) or 0.0) - none[k_star]
    if total > 0 and same <= total / 2:
        verdict = SUPPORTED
    elif total > 0 and same >= total:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    return _row(*args, verdict, f"BN's advantage {_pts(total)}; at no-BN's best rate ({k_star:g}×) {_pts(same)}",
                {"advantage": total, "at_same_rate": same, "k_none": k_star})


def claims_ledger(results: dict, checks: dict, cifar_base_lr: float) -> list[dict]:
    """Every row of the claims ledger, in the book's order.

    ``results`` maps experiment names to results (a missing name or None: not yet computed);
    ``checks`` holds ``"scale"`` (:func:`scale_invariance_check`) and ``"identity"``
    (:func:`identity_check`) and optionally ``"draws"`` (noisy BN's draws by layer, see
    :func:`as_trained`); ``cifar_base_lr`` is the CIFAR-10 baseline learning rate of the sweep.
    """
    r = {k: results.get(k) for k in ("cifar_lr_sweep", "mnist_init_sweep", "tt_regularizer", "cifar_sigmoid_depth",
                                     "why_landscape", "why_noisy", "mnist_fig1", "cifar_recipe", "tt_batch_size",
                                     "tt_population")}
    timed = [v for v in results.values() if v is not None]
    return [
        claim_higher_lr(r["cifar_lr_sweep"], cifar_base_lr),
        claim_init(r["mnist_init_sweep"]),
        claim_regularizer(r["tt_regularizer"]),
        claim_saturating(r["cifar_sigmoid_depth"]),
        claim_reduces_ics(r["why_landscape"]),
        claim_ics_is_why(r["why_noisy"], checks.get("draws")),
        claim_accelerates(r["mnist_fig1"], r["cifar_recipe"]),
        claim_scale_invariance(checks["scale"]),
        claim_small_batches(r["tt_batch_size"]),
        claim_folding(r["tt_population"]),
        claim_identity(checks["identity"]),
        claim_overhead(step_overhead(timed)),
        claim_smooths(r["why_landscape"]),
        claim_lp_smooth(r["why_landscape"]),
        claim_recipe(r["cifar_recipe"]),
        claim_bjorck(r["cifar_lr_sweep"], cifar_base_lr),
    ]


def verdict_counts(rows: list[dict]) -> dict[str, int]:
    """How many rows have each verdict (all four verdicts present, zero when unused)."""
    return {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}


def _where_md(where: tuple, docs: set[str]) -> str | None:
    doc, words, label = where
    if doc not in docs:
        return None
    if label:
        return f"{{ref}}`{words} <{label}>`" if words else f"{{ref}}`{label}`"
    return f"{{doc}}`{doc}`"


def ledger_markdown(rows: list[dict], docs: set[str] | Sequence[str]) -> str:
    """The ledger as a MyST markdown table (for ``glue:md`` with ``:format: myst``): number, claim,
    source (citations), where it is tested (cross-references into the chapters in ``docs``; places in
    other chapters are left out), what was measured, and the verdict in bold."""
    docs = set(docs)
    lines = ["| # | claim | source | tested in | measured here | verdict |", "|---|---|---|---|---|---|"]
    for n, r in enumerate(rows, 1):
        src = "; ".join(f"{{cite:p}}`{k}`" for k in r["sources"]) or r["source_note"] or "–"
        where = "; ".join(w for w in (_where_md(w, docs) for w in r["where"]) if w) or "–"
        cells = [str(n), r["claim"], src, where, r["measured"], f"**{r['verdict']}**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def ledger_table(rows: list[dict]) -> Table:
    """The ledger as a plain :class:`Table` (number, claim, verdict): the text nbval compares."""
    return Table(["#", "claim", "verdict"], [[n, r["claim"], r["verdict"]] for n, r in enumerate(rows, 1)])


def rules_markdown(rows: list[dict]) -> str:
    """Every row's verdict rule as a numbered markdown list, in the ledger's order."""
    return "\n".join(f"{n}. **{r['claim']}.** {r['rule']}" for n, r in enumerate(rows, 1))
