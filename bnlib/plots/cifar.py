"""Figures of book/cifar.ipynb; each takes what :mod:`bnlib.reports.cifar` returns (seed means with min-max bands
over the seeds, as ``{"step", "mean", "lo", "hi", "seeds"}``), never a report function itself."""

from __future__ import annotations

from matplotlib.ticker import FormatStrFormatter

from bnlib.plots.style import SWEEP, legend_below, panels, ramp
from bnlib.vocabulary import colour


def _band(ax, b: dict, col, scale: float = 100.0, log: bool = False, alpha: float = 0.2, x=None, **kw):
    """A seed-mean line with its min-max band (in percent by default)."""
    x = b["step"] if x is None else x
    ax.fill_between(x, [scale * v for v in b["lo"]], [scale * v for v in b["hi"]], color=col, alpha=alpha, lw=0)
    plot = ax.semilogy if log else ax.plot
    return plot(x, [scale * v for v in b["mean"]], color=col, **kw)


def figure_cifar_depths(bands: dict):
    """Validation accuracy along training by depth, two panels a row: BN-x1 (population statistics; dashed: eval
    mode), no BN at its best rate at that depth, and the controls present (no BN with init gain 4, dash-dotted;
    ReLU without BN, grey); ``bands`` from :func:`bnlib.reports.cifar_depth.depth_bands`."""
    depths = list(bands)
    rows = (len(depths) + 1) // 2
    fig, axes = panels(rows, 2, figsize=(8.0, 3.0 * rows), sharey=True, squeeze=False)
    for ax, d in zip(axes.flat, depths, strict=False):
        b = bands[d]
        _band(ax, b["none"], colour("none"), label="no BN, its best rate")
        if "sigmoidinit" in b:
            _band(ax, b["sigmoidinit"], colour("none"), alpha=0.06, ls="-.", lw=1.2, label="no BN, init gain 4")
        if "relu" in b:
            _band(ax, b["relu"], "#777777", alpha=0.08, ls=":", lw=1.4, label="ReLU, no BN")
        _band(ax, b["bn"], colour("bn"), label="BN-x1, population statistics")
        _band(ax, b["bn-eval"], colour("bn"), alpha=0.06, ls="--", lw=1.0, label="BN-x1, eval mode")
        ax.axhline(10, color="k", lw=0.8, ls=":")
        ax.set(title=f"{d} conv layers (no BN best at x{b['none_mult']:g})")
    for ax in axes.flat[len(depths):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation accuracy (%)")
    fig.tight_layout()
    legend_below(fig, *axes.flat[0].get_legend_handles_labels(), ncol=3, axes=list(axes.flat[:len(depths)]))
    return fig


def figure_cifar_layers(bands: dict, depth: int):
    """The deep networks layer by layer along training: the fraction of saturated sigmoid inputs (|x| > 4.6, where
    sigmoid' < 0.01) and the norm of each conv layer's loss gradient; ``bands`` maps ``"none"`` and ``"bn"`` to
    :func:`bnlib.reports.cifar.layer_bands` (:func:`bnlib.reports.cifar_depth.depth_layer_bands`)."""
    styles = ramp(depth)  # dark: first layer, light: last; each layer its own dashes and marker
    fig, axes = panels(2, 2, figsize=(8.0, 5.8), sharex=True)
    for col, (key, name) in enumerate((("none", "no BN"), ("bn", "BN"))):
        b = bands[key]
        for layer in range(depth):
            c, ls, mk = styles[layer]
            every = max(1, len(b["sat"][layer]["step"]) // 6)
            mark = {"ls": ls, "marker": mk, "markevery": (layer % every, every)}
            _band(axes[0, col], b["sat"][layer], c, alpha=0.12, label=f"layer {layer + 1}", **mark)
            _band(axes[1, col], b["grad"][layer], c, scale=1.0, log=True, alpha=0.12, **mark)
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


def figure_cifar_lr_sweep(bands: dict):
    """(a) Final test accuracy against the learning-rate multiplier (seed mean, min-max band; a rate with a
    diverged seed is marked with an x at zero); (b) validation accuracy along training for a few multipliers;
    ``bands`` from :func:`bnlib.reports.cifar.lr_bands`."""
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    for key, name in (("none", "no BN"), ("bn", "BN")):
        r = bands["rates"][key]
        _band(a, r, colour(key), x=r["multiplier"], marker="o", label=name)
        if r["diverged"]:
            a.plot(r["diverged"], [0] * len(r["diverged"]), color=colour(key), marker="x", ls="none", ms=9,
                   label=f"{name}: a seed diverged")
        for (k, cb), style in zip(bands["curves"][key].items(), ("-", "--", ":"), strict=False):
            _band(b, cb, colour(key), alpha=0.12, ls=style, label=f"{name}, x{k:g}")
    a.set_xscale("log")
    a.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    a.axhline(10, color="k", lw=0.8, ls=":")
    a.set(xlabel="learning rate / baseline rate", ylabel="final test accuracy (%)", title="(a) learning-rate sweep")
    b.axhline(10, color="k", lw=0.8, ls=":")
    b.set(xlabel="training step", ylabel="validation accuracy (%)", title="(b) along training")
    fig.tight_layout()
    legend_below(a)
    legend_below(b)
    return fig


#: The four changes' styles in the recipe figure: the sweep's, without its black and its BN blue (the full recipe and
#: the BN baseline are drawn in those).
_CHANGE_STYLES = (SWEEP[0], SWEEP[1], SWEEP[2], SWEEP[5])


def figure_cifar_recipe(bands: dict, target: float):
    """The recipe's ablation along training (validation accuracy, seed mean with a min-max band; BN with population
    statistics): (a) each change added alone to BN, beside both baselines and the full recipe; (b) the full recipe
    and the recipe without each change. Dotted: ``target``. ``bands`` from
    :func:`bnlib.reports.cifar_recipe.recipe_bands`, keyed by the networks' names."""
    fig, axes = panels(1, 2, figsize=(8.6, 3.8), sharey=True)
    halves = ([lab for lab in bands if not lab.startswith("full recipe but")],
              [lab for lab in bands if lab.startswith("full recipe")])
    for ax, labels, title in zip(axes, halves, ("(a) each change added to BN", "(b) each change left out"),
                                 strict=True):
        changes = [lab for lab in labels if lab.startswith(("BN +", "full recipe but"))]
        for lab in labels:
            b = bands[lab]
            if lab.startswith("no BN"):
                _band(ax, b, colour("none"), alpha=0.12, label=lab)
            elif lab == "BN (baseline)":
                _band(ax, b, colour("bn"), alpha=0.12, label=lab)
            elif lab == "full recipe":
                _band(ax, b, "black", alpha=0.08, lw=2.0, label=lab)
            else:
                i = changes.index(lab)
                c, ls, mk = _CHANGE_STYLES[i % len(_CHANGE_STYLES)]
                every = max(1, len(b["step"]) // 8)
                _band(ax, b, c, alpha=0.06, ls=ls, marker=mk, markevery=(i % every, every), label=lab)
        ax.axhline(100 * target, color="grey", lw=1.0, ls=":", label="target")
        ax.set(xlabel="training step", title=title)
    axes[0].set_ylabel("validation accuracy (%)")
    fig.tight_layout()
    legend_below(fig, ncol=3)
    return fig
