"""Figures of book/train_test.ipynb; each takes what the matching :mod:`bnlib.reports.train_test` function returns."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bnlib.plots.style import NOTE_POINTS, legend_below, log_ticks
from bnlib.vocabulary import BLUE, GREEN, GREY, ORANGE, RED, colour


def figure_tt_conventions(fast: dict, slow: dict, true_mean: float, true_var: float, n: int, p_fast: float,
                          p_slow: float, channel: int = 0):
    """Running averages of one channel under PyTorch's and Keras' conventions.

    ``fast`` and ``slow`` are :func:`bnlib.reports.running_conventions` outputs for PyTorch
    momentum ``p_fast`` (Keras ``1 - p_fast``) and ``p_slow`` (Keras ``1 - p_slow``).
    """
    k = np.arange(1, len(fast["torch_mean"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    a.plot(k, fast["torch_mean"][:, channel], color=BLUE, label=f"PyTorch, momentum {p_fast:g}")
    a.plot(k, fast["keras_mean"][:, channel], color=ORANGE, ls="--", label=f"Keras, momentum {1 - p_fast:g}")
    a.plot(k, slow["keras_mean"][:, channel], color=GREEN, label=f"Keras, momentum {1 - p_slow:g} (default)")
    a.axhline(true_mean, color="k", lw=0.8, ls=":", label="true mean")
    a.set(xlabel="batches seen", ylabel="running mean", title="(a) running mean (same rule)")
    b.plot(k, fast["torch_var"][:, channel], color=BLUE, label=f"PyTorch {p_fast:g}: unbiased")
    b.plot(k, fast["keras_var"][:, channel], color=ORANGE, ls="--", label=f"Keras {1 - p_fast:g}: biased")
    b.axhline(true_var, color="k", lw=0.8, ls=":", label=r"true $\sigma^2$")
    b.axhline(true_var * (n - 1) / n, color="k", lw=0.8, ls="-.", label=rf"$\frac{{m-1}}{{m}}\sigma^2$, m = {n}")
    b.set(xlabel="batches seen", ylabel="running variance", title="(b) running variance")
    fig.tight_layout()
    legend_below(a, ncol=1)
    legend_below(b, ncol=2)
    return fig


def figure_tt_train_eval(gap: dict, batch_size: int):
    """Test accuracy in eval mode vs with batch statistics along training (:func:`reports.train_eval_gap`)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    step = gap["step"]
    a.plot(step, [100 * (1 - v) for v in gap["eval"]], color=BLUE, label="eval mode (population statistics)")
    a.plot(step, [100 * (1 - v) for v in gap["batch"]], color=ORANGE, ls="--",
           label=f"train mode (batch statistics, batches of {batch_size})")
    a.set(xlabel="training step", ylabel="test error (%)", yscale="log", title="(a) test error, two ways")
    log_ticks(a)
    b.plot(step, [100 * g for g in gap["gap"]], color="k", marker="o", ms=3)
    b.axhline(0, color="grey", lw=0.8)
    b.set(xlabel="training step", ylabel="gap (percentage points)", title="(b) eval minus batch-stats accuracy")
    fig.tight_layout()
    legend_below(fig, *a.get_legend_handles_labels(), ncol=2)
    return fig


def figure_tt_population(summary: dict, floor: float = 1e-5):
    """Per BN layer: how far running averages and Algorithm 2 are from the exact statistics.

    Differences below ``floor`` (exact up to rounding) are drawn at ``floor`` and marked "exact".
    """
    layers = summary["layers"]
    x = np.arange(1, len(layers) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2))
    for ax, (kind, title) in zip(axes, (("mean", r"(a) max$_k$ |mean - exact mean|"),
                                         ("var_rel", r"(b) max$_k$ |var / exact var - 1|")), strict=True):
        series = [(-0.2, "running", BLUE, "running averages"), (0.2, "alg2", GREEN, "Algorithm 2")]
        shown = [l[f"{k}_vs_exact_{kind}"] for _, k, _, _ in series for l in layers]
        bottom = 0.3 * min([v for v in shown if v >= floor] or [floor])
        top = 3.0 * max(shown + [bottom])
        for dx, key, color, label in series:
            vals = [l[f"{key}_vs_exact_{kind}"] for l in layers]
            ax.bar(x + dx, [v if v >= floor else bottom for v in vals], 0.4, color=color, label=label)
            for xi, v in zip(x + dx, vals, strict=True):
                if v < floor:
                    ax.text(xi, bottom * 1.2, "exact", ha="center", va="bottom", fontsize=NOTE_POINTS,
                            rotation=90)
        ax.set(xlabel="BN layer", yscale="log", title=title, xticks=x)
        ax.set_ylim(bottom, top)
        log_ticks(ax)
    fig.tight_layout()
    legend_below(fig, *axes[0].get_legend_handles_labels(), ncol=2)
    return fig


