"""How the book shows numbers: formatters, :class:`Table`, and the glue helpers every chapter uses.

A chapter's hidden cells hand numbers to the prose with :func:`glue_all`: each value says how it
is shown (:func:`number`, :func:`percent`, :func:`text`, :func:`md`, :func:`math`), rounded here so
that nbval compares the same text on every machine.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bnlib.reports.evidence import Paired


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """0.4567 -> "45.7%"; None -> "–"."""
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def fmt_steps(x: int | None) -> str:
    """Steps with a thousands separator; None (never reached) -> "never"."""
    return "never" if x is None else f"{x:,}"


def fmt_ratio(x: float | None) -> str:
    """A speed-up factor, "3.5×"; None -> "–"."""
    return "–" if x is None else f"{x:.3g}×"


def signed(x: float, digits: int = 2) -> str:
    """``x`` with its sign and ``digits`` decimals, "+0.42", "-1.50". Zero, and anything smaller than half a unit
    of the third decimal beyond ``digits`` (float noise), is "0.00"; a value that is not zero but rounds to it
    keeps its sign with as many more decimals as it takes (up to three), "-0.004", so that an interval's bound
    just below zero is never shown as "-0.00" or as a bare "0.00". NaN and infinities read "+nan", "+inf"."""
    if x == 0 or abs(x) < 0.5 * 10 ** -(digits + 3):
        return f"{0:.{digits}f}"
    for d in range(digits, digits + 4):
        text = f"{x:+.{d}f}"
        if not float(text) == 0:
            break
    return text


def fmt_paired(p: Paired, scale: float = 100, unit: str = " points", digits: int = 2) -> str:
    """A paired difference with its interval and seeds: "+0.42 points [+0.14, +0.70], 5 seeds"."""
    if p.n == 1:
        return f"{signed(scale * p.mean, digits)}{unit} (one seed: no interval)"
    return (f"{signed(scale * p.mean, digits)}{unit} [{signed(scale * p.lo, digits)}, {signed(scale * p.hi, digits)}], "
            f"{p.n} seeds")


def fmt_mean_hw(mean: float | None, half_width: float | None, scale: float = 100, digits: int = 2,
                unit: str = "") -> str:
    """A seed mean with the half-width of its 95% interval: "97.92 ± 0.05"; None -> "–"."""
    if mean is None:
        return "–"
    if not half_width:
        return f"{scale * mean:.{digits}f}{unit}"
    return f"{scale * mean:.{digits}f} ± {scale * half_width:.{digits}f}{unit}"


def and_list(values: Sequence, empty: str | None = None) -> str:
    """Values as prose: ``[2, 4, 8] -> "2, 4 and 8"``, ``[2] -> "2"``; no values: ``empty``, where it is given."""
    if not values:
        if empty is not None:
            return empty
        raise ValueError("and_list needs at least one value.")
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" and {words[-1]}"


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table (every cell passed through ``str``; ``|`` escaped)."""
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row must have {len(header)} cells, like the header.")

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


