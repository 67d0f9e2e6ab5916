"""Figures of book/why.ipynb; each takes runs of the why_noisy / why_landscape results or what
:mod:`bnlib.reports.why` returns."""

from __future__ import annotations

import matplotlib.pyplot as plt

from bnlib.plots.style import MAX_FIGURE_WIDTH_IN, legend_below, log_axis
from bnlib.results import curve, curves, unit_percentiles
from bnlib.vocabulary import colour, legend


def figure_why_training(runs: dict):
    """Training loss (mini-batch, as trained) and test error along training, one line per network.

    ``runs`` maps ``"none"``, ``"bn"``, ``"noisy"`` (any subset, in that order) to runs of an
    experiment result. Test error in eval mode (solid) and, for networks with BN, with batch
    statistics (dotted).
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.5))
    for key, run in runs.items():
        c, color, name = curves(run), colour(key), legend(key)
        pts = [(s, v) for s, v in zip(c["step"], c["train_loss"], strict=True) if v is not None]
        a.plot([s for s, _ in pts], [v for _, v in pts], color=color, label=name)
        b.plot(c["step"], [100 * (1 - v) for v in c["test_acc"]], color=color, label=f"{name}, eval mode")
        if run["config"].get("norm"):
            b.plot(c["step"], [100 * (1 - v) for v in c["test_acc_batchstats"]], color=color, ls=":",
                   label=f"{name}, batch statistics")
    a.set(xlabel="training step", ylabel="training loss (mini-batches)", title="(a) training loss, as trained")
    b.set(xlabel="training step", ylabel="test error (%)", title="(b) test error")
    log_axis(a)
    log_axis(b)
    fig.tight_layout()
    legend_below(a, ncol=1)
    legend_below(b, ncol=1)
    return fig


def figure_why_shift(runs: dict, layer: int, unit: int):
    """The distribution of one unit's sigmoid input as training sees it, one panel per network, on a
    shared vertical axis: the band spans the 15th to 85th percentile, the line is the median.

    ``runs`` maps network keys to runs passed through :func:`bnlib.reports.as_trained`; ``layer``
    and ``unit`` as for :func:`bnlib.reports.mnist_percentiles`.
    """
    fig, axes = plt.subplots(1, len(runs), figsize=(min(3.0 * len(runs), MAX_FIGURE_WIDTH_IN), 3.3), sharey=True,
                             squeeze=False)
    axes = axes[0]
    for ax, (key, run) in zip(axes, runs.items(), strict=True):
        t = unit_percentiles(run, layer, unit)
        color = colour(key)
        ax.fill_between(t["step"], t["p15"], t["p85"], color=color, alpha=0.25, lw=0, label="15th-85th percentile")
        ax.plot(t["step"], t["p50"], color=color, label="median")
        ax.set(xlabel="training step", title=legend(key))
    n_layers = len(curve(next(iter(runs.values())), "percentiles")[0])
    axes[0].set_ylabel(f"input to unit {unit} of hidden layer {layer % n_layers + 1}")
    fig.tight_layout()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    legend_below(fig, [Line2D([], [], color="grey"), Patch(facecolor="grey", alpha=0.25, lw=0)],
                 ["median", "15th-85th percentile"], ncol=2)
    return fig


def figure_why_ics(summaries: dict):
    """Santurkar et al.'s internal covariate shift along training: l2 distance (top) and cosine (bottom)
    between a layer's gradient before and after the earlier layers' update, one column per
    weight layer; ``summaries`` maps network keys to :func:`bnlib.reports.ics_summary` outputs."""
    first = next(iter(summaries.values()))
    n = len(first["layers"])
    fig, axes = plt.subplots(2, n, figsize=(min(3.0 * n, MAX_FIGURE_WIDTH_IN), 5.4), sharex=True, squeeze=False)
    for key, s in summaries.items():
        for j in range(len(s["layers"])):
            for row, name in enumerate(("l2", "cos")):
                axes[row][j].plot(s["steps"], s[name][j], color=colour(key), label=legend(key))
    for j, layer in enumerate(first["layers"]):
        axes[0][j].set(title=f"weight layer {layer + 1}")
        log_axis(axes[0][j])
        axes[1][j].set(xlabel="training step")
    axes[0][0].set_ylabel(r"$\|G - G'\|_2$")
    axes[1][0].set_ylabel(r"$\cos(G, G')$")
    fig.tight_layout()
    legend_below(fig, *axes[0][0].get_legend_handles_labels())
    return fig


def figure_why_landscape(summaries: dict):
    """The loss landscape along the gradient at each checkpoint (:func:`bnlib.reports.landscape_summary`):
    (a) range of the loss at ``w - eta g`` over the step sizes, (b) range of the gradient change
    ``||g(w - eta g) - g(w)||``, (c) effective beta-smoothness."""
    fig, axes = plt.subplots(1, 3, figsize=(MAX_FIGURE_WIDTH_IN, 3.6))
    for key, s in summaries.items():
        color, name = colour(key), legend(key)
        axes[0].fill_between(s["steps"], s["loss_min"], s["loss_max"], color=color, alpha=0.35, lw=0, label=name)
        axes[1].fill_between(s["steps"], s["gc_min"], s["gc_max"], color=color, alpha=0.35, lw=0, label=name)
        axes[2].plot(s["steps"], s["beta"], color=color, label=name)
    axes[0].set(xlabel="training step", ylabel=r"loss at $w - \eta g$", title="(a) loss along $-g$")
    axes[1].set(xlabel="training step", ylabel=r"$\|g(w - \eta g) - g(w)\|$", title="(b) gradient predictiveness")
    axes[2].set(xlabel="training step", ylabel=r"max$_\eta$ change / $\|\eta g\|$",
                title=r"(c) effective $\beta$-smoothness")
    for ax in axes:
        log_axis(ax)
    fig.tight_layout()
    legend_below(fig, *axes[2].get_legend_handles_labels())
    return fig