def figure_tt_test_batches(summary: dict):
    """Test accuracy with batch statistics by test-batch size, vs eval mode (:func:`reports.test_batch_summary`)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.plot(summary["sizes"], [100 * a for a in summary["acc"]], "o-", color=ORANGE,
            label="batch statistics, i.i.d. test batches")
    ax.axhline(100 * summary["eval_mode"], color=BLUE, label="eval mode (any batch size, 1 included)")
    ax.plot([64], [100 * summary["one_class"]], "s", color=RED, ms=7,
            label="batch statistics, one-class batches of 64")
    ax.set(xscale="log", xlabel="test batch size", ylabel="test accuracy (%)",
           title="Evaluating with batch statistics (size 1: an error)")
    ax.set_xticks(summary["sizes"], [str(s) for s in summary["sizes"]])
    fig.tight_layout()
    legend_below(ax, ncol=1)
    return fig


def figure_tt_batch_size(grid: dict):
    """Test error vs training batch size per normalization, and the train/eval gap (:func:`reports.batch_size_grid`)."""
    sizes = grid["sizes"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for n in grid["norms"]:
        ys = [grid["acc"][n].get(s) for s in sizes]
        a.plot(sizes, [None if y is None else 100 * (1 - y) for y in ys], "o-", color=colour(n), label=n)
        if any(g not in (None, 0.0) for g in grid["gap"][n].values()):
            gs = [grid["gap"][n].get(s) for s in sizes]
            b.plot(sizes, [None if g is None else 100 * g for g in gs], "o-", color=colour(n), label=n)
    a.set(xscale="log", yscale="log", xlabel="training batch size", ylabel="test error (%), eval mode",
          title="(a) one epoch, learning rate 0.5 B / 60")
    log_ticks(a)
    b.axhline(0, color="grey", lw=0.8)
    b.set(xscale="log", xlabel="training batch size", ylabel="gap (percentage points)",
          title="(b) eval minus batch-stats accuracy")
    for ax in (a, b):
        ax.set_xticks(sizes, [str(s) for s in sizes])
    fig.tight_layout()
    legend_below(fig, *a.get_legend_handles_labels(), ncol=5)
    return fig


def figure_tt_noniid(grid: dict):
    """Test accuracy after training on i.i.d. vs few-class batches, per norm (:func:`reports.noniid_grid`)."""
    from matplotlib.patches import Patch

    norms = list(grid)
    samplers = list(dict.fromkeys(s for by in grid.values() for s in by))
    x = np.arange(len(norms))
    w = 0.8 / len(samplers)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    hatches = ("", "//", "xx")
    for ax, (key, title) in zip(axes, (("test_acc", "(a) eval mode"),
                                       ("test_acc_batch", "(b) batch statistics (i.i.d. test batches)")), strict=True):
        for j, s in enumerate(samplers):
            vals = [grid[n].get(s, {}).get(key) for n in norms]
            ax.bar(x + (j - (len(samplers) - 1) / 2) * w, [0 if v is None else 100 * v for v in vals], w,
                   color=[colour(n) for n in norms], hatch=hatches[j % 3], edgecolor="white")
        ax.set_xticks(x, norms)
        ax.set(title=title, ylim=(0, 100))
    axes[0].set_ylabel("test accuracy (%)")
    handles = [Patch(facecolor="#bbbbbb", edgecolor="white", hatch=hatches[j % 3], label=f"training batches: {s}")
               for j, s in enumerate(samplers)]
    fig.tight_layout()
    legend_below(fig, handles, [h.get_label() for h in handles], ncol=len(handles))
    return fig


def figure_tt_regularizer(rows: list[dict]):
    """Training and test error, and training and test loss, with and without BN and dropout
    (:func:`reports.regularizer_grid`)."""
    x = np.arange(len(rows))
    colors = [colour(r["norm"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for ax, (kind, scale, ylabel, title) in zip((a, b), (("acc", 100, "error (%)", "(a) classification error"),
                                                         ("loss", 1, "cross-entropy", "(b) loss")), strict=True):
        train = [scale * (1 - r["train_acc"]) if kind == "acc" else r["train_loss"] for r in rows]
        test = [scale * (1 - r["test_acc"]) if kind == "acc" else r["test_loss"] for r in rows]
        ax.bar(x - 0.2, train, 0.4, color=GREY, label="training images")
        ax.bar(x + 0.2, test, 0.4, color=colors, label="test images")
        ax.set_xticks(x, [f"{r['norm']}\ndropout {r['dropout']:g}" for r in rows])
        ax.set(ylabel=ylabel, title=title, ylim=(0, 1.1 * max(train + test)))
    fig.tight_layout()
    # the test bars take each network's colour, so the key shows both kinds of bar, not one bar's colour
    from matplotlib.patches import Patch

    keys = [Patch(facecolor=GREY, label="training images (grey)"),
            Patch(facecolor="none", edgecolor="none", label="test images, in the network's colour:")]
    keys += [Patch(facecolor=colour(n), label=colour_name) for n, colour_name in
             dict.fromkeys((r["norm"], _net_name(r["norm"])) for r in rows)]
    legend_below(fig, keys, [k.get_label() for k in keys], ncol=len(keys))
    return fig


def _net_name(norm: str | None) -> str:
    from bnlib.vocabulary import NORMS, by_name, norm_of

    try:
        return NORMS[norm_of(norm)].legend
    except ValueError:
        return by_name(norm).legend
