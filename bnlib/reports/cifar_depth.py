"""Numbers of the CIFAR-10 chapter's depth section at ten epochs (book/cifar.ipynb): sigmoid CNNs of several depths,
BN at the baseline's rate against the network without BN at each rate of a small grid (and at its best rate on
validation, depth by depth), and the controls a referee asks for: no BN with an initialization gain suited to the
sigmoid, a ReLU network without BN, and BN-x5 at the deepest.

Labels, as :func:`bnlib.experiments.depth_configs` names them: ``bn-depth{d}``, ``none-x{k}-depth{d}``,
``none-sigmoidinit-depth{d}``, ``relu-depth{d}``, ``bn-x5-depth{d}``. Rows come from
:func:`bnlib.reports.cifar.run_stats` (BN scored with population statistics; choices on validation).
"""

from __future__ import annotations

import math

import numpy as np

from bnlib.reports.cifar import (
    _HLL,
    CHANCE_BELOW,
    _claim,
    acc,
    best_val,
    curve_band,
    fmt_acc,
    gradient_ratio,
    gradient_ratios,
    gradient_spread,
    groups,
    layer_bands,
    phrase,
    run_stats,
)
from bnlib.reports.evidence import Paired, mean_interval, paired
from bnlib.reports.format import Glued, Table, fmt_paired, md, number, percent, text
from bnlib.results import curve, seed_groups

#: The depth experiment's kinds of network, as its labels name them (``bn-depth{d}``, ``none-x{k}-depth{d}``,
#: ``none-sigmoidinit-depth{d}``, ``relu-depth{d}``, ``bn-x5-depth{d}``), with the names the tables use.
DEPTH_KINDS = {"bn": "BN-x1", "none": "no BN", "sigmoidinit": "no BN, init gain 4", "relu": "ReLU, no BN",
               "bn-x5": "BN-x5"}


def depth_kind(label: str) -> tuple[str, float | None]:
    """``(kind, multiplier)`` of a depth label: ``("none", 5.0)`` for ``none-x5-depth10``, ``("relu", None)``."""
    head = label.rsplit("-depth", 1)[0]
    if head.startswith("none-x"):
        return "none", float(head.removeprefix("none-x"))
    if head == "none-sigmoidinit":
        return "sigmoidinit", None
    if head in DEPTH_KINDS:
        return head, None
    raise ValueError(f"{label!r} is not a label of the depth experiment; expected e.g. bn-depth4, none-x5-depth4, "
                     "none-sigmoidinit-depth4, relu-depth4 or bn-x5-depth10.")


def depth_saturation(runs: dict) -> list[dict]:
    """One row per label of the depth experiment: :func:`bnlib.reports.cifar.run_stats` plus ``label``, ``depth``,
    the ``kind`` and ``multiplier`` of the label (:func:`depth_kind`), its ``name`` as the tables show it, and the
    saturated fraction of every hidden layer at the first and the last record (``sat_init``, ``sat_final``: seed
    means per layer; ``*_mean``: over layers too; ``*_max``: per layer, the largest over seeds; ``sat_worst``: the
    largest over layers and seeds at the end)."""
    rows = []
    for lab, group in groups(runs).items():
        kind, k = depth_kind(lab)
        row = {"label": lab, "depth": group[0]["config"]["depth"], **run_stats(group), "kind": kind, "multiplier": k,
               "name": f"no BN-x{k:g}" if kind == "none" else DEPTH_KINDS[kind]}
        for key, idx in (("sat_init", 0), ("sat_final", -1)):
            per_seed = np.array([curve(r, "saturated")[idx] for r in group], dtype=float)
            row[key] = per_seed.mean(axis=0).tolist()
            row[key + "_mean"] = float(per_seed.mean())
            row[key + "_max"] = per_seed.max(axis=0).tolist()
        row["sat_worst"] = max(row["sat_final_max"])
        rows.append(row)
    return rows


