"""The ledger of classic claims about BN (book/claims.ipynb): one function per claim measures its numbers from
committed results and returns a row whose verdict the claim's rule (:mod:`bnlib.reports.rules`) decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from bnlib.reports import rules as R
from bnlib.reports.evidence import Paired, paired
from bnlib.reports.format import Glued, Table, fmt_paired, fmt_pct, md, number, power_bound, signed, text
from bnlib.reports.geometry import FLOOR
from bnlib.reports.mnist import mnist_init_sweep, mnist_sigma_range, mnist_speedup
from bnlib.reports.train_test import fold_summary, regularizer_grid, regularizer_row
from bnlib.reports.why import early_train_loss, ics_summary, landscape_summary, why_shift
from bnlib.results import by_seed, curve, first_seeds, score, seeds_of, steps_or_after, val_curve_key

#: The verdicts and the record of a claim, from :mod:`bnlib.reports.rules`.
SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED, VERDICTS = R.SUPPORTED, R.NOT_SUPPORTED, R.MIXED, R.NOT_TESTED, R.VERDICTS
INCONCLUSIVE, CHECKED = R.INCONCLUSIVE, R.CHECKED
Claim, CLAIMS, _row = R.Claim, R.CLAIMS, R._row


def _pts(x: float) -> str:
    """A difference of accuracies in percentage points, signed: 0.0123 -> "+1.2 points"."""
    return f"{signed(100 * x, 1)} points"


def _acc(run: dict, split: str = "test") -> float:
    """A run's final accuracy as the rules pair it (:func:`bnlib.results.score`), a diverged run at chance."""
    v = score(run, split)
    return R.CHANCE if v is None else float(v)


def _by(res: dict, label: str) -> list[dict]:
    return seeds_of(res, label)


def _accs(res: dict, label: str, split: str = "test") -> list[float]:
    return [_acc(r, split) for r in _by(res, label)]


def _interval(x: dict, scale: float = 100, unit: str = " points", digits: int = 1) -> str:
    """A part's interval as the ledger shows it: "+0.4 points [+0.1, +0.7]"."""
    if x["n"] == 1 or x["lo"] is None or not math.isfinite(x["lo"]):
        return f"{signed(scale * x['mean'], digits)}{unit} (one seed)"
    return (f"{signed(scale * x['mean'], digits)}{unit} [{signed(scale * x['lo'], digits)}, "
            f"{signed(scale * x['hi'], digits)}]")


def _seeds_note(parts: list[dict], unit: str = "seed") -> str:
    """How many seeds there are and how many agree with each decided part's verdict: "; 5 seeds, agreeing with
    each decided part: 5/5, 3/5"."""
    agree = [f"{p['agree']}/{p['n']}" for p in parts if p["agree"] is not None]
    n = max((p["n"] or 0 for p in parts), default=0)
    return (f"; {n} {unit}{'' if n == 1 else 's'}"
            + (f", agreeing with each decided part: {', '.join(agree)}" if agree else ""))


def _judged(claim: Claim, numbers: dict, describe, unit: str = "seed") -> dict:
    """The row of ``claim`` on ``numbers``; ``describe(parts)`` writes what was measured from its parts."""
    row = claim.judged("", numbers)
    row["measured"] = describe(row["parts"]) + _seeds_note(row["parts"], unit)
    return row


def _sweep_labels(sweep: dict, base_lr: float) -> dict[tuple[bool, float], str]:
    """The labels of a learning-rate sweep by (has BN, multiplier of ``base_lr``)."""
    if not base_lr > 0:
        raise ValueError(f"base_lr must be positive, got {base_lr}.")
    return {(r["config"]["norm"] is not None, float(f"{r['config']['lr'] / base_lr:.6g}")): lab
            for lab, r in first_seeds(sweep).items()}


def claim_higher_lr(sweep: dict | None, base_lr: float, claim: Claim = R.HIGHER_LR) -> dict:
    """"BN allows much higher learning rates", from the CIFAR-10 learning-rate sweep around ``base_lr``."""
    if sweep is None:
        return claim.missing(["cifar_lr_sweep"])
    labels, k = _sweep_labels(sweep, base_lr), claim.margins["k"]
    need = [(False, 1.0), (True, k), (False, k)]
    if any(x not in labels for x in need):
        raise ValueError(f"the sweep must hold both networks at 1x and {k:g}x the base learning rate {base_lr}.")
    n = {"bn_k": _accs(sweep, labels[(True, k)]), "none_1": _accs(sweep, labels[(False, 1.0)]),
         "none_k": _accs(sweep, labels[(False, k)])}
    return _judged(claim, n, lambda p: f"BN at {k:g}x minus no BN at 1x {_interval(p[0])}; no BN at {k:g}x minus 1x "
                                       f"{_interval(p[1])}")


