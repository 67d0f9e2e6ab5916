"""Numbers and tables of the train-vs-test chapter (book/train_test.ipynb): population statistics
three ways, batch-statistics evaluation, the batch-size sweep, non-i.i.d. batches, BN as a
regularizer, and folding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from bnlib.functional import half_life, running_conventions, steps_to_forget, stream_of_batches
from bnlib.reports.format import Glued, Table, md, number, pct, percent, points, text
from bnlib.results import config, curves, final_metric, summary
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
    c = curves(run)
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


# --------------------------------------------------------------------------- what the prose glues, section by section
def _check(holds: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless the prose claim ``holds``."""
    if not holds:
        raise ValueError(message)


def _count(n) -> Glued:
    """A count with a thousands separator, for ``{glue:md}``."""
    return md(f"{int(n):,}")


def and_list(values: Sequence) -> str:
    """Values as prose: ``[2, 4, 8] -> "2, 4 and 8"``, ``[2] -> "2"``."""
    if not values:
        raise ValueError("and_list needs at least one value.")
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" and {words[-1]}"


def setup_numbers(res: Mapping[str, dict], run: dict) -> dict[str, Glued]:
    """The BN run's training settings, and the minutes all of the chapter's runs took to train (the sum of their
    training loops' wall times: what retraining them one after another costs)."""
    cfg = config(run)
    return {"tt_steps": _count(cfg["steps"]), "tt_batch": number(int(cfg["batch_size"])),
            "tt_lr": number(cfg["lr"]), "tt_sigma": number(cfg["init_sigma"]),
            "tt_total_minutes": number(sum(summary(r, "train_seconds") or 0.0 for e in res.values()
                                           for r in e["runs"].values()) / 60)}


def conventions_demo(m: int, mean: float, std: float, batches: int, p_fast: float, p_slow: float,
                     seed: int = 0) -> dict:
    """Running averages of one feature's batch statistics (``batches`` batches of ``m`` normal values)
    under both conventions, for PyTorch momenta ``p_fast`` and ``p_slow`` (what the conventions figure draws)."""
    bm, bv = stream_of_batches(batches, 1, m, mean, std, seed=seed)
    return {"fast": running_conventions(bm, bv, m, p_fast), "slow": running_conventions(bm, bv, m, p_slow),
            "m": m, "mean": mean, "var": std**2, "p_fast": p_fast, "p_slow": p_slow}


def conventions_numbers(demo: dict, forget: float = 0.05) -> dict[str, Glued]:
    """Half-lives and batches until the initial value weighs at most ``forget``, for the demo's two momenta
    (``p_fast``: PyTorch's default, ``p_slow``: Keras' default), and the demo's distribution."""
    return {"tt_half_torch": number(half_life(demo["p_fast"])), "tt_half_keras": number(half_life(demo["p_slow"])),
            "tt_conv_m": number(demo["m"]), "tt_conv_mean": number(demo["mean"]), "tt_conv_var": number(demo["var"]),
            "tt_forget_torch": number(steps_to_forget(demo["p_fast"], forget)),
            "tt_forget_keras": number(steps_to_forget(demo["p_slow"], forget))}


