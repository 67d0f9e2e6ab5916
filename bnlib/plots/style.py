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
import textwrap
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
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
#: Width of the HTML content column in CSS px at a 390 px phone window (tests/test_browser.py measures the
#: figures); an exercise's solution box is narrower, about 320 px.
PHONE_DISPLAY_PX = 358
#: Width in inches of a figure's phone layout, its panels one under another: saved with the 0.1 inch pad of
#: ``bbox_inches="tight"`` on each side, 10 pt text is shown 10 / 72 * 320 / 4.2 = 10.6 px tall even in a
#: solution box.
PHONE_WIDTH_IN = 4.0
#: Height in inches of each panel's axes box (the frame, without titles, ticks or legends) in the phone layout.
PHONE_PANEL_IN = 2.3

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
    Call it last, after ``fig.tight_layout()``; the saved figure grows in height, not in width: a legend
    that would reach past an edge of the figure takes fewer columns. The phone layout (:func:`layouts`)
    places it again."""
    from matplotlib.figure import Figure

    fig = target if isinstance(target, Figure) else target.figure
    r = _renderer(fig)
    if isinstance(target, Figure):
        panels = [ax for ax in (axes if axes is not None else fig.axes) if ax.get_visible()]
        if handles is None:
            seen = {}
            for ax in panels:
                for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                    seen.setdefault(lab, h)
            labels, handles = list(seen), list(seen.values())
        bottom = min(ax.get_tightbbox(r).y0 for ax in panels)
        y = fig.transFigure.inverted().transform((0, bottom))[1]
        n = ncol or min(len(handles), 4)
    else:
        if handles is None:
            handles, labels = target.get_legend_handles_labels()
        y = target.transAxes.inverted().transform((0, target.get_tightbbox(r).y0))[1]
        n = ncol or min(len(handles), 2)
    if not handles:
        return None  # nothing to name: no legend
    return _fitted(target, (list(handles), list(labels), n, kw), y)


#: The attribute under which a legend of :func:`legend_below` keeps what it was made from (handles, labels,
#: columns asked for, keywords), and a phone-layout figure the grid of panels its function asked for. Kept on the
#: objects themselves, so that they are freed with them.
_SPEC, _GRID = "bn_legend_spec", "bn_panel_grid"


def _centred_room(box, fig) -> float:
    """The widest a box centred where ``box`` is may be without reaching past either edge of ``fig`` (display px)."""
    return min(box.x0 + box.x1, 2 * fig.bbox.width - box.x0 - box.x1)


def _fitted(target, spec, y):
    """The legend of ``spec`` centred at height ``y`` under ``target`` (an Axes, in its axes coordinates, or a
    Figure), with fewer columns while it would reach past an edge of the figure."""
    from matplotlib.figure import Figure

    handles, labels, n, kw = spec
    fig = target if isinstance(target, Figure) else target.figure
    r = _renderer(fig)
    while True:
        where = {"bbox_transform": fig.transFigure} if isinstance(target, Figure) else {}
        leg = target.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y), ncol=n,
                            borderaxespad=0.2, **where, **kw)
        box = leg.get_window_extent(r)
        if n == 1 or box.width <= _centred_room(box, fig):
            break
        leg.remove()
        n -= 1
    setattr(leg, _SPEC, spec)
    return leg


# --------------------------------------------------------------------------- the phone layout
_PHONE = {"on": False}


@contextmanager
def phone():
    """Inside this block, :func:`panels` lays a figure's panels out one under another, for a phone."""
    before = _PHONE["on"]
    _PHONE["on"] = True
    try:
        yield
    finally:
        _PHONE["on"] = before


