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
            "group": "Group Norm", "noisy": "noisy BN"}.get(norm, str(norm))


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
