"""Figures of book/geometry.ipynb, from what :mod:`bnlib.geometry` measures."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from bnlib.plots.style import legend_below, log_axis, panels
from bnlib.vocabulary import colour, legend


def figure_norm_growth(r: dict):
    """(a) the mean squared norm of a unit's weights along plain SGD; (b) the effective rate lr/||w||^2 and the
    rotation per step (radians), both falling as the norm grows."""
    steps = np.arange(len(r["norm2"]))
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.3))
    a.plot(steps, r["norm2"], color=colour("bn"))
    a.set(xlabel="training step", ylabel="mean ||w||²", title="(a) the norm grows")
    b.plot(steps, r["eff_lr"], color=colour("bn"), label="effective rate lr / ||w||²")
    b.plot(steps, r["angle"], color=colour("none"), ls="--", label="rotation per step (rad)")
    log_axis(b)
    b.set(xlabel="training step", title="(b) the effective rate falls")
    fig.tight_layout()
    legend_below(b)
    return fig


def figure_equilibrium(mnist_runs: Sequence[dict], cifar_runs: Sequence[dict]):
    """The rotation per step along training with weight decay, one thin line per seed, and the equilibrium
    prediction as a horizontal line: (a) the MNIST MLP, (b) the CIFAR-10 CNN."""
    fig, axes = panels(1, 2, figsize=(9.0, 3.3))
    for ax, runs, title in ((axes[0], mnist_runs, "(a) MNIST MLP"), (axes[1], cifar_runs, "(b) CIFAR-10 CNN")):
        for k, r in enumerate(runs):
            ax.plot(np.arange(len(r["angle"])), r["angle"], color=colour("bn"), lw=0.8, alpha=0.7,
                    label="measured (one line per seed)" if k == 0 else None)
        ax.axhline(runs[0]["predicted"], color="#000000", ls="--", label="sqrt(2 lr wd / (1 + momentum))")
        log_axis(ax)
        ax.set(xlabel="training step", ylabel="rotation per step (rad)", title=title)
    fig.tight_layout()
    legend_below(fig)
    return fig


def figure_schedule(check: dict):
    """The rates of the two equivalent runs: the step schedule with weight decay and the derived rate without it
    (log scale), and the scale factor c_t."""
    t = np.arange(check["steps"])
    lrs = [check["lr"] * (check["decay"] if s >= check["decay_at"] else 1.0) for s in t]
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.3))
    a.plot(t, lrs, color=colour("none"), label="with weight decay: the schedule")
    a.plot(t, check["lr_tilde"], color=colour("bn"), ls="--", label="without: the equivalent rate")
    log_axis(a)
    a.set(xlabel="training step", ylabel="learning rate", title="(a) learning rates")
    b.plot(np.arange(len(check["c"])), check["c"], color="#000000")
    b.set(xlabel="training step", ylabel=r"$c_t$", title=r"(b) scale factor $c_t$")
    fig.tight_layout()
    legend_below(a)
    return fig


def figure_depth(bn: dict, plain: dict):
    """The squared weight-gradient norm of every layer of a deep network at initialization (log scale), with and
    without BN, (a) at initialization and (b) after one SGD step; ``bn`` and ``plain`` are
    :func:`bnlib.geometry.gradient_growth` results."""
    fig, axes = panels(1, 2, figsize=(9.0, 3.3), sharey=True)
    drawn = ((axes[0], "norms2", "(a) at initialization"), (axes[1], "norms2_after", "(b) after one step"))
    for ax, key, title in drawn:
        for r, name in ((bn, "bn"), (plain, "none")):
            ax.plot(np.arange(1, len(r[key]) + 1), r[key], color=colour(name), label=legend(name))
        ax.set_yscale("log")
        ax.set(xlabel="layer (1 = first)", title=title)
    axes[0].set_ylabel("squared gradient norm")
    fig.tight_layout()
    legend_below(fig)
    return fig


def figure_trainability(grid: dict, threshold: float):
    """The depth x learning-rate map, one panel per network (no BN, BN): each cell's seed-mean final validation
    accuracy (%) as colour and number, a frame around the cells that train and a dagger where a seed diverged;
    ``grid`` from :func:`bnlib.reports.geometry.trainability_grid`, ``threshold`` the accuracy (a fraction) at which
    a cell trains: a number that would round onto the other side of it is shown with one decimal, truncated."""
    depths = sorted({d for _, d, _ in grid})
    rates = sorted({lr for _, _, lr in grid})
    fig, axes = panels(1, 2, figsize=(8.6, 3.4), sharey=True)
    for ax, (net, title) in zip(axes, (("none", "(a) no BN"), ("bn", "(b) BN")), strict=True):
        acc = np.array([[100 * grid[(net, d, lr)]["mean"] for lr in rates] for d in depths])
        ax.imshow(acc, cmap="viridis", vmin=0, vmax=100, aspect="auto", origin="lower")
        for i, d in enumerate(depths):
            for j, lr in enumerate(rates):
                cell = grid[(net, d, lr)]
                mark = "†" if cell["diverged"] else ""
                label = f"{acc[i, j]:.0f}"
                if (float(label) >= 100 * threshold) != cell["trains"]:  # rounding would hide which side it is on
                    label = f"{np.floor(10 * acc[i, j]) / 10:.1f}"
                ax.text(j, i, f"{label}{mark}", ha="center", va="center",
                        color="#000000" if acc[i, j] > 60 else "#ffffff")
                if cell["trains"]:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="#ffffff", lw=2.0))
        ax.set_xticks(range(len(rates)), [f"{lr:g}" for lr in rates])
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        ax.set(xlabel="learning rate", title=title)
        ax.grid(False)
    axes[0].set_ylabel("hidden layers")
    fig.tight_layout()
    return fig
