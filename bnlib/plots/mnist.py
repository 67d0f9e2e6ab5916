"""Figures of book/mnist.ipynb; each takes what :mod:`bnlib.reports.mnist` returns (seed means with min-max
bands over the seeds), never a report function itself."""

from __future__ import annotations

from matplotlib.lines import Line2D

from bnlib.plots.style import MAX_FIGURE_WIDTH_IN, legend_below, panels, ramp
from bnlib.vocabulary import colour, phrase

MNIST_NETWORKS = tuple((k, phrase(k)) for k in ("none", "bn"))  # Figure 1's run labels, in the order drawn
_PCT_STYLES = (("p85", "--", "85th percentile"), ("p50", "-", "median"), ("p15", "-.", "15th percentile"))


def _band(ax, x, b, col, scale=1.0, **kw):
    """A seed-mean line with its min-max band."""
    ax.fill_between(x, [scale * v for v in b["lo"]], [scale * v for v in b["hi"]], color=col, alpha=0.2, lw=0)
    return ax.plot(x, [scale * v for v in b["mean"]], color=col, **kw)


def figure_mnist_accuracy(bands: dict):
    """The paper's Figure 1(a): test accuracy against training steps, with and without BN; ``bands`` maps
    ``"none"`` and ``"bn"`` to :func:`bnlib.reports.mnist.mnist_accuracy_bands` entries (seed mean, min-max)."""
    fig, ax = panels(figsize=(7.0, 3.6))
    lows = []
    for label, name in MNIST_NETWORKS:
        b = bands[label]
        _band(ax, b["step"], b, colour(label), label=f"{name} (mean of {b['seeds']} seeds)")
        lows += [a for s, a in zip(b["step"], b["lo"], strict=True) if s > 0]
    ax.set(xlabel="training step", ylabel="test accuracy", ylim=(min(lows) - 0.005, 1.0),
           title="MNIST, 3 x 100 sigmoid units: test accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def figure_mnist_percentiles(bands: dict, endpoints=()):
    """The paper's Figure 1(b, c) over all units of the last hidden layer: per panel the median across units of
    its inputs' 15th, 50th and 85th percentiles (seed mean, min-max band); columns without and with BN, one row
    per learning rate. ``bands`` maps run labels (``"none"``, ``"bn"``, ``"none-lr2"``, ...) to
    :func:`bnlib.reports.mnist.mnist_unit_bands`; ``endpoints``: steps marked by dotted vertical lines."""
    rows = [(k, f"bn{k[4:]}") for k in bands if k.startswith("none")]
    fig, axes = panels(len(rows), 2, figsize=(9.0, 3.0 * len(rows)), sharey="row", squeeze=False)
    letters = iter("bcdefgh")
    for (nl, bl), ax_row in zip(rows, axes, strict=True):
        for ax, label, (key, name) in zip(ax_row, (nl, bl), MNIST_NETWORKS, strict=True):
            b = bands[label]
            for p, ls, _ in _PCT_STYLES:
                _band(ax, b["step"], b[p], colour(key), ls=ls, lw=1.2 if p == "p50" else 1.0)
            for s in endpoints:
                ax.axvline(s, color="grey", lw=0.8, ls=":")
            ax.set(title=f"({next(letters)}) {name}, learning rate {b['lr']:g}")
        ax_row[0].set_ylabel("sigmoid input")
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    fig.tight_layout()
    keys = [Line2D([], [], color="k", lw=1.0, ls=ls) for _, ls, _ in _PCT_STYLES]
    legend_below(fig, keys, [lab for _, _, lab in _PCT_STYLES], ncol=3)
    return fig


def figure_mnist_saturation(bands: dict, threshold: float):
    """Fraction of saturated sigmoid inputs (``|x| > threshold``) over training, one panel per hidden layer, with
    and without BN; ``bands``: :func:`bnlib.reports.mnist.mnist_saturation_bands`."""
    n_layers = len(bands["none"]["layers"])
    fig, axes = panels(1, n_layers, figsize=(min(3.0 * n_layers, MAX_FIGURE_WIDTH_IN), 3.2))
    for li, ax in enumerate(axes):
        for label, name in MNIST_NETWORKS:
            _band(ax, bands[label]["step"], bands[label]["layers"][li], colour(label), scale=100, label=name)
        ax.set(xlabel="training step", title=f"hidden layer {li + 1}")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel(f"saturated inputs, |x| > {threshold:.2f} (%)")
    fig.tight_layout()
    legend_below(fig)
    return fig


def figure_mnist_histograms(hists: dict, threshold: float):
    """Distribution of the sigmoid inputs of every hidden layer at a few checkpoints, without BN (top row) and
    with BN (bottom row); ``hists`` maps run labels to :func:`bnlib.reports.mnist.mnist_histograms`. The
    saturated range ``|x| > threshold`` is shaded; the outer bins hold everything beyond them."""
    n_layers = len(hists["none"]["density"][0])
    fig, axes = panels(2, n_layers, figsize=(min(3.0 * n_layers, MAX_FIGURE_WIDTH_IN), 5.4), sharex=True)
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


def figure_mnist_init_sweep(grid: dict, hw: dict | None = None):
    """Final test accuracy (left; error bars: ``hw[network][sigma]``, the 95% half-widths) and saturated fraction
    of the sigmoid inputs (right; mean over hidden layers) against the Gaussian init sigma, with and without BN;
    ``grid``: the seed-mean grid of :func:`bnlib.reports.mnist.mnist_init_seeds`. The right panel shows the
    saturated fraction at step 0 of the network without BN (dotted: the weights every network starts from) and at
    the end of training for both."""
    colors = {"none": colour("none"), "BN": colour("bn")}
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    first = grid["networks"][0]
    sig0 = [s for s in grid["sigmas"] if grid["sat0"][first].get(s) is not None]
    b.plot(sig0, [100 * grid["sat0"][first][s] for s in sig0], "o:", color="grey", label="at step 0")
    for n in grid["networks"]:
        sig = [s for s in grid["sigmas"] if grid["acc"][n].get(s) is not None]
        err = [100 * ((hw or {}).get(n, {}).get(s) or 0.0) for s in sig]
        a.errorbar(sig, [100 * grid["acc"][n][s] for s in sig], yerr=err, fmt="o-", color=colors.get(n), capsize=3,
                   label=n)
        sig = [s for s in grid["sigmas"] if grid["sat_final"][n].get(s) is not None]
        b.plot(sig, [100 * grid["sat_final"][n][s] for s in sig], "o-", color=colors.get(n), label=f"{n}, at the end")
    a.set(xscale="log", xlabel=r"init $\sigma$", ylabel="final test accuracy (%)", title="(a) test accuracy")
    b.set(xscale="log", xlabel=r"init $\sigma$", ylabel="saturated sigmoid inputs (%)",
          title="(b) saturation, mean over hidden layers")
    fig.tight_layout()
    legend_below(fig, *b.get_legend_handles_labels(), ncol=3)  # (b)'s lines name (a)'s too: final = at the end
    return fig


def figure_mnist_dense128(bands: dict):
    """The seed article's Dense-128 demo rebuilt: test loss and test accuracy by epoch, with and without BN (seed
    mean, min-max band; :func:`bnlib.reports.mnist.mnist_dense128_bands`)."""
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    for label, name in MNIST_NETWORKS:
        d = bands[label]
        x = d["epoch"][1:]
        _band(a, x, {k: v[1:] for k, v in d["test_loss"].items()}, colour(label), marker="o", ms=3, label=name)
        _band(b, x, {k: v[1:] for k, v in d["test_acc"].items()}, colour(label), scale=100, marker="o", ms=3,
              label=name)
    a.set(xlabel="epoch", ylabel="test loss (cross-entropy)", title="(a) test loss")
    b.set(xlabel="epoch", ylabel="test accuracy (%)", title="(b) test accuracy")
    fig.tight_layout()
    legend_below(fig, *a.get_legend_handles_labels())
    return fig
