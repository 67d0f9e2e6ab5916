"""Derived tables and numbers the chapters show, computed from experiment results.

Each function takes a result (or its ``runs`` mapping) as :func:`bnlib.experiments.run`
returns it and gives back plain Python rows and numbers; chapters render them (e.g. with
:func:`markdown_table`) and glue them into the prose. Nothing here trains anything.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import numpy as np

from bnlib import functional as F

# --------------------------------------------------------------------------- CIFAR-10 chapter
# Derived numbers of the CIFAR-10 chapter (book/cifar.ipynb): steps-to-accuracy in the format
# of the paper's Table 2, learning-rate tolerance, the depth/saturation table and the ablation
# of the paper's acceleration recipe (Sec. 4.2.1). Every function takes the ``runs`` mapping of
# an experiment result (label -> {"config", "curves", "summary"}). At paper scale each run is
# repeated over seeds (labels end in ``-seedK``): the functions then aggregate over seeds.

_SEED_SUFFIX = re.compile(r"-seed\d+$")


def seed_groups(runs: dict) -> dict[str, list[dict]]:
    """Runs grouped by label without its ``-seedK`` suffix, in first-seen order."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs must be a non-empty dict mapping run labels to results.")
    groups: dict[str, list[dict]] = {}
    for label, run in runs.items():
        groups.setdefault(_SEED_SUFFIX.sub("", label), []).append(run)
    return groups


def _steps_to_reach(run: dict, target: float) -> int | None:
    """First recorded step at which a run's test accuracy is at least ``target`` (None if never)."""
    for step, acc in zip(run["curves"]["step"], run["curves"]["test_acc"], strict=True):
        if acc is not None and acc >= target:
            return step
    return None