def claim_init(sweep: dict | None, claim: Claim = R.INIT) -> dict:
    """"With BN one can be less careful about initialization", from the MNIST init-scale sweep, per seed."""
    if sweep is None:
        return claim.missing(["mnist_init_sweep"])
    within = claim.margins["within"]
    ranges = [{net: mnist_sigma_range(mnist_init_sweep(r), net, within) for net in ("BN", "none")}
              for r in by_seed(sweep).values()]
    n = {"dec_bn": [x["BN"]["decades"] for x in ranges], "dec_none": [x["none"]["decades"] for x in ranges]}
    return _judged(claim, n, lambda p: f"within {R.Margin(within):pts} of its best over {np.mean(n['dec_bn']):.1f} "
                                       f"decades of sigma with BN, {np.mean(n['dec_none']):.1f} without (the mean of "
                                       f"each seed's range; the MNIST chapter also gives that of the seed-mean curve); "
                                       f"difference {_interval(p[0], 1, ' decades')}")


def claim_regularizer(reg: dict | None, claim: Claim = R.REGULARIZER) -> dict:
    """"BN regularizes and reduces the need for dropout", from the train/test chapter's regularizer runs."""
    if reg is None:
        return claim.missing(["tt_regularizer"])
    n: dict = {"gap_bn": [], "gap_none": [], "test_bn": [], "test_none_dropout": []}
    for r in by_seed(reg).values():
        rows = regularizer_grid(r)
        p = max(row["dropout"] for row in rows)
        bn0, none0, nonep = (regularizer_row(rows, "BN", 0.0), regularizer_row(rows, "none", 0.0),
                             regularizer_row(rows, "none", p))
        for key, v in (("gap_bn", bn0["acc_gap"]), ("gap_none", none0["acc_gap"]), ("test_bn", bn0["test_acc"]),
                       ("test_none_dropout", nonep["test_acc"])):
            n[key].append(R.CHANCE if v is None else v)
    return _judged(claim, n, lambda p: f"train-test gap, no BN minus BN {_interval(p[0], digits=2)}; BN without "
                                       f"dropout minus no BN with dropout {_interval(p[1], digits=2)}")


def saturating_labels(depth: dict) -> tuple[int, str, str]:
    """The deepest sigmoid networks of a depth experiment as the rule compares them: ``(depth, BN's label, no BN's
    label)``, BN at the lowest rate it ran there and no BN (same initialization) at its best rate on validation (mean
    over seeds); controls with another activation or initialization are not candidates."""
    first = first_seeds(depth)
    d = max(r["config"]["depth"] for r in first.values())
    deep = {lab: r["config"] for lab, r in first.items()
            if r["config"]["depth"] == d and r["config"].get("activation", "sigmoid") == "sigmoid"}
    bn = min((lab for lab, c in deep.items() if c["norm"] is not None), key=lambda lab: deep[lab]["lr"])
    init = deep[bn].get("init")
    none = [lab for lab, c in deep.items() if c["norm"] is None and c.get("init") == init]
    if not none:
        raise ValueError(f"the depth experiment has no sigmoid network without BN at depth {d}.")
    return d, bn, max(none, key=lambda lab: np.mean(_accs(depth, lab, "val")))


def claim_saturating(depth: dict | None, claim: Claim = R.SATURATING) -> dict:
    """"BN makes saturating nonlinearities trainable", from the CIFAR-10 sigmoid depth experiment
    (:func:`saturating_labels`)."""
    if depth is None:
        return claim.missing(["cifar_sigmoid_depth"])
    d, bn, none = saturating_labels(depth)

    def sat(run):
        return float(np.mean(curve(run, "saturated")[-1]))

    n = {"acc_bn": _accs(depth, bn), "acc_none": _accs(depth, none),
         "sat_bn": [sat(r) for r in _by(depth, bn)], "sat_none": [sat(r) for r in _by(depth, none)]}
    return _judged(claim, n, lambda p: f"depth {d}, {bn} against {none}: test accuracy, BN minus no BN "
                                       f"{_interval(p[0])}; saturated fraction, no BN minus BN {_interval(p[1])}")


