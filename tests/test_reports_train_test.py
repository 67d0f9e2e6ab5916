"""The train-vs-test chapter's report functions and figures, on tiny hand-made results with known answers: one-seed
summaries, and five hand-made seeds whose means, t intervals and paired intervals the tests compute themselves
(by the textbook formula or scipy.stats.ttest_rel)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from bnlib import functional as F  # noqa: E402
from bnlib import results as RR  # noqa: E402
from bnlib.plots import train_test as PT  # noqa: E402
from bnlib.reports import format as RF  # noqa: E402
from bnlib.reports import train_test as RT  # noqa: E402


def _run(norm="torch", batch_size=60, lr=0.5, dropout=0.0, sampler="iid", summary=None, curves=None, analysis=None,
         test_subset=0):
    return {"config": {"norm": norm, "batch_size": batch_size, "lr": lr, "dropout": dropout, "batch_sampler": sampler,
                       "test_subset": test_subset, "seed": 0},
            "curves": curves or {"step": [], "test_acc": [], "test_acc_batchstats": []},
            "summary": {"diverged_at": None, "steps_done": 100, **(summary or {})},
            "analysis": analysis or {}}


# --------------------------------------------------------------------------- Table
def test_table_text_and_html():
    t = RF.Table(["name", "acc"], [["a<b", 0.98765], ["c", None]], [None, ".3f"], caption="cap")
    assert t.cells() == [["a<b", "0.988"], ["c", "n/a"]]
    assert repr(t).splitlines() == ["cap", "name    acc", "----  -----", " a<b  0.988", "   c    n/a"]
    h = t._repr_html_()
    assert "a&lt;b" in h and '<td class="bn-nowrap">0.988</td>' in h and h.count("<tr>") == 3
    assert "<caption>cap</caption>" in h


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        RF.Table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="one entry per column"):
        RF.Table(["a", "b"], [[1, 2]], [".2f"])


# --------------------------------------------------------------------------- final metrics
def test_final_metric_prefers_summary_then_last_full_record():
    curves = {"step": [0, 50, 100], "test_acc": [0.1, 0.5, 0.9], "test_acc_batchstats": [0.1, 0.4, 0.8]}
    run = _run(summary={"final_test_acc": 0.91}, curves=curves)
    assert RR.final_metric(run, "final_test_acc") == 0.91
    assert RR.final_metric(run, "final_test_acc_batchstats") == 0.8  # summary lacks it: the last record, at step 100
    assert RR.final_metric(run, "final_train_acc") is None  # no curve measures it
    partial = _run(curves=curves, test_subset=2000)  # curves on part of the test set: not the same measurement
    assert RR.final_metric(partial, "final_test_acc") is None
    early = _run(curves={"step": [0, 50], "test_acc": [0.1, 0.5], "test_acc_batchstats": [0.1, 0.4]})
    assert RR.final_metric(early, "final_test_acc") is None  # the last record is not at the last step
    diverged = _run(summary={"diverged_at": 7, "final_test_acc": 0.3})
    assert RR.final_metric(diverged, "final_test_acc") is None


def test_run_of_errors():
    with pytest.raises(ValueError, match="has no run 'x'; its runs are \\['bn'\\]"):
        RR.run_of({"name": "e", "runs": {"bn": {}}}, "x")
    with pytest.raises(TypeError, match="experiment result"):
        RR.run_of([1], "x")


def _values(glued: dict) -> dict:
    return {k: v.value for k, v in glued.items()}


# --------------------------------------------------------------------------- seeds: the independent references
def _t_interval(values):
    """The 95% t interval of the mean, by the textbook formula (no bnlib code)."""
    v = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return v.mean(), half


def _seeded(runs_by_label: dict, seeds=range(5)):
    """A book-scale result: ``{label: fn(seed) -> run}`` becomes runs ``label-seedK`` with ``config.seed = K``."""
    runs = {}
    for label, make in runs_by_label.items():
        for s in seeds:
            run = make(s)
            run["config"]["seed"] = s
            runs[f"{label}-seed{s}"] = run
    return {"name": "e", "runs": runs}


NOISE = (0.003, -0.001, 0.002, -0.004, 0.0)  # per seed, added to every accuracy of that seed
WOBBLE = (0.001, -0.002, 0.0015, 0.0, -0.0005)  # per seed, a second, independent offset


def test_pop_metric_prefers_population_statistics():
    run = _run(summary={"final_test_acc": 0.9, "final_test_acc_pop": 0.92, "final_val_acc": 0.8})
    assert RT.pop_metric(run) == 0.92
    assert RT.pop_metric(run, "final_val_acc") == 0.8  # no population value recorded: the eval-mode one
    assert RT.pop_metric(_run(summary={"diverged_at": 3, "final_test_acc_pop": 0.9})) is None


def test_mean_hw_cell_and_pair_against_the_t_formula():
    a = [0.91, 0.93, 0.92, 0.95, 0.90]
    b = [0.90, 0.92, 0.93, 0.92, 0.89]
    m, hw = RT.mean_hw(a)
    assert (m, hw) == pytest.approx(_t_interval(a))
    assert RT.cell(a) == f"{100 * m:.2f} ± {100 * hw:.2f}"
    assert RT.mean_hw([0.9] * 5) == (0.9, 0.0) and RT.cell([0.9] * 5) == "90.00"
    assert RT.mean_hw([0.9, None]) == (None, None) and RT.cell([0.9, None]) == "–"
    p = RT.pair(a, b)
    d_mean, d_half = _t_interval(np.subtract(a, b))
    assert (p.mean, p.lo, p.hi, p.n) == pytest.approx((d_mean, d_mean - d_half, d_mean + d_half, 5))
    with pytest.raises(ValueError, match="a seed of BN vs LN has no value"):
        RT.pair([0.9, None], [0.8, 0.7], "BN vs LN")


def test_sign_reads_the_interval():
    base = np.array([0.0, 0.001, -0.001, 0.002, -0.002])
    assert RT.sign(RT.pair(base + 0.01, np.zeros(5))) == 1  # interval wholly above zero
    assert RT.sign(RT.pair(base - 0.01, np.zeros(5))) == -1
    assert RT.sign(RT.pair(base, np.zeros(5))) == 0  # straddles zero: inconclusive
    assert RT.sign(RT.pair([0.5], [0.1])) == 0  # one seed: nothing can be concluded
    assert RT.sign(RT.pair(base + 0.01, np.zeros(5)), margin=0.02) == 0


def test_seeded_splits_a_result_by_seed():
    res = _seeded({"bn": lambda s: _run(summary={"final_test_acc": 0.9 + NOISE[s]})})
    assert RT.seeded(res, lambda r: RR.final_metric(r["runs"]["bn"], "final_test_acc")) == pytest.approx(
        [0.9 + n for n in NOISE])


# --------------------------------------------------------------------------- population statistics
def _layers(scale=1.0):
    return [{"running_vs_exact_mean": 0.1 * scale, "running_vs_exact_var_rel": 0.02 * scale,
             "alg2_vs_exact_mean": 1e-15, "alg2_vs_exact_var_rel": 0.01 * scale},
            {"running_vs_exact_mean": 0.3 * scale, "running_vs_exact_var_rel": 0.05 * scale,
             "alg2_vs_exact_mean": 2e-3 * scale, "alg2_vs_exact_var_rel": 0.04 * scale},
            {"running_vs_exact_mean": 0.2 * scale, "running_vs_exact_var_rel": 0.01 * scale,
             "alg2_vs_exact_mean": 3e-3 * scale, "alg2_vs_exact_var_rel": 0.03 * scale}]


def _pop(s=0, acc=None, layers=None):
    a = acc or {"running": 0.97, "algorithm2": 0.971, "exact": 0.9715}
    a = {k: v + NOISE[s] + (WOBBLE[s] if k != "running" else 0.0) for k, v in a.items()}
    return RT.population_summary(_run(analysis={"population": {"layers": layers or _layers(1 + s / 10),
                                                               "test_acc": a}}))


def test_population_summary():
    s = _pop()
    assert math.isclose(s["acc_spread"], 0.0015 + WOBBLE[0])  # seed 0: the exact estimate moved up by WOBBLE[0]
    assert s["max_running_vs_exact_mean"] == 0.3 and s["max_alg2_vs_exact_var_rel"] == 0.04
    with pytest.raises(ValueError, match="no 'population' analysis"):
        RT.population_summary(_run())


def test_population_tables_and_band():
    pops = [_pop(s) for s in range(5)]
    acc = RT.population_acc_table(pops, 60).cells()
    m, hw = _t_interval([0.97 + n for n in NOISE])
    assert acc[0] == ["running averages (PyTorch, momentum 0.1)", f"{100 * m:.2f} ± {100 * hw:.2f}"]
    assert acc[1][0] == "Algorithm 2 (training set, batches of 60)"
    scales = [1 + s / 10 for s in range(5)]
    m, hw = _t_interval([0.3 * k for k in scales])
    assert RT.population_table(pops).cells()[1][1] == f"{m:.2e} ± {hw:.1e}"
    band = RT.population_band(pops)
    assert band["layers"][1]["running_vs_exact_mean"] == pytest.approx(m)
    assert band["layers_hw"][1]["running_vs_exact_mean"] == pytest.approx(hw)
    assert band["layers_hw"][0]["alg2_vs_exact_mean"] == 0.0  # the same 1e-15 in every seed


def test_population_numbers():
    pops = [_pop(s) for s in range(5)]
    cfg = {"train_subset": 0, "batch_size": 60}
    g = RT.population_numbers(pops, cfg, train_size=60_000)
    v = _values(g)
    assert g["tt_pop_nbatches"].kind == "md" and v["tt_pop_nbatches"] == "1,000" and v["tt_pop_seeds"] == 5
    # seed means: 0.97 + mean(NOISE) for running averages; + mean(WOBBLE) for the other two
    assert v["tt_pop_spread"] == pytest.approx(100 * (0.0015 + np.mean(WOBBLE)))
    d = np.array([0.001 + w for w in WOBBLE])  # Algorithm 2 minus running averages, per seed
    dm, dh = _t_interval(d)
    assert v["tt_pop_alg2_vs_running"] == f"{100 * dm:+.2f} points [{100 * (dm - dh):+.2f}, {100 * (dm + dh):+.2f}], " \
                                          "5 seeds"
    assert v["tt_pop_run_mean"] == pytest.approx(0.3 * np.mean([1 + s / 10 for s in range(5)]))
    assert v["tt_pop_alg2_mean_l1"] == 1e-15
    with pytest.raises(ValueError, match="partition the training set, but 60000 examples do not split"):
        RT.population_numbers(pops, {"train_subset": 0, "batch_size": 70}, train_size=60_000)
    bad = [_pop(s, acc={"running": 0.97, "algorithm2": 0.971, "exact": 0.975}) for s in range(5)]
    with pytest.raises(ValueError, match="within a fraction of a point, but their seed means spread over"):
        RT.population_numbers(bad, cfg, 60_000)
    layers = _layers()
    layers[1]["alg2_vs_exact_mean"] = 0.5  # one seed where Algorithm 2's means are the further off
    with pytest.raises(ValueError, match="running averages' means are further .* in 4 of 5"):
        RT.population_numbers([_pop(0, layers=layers)] + pops[1:], cfg, 60_000)
    layers = _layers()
    layers[0]["alg2_vs_exact_mean"] = 1e-3
    with pytest.raises(ValueError, match="exact in the first BN layer"):
        RT.population_numbers([_pop(0, layers=layers)] + pops[1:], cfg, 60_000)


# --------------------------------------------------------------------------- train mode vs eval mode
def test_train_eval_gap():
    curves = {"step": [0, 10, 20, 30], "test_acc": [0.1, 0.8, 0.9, 0.95],
              "test_acc_batchstats": [0.5, 0.7, 0.92, 0.94]}
    g = RT.train_eval_gap(_run(curves=curves))
    np.testing.assert_allclose(g["gap"], [-0.4, 0.1, -0.02, 0.01])
    assert math.isclose(g["max_abs_gap"], 0.1) and g["max_abs_gap_step"] == 10


def _gap(s, final_batch=0.95):
    curves = {"step": [0, 10, 20, 30, 40], "test_acc": [0.1, 0.8, 0.9, 0.95, 0.96 + NOISE[s]],
              "test_acc_batchstats": [0.5, 0.7, 0.92, 0.94, final_batch + NOISE[s] + WOBBLE[s]]}
    return RT.train_eval_gap(_run(curves=curves))


def test_train_eval_band_and_numbers():
    gaps = [_gap(s) for s in range(5)]
    band = RT.train_eval_band(gaps)
    m, hw = _t_interval([0.96 + n for n in NOISE])
    assert band["eval"][-1] == pytest.approx(m) and band["eval_hw"][-1] == pytest.approx(hw)
    assert band["gap_hw"][1] == 0.0  # the same gap in every seed
    v = _values(RT.train_eval_numbers(gaps, 10))
    # mean gaps after step 0: +0.1, -0.02, +0.01, 0.01 - mean(WOBBLE): three of four ahead
    assert (v["tt_te_n_records"], v["tt_te_n_ahead"], v["tt_te_max_gap_step"]) == (4, 3, 10)
    dm, dh = _t_interval([0.01 - w for w in WOBBLE])
    assert v["tt_te_final_gap"] == pytest.approx(100 * dm)
    assert v["tt_te_final_pair"].startswith(f"{100 * dm:+.2f} points [{100 * (dm - dh):+.2f}")
    behind = [_gap(s, final_batch=0.97) for s in range(5)]
    with pytest.raises(ValueError, match="better of the two along training, but its seed mean is ahead at 2 of 4"):
        RT.train_eval_numbers(behind, 10)
    other = _gap(0)
    other["step"] = [0, 10, 20, 30, 50]
    with pytest.raises(ValueError, match="recorded at different steps"):
        RT.train_eval_band([other] + gaps[1:])


# --------------------------------------------------------------------------- evaluating with batch statistics
def _tb(s, by_size=None, eval_mode=0.97, one_class=0.3):
    by = by_size or {"2": 0.5, "8": 0.9, "64": 0.96, "1000": 0.969}
    return RT.test_batch_summary(_run(analysis={"test_batches": {
        "eval_mode": eval_mode + NOISE[s], "by_size": {k: a + NOISE[s] + WOBBLE[s] for k, a in by.items()},
        "one_class_64": one_class + WOBBLE[s]}}))


def test_test_batch_summary_orders_sizes_numerically():
    s = _tb(0)
    assert s["sizes"] == [2, 8, 64, 1000]
    np.testing.assert_allclose(s["drop"], np.array([0.47, 0.07, 0.01, 0.001]) - WOBBLE[0])


def test_test_batch_table_band_and_numbers():
    tbs = [_tb(s) for s in range(5)]
    rows = RT.test_batch_table(tbs).cells()
    m, hw = _t_interval([0.97 + n for n in NOISE])
    assert rows[0] == ["eval mode (running averages)", f"{100 * m:.2f} ± {100 * hw:.2f}", "0"]
    dm, dh = _t_interval([0.47 - w for w in WOBBLE])
    assert rows[1][2] == f"{100 * dm:+.2f} ± {100 * dh:.2f}"
    band = RT.test_batch_band(tbs)
    assert band["acc"][2] == pytest.approx(0.96 + np.mean(NOISE) + np.mean(WOBBLE))
    v = _values(RT.test_batch_numbers(tbs))
    assert v["tt_tb_drop_2"] == pytest.approx(100 * dm)
    assert v["tt_tb_one_class"] == pytest.approx(100 * (0.3 + np.mean(WOBBLE)))
    # eval minus batches of 1000: 0.001 - WOBBLE, an interval that straddles zero
    assert "level with eval mode" in v["tt_tb_climb"] and v["tt_tb_climb"].endswith("5 seeds, inconclusive)")
    far = _values(RT.test_batch_numbers([_tb(s, {"2": 0.5, "8": 0.9, "64": 0.94, "1000": 0.95}) for s in range(5)]))
    assert "never reaches eval mode: batches of 1000 come within 2.00 points" in far["tt_tb_climb"]
    with pytest.raises(ValueError, match="climbs with the test-batch size"):
        RT.test_batch_numbers([_tb(s, {"2": 0.5, "8": 0.97, "64": 0.96, "1000": 0.969}) for s in range(5)])
    with pytest.raises(ValueError, match="one-class test batches are worse"):
        RT.test_batch_numbers([_tb(s, one_class=0.5) for s in range(5)])


# --------------------------------------------------------------------------- batch-size sweep
def _sweep(acc: dict, acc_b: dict | None = None, diverged=(), pop: dict | None = None, val: dict | None = None):
    runs = {}
    for norm, by in acc.items():
        for b, a in by.items():
            s = {"final_test_acc": a}
            if norm is not None:
                s["final_test_acc_batchstats"] = (acc_b or {}).get(norm, {}).get(b, a)
            if pop is not None:
                s["final_test_acc_pop"] = pop.get(norm, {}).get(b, a)
            if val is not None:
                s["final_val_acc"] = val[norm][b]
            if (norm, b) in diverged:
                s["diverged_at"] = 3
            runs[f"{norm}-b{b}"] = _run(norm=norm, batch_size=b, lr=0.5 * b / 60, summary=s)
    return {"name": "sweep", "runs": runs}


def test_batch_size_grid_one_seed():
    acc = {None: {2: 0.80, 4: 0.85}, "torch": {2: 0.70, 4: 0.88}, "layer": {2: 0.90, 4: 0.89}}
    grid = RT.batch_size_grid(_sweep(acc, {"torch": {2: 0.60, 4: 0.88}}, pop={"torch": {2: 0.72, 4: 0.87}}))
    assert grid["sizes"] == [2, 4] and grid["norms"] == ["none", "BN", "Layer Norm"]
    assert grid["acc"]["BN"] == {2: 0.72, 4: 0.87}  # population statistics
    assert grid["acc_eval"]["BN"] == {2: 0.70, 4: 0.88}  # running averages
    assert grid["acc_batch"]["none"] == grid["acc"]["none"]  # no BN: one function in both modes
    assert math.isclose(grid["gap"]["BN"][2], 0.12) and math.isclose(grid["gap"]["BN"][4], -0.01)
    assert math.isclose(grid["lr"][4], 0.5 * 4 / 60)
    without = RT.batch_size_grid(_sweep(acc))  # a result that recorded no population statistics: eval mode
    assert without["acc"]["BN"] == {2: 0.70, 4: 0.88}
    diverged = RT.batch_size_grid(_sweep(acc, diverged={("torch", 2)}))
    assert diverged["acc"]["BN"][2] is None and diverged["gap"]["BN"][2] is None
    res = {"runs": {"a": _run(batch_size=8, lr=0.1, summary={"final_test_acc": 0.9}),
                    "b": _run(norm=None, batch_size=8, lr=0.2, summary={"final_test_acc": 0.9})}}
    with pytest.raises(ValueError, match="batch size 8 is trained with two learning rates"):
        RT.batch_size_grid(res)


SIZES = [2, 4, 8, 16, 32]
ACC = {None: [0.95, 0.95, 0.95, 0.95, 0.94], "torch": [0.60, 0.85, 0.90, 0.92, 0.93],
       "renorm": [0.80, 0.90, 0.91, 0.92, 0.92], "layer": [0.93, 0.932, 0.931, 0.93, 0.92],
       "group": [0.931, 0.93, 0.93, 0.925, 0.91]}
GAP = {"torch": [0.2, 0.05, 0.02, 0.008, 0.005], "renorm": [-0.007, 0.003, 0.002, 0.001, -0.004]}


def _bs_band(changes=None, gap_changes=None, val_changes=None, seeds=5):
    """Five seeds of a hand-made sweep: accuracy ACC + NOISE[s] (+ WOBBLE[s] for BN), gap GAP."""
    acc = {n: list(a) for n, a in ACC.items()}
    gap = {n: list(g) for n, g in GAP.items()}
    for (n, i), v in (changes or {}).items():
        acc[n][i] = v
    for (n, i), v in (gap_changes or {}).items():
        gap[n][i] = v
    grids = []
    for s in range(seeds):
        a = {n: {b: x + NOISE[s] + (WOBBLE[s] if n == "torch" else 0.0) for b, x in zip(SIZES, xs, strict=True)}
             for n, xs in acc.items()}
        batch = {n: {b: a[n][b] - g for b, g in zip(SIZES, gs, strict=True)} for n, gs in gap.items()}
        val = {n: dict(by) for n, by in a.items()}
        for (n, i), v in (val_changes or {}).items():
            val[n][SIZES[i]] = v
        grids.append(RT.batch_size_grid(_sweep(a, batch, val=val)))
    return RT.batch_size_band(grids)


def test_batch_size_band_table_and_versus():
    band = _bs_band()
    m, hw = _t_interval([0.60 + n + w for n, w in zip(NOISE, WOBBLE, strict=True)])
    assert band["acc"]["BN"][2] == pytest.approx(m) and band["acc_hw"]["BN"][2] == pytest.approx(hw)
    t = RT.batch_size_table(band)
    assert t.columns == ["batch size", "learning rate", "none", "BN", "Batch Renorm", "Layer Norm", "Group Norm"]
    assert t.cells()[0][:4] == ["2", "0.01667", RT.cell([0.95 + n for n in NOISE]), f"{100 * m:.2f} ± {100 * hw:.2f}"]
    assert RT.batch_size_table(band, "gap").cells()[0][3] == "20.00"  # the same gap in every seed
    vs = RT.bn_versus(band)
    # the better of Layer/Group Norm by validation accuracy: Group Norm at 2 (0.931), Layer Norm at 4, 8, 16, 32
    assert [vs[b]["other"] for b in SIZES] == ["Group Norm", "Layer Norm", "Layer Norm", "Layer Norm", "Layer Norm"]
    ref = stats.ttest_rel([0.60 + n + w for n, w in zip(NOISE, WOBBLE, strict=True)],
                          [0.931 + n for n in NOISE]).confidence_interval(0.95)
    assert (vs[2]["paired"].lo, vs[2]["paired"].hi) == pytest.approx((ref.low, ref.high))
    assert [vs[b]["sign"] for b in SIZES] == [-1, -1, -1, -1, 1]
    assert RT.versus_table(vs).cells()[4][3] == "ahead"
    # the choice follows the validation split, not the test set
    chosen = RT.bn_versus(_bs_band(val_changes={("group", 1): 0.99}))
    assert chosen[4]["other"] == "Group Norm"
    with pytest.raises(ValueError, match="norm 'Batch Renorm' is not in the grid"):
        RT.bn_versus({**band, "acc": {k: v for k, v in band["acc"].items() if k != "Batch Renorm"}},
                     others=("Batch Renorm",))


def test_batch_size_searches():
    band = _bs_band()
    assert RT.best_size(band, "Layer Norm") == 4 and RT.best_size(band, "BN") == 32
    assert RT.best_size(band, "none") == 2  # a tie of four sizes: the smallest
    val_best = _bs_band(val_changes={("layer", 4): 0.99})  # validation prefers 32, where the test accuracy is 0.92
    assert RT.best_size(val_best, "Layer Norm") == 32
    assert RT.drop_from_best(val_best, "Layer Norm", [2]) == pytest.approx(0.92 - 0.93)
    assert RT.gap_small_from(band) == 16  # |gap| < 0.01 at 16 and 32, not at 8
    assert RT.gap_small_from(_bs_band(gap_changes={("torch", 4): 0.01})) is None
    assert RT.gap_small_from(band, within=0.5) == 2


def test_batch_size_numbers():
    def numbers(band, examples=640):
        return RT.batch_size_numbers(band, hidden=100, groups=25, examples=examples, renorm_bn_steps=500,
                                     stable_from=16)

    g = numbers(_bs_band())
    v = _values(g)
    assert {k for k, x in g.items() if x.kind == "md"} >= {"tt_bs_examples", "tt_bs_sizes", "tt_bs_behind",
                                                          "tt_bs_versus", "tt_bs_bn_vs_2", "tt_bs_steps_largest"}
    assert (v["tt_bs_sizes"], v["tt_bs_behind"]) == ("2, 4, 8, 16 and 32", "2, 4, 8 and 16")
    assert v["tt_bs_versus"] == "falls behind the better of the two at batch sizes 2, 4, 8 and 16 and is ahead at 32"
    assert (v["tt_bs_examples"], v["tt_bs_steps_largest"], v["tt_gn_size"], v["tt_bs_seeds"]) == ("640", "20", 4, 5)
    assert v["tt_bs_bn_4"] == pytest.approx(100 * (0.85 + np.mean(NOISE) + np.mean(WOBBLE)))
    assert (v["tt_bs_bn_best_at"], v["tt_bs_ln_best_at"], v["tt_bs_gn_best_at"]) == (32, 4, 2)
    assert v["tt_bs_bn_gap_16"] == pytest.approx(0.8) and v["tt_bs_gap_small_from"] == 16
    assert v["tt_bs_rn_maxgap"] == pytest.approx(0.7) and v["tt_bs_bn_stable"] == pytest.approx(1.0)
    assert v["tt_bs_lngn_drop2"] == pytest.approx(0.2) and v["tt_bs_none_behind"] == 0.0
    assert v["tt_bs_bn_gap_pair_2"] == "+20.00 points [+20.00, +20.00], 5 seeds"
    level = _values(numbers(_bs_band({("torch", 3): 0.93})))["tt_bs_versus"]  # BN level with Layer Norm at 16
    assert level == ("falls behind the better of the two at batch sizes 2, 4 and 8, is level with it within the "
                     "interval at 16 and is ahead at 32")
    assert v["tt_bs_rn_where"] == "at every batch size"
    off = _values(numbers(_bs_band(gap_changes={("renorm", 4): 0.03})))  # Batch Renorm's modes apart at 32 only
    assert off["tt_bs_rn_where"] == ("at every batch size but the largest, where its epoch ends inside its plain-BN "
                                     "phase: there the difference is +3.00 points [+3.00, +3.00], 5 seeds")
    assert off["tt_bs_rn_maxgap"] == pytest.approx(0.7)  # the largest of the other sizes (B = 2)
    behind = _values(numbers(_bs_band({(None, 4): 0.90})))  # 3 points behind the best at 32
    assert behind["tt_bs_none_phrase"] == "behind the best normalized one at some batch sizes"
    for args, claim in (({("torch", 4): 0.91}, "falls behind Layer and Group Norm exactly at the smallest"),
                        ({("torch", 1): 0.94}, "falls behind Layer and Group Norm exactly at the smallest"),
                        ({("layer", 4): 0.93}, "Layer and Group Norm fall behind BN at B = 32"),  # level there
                        ({("torch", 2): 0.84}, "falls at every halving of the batch below 16"),
                        ({("renorm", 0): 0.55}, "Batch Renorm lies between BN and Layer/Group Norm"),
                        ({("layer", 0): 0.92}, "lose at most a fraction of a point")):
        with pytest.raises(ValueError, match=claim):
            numbers(_bs_band(args))
    for args, claim in (({("torch", 4): 0.02}, "under 1 point from some batch size on"),
                        ({("torch", 0): 0.04}, "more accurate with population statistics at every batch size"),
                        ({("renorm", 2): 0.02}, "agree within a point")):
        with pytest.raises(ValueError, match=claim):
            numbers(_bs_band(gap_changes=args))
    with pytest.raises(ValueError, match="never leaves its BN phase at B = 32, but the epoch has 500 steps"):
        numbers(_bs_band(), examples=16_000)


# --------------------------------------------------------------------------- non-i.i.d. batches
def _ni_grid(s, changes=None):
    cells = {("none", "iid"): (0.97, 0.97, 0.97, 0.99), ("none", "2class"): (0.968, 0.968, 0.968, 0.985),
             ("torch", "iid"): (0.975, 0.977, 0.97, 0.99), ("torch", "2class"): (0.92, 0.86, 0.80, 0.87),
             ("renorm", "iid"): (0.973, 0.973, 0.97, 0.99), ("renorm", "2class"): (0.955, 0.955, 0.94, 0.97)}
    cells.update(changes or {})
    runs = {}
    for (norm, sampler), (pop, ev, batch, train) in cells.items():
        w = WOBBLE[s] if sampler == "2class" else 0.0
        summary = {"final_test_acc": ev + NOISE[s] + w, "final_test_acc_pop": pop + NOISE[s] + 2 * w,
                   "final_train_acc": train, "final_val_acc": ev}
        if norm != "none":
            summary["final_test_acc_batchstats"] = batch + NOISE[s]
        runs[f"{norm}-{sampler}"] = _run(norm=None if norm == "none" else norm,
                                         sampler="classes:2" if sampler == "2class" else "iid", summary=summary)
    return RT.noniid_grid({"runs": runs})


def test_noniid_grid_table_and_numbers():
    g = _ni_grid(0)
    assert set(g) == {"none", "BN", "Batch Renorm"} and set(g["BN"]) == {"iid", "2 classes"}
    assert g["BN"]["2 classes"]["test_acc"] == pytest.approx(0.92 + NOISE[0] + 2 * WOBBLE[0])  # population
    assert g["BN"]["2 classes"]["test_acc_eval"] == pytest.approx(0.86 + NOISE[0] + WOBBLE[0])
    assert g["none"]["iid"]["test_acc_batch"] == g["none"]["iid"]["test_acc_eval"]
    nis = [_ni_grid(s) for s in range(5)]
    rows = RT.noniid_table(nis).cells()
    assert rows[3][:2] == ["BN", "2 classes"] and rows[3][2] == RT.cell([0.92 + n + 2 * w for n, w in
                                                                          zip(NOISE, WOBBLE, strict=True)])
    v = _values(RT.noniid_numbers(nis))
    dm, dh = _t_interval([0.975 - 0.92 - 2 * w for w in WOBBLE])  # BN's drop, population statistics
    assert v["tt_ni_bn_drop"] == pytest.approx(100 * dm)
    assert v["tt_ni_bn_drop_pair"] == f"{100 * dm:+.2f} points [{100 * (dm - dh):+.2f}, {100 * (dm + dh):+.2f}], " \
                                      "5 seeds"
    gm, _ = _t_interval([0.06 + w for w in WOBBLE])  # population minus running averages after two-class training
    assert v["tt_ni_pop_gain"].startswith(f"{100 * gm:+.2f} points")
    assert v["tt_ni_bn_2c_eval"] == pytest.approx(100 * (0.86 + np.mean(NOISE) + np.mean(WOBBLE)))
    assert v["tt_ni_seeds"] == 5 and len(v) == 3 * 2 * 4 + 3 * 2 + 3

    def broken(cell, values):
        return [_ni_grid(s, {cell: values}) for s in range(5)]

    for args, claim in (((("none", "2class"), (0.94, 0.94, 0.94, 0.96)), "normalization little next to BN"),
                        ((("torch", "2class"), (0.96, 0.86, 0.80, 0.87)), "cost BN several points"),
                        ((("torch", "2class"), (0.92, 0.86, 0.80, 0.95)), "as poor on its training images"),
                        ((("torch", "2class"), (0.92, 0.86, 0.87, 0.87)), "batch statistics are no better"),
                        ((("torch", "2class"), (0.86, 0.86, 0.80, 0.87)), "population statistics recover part"),
                        ((("renorm", "2class"), (0.90, 0.90, 0.89, 0.97)), "Batch Renorm trained on two-class")):
        with pytest.raises(ValueError, match=claim):
            RT.noniid_numbers(broken(*args))


# --------------------------------------------------------------------------- regularizer
def _reg(s, test=None):
    t = {("none", 0.0): 0.930, ("none", 0.3): 0.935, ("torch", 0.0): 0.926, ("torch", 0.3): 0.934}
    t.update(test or {})
    offs = {("none", 0.0): 0.0, ("none", 0.3): WOBBLE[s], ("torch", 0.0): -WOBBLE[s], ("torch", 0.3): 0.0}
    runs = {}
    for (norm, p), te in t.items():
        a = te + NOISE[s] + offs[(norm, p)]
        run = _run(norm=None if norm == "none" else norm, dropout=p, summary={
            "final_train_acc": 1.0, "final_test_acc": a - 0.001 * (norm == "torch"), "final_test_acc_pop": a,
            "final_train_loss": 2e-4, "final_test_loss": 0.31, "final_test_loss_pop": 0.3, "final_val_acc": a})
        run["config"].update(train_subset=5000, steps=20_000)
        runs[f"{norm}-{p}"] = run
    return {"runs": runs}


def test_regularizer_grid_one_seed():
    rows = RT.regularizer_grid(_reg(0))
    assert [(r["norm"], r["dropout"]) for r in rows] == [("none", 0.0), ("none", 0.3), ("BN", 0.0), ("BN", 0.3)]
    r = RT.regularizer_row(rows, "BN", 0.0)
    assert r["test_acc"] == pytest.approx(0.926 + NOISE[0] - WOBBLE[0])  # population statistics
    assert r["test_acc_eval"] == pytest.approx(r["test_acc"] - 0.001)
    assert r["acc_gap"] == pytest.approx(1.0 - r["test_acc"]) and r["loss_gap"] == pytest.approx(0.3 - 2e-4)
    with pytest.raises(ValueError, match="no run with norm 'none' and dropout 0.5"):
        RT.regularizer_row(rows, "none", 0.5)


def test_regularizer_table_band_and_numbers():
    regs = [RT.regularizer_grid(_reg(s)) for s in range(5)]
    rows = RT.regularizer_table(regs).cells()
    assert rows[0][:4] == ["none", "0", "100.00", RT.cell([0.93 + n for n in NOISE])]
    assert rows[0][6:] == ["0.0002", "0.3000", "0.2998"]
    band = RT.regularizer_band(regs)
    assert band[2]["test_acc"] == pytest.approx(0.926 + np.mean(NOISE) - np.mean(WOBBLE))
    assert band[2]["test_acc_hw"] == pytest.approx(_t_interval([0.926 + n - w for n, w in
                                                                zip(NOISE, WOBBLE, strict=True)])[1])
    v = _values(RT.regularizer_numbers(regs, _reg(0)))
    assert (v["tt_reg_n"], v["tt_reg_steps"], v["tt_reg_p"], v["tt_reg_seeds"]) == ("5,000", "20,000", 0.3, 5)
    ref = stats.ttest_rel([0.926 + n - w for n, w in zip(NOISE, WOBBLE, strict=True)],
                          [0.93 + n for n in NOISE]).confidence_interval(0.95)  # BN alone minus neither
    dm = -0.004 - np.mean(WOBBLE)
    assert v["tt_reg_pair_bn"] == f"{100 * dm:+.2f} points [{100 * ref.low:+.2f}, {100 * ref.high:+.2f}], 5 seeds"
    assert v["tt_reg_bn_effect"] == "BN alone lowers the test accuracy"
    assert v["tt_reg_do_effect"] == "Dropout alone raises the test accuracy"
    assert v["tt_reg_both_effect"] == "Adding dropout to BN raises the test accuracy"
    assert v["tt_reg_bn_do_reading"] == "BN alone does worse than dropout alone"
    assert v["tt_reg_gap_reading"] == "BN widens the train-test gap"
    assert v["tt_reg_need"].startswith("BN does not make dropout unnecessary here")
    assert v["tt_reg_pair_eval"] == "+0.10 points [+0.10, +0.10], 5 seeds"
    assert v["tt_reg_bn_d0_test"] == pytest.approx(100 * (0.926 + np.mean(NOISE) - np.mean(WOBBLE)))
    assert v["tt_reg_none_d0_tloss"] == pytest.approx(0.3)
    # BN alone level with neither: inconclusive, and the sentence says so
    level = [RT.regularizer_grid(_reg(s, {("torch", 0.0): 0.930})) for s in range(5)]
    lv = _values(RT.regularizer_numbers(level, _reg(0)))
    assert lv["tt_reg_bn_effect"] == ("BN alone changes the test accuracy by an amount 5 seeds cannot resolve "
                                      "(inconclusive)")
    assert lv["tt_reg_gap_reading"] == "The seeds cannot tell whether BN changes the train-test gap"
    same = [RT.regularizer_grid(_reg(s, {("torch", 0.3): 0.926})) for s in range(5)]
    assert _values(RT.regularizer_numbers(same, _reg(0)))["tt_reg_need"].startswith("With BN, dropout no longer")
    apart = _reg(0)
    apart["runs"]["torch-0.0"]["summary"]["final_test_acc"] -= 0.01  # eval mode 1.1 points below population stats
    with pytest.raises(ValueError, match="population statistics and eval mode hardly differ"):
        RT.regularizer_numbers([RT.regularizer_grid(apart)] + regs[1:], _reg(0))
    unfit = _reg(0)
    unfit["runs"]["none-0.0"]["summary"]["final_train_acc"] = 0.99
    with pytest.raises(ValueError, match="fit practically all their training images"):
        RT.regularizer_numbers([RT.regularizer_grid(unfit)] + regs[1:], _reg(0))


# --------------------------------------------------------------------------- folding
def test_fold_summary_and_numbers():
    folds = [{"max_abs_diff": d, "seconds_bn": t, "seconds_folded": t / 2, "speedup": 2.0 + k / 10,
              "same_predictions": 1.0} for k, (d, t) in enumerate(((1e-6, 2e-3), (3e-6, 4e-3), (2e-6, 1e-3)))]
    assert RT.fold_summary(_run(analysis={"fold": folds[0]})) == folds[0]
    with pytest.raises(ValueError, match="no 'fold' analysis"):
        RT.fold_summary(_run())
    g = RT.fold_numbers(folds, {"device": "cpu", "threads": 1})
    v = _values(g)
    assert g["tt_fold_device"].kind == "md" and v["tt_fold_device"] == "cpu, 1 thread"
    assert v["tt_fold_diff"] == 3e-6 and g["tt_fold_diff"].digits == 12  # the worst seed
    assert v["tt_fold_ms_bn"] == pytest.approx(2.0) and v["tt_fold_speedup"] == pytest.approx(2.1)  # medians
    assert v["tt_fold_seeds"] == 3
    assert _values(RT.fold_numbers(folds, {"device": "cuda", "threads": 4}))["tt_fold_device"] == "cuda, 4 threads"
    with pytest.raises(ValueError, match="not one prediction in any seed"):
        RT.fold_numbers(folds[:2] + [{**folds[2], "same_predictions": 0.9999}], {"device": "cpu", "threads": 1})
    with pytest.raises(ValueError, match="float32 rounding"):
        RT.fold_numbers(folds[:2] + [{**folds[2], "max_abs_diff": 1e-3}], {"device": "cpu", "threads": 1})


# --------------------------------------------------------------------------- running-average conventions
def test_running_conventions_match_torch_batchnorm():
    """The PyTorch trajectory is torch.nn.BatchNorm1d's own; Keras with 1 - p is the same rule."""
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(16, 3, generator=g, dtype=torch.float64) * 2 + 1 for _ in range(25)]
    bn = torch.nn.BatchNorm1d(3, momentum=0.1).double()
    ref_mean, ref_var = [], []
    for x in xs:
        bn(x)
        ref_mean.append(bn.running_mean.clone().numpy())
        ref_var.append(bn.running_var.clone().numpy())
    means = np.stack([x.mean(0).numpy() for x in xs])
    vars_ = np.stack([x.var(0, unbiased=False).numpy() for x in xs])
    t = F.running_conventions(means, vars_, n=16, torch_momentum=0.1)
    np.testing.assert_allclose(t["torch_mean"], np.stack(ref_mean), rtol=1e-12)
    np.testing.assert_allclose(t["torch_var"], np.stack(ref_var), rtol=1e-12)
    np.testing.assert_allclose(t["keras_mean"], t["torch_mean"], rtol=1e-12)
    np.testing.assert_allclose(t["keras_var_unbiased"], t["torch_var"], rtol=1e-12)
    # Keras' own variance: the exponential average of the biased variances, in closed form
    k = len(xs)
    w = 0.1 * 0.9 ** np.arange(k - 1, -1, -1)
    np.testing.assert_allclose(t["keras_var"][-1], 0.9**k * 1.0 + w @ vars_, rtol=1e-12)


