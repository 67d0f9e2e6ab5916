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