def claim_reduces_ics(landscape: dict | None, claim: Claim = R.REDUCES_ICS) -> dict:
    """"BN reduces internal covariate shift", measured with Santurkar et al.'s definition, per seed."""
    if landscape is None:
        return claim.missing(["why_landscape"])
    s = {lab: [ics_summary(r) for r in _by(landscape, lab)] for lab in ("bn", "none")}
    n = {f"{k}_{lab}": [x[f"median_{k}_all"] for x in s[lab]] for lab in s for k in ("l2", "cos")}
    return _judged(claim, n, lambda p: f"median l2 change {np.mean(n['l2_bn']):.3g} with BN vs "
                                       f"{np.mean(n['l2_none']):.3g} without (log ratio {_interval(p[0], 1, '')}); "
                                       f"median cosine, BN minus no BN {_interval(p[1], 1, '', 3)}")


def _draws_by_seed(noisy: dict, draws: dict | None) -> dict:
    if draws is None:
        return {}
    if draws and not all(isinstance(v, dict) for v in draws.values()):
        raise ValueError("draws must map each seed to that seed's noisy-BN draws by layer ({seed: "
                         "analysis.noisy_run_draws(config)}), got draws by layer for one run.")
    return draws


def claim_ics_is_why(noisy: dict | None, draws: dict | None = None, claim: Claim = R.ICS_IS_WHY) -> dict:
    """"BN helps because it reduces internal covariate shift", tested with Santurkar et al.'s noisy BN per seed;
    ``draws`` maps each seed to what its noisy BN injected (see :func:`bnlib.analysis.noisy_run_draws`)."""
    if noisy is None:
        return claim.missing(["why_noisy"])
    by_draws = _draws_by_seed(noisy, draws)
    n: dict = {"acc": {}, "early": {}, "shift": {"none": [], "noisy": []}}
    for lab in ("none", "bn", "noisy"):
        n["acc"][lab] = _accs(noisy, lab)
        n["early"][lab] = [early_train_loss(r) for r in _by(noisy, lab)]
    for seed, r in by_seed(noisy).items():
        sh = why_shift({"runs": {k: r["runs"][k] for k in ("none", "noisy")}}, by_draws.get(seed))
        for k in ("none", "noisy"):
            n["shift"][k].append(sh[k]["relative"])

    def describe(parts):
        got = "; ".join(f"{p['name']}: {_interval(p, *((100, ' points') if 'accuracy' in p['name'] else (1, '')))}"
                        f" ({p['verdict']})" for p in parts[1:])
        return f"shift, noisy BN minus no BN {_interval(parts[0], 1, ' spreads', 2)}; {got}"

    return _judged(claim, n, describe)


def _mnist_speedups(fig1: dict) -> list[float]:
    """Per seed, the MNIST chapter's speed-up (:func:`bnlib.reports.mnist.mnist_speedup`: the steps no BN needs to
    first reach its final validation accuracy over the steps BN needs), BN counting as reaching it one record after
    its last where it never does."""
    out = []
    for r in by_seed(fig1).values():
        sp = mnist_speedup(r)
        bn = r["runs"]["bn"]
        out.append(sp["speedup"] or sp["slow_to_slow"] / steps_or_after(bn, sp["final_slow"], val_curve_key(bn)))
    return out


def _recipe_steps(recipe: dict) -> dict[str, list[float]]:
    """Per seed, the steps BN and the full recipe need to reach the recipe's target (the no-BN baseline's best
    validation accuracy, mean over seeds), interpolated between records, and the steps no BN needs."""
    base = _by(recipe, "none-baseline")
    target = float(np.mean([max(v for v in curve(r, val_curve_key(r)) if v is not None) for r in base]))
    return {lab: [steps_or_after(r, target, val_curve_key(r), interpolate=True) for r in _by(recipe, lab)]
            for lab in ("none-baseline", "bn-baseline", "bn+all")}