def test_half_life_and_stream():
    assert math.isclose(F.half_life(0.5), 1.0)
    p = 1 - 0.5 ** (1 / 10)  # (1 - p)^10 = 1/2
    assert math.isclose(F.half_life(p), 10.0)
    with pytest.raises(ValueError, match="> 0 and < 1"):
        F.half_life(0.0)
    m, v = F.stream_of_batches(4000, 2, 50, mean=3.0, std=2.0, seed=1)
    assert m.shape == v.shape == (4000, 2)
    assert abs(m.mean() - 3.0) < 0.02 and abs(v.mean() - 4.0 * 49 / 50) < 0.05  # E[biased var] = (n-1)/n sigma^2


def test_steps_to_forget():
    assert F.steps_to_forget(0.5, 0.25) == 2  # 0.5^2 = 0.25 exactly
    assert F.steps_to_forget(0.5, 0.2) == 3  # 0.25 > 0.2 >= 0.125
    # brute force: the first k with 0.99^k <= 0.05
    k = next(k for k in range(10_000) if 0.99**k <= 0.05)
    assert F.steps_to_forget(0.01, 0.05) == k
    with pytest.raises(ValueError, match="weight must be a finite number > 0 and < 1"):
        F.steps_to_forget(0.1, 1.0)


# --------------------------------------------------------------------------- figures (the data they draw)
def test_figures_draw_the_given_numbers():
    tbs = [_tb(s) for s in range(5)]
    band = RT.test_batch_band(tbs)
    fig = PT.figure_tt_test_batches(band)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(np.asarray(ax.containers[0].lines[0].get_ydata(), float), [100 * a for a in band["acc"]])
    np.testing.assert_allclose(lines["eval mode (any batch size, 1 included)"].get_ydata(),
                               [100 * band["eval_mode"]] * 2)
    plt.close(fig)

    band = _bs_band()
    fig = PT.figure_tt_batch_size(band, 1.0)
    a, b = fig.axes
    errors = {ln.get_label(): ln.get_ydata() for ln in a.get_lines()}
    np.testing.assert_allclose(errors["BN"], [100 * (1 - band["acc"]["BN"][s]) for s in SIZES])
    # the band around BN's line spans mean ± half-width at B = 2, in error
    m, hw = band["acc"]["BN"][2], band["acc_hw"]["BN"][2]
    verts = np.concatenate([p.vertices for p in a.collections[1].get_paths()])
    at2 = verts[verts[:, 0] == 2, 1]
    assert (at2.min(), at2.max()) == pytest.approx((100 * (1 - m - hw), 100 * (1 - m + hw)))
    gaps = {ln.get_label(): ln.get_ydata() for ln in b.get_lines() if not ln.get_label().startswith("_")}
    assert list(gaps) == ["BN", "Batch Renorm"]  # none, Layer and Group Norm compute one function: no gap
    np.testing.assert_allclose(gaps["BN"], [100 * g for g in GAP["torch"]])
    plt.close(fig)

    rows = [{"norm": "none", "dropout": 0.0, "train_acc": 1.0, "test_acc": 0.94, "train_loss": 0.01, "test_loss": 0.3,
             "test_acc_hw": 0.002},
            {"norm": "BN", "dropout": 0.3, "train_acc": 0.99, "test_acc": 0.96, "train_loss": 0.02, "test_loss": 0.2}]
    fig = PT.figure_tt_regularizer(rows)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[0].patches], [0, 1, 6, 4], atol=1e-9)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[1].patches], [0.01, 0.02, 0.3, 0.2])
    plt.close(fig)

    nb = RT.noniid_band([_ni_grid(s) for s in range(5)])
    fig = PT.figure_tt_noniid(nb)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[1] == pytest.approx(100 * nb["BN"]["iid"]["test_acc"][0])  # iid bars first, one per norm
    assert heights[4] == pytest.approx(100 * nb["BN"]["2 classes"]["test_acc"][0])
    plt.close(fig)

    gaps = [_gap(s) for s in range(5)]
    tb = RT.train_eval_band(gaps)
    fig = PT.figure_tt_train_eval(tb, 60)
    ev = {ln.get_label(): ln.get_ydata() for ln in fig.axes[0].get_lines()}
    np.testing.assert_allclose(ev["eval mode (running averages)"], [100 * (1 - e) for e in tb["eval"]])
    plt.close(fig)


