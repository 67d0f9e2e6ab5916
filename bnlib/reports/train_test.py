"""Numbers and tables of the train-vs-test chapter (book/train_test.ipynb): population statistics
three ways, batch-statistics evaluation, the batch-size sweep, non-i.i.d. batches, BN as a
regularizer, and folding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bnlib.reports.format import Table, pct, points
from bnlib.results import final_metric
from bnlib.vocabulary import norm_name


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
