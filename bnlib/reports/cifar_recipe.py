"""Numbers of the CIFAR-10 chapter's recipe section (book/cifar.ipynb): the paper's four changes for accelerating a
BN network (Sec. 4.2.1) as an ablation. Each change is added alone to a BN network trained with the baseline's
regularization; all four together make the full recipe; each is left out of the full recipe in turn.

Labels, as :func:`bnlib.experiments.recipe_configs` names them: ``none-baseline``, ``bn-baseline``, ``bn+<c>``,
``bn+all`` and ``bn+all-<c>`` for each change ``c`` of :data:`bnlib.reports.rules.RECIPE_WORDS`. Accuracies are
final ones with population statistics (:func:`bnlib.reports.cifar.acc`); the target of the steps column is the
no-BN baseline's best validation accuracy; steps are interpolated between records.
"""

from __future__ import annotations

import numpy as np

from bnlib.reports.cifar import (
    _HLL,
    _claim,
    _steps_cell,
    best_val,
    curve_band,
    direction,
    fmt_acc,
    fmt_ratio_interval,
    groups,
    phrase,
    steps_to_accuracy,
)
from bnlib.reports.evidence import one_sample, paired
from bnlib.reports.format import Glued, Table, fmt_paired, md, number, percent, text
from bnlib.reports.rules import RECIPE_WORDS

BASELINE, BN, FULL = "none-baseline", "bn-baseline", "bn+all"
#: The changes as the tables name them.
SHORT = {"lr": "learning rate ×5", "nodrop": "no dropout", "l2": "L2 ÷ 5", "decay": "decay 6× faster"}
#: What a paired difference of accuracies means for a change, by :func:`bnlib.reports.cifar.direction`.
EFFECT = {"higher": "helps", "lower": "hurts", "level": "no effect", "inconclusive": "inconclusive"}


def recipe_labels() -> list[str]:
    """The ablation's labels in the tables' order."""
    return [BASELINE, BN, *(f"bn+{c}" for c in RECIPE_WORDS), FULL, *(f"bn+all-{c}" for c in RECIPE_WORDS)]


def recipe_name(label: str) -> str:
    """A label as Table 4 shows it: "no BN (baseline)", "BN + no dropout", "full recipe", "full recipe but L2 ÷ 5"."""
    names = {BASELINE: "no BN (baseline)", BN: "BN (baseline)", FULL: "full recipe"}
    if label in names:
        return names[label]
    for c, short in SHORT.items():
        if label == f"bn+{c}":
            return f"BN + {short}"
        if label == f"bn+all-{c}":
            return f"full recipe but {short}"
    raise ValueError(f"{label!r} is not a label of the recipe; expected one of {', '.join(recipe_labels())}.")


def recipe_rows(runs: dict) -> tuple[float, list[dict]]:
    """``(target, rows)``: :func:`bnlib.reports.cifar.steps_to_accuracy` against the no-BN baseline (steps
    interpolated), one row per label of :func:`recipe_labels`, each with its ``name``."""
    missing = [lab for lab in recipe_labels() if lab not in groups(runs)]
    if missing:
        raise ValueError(f"the recipe's runs lack {', '.join(missing)}; expected the labels of recipe_labels().")
    target, rows = steps_to_accuracy(runs, BASELINE, recipe_labels(), interpolate=True)
    for r in rows:
        r["name"] = recipe_name(r["label"])
    return target, rows


def recipe_effects(rows: list[dict]) -> list[dict]:
    """Per change: ``added`` (BN with the change minus BN) and ``dropped`` (the full recipe minus the recipe without
    it), paired differences of final test accuracy, with their :data:`EFFECT` words."""
    by = {r["label"]: r for r in rows}
    out = []
    for c in RECIPE_WORDS:
        added = paired(by[f"bn+{c}"]["test"], by[BN]["test"])
        dropped = paired(by[FULL]["test"], by[f"bn+all-{c}"]["test"])
        out.append({"change": c, "name": SHORT[c], "added": added, "dropped": dropped,
                    "added_effect": EFFECT[direction(added)], "dropped_effect": EFFECT[direction(dropped)]})
    return out


def recipe_table(rows: list[dict]) -> Table:
    """Table 4: every network of the ablation (rows from :func:`recipe_rows`)."""
    return Table(["network", "steps to target (median)", "speed-up", "val. acc. (%)", "test acc. (%)",
                  "eval mode (%)"],
                 [[r["name"], _steps_cell(r), fmt_ratio_interval(None if r["baseline"] else r["speedup"]),
                   fmt_acc(r["val"]), fmt_acc(r["test"]), fmt_acc(r["eval"]) if r["norm"] else "(same)"]
                  for r in rows])


