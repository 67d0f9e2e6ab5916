"""The train-vs-test chapter's report functions and figures, on tiny hand-made results with known answers."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bnlib import functional as F  # noqa: E402
from bnlib import results as RR  # noqa: E402
from bnlib.plots import train_test as PT  # noqa: E402
from bnlib.reports import format as RF  # noqa: E402
from bnlib.reports import train_test as RT  # noqa: E402


def _run(norm="torch", batch_size=60, lr=0.5, dropout=0.0, sampler="iid", summary=None, curves=None, analysis=None,
         test_subset=0):
    return {"config": {"norm": norm, "batch_size": batch_size, "lr": lr, "dropout": dropout, "batch_sampler": sampler,
                       "test_subset": test_subset},
            "curves": curves or {"step": [], "test_acc": [], "test_acc_batchstats": []},
            "summary": {"diverged_at": None, "steps_done": 100, **(summary or {})},
            "analysis": analysis or {}}


# --------------------------------------------------------------------------- Table
def test_table_text_and_html():
    t = RF.Table(["name", "acc"], [["a<b", 0.98765], ["c", None]], [None, ".3f"], caption="cap")
    assert t.cells() == [["a<b", "0.988"], ["c", "n/a"]]
    assert repr(t).splitlines() == ["cap", "name    acc", "----  -----", " a<b  0.988", "   c    n/a"]
    h = t._repr_html_()
    assert "a&lt;b" in h and "<td>0.988</td>" in h and h.count("<tr>") == 3 and "<caption>cap</caption>" in h


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


# --------------------------------------------------------------------------- population statistics
def test_population_summary():
    layers = [{"running_vs_exact_mean": 0.1, "running_vs_exact_var_rel": 0.02, "alg2_vs_exact_mean": 1e-3,
               "alg2_vs_exact_var_rel": 0.05},
              {"running_vs_exact_mean": 0.3, "running_vs_exact_var_rel": 0.01, "alg2_vs_exact_mean": 2e-3,
               "alg2_vs_exact_var_rel": 0.04}]
    run = _run(analysis={"population": {"layers": layers,
                                        "test_acc": {"running": 0.97, "algorithm2": 0.975, "exact": 0.974}}})
    s = RT.population_summary(run)
    assert math.isclose(s["acc_spread"], 0.005)
    assert s["max_running_vs_exact_mean"] == 0.3 and s["max_alg2_vs_exact_var_rel"] == 0.05
    assert s["max_running_vs_exact_var_rel"] == 0.02 and s["max_alg2_vs_exact_mean"] == 2e-3
    assert RT.population_table(s).cells()[1] == ["2", "3.00e-01", "1.00e-02", "2.00e-03", "4.00e-02"]
    with pytest.raises(ValueError, match="no 'population' analysis"):
        RT.population_summary(_run())


def test_train_eval_gap():
    curves = {"step": [0, 10, 20, 30], "test_acc": [0.1, 0.8, 0.9, 0.95],
              "test_acc_batchstats": [0.5, 0.7, 0.92, 0.94]}
    g = RT.train_eval_gap(_run(curves=curves))
    np.testing.assert_allclose(g["gap"], [-0.4, 0.1, -0.02, 0.01])
    assert math.isclose(g["final_gap"], 0.01)
    # the largest |gap| after step 0 is at step 10 (step 0's -0.4 is left out)
    assert math.isclose(g["max_abs_gap"], 0.1) and g["max_abs_gap_step"] == 10


def test_test_batch_summary_orders_sizes_numerically():
    tb = {"eval_mode": 0.97, "by_size": {"1000": 0.969, "2": 0.5, "64": 0.96, "8": 0.9}, "one_class_64": 0.3}
    s = RT.test_batch_summary(_run(analysis={"test_batches": tb}))
    assert s["sizes"] == [2, 8, 64, 1000] and s["acc"] == [0.5, 0.9, 0.96, 0.969]
    np.testing.assert_allclose(s["drop"], [0.47, 0.07, 0.01, 0.001])
    assert math.isclose(s["one_class_drop"], 0.67)
    rows = RT.test_batch_table(s).cells()
    assert rows[0] == ["eval mode (population statistics)", "97.00", "+0.00"]
    assert rows[-1] == ["batch statistics, one-class batches of 64", "30.00", "+67.00"]


# --------------------------------------------------------------------------- batch-size sweep
def _sweep(acc: dict, acc_b: dict | None = None, diverged=()):
    runs = {}
    for norm, by in acc.items():
        for b, a in by.items():
            s = {"final_test_acc": a}
            if norm is not None:
                s["final_test_acc_batchstats"] = (acc_b or {}).get(norm, {}).get(b, a)
            if (norm, b) in diverged:
                s["diverged_at"] = 3
            runs[f"{norm}-b{b}"] = _run(norm=norm, batch_size=b, lr=0.5 * b / 60, summary=s)
    return {"name": "sweep", "runs": runs}


def test_batch_size_grid_and_falls_behind():
    acc = {None: {2: 0.80, 4: 0.85, 8: 0.90},
           "torch": {2: 0.70, 4: 0.88, 8: 0.95},
           "layer": {2: 0.90, 4: 0.89, 8: 0.93},
           "group": {2: 0.91, 4: 0.87, 8: 0.94}}
    grid = RT.batch_size_grid(_sweep(acc, {"torch": {2: 0.60, 4: 0.88, 8: 0.97}}))
    assert grid["sizes"] == [2, 4, 8] and grid["norms"] == ["none", "BN", "Layer Norm", "Group Norm"]
    assert math.isclose(grid["lr"][8], 0.5 * 8 / 60)
    assert grid["acc"]["BN"] == {2: 0.70, 4: 0.88, 8: 0.95}
    assert grid["acc_batch"]["none"] == grid["acc"]["none"]  # no BN: one function in both modes
    assert math.isclose(grid["gap"]["BN"][2], 0.10) and math.isclose(grid["gap"]["BN"][8], -0.02)
    # BN 0.70 < 0.91 at 2; 0.88 < 0.89 at 4; 0.95 > 0.94 at 8
    assert RT.falls_behind(grid) == [2, 4]
    assert RT.falls_behind(grid, others=("Group Norm",)) == [2]
    assert RT.falls_behind(grid, norm="none", others=("BN",)) == [4, 8]
    t = RT.batch_size_table(grid)
    assert t.columns == ["batch size", "learning rate", "none", "BN", "Layer Norm", "Group Norm"]
    assert t.cells()[0] == ["2", "0.01667", "80.00", "70.00", "90.00", "91.00"]
    assert RT.batch_size_table(grid, "gap").cells()[0][3] == "+10.00"
    with pytest.raises(ValueError, match="norm 'Batch Renorm' is not in the grid"):
        RT.falls_behind(grid, others=("Batch Renorm",))


def test_falls_behind_with_diverged_runs():
    acc = {"torch": {2: 0.9, 4: 0.9}, "layer": {2: 0.8, 4: 0.8}}
    grid = RT.batch_size_grid(_sweep(acc, diverged={("torch", 2), ("layer", 4)}))
    assert grid["acc"]["BN"][2] is None and grid["gap"]["BN"][2] is None
    assert RT.falls_behind(grid, others=("Layer Norm",)) == [2]  # BN diverged at 2; at 4 the other one did


def test_batch_size_grid_rejects_two_learning_rates():
    res = {"runs": {"a": _run(batch_size=8, lr=0.1, summary={"final_test_acc": 0.9}),
                    "b": _run(norm=None, batch_size=8, lr=0.2, summary={"final_test_acc": 0.9})}}
    with pytest.raises(ValueError, match="batch size 8 is trained with two learning rates"):
        RT.batch_size_grid(res)


# --------------------------------------------------------------------------- non-i.i.d. batches, regularizer, fold
def test_noniid_grid():
    res = {"runs": {
        "none-iid": _run(norm=None, summary={"final_test_acc": 0.97, "final_train_acc": 0.98}),
        "torch-2class": _run(sampler="classes:2", summary={"final_test_acc": 0.4, "final_test_acc_batchstats": 0.6,
                                                            "final_train_acc": 0.41}),
    }}
    g = RT.noniid_grid(res)
    assert g["none"]["iid"] == {"test_acc": 0.97, "test_acc_batch": 0.97, "train_acc": 0.98}
    assert g["BN"]["2 classes"] == {"test_acc": 0.4, "test_acc_batch": 0.6, "train_acc": 0.41}
    assert RT.noniid_table(g).cells()[1] == ["BN", "2 classes", "40.00", "60.00", "41.00"]


def test_regularizer_grid():
    def s(tr, te, ltr, lte):
        return {"final_train_acc": tr, "final_test_acc": te, "final_train_loss": ltr, "final_test_loss": lte}

    res = {"runs": {
        "torch-dropout0.3": _run(dropout=0.3, summary=s(0.99, 0.96, 0.03, 0.13)),
        "none-dropout0": _run(norm=None, summary=s(1.0, 0.94, 0.001, 0.25)),
        "torch-dropout0": _run(summary=s(1.0, 0.95, 0.002, 0.2)),
    }}
    rows = RT.regularizer_grid(res)
    assert [(r["norm"], r["dropout"]) for r in rows] == [("none", 0.0), ("BN", 0.0), ("BN", 0.3)]
    r = RT.regularizer_row(rows, "BN", 0.3)
    assert math.isclose(r["acc_gap"], 0.03) and math.isclose(r["loss_gap"], 0.10)
    assert math.isclose(RT.regularizer_row(rows, "none", 0)["acc_gap"], 0.06)
    with pytest.raises(ValueError, match="no run with norm 'none' and dropout 0.3"):
        RT.regularizer_row(rows, "none", 0.3)
    assert RT.regularizer_table(rows).cells()[0] == ["none", "0", "100.00", "94.00", "+6.00", "0.0010", "0.2500",
                                                     "+0.2490"]


def test_fold_summary():
    fold = {"max_abs_diff": 1e-6, "seconds_bn": 2e-3, "seconds_folded": 1e-3, "speedup": 2.0, "same_predictions": 1.0}
    assert RT.fold_summary(_run(analysis={"fold": fold})) == fold
    with pytest.raises(ValueError, match="no 'fold' analysis"):
        RT.fold_summary(_run())


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

    tb = RT.test_batch_summary(_run(analysis={"test_batches": {
        "eval_mode": 0.97, "by_size": {"2": 0.5, "8": 0.9, "64": 0.96, "1000": 0.969}, "one_class_64": 0.3}}))
    fig = PT.figure_tt_test_batches(tb)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["batch statistics, i.i.d. test batches"].get_ydata(), [50, 90, 96, 96.9])
    np.testing.assert_allclose(lines["batch statistics, one-class batches of 64"].get_ydata(), [30])
    np.testing.assert_allclose(lines["eval mode (any batch size, 1 included)"].get_ydata(), [97, 97])
    plt.close(fig)

    acc = {None: {2: 0.80, 8: 0.90}, "torch": {2: 0.70, 8: 0.95}, "layer": {2: 0.9, 8: 0.93}}
    grid = RT.batch_size_grid(_sweep(acc, {"torch": {2: 0.60, 8: 0.97}}))
    fig = PT.figure_tt_batch_size(grid)
    a, b = fig.axes
    errors = {ln.get_label(): ln.get_ydata() for ln in a.get_lines()}
    np.testing.assert_allclose(errors["BN"], [30, 5])
    np.testing.assert_allclose(errors["Layer Norm"], [10, 7])
    gaps = {ln.get_label(): ln.get_ydata() for ln in b.get_lines() if not ln.get_label().startswith("_")}
    assert list(gaps) == ["BN"]  # none and Layer Norm compute one function: no gap to draw
    np.testing.assert_allclose(gaps["BN"], [10, -2])
    plt.close(fig)

    rows = [{"norm": "none", "dropout": 0.0, "train_acc": 1.0, "test_acc": 0.94, "train_loss": 0.01, "test_loss": 0.3},
            {"norm": "BN", "dropout": 0.3, "train_acc": 0.99, "test_acc": 0.96, "train_loss": 0.02, "test_loss": 0.2}]
    fig = PT.figure_tt_regularizer(rows)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[0].patches], [0, 1, 6, 4], atol=1e-9)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[1].patches], [0.01, 0.02, 0.3, 0.2])
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



# --------------------------------------------------------------------------- what the prose glues
def _values(glued: dict) -> dict:
    return {k: v.value for k, v in glued.items()}


def test_and_list():
    assert RT.and_list([2, 4, 8, 16]) == "2, 4, 8 and 16"
    assert RT.and_list([2, 4]) == "2 and 4"
    assert RT.and_list([5]) == "5"
    with pytest.raises(ValueError, match="at least one value"):
        RT.and_list([])


def test_setup_numbers():
    run = _run()
    run["config"].update(steps=10_000, init_sigma=0.1)
    res = {"a": {"runs": {"x": {"summary": {"train_seconds": 60.0}}, "y": {"summary": {"train_seconds": 30.0}}}},
           "b": {"runs": {"z": {"summary": {"train_seconds": 90.0}}}}}
    g = RT.setup_numbers(res, run)
    assert (g["tt_steps"].kind, g["tt_steps"].value) == ("md", "10,000")
    assert _values(g) == {"tt_steps": "10,000", "tt_batch": 60, "tt_lr": 0.5, "tt_sigma": 0.1,
                          "tt_total_minutes": 3.0}


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


def _pop(changes=None):
    layers = [{"running_vs_exact_mean": 0.1, "running_vs_exact_var_rel": 0.02, "alg2_vs_exact_mean": 1e-15,
               "alg2_vs_exact_var_rel": 0.01},
              {"running_vs_exact_mean": 0.3, "running_vs_exact_var_rel": 0.05, "alg2_vs_exact_mean": 2e-3,
               "alg2_vs_exact_var_rel": 0.04},
              {"running_vs_exact_mean": 0.2, "running_vs_exact_var_rel": 0.01, "alg2_vs_exact_mean": 3e-3,
               "alg2_vs_exact_var_rel": 0.03}]
    acc = {"running": 0.97, "algorithm2": 0.971, "exact": 0.9715}
    for (i, k), v in (changes or {}).items():
        (acc if i is None else layers[i])[k] = v
    return RT.population_summary(_run(analysis={"population": {"layers": layers, "test_acc": acc}}))


def test_population_numbers():
    cfg = {"train_subset": 0, "batch_size": 60}
    g = RT.population_numbers(_pop(), cfg, train_size=60_000)
    v = _values(g)
    assert g["tt_pop_nbatches"].kind == "md" and v["tt_pop_nbatches"] == "1,000"
    assert math.isclose(v["tt_pop_acc_alg2"], 97.1) and math.isclose(v["tt_pop_spread"], 0.15)
    assert v["tt_pop_run_mean"] == 0.3 and v["tt_pop_alg2_mean"] == 3e-3 and v["tt_pop_alg2_mean_later"] == 3e-3
    assert math.isclose(v["tt_pop_run_var"], 5.0) and math.isclose(v["tt_pop_alg2_var"], 4.0)
    assert v["tt_pop_alg2_mean_l1"] == 1e-15 and g["tt_pop_alg2_mean_l1"].digits == 20
    assert math.isclose(v["tt_pop_alg2_var_l1"], 1.0)
    assert _values(RT.population_numbers(_pop(), {"train_subset": 600, "batch_size": 60}, 60_000))[
        "tt_pop_nbatches"] == "10"
    with pytest.raises(ValueError, match="partition the training set, but 60000 examples do not split into batches"):
        RT.population_numbers(_pop(), {"train_subset": 0, "batch_size": 70}, train_size=60_000)
    with pytest.raises(ValueError, match="exact in the first BN layer"):
        RT.population_numbers(_pop({(0, "alg2_vs_exact_mean"): 1e-3}), cfg, 60_000)
    with pytest.raises(ValueError, match="within a fraction of a point, but they spread over 0.30"):
        RT.population_numbers(_pop({(None, "exact"): 0.973}), cfg, 60_000)
    with pytest.raises(ValueError, match="running averages' means are further"):
        RT.population_numbers(_pop({(1, "alg2_vs_exact_mean"): 0.5}), cfg, 60_000)
    with pytest.raises(ValueError, match="running averages' variances are further"):
        RT.population_numbers(_pop({(2, "alg2_vs_exact_var_rel"): 0.06}), cfg, 60_000)


def test_train_eval_numbers():
    curves = {"step": [0, 10, 20, 30, 40], "test_acc": [0.1, 0.8, 0.9, 0.95, 0.96],
              "test_acc_batchstats": [0.5, 0.7, 0.92, 0.94, 0.95]}
    gap = RT.train_eval_gap(_run(curves=curves))
    assert RT.ahead_count(gap) == (4, 3)  # gaps after step 0: +0.1, -0.02, +0.01, +0.01
    v = _values(RT.train_eval_numbers(gap, 10))
    assert (v["tt_te_n_records"], v["tt_te_n_ahead"], v["tt_te_max_gap_step"], v["tt_record_every"]) == (4, 3, 10, 10)
    assert math.isclose(v["tt_te_final_eval"], 96.0) and math.isclose(v["tt_te_final_batch"], 95.0)
    assert math.isclose(v["tt_te_final_gap"], 1.0) and math.isclose(v["tt_te_gap0"], -40.0)
    behind = RT.train_eval_gap(_run(curves={**curves, "test_acc_batchstats": [0.5, 0.7, 0.92, 0.94, 0.97]}))
    with pytest.raises(ValueError, match="better of the two along training, but it is ahead at 2 of 4"):
        RT.train_eval_numbers(behind, 10)


def _tb(by_size, eval_mode=0.97, one_class=0.3):
    return RT.test_batch_summary(_run(analysis={"test_batches": {
        "eval_mode": eval_mode, "by_size": by_size, "one_class_64": one_class}}))


def test_test_batch_numbers():
    tb = _tb({"2": 0.5, "8": 0.9, "64": 0.96, "1000": 0.969})
    v = _values(RT.test_batch_numbers(tb))
    assert math.isclose(v["tt_tb_acc_8"], 90.0) and math.isclose(v["tt_tb_drop_2"], 47.0)
    assert math.isclose(v["tt_tb_drop_1000"], 0.1) and math.isclose(v["tt_tb_one_class_drop"], 67.0)
    assert v["tt_tb_climb"].endswith("never reaches eval mode: batches of 1000 come within 0.10 points")
    assert list(v) == ["tt_tb_eval", "tt_tb_climb", "tt_tb_acc_2", "tt_tb_drop_2", "tt_tb_acc_8", "tt_tb_drop_8",
                       "tt_tb_acc_64", "tt_tb_drop_64", "tt_tb_acc_1000", "tt_tb_drop_1000", "tt_tb_one_class",
                       "tt_tb_one_class_drop"]
    with pytest.raises(ValueError, match="climbs with the test-batch size"):
        RT.test_batch_numbers(_tb({"2": 0.5, "8": 0.97, "64": 0.96, "1000": 0.969}))
    level = _values(RT.test_batch_numbers(_tb({"2": 0.5, "8": 0.9, "64": 0.96, "1000": 0.971})))["tt_tb_climb"]
    assert "until batches of 1000 match eval mode (97.10% against 97.00%" in level
    with pytest.raises(ValueError, match="one-class test batches are worse"):
        RT.test_batch_numbers(_tb({"2": 0.5, "8": 0.9, "64": 0.96, "1000": 0.969}, one_class=0.6))


def test_renorm_numbers():
    v = _values(RT.renorm_numbers(bn_steps=500, r_max=3.0, d_max=5.0, r_ramp_steps=3500, d_ramp_steps=2000,
                                  momentum=0.01))
    assert v == {"tt_rn_bn_steps": 500, "tt_rn_rmax": 3.0, "tt_rn_dmax": 5.0, "tt_rn_r_full": 4000,
                 "tt_rn_d_full": 2500, "tt_rn_momentum": 0.01}


def _ni():
    def cell(test, batch, train):
        return {"test_acc": test, "test_acc_batch": batch, "train_acc": train}

    return {"none": {"iid": cell(0.97, 0.97, 0.99), "2 classes": cell(0.968, 0.968, 0.985)},
            "BN": {"iid": cell(0.977, 0.97, 0.99), "2 classes": cell(0.86, 0.80, 0.87)},
            "Batch Renorm": {"iid": cell(0.973, 0.97, 0.99), "2 classes": cell(0.955, 0.94, 0.97)}}


def test_noniid_numbers():
    ni = _ni()
    assert math.isclose(RT.noniid_drop(ni, "BN"), 0.117)
    v = _values(RT.noniid_numbers(ni))
    assert math.isclose(v["tt_ni_bn_drop"], 11.7) and math.isclose(v["tt_ni_rn_drop"], 1.8)
    assert math.isclose(v["tt_ni_none_drop"], 0.2) and math.isclose(v["tt_ni_bn_2c_batch"], 80.0)
    assert math.isclose(v["tt_ni_rn_iid_train"], 99.0) and len(v) == 3 * 2 * 3 + 3

    def broken(norm, sampler, key, value):
        ni = _ni()
        ni[norm][sampler][key] = value
        return ni

    for args, claim in ((("none", "2 classes", "test_acc", 0.94), "normalization little next to BN"),
                        (("BN", "2 classes", "test_acc", 0.94), "cost BN many points"),
                        (("BN", "2 classes", "train_acc", 0.95), "as poor on its training images"),
                        (("BN", "2 classes", "test_acc_batch", 0.87), "batch statistics are no better"),
                        (("Batch Renorm", "2 classes", "test_acc", 0.90), "Batch Renorm recovers most")):
        with pytest.raises(ValueError, match=claim):
            RT.noniid_numbers(broken(*args))


def test_hidden_width():
    res = {"runs": {"a": {"config": {"sizes": [784, 100, 100, 10]}}, "b": {"config": {"sizes": [784, 100, 50, 10]}}}}
    assert RT.hidden_width(res) == 100
    res["runs"]["c"] = {"config": {"sizes": [784, 64, 10]}}
    with pytest.raises(ValueError, match="hidden widths \\[64, 100\\], not one"):
        RT.hidden_width(res)


def _grid():
    sizes = [2, 4, 8, 16, 32]
    acc = {"none": [0.95, 0.95, 0.95, 0.95, 0.94], "BN": [0.60, 0.85, 0.90, 0.92, 0.93],
           "Batch Renorm": [0.80, 0.90, 0.91, 0.92, 0.92], "Layer Norm": [0.93, 0.932, 0.931, 0.93, 0.92],
           "Group Norm": [0.931, 0.93, 0.93, 0.925, 0.91]}
    gap = {"BN": [0.2, 0.05, 0.02, 0.008, 0.005], "Batch Renorm": [-0.007, 0.003, 0.002, 0.001, -0.004]}
    return {"sizes": sizes, "norms": list(acc), "lr": {b: 0.5 * b / 60 for b in sizes},
            "acc": {n: dict(zip(sizes, a, strict=True)) for n, a in acc.items()},
            "gap": {n: dict(zip(sizes, gap.get(n, [0.0] * 5), strict=True)) for n in acc}}


def test_batch_size_searches():
    grid = _grid()
    assert RT.best_size(grid, "Layer Norm") == 4 and RT.best_size(grid, "BN") == 32
    assert RT.best_size(grid, "none") == 2  # a tie of four sizes: the smallest
    assert math.isclose(RT.drop_from_best(grid, "BN", [16, 32]), 0.93 - 0.92)
    assert math.isclose(RT.drop_from_best(grid, "Layer Norm", [2]), 0.932 - 0.93)
    assert RT.gap_small_from(grid) == 16  # |gap| < 0.01 at 16 and 32, not at 8
    grid["gap"]["BN"][8] = 0.001
    assert RT.gap_small_from(grid) == 8
    grid["gap"]["BN"][4] = -0.001  # |gap| counts: a small negative gap is small
    assert RT.gap_small_from(grid) == 4
    grid["gap"]["BN"][32] = 0.01
    assert RT.gap_small_from(grid) is None
    assert RT.gap_small_from(grid, within=0.5) == 2


def test_batch_size_numbers():
    def numbers(grid, examples=640):
        return RT.batch_size_numbers(grid, hidden=100, groups=25, examples=examples, renorm_bn_steps=500,
                                     stable_from=16)

    g = numbers(_grid())
    v = _values(g)
    assert {k for k, x in g.items() if x.kind == "md"} == {"tt_bs_examples", "tt_bs_sizes", "tt_bs_behind",
                                                          "tt_bs_steps_largest"}
    assert (v["tt_bs_sizes"], v["tt_bs_behind"], v["tt_bs_ahead_from"]) == ("2, 4, 8, 16 and 32", "2, 4, 8 and 16", 32)
    assert (v["tt_bs_examples"], v["tt_bs_steps_largest"], v["tt_gn_size"]) == ("640", "20", 4)
    assert (v["tt_bs_smallest"], v["tt_bs_second"], v["tt_bs_largest"]) == (2, 4, 32)
    assert math.isclose(v["tt_bs_lr_min"], 1 / 60) and math.isclose(v["tt_bs_lr_largest"], 16 / 60)
    assert math.isclose(v["tt_bs_bn_4"], 85.0) and math.isclose(v["tt_bs_gn_32"], 91.0) and "tt_bs_bn_16" not in v
    assert (v["tt_bs_bn_best_at"], v["tt_bs_ln_best_at"], v["tt_bs_gn_best_at"]) == (32, 4, 2)
    assert math.isclose(v["tt_bs_ln_best"], 93.2) and math.isclose(v["tt_bs_bn_gap_16"], 0.8)
    assert v["tt_bs_gap_small_from"] == 16 and math.isclose(v["tt_bs_rn_maxgap"], 0.7)
    assert math.isclose(v["tt_bs_bn_stable"], 1.0) and math.isclose(v["tt_bs_lngn_drop2"], 0.2)
    assert math.isclose(v["tt_bs_none_min"], 94.0) and math.isclose(v["tt_bs_none_max"], 95.0)
    assert v["tt_bs_none_behind"] == 0.0  # the hand-made network without normalization is the best everywhere
    slightly = _grid()
    slightly["acc"]["none"][2] = slightly["acc"]["Group Norm"][2] - 0.004  # 0.4 points behind the best at B = 2
    assert math.isclose(_values(numbers(slightly))["tt_bs_none_behind"], 0.4)
    assert _values(numbers(slightly))["tt_bs_none_phrase"].startswith("about as accurate")
    behind = _grid()
    behind["acc"]["none"][32] = 0.92
    assert _values(numbers(behind))["tt_bs_none_phrase"] == "behind the best normalized one at some batch sizes"

    def broken(key, norm, b, value):
        grid = _grid()
        grid[key][norm][b] = value
        return grid

    for args, claim in ((("acc", "BN", 32, 0.91), "falls behind Layer and Group Norm exactly at the smallest"),
                        (("acc", "BN", 4, 0.94), "falls behind Layer and Group Norm exactly at the smallest"),
                        (("gap", "BN", 32, 0.02), "under 1 point from some batch size on"),
                        (("acc", "BN", 8, 0.84), "falls at every halving of the batch below 16"),
                        (("acc", "Batch Renorm", 2, 0.55), "Batch Renorm lies between BN and Layer/Group Norm"),
                        (("gap", "BN", 2, 0.04), "more accurate in eval mode at every batch size"),
                        (("gap", "BN", 4, -0.001), "more accurate in eval mode at every batch size"),
                        (("acc", "Layer Norm", 2, 0.92), "lose at most a fraction of a point"),
                        (("gap", "Batch Renorm", 8, 0.02), "agree within a point"),
                        (("acc", "Layer Norm", 32, 0.93), "fall behind BN at B = 32")):
        with pytest.raises(ValueError, match=claim):
            numbers(broken(*args))
    with pytest.raises(ValueError, match="never leaves its BN phase at B = 32, but the epoch has 500 steps"):
        numbers(_grid(), examples=16_000)


def test_binomial_se():
    assert math.isclose(RT.binomial_se(0.9, 100), 0.03)
    # against the spread of simulated accuracies
    rng = np.random.default_rng(0)
    sims = rng.binomial(10_000, 0.93, size=20_000) / 10_000
    assert math.isclose(RT.binomial_se(0.93, 10_000), sims.std(), rel_tol=0.02)


def _reg(changes=None):
    base = {("none", 0.0): (0.93, 0.36), ("none", 0.3): (0.935, 0.40), ("torch", 0.0): (0.935, 0.30),
            ("torch", 0.3): (0.941, 0.29)}
    base.update(changes or {})
    runs = {}
    for (norm, p), (te, lte) in base.items():
        run = _run(norm=None if norm == "none" else norm, dropout=p, summary={
            "final_train_acc": 1.0, "final_test_acc": te, "final_train_loss": 2e-4,
            "final_test_loss": lte})
        run["config"].update(train_subset=5000, steps=20_000)
        runs[f"{norm}-{p}"] = run
    return {"runs": runs}


def test_regularizer_numbers():
    g = RT.regularizer_numbers(_reg(), test_size=10_000)
    v = _values(g)
    assert (v["tt_reg_n"], v["tt_reg_steps"], v["tt_reg_p"]) == ("5,000", "20,000", 0.3)
    assert g["tt_reg_n"].kind == "md"
    assert math.isclose(v["tt_reg_gain_bn"], 0.5) and math.isclose(v["tt_reg_gain_do"], 0.5)
    assert math.isclose(v["tt_reg_gain_both"], 1.1)
    assert math.isclose(v["tt_reg_se"], 100 * math.sqrt(0.93 * 0.07 / 10_000))
    assert math.isclose(v["tt_reg_bn_d3_gap"], 5.9) and math.isclose(v["tt_reg_none_d3_lgap"], 0.40 - 2e-4)
    assert math.isclose(v["tt_reg_bn_d0_tloss"], 0.30) and v["tt_reg_none_d0_train"] == 100.0
    assert v["tt_reg_reading"] == "about as much as dropout does"  # 0.5 and 0.5 points
    less = _values(RT.regularizer_numbers(_reg({("torch", 0.0): (0.931, 0.30)}), test_size=10_000))
    assert less["tt_reg_reading"] == "less than dropout does"  # 0.1 against 0.5 points, the s.e. is 0.26
    with pytest.raises(ValueError, match="together raise it most"):
        RT.regularizer_numbers(_reg({("torch", 0.3): (0.934, 0.29)}), test_size=10_000)
    res = _reg()
    res["runs"]["none-0.0"]["summary"]["final_train_acc"] = 0.99
    with pytest.raises(ValueError, match="fit practically all their training images"):
        RT.regularizer_numbers(res, test_size=10_000)


def test_fold_numbers():
    fold = {"max_abs_diff": 1.5e-5, "seconds_bn": 2e-3, "seconds_folded": 1e-3, "speedup": 2.0, "same_predictions": 1.0}
    g = RT.fold_numbers(fold, {"device": "cpu", "threads": 1})
    v = _values(g)
    assert g["tt_fold_device"].kind == "md" and v["tt_fold_device"] == "cpu, 1 thread"
    assert g["tt_fold_diff"].digits == 12 and v["tt_fold_diff"] == 1.5e-5
    assert math.isclose(v["tt_fold_ms_bn"], 2.0) and math.isclose(v["tt_fold_ms_folded"], 1.0)
    assert _values(RT.fold_numbers(fold, {"device": "cuda", "threads": 4}))["tt_fold_device"] == "cuda, 4 threads"
    with pytest.raises(ValueError, match="not one prediction"):
        RT.fold_numbers({**fold, "same_predictions": 0.9999}, {"device": "cpu", "threads": 1})
    with pytest.raises(ValueError, match="float32 rounding"):
        RT.fold_numbers({**fold, "max_abs_diff": 1e-3}, {"device": "cpu", "threads": 1})


def test_exercise_numbers():
    assert _values(RT.exercise_numbers(32)) == {"tt_ex_m": 32, "tt_ex_ratio": 31 / 32}
