"""Figures of book/why.ipynb; each takes what :mod:`bnlib.reports.why` returns (seed means with their 95% intervals)
or, for one unit's distribution, runs of the why_noisy result."""

from __future__ import annotations

import numpy as np

from bnlib.plots.style import MAX_FIGURE_WIDTH_IN, legend_below, log_axis, panels
from bnlib.results import curve, unit_percentiles
from bnlib.vocabulary import colour, legend


def _band(ax, steps, band: dict, color: str, label: str | None = None, ls: str = "-", log: bool = False) -> None:
    """The seed mean as a line and its 95% interval as a shaded band (on a log axis, a band edge at or below 0 is
    left out rather than drawn at the axis' bottom)."""
    lo = np.asarray(band["lo"], dtype=float)
    if log:
        lo = np.where(lo > 0, lo, np.nan)
    ax.fill_between(steps, lo, band["hi"], color=color, alpha=0.25, lw=0)
    ax.plot(steps, band["mean"], color=color, ls=ls, label=label)


def figure_why_training(bands: dict):
    """Training loss (mini-batch, as trained) and test error along training, one line per network: the seed mean,
    with its 95% interval as a band.

    ``bands`` maps ``"none"``, ``"bn"``, ``"noisy"`` (any subset) to :func:`bnlib.reports.why.training_bands`
    entries. Test error with population statistics (solid) and, for networks with BN, in eval mode with the
    running averages (dotted).
    """
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.5))
    for key, s in bands.items():
        color, name = colour(key), legend(key)
        _band(a, s["loss_step"], s["train_loss"], color, name, log=True)
        _band(b, s["step"], s["test_err"], color, f"{name}, population statistics", log=True)
        if s.get("test_err_eval") is not None:
            _band(b, s["step"], s["test_err_eval"], color, f"{name}, eval mode", ls=":", log=True)
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
    fig, axes = panels(1, len(runs), figsize=(min(3.0 * len(runs), MAX_FIGURE_WIDTH_IN), 3.3), sharey=True,
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


def figure_why_ics(bands: dict):
    """Santurkar et al.'s internal covariate shift along training: l2 distance (top) and cosine (bottom)
    between a layer's gradient before and after the earlier layers' update, one column per weight layer; seed mean
    and its 95% interval as a band. ``bands`` maps network keys to :func:`bnlib.reports.why.ics_bands` entries."""
    first = next(iter(bands.values()))
    n = len(first["layers"])
    fig, axes = panels(2, n, figsize=(min(3.0 * n, MAX_FIGURE_WIDTH_IN), 5.4), sharex=True, squeeze=False)
    for key, s in bands.items():
        for j in range(len(s["layers"])):
            for row, name in enumerate(("l2", "cos")):
                _band(axes[row][j], s["steps"], s[name][j], colour(key), legend(key), log=row == 0)
    for j, layer in enumerate(first["layers"]):
        axes[0][j].set(title=f"weight layer {layer + 1}")
        log_axis(axes[0][j])
        axes[1][j].set(xlabel="training step")
    axes[0][0].set_ylabel(r"$\|G - G'\|_2$")
    axes[1][0].set_ylabel(r"$\cos(G, G')$")
    fig.tight_layout()
    legend_below(fig, *axes[0][0].get_legend_handles_labels())
    return fig


def figure_why_landscape(bands: dict):
    """The loss landscape along the gradient at each checkpoint (:func:`bnlib.reports.why.landscape_bands`), seed mean
    and its 95% interval as a band: (a) range of the loss at ``w - eta g`` over the step sizes, (b) largest change
    of the gradient ``||g(w - eta g) - g(w)||``, (c) effective beta-smoothness."""
    fig, axes = panels(1, 3, figsize=(MAX_FIGURE_WIDTH_IN, 3.6))
    for key, s in bands.items():
        for ax, m in zip(axes, ("loss_range", "gc_max", "beta"), strict=True):
            _band(ax, s["steps"], s[m], colour(key), legend(key), log=True)
    axes[0].set(xlabel="training step", ylabel=r"range of the loss at $w - \eta g$", title="(a) loss along $-g$")
    axes[1].set(xlabel="training step", ylabel=r"max$_\eta \|g(w - \eta g) - g(w)\|$",
                title="(b) gradient predictiveness")
    axes[2].set(xlabel="training step", ylabel=r"max$_\eta$ change / $\|\eta g\|$",
                title=r"(c) effective $\beta$-smoothness")
    for ax in axes:
        log_axis(ax)
    fig.tight_layout()
    legend_below(fig, *axes[2].get_legend_handles_labels())
    return fig
