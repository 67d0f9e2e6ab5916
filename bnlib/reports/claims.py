"""The ledger of classic claims about BN (book/claims.ipynb): one function per claim measures its numbers from
committed results and returns a row whose verdict the claim's rule (:mod:`bnlib.reports.rules`) decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from bnlib.reports import rules as R
from bnlib.reports.cifar import ablation, depth_saturation, lr_sweep, max_tolerated_multiplier, steps_to_accuracy
from bnlib.reports.format import Glued, Table, fmt_pct, fmt_ratio, md, number, text
from bnlib.reports.mnist import mnist_init_sweep, mnist_sigma_range, mnist_speedup
from bnlib.reports.train_test import batch_size_grid, fold_summary, regularizer_grid, regularizer_row
from bnlib.reports.why import early_train_loss, ics_summary, landscape_summary, why_shift
from bnlib.results import final_metric, run_of

#: The verdicts and the record of a claim, from :mod:`bnlib.reports.rules`.
SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED, VERDICTS = R.SUPPORTED, R.NOT_SUPPORTED, R.MIXED, R.NOT_TESTED, R.VERDICTS
Claim, CLAIMS, _row = R.Claim, R.CLAIMS, R._row


def _pts(x: float) -> str:
    """A difference of accuracies in percentage points, signed: 0.0123 -> "+1.2 points"."""
    return f"{100 * x:+.1f} points"


def _times(k: float) -> str:
    return f"{k:g}×" if k else "not even 1×"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def claim_higher_lr(sweep: dict | None, base_lr: float, claim: Claim = R.HIGHER_LR) -> dict:
    """"BN allows much higher learning rates", from the CIFAR-10 learning-rate sweep around ``base_lr``."""
    if sweep is None:
        return claim.missing(["cifar_lr_sweep"])
    rows = lr_sweep(sweep["runs"], base_lr)
    ones = [r for r in rows if r["norm"] is None and r["multiplier"] == 1]
    if not ones:
        raise ValueError(f"the sweep has no run without BN at the base learning rate {base_lr}.")
    ref = ones[0]["final_acc"]
    if ref is None:
        return claim.row(MIXED, "the network without BN diverges at the baseline rate: no reference accuracy")
    threshold = ref - claim.margins["drop"]
    norms = sorted({r["norm"] for r in rows if r["norm"] is not None})
    k_bn = max(max_tolerated_multiplier(rows, n, threshold) or 0.0 for n in norms)
    k_none = max_tolerated_multiplier(rows, None, threshold) or 0.0
    return claim.judged(f"trains up to {_times(k_bn)} the baseline rate with BN, up to {_times(k_none)} without "
                        f"(threshold {fmt_pct(threshold)})", {"k_bn": k_bn, "k_none": k_none, "threshold": threshold})


def claim_init(sweep: dict | None, claim: Claim = R.INIT) -> dict:
    """"With BN one can be less careful about initialization", from the MNIST init-scale sweep."""
    if sweep is None:
        return claim.missing(["mnist_init_sweep"])
    grid = mnist_init_sweep(sweep)
    within = claim.margins["within"]
    bn, none = (mnist_sigma_range(grid, n, within) for n in ("BN", "none"))
    return claim.judged(f"within {R.Margin(within):pts} of its best for sigma from {bn['lo']:g} to {bn['hi']:g} "
                        f"with BN ({bn['decades']:.1f} decades), {none['lo']:g} to {none['hi']:g} without "
                        f"({none['decades']:.1f})", {"bn": bn, "none": none})


def claim_regularizer(reg: dict | None, claim: Claim = R.REGULARIZER) -> dict:
    """"BN regularizes and reduces the need for dropout", from the train/test chapter's regularizer runs."""
    if reg is None:
        return claim.missing(["tt_regularizer"])
    rows = regularizer_grid(reg)
    p = max(r["dropout"] for r in rows)
    bn0, none0, nonep = (regularizer_row(rows, "BN", 0.0), regularizer_row(rows, "none", 0.0),
                         regularizer_row(rows, "none", p))
    if None in (bn0["acc_gap"], none0["acc_gap"], bn0["test_acc"], nonep["test_acc"]):
        return claim.row(MIXED, "a run diverged: no comparison")
    return claim.judged(f"train-test gap {fmt_pct(bn0['acc_gap'], 2)} with BN vs {fmt_pct(none0['acc_gap'], 2)} "
                        f"without; test accuracy of BN without dropout {fmt_pct(bn0['test_acc'], 2)} vs no BN with "
                        f"dropout {p:g}: {fmt_pct(nonep['test_acc'], 2)}",
                        {"gap_bn": bn0["acc_gap"], "gap_none": none0["acc_gap"], "test_bn": bn0["test_acc"],
                         "test_none_dropout": nonep["test_acc"], "dropout": p})