def effects_table(effects: list[dict]) -> Table:
    """Table 5: each change's effect on the final test accuracy, added alone to BN and left out of the full recipe
    (points, paired by seed; rows from :func:`recipe_effects`)."""
    return Table(["change", "added to BN", "", "left out of the full recipe", ""],
                 [[e["name"], fmt_paired(e["added"]), e["added_effect"], fmt_paired(e["dropped"]),
                   e["dropped_effect"]] for e in effects])


def recipe_bands(runs: dict) -> dict:
    """For the recipe figure: per label of :func:`recipe_labels`, the validation accuracy band (population
    statistics for BN), under its :func:`recipe_name`."""
    g = groups(runs)
    return {recipe_name(lab): curve_band(g[lab]) for lab in recipe_labels()}


def _changes(effects: list[dict], key: str, effect: str) -> str:
    names = [e["name"] for e in effects if e[f"{key}_effect"] == effect]
    if not names:
        return "none"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def recipe_numbers(runs: dict, sweep_runs: dict, recipe_base: dict, final_lr: float,
                   plain: str = "none-x1") -> dict[str, Glued]:
    """The recipe section's numbers: the starting point's settings (``recipe_base``, a configuration as a dict) and
    the target; what the regularization costs the network without BN (its best validation accuracy against the
    sweep's network ``plain``, the same one without dropout, weight decay and decay, in the same setting); BN's and
    the full recipe's speed-ups and accuracies; which changes help added alone and left out; the eval-mode gap with
    and without the fast decay; ``final_lr``: the full recipe's learning rate at its last step."""
    target, rows = recipe_rows(runs)
    by = {r["label"]: r for r in rows}
    effects = recipe_effects(rows)
    g = groups(runs)
    plain_best = [best_val(r) for r in groups(sweep_runs)[plain]]
    reg = paired([best_val(r) for r in g[BASELINE]], plain_best)
    out = {
        "cifar_recipe_target": percent(target),
        "cifar_recipe_plain_target": percent(np.mean(plain_best)),
        "cifar_recipe_reg": md(phrase(reg, "higher", "lower", "level")),
        **{f"cifar_recipe_{k}": number(recipe_base[f]) for k, f in (
            ("dropout", "dropout"), ("l2", "weight_decay"), ("decay", "lr_decay"), ("decay_every", "lr_decay_every"))},
        "cifar_recipe_final_lr": number(final_lr),
        "cifar_recipe_fast_every": number(g[FULL][0]["config"]["lr_decay_every"]),
        "cifar_recipe_lr": number(g[FULL][0]["config"]["lr"]),
    }
    for key, lab in (("none", BASELINE), ("bn", BN), ("full", FULL)):
        r = by[lab]
        out[f"cifar_recipe_{key}_test"] = percent(np.mean(r["test"]))
        out[f"cifar_recipe_{key}_steps"] = text(_steps_cell(r))
        if key != "none":
            out[f"cifar_recipe_{key}_speedup"] = md(fmt_ratio_interval(r["speedup"]))
    out["cifar_recipe_bn_vs_none"] = md(phrase(paired(by[BN]["test"], by[BASELINE]["test"]), *_HLL))
    for key in ("none", "bn"):
        out[f"cifar_recipe_full_vs_{key}"] = md(phrase(paired(by[FULL]["test"], by[BASELINE if key == "none" else BN]
                                                              ["test"]), *_HLL))
    for key in ("added", "dropped"):
        for effect in ("helps", "hurts", "no effect"):
            out[f"cifar_recipe_{key}_{effect.replace(' ', '_')}"] = text(_changes(effects, key, effect))
    top = max(rows, key=lambda r: np.mean(r["val"]))
    out["cifar_recipe_top"] = text(top["name"])
    out["cifar_recipe_top_val"] = percent(np.mean(top["val"]))
    out["cifar_recipe_top_test"] = percent(np.mean(top["test"]))
    gap = {lab: [a - b for a, b in zip(by[lab]["test"], by[lab]["eval"], strict=True)] for lab in (BN, FULL,
                                                                                                  "bn+all-decay")}
    out["cifar_recipe_gap_bn"] = md(fmt_paired(one_sample(gap[BN])))
    out["cifar_recipe_gap_full"] = md(fmt_paired(one_sample(gap[FULL])))
    out["cifar_recipe_gap_slow"] = md(fmt_paired(one_sample(gap["bn+all-decay"])))
    out["cifar_recipe_gap_change"] = md(phrase(paired(gap[FULL], gap["bn+all-decay"]), "larger", "smaller",
                                               "about the same", "not clearly different"))
    _claim(g[top["label"]][0]["config"]["lr_decay_every"] != g[FULL][0]["config"]["lr_decay_every"],
           "the prose says the network best on validation is one without the fast decay, which no longer holds.")
    _claim(direction(paired(by[FULL]["test"], by[BASELINE]["test"])) == "higher",
           "the prose says the full recipe ends above the network without BN, which no longer holds.")
    return out
