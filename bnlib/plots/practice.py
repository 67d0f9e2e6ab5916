"""Figures of book/practice.ipynb, from what :mod:`bnlib.reports.practice` summarizes."""

from __future__ import annotations

import numpy as np

from bnlib.plots.style import legend_below, log_axis, panels
from bnlib.vocabulary import colour

#: The legend of each residual network, its colour (the vocabulary's, the unnormalized one as "no BN"), line
#: style and marker.
RESIDUAL_STYLE = {"bn": ("BN", colour("bn"), "-", "o"), "plain": ("no normalization", colour("none"), "--", "s"),
                  "skipinit": ("SkipInit", colour("skipinit"), "-.", "^")}


def figure_residual(init: dict, points: dict):
    """(a) the variance of the residual stream at initialization, entering each block and leaving the last (log
    scale), for each network, with BN's prediction ``Var x_0 + sum of its branches' variances`` dashed; (b) test
    accuracy after training at each peak rate, seed mean with its 95% interval. ``init`` is
    :func:`bnlib.reports.practice.residual_init`, ``points`` :func:`bnlib.reports.practice.residual_points`."""
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    for kind, (label, c, ls, marker) in RESIDUAL_STYLE.items():
        s = init[kind]["stream"]
        a.plot(np.arange(len(s)), s, color=c, ls=ls, marker=marker, label=label)
    bn = init["bn"]
    a.plot(np.arange(len(bn["stream"])), bn["stream"][0] + np.concatenate([[0.0], np.cumsum(bn["branch"])]),
           color="#000000", ls=":", lw=1.2, label="BN: Var x₀ + Σ Var f")
    log_axis(a)
    a.set(xlabel="block (0 = the stem's output)", ylabel="variance of the stream", title="(a) at initialization")
    rates = points["rates"]
    x = np.arange(len(rates))
    for j, (kind, (label, c, _ls, marker)) in enumerate(RESIDUAL_STYLE.items()):
        p = points[kind]
        b.errorbar(x + 0.12 * (j - 1), 100 * np.asarray(p["mean"]), yerr=100 * np.asarray(p["hw"]), ls="none",
                   marker=marker, capsize=3, color=c, label=label)
    b.set_xticks(x, [f"{r:g}" for r in rates])
    b.set_xlim(-0.5, len(rates) - 0.5)
    b.set(xlabel="peak learning rate", ylabel="test accuracy (%)", title="(b) after training")
    fig.tight_layout()
    legend_below(fig, ncol=4)
    return fig
