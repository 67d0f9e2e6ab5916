"""Figures of book/mnist.ipynb; each takes an experiment result or what :mod:`bnlib.reports.mnist` returns."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from bnlib.plots.style import MAX_FIGURE_WIDTH_IN, legend_below, ramp
from bnlib.results import curve, curves, unit_percentiles
from bnlib.vocabulary import colour, phrase

MNIST_NETWORKS = tuple((k, phrase(k)) for k in ("none", "bn"))  # Figure 1's run labels, in the order drawn


def figure_mnist_accuracy(res: dict, speed: dict | None = None):
    """The paper's Figure 1(a): test accuracy against training steps, with and without BN.

    With ``speed`` (:func:`bnlib.reports.mnist_speedup`), the network without BN's final accuracy
    is drawn as a dotted line and the steps both networks need to reach it are marked.
    """
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    lows = []
    for label, name in MNIST_NETWORKS:
        c = curves(res["runs"][label])
        ax.plot(c["step"], c["test_acc"], color=colour(label), label=name)
        lows += [a for s, a in zip(c["step"], c["test_acc"], strict=True) if s > 0]
    if speed is not None:
        ax.axhline(speed["final_slow"], color="k", lw=0.8, ls=":",
                   label=f"final accuracy without BN ({100 * speed['final_slow']:.2f}%)")
        for key, label in (("fast_to_slow", "bn"), ("slow_to_slow", "none")):
            if speed[key] is not None:
                ax.plot([speed[key]], [speed["final_slow"]], "o", color=colour(label), ms=6)
    ax.set(xlabel="training step", ylabel="test accuracy", ylim=(min(lows) - 0.005, 1.0),
           title="MNIST, 3 x 100 sigmoid units: test accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def figure_mnist_percentiles(res: dict, layer: int, unit: int):
    """The paper's Figure 1(b, c): the 15th, 50th and 85th percentiles of one sigmoid's input over
    training, without BN (left) and with BN (right), on a shared vertical axis."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for ax, (label, name), letter in zip(axes, MNIST_NETWORKS, "bc", strict=True):
        t = unit_percentiles(res["runs"][label], layer, unit)
        col = colour(label)
        ax.fill_between(t["step"], t["p15"], t["p85"], color=col, alpha=0.12, lw=0)
        ax.plot(t["step"], t["p85"], color=col, lw=1.0, ls="--", label="85th percentile")
        ax.plot(t["step"], t["p50"], color=col, label="median")
        ax.plot(t["step"], t["p15"], color=col, lw=1.0, ls="-.", label="15th percentile")
        ax.set(xlabel="training step", title=f"({letter}) {name}")
    n_layers = len(curve(res["runs"]["none"], "percentiles")[0])
    axes[0].set_ylabel(f"input to unit {unit} of hidden layer {layer % n_layers + 1}")
    fig.tight_layout()
    keys = [Line2D([], [], color="k", lw=1.0, ls="--"), Line2D([], [], color="k"),
            Line2D([], [], color="k", lw=1.0, ls="-.")]
    legend_below(fig, keys, ["85th percentile", "median", "15th percentile"], ncol=3)
    return fig


def figure_mnist_saturation(res: dict, threshold: float):
    """Fraction of saturated sigmoid inputs (``|x| > threshold``) over training, one panel per hidden
    layer, with and without BN."""
    n_layers = len(curve(res["runs"]["none"], "saturated")[0])
    fig, axes = plt.subplots(1, n_layers, figsize=(min(3.0 * n_layers, MAX_FIGURE_WIDTH_IN), 3.2))
    for li, ax in enumerate(axes):
        for label, name in MNIST_NETWORKS:
            c = curves(res["runs"][label])
            ax.plot(c["step"], [100 * s[li] for s in c["saturated"]], color=colour(label), label=name)
        ax.set(xlabel="training step", title=f"hidden layer {li + 1}")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel(f"saturated inputs, |x| > {threshold:.2f} (%)")
    fig.tight_layout()
    legend_below(fig)
    return fig