def _median_steps(steps: list[int | None]) -> int | None:
    """Median over seeds of steps-to-target, a seed that never got there counting as infinitely many.

    With an even number of seeds the upper of the two middle values is taken (the conservative
    choice), so the result is always one of the measured values, or None when at least half
    of the seeds never reached the target.
    """
    ordered = sorted(steps, key=lambda s: math.inf if s is None else s)
    return ordered[len(ordered) // 2]


def run_stats(group: list[dict], target: float | None = None) -> dict:
    """Seed-aggregated numbers of one run (a list of its seeds' results).

    ``best_acc``: mean over seeds of the best recorded test accuracy; ``final_acc``: mean final
    test accuracy, None when any seed diverged; ``diverged``: how many seeds diverged and
    ``diverged_at`` the earliest step at which one did; ``steps``: the median steps to reach
    ``target`` (see :func:`_median_steps`); ``lr``, ``norm``: from the configuration.
    """
    if not group:
        raise ValueError("a run group must hold at least one seed's result.")
    s = [r["summary"] for r in group]
    div = [x["diverged_at"] for x in s if x["diverged_at"] is not None]
    bests = [x["best_test_acc"] for x in s]
    finals = [x["final_test_acc"] for x in s]
    cfg = group[0]["config"]
    return {
        "lr": cfg["lr"],
        "norm": cfg["norm"],
        "best_acc": None if None in bests else float(np.mean(bests)),
        "final_acc": None if (div or None in finals) else float(np.mean(finals)),
        "diverged": len(div),
        "diverged_at": min(div) if div else None,
        "steps": None if target is None else _median_steps([_steps_to_reach(r, target) for r in group]),
        "seeds": len(group),
    }


def steps_to_accuracy(runs: dict, baseline: str, labels: list[str] | None = None) -> tuple[float, list[dict]]:
    """The paper's Table 2 for ``runs``: the target is the ``baseline`` run's best test accuracy.

    Returns ``(target, rows)``; one row per label (all, in order, by default) with the keys of
    :func:`run_stats` plus ``label`` and ``speedup`` (the baseline's steps to the target divided
    by the row's; None when either never reached it).
    """
    groups = seed_groups(runs)
    labels = list(groups) if labels is None else list(labels)
    missing = [lab for lab in [baseline, *labels] if lab not in groups]
    if missing:
        raise ValueError(f"no run labelled {missing[0]!r}; the runs are {', '.join(groups)}.")
    target = run_stats(groups[baseline])["best_acc"]
    base_steps = run_stats(groups[baseline], target)["steps"]
    rows = []
    for lab in labels:
        row = {"label": lab, **run_stats(groups[lab], target)}
        row["speedup"] = base_steps / row["steps"] if base_steps and row["steps"] else None
        rows.append(row)
    return target, rows


def lr_sweep(runs: dict, base_lr: float) -> list[dict]:
    """One row per run of a learning-rate sweep: :func:`run_stats` plus ``label`` and
    ``multiplier`` (the run's learning rate over ``base_lr``, to 6 significant digits),
    sorted by normalization (none first) and then multiplier."""
    if not base_lr > 0:
        raise ValueError(f"base_lr must be positive, got {base_lr}.")
    rows = []
    for lab, group in seed_groups(runs).items():
        row = {"label": lab, **run_stats(group)}
        row["multiplier"] = float(f"{row['lr'] / base_lr:.6g}")
        rows.append(row)
    return sorted(rows, key=lambda r: (r["norm"] is not None, str(r["norm"]), r["multiplier"]))


def max_tolerated_multiplier(rows: list[dict], norm: str | None, threshold: float) -> float | None:
    """The largest learning-rate multiplier ``k`` such that every swept multiplier from 1 to ``k``
    trains: no seed diverged and the final test accuracy is at least ``threshold``.

    ``rows`` as from :func:`lr_sweep`; ``norm`` picks the networks (None: without BN). None when
    the baseline rate (multiplier 1) itself does not train.
    """
    mine = sorted((r for r in rows if r["norm"] == norm and r["multiplier"] >= 1), key=lambda r: r["multiplier"])
    if not mine or mine[0]["multiplier"] != 1:
        raise ValueError(f"the sweep has no run at multiplier 1 for norm={norm!r}.")
    best = None
    for r in mine:
        if r["diverged"] or r["final_acc"] is None or r["final_acc"] < threshold:
            break
        best = r["multiplier"]
    return best


def depth_saturation(runs: dict) -> list[dict]:
    """One row per run of the depth experiment: :func:`run_stats` plus ``label``, ``depth`` and the
    saturated fraction of every hidden layer at the first and the last record (``sat_init``,
    ``sat_final``: lists over layers, seed means) and their means over layers."""
    rows = []
    for lab, group in seed_groups(runs).items():
        row = {"label": lab, "depth": group[0]["config"]["depth"], **run_stats(group)}
        for key, idx in (("sat_init", 0), ("sat_final", -1)):
            per_seed = np.array([r["curves"]["saturated"][idx] for r in group], dtype=float)
            row[key] = per_seed.mean(axis=0).tolist()
            row[key + "_mean"] = float(per_seed.mean())
        rows.append(row)
    return rows


#: Configuration fields the recipe changes, with the words the ablation table uses for them.
RECIPE_FIELDS = {"norm": "BN", "lr": "learning rate", "dropout": "dropout", "weight_decay": "L2 weight decay",
                 "lr_decay": "decay factor", "lr_decay_every": "decay every (steps)"}


def describe_change(before: dict, after: dict) -> str:
    """What differs between two run configurations, e.g. ``"learning rate 0.1 → 0.5"`` ("" if nothing)."""
    parts = []
    for key in sorted(set(before) | set(after)):
        if key in ("seed", "device"):
            continue
        a, b = before.get(key), after.get(key)
        if a != b:
            name = RECIPE_FIELDS.get(key, key)
            if key == "norm":
                parts.append("BN added" if b else "BN removed")
            else:
                parts.append(f"{name} {a:g} → {b:g}" if isinstance(a, float | int) and isinstance(b, float | int)
                             else f"{name} {a} → {b}")
    return ", ".join(parts)


def ablation(runs: dict, baseline: str) -> tuple[float, list[dict]]:
    """The recipe's ablation table: :func:`steps_to_accuracy` over the runs in order, each row
    also saying in ``change`` what differs from the previous row's configuration."""
    target, rows = steps_to_accuracy(runs, baseline)
    groups = seed_groups(runs)
    prev = None
    for row in rows:
        cfg = groups[row["label"]][0]["config"]
        row["change"] = "" if prev is None else describe_change(prev, cfg)
        prev = cfg
    return target, rows


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """0.4567 -> "45.7%"; None -> "–"."""
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def fmt_steps(x: int | None) -> str:
    """Steps with a thousands separator; None (never reached) -> "never"."""
    return "never" if x is None else f"{x:,}"


def fmt_ratio(x: float | None) -> str:
    """A speed-up factor, "3.5×"; None -> "–"."""
    return "–" if x is None else f"{x:.3g}×"


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table (every cell passed through ``str``; ``|`` escaped)."""
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row must have {len(header)} cells, like the header.")

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def sweep_name(norm: str | None, multiplier: float) -> str:
    """The paper's way of naming a run by its learning rate: ``"BN-x5"``, ``"no BN-x1"``."""
    return f"{'BN' if norm else 'no BN'}-x{multiplier:.3g}"


def gradient_ratio(group: list[dict], record: int = -1) -> float:
    """How much smaller the loss gradient of the first conv layer is than that of the last one
    (``depth - 1``), at ``record`` (default: the last), as the geometric mean over seeds."""
    ratios = []
    for run in group:
        g = run["curves"]["grad_norm"][record]
        if g is None:
            raise ValueError(f"no gradient norms at record {record} (step 0 has none).")
        d = run["config"]["depth"]
        ratios.append(math.log(g[d - 1] / g[0]))
    return math.exp(sum(ratios) / len(ratios))


# --------------------------------------------------------------------------- train vs test chapter
# Tables and numbers of the train-vs-test chapter (book/train_test.ipynb): population statistics
# three ways, batch-statistics evaluation, the batch-size sweep, non-i.i.d. batches, BN as a
# regularizer, folding, and the PyTorch/Keras running-average conventions.

class Table:
    """A small table: aligned plain text for ``repr`` (and nbval), an HTML table for the book.

    ``formats`` gives, per column, a format spec (``".3f"``) or a callable; ``None`` cells
    show as ``n/a``.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence], formats: Sequence | None = None,
                 caption: str = ""):
        self.columns = [str(c) for c in columns]
        self.rows = [list(r) for r in rows]
        bad = [i for i, r in enumerate(self.rows) if len(r) != len(self.columns)]
        if bad:
            raise ValueError(f"every row must have {len(self.columns)} cells (one per column); row {bad[0]} has "
                             f"{len(self.rows[bad[0]])}.")
        self.formats = list(formats) if formats is not None else [None] * len(self.columns)
        if len(self.formats) != len(self.columns):
            raise ValueError(f"formats must give one entry per column ({len(self.columns)}), got {len(self.formats)}.")
        self.caption = caption

    @staticmethod
    def _cell(v, fmt) -> str:
        if v is None:
            return "n/a"
        if callable(fmt):
            return fmt(v)
        if fmt and not isinstance(v, str):
            return format(v, fmt)
        return str(v)

    def cells(self) -> list[list[str]]:
        """The formatted cells, row by row."""
        return [[self._cell(v, f) for v, f in zip(r, self.formats, strict=True)] for r in self.rows]

    def __repr__(self) -> str:
        body = self.cells()
        widths = [max(len(c) for c in col) for col in zip(self.columns, *body, strict=True)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.cells())
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f'<table class="table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pct(x: float) -> str:
    """An accuracy as a percentage with two decimals: 0.98765 -> "98.77"."""
    return f"{100 * x:.2f}"


def points(x: float) -> str:
    """A difference of accuracies in percentage points, signed: 0.0123 -> "+1.23"."""
    return f"{100 * x:+.2f}"


def run_of(res: dict, label: str) -> dict:
    """The run ``label`` of an experiment result (one clear error when it is not there)."""
    runs = res.get("runs") if isinstance(res, dict) else None
    if not isinstance(runs, dict):
        raise TypeError("expected an experiment result: a dict with a 'runs' dict (as bnlib.experiments.run returns).")
    if label not in runs:
        raise ValueError(f"result {res.get('name', '?')!r} has no run {label!r}; its runs are {sorted(runs)}.")
    return runs[label]


_CURVE_OF = {"final_test_acc": "test_acc", "final_test_acc_batchstats": "test_acc_batchstats"}


def final_metric(run: dict, key: str) -> float | None:
    """``run["summary"][key]``, or None when the run diverged or the value is missing.

    The final test accuracies (eval mode and batch statistics) are also measured by the
    last record of the curves when that record is at the last step and the curves use the
    whole test set: the same evaluation of the same weights. That record stands in when
    the summary lacks the value.
    """
    s = run["summary"]
    if s.get("diverged_at") is not None:
        return None
    v = s.get(key)
    if v is not None or key not in _CURVE_OF:
        return v
    c, cfg = run.get("curves", {}), run.get("config", {})
    vals = c.get(_CURVE_OF[key]) or []
    if vals and c.get("step") and c["step"][-1] == s.get("steps_done") and not cfg.get("test_subset"):
        return vals[-1]
    return None


def norm_name(norm: str | None) -> str:
    """The label the book uses for a ``RunConfig.norm`` value."""
    return {None: "none", "torch": "BN", "bnlib": "BN", "renorm": "Batch Renorm", "layer": "Layer Norm",
            "group": "Group Norm", "noisy": "noisy BN",
            "l1": "l_1 norm", "linf": "l_inf norm"}.get(norm, str(norm))


def population_summary(run: dict) -> dict:
    """The ``"population"`` analysis of a run: per-layer differences, accuracies and their spread.

    Returns ``layers`` (per BN layer: max |mean difference| and max relative variance
    difference of the running averages and of Algorithm 2, each against the exact
    calibration pass), ``test_acc`` (``running``, ``algorithm2``, ``exact``), ``acc_spread``
    (largest minus smallest of the three) and the largest of each difference over layers.
    """
    pop = run.get("analysis", {}).get("population")
    if not pop:
        raise ValueError("the run has no 'population' analysis (train it with analyses=('population',)).")
    layers = pop["layers"]
    accs = pop["test_acc"]
    out = {"layers": layers, "test_acc": dict(accs), "acc_spread": max(accs.values()) - min(accs.values())}
    for k in ("running_vs_exact_mean", "running_vs_exact_var_rel", "alg2_vs_exact_mean", "alg2_vs_exact_var_rel"):
        out[f"max_{k}"] = max(layer[k] for layer in layers)
    return out


def population_table(summary: dict) -> Table:
    """Per-layer differences of the running averages and Algorithm 2 from the exact statistics."""
    rows = [[i + 1, layer["running_vs_exact_mean"], layer["running_vs_exact_var_rel"], layer["alg2_vs_exact_mean"],
             layer["alg2_vs_exact_var_rel"]] for i, layer in enumerate(summary["layers"])]
    return Table(["BN layer", "running: max|dmean|", "running: max|dvar|/var", "Alg. 2: max|dmean|",
                  "Alg. 2: max|dvar|/var"], rows, [None, ".2e", ".2e", ".2e", ".2e"])


def train_eval_gap(run: dict) -> dict:
    """Eval-mode vs batch-statistics test accuracy along training, from a run's curves.

    Returns ``step``, ``eval``, ``batch`` and ``gap = eval - batch`` (lists over the records),
    ``final_gap`` (at the last record), and ``max_abs_gap`` with its ``max_abs_gap_step``
    (largest ``|gap|`` over the records after step 0).
    """
    c = run["curves"]
    step, ev, bs = list(c["step"]), list(c["test_acc"]), list(c["test_acc_batchstats"])
    if not step:
        raise ValueError("the run has no recorded curves.")
    gap = [e - b for e, b in zip(ev, bs, strict=True)]
    later = [(abs(g), s) for g, s in zip(gap, step, strict=True) if s > 0] or [(abs(gap[0]), step[0])]
    m, at = max(later, key=lambda t: t[0])
    return {"step": step, "eval": ev, "batch": bs, "gap": gap, "final_gap": gap[-1], "max_abs_gap": m,
            "max_abs_gap_step": at}


def test_batch_summary(run: dict) -> dict:
    """The ``"test_batches"`` analysis: accuracy with batch statistics by test-batch size.

    Returns ``eval_mode``, ``sizes`` (ascending ints), ``acc`` (list, by size), ``drop``
    (``eval_mode - acc``, by size), ``one_class`` and ``one_class_drop`` (one-class batches of 64).
    """
    tb = run.get("analysis", {}).get("test_batches")
    if not tb:
        raise ValueError("the run has no 'test_batches' analysis (train it with analyses=('test_batches',)).")
    sizes = sorted(int(s) for s in tb["by_size"])
    acc = [tb["by_size"][str(s)] for s in sizes]
    ev = tb["eval_mode"]
    return {"eval_mode": ev, "sizes": sizes, "acc": acc, "drop": [ev - a for a in acc],
            "one_class": tb["one_class_64"], "one_class_drop": ev - tb["one_class_64"]}


def test_batch_table(summary: dict) -> Table:
    rows = [["eval mode (population statistics)", summary["eval_mode"], 0.0]]
    rows += [[f"batch statistics, i.i.d. batches of {s}", a, d]
             for s, a, d in zip(summary["sizes"], summary["acc"], summary["drop"], strict=True)]
    rows.append(["batch statistics, one-class batches of 64", summary["one_class"], summary["one_class_drop"]])
    return Table(["test-time normalization", "test accuracy (%)", "drop vs eval mode (points)"], rows,
                 [None, pct, points])


def batch_size_grid(res: dict) -> dict:
    """The training-batch-size sweep as a grid, from the runs' configurations.

    Returns ``sizes`` (ascending), ``norms`` (book labels, in the order first seen),
    ``lr`` (by size; one value per size, else an error), and per norm label and size:
    ``acc`` (eval-mode final test accuracy), ``acc_batch`` (with batch statistics over test
    batches of the training batch size; equal to ``acc`` for a network without BN) and ``gap``
    (``acc - acc_batch``). Diverged runs give None.
    """
    sizes, norms, lr = set(), [], {}
    acc: dict = {}
    acc_b: dict = {}
    for run in res["runs"].values():
        cfg = run["config"]
        b, name = int(cfg["batch_size"]), norm_name(cfg["norm"])
        if name not in norms:
            norms.append(name)
        sizes.add(b)
        if b in lr and not math.isclose(lr[b], cfg["lr"], rel_tol=1e-9):
            raise ValueError(f"batch size {b} is trained with two learning rates ({lr[b]} and {cfg['lr']}).")
        lr[b] = cfg["lr"]
        a = final_metric(run, "final_test_acc")
        ab = final_metric(run, "final_test_acc_batchstats") if cfg["norm"] else a
        acc.setdefault(name, {})[b] = a
        acc_b.setdefault(name, {})[b] = ab
    gap = {n: {b: (None if acc[n][b] is None or acc_b[n][b] is None else acc[n][b] - acc_b[n][b]) for b in acc[n]}
           for n in norms}
    return {"sizes": sorted(sizes), "norms": norms, "lr": lr, "acc": acc, "acc_batch": acc_b, "gap": gap}


def falls_behind(grid: dict, norm: str = "BN", others: Sequence[str] = ("Layer Norm", "Group Norm")) -> list[int]:
    """Batch sizes at which ``norm``'s eval-mode test accuracy is below the best of ``others``.

    A diverged ``norm`` run counts as behind; sizes where every one of ``others`` diverged are skipped.
    """
    for n in (norm, *others):
        if n not in grid["acc"]:
            raise ValueError(f"norm {n!r} is not in the grid; it has {grid['norms']}.")
    behind = []
    for b in grid["sizes"]:
        best = [grid["acc"][o].get(b) for o in others]
        best = [v for v in best if v is not None]
        if not best:
            continue
        mine = grid["acc"][norm].get(b)
        if mine is None or mine < max(best):
            behind.append(b)
    return behind


def batch_size_table(grid: dict, key: str = "acc") -> Table:
    """One row per batch size (with its learning rate), one column per norm: ``grid[key]`` in percent
    (``key="gap"``: in percentage points, signed)."""
    rows = [[b, grid["lr"][b], *[grid[key][n].get(b) for n in grid["norms"]]] for b in grid["sizes"]]
    fmt = points if key == "gap" else pct
    return Table(["batch size", "learning rate", *grid["norms"]], rows, [None, ".4g", *[fmt] * len(grid["norms"])])


def noniid_grid(res: dict) -> dict:
    """Non-i.i.d. training batches vs i.i.d. ones, by norm.

    Returns ``{norm label: {sampler: {"test_acc", "test_acc_batch", "train_acc"}}}`` with
    sampler ``"iid"`` or ``"k classes"`` (from ``batch_sampler="classes:k"``); ``test_acc_batch``
    is the accuracy with batch statistics (i.i.d. test batches of the training batch size),
    equal to ``test_acc`` without BN.
    """
    out: dict = {}
    for run in res["runs"].values():
        cfg = run["config"]
        s = cfg["batch_sampler"]
        sampler = "iid" if s == "iid" else f"{s.split(':', 1)[1]} classes"
        a = final_metric(run, "final_test_acc")
        out.setdefault(norm_name(cfg["norm"]), {})[sampler] = {
            "test_acc": a, "test_acc_batch": final_metric(run, "final_test_acc_batchstats") if cfg["norm"] else a,
            "train_acc": final_metric(run, "final_train_acc")}
    return out


def noniid_table(grid: dict) -> Table:
    rows = [[n, s, v["test_acc"], v["test_acc_batch"], v["train_acc"]]
            for n, by in grid.items() for s, v in by.items()]
    return Table(["norm", "training batches", "test acc. (%), eval mode", "test acc. (%), batch stats",
                  "train acc. (%), eval mode"], rows, [None, None, pct, pct, pct])


def regularizer_grid(res: dict) -> list[dict]:
    """Train/test accuracy and loss gaps, one dict per run: ``norm``, ``dropout``, ``train_acc``,
    ``test_acc``, ``acc_gap = train_acc - test_acc``, ``train_loss``, ``test_loss``,
    ``loss_gap = test_loss - train_loss`` (None where a value is missing), sorted by norm then dropout."""
    rows = []
    for run in res["runs"].values():
        cfg = run["config"]
        tr, te = final_metric(run, "final_train_acc"), final_metric(run, "final_test_acc")
        ltr, lte = final_metric(run, "final_train_loss"), final_metric(run, "final_test_loss")
        rows.append({"norm": norm_name(cfg["norm"]), "dropout": cfg["dropout"], "train_acc": tr, "test_acc": te,
                     "acc_gap": None if tr is None or te is None else tr - te, "train_loss": ltr, "test_loss": lte,
                     "loss_gap": None if ltr is None or lte is None else lte - ltr})
    return sorted(rows, key=lambda r: (r["norm"] != "none", r["norm"], r["dropout"]))


def regularizer_row(rows: list[dict], norm: str, dropout: float) -> dict:
    """The row of :func:`regularizer_grid` for ``norm`` and ``dropout``."""
    for r in rows:
        if r["norm"] == norm and math.isclose(r["dropout"], dropout):
            return r
    raise ValueError(f"no run with norm {norm!r} and dropout {dropout}; have "
                     f"{[(r['norm'], r['dropout']) for r in rows]}.")


def regularizer_table(rows: list[dict]) -> Table:
    return Table(["norm", "dropout", "train acc. (%)", "test acc. (%)", "gap (points)", "train loss", "test loss",
                  "gap (loss)"],
                 [[r["norm"], r["dropout"], r["train_acc"], r["test_acc"], r["acc_gap"], r["train_loss"],
                   r["test_loss"], r["loss_gap"]] for r in rows],
                 [None, ".2g", pct, pct, points, ".4f", ".4f", "+.4f"])


def fold_summary(run: dict) -> dict:
    """The ``"fold"`` analysis: ``max_abs_diff``, ``same_predictions``, ``speedup`` and the two times."""
    fold = run.get("analysis", {}).get("fold")
    if not fold:
        raise ValueError("the run has no 'fold' analysis (train it with analyses=('fold',)).")
    return dict(fold)


def running_conventions(batch_means, batch_vars, n: int, torch_momentum: float = 0.1,
                        init: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Running averages of a sequence of batch statistics under both conventions.

    ``batch_means`` and ``batch_vars`` (biased) have shape ``(K, C)``, from batches of ``n``
    values per channel. With ``p = torch_momentum`` returns trajectories (shape ``(K, C)``)
    ``torch_mean``/``torch_var`` (PyTorch, momentum ``p``), ``keras_mean``/``keras_var``
    (Keras, momentum ``1 - p``, biased variance), and ``keras_var_unbiased`` (Keras fed the
    unbiased batch variance ``n/(n-1) sigma_B^2``), each from ``init`` = (mean, var).
    """
    bm, bv = np.asarray(batch_means, dtype=np.float64), np.asarray(batch_vars, dtype=np.float64)
    if bm.ndim != 2 or bm.shape != bv.shape:
        raise ValueError(f"batch_means and batch_vars must both have shape (K, C), got {bm.shape} and {bv.shape}.")
    c = bm.shape[1]
    state = {k: (np.full(c, init[0]), np.full(c, init[1])) for k in ("torch", "keras", "keras_u")}
    traj: dict = {k: [] for k in ("torch_mean", "torch_var", "keras_mean", "keras_var", "keras_var_unbiased")}
    for m, v in zip(bm, bv, strict=True):
        state["torch"] = F.update_running(*state["torch"], m, v, n, momentum=torch_momentum, convention="torch")
        state["keras"] = F.update_running(*state["keras"], m, v, n, momentum=1 - torch_momentum, convention="keras")
        state["keras_u"] = F.update_running(*state["keras_u"], m, v * n / (n - 1), n, momentum=1 - torch_momentum,
                                            convention="keras")
        traj["torch_mean"].append(state["torch"][0])
        traj["torch_var"].append(state["torch"][1])
        traj["keras_mean"].append(state["keras"][0])
        traj["keras_var"].append(state["keras"][1])
        traj["keras_var_unbiased"].append(state["keras_u"][1])
    return {k: np.array(v).reshape(len(bm), c) for k, v in traj.items()}


def half_life(torch_momentum: float) -> float:
    """Number of batches after which an old value keeps half its weight in the running average:
    ``ln 2 / -ln(1 - p)`` for PyTorch momentum ``p`` (Keras momentum ``1 - p``)."""
    if not 0.0 < torch_momentum < 1.0:
        raise ValueError(f"torch_momentum must lie strictly between 0 and 1, got {torch_momentum!r}.")
    return math.log(2.0) / -math.log1p(-torch_momentum)


def stream_of_batches(k: int, c: int, n: int, mean: float, std: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``k`` batches of ``n`` Gaussian values for ``c`` channels: their means and biased variances."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, std, size=(k, n, c))
    return x.mean(axis=1), x.var(axis=1)


def steps_to_forget(torch_momentum: float, weight: float) -> int:
    """Fewest updates ``k`` after which the initial value weighs at most ``weight`` in a running
    average with PyTorch momentum ``p``: the smallest ``k`` with ``(1 - p)^k <= weight``."""
    half_life(torch_momentum)  # validates torch_momentum
    if not 0.0 < weight < 1.0:
        raise ValueError(f"weight must lie strictly between 0 and 1, got {weight!r}.")
    k = math.ceil(math.log(weight) / math.log1p(-torch_momentum))
    # guard the boundary against rounding in the logarithms
    while k > 0 and (1 - torch_momentum) ** (k - 1) <= weight:
        k -= 1
    while (1 - torch_momentum) ** k > weight:
        k += 1
    return k


# --------------------------------------------------------------------------- MNIST chapter
# Derived numbers of the MNIST chapter (book/mnist.ipynb): the paper's Figure 1 (final
# accuracies, steps each network needs to reach the other's final accuracy, the drift of the
# sigmoid-input percentiles), the saturated fraction and the input histograms per layer, the
# learning-rate choice, the initialization sweep and the seed article's Dense-128 demo.
# Each function takes an experiment result (as bnlib.experiments.run returns it) or one run.


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
           "fast_to_slow": _steps_to_reach(rf, a_s), "slow_to_slow": _steps_to_reach(rs, a_s),
           "slow_to_fast": _steps_to_reach(rs, af), "fast_to_fast": _steps_to_reach(rf, af)}
    f2s, s2s = out["fast_to_slow"], out["slow_to_slow"]
    out["speedup"] = s2s / f2s if f2s and s2s else None
    return out


def _probe_index(run: dict, layer: int, unit: int) -> tuple[int, int]:
    """(layer index, position in the probed units) of hidden ``layer`` (negative counts from the end)
    and unit ``unit`` (a unit number from the configuration's ``probe_units``)."""
    pct = run["curves"]["percentiles"]
    if not pct:
        raise ValueError("the run has no recorded percentiles.")
    n_layers = len(pct[0])
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"the run has hidden layers 0..{n_layers - 1} (or -1..-{n_layers}); got layer {layer}.")
    units = list(run["config"]["probe_units"])[: len(pct[0][layer])]
    if unit not in units:
        raise ValueError(f"unit {unit} was not probed; the probed units are {units}.")
    return layer % n_layers, units.index(unit)