def test_population_figure_marks_exact_values():
    layers = [{"running_vs_exact_mean": 0.5, "running_vs_exact_var_rel": 0.1, "alg2_vs_exact_mean": 1e-15,
               "alg2_vs_exact_var_rel": 0.05}]
    fig = PT.figure_tt_population({"layers": layers})
    a, b = fig.axes
    assert [t.get_text() for t in a.texts] == ["exact"] and not b.texts
    # the exact value is drawn at the axis' lower limit (an empty bar), not at 1e-15
    assert a.patches[0].get_height() == 0.5 and a.patches[1].get_height() == a.get_ylim()[0] > 1e-15
    np.testing.assert_allclose([p.get_height() for p in b.patches], [0.1, 0.05])
    plt.close(fig)


def test_conventions_figure_draws_the_trajectories():
    m, v = F.stream_of_batches(30, 1, 8, 2.0, 1.5)
    fast, slow = F.running_conventions(m, v, 8, 0.1), F.running_conventions(m, v, 8, 0.01)
    fig = PT.figure_tt_conventions(fast, slow, 2.0, 2.25, 8, 0.1, 0.01)
    lines = {ln.get_label(): ln.get_ydata() for ln in fig.axes[0].get_lines()}
    np.testing.assert_allclose(lines["PyTorch, momentum 0.1"], fast["torch_mean"][:, 0])
    np.testing.assert_allclose(lines["Keras, momentum 0.99 (default)"], slow["keras_mean"][:, 0])
    plt.close(fig)
    from phone import assert_phone_layout

    from bnlib.plots import style as PS

    assert_phone_layout(PS.layouts(PT.figure_tt_conventions, fast, slow, 2.0, 2.25, 8, 0.1, 0.01)[1])  # legends
    plt.close("all")  # under each panel