def population_numbers(pop: dict, cfg: dict, train_size: int) -> dict[str, Glued]:
    """The three estimates' accuracies and differences (:func:`population_summary`), with the prose's checks;
    ``train_size`` is the dataset's training set, less the run's validation split when ``cfg["train_subset"]`` is 0."""
    layer1 = pop["layers"][0]
    n_train = int(cfg["train_subset"] or train_size - int(cfg.get("validation") or 0))
    batch = int(cfg["batch_size"])
    _check(n_train % batch == 0, f"The text says Algorithm 2's batches partition the training set, but {n_train} "
                                 f"examples do not split into batches of {batch}.")
    _check(layer1["alg2_vs_exact_mean"] < 1e-9, "The text says Algorithm 2's means are exact in the first BN layer, "
                                                f"but they differ by {layer1['alg2_vs_exact_mean']:.2g}.")
    _check(pop["acc_spread"] < 0.002, "The text says the three estimates give test accuracies within a fraction of "
                                      f"a point, but they spread over {100 * pop['acc_spread']:.2f} points.")
    for kind, what in (("mean", "means"), ("var_rel", "variances")):
        run, alg2 = pop[f"max_running_vs_exact_{kind}"], pop[f"max_alg2_vs_exact_{kind}"]
        _check(run > alg2, f"The text says the running averages' {what} are further from the exact ones than "
                           f"Algorithm 2's, but they differ by {run:.2g} against {alg2:.2g}.")
    acc = pop["test_acc"]
    return {"tt_pop_acc_running": percent(acc["running"], 6), "tt_pop_acc_alg2": percent(acc["algorithm2"], 6),
            "tt_pop_acc_exact": percent(acc["exact"], 6), "tt_pop_spread": percent(pop["acc_spread"], 6),
            "tt_pop_run_mean": number(pop["max_running_vs_exact_mean"]),
            "tt_pop_alg2_mean": number(pop["max_alg2_vs_exact_mean"]),
            "tt_pop_run_var": percent(pop["max_running_vs_exact_var_rel"], 6),
            "tt_pop_alg2_var": percent(pop["max_alg2_vs_exact_var_rel"], 6),
            "tt_pop_alg2_mean_l1": number(layer1["alg2_vs_exact_mean"], 20),
            "tt_pop_alg2_var_l1": percent(layer1["alg2_vs_exact_var_rel"], 6),
            "tt_pop_alg2_mean_later": number(max(layer["alg2_vs_exact_mean"] for layer in pop["layers"][1:])),
            "tt_pop_nbatches": _count(n_train // batch)}


def ahead_count(gap: dict) -> tuple[int, int]:
    """Of the records after step 0 of :func:`train_eval_gap`, how many there are and at how many eval mode is ahead."""
    later = [d for s, d in zip(gap["step"], gap["gap"], strict=True) if s > 0]
    return len(later), sum(d > 0 for d in later)


def train_eval_numbers(gap: dict, record_every: int) -> dict[str, Glued]:
    """Eval mode against batch statistics along training (:func:`train_eval_gap`), with the prose's check."""
    n, ahead = ahead_count(gap)
    _check(gap["final_gap"] > 0 and ahead > n / 2,
           f"The text says eval mode is the better of the two along training, but it is ahead at {ahead} of {n} "
           f"records and by {100 * gap['final_gap']:.2f} points at the end.")
    return {"tt_record_every": number(int(record_every)), "tt_te_final_eval": percent(gap["eval"][-1], 6),
            "tt_te_final_batch": percent(gap["batch"][-1], 6), "tt_te_final_gap": percent(gap["final_gap"], 6),
            "tt_te_max_gap": percent(gap["max_abs_gap"], 6), "tt_te_max_gap_step": number(int(gap["max_abs_gap_step"])),
            "tt_te_n_records": number(n), "tt_te_n_ahead": number(ahead), "tt_te_gap0": percent(gap["gap"][0], 6)}


def test_batch_numbers(tb: dict) -> dict[str, Glued]:
    """Accuracy with batch statistics by test-batch size (:func:`test_batch_summary`), with the prose's checks."""
    acc = tb["acc"]
    _check(all(a < b for a, b in zip(acc[:-1], acc[1:], strict=True)),
           "The text says the accuracy with batch statistics climbs with the test-batch size, but it is "
           f"{[round(100 * a, 2) for a in acc]}%.")
    big, d_big = tb["sizes"][-1], tb["drop"][-1]
    climb = (f"The accuracy climbs with the test-batch size and never reaches eval mode: batches of {big} come "
             f"within {100 * d_big:.2f} points" if acc[-1] <= tb["eval_mode"] else
             f"The accuracy climbs with the test-batch size until batches of {big} match eval mode "
             f"({100 * acc[-1]:.2f}% against {100 * tb['eval_mode']:.2f}%, a difference one seed cannot resolve)")
    _check(tb["one_class"] < acc[0], "The text says one-class test batches are worse than any i.i.d. batch size, "
                                     f"but they score {100 * tb['one_class']:.2f}% against {100 * acc[0]:.2f}%.")
    out = {"tt_tb_eval": percent(tb["eval_mode"], 6), "tt_tb_climb": md(climb)}
    for s, a, d in zip(tb["sizes"], acc, tb["drop"], strict=True):
        out[f"tt_tb_acc_{s}"], out[f"tt_tb_drop_{s}"] = percent(a, 6), percent(d, 6)
    out["tt_tb_one_class"], out["tt_tb_one_class_drop"] = percent(tb["one_class"], 6), percent(tb["one_class_drop"], 6)
    return out


def renorm_numbers(bn_steps: int, r_max: float, d_max: float, r_ramp_steps: int, d_ramp_steps: int,
                   momentum: float) -> dict[str, Glued]:
    """Batch Renorm's schedule as the prose states it: the BN phase, the final limits and the steps that reach them."""
    return {"tt_rn_bn_steps": number(int(bn_steps)), "tt_rn_rmax": number(r_max), "tt_rn_dmax": number(d_max),
            "tt_rn_r_full": number(int(bn_steps + r_ramp_steps)), "tt_rn_d_full": number(int(bn_steps + d_ramp_steps)),
            "tt_rn_momentum": number(momentum)}


def noniid_drop(grid: dict, norm: str) -> float:
    """Eval-mode test accuracy lost by training ``norm`` on two-class batches instead of i.i.d. ones."""
    return grid[norm]["iid"]["test_acc"] - grid[norm]["2 classes"]["test_acc"]


def noniid_numbers(ni: dict) -> dict[str, Glued]:
    """Every accuracy of :func:`noniid_grid` and each norm's drop, with the prose's checks."""
    bn2, rn2 = ni["BN"]["2 classes"], ni["Batch Renorm"]["2 classes"]
    drop = {n: noniid_drop(ni, n) for n in ("none", "BN", "Batch Renorm")}
    _check(abs(drop["none"]) < 0.2 * drop["BN"], "The text says two-class batches cost the network without "
           f"normalization little next to BN, but they cost {100 * drop['none']:.2f} points against BN's "
           f"{100 * drop['BN']:.2f}.")
    _check(drop["BN"] > 0.05, f"The text says two-class batches cost BN many points, but they cost "
                              f"{100 * drop['BN']:.2f}.")
    bn_iid = ni["BN"]["iid"]
    _check(bn2["train_acc"] - bn2["test_acc"] < 0.03 and bn2["train_acc"] < bn_iid["train_acc"] - 0.05,
           "The text says BN trained on two-class batches is as poor on its training images, but it scores "
           f"{100 * bn2['train_acc']:.2f}% there against {100 * bn2['test_acc']:.2f}% on the test images.")
    _check(bn2["test_acc_batch"] < bn2["test_acc"], "The text says batch statistics are no better for BN trained on "
                                                    "two-class batches, but they beat eval mode.")
    _check(rn2["test_acc"] > bn2["test_acc"] + 0.05, "The text says Batch Renorm recovers most of what two-class "
                                                     f"batches cost BN, but it scores {100 * rn2['test_acc']:.2f}% "
                                                     f"against BN's {100 * bn2['test_acc']:.2f}%.")
    out = {}
    for n, key in (("none", "none"), ("BN", "bn"), ("Batch Renorm", "rn")):
        for s, skey in (("iid", "iid"), ("2 classes", "2c")):
            v = ni[n][s]
            out[f"tt_ni_{key}_{skey}"] = percent(v["test_acc"], 6)
            out[f"tt_ni_{key}_{skey}_batch"] = percent(v["test_acc_batch"], 6)
            out[f"tt_ni_{key}_{skey}_train"] = percent(v["train_acc"], 6)
    for n, key in (("BN", "bn"), ("Batch Renorm", "rn"), ("none", "none")):
        out[f"tt_ni_{key}_drop"] = percent(drop[n], 6)
    return out


def hidden_width(res: dict) -> int:
    """The width of the first hidden layer, which every run of the experiment shares."""
    widths = {int(config(run)["sizes"][1]) for run in res["runs"].values()}
    if len(widths) != 1:
        raise ValueError(f"the runs have hidden widths {sorted(widths)}, not one.")
    return widths.pop()


def best_size(grid: dict, norm: str) -> int:
    """The batch size at which ``norm``'s eval-mode test accuracy is highest (the smallest such size on ties)."""
    return max(grid["sizes"], key=lambda b: grid["acc"][norm][b])


def drop_from_best(grid: dict, norm: str, sizes: Sequence[int]) -> float:
    """How far ``norm``'s accuracy at the worst of ``sizes`` lies below its best at any batch size."""
    acc = grid["acc"][norm]
    return acc[best_size(grid, norm)] - min(acc[b] for b in sizes)


def gap_small_from(grid: dict, norm: str = "BN", within: float = 0.01) -> int | None:
    """The smallest batch size from which on ``norm``'s train/eval gap stays under ``within`` (None: never)."""
    sizes, gap = grid["sizes"], grid["gap"][norm]
    return next((b for i, b in enumerate(sizes) if all(abs(gap[c]) < within for c in sizes[i:])), None)


def batch_size_numbers(grid: dict, hidden: int, groups: int, examples: int, renorm_bn_steps: int,
                       stable_from: int = 16) -> dict[str, Glued]:
    """The batch-size sweep (:func:`batch_size_grid`) as the prose tells it, with its checks: ``hidden`` units
    in ``groups`` Group Norm groups, ``examples`` per run, Batch Renorm plain BN for ``renorm_bn_steps`` steps."""
    sizes, A, GAP = grid["sizes"], grid["acc"], grid["gap"]
    s0, s1, s2, largest = sizes[0], sizes[1], sizes[2], sizes[-1]
    behind = falls_behind(grid)
    _check(bool(behind) and behind == sizes[:len(behind)] and len(behind) < len(sizes),
           "The text says BN falls behind Layer and Group Norm exactly at the smallest batch sizes and is ahead "
           f"from some size on, but it is behind at {behind} of {sizes}.")
    small_from = gap_small_from(grid)
    _check(small_from is not None, "The text says BN's train/eval gap is under 1 point from some batch size on, "
                                   "but it is not.")
    lngn_drop = max(drop_from_best(grid, n, [s0]) for n in ("Layer Norm", "Group Norm"))
    rn_maxgap = max(abs(GAP["Batch Renorm"][b]) for b in sizes)
    steps_largest = examples // largest
    _check(A["BN"][s0] < A["BN"][s1] < A["BN"][s2] < A["BN"][stable_from],
           f"The text says BN's accuracy falls at every halving of the batch below {stable_from}, but it does not.")
    none_behind = max(0.0, max(max(A[n][b] for n in grid["norms"] if n != "none") - A["none"][b] for b in sizes))
    none_phrase = ("about as accurate as the best normalized one at every batch size"
                   if none_behind <= ABOUT_AS_ACCURATE else "behind the best normalized one at some batch sizes")
    _check(A["BN"][s0] < A["Batch Renorm"][s0] < min(A["Layer Norm"][s0], A["Group Norm"][s0]),
           f"The text says Batch Renorm lies between BN and Layer/Group Norm at B = {s0}, but it does not.")
    _check(all(GAP["BN"][b] > 0 for b in sizes if b < small_from) and GAP["BN"][s0] > GAP["BN"][s1] > GAP["BN"][s2],
           f"The text says BN is more accurate in eval mode at every batch size below {small_from}, the more so the "
           "smaller the batch, but it is not.")
    _check(lngn_drop < 0.005, "The text says Layer and Group Norm lose at most a fraction of a point between their "
                              f"best batch size and B = {s0}, but they lose {100 * lngn_drop:.2f}.")
    _check(rn_maxgap < 0.01, "The text says Batch Renorm's two modes agree within a point at every batch size, but "
                             f"they differ by {100 * rn_maxgap:.2f}.")
    _check(steps_largest < renorm_bn_steps, f"The text says Batch Renorm never leaves its BN phase at B = {largest}, "
                                            f"but the epoch has {steps_largest} steps against {renorm_bn_steps}.")
    _check(max(A["Layer Norm"][largest], A["Group Norm"][largest]) < A["BN"][largest],
           f"The text says Layer and Group Norm fall behind BN at B = {largest}, but they do not.")
    out = {"tt_bs_lr_min": number(grid["lr"][min(sizes)]), "tt_bs_lr_max": number(grid["lr"][max(sizes)]),
           "tt_hidden": number(int(hidden)), "tt_gn_groups": number(int(groups)), "tt_bs_examples": _count(examples),
           "tt_bs_sizes": md(and_list(sizes)), "tt_gn_size": number(int(hidden) // int(groups)),
           "tt_bs_behind": md(and_list(behind)), "tt_bs_ahead_from": number(sizes[len(behind)]),
           "tt_bs_smallest": number(s0), "tt_bs_second": number(s1), "tt_bs_largest": number(largest)}
    for n, key in (("none", "none"), ("BN", "bn"), ("Batch Renorm", "rn"), ("Layer Norm", "ln"), ("Group Norm", "gn")):
        for b in (s0, s1, s2, largest):
            out[f"tt_bs_{key}_{b}"] = percent(A[n][b], 6)
        best = best_size(grid, n)
        out[f"tt_bs_{key}_best"], out[f"tt_bs_{key}_best_at"] = percent(A[n][best], 6), number(best)
    for b in sizes:
        out[f"tt_bs_bn_gap_{b}"] = percent(GAP["BN"][b], 6)
    out.update({"tt_bs_gap_small_from": number(small_from), "tt_bs_rn_maxgap": percent(rn_maxgap, 6),
                "tt_bs_bn_stable": percent(drop_from_best(grid, "BN", [b for b in sizes if b >= stable_from]), 6),
                "tt_bs_lngn_drop2": percent(lngn_drop, 6), "tt_bs_none_min": percent(min(A["none"].values()), 6),
                "tt_bs_none_max": percent(max(A["none"].values()), 6), "tt_bs_steps_largest": _count(steps_largest),
                "tt_bs_lr_largest": number(grid["lr"][largest]), "tt_bs_none_behind": percent(none_behind, 6),
                "tt_bs_none_phrase": text(none_phrase)})
    return out


#: "About as accurate" in the batch-size sweep's caveat: at most this far (a fraction) behind the best.
ABOUT_AS_ACCURATE = 0.005


def binomial_se(p: float, n: int) -> float:
    """The standard error of an accuracy ``p`` measured on ``n`` independent examples."""
    return (p * (1 - p) / n) ** 0.5


def regularizer_numbers(res: dict, test_size: int) -> dict[str, Glued]:
    """The regularizer experiment (:func:`regularizer_grid`) as the prose tells it, with its checks;
    ``test_size`` images give the binomial standard error."""
    reg = regularizer_grid(res)
    cfg = config(next(iter(res["runs"].values())))
    acc = {(r["norm"], r["dropout"]): r["test_acc"] for r in reg}
    p0 = acc[("none", 0.0)]
    gains = {"bn": acc[("BN", 0.0)] - p0, "do": acc[("none", 0.3)] - p0, "both": acc[("BN", 0.3)] - p0}
    min_train = min(r["train_acc"] for r in reg)
    _check(min_train >= 0.999, "The text says all four networks fit practically all their training images, but one "
                               f"fits {100 * min_train:.2f}%.")
    _check(acc[("BN", 0.3)] > max(acc[("BN", 0.0)], acc[("none", 0.3)]) > p0,
           "The text says BN and dropout each raise the test accuracy and together raise it most, but they do not.")
    se = binomial_se(p0, test_size)
    reading = ("about as much as dropout does" if abs(gains["bn"] - gains["do"]) < se else
               "less than dropout does" if gains["bn"] < gains["do"] else "more than dropout does")
    out = {"tt_reg_n": _count(cfg["train_subset"]), "tt_reg_steps": _count(cfg["steps"]),
           "tt_reg_p": number(max(r["dropout"] for r in reg))}
    for n, key in (("none", "none"), ("BN", "bn")):
        for p, pkey in ((0.0, "d0"), (0.3, "d3")):
            r = regularizer_row(reg, n, p)
            out.update({f"tt_reg_{key}_{pkey}_test": percent(r["test_acc"], 6),
                        f"tt_reg_{key}_{pkey}_train": percent(r["train_acc"], 6),
                        f"tt_reg_{key}_{pkey}_gap": percent(r["acc_gap"], 6),
                        f"tt_reg_{key}_{pkey}_lgap": number(r["loss_gap"]),
                        f"tt_reg_{key}_{pkey}_tloss": number(r["test_loss"])})
    out["tt_reg_se"] = percent(se, 6)
    out["tt_reg_min_train"] = percent(min_train, 6)
    out["tt_reg_reading"] = text(reading)
    out.update({f"tt_reg_gain_{k}": percent(v, 6) for k, v in gains.items()})
    return out


def fold_numbers(fold: dict, provenance: dict) -> dict[str, Glued]:
    """Folding's error and timing (:func:`fold_summary`) and the machine that timed it, with the prose's check."""
    _check(fold["max_abs_diff"] < 1e-4 and fold["same_predictions"] == 1.0,
           "The text says folding changes the logits only by float32 rounding and not one prediction, but max "
           f"|difference| is {fold['max_abs_diff']:.2g} and {100 * fold['same_predictions']:.4g}% agree.")
    threads = provenance["threads"]
    return {"tt_fold_diff": number(fold["max_abs_diff"], 12), "tt_fold_speedup": number(fold["speedup"]),
            "tt_fold_ms_bn": number(1000 * fold["seconds_bn"]),
            "tt_fold_ms_folded": number(1000 * fold["seconds_folded"]),
            "tt_fold_device": md(f"{provenance['device']}, {threads} thread" + ("s" if threads != 1 else ""))}


def exercise_numbers(m: int) -> dict[str, Glued]:
    """The Keras exercise's batch size ``m`` and the variance ratio ``(m - 1) / m`` its answer tends to."""
    return {"tt_ex_m": number(m), "tt_ex_ratio": number((m - 1) / m)}
