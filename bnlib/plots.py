"""One function per figure the book shows, and the one figure style of the whole book."""

from __future__ import annotations

import matplotlib as mpl

STYLE = {
    "figure.dpi": 80,
    "savefig.dpi": 80,
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
COLORS = {"none": "#d62728", "bn": "#1f77b4", "torch": "#1f77b4", "bnlib": "#1f77b4", "noisy": "#2ca02c"}


def use_style() -> None:
    """Apply the book's matplotlib style; every chapter calls this once, first."""
    mpl.rcParams.update(STYLE)
