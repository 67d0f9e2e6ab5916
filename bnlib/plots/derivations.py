"""Figures of the three derivation chapters (book/transform.ipynb, book/backward.ipynb,
book/scale_invariance.ipynb); each takes arrays the chapter computed (a BN cache, a Jacobian, SGD runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.ticker as mpl_ticker
import numpy as np

from bnlib.plots.style import legend_below, panels, ramp
from bnlib.vocabulary import colour

#: One (colour, dashes, marker) per learning rate of the scale-invariance chapter's runs, smallest (dark)
#: first; not the vocabulary's red and blue, which mean "without BN" and "with BN".
LR_STYLES = tuple(ramp(4))
#: One colour per learning rate, smallest first.
LR_COLOURS = tuple(c for c, _, _ in LR_STYLES)


def figure_pixel_variance(cache: Mapping, eps: float):
    """The variance of the normalized pixels against the batch variance of the raw pixel, on the
    curve sigma^2 / (sigma^2 + eps); ``cache`` is ``bnlib.functional.forward``'s on the mini-batch."""
    var_x, var_hat = np.asarray(cache["var"]), np.asarray(cache["xhat"]).var(axis=0)
    moving = var_x != 0
    fig, ax = panels(figsize=(6.5, 3.4))
    grid = np.logspace(-8, 0, 200)
    ax.plot(grid, grid / (grid + eps), color="k", lw=1, label=r"$\sigma^2/(\sigma^2+\epsilon)$, proven above")
    ax.plot(var_x[moving], var_hat[moving], "o", ms=3, color=colour("bn"), alpha=0.6,
            label="MNIST pixel features (bnlib.functional)")
    ax.axvline(eps, color="grey", ls=":", lw=1)
    ax.set(xscale="log", xlabel=r"batch variance $\sigma^2$ of the pixel", ylabel=r"variance of $\hat{x}$",
           title=r"One mini-batch of 128 MNIST images, $\epsilon = 10^{-5}$")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def figure_sigmoid(lo: float, hi: float):
    """The sigmoid, its tangent at 0 and the N(0, 1) density, with the band ``[lo, hi]`` of 95% of the inputs."""
    fig, ax = panels(figsize=(6.5, 3.2))
    zz = np.linspace(-6, 6, 400)
    sig = 1 / (1 + np.exp(-zz))
    ax.fill_between(zz, 0, np.exp(-zz**2 / 2) / np.sqrt(2 * np.pi), color=colour("bn"), alpha=0.2,
                    label=r"density of $\hat{x} \sim N(0, 1)$")
    ax.plot(zz, sig, color="k", label="sigmoid(z)")
    ax.plot(zz, np.clip(0.5 + zz / 4, -0.1, 1.1), color=colour("none"), ls="--", lw=1, label="tangent at 0")
    ax.axvspan(lo, hi, color="grey", alpha=0.12, label="central 95% of the inputs")
    ax.set(xlabel="input z", ylim=(-0.05, 1.05), title="Standardized inputs keep a sigmoid near its linear part")
    fig.tight_layout()
    legend_below(ax)
    return fig


def figure_jacobian(x: np.ndarray, jacobian: np.ndarray, var: float, eps: float):
    r"""(a) :math:`\sqrt{\sigma^2+\epsilon}\,\partial\hat x_i/\partial x_j - \delta_{ij}` with the examples sorted
    by ``x``; (b) the eigenvalues of :math:`\sqrt{\sigma^2+\epsilon}\,J`, against eps / (var + eps)."""
    m = len(x)
    scaled = np.sqrt(var + eps) * np.asarray(jacobian)
    eig = np.sort(np.linalg.eigvalsh(scaled))
    order = np.argsort(x)
    removed = scaled[np.ix_(order, order)] - np.eye(m)  # what the normalization subtracts: -(1 1^T + xhat xhat^T)/m
    lim = np.abs(removed).max()
    fig, (a0, a1) = panels(1, 2, figsize=(9, 3.6))
    im = a0.imshow(removed, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, cax=a0.inset_axes([1.04, 0.075, 0.045, 0.85]))  # moves with its panel in either layout
    a0.set(title=r"(a) $\sqrt{\sigma^2+\epsilon}\;\partial\hat{x}_i/\partial x_j - \delta_{ij}$",
           xlabel="j (sorted by x)", ylabel="i (sorted by x)")
    a0.grid(False)
    a1.plot(np.arange(1, m + 1), np.maximum(np.abs(eig), 1e-18), "o", color=colour("bn"))
    a1.axhline(eps / (var + eps), color="grey", ls=":", lw=1, label=r"$\epsilon/(\sigma^2+\epsilon)$")
    a1.set(yscale="log", xlabel="eigenvalue, in increasing order", ylabel="|eigenvalue|",
           title="(b) one 0, one tiny, the rest 1")
    a1.legend(loc="center right")
    fig.tight_layout()
    return fig


def _moving_mean(v, window: int = 20):
    return np.convolve(v, np.ones(window) / window, mode="valid")


def figure_learning_rates(runs: Mapping[tuple[float, bool], Mapping], lrs: Sequence[float]):
    """(a) The BN runs' mean weight norm per SGD step; (b) the training loss (20-step mean), BN solid and
    without BN dotted; ``runs`` are ``bnlib.sgd.run`` results keyed ``(lr, bn)``."""
    if len(lrs) > len(LR_COLOURS):
        raise ValueError(f"the figure has colours for {len(LR_COLOURS)} learning rates, got {len(lrs)}.")
    fig, (a0, a1) = panels(1, 2, figsize=(9.0, 3.5))
    for lr, (col, _, mk) in zip(lrs, LR_STYLES[: len(lrs)], strict=True):
        norm = np.asarray(runs[(lr, True)]["norm"])
        steps = np.arange(len(norm))
        marks = [i for i in (0, 1, 3, 10, 30, 100, 300) if i < len(norm)]
        a0.plot(steps, norm, color=col, marker=mk, markevery=marks, label=f"lr {lr:g}")
        smooth = _moving_mean(runs[(lr, True)]["loss"])
        a1.plot(np.arange(len(smooth)) + 20, smooth, color=col, label=f"lr {lr:g}")
        smooth = _moving_mean(runs[(lr, False)]["loss"])
        a1.plot(np.arange(len(smooth)) + 20, smooth, color=col, ls=":", lw=1.4)
    # the norm is set in the first few steps: a symlog step axis (linear up to 1, then log) shows the
    # growth from the initial norm at step 0, which a linear axis squeezes into one vertical jump
    a0.set_xscale("symlog", linthresh=1.0, linscale=0.4)
    a0.set_xlim(0, None)
    a0.xaxis.set_major_formatter(mpl_ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    a0.set(yscale="log", xlabel="SGD step (log scale after step 1)", ylabel=r"mean $\|w\|$ of a unit",
           title="(a) BN: the weights grow")
    a1.set(yscale="log", xlabel="SGD step", ylabel="training loss (20-step mean)",
           title="(b) loss: BN solid, no BN dotted")
    fig.tight_layout()
    legend_below(fig, *a0.get_legend_handles_labels())
    return fig