def depth_roles(rows: list[dict]) -> dict[int, dict]:
    """Per depth: ``bn`` (BN at the baseline's rate), ``none`` (no BN by multiplier), ``best_none`` (no BN at its
    best rate on validation at that depth: the mean final validation accuracy over seeds), and the controls present
    (``sigmoidinit``, ``relu``, ``bn-x5``)."""
    out: dict[int, dict] = {}
    for r in rows:
        d = out.setdefault(r["depth"], {"none": {}})
        if r["kind"] == "none":
            d["none"][r["multiplier"]] = r
        else:
            d[r["kind"]] = r
    for d, roles in out.items():
        roles["none"] = dict(sorted(roles["none"].items()))
        if "bn" not in roles or not roles["none"]:
            raise ValueError(f"depth {d} needs BN at the baseline's rate and no BN at one rate at least.")
        roles["best_none"] = max(roles["none"].values(), key=lambda r: np.mean(r["val"]))
    return dict(sorted(out.items()))


def _vs(a: dict, b: dict) -> Paired:
    """``a`` minus ``b`` in final test accuracy, paired on the seeds both have."""
    n = min(a["seeds"], b["seeds"])
    return paired(a["test"][:n], b["test"][:n])


def depth_table(rows: list[dict]) -> Table:
    """Table 1: per depth, BN at the baseline's rate and no BN at every rate of the grid (its best rate on
    validation marked "best"); accuracies in %, seed mean ± half-width; BN minus each in final test accuracy."""
    cells = []
    for d, roles in depth_roles(rows).items():
        for r in [roles["bn"], *roles["none"].values()]:
            best = " (best)" if r is roles["best_none"] else ""
            cells.append([d, r["name"] + best, fmt_acc(r["val"]), fmt_acc(r["test"]),
                          fmt_acc(r["eval"]) if r["norm"] else "(same)",
                          "" if r is roles["bn"] else fmt_paired(_vs(roles["bn"], r)),
                          f"{100 * r['sat_final_mean']:.1f}", f"{100 * r['sat_worst']:.1f}"])
    return Table(["conv layers", "network", "val. acc. (%)", "test acc. (%)", "eval mode (%)", "BN-x1 - this (test)",
                  "saturated, mean (%)", "saturated, worst (%)"], cells)


def controls_table(rows: list[dict]) -> Table:
    """Table 1b: the controls at each depth (no BN with an init gain of 4, a ReLU network without BN, and BN-x5 at
    the deepest), beside BN-x1 and no BN at its best rate; BN-x1 minus each in final test accuracy, paired."""
    cells = []
    for d, roles in depth_roles(rows).items():
        for key in ("best_none", "sigmoidinit", "relu", "bn-x5"):
            if key not in roles:
                continue
            r = roles[key]
            name = r["name"] + (" (best rate)" if key == "best_none" else "")
            cells.append([d, name, fmt_acc(r["val"]), fmt_acc(r["test"]), fmt_paired(_vs(roles["bn"], r))])
    return Table(["conv layers", "network", "val. acc. (%)", "test acc. (%)", "BN-x1 - this (test)"], cells)


def depth_layer_bands(runs: dict, depth: int, none: str = "none-x1") -> dict:
    """:func:`layer_bands` of the ``depth``-layer networks without BN (``"none"``: label ``none``, at the
    baseline's rate by default) and with BN (``"bn"``)."""
    g = groups(runs)
    return {"none": layer_bands(g[f"{none}-depth{depth}"], depth), "bn": layer_bands(g[f"bn-depth{depth}"], depth)}


def depth_bands(runs: dict) -> dict:
    """For the depth figure: per depth, the validation accuracy band (population statistics for BN) of BN-x1
    (``"bn"``; ``"bn-eval"``: in eval mode), of no BN at its best rate at that depth (``"none"``, with its
    multiplier under ``"none_mult"``) and of the controls present (``"sigmoidinit"``, ``"relu"``)."""
    g = groups(runs)
    out = {}
    for d, roles in depth_roles(depth_saturation(runs)).items():
        b = {"bn": curve_band(g[roles["bn"]["label"]]), "bn-eval": curve_band(g[roles["bn"]["label"]], "val_acc"),
             "none": curve_band(g[roles["best_none"]["label"]]), "none_mult": roles["best_none"]["multiplier"]}
        b |= {k: curve_band(g[roles[k]["label"]]) for k in ("sigmoidinit", "relu") if k in roles}
        out[d] = b
    return out


def _at_chance(row: dict, group: list[dict]) -> bool:
    return max(row["test"]) < CHANCE_BELOW and max(best_val(r) for r in group) < CHANCE_BELOW


