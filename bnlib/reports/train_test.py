"""Numbers and tables of the train-vs-test chapter (book/train_test.ipynb): population statistics
three ways, batch-statistics evaluation, the batch-size sweep, non-i.i.d. batches, BN as a
regularizer, and folding.

The *one-seed* functions (``population_summary``, ``train_eval_gap``, ``test_batch_summary``, ``batch_size_grid``,
``noniid_grid``, ``regularizer_grid``, ``fold_summary``) read one seed's result (the claims ledger calls them through
:func:`bnlib.results.by_seed`); the chapter's ``*_numbers``, tables and bands take a list of their outputs, one per
seed (:func:`seeded`). BN networks are scored with population statistics recomputed over the training split
(``final_test_acc_pop``), eval mode with running averages beside it (``*_eval`` keys); choices use validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import product
from statistics import fmean, median

from bnlib.functional import half_life, running_conventions, steps_to_forget, stream_of_batches
from bnlib.reports import evidence as EV
from bnlib.reports.format import Glued, Table, and_list, fmt_mean_hw, fmt_paired, md, number, percent, signed, text
from bnlib.results import by_seed, config, curves, final_metric, summary
from bnlib.vocabulary import norm_name

#: A difference between two settings is settled when its paired 95% interval lies wholly on one side of this
#: margin (zero: the sign of the effect); an interval that straddles it is inconclusive.
MARGIN = 0.0


# --------------------------------------------------------------------------- seeds
def seeded(res: dict, fn: Callable[[dict], object]) -> list:
    """``fn`` of each seed's one-seed result (:func:`bnlib.results.by_seed`), in seed order."""
    return EV.per_seed(by_seed(res), fn)


def pop_metric(run: dict, key: str = "final_test_acc") -> float | None:
    """``key + "_pop"`` (population statistics over the training split) where the run recorded it, else ``key``."""
    return final_metric(run, f"{key}_pop" if f"{key}_pop" in run["summary"] else key)