def figure_mnist_histograms(res: dict, hists: dict, threshold: float):
    """Distribution of the sigmoid inputs of every hidden layer at a few checkpoints, without BN (top
    row) and with BN (bottom row); ``hists`` maps run labels to :func:`bnlib.reports.mnist_histograms`.
    The saturated range ``|x| > threshold`` is shaded; the outer bins hold everything beyond them."""
    n_layers = len(hists["none"]["density"][0])
    fig, axes = plt.subplots(2, n_layers, figsize=(min(3.0 * n_layers, MAX_FIGURE_WIDTH_IN), 5.4), sharex=True)
    for row, (label, name) in enumerate(MNIST_NETWORKS):
        h = hists[label]
        styles = ramp(len(h["steps"]))  # dark: early, light: late; each with its own dashes
        for li in range(n_layers):
            ax = axes[row][li]
            for k, (step, (col, ls, _)) in enumerate(zip(h["steps"], styles, strict=True)):
                ax.step(h["centers"], h["density"][k][li], where="mid", color=col, ls=ls, lw=1.5,
                        label=f"step {step:,}")
            for side in (-1, 1):
                ax.axvspan(side * threshold, side * h["edges"][-1], color="grey", alpha=0.12, lw=0)
            ax.set(title=f"{name}, hidden layer {li + 1}", xlim=(h["edges"][0], h["edges"][-1]))
            ax.set_ylim(bottom=0)
            if row == 1:
                ax.set_xlabel("sigmoid input x")
        axes[row][0].set_ylabel("density")
    fig.tight_layout()
    legend_below(fig, *axes[0][0].get_legend_handles_labels(), ncol=4)
    return fig


def figure_mnist_init_sweep(grid: dict):
    """Final test accuracy (left) and saturated fraction of the sigmoid inputs (right; mean over hidden
    layers) against the Gaussian init sigma, with and without BN (:func:`bnlib.reports.mnist_init_sweep`).
    The right panel shows the saturated fraction at step 0 of the network without BN (dotted: the
    weights every network starts from) and at the end of training for both."""
    colors = {"none": colour("none"), "BN": colour("bn")}
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    first = grid["networks"][0]
    sig0 = [s for s in grid["sigmas"] if s in grid["sat0"][first]]
    b.plot(sig0, [100 * grid["sat0"][first][s] for s in sig0], "o:", color="grey", label="at step 0")
    for n in grid["networks"]:
        sig = [s for s in grid["sigmas"] if s in grid["acc"][n]]
        acc = [grid["acc"][n][s] for s in sig]
        a.plot(sig, [None if v is None else 100 * v for v in acc], "o-", color=colors.get(n), label=n)
        b.plot(sig, [100 * grid["sat_final"][n][s] for s in sig], "o-", color=colors.get(n), label=f"{n}, at the end")
    a.set(xscale="log", xlabel=r"init $\sigma$", ylabel="final test accuracy (%)", title="(a) test accuracy")
    b.set(xscale="log", xlabel=r"init $\sigma$", ylabel="saturated sigmoid inputs (%)",
          title="(b) saturation, mean over hidden layers")
    fig.tight_layout()
    legend_below(fig, *b.get_legend_handles_labels(), ncol=3)  # (b)'s lines name (a)'s too: final = at the end
    return fig


def figure_mnist_dense128(summary: dict):
    """The seed article's Dense-128 demo rebuilt: test loss and test accuracy by epoch, with and without
    BN (:func:`bnlib.reports.mnist_dense128`)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for label, name in MNIST_NETWORKS:
        d = summary[label]
        a.plot(d["epoch"][1:], d["test_loss"][1:], "o-", color=colour(label), ms=3, label=name)
        b.plot(d["epoch"][1:], [100 * v for v in d["test_acc"][1:]], "o-", color=colour(label), ms=3, label=name)
    a.set(xlabel="epoch", ylabel="test loss (cross-entropy)", title="(a) test loss")
    b.set(xlabel="epoch", ylabel="test accuracy (%)", title="(b) test accuracy")
    fig.tight_layout()
    legend_below(fig, *a.get_legend_handles_labels())
    return fig