def seed_learns(run: dict) -> bool:
    """Whether one run leaves chance: its final test accuracy or its validation accuracy at some record reaches
    :data:`bnlib.reports.cifar.CHANCE_BELOW`."""
    return acc(run) >= CHANCE_BELOW or best_val(run) >= CHANCE_BELOW


def learning(group: list[dict]) -> str:
    """How a network does over its seeds, in words: at chance on every seed, learning on every seed (to its seed-mean
    final test accuracy), or learning on some of them (to their mean) and at chance on the others."""
    ok = [r for r in group if seed_learns(r)]
    if not ok:
        return "stays at chance on every seed"
    if len(ok) == len(group):
        return f"learns on every seed, to {100 * np.mean([acc(r) for r in group]):.1f}% test accuracy (seed mean)"
    return (f"learns on {len(ok)} of {len(group)} seeds (to {100 * np.mean([acc(r) for r in ok]):.1f}% test "
            f"accuracy, their mean) and stays at chance on the other {len(group) - len(ok)}")


def _joined(items: list[str], sep: str = ", ") -> str:
    """``a, b and c`` (or ``a; b; and c`` with ``sep="; "``)."""
    if len(items) == 1:
        return items[0]
    return sep.join(items[:-1]) + (" and " if sep == ", " else f"{sep}and ") + items[-1]


def _depth_list(depths: list[int]) -> str:
    return _joined(list(map(str, depths))) if depths else "none"


