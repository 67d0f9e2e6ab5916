"""Figures of book/cifar.ipynb; each takes the runs of a CIFAR-10 experiment or what
:mod:`bnlib.reports.cifar` returns."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bnlib.plots.style import NOTE_POINTS, SWEEP, legend_below, ramp
from bnlib.results import curve, seed_groups
from bnlib.vocabulary import colour


def _cifar_curve(group: list[dict], key: str):
    """(steps, seed-mean of ``curves[key]``) over the records every seed has."""
    n = min(len(curve(r, "step")) for r in group)
    return (np.asarray(curve(group[0], "step")[:n]),
            np.mean([np.asarray(curve(r, key)[:n], dtype=float) for r in group], axis=0))


def figure_cifar_depth(runs: dict, depths: tuple[int, ...]):
    """Test accuracy along training, without and with BN, one panel per depth."""
    groups = seed_groups(runs)
    fig, axes = plt.subplots(1, len(depths), figsize=(3.0 * len(depths), 3.0), sharey=True)
    for ax, d in zip(axes, depths, strict=True):
        for norm, name in (("none", "no BN"), ("bn", "BN")):
            steps, acc = _cifar_curve(groups[f"{norm}-depth{d}"], "test_acc")
            ax.plot(steps, 100 * acc, color=colour(norm), label=name)
        ax.axhline(10, color="k", lw=0.8, ls=":")
        ax.set(title=f"{d} sigmoid conv layers", xlabel="training step")
    axes[0].set_ylabel("test accuracy (%)")
    axes[-1].text(0.98, 10.5, "chance", transform=axes[-1].get_yaxis_transform(), ha="right", va="bottom",
                  fontsize=NOTE_POINTS)
    fig.tight_layout()
    legend_below(fig, *axes[0].get_legend_handles_labels())
    return fig


def figure_cifar_layers(runs: dict, depth: int):
    """The deep networks layer by layer along training: the fraction of saturated sigmoid inputs
    (|x| > 4.6, where sigmoid' < 0.01) and the norm of each conv layer's loss gradient."""
    groups = seed_groups(runs)
    styles = ramp(depth)  # dark: first layer, light: last; each layer its own dashes and marker
    fig, axes = plt.subplots(2, 2, figsize=(8.0, 5.8), sharex=True)
    for col, (norm, name) in enumerate((("none", "no BN"), ("bn", "BN"))):
        group = groups[f"{norm}-depth{depth}"]
        steps, sat = _cifar_curve(group, "saturated")
        n = len(steps)
        gsteps = steps[1:]  # no gradient is recorded at step 0
        grads = np.mean([np.asarray(curve(r, "grad_norm")[1:n], dtype=float) for r in group], axis=0)
        for layer in range(depth):
            c, ls, mk = styles[layer]
            every = max(1, len(steps) // 6)
            axes[0, col].plot(steps, 100 * sat[:, layer], color=c, ls=ls, marker=mk, markevery=(layer % every, every),
                              label=f"layer {layer + 1}")
            axes[1, col].semilogy(gsteps, grads[:, layer], color=c, ls=ls, marker=mk,
                                  markevery=(layer % every, every))
        axes[0, col].set(title=f"{name}, {depth} conv layers", ylim=(-2, 102))
        axes[1, col].set(xlabel="training step")
    axes[0, 0].set_ylabel("saturated inputs (%)")
    axes[1, 0].set_ylabel("gradient norm")
    lo = min(a.get_ylim()[0] for a in axes[1])
    hi = max(a.get_ylim()[1] for a in axes[1])
    for a in axes[1]:
        a.set_ylim(lo, hi)
    fig.tight_layout()
    legend_below(fig, *axes[0, 0].get_legend_handles_labels(), ncol=min(depth, 6))
    return fig


def figure_cifar_lr_sweep(rows: list[dict], runs: dict, show: tuple[float, ...] = (1, 5, 30)):
    """(a) Best and final test accuracy against the learning-rate multiplier (``rows`` from
    :func:`bnlib.reports.lr_sweep`; a diverged run is drawn as an x at zero);
    (b) test accuracy along training for the multipliers in ``show``."""
    from matplotlib.ticker import FormatStrFormatter


    groups = seed_groups(runs)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for norm, key, name in ((None, "none", "no BN"), ("torch", "bn", "BN")):
        mine = [r for r in rows if r["norm"] == norm]
        ks = [r["multiplier"] for r in mine]
        a.plot(ks, [100 * r["best_acc"] for r in mine], color=colour(key), marker="o", label=f"{name}: best")
        fin = [(r["multiplier"], 100 * r["final_acc"]) for r in mine if r["final_acc"] is not None]
        if fin:
            a.plot(*zip(*fin, strict=True), color=colour(key), marker="s", ls="--", mfc="none",
                   label=f"{name}: final")
        div = [r["multiplier"] for r in mine if r["diverged"]]
        if div:
            a.plot(div, [0] * len(div), color=colour(key), marker="x", ls="none", ms=9, label=f"{name}: diverged")
        for k, style in zip(show, ("-", "--", ":"), strict=False):
            lab = next((r["label"] for r in mine if r["multiplier"] == k), None)
            if lab is None:
                continue
            steps, acc = _cifar_curve(groups[lab], "test_acc")
            b.plot(steps, 100 * acc, color=colour(key), ls=style, label=f"{name}, x{k:g}")
    a.set_xscale("log")
    a.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    a.axhline(10, color="k", lw=0.8, ls=":")
    a.set(xlabel="learning rate / baseline rate", ylabel="test accuracy (%)", title="(a) learning-rate sweep")
    b.axhline(10, color="k", lw=0.8, ls=":")
    b.set(xlabel="training step", title="(b) along training")
    fig.tight_layout()
    legend_below(a)
    legend_below(b)
    return fig


def figure_cifar_recipe(runs: dict, target: float):
    """Test accuracy along training for each cumulative step of the recipe; dotted: ``target``."""
    groups = seed_groups(runs)
    fig, ax = plt.subplots(figsize=(8.0, 3.6))
    bn = [lab for lab in groups if not lab.startswith("none")]
    # the BN baseline in BN's colour, then each cumulative change in its own colour, dashes and marker
    styles = [(colour("bn"), "-", None)] + list(SWEEP)
    for lab, group in groups.items():
        steps, acc = _cifar_curve(group, "test_acc")
        if lab.startswith("none"):
            ax.plot(steps, 100 * acc, color=colour("none"), label=f"{lab} (no BN)")
        else:
            c, ls, mk = styles[bn.index(lab) % len(styles)]
            every = max(1, len(steps) // 8)
            ax.plot(steps, 100 * acc, color=c, ls=ls, marker=mk, markevery=(bn.index(lab) % every, every), label=lab)
    ax.axhline(100 * target, color="grey", lw=1.0, ls=":", label="no-BN baseline's best")
    ax.set(xlabel="training step", ylabel="test accuracy (%)")
    fig.tight_layout()
    legend_below(ax, ncol=4)
    return fig