# --------------------------------------------------------------------------- what the prose glues
def test_and_list():
    assert RT.and_list([2, 4, 8, 16]) == "2, 4, 8 and 16"
    assert RT.and_list([2, 4]) == "2 and 4"
    assert RT.and_list([5]) == "5"
    with pytest.raises(ValueError, match="at least one value"):
        RT.and_list([])
    assert RT.and_list([], empty="") == ""


def test_setup_numbers():
    run = _run()
    run["config"].update(steps=10_000, init_sigma=0.1)
    pop = _seeded({"bn": lambda s: {"config": {}, "summary": {"train_seconds": 30.0}}}, seeds=range(2))
    res = {"tt_population": pop, "b": {"runs": {"z": {"summary": {"train_seconds": 60.0}}}}}
    g = RT.setup_numbers(res, run)
    assert (g["tt_steps"].kind, g["tt_steps"].value) == ("md", "10,000")
    assert _values(g) == {"tt_steps": "10,000", "tt_batch": 60, "tt_lr": 0.5, "tt_sigma": 0.1, "tt_seeds": 2,
                          "tt_total_minutes": 2.0}


def test_conventions_numbers():
    demo = RT.conventions_demo(m=8, mean=2.0, std=1.5, batches=40, p_fast=0.1, p_slow=0.01)
    assert demo["var"] == 2.25 and demo["fast"]["torch_mean"].shape == (40, 1)
    # the PyTorch running mean by hand: start at 0, move by p towards each batch mean
    bm, _ = F.stream_of_batches(40, 1, 8, 2.0, 1.5, seed=0)
    mu = 0.0
    for b in bm[:, 0]:
        mu = 0.9 * mu + 0.1 * b
    assert math.isclose(demo["fast"]["torch_mean"][-1, 0], mu, rel_tol=1e-12)
    v = _values(RT.conventions_numbers(demo, forget=0.05))
    assert math.isclose(0.9 ** v["tt_half_torch"], 0.5) and math.isclose(0.99 ** v["tt_half_keras"], 0.5)
    assert v["tt_forget_torch"] == next(k for k in range(1000) if 0.9**k <= 0.05) == 29
    assert v["tt_forget_keras"] == next(k for k in range(1000) if 0.99**k <= 0.05) == 299
    assert (v["tt_conv_m"], v["tt_conv_mean"], v["tt_conv_var"]) == (8, 2.0, 2.25)


def test_renorm_numbers():
    v = _values(RT.renorm_numbers(bn_steps=500, r_max=3.0, d_max=5.0, r_ramp_steps=3500, d_ramp_steps=2000,
                                  momentum=0.01))
    assert v == {"tt_rn_bn_steps": 500, "tt_rn_rmax": 3.0, "tt_rn_dmax": 5.0, "tt_rn_r_full": 4000,
                 "tt_rn_d_full": 2500, "tt_rn_momentum": 0.01}


def test_exercise_numbers():
    assert _values(RT.exercise_numbers(32)) == {"tt_ex_m": 32, "tt_ex_ratio": 31 / 32}


def test_signed_never_shows_minus_zero_and_keeps_a_bound_s_sign():
    from bnlib.reports.format import signed

    assert (signed(0.4249), signed(-1.5), signed(0.0), signed(-0.0)) == ("+0.42", "-1.50", "0.00", "0.00")
    assert signed(-0.0042) == "-0.004" and signed(0.00002) == "+0.00002" and signed(-1e-9) == "0.00"
    assert signed(float("inf")) == "+inf" and signed(-6e-6) == "-0.00001"
    assert signed(-0.04, 1) == "-0.04" and float(signed(-0.0042)) < 0