def claim_saturating(depth: dict | None, claim: Claim = R.SATURATING) -> dict:
    """"BN makes saturating nonlinearities trainable", from the CIFAR-10 sigmoid depth experiment."""
    if depth is None:
        return claim.missing(["cifar_sigmoid_depth"])
    rows = depth_saturation(depth["runs"])
    d = max(r["depth"] for r in rows)
    bn = [r for r in rows if r["depth"] == d and r["norm"] is not None][0]
    none = [r for r in rows if r["depth"] == d and r["norm"] is None][0]
    return claim.judged(f"depth {d}: test accuracy {fmt_pct(bn['final_acc'])} with BN vs {fmt_pct(none['final_acc'])} "
                        f"without; saturated inputs {fmt_pct(bn['sat_final_mean'])} vs "
                        f"{fmt_pct(none['sat_final_mean'])}",
                        {"depth": d, "acc_bn": bn["final_acc"], "acc_none": none["final_acc"],
                         "sat_bn": bn["sat_final_mean"], "sat_none": none["sat_final_mean"]})


def claim_reduces_ics(landscape: dict | None, claim: Claim = R.REDUCES_ICS) -> dict:
    """"BN reduces internal covariate shift", measured with Santurkar et al.'s definition."""
    if landscape is None:
        return claim.missing(["why_landscape"])
    bn, none = ics_summary(run_of(landscape, "bn")), ics_summary(run_of(landscape, "none"))
    return claim.judged(f"median l2 change {bn['median_l2_all']:.3g} with BN vs {none['median_l2_all']:.3g} without; "
                        f"median cosine {bn['median_cos_all']:.3f} vs {none['median_cos_all']:.3f}",
                        {"l2_bn": bn["median_l2_all"], "l2_none": none["median_l2_all"],
                         "cos_bn": bn["median_cos_all"], "cos_none": none["median_cos_all"]})


def claim_ics_is_why(noisy: dict | None, draws: dict | None = None, claim: Claim = R.ICS_IS_WHY) -> dict:
    """"BN helps because it reduces internal covariate shift", tested with Santurkar et al.'s noisy BN."""
    if noisy is None:
        return claim.missing(["why_noisy"])
    runs = {k: run_of(noisy, k) for k in ("none", "bn", "noisy")}
    early = {k: early_train_loss(r) for k, r in runs.items()}
    acc = {k: final_metric(r, "final_test_acc") for k, r in runs.items()}
    shifts = why_shift({"runs": {k: runs[k] for k in ("none", "noisy")}}, draws)
    shift = {k: v["relative"] for k, v in shifts.items()}
    kept = {}
    if None not in early.values() and early["bn"] < early["none"]:
        kept["early speed"] = (early["none"] - early["noisy"]) / (early["none"] - early["bn"])
    if None not in acc.values() and acc["bn"] > acc["none"]:
        kept["test accuracy"] = (acc["noisy"] - acc["none"]) / (acc["bn"] - acc["none"])
    measured = (f"first-interval training loss {_num(early['noisy'])} with noisy BN, {_num(early['bn'])} with BN, "
                f"{_num(early['none'])} without; final test accuracy {fmt_pct(acc['noisy'], 2)}, "
                f"{fmt_pct(acc['bn'], 2)}, {fmt_pct(acc['none'], 2)}; noisy BN keeps "
                + (", ".join(f"{100 * v:.0f}% of BN's {k} advantage" for k, v in kept.items()) or "nothing to keep")
                + f"; shift {shift['noisy']:.2f} spreads vs {shift['none']:.2f} without BN")
    return claim.judged(measured, {"early": early, "acc": acc, "shift": shift, "kept": kept})


def claim_accelerates(fig1: dict | None, recipe: dict | None, claim: Claim = R.ACCELERATES) -> dict:
    """"BN accelerates training (14× fewer steps in the paper)", from MNIST Figure 1 and the CIFAR recipe."""
    if fig1 is None and recipe is None:
        return claim.missing(["mnist_fig1", "cifar_recipe"])
    speed: dict = {}
    if fig1 is not None:
        speed["MNIST, BN"] = mnist_speedup(fig1)["speedup"]
    if recipe is not None:
        _, rows = steps_to_accuracy(recipe["runs"], "none-baseline")
        by = {r["label"]: r["speedup"] for r in rows}
        speed["CIFAR-10, BN"] = by.get("bn-baseline")
        speed["CIFAR-10, recipe"] = by[rows[-1]["label"]]
    measured = "; ".join(f"{k}: {fmt_ratio(v) if v else 'never'}" for k, v in speed.items())
    missing = [n for n, r in (("mnist_fig1", fig1), ("cifar_recipe", recipe)) if r is None]
    if missing:
        measured += f" ({', '.join(missing)} not yet computed)"
    return claim.judged(measured + " (paper: 14× on ImageNet)", {"speedups": speed})