def panels(nrows: int = 1, ncols: int = 1, figsize=None, sharex=False, sharey=False, squeeze: bool = True):
    """``plt.subplots`` for the book's figures. In the phone layout (:func:`phone`) the same panels, in the
    same order (row by row), stand one under another in a figure :data:`PHONE_WIDTH_IN` wide; the axes
    come back in the grid shape asked for, so the figure function draws them the same way either way."""
    import matplotlib.pyplot as plt

    if not _PHONE["on"]:
        return plt.subplots(nrows, ncols, figsize=figsize, sharex=sharex, sharey=sharey, squeeze=squeeze)
    n = nrows * ncols
    fig = plt.figure(figsize=(PHONE_WIDTH_IN, n * (PHONE_PANEL_IN + 1.2)))
    gs = fig.add_gridspec(n, 1)
    grid = np.empty((nrows, ncols), dtype=object)
    for k in range(n):
        grid.flat[k] = fig.add_subplot(gs[k])
    for share, axis in ((sharex, "x"), (sharey, "y")):
        for (i, j), ax in np.ndenumerate(grid):
            lead = {True: grid[0, 0], "all": grid[0, 0], "row": grid[i, 0], "col": grid[0, j]}.get(share)
            if lead is not None and lead is not ax:
                getattr(ax, f"share{axis}")(lead)
    setattr(fig, _GRID, grid)
    if squeeze and n == 1:
        return fig, grid[0, 0]
    if squeeze and (nrows == 1 or ncols == 1):
        return fig, grid.ravel()
    return fig, grid


def layouts(figure_function, *args, **kwargs):
    """(wide, phone): the figure drawn as designed and again in the phone layout, for
    :func:`bnlib.reports.format.figure`; the book shows the second below a 768 px window."""
    wide = figure_function(*args, **kwargs)
    with phone():
        narrow = figure_function(*args, **kwargs)
    if getattr(narrow, _GRID, None) is None:
        raise ValueError(f"{figure_function.__name__} does not draw its panels with bnlib.plots.style.panels, so it "
                         "has no phone layout.")
    stack(narrow)
    return wide, narrow


def _split(label: str, width: int) -> str:
    """``label`` wrapped at spaces outside ``$...$`` math into lines of about ``width`` characters."""
    words, math_open, cur = [], False, ""
    for i, ch in enumerate(label):
        if ch == "$" and (i == 0 or label[i - 1] != "\\"):  # an escaped \$ is a dollar sign, not math
            math_open = not math_open
        if ch == " " and not math_open:
            words.append(cur)
            cur = ""
        else:
            cur += ch
    words.append(cur)
    kept = " ".join(w.replace(" ", "\x01") for w in words)  # textwrap breaks only at the spaces outside math
    lines = textwrap.wrap(kept, width=max(width, 8), break_long_words=False, break_on_hyphens=False)
    return "\n".join(line.replace("\x01", " ") for line in lines)


def _fit_text(text, limit_px: float, r) -> None:
    """Wrap a title or axis label onto more lines while it is longer than ``limit_px`` (along its own direction:
    a y label's length is its height), narrower each time, for at most four tries."""
    label = text.get_text()

    def length():
        box = text.get_window_extent(r)
        return box.height if text.get_rotation() % 180 == 90 else box.width

    if not label or length() <= limit_px:
        return
    chars = math.ceil(len(label) / math.ceil(length() / limit_px)) + 2
    for _ in range(4):
        text.set_text(_split(label, chars))
        if length() <= limit_px or chars <= 8:
            return
        chars = max(8, int(chars * 0.85))


def _edges(ax, r, dpi: float):
    """Inches that an axes' titles, labels, ticks and legend take above, below, left and right of its frame."""
    box, tight = ax.get_window_extent(r), ax.get_tightbbox(r)
    return ((tight.y1 - box.y1) / dpi, (box.y0 - tight.y0) / dpi, (box.x0 - tight.x0) / dpi,
            (tight.x1 - box.x1) / dpi)


