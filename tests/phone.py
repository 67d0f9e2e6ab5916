"""What every phone layout (bnlib.plots.style.layouts) must give, checked on a drawn figure."""

from __future__ import annotations

import io


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 - 1 and b.x0 < a.x1 - 1 and a.y0 < b.y1 - 1 and b.y0 < a.y1 - 1


def assert_phone_layout(fig) -> None:
    """One column of visible panels, each wholly under the one before (with its titles, labels and legend), no
    legend over any frame, every panel labelled on both axes, and the saved image narrow enough that 10 pt text
    is at least 10 px tall in the phone's column."""
    from PIL import Image

    from bnlib.plots import style as PS

    r = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_subplotspec() is not None]
    assert panels, "no visible panel"
    for upper, lower in zip(panels, panels[1:], strict=False):
        assert upper.get_tightbbox(r).y0 >= lower.get_tightbbox(r).y1 - 1, "two panels overlap"
    legends = [ax.get_legend() for ax in panels if ax.get_legend() is not None] + list(fig.legends)
    for leg in legends:
        assert not any(_overlap(leg.get_window_extent(r), ax.get_window_extent(r)) for ax in panels), \
            "a legend lies over a frame"
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in panels), "a panel without its axis labels"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    width_px = Image.open(io.BytesIO(buf.getvalue())).size[0]
    assert width_px / fig.dpi <= PS.PHONE_WIDTH_IN + 0.25, f"the phone figure is {width_px / fig.dpi:.2f} in wide"
    assert PS.MIN_POINTS * fig.dpi / 72 * min(1.0, 320 / width_px) >= PS.MIN_TEXT_PX  # 320 px: a solution box