def claim_accelerates(fig1: dict | None, recipe: dict | None, claim: Claim = R.ACCELERATES) -> dict:
    """"BN accelerates training (14× fewer steps in the paper)", from MNIST Figure 1 and the CIFAR recipe."""
    if fig1 is None and recipe is None:
        return claim.missing(["mnist_fig1", "cifar_recipe"])
    speed: dict = {}
    if fig1 is not None:
        speed["MNIST, BN"] = _mnist_speedups(fig1)
    if recipe is not None:
        steps = _recipe_steps(recipe)
        base = steps["none-baseline"]
        for name, lab in (("CIFAR-10, BN", "bn-baseline"), ("CIFAR-10, recipe", "bn+all")):
            speed[name] = [a / b for a, b in zip(base, steps[lab], strict=True)]
    missing = [k for k, r in (("mnist_fig1", fig1), ("cifar_recipe", recipe)) if r is None]

    def describe(parts):
        txt = "; ".join(f"{k}: {math.exp(p['mean']):.3g}×" + ("" if p["n"] == 1 else
                                                               f" [{math.exp(p['lo']):.3g}, {math.exp(p['hi']):.3g}]")
                        for k, p in zip(speed, parts, strict=True))
        return txt + (f" ({', '.join(missing)} not yet computed)" if missing else "") + " (paper: 14× on ImageNet)"

    return _judged(claim, {"speedups": speed}, describe)


def accelerates_exercise(row: dict) -> dict[str, Glued]:
    """The claims chapter's threshold exercise: the smallest and largest geometric-mean speed-up of the
    "accelerates" row and the verdict at :data:`ACCELERATES_ALT_SPEEDUP`."""
    vals = [float(np.exp(np.mean(np.log(v)))) for v in row["numbers"].get("speedups", {}).values()]
    if not vals:
        return {}
    return {"claims_acc_min": number(min(vals), 4), "claims_acc_max": number(max(vals), 4),
            "claims_acc_alt": text(R.accelerates_alternative(row))}


def claim_scale_invariance(check: dict, claim: Claim = R.SCALE_INVARIANCE) -> dict:
    """"BN(aWu) = BN(Wu)" (the paper's Sec. 3.3), from :func:`bnlib.identities.scale_invariance_check`."""
    return claim.judged(f"epsilon = 0: outputs differ by {check['max_out_diff']:.1e}, gradients by "
                        f"{check['max_grad_rel']:.1e} (relative); epsilon = {check['eps']:g}: "
                        f"{check['max_out_diff_eps']:.1e} and {check['max_grad_rel_eps']:.1e}", dict(check))


def claim_identity(check: dict, claim: Claim = R.IDENTITY) -> dict:
    """"BN can represent the identity transform", from :func:`bnlib.identities.identity_check`."""
    return claim.judged(f"largest relative error {check['train_rel']:.1e} (batch statistics), "
                        f"{check['inference_rel']:.1e} (inference)", dict(check))


def claim_folding(pop: dict | None, claim: Claim = R.FOLDING) -> dict:
    """"At inference BN is a linear transform that can be folded into the layer before it", on every seed."""
    if pop is None:
        return claim.missing(["tt_population"])
    fs = [fold_summary(r) for r in _by(pop, "bn")]
    worst = {"same_predictions": min(f["same_predictions"] for f in fs),
             "max_abs_diff": max(f["max_abs_diff"] for f in fs)}
    same = ("all" if worst["same_predictions"] == 1 else f"at least {fmt_pct(worst['same_predictions'], 2)}")
    return claim.judged(f"on each of {len(fs)} seeds the same predictions on {same} of the test images, outputs within "
                        f"{worst['max_abs_diff']:.1e}", worst)


def claim_small_batches(bs: dict | None, claim: Claim = R.SMALL_BATCHES) -> dict:
    """"BN works poorly with small batches", from the train/test chapter's batch-size sweep, per seed."""
    if bs is None:
        return claim.missing(["tt_batch_size"])
    first = first_seeds(bs)
    cfg = {lab: r["config"] for lab, r in first.items()}
    sizes = sorted({c["batch_size"] for c in cfg.values()})
    b0 = sizes[0]

    def label(norm, b):
        return next(lab for lab, c in cfg.items() if c["norm"] == norm and c["batch_size"] == b)

    def val(norm, b):
        return float(np.mean(_accs(bs, label(norm, b), "val")))

    best_b = max(sizes, key=lambda b: val("torch", b))
    others = {name: norm for norm, name in (("layer", "Layer Norm"), ("group", "Group Norm"))
              if any(c["norm"] == norm for c in cfg.values())}
    other = max(others, key=lambda name: val(others[name], b0))
    n = {"batch": b0, "best_batch": best_b, "other": other, "bn_small": _accs(bs, label("torch", b0)),
         "bn_best": _accs(bs, label("torch", best_b)), "other_small": _accs(bs, label(others[other], b0))}
    return _judged(claim, n, lambda p: f"BN at batch {best_b} (its best on validation) minus at batch {b0} "
                                       f"{_interval(p[0], digits=2)}; {other} minus BN at batch {b0} "
                                       f"{_interval(p[1], digits=2)}")


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
        plain = {_config_key(run["config"]): label for label, run in runs.items() if run["config"].get("norm") is None}
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