def mean_hw(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """The seed mean and the half-width of its 95% interval; (None, None) when a seed has no value (diverged)."""
    if any(v is None for v in values):
        return None, None
    return EV.mean_interval(values)


def cell(values: Sequence[float | None], scale: float = 100, digits: int = 2) -> str:
    """A table cell: "mean ± half-width" over the seeds (:func:`bnlib.reports.format.fmt_mean_hw`)."""
    return fmt_mean_hw(*mean_hw(values), scale=scale, digits=digits)


def pair(a: Sequence[float | None], b: Sequence[float | None], what: str = "the comparison") -> EV.Paired:
    """The paired difference ``a - b`` over seeds (:func:`bnlib.reports.evidence.paired`); errs on a diverged seed."""
    if any(v is None for v in (*a, *b)):
        raise ValueError(f"a seed of {what} has no value (a run diverged): nothing to pair.")
    return EV.paired(a, b)


def sign(p: EV.Paired, margin: float = MARGIN) -> int:
    """+1 when the interval of ``p`` lies above ``margin``, -1 when below ``-margin``, 0 when it straddles it
    (or fewer than :data:`bnlib.reports.evidence.MIN_SEEDS` seeds), by :func:`bnlib.reports.evidence.judge`."""
    if EV.judge(p, margin, 1) == EV.SUPPORTED:
        return 1
    return -1 if EV.judge(p, margin, -1) == EV.SUPPORTED else 0


def _md_pair(p: EV.Paired) -> Glued:
    return md(fmt_paired(p))


def _paired_cell(p: EV.Paired) -> str:
    return signed(100 * p.mean) + (f" ± {100 * p.half_width:.2f}" if p.n > 1 else "")


def _check(holds: bool, message: str) -> None:
    if not holds:
        raise ValueError(message)


def _count(n) -> Glued:
    return md(f"{int(n):,}")


# --------------------------------------------------------------------------- population statistics
_POP_KEYS = ("running_vs_exact_mean", "running_vs_exact_var_rel", "alg2_vs_exact_mean", "alg2_vs_exact_var_rel")
_ESTIMATES = (("running", "running averages (PyTorch, momentum 0.1)"), ("algorithm2", "Algorithm 2"),
              ("exact", "calibration pass (exact, whole training set)"))


def population_summary(run: dict) -> dict:
    """One run's ``"population"`` analysis: ``layers`` (per BN layer, the running averages' and Algorithm 2's
    largest differences from the exact statistics), ``test_acc`` by estimate, ``acc_spread`` and ``max_<difference>``
    over layers."""
    pop = run.get("analysis", {}).get("population")
    if not pop:
        raise ValueError("the run has no 'population' analysis (train it with analyses=('population',)).")
    layers, accs = pop["layers"], pop["test_acc"]
    return {"layers": layers, "test_acc": dict(accs), "acc_spread": max(accs.values()) - min(accs.values()),
            **{f"max_{k}": max(layer[k] for layer in layers) for k in _POP_KEYS}}


def population_band(pops: Sequence[dict]) -> dict:
    """Per BN layer, the seed mean (``layers``) and 95% half-width (``layers_hw``) of each difference of
    :func:`population_summary` (what the population figure draws)."""
    mh = [{k: mean_hw([p["layers"][i][k] for p in pops]) for k in _POP_KEYS} for i in range(len(pops[0]["layers"]))]
    return {"layers": [{k: v[0] for k, v in d.items()} for d in mh], "layers_hw": [{k: v[1] for k, v in d.items()}
                                                                                  for d in mh]}


def population_acc_table(pops: Sequence[dict], batch_size: int) -> Table:
    """The test accuracy each estimate gives, seed mean ± 95% half-width."""
    rows = [[label if key != "algorithm2" else f"{label} (training set, batches of {batch_size})",
             cell([p["test_acc"][key] for p in pops])] for key, label in _ESTIMATES]
    return Table(["population statistics", "test accuracy (%)"], rows)


def _sci(values: Sequence[float]) -> str:
    m, hw = mean_hw(values)
    return f"{m:.2e}" + (f" ± {hw:.1e}" if hw else "")


def population_table(pops: Sequence[dict]) -> Table:
    """Per-layer differences of running averages and Algorithm 2 from the exact statistics, mean ± 95% half-width."""
    rows = [[i + 1, *[_sci([p["layers"][i][k] for p in pops]) for k in _POP_KEYS]]
            for i in range(len(pops[0]["layers"]))]
    return Table(["BN layer", "running: max|dmean|", "running: max|dvar|/var", "Alg. 2: max|dmean|",
                  "Alg. 2: max|dvar|/var"], rows)


POP_SPREAD = 0.002  # "within a fraction of a point": the three estimates' seed-mean test accuracies


def population_numbers(pops: Sequence[dict], cfg: dict, train_size: int) -> dict[str, Glued]:
    """The three estimates' accuracies and differences (one :func:`population_summary` per seed), with the prose's
    checks; ``train_size`` is the dataset's training set, less the run's validation split when
    ``cfg["train_subset"]`` is 0."""
    n_train, batch = int(cfg["train_subset"] or train_size - int(cfg.get("validation") or 0)), int(cfg["batch_size"])
    _check(n_train % batch == 0, f"The text says Algorithm 2's batches partition the training set, but {n_train} "
                                 f"examples do not split into batches of {batch}.")
    l1 = max(p["layers"][0]["alg2_vs_exact_mean"] for p in pops)
    _check(l1 < 1e-9, f"The text says Algorithm 2's means are exact in the first BN layer, but differ by {l1:.2g}.")
    acc = {k: [p["test_acc"][k] for p in pops] for k, _ in _ESTIMATES}
    means = {k: fmean(v) for k, v in acc.items()}
    spread = max(means.values()) - min(means.values())
    _check(spread < POP_SPREAD, "The text says the three estimates give test accuracies within a fraction of a point, "
                                f"but their seed means spread over {100 * spread:.2f} points.")
    for kind, what in (("mean", "means"), ("var_rel", "variances")):
        worse = sum(p[f"max_running_vs_exact_{kind}"] > p[f"max_alg2_vs_exact_{kind}"] for p in pops)
        _check(worse == len(pops), f"The text says the running averages' {what} are further from the exact ones than "
                                   f"Algorithm 2's in every seed, but they are in {worse} of {len(pops)}.")
    avg = {k: fmean([p[k] for p in pops]) for k in pops[0] if k.startswith("max_")}
    return {"tt_pop_acc_running": percent(means["running"], 6), "tt_pop_acc_alg2": percent(means["algorithm2"], 6),
            "tt_pop_acc_exact": percent(means["exact"], 6), "tt_pop_spread": percent(spread, 6),
            "tt_pop_alg2_vs_running": _md_pair(pair(acc["algorithm2"], acc["running"])),
            "tt_pop_exact_vs_running": _md_pair(pair(acc["exact"], acc["running"])),
            "tt_pop_run_mean": number(avg["max_running_vs_exact_mean"]),
            "tt_pop_alg2_mean": number(avg["max_alg2_vs_exact_mean"]),
            "tt_pop_run_var": percent(avg["max_running_vs_exact_var_rel"], 6),
            "tt_pop_alg2_var": percent(avg["max_alg2_vs_exact_var_rel"], 6),
            "tt_pop_alg2_mean_l1": number(l1, 20),
            "tt_pop_alg2_var_l1": percent(fmean([p["layers"][0]["alg2_vs_exact_var_rel"] for p in pops]), 6),
            "tt_pop_alg2_mean_later": number(fmean([max(x["alg2_vs_exact_mean"] for x in p["layers"][1:])
                                                    for p in pops])),
            "tt_pop_nbatches": _count(n_train // batch), "tt_pop_seeds": number(len(pops))}


# --------------------------------------------------------------------------- train mode vs eval mode
def train_eval_gap(run: dict) -> dict:
    """One run's test accuracy along training in eval mode (running averages) and with batch statistics: ``step``,
    ``eval``, ``batch``, ``gap = eval - batch``, ``final_gap``, and the largest ``|gap|`` after step 0 with its step
    (``max_abs_gap``, ``max_abs_gap_step``)."""
    c = curves(run)
    step, ev, bs = list(c["step"]), list(c["test_acc"]), list(c["test_acc_batchstats"])
    if not step:
        raise ValueError("the run has no recorded curves.")
    gap = [e - b for e, b in zip(ev, bs, strict=True)]
    later = [(abs(g), s) for g, s in zip(gap, step, strict=True) if s > 0] or [(abs(gap[0]), step[0])]
    m, at = max(later, key=lambda t: t[0])
    return {"step": step, "eval": ev, "batch": bs, "gap": gap, "final_gap": gap[-1], "max_abs_gap": m,
            "max_abs_gap_step": at}


def train_eval_band(gaps: Sequence[dict]) -> dict:
    """The seed mean and 95% half-width, record by record, of ``eval``, ``batch`` and ``gap`` of
    :func:`train_eval_gap` (keys ``<name>`` and ``<name>_hw``), and the shared ``step``."""
    step = gaps[0]["step"]
    if any(g["step"] != step for g in gaps):
        raise ValueError("the seeds recorded at different steps; their curves cannot be averaged record by record.")
    out: dict = {"step": step}
    for key in ("eval", "batch", "gap"):
        mh = [mean_hw([g[key][i] for g in gaps]) for i in range(len(step))]
        out[key], out[f"{key}_hw"] = [m for m, _ in mh], [h for _, h in mh]
    return out


def train_eval_numbers(gaps: Sequence[dict], record_every: int) -> dict[str, Glued]:
    """Eval mode against batch statistics along training (one :func:`train_eval_gap` per seed), with the prose's
    check: eval mode ahead at most records and, paired over seeds, at the end."""
    band = train_eval_band(gaps)
    later = [(d, s) for s, d in zip(band["step"], band["gap"], strict=True) if s > 0]
    n, ahead = len(later), sum(d > 0 for d, _ in later)
    final = pair([g["eval"][-1] for g in gaps], [g["batch"][-1] for g in gaps], "the final records")
    _check(sign(final) == 1 and ahead > n / 2,
           f"The text says eval mode is the better of the two along training, but its seed mean is ahead at {ahead} of "
           f"{n} records and at the end the difference is {fmt_paired(final)}.")
    m, at = max((abs(d), s) for d, s in later)
    return {"tt_record_every": number(int(record_every)), "tt_te_final_eval": percent(band["eval"][-1], 6),
            "tt_te_final_batch": percent(band["batch"][-1], 6), "tt_te_final_gap": percent(final.mean, 6),
            "tt_te_final_pair": _md_pair(final), "tt_te_max_gap": percent(m, 6), "tt_te_max_gap_step": number(int(at)),
            "tt_te_n_records": number(n), "tt_te_n_ahead": number(ahead), "tt_te_gap0": percent(band["gap"][0], 6)}


# --------------------------------------------------------------------------- evaluating with batch statistics
def test_batch_summary(run: dict) -> dict:
    """One run's ``"test_batches"`` analysis: ``eval_mode``, ``sizes`` (ascending), ``acc`` with batch statistics and
    ``drop = eval_mode - acc`` (by size), ``one_class`` and ``one_class_drop`` (one-class batches of 64)."""
    tb = run.get("analysis", {}).get("test_batches")
    if not tb:
        raise ValueError("the run has no 'test_batches' analysis (train it with analyses=('test_batches',)).")
    sizes = sorted(int(s) for s in tb["by_size"])
    acc = [tb["by_size"][str(s)] for s in sizes]
    ev = tb["eval_mode"]
    return {"eval_mode": ev, "sizes": sizes, "acc": acc, "drop": [ev - a for a in acc],
            "one_class": tb["one_class_64"], "one_class_drop": ev - tb["one_class_64"]}


def test_batch_band(tbs: Sequence[dict]) -> dict:
    """Seed means and 95% half-widths (``<key>_hw``) of :func:`test_batch_summary`'s accuracies."""
    sizes = tbs[0]["sizes"]
    mh = [mean_hw([t["acc"][i] for t in tbs]) for i in range(len(sizes))]
    ev, oc = mean_hw([t["eval_mode"] for t in tbs]), mean_hw([t["one_class"] for t in tbs])
    return {"sizes": sizes, "acc": [m for m, _ in mh], "acc_hw": [h for _, h in mh], "eval_mode": ev[0],
            "eval_mode_hw": ev[1], "one_class": oc[0], "one_class_hw": oc[1]}


def _drops(tbs: Sequence[dict]) -> list[EV.Paired]:
    ev = [t["eval_mode"] for t in tbs]
    return [pair(ev, [t["acc"][i] for t in tbs], "eval mode vs batch statistics") for i in range(len(tbs[0]["sizes"]))]


def test_batch_table(tbs: Sequence[dict]) -> Table:
    """Test accuracy by test-time normalization and its drop from eval mode (paired), mean ± 95% half-width."""
    drops = _drops(tbs)
    one = pair([t["eval_mode"] for t in tbs], [t["one_class"] for t in tbs], "one-class batches")
    rows = [["eval mode (running averages)", cell([t["eval_mode"] for t in tbs]), "0"]]
    rows += [[f"batch statistics, i.i.d. batches of {s}", cell([t["acc"][i] for t in tbs]), _paired_cell(d)]
             for i, (s, d) in enumerate(zip(tbs[0]["sizes"], drops, strict=True))]
    rows.append(["batch statistics, one-class batches of 64", cell([t["one_class"] for t in tbs]), _paired_cell(one)])
    return Table(["test-time normalization", "test accuracy (%)", "drop vs eval mode (points)"], rows)


def test_batch_numbers(tbs: Sequence[dict]) -> dict[str, Glued]:
    """Accuracy with batch statistics by test-batch size (a :func:`test_batch_summary` per seed), with checks."""
    band, drops = test_batch_band(tbs), _drops(tbs)
    acc = band["acc"]
    _check(all(a < b for a, b in zip(acc[:-1], acc[1:], strict=True)),
           "The text says the accuracy with batch statistics climbs with the test-batch size, but its seed means are "
           f"{[round(100 * a, 2) for a in acc]}%.")
    big, d_big = band["sizes"][-1], drops[-1]
    climb = ("The accuracy climbs with the test-batch size " + {
        1: f"and never reaches eval mode: batches of {big} come within {100 * d_big.mean:.2f} points",
        0: f"until batches of {big} are level with eval mode", -1: f"until batches of {big} overtake eval mode"}[
        sign(d_big)] + f" (eval mode minus batch statistics {fmt_paired(d_big)}"
             + ("" if sign(d_big) else ", inconclusive") + ")")
    first = pair([t["acc"][0] for t in tbs], [t["one_class"] for t in tbs], "one-class batches")
    _check(sign(first) == 1, "The text says one-class test batches are worse than any i.i.d. batch size, but against "
                             f"batches of {band['sizes'][0]} the difference is {fmt_paired(first)}.")
    out = {"tt_tb_eval": percent(band["eval_mode"], 6), "tt_tb_climb": md(climb)}
    for s, a, d in zip(band["sizes"], acc, drops, strict=True):
        out[f"tt_tb_acc_{s}"], out[f"tt_tb_drop_{s}"] = percent(a, 6), percent(d.mean, 6)
    return {**out, "tt_tb_one_class": percent(band["one_class"], 6),
            "tt_tb_one_class_drop": percent(band["eval_mode"] - band["one_class"], 6)}


# --------------------------------------------------------------------------- the training batch size
def batch_size_grid(res: dict) -> dict:
    """One seed's batch-size sweep: ``sizes``, ``norms`` (book labels), ``lr`` (by size), and by norm and size
    ``acc`` (test, BN with population statistics: :func:`pop_metric`), ``acc_eval`` (eval mode, running averages),
    ``acc_batch`` (batch statistics over test batches of the training batch size), ``gap = acc - acc_batch`` and
    ``val_acc`` (validation, measured as ``acc``); None for a diverged run."""
    sizes, norms, lr = set(), [], {}
    out: dict = {k: {} for k in ("acc", "acc_eval", "acc_batch", "val_acc")}
    for run in res["runs"].values():
        cfg = run["config"]
        b, name = int(cfg["batch_size"]), norm_name(cfg["norm"])
        if name not in norms:
            norms.append(name)
        sizes.add(b)
        if b in lr and not math.isclose(lr[b], cfg["lr"], rel_tol=1e-9):
            raise ValueError(f"batch size {b} is trained with two learning rates ({lr[b]} and {cfg['lr']}).")
        lr[b] = cfg["lr"]
        ev = final_metric(run, "final_test_acc")
        vals = {"acc": pop_metric(run), "acc_eval": ev, "val_acc": pop_metric(run, "final_val_acc"),
                "acc_batch": final_metric(run, "final_test_acc_batchstats") if cfg["norm"] else ev}
        for k, v in vals.items():
            out[k].setdefault(name, {})[b] = v
    acc, acc_b = out["acc"], out["acc_batch"]
    gap = {n: {b: (None if acc[n][b] is None or acc_b[n][b] is None else acc[n][b] - acc_b[n][b]) for b in acc[n]}
           for n in norms}
    return {"sizes": sorted(sizes), "norms": norms, "lr": lr, **out, "gap": gap}


def batch_size_band(grids: Sequence[dict]) -> dict:
    """The seeds' :func:`batch_size_grid` in one grid of seed means (same keys; None where a seed diverged), with
    the 95% half-widths under ``<key>_hw`` and the per-seed grids under ``seeds``."""
    g0 = grids[0]
    if any(g["sizes"] != g0["sizes"] or g["norms"] != g0["norms"] for g in grids):
        raise ValueError("the seeds' sweeps have different batch sizes or normalizations.")
    out = {"sizes": g0["sizes"], "norms": g0["norms"], "lr": g0["lr"], "seeds": list(grids)}
    for k in ("acc", "acc_eval", "acc_batch", "val_acc", "gap"):
        mh = {n: {b: mean_hw([g[k][n].get(b) for g in grids]) for b in g0["sizes"]} for n in g0["norms"]}
        out[k], out[f"{k}_hw"] = ({n: {b: v[i] for b, v in by.items()} for n, by in mh.items()} for i in (0, 1))
    return out


def _seed_values(band: dict, key: str, norm: str, b: int) -> list:
    return [g[key][norm].get(b) for g in band["seeds"]]


def bn_versus(band: dict, norm: str = "BN", others: Sequence[str] = ("Layer Norm", "Group Norm")) -> dict:
    """At each batch size, ``norm`` against the better of ``others`` there, the better chosen by the seed-mean
    validation accuracy: ``{size: {"other", "paired" (norm - other on the test set, by seed), "sign"}}``
    (:func:`sign`: +1 ahead, -1 behind, 0 inconclusive)."""
    if missing := [n for n in (norm, *others) if n not in band["acc"]]:
        raise ValueError(f"norm {missing[0]!r} is not in the grid; it has {band['norms']}.")
    out = {}
    for b in band["sizes"]:
        other = max(others, key=lambda o: -math.inf if band["val_acc"][o][b] is None else band["val_acc"][o][b])
        p = pair(_seed_values(band, "acc", norm, b), _seed_values(band, "acc", other, b), f"{norm} vs {other} at {b}")
        out[b] = {"other": other, "paired": p, "sign": sign(p)}
    return out


def versus_table(vs: dict, norm: str = "BN") -> Table:
    """One row per batch size: the better of the others (on validation), ``norm`` minus it (paired), the verdict."""
    rows = [[b, v["other"], fmt_paired(v["paired"]).replace(" points", ""),
             {1: "ahead", 0: "inconclusive", -1: "behind"}[v["sign"]]] for b, v in vs.items()]
    return Table(["batch size", "better of Layer/Group Norm (validation)", f"{norm} minus it (points, 95% CI)",
                  f"{norm} is"], rows)


def batch_size_table(band: dict, key: str = "acc") -> Table:
    """One row per batch size (and learning rate), one column per norm: ``key`` as mean ± 95% half-width, in %."""
    rows = [[b, f"{band['lr'][b]:.4g}", *[cell(_seed_values(band, key, n, b)) for n in band["norms"]]]
            for b in band["sizes"]]
    return Table(["batch size", "learning rate", *band["norms"]], rows)


def best_size(grid: dict, norm: str, key: str = "val_acc") -> int:
    """The batch size of ``norm``'s highest ``grid[key]`` (validation: a choice), the smallest on ties."""
    return max(grid["sizes"], key=lambda b: grid[key][norm][b])


def drop_from_best(grid: dict, norm: str, sizes: Sequence[int]) -> float:
    """How far ``norm``'s test accuracy at the worst of ``sizes`` lies below its test accuracy at the batch size of
    best validation accuracy (:func:`best_size`)."""
    acc = grid["acc"][norm]
    return acc[best_size(grid, norm)] - min(acc[b] for b in sizes)


def gap_small_from(grid: dict, norm: str = "BN", within: float = 0.01) -> int | None:
    """The smallest batch size from which on ``norm``'s train/eval gap stays under ``within`` (None: never)."""
    sizes, gap = grid["sizes"], grid["gap"][norm]
    return next((b for i, b in enumerate(sizes) if all(abs(gap[c]) < within for c in sizes[i:])), None)


ABOUT_AS_ACCURATE = 0.005  # "about as accurate" in the batch-size caveat: at most this far behind the best


def _versus_sentence(vs: dict) -> str:
    at = {s: and_list([b for b, v in vs.items() if v["sign"] == s] or ["-"]) for s in (-1, 0, 1)}
    parts = [f"falls behind the better of the two at batch sizes {at[-1]}",
             f"is level with it within the interval at {at[0]}", f"is ahead at {at[1]}"]
    parts = [t for t in parts if not t.endswith(" -")]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def batch_size_numbers(band: dict, hidden: int, groups: int, examples: int, renorm_bn_steps: int,
                       stable_from: int = 16) -> dict[str, Glued]:
    """The batch-size sweep (a :func:`batch_size_band` of the seeds) as the prose tells it, with its checks:
    ``hidden`` units in ``groups`` Group Norm groups, ``examples`` per run, Batch Renorm plain BN for
    ``renorm_bn_steps`` steps. Accuracies are seed means; BN against Layer/Group Norm is paired by seed."""
    sizes, A, GAP = band["sizes"], band["acc"], band["gap"]
    s0, s1, s2, largest = sizes[0], sizes[1], sizes[2], sizes[-1]
    vs = bn_versus(band)
    behind = [b for b, v in vs.items() if v["sign"] == -1]
    _check(bool(behind) and behind == sizes[:len(behind)] and len(behind) < len(sizes),
           "The text says BN falls behind Layer and Group Norm exactly at the smallest batch sizes, but by the paired "
           f"intervals it is behind at {behind} of {sizes}.")
    _check(vs[largest]["sign"] == 1, f"The text says Layer and Group Norm fall behind BN at B = {largest}, but BN "
                                     f"minus {vs[largest]['other']} there is {fmt_paired(vs[largest]['paired'])}.")
    small_from = gap_small_from(band)
    _check(small_from is not None, "The text says BN's train/eval gap is under 1 point from some batch size on, "
                                   "but it is not.")
    lngn_drop = max(drop_from_best(band, n, [s0]) for n in ("Layer Norm", "Group Norm"))
    rn_off = [b for b in sizes if abs(GAP["Batch Renorm"][b]) >= 0.01]  # beyond a point
    rn_maxgap = max(abs(GAP["Batch Renorm"][b]) for b in sizes if b not in rn_off)
    steps_largest = examples // largest
    _check(A["BN"][s0] < A["BN"][s1] < A["BN"][s2] < A["BN"][stable_from],
           f"The text says BN's accuracy falls at every halving of the batch below {stable_from}, but it does not.")
    none_behind = max(0.0, max(max(A[n][b] for n in band["norms"] if n != "none") - A["none"][b] for b in sizes))
    none_phrase = ("about as accurate as the best normalized one at every batch size"
                   if none_behind <= ABOUT_AS_ACCURATE else "behind the best normalized one at some batch sizes")
    _check(A["BN"][s0] < A["Batch Renorm"][s0] < min(A["Layer Norm"][s0], A["Group Norm"][s0]),
           f"The text says Batch Renorm lies between BN and Layer/Group Norm at B = {s0}, but it does not.")
    _check(all(GAP["BN"][b] > 0 for b in sizes if b < small_from) and GAP["BN"][s0] > GAP["BN"][s1] > GAP["BN"][s2],
           f"The text says BN is more accurate with population statistics at every batch size below {small_from}, the "
           "more so the smaller the batch, but it is not.")
    _check(lngn_drop < 0.005, "The text says Layer and Group Norm lose at most a fraction of a point between their "
                              f"best batch size and B = {s0}, but they lose {100 * lngn_drop:.2f}.")
    _check(rn_off in ([], [largest]), "The text says Batch Renorm's two modes agree within a point at every batch size "
                                      f"but perhaps the largest, but they differ by more at {rn_off}.")
    rn_where = "at every batch size" if not rn_off else (
        "at every batch size but the largest, where its epoch ends inside its plain-BN phase: there the "
        "difference is "
        + fmt_paired(pair(_seed_values(band, "acc", "Batch Renorm", largest),
                          _seed_values(band, "acc_batch", "Batch Renorm", largest), "Batch Renorm's gap")))
    _check(steps_largest < renorm_bn_steps, f"The text says Batch Renorm never leaves its BN phase at B = {largest}, "
                                            f"but the epoch has {steps_largest} steps against {renorm_bn_steps}.")
    bn_gap = {b: pair(_seed_values(band, "acc", "BN", b), _seed_values(band, "acc_batch", "BN", b), "BN's gap")
              for b in (s0, s1)}
    out = {"tt_bs_lr_min": number(band["lr"][min(sizes)]), "tt_bs_lr_max": number(band["lr"][max(sizes)]),
           "tt_hidden": number(int(hidden)), "tt_gn_groups": number(int(groups)), "tt_bs_examples": _count(examples),
           "tt_bs_sizes": md(and_list(sizes)), "tt_gn_size": number(int(hidden) // int(groups)),
           "tt_bs_behind": md(and_list(behind)), "tt_bs_versus": md(_versus_sentence(vs)),
           "tt_bs_bn_vs_2": _md_pair(vs[s0]["paired"]), "tt_bs_bn_vs_largest": _md_pair(vs[largest]["paired"]),
           "tt_bs_smallest": number(s0), "tt_bs_second": number(s1), "tt_bs_largest": number(largest),
           "tt_bs_seeds": number(len(band["seeds"]))}
    for n, key in (("none", "none"), ("BN", "bn"), ("Batch Renorm", "rn"), ("Layer Norm", "ln"), ("Group Norm", "gn")):
        for b in (s0, s1, s2, largest):
            out[f"tt_bs_{key}_{b}"] = percent(A[n][b], 6)
        best = best_size(band, n)
        out[f"tt_bs_{key}_best"], out[f"tt_bs_{key}_best_at"] = percent(A[n][best], 6), number(best)
    for b in sizes:
        out[f"tt_bs_bn_gap_{b}"] = percent(GAP["BN"][b], 6)
    out.update({"tt_bs_bn_gap_pair_2": _md_pair(bn_gap[s0]), "tt_bs_bn_gap_pair_4": _md_pair(bn_gap[s1]),
                "tt_bs_bn_eval_2": percent(band["acc_eval"]["BN"][s0], 6),
                "tt_bs_gap_small_from": number(small_from), "tt_bs_rn_maxgap": percent(rn_maxgap, 6),
                "tt_bs_rn_where": md(rn_where),
                "tt_bs_bn_stable": percent(drop_from_best(band, "BN", [b for b in sizes if b >= stable_from]), 6),
                "tt_bs_lngn_drop2": percent(lngn_drop, 6),
                "tt_bs_lngn_lose": text("lose nothing" if round(100 * lngn_drop, 2) <= 0 else
                                        f"lose at most {100 * lngn_drop:.2f} points"),
                "tt_bs_none_min": percent(min(A["none"].values()), 6),
                "tt_bs_none_max": percent(max(A["none"].values()), 6), "tt_bs_steps_largest": _count(steps_largest),
                "tt_bs_lr_largest": number(band["lr"][largest]), "tt_bs_none_behind": percent(none_behind, 6),
                "tt_bs_none_phrase": text(none_phrase)})
    return out


# --------------------------------------------------------------------------- non-i.i.d. training batches
_NI_KEYS = ("test_acc", "test_acc_eval", "test_acc_batch", "train_acc")


def noniid_grid(res: dict) -> dict:
    """One seed's ``{norm: {sampler ("iid", "2 classes"): {"test_acc", "test_acc_eval", "test_acc_batch",
    "train_acc", "val_acc"}}}``: ``test_acc`` with population statistics where they apply (:func:`pop_metric`),
    ``test_acc_eval`` in eval mode, ``test_acc_batch`` with batch statistics (i.i.d. test batches), ``train_acc``
    in eval mode."""
    out: dict = {}
    for run in res["runs"].values():
        cfg = run["config"]
        s = cfg["batch_sampler"]
        sampler = "iid" if s == "iid" else f"{s.split(':', 1)[1]} classes"
        a = final_metric(run, "final_test_acc")
        out.setdefault(norm_name(cfg["norm"]), {})[sampler] = {
            "test_acc": pop_metric(run), "test_acc_eval": a,
            "test_acc_batch": final_metric(run, "final_test_acc_batchstats") if cfg["norm"] else a,
            "train_acc": final_metric(run, "final_train_acc"), "val_acc": pop_metric(run, "final_val_acc")}
    return out


def _ni_values(nis: Sequence[dict], norm: str, sampler: str, key: str = "test_acc") -> list:
    return [g[norm][sampler][key] for g in nis]


def noniid_band(nis: Sequence[dict]) -> dict:
    """The seeds' :func:`noniid_grid` as one grid of ``(mean, half-width)`` pairs, same nesting."""
    return {n: {s: {k: mean_hw(_ni_values(nis, n, s, k)) for k in _NI_KEYS} for s in by} for n, by in nis[0].items()}


def noniid_table(nis: Sequence[dict]) -> Table:
    rows = [[n, s, *[cell(_ni_values(nis, n, s, k)) for k in _NI_KEYS]] for n, by in nis[0].items() for s in by]
    return Table(["norm", "training batches", "test acc. (%), population stats", "test acc. (%), eval mode",
                  "test acc. (%), batch stats", "train acc. (%), eval mode"], rows)


def noniid_drop(nis: Sequence[dict], norm: str, key: str = "test_acc") -> EV.Paired:
    """Test accuracy lost by ``norm`` to two-class training batches, paired by seed."""
    return pair(_ni_values(nis, norm, "iid", key), _ni_values(nis, norm, "2 classes", key), f"{norm}'s drop")


NONIID_COST = 0.02  # "two-class batches cost BN several points": its mean drop is at least this


def noniid_numbers(nis: Sequence[dict]) -> dict[str, Glued]:
    """Every accuracy of :func:`noniid_grid` (seed means) and each norm's drop (paired), with the prose's checks."""
    band = noniid_band(nis)
    drop = {n: noniid_drop(nis, n) for n in ("none", "BN", "Batch Renorm")}
    bn2, rn2 = band["BN"]["2 classes"], band["Batch Renorm"]["2 classes"]
    _check(abs(drop["none"].mean) < 0.2 * drop["BN"].mean, "The text says two-class batches cost the network without "
           f"normalization little next to BN, but they cost {fmt_paired(drop['none'])} against BN's "
           f"{fmt_paired(drop['BN'])}.")
    _check(sign(drop["BN"]) == 1 and drop["BN"].mean > NONIID_COST, "The text says two-class batches cost BN several "
           f"points, but they cost {fmt_paired(drop['BN'])}.")
    train, test_eval = bn2["train_acc"][0], bn2["test_acc_eval"][0]
    _check(train - test_eval < 0.03 and train < band["BN"]["iid"]["train_acc"][0] - 0.05,
           "The text says BN trained on two-class batches is as poor on its training images, but it scores "
           f"{100 * train:.2f}% there against {100 * test_eval:.2f}% on the test images (eval mode).")
    _check(bn2["test_acc_batch"][0] < bn2["test_acc_eval"][0], "The text says batch statistics are no better for BN "
                                                               "trained on two-class batches, but they beat eval mode.")
    pop_gain = pair(_ni_values(nis, "BN", "2 classes"), _ni_values(nis, "BN", "2 classes", "test_acc_eval"),
                    "population statistics vs running averages")
    rn_vs_bn = pair(_ni_values(nis, "Batch Renorm", "2 classes"), _ni_values(nis, "BN", "2 classes"), "Renorm vs BN")
    _check(sign(rn_vs_bn) == 1 and rn2["test_acc"][0] > bn2["test_acc"][0], "The text says Batch Renorm trained on "
           f"two-class batches beats BN, but Batch Renorm minus BN is {fmt_paired(rn_vs_bn)}.")
    _check(sign(pop_gain) == 1, "The text says population statistics recover part of what two-class batches cost BN, "
                                f"but population minus running averages is {fmt_paired(pop_gain)}.")
    out = {"tt_ni_pop_gain": _md_pair(pop_gain), "tt_ni_rn_vs_bn": _md_pair(rn_vs_bn),
           "tt_ni_seeds": number(len(nis))}
    for n, key in (("none", "none"), ("BN", "bn"), ("Batch Renorm", "rn")):
        out.update({f"tt_ni_{key}_{skey}{suffix}": percent(band[n][s][k][0], 6)
                    for s, skey in (("iid", "iid"), ("2 classes", "2c"))
                    for k, suffix in zip(_NI_KEYS, ("", "_eval", "_batch", "_train"), strict=True)})
        out[f"tt_ni_{key}_drop"] = percent(drop[n].mean, 6)
        out[f"tt_ni_{key}_drop_pair"] = _md_pair(drop[n])
    return out


# --------------------------------------------------------------------------- BN as a regularizer
def regularizer_grid(res: dict) -> list[dict]:
    """One seed's train/test accuracies and gaps, one dict per run: ``norm``, ``dropout``, ``train_acc`` (eval
    mode, on the training images), ``test_acc`` and ``val_acc`` (BN: population statistics recomputed over the
    training images, :func:`pop_metric`), ``test_acc_eval`` (eval mode, running averages), ``acc_gap = train_acc -
    test_acc``, ``train_loss``, ``test_loss`` (as ``test_acc``), ``loss_gap = test_loss - train_loss`` (None where a
    value is missing), sorted by norm then dropout."""
    rows = []
    for run in res["runs"].values():
        cfg = run["config"]
        tr, te = final_metric(run, "final_train_acc"), pop_metric(run)
        ltr, lte = final_metric(run, "final_train_loss"), pop_metric(run, "final_test_loss")
        rows.append({"norm": norm_name(cfg["norm"]), "dropout": cfg["dropout"], "train_acc": tr, "test_acc": te,
                     "test_acc_eval": final_metric(run, "final_test_acc"), "val_acc": pop_metric(run, "final_val_acc"),
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


_REG_KEYS = ("train_acc", "test_acc", "test_acc_eval", "acc_gap", "train_loss", "test_loss", "loss_gap")


def _reg_values(regs: Sequence[list[dict]], norm: str, dropout: float, key: str = "test_acc") -> list:
    return [regularizer_row(rows, norm, dropout)[key] for rows in regs]


def regularizer_band(regs: Sequence[list[dict]]) -> list[dict]:
    """The seeds' :func:`regularizer_grid` rows as seed means (same keys), with 95% half-widths under ``<key>_hw``."""
    mh = [(r, {k: mean_hw(_reg_values(regs, r["norm"], r["dropout"], k)) for k in _REG_KEYS}) for r in regs[0]]
    return [{"norm": r["norm"], "dropout": r["dropout"], **{k: v[0] for k, v in d.items()},
             **{f"{k}_hw": v[1] for k, v in d.items()}} for r, d in mh]


def regularizer_table(regs: Sequence[list[dict]]) -> Table:
    """Seed mean ± 95% half-width of every :func:`regularizer_grid` column (accuracies in %, losses as they are)."""
    rows = []
    for r in regs[0]:
        v = {k: _reg_values(regs, r["norm"], r["dropout"], k) for k in _REG_KEYS}
        rows.append([r["norm"], f"{r['dropout']:.2g}", *[cell(v[k]) for k in _REG_KEYS[:4]],
                     *[cell(v[k], scale=1, digits=4) for k in _REG_KEYS[4:]]])
    return Table(["norm", "dropout", "train acc. (%)", "test acc. (%)", "test acc. (%), eval mode", "gap (points)",
                  "train loss", "test loss", "gap (loss)"], rows)


def _effect(p: EV.Paired, what: str) -> str:
    return what + {1: " raises the test accuracy", -1: " lowers the test accuracy",
                   0: f" changes the test accuracy by an amount {p.n} seeds cannot resolve (inconclusive)"}[sign(p)]


def regularizer_numbers(regs: Sequence[list[dict]], res: dict) -> dict[str, Glued]:
    """The regularizer experiment (one :func:`regularizer_grid` per seed; ``res`` for its settings) as the prose
    tells it: seed means, and every comparison paired by seed with its 95% interval."""
    cfg = config(next(iter(res["runs"].values())))
    p = max(r["dropout"] for r in regs[0])
    min_train = min(v for rows in regs for v in (r["train_acc"] for r in rows))
    _check(min_train >= 0.999, "The text says all four networks fit practically all their training images, but one "
                               f"fits {100 * min_train:.2f}%.")

    def v(norm, d, key="test_acc"):
        return _reg_values(regs, norm, d, key)

    cmp = {"bn": pair(v("BN", 0.0), v("none", 0.0), "BN alone vs neither"),
           "do": pair(v("none", p), v("none", 0.0), "dropout alone vs neither"),
           "both_bn": pair(v("BN", p), v("BN", 0.0), "BN with dropout vs BN"),
           "both_do": pair(v("BN", p), v("none", p), "BN with dropout vs dropout"),
           "bn_do": pair(v("BN", 0.0), v("none", p), "BN alone vs dropout alone"),
           "gap": pair(v("BN", 0.0, "acc_gap"), v("none", 0.0, "acc_gap"), "the gaps without dropout"),
           "gap_do": pair(v("BN", p, "acc_gap"), v("none", p, "acc_gap"), "the gaps with dropout"),
           "eval": pair(v("BN", 0.0), v("BN", 0.0, "test_acc_eval"), "population statistics vs eval mode")}
    s = {k: sign(c) for k, c in cmp.items()}
    _check(abs(cmp["eval"].mean) < 0.002, "The text says population statistics and eval mode hardly differ for BN "
                                          f"here, but population minus eval mode is {fmt_paired(cmp['eval'])}.")
    bn_do = {1: "BN alone does better than dropout alone", 0: "BN alone and dropout alone cannot be told apart",
             -1: "BN alone does worse than dropout alone"}[s["bn_do"]]
    gap = {1: "BN widens the train-test gap", 0: "The seeds cannot tell whether BN changes the train-test gap",
           -1: "BN narrows the train-test gap"}[s["gap"]]
    need = {1: "BN does not make dropout unnecessary here: with BN, dropout still raises the test accuracy",
            0: "With BN, dropout no longer measurably changes the test accuracy: to that extent BN reduces the need "
               "for dropout", -1: "With BN, dropout lowers the test accuracy: BN makes dropout unnecessary here"}[
        s["both_bn"]]
    out = {"tt_reg_n": _count(cfg["train_subset"]), "tt_reg_steps": _count(cfg["steps"]), "tt_reg_p": number(p),
           "tt_reg_seeds": number(len(regs)), "tt_reg_min_train": percent(min_train, 6),
           "tt_reg_bn_effect": text(_effect(cmp["bn"], "BN alone")),
           "tt_reg_do_effect": text(_effect(cmp["do"], "Dropout alone")),
           "tt_reg_both_effect": text(_effect(cmp["both_bn"], "Adding dropout to BN")),
           "tt_reg_bn_do_reading": text(bn_do), "tt_reg_gap_reading": text(gap), "tt_reg_need": text(need)}
    out.update({f"tt_reg_pair_{k}": _md_pair(c) for k, c in cmp.items()})
    for (n, key), (d, dkey) in product((("none", "none"), ("BN", "bn")), ((0.0, "d0"), (p, "d3"))):
        out.update({f"tt_reg_{key}_{dkey}_{gk}": (percent if gk in ("test", "train", "gap") else number)(
            fmean(v(n, d, k)), 6) for k, gk in (("test_acc", "test"), ("train_acc", "train"), ("acc_gap", "gap"),
                                                 ("loss_gap", "lgap"), ("test_loss", "tloss"))})
    return out


# --------------------------------------------------------------------------- folding
def fold_summary(run: dict) -> dict:
    """One run's ``"fold"`` analysis: ``max_abs_diff``, ``same_predictions``, ``speedup`` and the two times."""
    fold = run.get("analysis", {}).get("fold")
    if not fold:
        raise ValueError("the run has no 'fold' analysis (train it with analyses=('fold',)).")
    return dict(fold)


def fold_numbers(folds: Sequence[dict], provenance: dict) -> dict[str, Glued]:
    """Folding's error (worst seed), timing (median over seeds) and machine, from a :func:`fold_summary` per seed."""
    diff, same = max(f["max_abs_diff"] for f in folds), min(f["same_predictions"] for f in folds)
    _check(diff < 1e-4 and same == 1.0,
           "The text says folding changes the logits only by float32 rounding and not one prediction in any seed, but "
           f"max |difference| is {diff:.2g} and {100 * same:.4g}% agree.")
    med = {k: median(f[k] for f in folds) for k in ("speedup", "seconds_bn", "seconds_folded")}
    return {"tt_fold_diff": number(diff, 12), "tt_fold_speedup": number(med["speedup"]),
            "tt_fold_ms_bn": number(1000 * med["seconds_bn"]),
            "tt_fold_ms_folded": number(1000 * med["seconds_folded"]), "tt_fold_seeds": number(len(folds)),
            "tt_fold_device": md(f"{provenance['device']}, {provenance['threads']} thread"
                                 + ("s" if provenance["threads"] != 1 else ""))}


# --------------------------------------------------------------------------- setup, conventions, renorm, exercises
def setup_numbers(res: Mapping[str, dict], run: dict) -> dict[str, Glued]:
    """The BN run's settings, ``res["tt_population"]``'s number of seeds, and the minutes all of the chapter's runs
    took to train (the sum of their training loops' wall times: what retraining them one after another costs)."""
    cfg = config(run)
    seeds = len(by_seed(res["tt_population"])) if "tt_population" in res else 1
    return {"tt_steps": _count(cfg["steps"]), "tt_batch": number(int(cfg["batch_size"])),
            "tt_lr": number(cfg["lr"]), "tt_sigma": number(cfg["init_sigma"]), "tt_seeds": number(seeds),
            "tt_total_minutes": number(sum(summary(r, "train_seconds") or 0.0 for e in res.values()
                                           for r in e["runs"].values()) / 60)}


def conventions_demo(m: int, mean: float, std: float, batches: int, p_fast: float, p_slow: float,
                     seed: int = 0) -> dict:
    """Running averages of ``batches`` batches of ``m`` normal values, both conventions, two momenta."""
    bm, bv = stream_of_batches(batches, 1, m, mean, std, seed=seed)
    return {"fast": running_conventions(bm, bv, m, p_fast), "slow": running_conventions(bm, bv, m, p_slow),
            "m": m, "mean": mean, "var": std**2, "p_fast": p_fast, "p_slow": p_slow}


def conventions_numbers(demo: dict, forget: float = 0.05) -> dict[str, Glued]:
    """Half-lives, batches until the initial value weighs at most ``forget``, and the demo's distribution."""
    return {"tt_half_torch": number(half_life(demo["p_fast"])), "tt_half_keras": number(half_life(demo["p_slow"])),
            "tt_conv_m": number(demo["m"]), "tt_conv_mean": number(demo["mean"]), "tt_conv_var": number(demo["var"]),
            "tt_forget_torch": number(steps_to_forget(demo["p_fast"], forget)),
            "tt_forget_keras": number(steps_to_forget(demo["p_slow"], forget))}


def renorm_numbers(bn_steps: int, r_max: float, d_max: float, r_ramp_steps: int, d_ramp_steps: int,
                   momentum: float) -> dict[str, Glued]:
    """Batch Renorm's schedule as the prose states it: the BN phase, the final limits and the steps that reach them."""
    return {"tt_rn_bn_steps": number(int(bn_steps)), "tt_rn_rmax": number(r_max), "tt_rn_dmax": number(d_max),
            "tt_rn_r_full": number(int(bn_steps + r_ramp_steps)), "tt_rn_d_full": number(int(bn_steps + d_ramp_steps)),
            "tt_rn_momentum": number(momentum)}


def exercise_numbers(m: int) -> dict[str, Glued]:
    """The Keras exercise's batch size ``m`` and the variance ratio ``(m - 1) / m`` its answer tends to."""
    return {"tt_ex_m": number(m), "tt_ex_ratio": number((m - 1) / m)}