def mnist_percentiles(run: dict, layer: int, unit: int) -> dict:
    """The recorded 15th, 50th and 85th percentiles of one sigmoid's input over training:
    ``{"step", "p15", "p50", "p85"}`` (lists over the records)."""
    li, ui = _probe_index(run, layer, unit)
    c = run["curves"]
    q = [rec[li][ui] for rec in c["percentiles"]]
    return {"step": list(c["step"]), "p15": [v[0] for v in q], "p50": [v[1] for v in q], "p85": [v[2] for v in q]}


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
    t = mnist_percentiles(run, layer, unit)
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
    _probe_index(run, layer, run["config"]["probe_units"][0])
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
    by the recorder. ``edges`` defaults to :data:`bnlib.train.HIST_EDGES`.
    """
    if edges is None:
        from bnlib.train import HIST_EDGES

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
    t = mnist_percentiles(run, layer, unit)
    if step not in t["step"]:
        raise ValueError(f"step {step} was not recorded; records run from {t['step'][0]} to {t['step'][-1]}.")
    i = t["step"].index(step)
    return t["p85"][i] - t["p15"][i]


# --------------------------------------------------------------------------- why BN works, and the claims ledger
# Numbers of book/why.ipynb (noisy BN and the distribution shift it injects, Santurkar et al.'s
# internal-covariate-shift measure, the loss landscape along the gradient) and the ledger of
# book/claims.ipynb: one function per classic claim, each returning a row whose verdict is
# computed from committed results by the rule written in the row.

SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED = "supported", "not supported", "mixed", "not tested"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, MIXED, NOT_TESTED)


def _check_run(run, what: str = "run") -> dict:
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict) or not isinstance(run.get("curves"), dict):
        raise TypeError(f"{what} must be one run of an experiment result: a dict with 'config' and 'curves'.")
    return run


def noisy_shift_draws(num_features: int, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-unit scale ``s_t`` and shift ``b_t`` that ``NoisyShift(num_features, seed=seed)`` applies at
    training steps ``t = 1 .. steps``: two float64 arrays of shape ``(steps, num_features)``.

    The module itself is run (in training mode, on the inputs 0 and 1), so the draws are the
    ones training used: the engine calls each NoisyShift once per training step and never
    otherwise in training mode (recorders and evaluations switch the noise off).
    """
    import torch

    from bnlib import models

    for name, v in (("num_features", num_features), ("steps", steps)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    layer = models.NoisyShift(int(num_features), seed=int(seed)).train()
    probe = torch.stack([torch.zeros(num_features, dtype=torch.float64), torch.ones(num_features, dtype=torch.float64)])
    scale, shift = np.empty((steps, num_features)), np.empty((steps, num_features))
    with torch.no_grad():
        for t in range(steps):
            y = layer(probe).numpy()
            shift[t], scale[t] = y[0], y[1] - y[0]
    return scale, shift


def as_trained(run: dict, draws: dict | None = None) -> dict:
    """A copy of ``run`` whose recorded percentiles are those of each probed unit's sigmoid input as
    *training* sees it, so that the MNIST chapter's drift measures (:func:`mnist_median_drift`)
    apply unchanged.

    The engine records the percentiles in eval mode. For a network without injected noise they
    are what the next training step sees (up to batch versus population statistics) and the
    run is returned as it is. For noisy BN the next training step, ``t + 1`` after a record at
    step ``t``, sees ``s_{t+1} z + b_{t+1}`` of the recorded value ``z``; ``s > 0``, so
    percentiles map to percentiles. ``draws`` maps a hidden layer to its
    :func:`noisy_shift_draws` (computed when not given).
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
    sizes = cfg["sizes"][1:-1]
    out = pct.copy()
    for layer in range(pct.shape[1]):
        if draws is not None and layer in draws:
            scale, shift = draws[layer]
        else:
            scale, shift = noisy_shift_draws(int(sizes[layer]), int(cfg["seed"]) + layer, int(steps.max()) + 1)
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


# --------------------------------------------------------------------------- the claims ledger
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


def scale_invariance_check(seed: int = 0, scales: Sequence[float] = (0.01, 0.1, 10.0, 100.0), m: int = 32,
                           n_in: int = 20, n_out: int = 8, eps: float = 1e-5) -> dict:
    """BN(aWu) against BN(Wu) with bnlib.functional (forward and hand-derived backward), float64.

    Returns ``max_out_diff`` and ``max_grad_rel`` (over ``scales``, with epsilon = 0), and the
    same two with the given ``eps`` (``*_eps``): with epsilon > 0 the invariance is only
    approximate, most visibly for small ``a``.
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(m, n_in))
    w = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
    gamma, beta, dy = rng.normal(size=n_out), rng.normal(size=n_out), rng.normal(size=(m, n_out))
    out = {}
    for tag, e in (("", 0.0), ("_eps", eps)):
        y0, cache0 = F.forward(u @ w.T, gamma, beta, eps=e)
        g0 = F.backward(dy, cache0)[0].T @ u
        d_out = d_grad = 0.0
        for a in scales:
            y, cache = F.forward(u @ (a * w).T, gamma, beta, eps=e)
            g = F.backward(dy, cache)[0].T @ u
            d_out = max(d_out, float(np.abs(y - y0).max()))
            d_grad = max(d_grad, float(np.abs(a * g - g0).max() / np.abs(g0).max()))
        out["max_out_diff" + tag], out["max_grad_rel" + tag] = d_out, d_grad
    out["eps"] = eps
    return out


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