class Table:
    """A small table: aligned plain text for ``repr`` (and nbval), an HTML table for the book.

    ``formats`` gives, per column, a format spec (``".3f"``) or a callable; ``None`` cells
    show as ``n/a``.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence], formats: Sequence | None = None,
                 caption: str = ""):
        self.columns = [str(c) for c in columns]
        self.rows = [list(r) for r in rows]
        bad = [i for i, r in enumerate(self.rows) if len(r) != len(self.columns)]
        if bad:
            raise ValueError(f"every row must have {len(self.columns)} cells (one per column); row {bad[0]} has "
                             f"{len(self.rows[bad[0]])}.")
        self.formats = list(formats) if formats is not None else [None] * len(self.columns)
        if len(self.formats) != len(self.columns):
            raise ValueError(f"formats must give one entry per column ({len(self.columns)}), got {len(self.formats)}.")
        self.caption = caption

    @staticmethod
    def _cell(v, fmt) -> str:
        if v is None:
            return "n/a"
        if callable(fmt):
            return fmt(v)
        if fmt and not isinstance(v, str):
            return format(v, fmt)
        return str(v)

    def cells(self) -> list[list[str]]:
        """The formatted cells, row by row."""
        return [[self._cell(v, f) for v, f in zip(r, self.formats, strict=True)] for r in self.rows]

    def __repr__(self) -> str:
        body = self.cells()
        widths = [max(len(c) for c in col) for col in zip(self.columns, *body, strict=True)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    #: Cells up to this many characters (a number, a mean ± half-width, an interval) do not wrap in the HTML.
    NOWRAP_CHARS = 30

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)

        def td(c: str) -> str:
            return f'<td class="bn-nowrap">{html.escape(c)}</td>' if len(c) <= self.NOWRAP_CHARS else \
                f"<td>{html.escape(c)}</td>"

        body = "".join("<tr>" + "".join(td(c) for c in r) + "</tr>" for r in self.cells())
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f'<table class="table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pct(x: float) -> str:
    """An accuracy as a percentage with two decimals: 0.98765 -> "98.77"."""
    return f"{100 * x:.2f}"


def points(x: float) -> str:
    """A difference of accuracies in percentage points, signed (:func:`signed`): 0.0123 -> "+1.23",
    -0.00001 -> "-0.001"."""
    return signed(100 * x)


# --------------------------------------------------------------------------- glue
@dataclass(frozen=True)
class Glued:
    """A value for the prose and how it is shown: ``kind`` is ``"number"`` (rounded to ``digits``),
    ``"text"`` (plain text), ``"md"`` (Markdown, for ``{glue:md}``), ``"math"`` (LaTeX, for ``{glue:math}``)
    or ``"figure"`` (a matplotlib figure, closed once glued)."""

    value: object
    kind: str = "number"
    digits: int = 6


def number(value, digits: int = 6) -> Glued:
    """A number rounded to ``digits`` decimals (integers as they are)."""
    return Glued(value, "number", digits)


def percent(fraction: float, digits: int = 1) -> Glued:
    """A fraction shown as a percentage rounded to ``digits`` decimals (0.4567 -> 45.7)."""
    return Glued(100 * fraction, "number", digits)


def text(value) -> Glued:
    """Plain text."""
    return Glued(str(value), "text")


def md(value) -> Glued:
    """Markdown text (its math renders)."""
    return Glued(str(value), "md")


def math(latex: str) -> Glued:
    """An equation for a ``{glue:math}`` block, as LaTeX text (e.g. :func:`bnlib.symbolic.latex` of an expression)."""
    if not isinstance(latex, str):
        raise TypeError(f"math takes LaTeX text, got {type(latex).__name__}; convert with bnlib.symbolic.latex.")
    return Glued(latex, "math")


def figure(fig, phone=None) -> Glued:
    """A matplotlib figure for a ``{glue:figure}`` block, and its phone layout (``bnlib.plots.style.layouts``
    gives both), glued under the same name with ``_phone`` after it."""
    return Glued((fig, phone), "figure")


def _rounded(value, digits: int):
    return value if isinstance(value, int) else round(float(value), digits)


def glue_all(values: Mapping[str, Glued]) -> None:
    """Glue every value under its name, without displaying it (myst_nb.glue; figures are closed after)."""
    from myst_nb import glue

    for name, v in values.items():
        if not isinstance(v, Glued):
            raise TypeError(f"glue value {name!r} must be a Glued (number, percent, text, md, math, figure), "
                            f"got {type(v).__name__}.")
        if v.kind == "number":
            glue(name, _rounded(v.value, v.digits), display=False)
        elif v.kind == "text":
            glue(name, v.value, display=False)
        elif v.kind == "md":
            from IPython.display import Markdown

            glue(name, Markdown(v.value), display=False)
        elif v.kind == "math":
            from IPython.display import Math

            glue(name, Math(v.value), display=False)
        elif v.kind == "figure":
            import matplotlib.pyplot as plt

            for suffix, fig in zip(("", "_phone"), v.value, strict=True):
                if fig is not None:
                    glue(name + suffix, fig, display=False)
                    plt.close(fig)
        else:
            raise ValueError(f"glue value {name!r} has unknown kind {v.kind!r}.")


def power_bound(err: float, floor: float | None = None) -> str:
    """An error shown as the power of ten above it (``"1e-15"``), so that rounding noise does not change the text;
    with ``floor``, never below ``floor`` (an error at the level of float64 rounding, which differs from one CPU to
    another, then shows as that level on every machine)."""
    import math as _m

    if floor is not None:
        err = max(err, floor)
    return "0" if err == 0 else f"1e{int(_m.ceil(_m.log10(err)))}"