def _place(fig, axes, sides=None, gap: float = 0.12):
    """Frames of equal size one under another, each with room for what sits above and below it; ``sides``
    (left, right margins in inches) as the first call returned, so that the frames keep their size once the
    legends, which are centred and may reach past a frame's sides, are shown."""
    r, dpi = _renderer(fig), fig.dpi
    edges = [_edges(ax, r, dpi) for ax in axes]
    if sides is None:
        sides = (max(e[2] for e in edges) + 0.04, max(max(e[3] for e in edges), 0.0) + 0.04)
    left, right = sides
    if PHONE_WIDTH_IN - left - right < 1.0:
        raise ValueError(f"the panels' labels take {left + right:.1f} of the phone layout's {PHONE_WIDTH_IN:g} inches, "
                         "leaving no room for the frames: shorten the tick labels or the axis labels.")
    height = sum(top + PHONE_PANEL_IN + bottom + gap for top, bottom, _, _ in edges)
    height = math.ceil(height * 20) / 20  # whole 1/20 in: the figure's repr, which nbval compares
    fig.set_size_inches(PHONE_WIDTH_IN, height)
    y = height
    for ax, (top, bottom, _, _) in zip(axes, edges, strict=True):
        y -= top + PHONE_PANEL_IN
        ax.set_position([left / PHONE_WIDTH_IN, y / height, (PHONE_WIDTH_IN - left - right) / PHONE_WIDTH_IN,
                         PHONE_PANEL_IN / height])
        y -= bottom + gap
    return sides


def _spec_of(ax, leg) -> tuple:
    """What a panel's own legend (not one of :func:`legend_below`) shows, to draw it again under the panel: the
    axes' artists where they carry its labels (an error bar keeps its bars), its title, one column."""
    labels = [t.get_text() for t in leg.get_texts()]
    artists = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    handles = [artists.get(lab, proxy) for lab, proxy in zip(labels, leg.legend_handles, strict=True)]
    title = leg.get_title().get_text()
    return handles, labels, 1, {"title": title} if title else {}


def stack(fig) -> None:
    """Finish a phone-layout figure: every panel labelled (a panel without its own axis label takes its row's
    y label and its column's x label, one without a title its column's title), long titles and labels
    wrapped, the frames placed one under another with room for their titles and legends, every panel's
    legend under its frame and the figure's legends of :func:`legend_below` under the last one."""
    grid = getattr(fig, _GRID)
    r = _renderer(fig)
    for (i, j), ax in np.ndenumerate(grid):
        if not ax.get_ylabel():
            ax.set_ylabel(grid[i, 0].get_ylabel())
        if not ax.get_xlabel():
            ax.set_xlabel(grid[-1, j].get_xlabel())
        if not ax.get_title():
            ax.set_title(grid[0, j].get_title())
    axes = [ax for ax in grid.flat if ax.get_visible()]
    below = []  # every legend inside a panel goes under it: a narrow panel has no room to spare beside its data
    for ax in axes:
        leg = ax.get_legend()
        if leg is not None:
            below.append((ax, getattr(leg, _SPEC, None) or _spec_of(ax, leg)))
            leg.remove()
    mine = [leg for leg in fig.legends if getattr(leg, _SPEC, None) is not None]
    under_all = [getattr(leg, _SPEC) for leg in mine]
    for leg in mine:
        leg.remove()
    _place(fig, axes)
    for ax in axes:  # a title or x label centred on its frame must fit between the frame's centre and each edge
        box = ax.get_window_extent(r)
        room = _centred_room(box, fig) * 0.98
        _fit_text(ax.title, room, r)
        _fit_text(ax.xaxis.label, room, r)
        _fit_text(ax.yaxis.label, box.height * 1.1, r)
    sides = _place(fig, axes)
    for ax, spec in below:  # under its own frame, which keeps its size from here on
        _fitted(ax, spec, ax.transAxes.inverted().transform((0, ax.get_tightbbox(r).y0))[1])
    _place(fig, axes, sides)
    for spec in under_all:
        _fitted(fig, spec, fig.transFigure.inverted().transform((0, min(ax.get_tightbbox(r).y0 for ax in axes)))[1])


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