def depth_numbers(runs: dict, n_params: dict[str, int]) -> dict[str, Glued]:
    """The depth section's numbers: per depth, BN-x1 against no BN at its best rate (``cifar_d{d}_*``) and how each
    network without BN does over the seeds; at the deepest, whether no BN learns at any rate, BN's accuracy, its
    eval-mode and batch-statistics scores, saturation and gradient ratios layer by layer (no BN at the baseline's
    rate), and the controls (init gain 4, ReLU, BN-x5); ``n_params`` maps labels to parameter counts. Raises when
    a sentence the prose states without a number (BN learns at every depth on every seed; the deepest network
    without BN stays at chance at every rate; its first layers stay unsaturated) no longer holds."""
    rows = depth_saturation(runs)
    roles, g = depth_roles(rows), groups(runs)
    depths = list(roles)
    dmax = depths[-1]
    out: dict[str, Glued] = {"cifar_n_depths": number(len(depths)),
                             "cifar_depth_rates": text(", ".join(f"x{k:g}" for k in roles[dmax]["none"]))}
    chance = []
    for d, r in roles.items():
        best = r["best_none"]
        _claim(all(seed_learns(x) for x in g[r["bn"]["label"]]),
               f"the prose says BN-x1 learns at every depth on every seed, but at {d} conv layers it does not.")
        out |= {f"cifar_d{d}_bn_test": percent(np.mean(r["bn"]["test"])),
                f"cifar_d{d}_none_test": percent(np.mean(best["test"])),
                f"cifar_d{d}_none_mult": text(f"{best['multiplier']:g}"),
                f"cifar_d{d}_none_learning": text(learning(g[best["label"]])),
                f"cifar_d{d}_gain": md(phrase(_vs(r["bn"], best), "higher with BN", "lower with BN",
                                              "level with and without BN", "not clearly different (inconclusive)"))}
        if all(_at_chance(x, g[x["label"]]) for x in r["none"].values()):
            chance.append(d)
    _claim(dmax in chance, f"the prose says the {dmax}-layer network without BN stays at chance at every rate, on "
                           "every seed, but it does not.")
    out["cifar_depth_none_story"] = text(_joined([
        f"at {d} conv layers it stays at chance at every rate, on every seed" if d in chance else
        f"at {d} conv layers (best rate x{r['best_none']['multiplier']:g}) it {learning(g[r['best_none']['label']])}"
        for d, r in roles.items()], "; "))
    out["cifar_depth_bn_story"] = text(_joined([f"{100 * np.mean(r['bn']['test']):.1f}% at {d}"
                                                for d, r in roles.items()]))
    out["cifar_depth_none_chance"] = text(_depth_list(chance))
    out["cifar_depth_none_chance_from"] = number(min(d for d in chance if all(e in chance for e in depths if e >= d)))
    out["cifar_depth_none_learns"] = text(_depth_list([d for d in depths if d not in chance]))
    deep = roles[dmax]
    bn, best = deep["bn"], deep["best_none"]
    x1 = deep["none"][1.0]
    front = max(x1["sat_final_max"][:-1])
    _claim(front < 0.01, f"the prose says the first {dmax - 1} layers without BN are practically unsaturated (below "
                         "1% on every seed), but one is not.")
    out |= {
        "cifar_deep_none_top": percent(max(best_val(r) for x in deep["none"].values() for r in g[x["label"]])),
        "cifar_deep_none_train_loss": number(float(np.mean([curve(r, "train_loss")[-1] for r in g[x1["label"]]]))),
        "cifar_log10": number(math.log(10)),
        "cifar_deep_bn_test": percent(np.mean(bn["test"])),
        "cifar_deep_bn_test_hw": percent(mean_interval(bn["test"])[1], 2),
        "cifar_deep_vs_best_none": md(fmt_paired(_vs(bn, best))),
        "cifar_deep_bn_eval": percent(np.mean(bn["eval"])),
        "cifar_deep_bn_eval_hw": percent(mean_interval(bn["eval"])[1], 2),
        "cifar_deep_gap": md(phrase(paired(bn["test"], bn["eval"]), *_HLL)),
    }
    bs = [r["summary"]["final_test_acc_batchstats"] for r in g[bn["label"]]]
    if all(v is not None for v in bs):
        out["cifar_deep_bn_bs"] = percent(np.mean(bs))
        out["cifar_deep_bn_bs_hw"] = percent(mean_interval(bs)[1], 2)
    out |= {
        "cifar_deep_front": number(dmax - 1),
        "cifar_deep_none_sat_front": percent(front),
        "cifar_deep_none_sat_last_init": percent(x1["sat_init"][-1]),
        "cifar_deep_none_sat_last": percent(x1["sat_final"][-1]),
        "cifar_deep_bn_sat_max": percent(bn["sat_worst"]),
        "cifar_grad_spread_bn": number(max(gradient_spread(curve(r, "grad_norm")[-1][:dmax]) for r in g[bn["label"]])),
        "cifar_grad_ratio_none": number(gradient_ratio(g[x1["label"]])),
        "cifar_grad_ratio_none_min": number(min(gradient_ratios(g[x1["label"]]))),
        "cifar_grad_ratio_none_first": number(gradient_ratio(g[x1["label"]], record=1)),
    }
    for key in ("sigmoidinit", "relu"):
        if key not in deep:
            continue
        c = deep[key]
        every = [d for d, r in roles.items() if key in r and all(seed_learns(x) for x in g[r[key]["label"]])]
        out |= {f"cifar_deep_{key}": text(learning(g[c["label"]])),
                f"cifar_deep_{key}_vs_bn": md(phrase(_vs(bn, c), "higher with BN", "lower with BN", "level",
                                                     "not clearly different (inconclusive)")),
                f"cifar_deep_{key}_test": percent(np.mean(c["test"])),
                f"cifar_depth_{key}_learns": text(_depth_list(every))}
        if every:  # the deepest network at which the control learns on every seed, against BN-x1 there
            r = roles[every[-1]]
            out |= {f"cifar_{key}_top_depth": number(every[-1]),
                    f"cifar_{key}_top_test": percent(np.mean(r[key]["test"])),
                    f"cifar_{key}_top_bn_test": percent(np.mean(r["bn"]["test"])),
                    f"cifar_{key}_top_vs_bn": md(phrase(_vs(r["bn"], r[key]), "higher with BN", "lower with BN",
                                                        "level", "not clearly different (inconclusive)"))}
    if "bn-x5" in deep and "relu" in deep:
        out["cifar_deep_bn5_test"] = percent(np.mean(deep["bn-x5"]["test"]))
        out["cifar_deep_bn5_learning"] = text(learning(g[deep["bn-x5"]["label"]]))
        out["cifar_deep_bn5_vs_relu"] = md(phrase(_vs(deep["bn-x5"], deep["relu"]), *_HLL))
        out["cifar_deep_bn5_vs_bn"] = md(phrase(_vs(deep["bn-x5"], bn), *_HLL))
    params = seed_groups(n_params)
    out["cifar_params_min"] = number(min(v[0] for v in params.values()))
    out["cifar_params_max"] = number(max(v[0] for v in params.values()))
    return out
