"""The one figure style of the whole book, and the axis helpers every chapter's figures share."""

from __future__ import annotations

import math

import matplotlib as mpl
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.figsize": (7.0, 3.6),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}


def use_style() -> None:
    """Apply the book's matplotlib style; every chapter calls this once, first."""
    mpl.rcParams.update(STYLE)


def plain_log(ax, axis: str = "y") -> None:
    """Plain numbers (not powers of ten) on a log axis."""
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(FormatStrFormatter("%g"))
    a.set_minor_formatter(FormatStrFormatter("%g"))


def log_ticks(ax) -> None:
    """Plain-number labels on a log y axis, no minor labels: at 1, 1.5, 2, 3, 5 and 7 times the powers of
    ten when the axis spans about a decade, at 1, 2 and 5 up to 2.5 decades, else at the powers of ten.
    Call it after the limits are set."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 3.0
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=30))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def log_axis(ax) -> None:
    """Log-scale y axis labelled with plain numbers at 1, 2 and 5 times the powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