def identity_check(seed: int = 0, m: int = 64, c: int = 10, eps: float = 1e-5) -> dict:
    """BN set to the identity with bnlib.functional: ``train_rel`` (batch statistics, gamma = sqrt(sigma_B^2 + eps),
    beta = mu_B) and ``inference_rel`` (given statistics) are the max |y - x| / max |x|."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=rng.normal(size=c) * 3, scale=rng.uniform(0.1, 5, size=c), size=(m, c))
    mu, var = x.mean(axis=0), x.var(axis=0)
    y, _ = F.forward(x, np.sqrt(var + eps), mu, eps=eps)
    pm, pv = rng.normal(size=c), rng.uniform(0.5, 2, size=c)
    yi = F.inference(x, pm, pv, np.sqrt(pv + eps), pm, eps=eps)
    scale = float(np.abs(x).max())
    return {"train_rel": float(np.abs(y - x).max()) / scale, "inference_rel": float(np.abs(yi - x).max()) / scale}


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
    import json

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
    import json

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


def gradient_projection_check(seed: int = 0, m: int = 60, c: int = 5, eps: float = 0.0) -> dict:
    """The squared norm of BN's input gradient against the projection formula of the why chapter:
    ``||dL/dx||^2 = gamma^2 / (sigma^2 + eps) * (||g||^2 - <1, g>^2 / m - <g, xhat>^2 / m)`` per
    channel, for a random batch and a random upstream gradient ``g`` (float64), with ``dL/dx``
    from :func:`bnlib.functional.backward`. Exact for ``eps = 0``.

    Returns ``max_rel`` (largest relative difference over channels) and ``shrink`` (per channel,
    ``||dL/dx|| / (gamma / sigma ||g||)``: the fraction of the rescaled gradient the projection keeps).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=rng.normal(size=c), scale=rng.uniform(0.5, 3, size=c), size=(m, c))
    gamma, beta = rng.uniform(0.5, 2, size=c), rng.normal(size=c)
    g = rng.normal(size=(m, c)) + rng.normal(size=c)  # an upstream gradient with a non-zero mean
    _, cache = F.forward(x, gamma, beta, eps=eps)
    dx = F.backward(g, cache)[0]
    xhat, var = cache["xhat"], cache["var"]
    scale2 = gamma**2 / (var + eps)
    formula = scale2 * ((g * g).sum(0) - g.sum(0) ** 2 / m - (g * xhat).sum(0) ** 2 / m)
    lhs = (dx * dx).sum(0)
    return {"max_rel": float(np.max(np.abs(lhs - formula) / formula)),
            "shrink": (np.sqrt(lhs / (scale2 * (g * g).sum(0)))).tolist()}


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
