"""The one figure style of the whole book, and the axis and legend helpers every chapter's figures share.

How big the text is where the reader sees it
--------------------------------------------
A glued figure is saved by IPython's inline backend as a PNG at ``figure.dpi`` with
``bbox_inches="tight"``, and the HTML scales every image down to fit the content column (about
:data:`DISPLAY_WIDTH_PX` = 740 CSS px at a 1280 px window; ``max-width: 100%``, never up). At
``figure.dpi`` = 200 every figure of the book (4 to 9 inches wide, 800 to 1800 px) is wider than
the column, so it is shown at 740 px whatever its dpi, and a font of ``p`` points in a figure
``w`` inches wide is shown ``p / 72 * 740 / w`` CSS px tall (its em size). The dpi only sets the
sharpness: 200 dpi is 1800 px for 9 inches, 2.4 image px per CSS px, crisp on 2x screens too.

The widest figure is :data:`MAX_FIGURE_WIDTH_IN` = 9 inches (the figure functions keep to it,
and put legends below the panels, which makes a figure taller, not wider), so the smallest scale
is 740 / (72 * 9) = 1.142 CSS px per point:

- tick labels, legends and annotations, 10.5 pt -> 12.0 px (capital letters about 8.7 px);
- axis labels, 11 pt -> 12.6 px; titles, 11.5 pt -> 13.1 px;
- nothing is smaller than :data:`MIN_POINTS` = 10 pt -> 11.4 px, above :data:`MIN_TEXT_PX` = 10 px.

A narrower figure is scaled up to the same 740 px, so its text only gets larger. A PNG at 200 dpi
holds four times the pixels of one at 100 dpi; line art compresses well, about 100 to 250 KiB a figure.
"""

from __future__ import annotations

import math

import matplotlib as mpl
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from bnlib.vocabulary import BLUE, GREEN, ORANGE, PURPLE

#: Width of the HTML content column in CSS px (sphinx-book-theme at a 1280 px window).
DISPLAY_WIDTH_PX = 740
#: The widest figure the book draws, in inches (bbox_inches="tight" may trim a little, never add much).
MAX_FIGURE_WIDTH_IN = 9.0
#: The smallest em size, in CSS px, that any figure text may have at the display width.
MIN_TEXT_PX = 10.0
#: The smallest font size, in points, that a figure function may ask for (11.4 px at 9 inches).
MIN_POINTS = 10.0
#: Font size for annotations written into a panel ("exact", "chance").
NOTE_POINTS = 10.5

STYLE = {
    "figure.dpi": 200,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "figure.figsize": (7.0, 3.6),
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "axes.labelsize": 11,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "legend.title_fontsize": 10.5,
    "figure.titlesize": 11.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5.5,
}

#: Styles for the lines of a sweep (learning rates, recipe steps) that are not normalizations:
#: Okabe-Ito colours, each with its own line style and marker, so neighbours differ three ways.
SWEEP = ((PURPLE, "-", "o"), (ORANGE, "--", "s"), (GREEN, "-.", "^"), ("#000000", ":", "D"),
         (BLUE, (0, (5, 1.5, 1, 1.5, 1, 1.5)), "v"), ("#56b4e9", (0, (8, 2)), "P"))

#: An ordered ramp, dark to light, for lines that are stages of one thing (layers 1..n, checkpoints):
#: evenly spaced shades of cividis from 0 to 0.9 (monotone in lightness, readable with every
#: colour-vision deficiency), each with its own dashes and marker so that neighbours never look alike.
RAMP_END = 0.9
RAMP_DASHES = ("-", "--", "-.", ":", (0, (5, 1.5, 1, 1.5, 1, 1.5)), (0, (8, 2)), (0, (1, 3)), (0, (3, 1, 1, 1)),
               (0, (6, 3, 2, 3)), (0, (2, 1)))
RAMP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def use_style() -> None:
    """Apply the book's matplotlib style; every chapter calls this once, first."""
    mpl.rcParams.update(STYLE)


def font_points(key: str) -> float:
    """The size in points of an rcParams font setting (``"xtick.labelsize"``; relative sizes resolved)."""
    from matplotlib.font_manager import FontProperties

    v = mpl.rcParams[key]
    return float(v) if isinstance(v, int | float) else FontProperties(size=v).get_size_in_points()


def displayed_px(points: float, width_in: float = MAX_FIGURE_WIDTH_IN) -> float:
    """The em size in CSS px of ``points`` of text in a figure ``width_in`` inches wide, shown at the
    content width (scaled down to :data:`DISPLAY_WIDTH_PX`, never up: a figure narrower than that at
    ``figure.dpi`` is shown at its own size)."""
    dpi = mpl.rcParams["figure.dpi"]
    return points / 72 * dpi * min(1.0, DISPLAY_WIDTH_PX / (width_in * dpi))


def ramp(n: int) -> list[tuple[str, object, str]]:
    """(colour, line style, marker) for ``n`` ordered stages, dark (first) to light (last)."""
    from matplotlib.colors import to_hex

    if n > len(RAMP_DASHES):
        raise ValueError(f"the ramp has {len(RAMP_DASHES)} styles, asked for {n}.")
    cmap = mpl.colormaps["cividis"]
    return [(to_hex(cmap(RAMP_END * i / max(n - 1, 1))), RAMP_DASHES[i], RAMP_MARKERS[i]) for i in range(n)]


def _renderer(fig):
    return fig.canvas.get_renderer()


def legend_below(target, handles=None, labels=None, ncol: int | None = None, axes=None, **kw):
    """A legend under the panels, clear of the data: under one axes (``target`` an Axes) or centred
    under all of a figure's panels (``target`` a Figure, ``axes`` the panels to clear, by default all).
    Call it last, after ``fig.tight_layout()``; the saved figure grows in height, not in width."""
    from matplotlib.figure import Figure

    fig = target if isinstance(target, Figure) else target.figure
    r = _renderer(fig)
    if isinstance(target, Figure):
        panels = axes if axes is not None else fig.axes
        if handles is None:
            seen = {}
            for ax in panels:
                for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                    seen.setdefault(lab, h)
            labels, handles = list(seen), list(seen.values())
        bottom = min(ax.get_tightbbox(r).y0 for ax in panels)
        y = fig.transFigure.inverted().transform((0, bottom))[1]
        n = ncol or min(len(handles), 4)
        return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y), ncol=n,
                          bbox_transform=fig.transFigure, borderaxespad=0.2, **kw)
    ax = target
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    bottom = ax.get_tightbbox(r).y0
    y = ax.transAxes.inverted().transform((0, bottom))[1]
    n = ncol or min(len(handles), 2)
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y), ncol=n, borderaxespad=0.2, **kw)


def plain_log(ax, axis: str = "y") -> None:
    """Plain numbers (not powers of ten) on a log axis."""
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(FormatStrFormatter("%g"))
    a.set_minor_formatter(FormatStrFormatter("%g"))


def log_ticks(ax) -> None:
    """Plain-number labels on a log y axis, no minor labels: at 1, 1.5, 2, 3, 5 and 7 times the powers of
    ten when the axis spans about a decade, at 1, 2 and 5 up to 2.5 decades, else at the powers of ten.
    Call it after the limits are set."""
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