def accelerates_exercise(row: dict) -> dict[str, Glued]:
    """The claims chapter's threshold exercise: the smallest and largest speed-up of the "accelerates" row (a
    setting that never reaches the target counts as 0) and the verdict at :data:`ACCELERATES_ALT_SPEEDUP`."""
    vals = [v or 0.0 for v in row["numbers"].get("speedups", {}).values()]
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
    """"At inference BN is a linear transform that can be folded into the layer before it"."""
    if pop is None:
        return claim.missing(["tt_population"])
    f = fold_summary(run_of(pop, "bn"))
    return claim.judged(f"same predictions on {fmt_pct(f['same_predictions'], 2)} of the test images, outputs "
                        f"within {f['max_abs_diff']:.1e}",
                        {"same_predictions": f["same_predictions"], "max_abs_diff": f["max_abs_diff"]})


def claim_small_batches(bs: dict | None, claim: Claim = R.SMALL_BATCHES) -> dict:
    """"BN works poorly with small batches", from the train/test chapter's batch-size sweep."""
    if bs is None:
        return claim.missing(["tt_batch_size"])
    grid = batch_size_grid(bs)
    b0 = grid["sizes"][0]
    bn = grid["acc"]["BN"]
    best = max(v for v in bn.values() if v is not None)
    at = bn.get(b0)
    others = {n: grid["acc"][n].get(b0) for n in ("Layer Norm", "Group Norm") if n in grid["acc"]}
    best_other = max((v for v in others.values() if v is not None), default=None)
    other_txt = "" if best_other is None else f"; best of Layer/Group Norm there {fmt_pct(best_other, 2)}"
    return claim.judged(f"batch {b0}: BN {fmt_pct(at, 2)} vs its best {fmt_pct(best, 2)}{other_txt}",
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


def claim_overhead(overhead: dict, claim: Claim = R.OVERHEAD) -> dict:
    """"Adding BN slows each step (about 30%)", from :func:`step_overhead` over the committed results."""
    med = overhead["median_overhead_all"]
    if med is None:
        return claim.row(NOT_TESTED, "no pair of committed runs differing only in BN")
    slower = overhead.get("slower_fraction", 1.0)
    kinds = {"mlp": "MNIST MLP", "cnn": "CIFAR CNN"}
    parts = [f"{kinds.get(m, m)} with {'torch' if n == 'torch' else 'bnlib'} BN {100 * v:+.0f}% "
             f"({overhead['count'][(m, n)]} pairs)" for (m, n), v in sorted(overhead["median_overhead"].items())]
    return claim.judged(f"median {100 * med:+.0f}% per step: " + ", ".join(parts)
                        + f"; BN slower in {100 * slower:.0f}% of the pairs",
                        {"median": med, "slower": slower,
                         "by_kind": {f"{m}/{n}": v for (m, n), v in overhead["median_overhead"].items()}})


def claim_smooths(landscape: dict | None, claim: Claim = R.SMOOTHS) -> dict:
    """"BN smooths the loss landscape" (Santurkar et al.), from the landscape recorder."""
    if landscape is None:
        return claim.missing(["why_landscape"])
    bn, none = landscape_summary(run_of(landscape, "bn")), landscape_summary(run_of(landscape, "none"))
    return claim.judged(f"with BN vs without: loss range {bn['median_loss_range']:.3g} vs "
                        f"{none['median_loss_range']:.3g}, gradient change {bn['median_gc_max']:.3g} vs "
                        f"{none['median_gc_max']:.3g}, beta {bn['median_beta']:.3g} vs {none['median_beta']:.3g}",
                        {k + "_bn": bn[k] for k in R.LANDSCAPE_KEYS} | {k + "_none": none[k] for k in R.LANDSCAPE_KEYS})


def claim_lp_smooth(landscape: dict | None, claim: Claim = R.LP_SMOOTH) -> dict:
    """"l_p normalizations smooth the landscape as well" (Santurkar et al.), from the landscape runs with
    l_1 and l_inf normalization (``why_landscape``)."""
    if landscape is None:
        return claim.missing(["why_landscape"])
    summ = {lab: landscape_summary(run_of(landscape, lab)) for lab in ("none", "bn", *R.LP_NORMS)}
    wins = {lab: sum(summ[lab][k] < summ["none"][k] for k in R.LANDSCAPE_KEYS) for lab in ("bn", *R.LP_NORMS)}
    names = {"bn": "BN", "l1": "l_1", "linf": "l_inf"}
    measured = "; ".join(f"{names[lab]}: {wins[lab]} of {len(R.LANDSCAPE_KEYS)} (beta {summ[lab]['median_beta']:.3g})"
                         for lab in ("bn", *R.LP_NORMS))
    return claim.judged(f"measures smoother than no BN (beta {summ['none']['median_beta']:.3g}): {measured}",
                        {"wins": wins} | {f"{k}_{lab}": summ[lab][k] for lab in summ for k in R.LANDSCAPE_KEYS})


def claim_recipe(recipe: dict | None, claim: Claim = R.RECIPE) -> dict:
    """"Each step of the paper's acceleration recipe helps", from the CIFAR-10 ablation."""
    if recipe is None:
        return claim.missing(["cifar_recipe"])
    _, rows = ablation(recipe["runs"], "none-baseline")
    start = next(i for i, r in enumerate(rows) if r["norm"] is not None)
    helps = {}
    for prev, cur in zip(rows[start:], rows[start + 1:], strict=False):
        ps, cs = (math.inf if r["steps"] is None else r["steps"] for r in (prev, cur))
        pa, ca = prev["final_acc"] or 0.0, cur["final_acc"] or 0.0
        helps[cur["change"] or cur["label"]] = cs < ps or (cs == ps and ca > pa)
    return claim.judged("; ".join(f"{k}: {'helps' if v else 'does not help'}" for k, v in helps.items()),
                        {"helps": helps})


def claim_bjorck(sweep: dict | None, base_lr: float, claim: Claim = R.BJORCK) -> dict:
    """"BN's benefit comes mainly from the larger learning rates it allows" (Bjorck et al.)."""
    if sweep is None:
        return claim.missing(["cifar_lr_sweep"])
    rows = lr_sweep(sweep["runs"], base_lr)
    none = {r["multiplier"]: r["final_acc"] for r in rows if r["norm"] is None and r["final_acc"] is not None}
    bn = {r["multiplier"]: r["final_acc"] for r in rows if r["norm"] is not None and r["final_acc"] is not None}
    if not none or not bn:
        return claim.row(MIXED, "every run of one of the networks diverged: no comparison")
    k_star = max(none, key=none.get)
    total = max(bn.values()) - none[k_star]
    same = (bn.get(k_star) or 0.0) - none[k_star]
    return claim.judged(f"BN's advantage {_pts(total)}; at no-BN's best rate ({k_star:g}×) {_pts(same)}",
                        {"advantage": total, "at_same_rate": same, "k_none": k_star})


def claims_ledger(results: dict, checks: dict, cifar_base_lr: float) -> list[dict]:
    """Every row of the claims ledger, in the book's order (that of :data:`CLAIMS`).

    ``results`` maps experiment names to results (a missing name or None: not yet computed);
    ``checks`` holds ``"scale"`` (:func:`bnlib.identities.scale_invariance_check`) and ``"identity"``
    (:func:`bnlib.identities.identity_check`) and optionally ``"draws"`` (noisy BN's draws by layer, see
    :func:`bnlib.reports.why.as_trained`); ``cifar_base_lr`` is the CIFAR-10 baseline learning rate of the sweep.
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
    """The ledger as MyST markdown (for ``glue:md`` with ``:format: myst``): a numbered list with one block
    per claim, so that it reads on a phone as well as on a wide screen (a six-column table did not). Each
    block gives the claim in bold, then its source (citations), where it is tested (cross-references into
    the chapters in ``docs``; places in other chapters are left out), what was measured and the verdict
    in bold. The numbers are those of the rules (:func:`rules_markdown`)."""
    docs = set(docs)
    blocks = []
    for n, r in enumerate(rows, 1):
        src = "; ".join(f"{{cite:p}}`{k}`" for k in r["sources"]) or r["source_note"] or "–"
        where = "; ".join(w for w in (_where_md(w, docs) for w in r["where"]) if w) or "–"
        blocks.append("\n".join([f"{n}. **{r['claim']}**", f"   - source: {src}", f"   - tested in: {where}",
                                 f"   - measured here: {r['measured']}", f"   - verdict: **{r['verdict']}**"]))
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
    out |= {"claims_n_" + v.replace(" ", "_"): number(n) for v, n in verdict_counts(rows).items()}
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
    """Every timed pair of :func:`step_overhead`, by network, experiment and run: the ratio of the time per step."""
    pairs = sorted(overhead["pairs"], key=lambda p: (p["model"], p["experiment"], p["bn"]))
    return Table(["experiment", "run with BN", "run without", "network", "time per step, BN / none"],
                 [[p["experiment"], p["bn"], p["none"], p["model"].upper(), p["ratio"]] for p in pairs],
                 [None, None, None, None, ".2f"])