def claim_overhead(overhead: dict, claim: Claim = R.OVERHEAD) -> dict:
    """"Adding BN slows each step (about 30%)", from :func:`step_overhead` over the committed results."""
    if overhead["median_overhead_all"] is None:
        return claim.row(NOT_TESTED, "no pair of committed runs differing only in BN")
    kinds = {"mlp": "MNIST MLP", "cnn": "CIFAR CNN"}
    parts = [f"{kinds.get(m, m)} with {'torch' if n == 'torch' else 'bnlib'} BN median {100 * v:+.0f}% "
             f"({overhead['count'][(m, n)]} pairs)" for (m, n), v in sorted(overhead["median_overhead"].items())]
    n = {"overheads": [p["ratio"] - 1 for p in overhead["pairs"]], "slower": overhead["slower_fraction"]}
    slower = f"; BN slower in {100 * n['slower']:.0f}% of the pairs"
    return _judged(claim, n, lambda p: f"mean {_interval(p[0], 100, '%', 0)} per step over {p[0]['n']} pairs: "
                                       + ", ".join(parts) + slower, "pair")


def _landscape(land: dict, labels: Sequence[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for lab in labels:
        s = [landscape_summary(r) for r in _by(land, lab)]
        out |= {f"{k}_{lab}": [x[k] for x in s] for k in R.LANDSCAPE_KEYS}
    return out


def _ratios(parts: list[dict]) -> str:
    return ", ".join(f"{R.LANDSCAPE_WORDS[k]} {math.exp(p['mean']):.3g}×" + (
        "" if p["n"] == 1 else f" [{math.exp(p['lo']):.3g}, {math.exp(p['hi']):.3g}]")
        for k, p in zip(R.LANDSCAPE_KEYS * (len(parts) // len(R.LANDSCAPE_KEYS)), parts, strict=True))


def claim_smooths(landscape: dict | None, claim: Claim = R.SMOOTHS) -> dict:
    """"BN smooths the loss landscape" (Santurkar et al.), from the landscape recorder, per seed."""
    if landscape is None:
        return claim.missing(["why_landscape"])
    n = _landscape(landscape, ("none", "bn"))
    return _judged(claim, n, lambda p: "no BN's value over BN's (geometric mean): " + _ratios(p))


def claim_lp_smooth(landscape: dict | None, claim: Claim = R.LP_SMOOTH) -> dict:
    """"l_p normalizations smooth the landscape as well" (Santurkar et al.), from the landscape runs with
    l_1 and l_inf normalization (``why_landscape``), per seed."""
    if landscape is None:
        return claim.missing(["why_landscape"])
    n = _landscape(landscape, ("none", *R.LP_NORMS))
    k = len(R.LANDSCAPE_KEYS)
    return _judged(claim, n, lambda p: f"no BN's value over l_1's: {_ratios(p[:k])}; over l_inf's: {_ratios(p[k:])}")


def claim_recipe(recipe: dict | None, claim: Claim = R.RECIPE) -> dict:
    """"Each change of the paper's acceleration recipe helps", from the CIFAR-10 ablation (each change added alone
    to BN and left out of the full recipe), paired by seed."""
    if recipe is None:
        return claim.missing(["cifar_recipe"])
    labels = ["bn-baseline", "bn+all", *(f"bn+{c}" for c in R.RECIPE_WORDS), *(f"bn+all-{c}" for c in R.RECIPE_WORDS)]
    test = {lab: _accs(recipe, lab) for lab in labels}

    def describe(parts):
        return "; ".join(f"{p['name'].removeprefix('test accuracy, ')}: {_interval(p)} ({p['verdict']})"
                         for p in parts)

    return _judged(claim, {"test": test}, describe)


def claim_adapts(check: dict | None, claim: Claim = R.ADAPTS) -> dict:
    """"Re-estimating BN's statistics adapts to a shifted domain" (Schneider et al., 2020), from
    :func:`bnlib.practice.adaptation_check`, at its largest number of shifted images and no prior."""
    if check is None:
        return claim.missing(["the practice chapter's adaptation check"])
    big = max(check["sizes"])
    n = {"adapted": {s: check["adapted"][s]["0"][str(big)] for s in R.ADAPT_SHIFTS},
         "source": {s: check["source"][s] for s in R.ADAPT_SHIFTS}}
    return _judged(claim, n, lambda parts: "; ".join(
        f"{s}: {100 * np.mean(n['source'][s]):.1f}% with the source statistics, {100 * np.mean(n['adapted'][s]):.1f}% "
        f"from {big} shifted images ({_interval(p)})" for s, p in zip(R.ADAPT_SHIFTS, parts, strict=True)))


def claim_affine(check: dict | None, claim: Claim = R.AFFINE) -> dict:
    """"Gamma and beta alone are expressive" (Frankle et al., 2021), from :func:`bnlib.practice.affine_only_check`."""
    if check is None:
        return claim.missing(["the practice chapter's gamma-and-beta check"])
    n = {"bn": check["acc"]["bn"], "random": check["acc"]["random"]}
    k = check["trained"]["bn"]
    return _judged(claim, n, lambda parts: f"{k} values trained: gamma and beta {100 * np.mean(n['bn']):.1f}%, "
                                           f"random weights {100 * np.mean(n['random']):.1f}% ({_interval(parts[0])})")


def claim_sync(check: dict | None, claim: Claim = R.SYNC) -> dict:
    """"SyncBN fixes small per-device batches", from :func:`bnlib.practice.device_batch_check`, at the per-device
    batches of :data:`bnlib.reports.rules.SYNC_BATCHES`."""
    if check is None:
        return claim.missing(["the practice chapter's per-device batch check"])
    n = {k: {b: check["acc"][k][str(b)] for b in R.SYNC_BATCHES} for k in ("sync", "local")}
    return _judged(claim, n, lambda parts: "; ".join(
        f"{b} per device: SyncBN {100 * np.mean(n['sync'][b]):.1f}%, local BN {100 * np.mean(n['local'][b]):.1f}% "
        f"({_interval(p)})" for b, p in zip(R.SYNC_BATCHES, parts, strict=True)))


def best_rates(sweep: dict, base_lr: float) -> dict[bool, float]:
    """Each network's best learning-rate multiplier of a sweep (key: has BN), chosen on the mean validation
    accuracy over seeds."""
    labels = _sweep_labels(sweep, base_lr)
    return {bn: max((k for (b, k) in labels if b == bn), key=lambda k: np.mean(_accs(sweep, labels[(bn, k)], "val")))
            for bn in (False, True)}


def equal_rate_advantage(sweep: dict, base_lr: float) -> dict[float, Paired]:
    """At every multiplier both networks ran: BN minus no BN in final test accuracy, paired by seed."""
    labels = _sweep_labels(sweep, base_lr)
    return {k: paired(_accs(sweep, labels[(True, k)]), _accs(sweep, labels[(False, k)]))
            for (bn, k) in sorted(labels) if bn and (False, k) in labels}


def claim_bjorck(sweep: dict | None, base_lr: float, claim: Claim = R.BJORCK) -> dict:
    """"BN's benefit comes mainly from the larger learning rates it allows" (Bjorck et al.): each network's best
    rate on validation, and BN's advantage at equal rates against that at its own best rate."""
    if sweep is None:
        return claim.missing(["cifar_lr_sweep"])
    labels, best = _sweep_labels(sweep, base_lr), best_rates(sweep, base_lr)
    k_none, k_bn = best[False], best[True]
    n = {"k_none": k_none, "k_bn": k_bn, "bn_at_none": _accs(sweep, labels[(True, k_none)]),
         "none_at_none": _accs(sweep, labels[(False, k_none)]), "bn_at_bn": _accs(sweep, labels[(True, k_bn)])}
    eq = equal_rate_advantage(sweep, base_lr)
    same = ", ".join(f"{k:.3g}x {fmt_paired(p, digits=1)}" for k, p in eq.items())
    return _judged(claim, n, lambda p: f"best rates on validation: no BN {k_none:g}x, BN {k_bn:g}x; BN minus no BN at "
                                       f"equal rates: {same}")


# --------------------------------------------------------------------------- the geometry chapter's claims
def claim_explodes(growth: dict | None, claim: Claim = R.EXPLODES) -> dict:
    """"BN explodes gradients at initialization", from :func:`bnlib.geometry.ledger_measurements`'s ``"growth"``:
    per activation, the per-layer growth factors per seed with BN (``"bn"``) and without (``"none"``)."""
    if growth is None:
        return claim.missing(["the geometry chapter's gradient growth"])

    def describe(parts):
        return "; ".join(f"{act}: BN {np.mean(growth[act]['bn']):.2f}x per layer, no BN "
                         f"{np.mean(growth[act]['none']):.2f}x (difference {_interval(p, 1, '', 2)})"
                         for act, p in zip(("relu", "tanh"), parts, strict=True))
    return _judged(claim, growth, describe)


def claim_decay_is_lr(check: dict | None, claim: Claim = R.DECAY_IS_LR) -> dict:
    """"BN with weight decay is an exponentially increasing learning rate", from :func:`bnlib.geometry.exp_lr_check`
    (``check``) with its control's ``control_out_rel``."""
    if check is None:
        return claim.missing(["the geometry chapter's equivalence check"])
    bound = lambda x: power_bound(x, FLOOR)  # noqa: E731 - rounding over a run differs from one CPU to another
    return claim.judged(f"over {check['steps']} steps outputs agree to {bound(check['out_rel'])}, scaled weights to "
                        f"{bound(check['weight_rel'])} (relative); at the first's own rates "
                        f"{check['control_out_rel']:.1e}; "
                        f"the equivalent rate grows {check['lr_tilde'][-1] / check['lr'] / check['decay']:.3g}x",
                        dict(check))


def claim_decay_controls_lr(eq: dict | None, claim: Claim = R.DECAY_CONTROLS_LR) -> dict:
    """"Weight decay sets the effective learning rate", from :func:`bnlib.geometry.ledger_measurements`'s
    ``"equilibrium"`` (``ratios``: measured over predicted angle, per seed)."""
    if eq is None:
        return claim.missing(["the geometry chapter's equilibrium runs"])

    def describe(parts):
        x = parts[0]
        return (f"measured over predicted rotation per step {x['mean']:.2f} [{x['lo']:.2f}, {x['hi']:.2f}] "
                f"(prediction {eq['predicted']:.3g} rad)")
    return _judged(claim, eq, describe)


def claims_ledger(results: dict, checks: dict, cifar_base_lr: float) -> list[dict]:
    """Every row of the claims ledger, in the book's order (that of :data:`CLAIMS`).

    ``results`` maps experiment names to results (a missing name or None: not yet computed);
    ``checks`` holds ``"scale"`` (:func:`bnlib.identities.scale_invariance_check`) and ``"identity"``
    (:func:`bnlib.identities.identity_check`) and optionally ``"draws"`` (per seed, noisy BN's draws by layer, see
    :func:`bnlib.analysis.noisy_run_draws`), ``"geometry"`` (:func:`bnlib.geometry.ledger_measurements`; absent:
    its three rows are not tested), ``"adapt"`` (:func:`bnlib.practice.adaptation_check`) and ``"affine"``
    (:func:`bnlib.practice.affine_only_check`) and ``"device"`` (:func:`bnlib.practice.device_batch_check`; each
    absent: not tested);
    ``cifar_base_lr`` is the CIFAR-10 baseline learning rate of the sweep.
    """
    geo = checks.get("geometry") or {}
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
        claim_explodes(geo.get("growth")),
        claim_decay_is_lr(geo.get("decay")),
        claim_decay_controls_lr(geo.get("equilibrium")),
        claim_adapts(checks.get("adapt")),
        claim_affine(checks.get("affine")),
        claim_sync(checks.get("device")),
    ]


def verdict_counts(rows: list[dict]) -> dict[str, int]:
    """How many rows have each verdict (every verdict present, zero when unused)."""
    return {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}


def _where_md(where: tuple, docs: set[str]) -> str | None:
    doc, words, label = where
    if doc not in docs:
        return None
    if label:
        return f"{{ref}}`{words} <{label}>`" if words else f"{{ref}}`{label}`"
    return f"{{doc}}`{doc}`"


def ledger_markdown(rows: list[dict], docs: set[str] | Sequence[str]) -> str:
    """The ledger as MyST markdown (for ``glue:md`` with ``:format: myst``): a numbered list with one block
    per claim, so that it reads on a phone as well as on a wide screen (a six-column table did not). Each
    block gives the claim in bold, then its source (citations), where it is tested (cross-references into
    the chapters in ``docs``; places in other chapters are left out), what was measured and the verdict
    in bold. The numbers are those of the rules (:func:`rules_markdown`)."""
    docs = set(docs)
    blocks = []
    for n, r in enumerate(rows, 1):
        src = "; ".join([f"{{cite:p}}`{k}`" for k in r["sources"]] + ([r["source_note"]] if r["source_note"] else [])) \
            or "–"
        where = "; ".join(w for w in (_where_md(w, docs) for w in r["where"]) if w) or "–"
        pad = " " * (len(f"{n}. "))  # a sub-list sits under its item's text: 3 spaces after "9. ", 4 after "10. "
        blocks.append("\n".join([f"{n}. **{r['claim']}**", f"{pad}- source: {src}", f"{pad}- tested in: {where}",
                                 f"{pad}- measured here: {r['measured']}", f"{pad}- verdict: **{r['verdict']}**"]))
    return "\n\n".join(blocks)


def ledger_table(rows: list[dict]) -> Table:
    """The ledger as a plain :class:`Table` (number, claim, verdict): the text nbval compares."""
    return Table(["#", "claim", "verdict"], [[n, r["claim"], r["verdict"]] for n, r in enumerate(rows, 1)])


def rules_markdown(rows: list[dict]) -> str:
    """Every row's verdict rule as a numbered markdown list, in the ledger's order."""
    return "\n".join(f"{n}. **{r['claim']}.** {r['rule']}" for n, r in enumerate(rows, 1))


# --------------------------------------------------------------------------- what book/claims.ipynb glues
def ledger_numbers(rows: list[dict], docs: set[str] | Sequence[str]) -> dict[str, Glued]:
    """The ledger's section of the claims chapter: the number of claims, the count of each verdict, the ledger and
    its rules (markdown, cross-referencing the chapters in ``docs``) and each row's verdict (``claims_v_<key>``)."""
    out = {"claims_n": number(len(rows))}
    counts = verdict_counts(rows)
    out |= {"claims_n_" + v.replace(" ", "_"): number(n) for v, n in counts.items()}
    out["claims_n_empirical"] = number(sum(counts[v] for v in R.EMPIRICAL))
    out |= {"claims_ledger": md(ledger_markdown(rows, docs)), "claims_rules": md(rules_markdown(rows))}
    return out | {f"claims_v_{r['key']}": text(r["verdict"]) for r in rows}


def overhead_numbers(overhead: dict) -> dict[str, Glued]:
    """The claims chapter's timing section from :func:`step_overhead`: the number of pairs and, if there are any,
    the median overhead, the share of pairs in which BN was slower, and the median and count per model and BN."""
    out = {"claims_n_pairs": number(len(overhead["pairs"]))}
    if overhead["median_overhead_all"] is None:
        return out
    out |= {"claims_overhead": number(100 * overhead["median_overhead_all"], 2),
            "claims_slower": number(100 * overhead["slower_fraction"], 2)}
    for (model, norm), v in overhead["median_overhead"].items():
        out[f"claims_overhead_{model}_{norm}"] = number(100 * v, 2)
        out[f"claims_n_pairs_{model}_{norm}"] = number(overhead["count"][(model, norm)])
    return out


def pair_table(overhead: dict) -> Table:
    """The timed pairs of :func:`step_overhead` by network and experiment: how many pairs, and the median,
    smallest and largest ratio of the time per step, BN / none."""
    groups: dict = {}
    for p in overhead["pairs"]:
        groups.setdefault((p["model"], p["experiment"]), []).append(p["ratio"])
    rows = [[exp, model.upper(), len(v), float(np.median(v)), min(v), max(v)]
            for (model, exp), v in sorted(groups.items())]
    return Table(["experiment", "network", "pairs", "median BN / none", "smallest", "largest"], rows,
                 [None, None, None, ".2f", ".2f", ".2f"])
