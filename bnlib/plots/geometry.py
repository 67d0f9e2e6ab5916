"""Figures of book/geometry.ipynb, from what :mod:`bnlib.geometry` measures."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from bnlib.plots.style import legend_below, log_axis
from bnlib.vocabulary import colour, legend


def figure_norm_growth(r: dict):
    """(a) the mean squared norm of a unit's weights along plain SGD; (b) the effective rate lr/||w||^2 and the
    rotation per step (radians), both falling as the norm grows."""
    steps = np.arange(len(r["norm2"]))
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.3))
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
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.3))
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
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.3))
    a.plot(t, lrs, color=colour("none"), label="with weight decay: the schedule")
    a.plot(t, check["lr_tilde"], color=colour("bn"), ls="--", label="without: the equivalent rate")
    log_axis(a)
    a.set(xlabel="training step", ylabel="learning rate", title="(a) learning rates")
    b.plot(np.arange(len(check["c"])), check["c"], color="#000000")
    b.set(xlabel="training step", ylabel="c_t", title="(b) scale factor c_t")
    fig.tight_layout()
    legend_below(a)
    return fig


def figure_depth(bn: dict, plain: dict):
    """The squared weight-gradient norm of every layer of a deep network at initialization (log scale), with and
    without BN, (a) at initialization and (b) after one SGD step; ``bn`` and ``plain`` are
    :func:`bnlib.geometry.gradient_growth` results."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.3), sharey=True)
    panels = ((axes[0], "norms2", "(a) at initialization"), (axes[1], "norms2_after", "(b) after one step"))
    for ax, key, title in panels:
        for r, name in ((bn, "bn"), (plain, "none")):
            ax.plot(np.arange(1, len(r[key]) + 1), r[key], color=colour(name), label=legend(name))
        ax.set_yscale("log")
        ax.set(xlabel="layer (1 = first)", title=title)
    axes[0].set_ylabel("squared gradient norm")
    fig.tight_layout()
    legend_below(fig)
    return fig
