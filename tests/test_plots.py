"""The book's figure style: text legible at the width the HTML shows a figure, one colour-blind-safe vocabulary."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

from bnlib import vocabulary as V  # noqa: E402
from bnlib.plots import derivations as PD  # noqa: E402
from bnlib.plots import style as PS  # noqa: E402

CONTENT_PX = 740  # the HTML content column at a 1280 px window (documented in bnlib.plots.style)
FONT_KEYS = ("font.size", "xtick.labelsize", "ytick.labelsize", "axes.labelsize", "axes.titlesize",
             "legend.fontsize")


@pytest.fixture
def styled():
    with matplotlib.rc_context():
        PS.use_style()
        yield
    plt.close("all")


def _points(value) -> float:
    return FontProperties(size=value).get_size_in_points()


def test_style_text_is_at_least_10_px_at_the_display_width(styled):
    # a figure W inches wide, saved at any dpi, is scaled to the 740 px column: 1 pt = 740 / (72 W) px
    assert PS.DISPLAY_WIDTH_PX == CONTENT_PX
    assert matplotlib.rcParams["figure.dpi"] * PS.MAX_FIGURE_WIDTH_IN >= 2 * CONTENT_PX  # >= 2x: crisp
    px_per_point = CONTENT_PX / (72 * PS.MAX_FIGURE_WIDTH_IN)
    for key in FONT_KEYS:
        assert _points(matplotlib.rcParams[key]) * px_per_point >= 10, key
    assert PS.MIN_POINTS * px_per_point >= 10 and PS.NOTE_POINTS >= PS.MIN_POINTS
    assert PS.displayed_px(_points(matplotlib.rcParams["xtick.labelsize"])) == pytest.approx(
        _points(matplotlib.rcParams["xtick.labelsize"]) * px_per_point)


def test_a_figure_as_saved_keeps_its_text_at_least_10_px(styled):
    fig = PD.figure_sigmoid(-1.96, 1.96)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")  # as IPython's inline backend saves it
    from PIL import Image

    width_px = Image.open(io.BytesIO(buf.getvalue())).size[0]
    assert width_px / fig.dpi <= PS.MAX_FIGURE_WIDTH_IN * 1.05
    scale = min(1.0, CONTENT_PX / width_px)
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    assert texts and min(t.get_fontsize() * fig.dpi / 72 * scale for t in texts) >= 10


def test_ramp_styles_differ_between_neighbours():
    styles = PS.ramp(10)  # the ten layers of the deepest CIFAR-10 network
    assert len({c for c, _, _ in styles}) == 10 and len({str(d) for _, d, _ in styles}) == 10
    assert len({m for _, _, m in styles}) == 10
    with pytest.raises(ValueError, match="styles"):
        PS.ramp(11)


def test_vocabulary_colours_are_okabe_ito_and_networks_differ():
    okabe_ito = {"#d55e00", "#0072b2", "#009e73", "#e69f00", "#cc79a7", "#56b4e9", "#767676"}
    assert {n.colour for n in V.NORMS.values()} <= okabe_ito
    assert V.colour("none") != V.colour("bn") and V.colour("bn") == V.colour("bnlib")
    drawn_together = ("none", "torch", "renorm", "layer", "group")  # the batch-size figure's five norms
    assert len({V.colour(k) for k in drawn_together}) == len(drawn_together)


def _jacobian_inputs(m: int = 16, eps: float = 1e-5):
    """BN's Jacobian d xhat / d x on one feature, written out (Ioffe & Szegedy's backward, not bnlib's)."""
    import numpy as np

    x = np.random.default_rng(0).normal(size=m)
    var = x.var()
    xhat = (x - x.mean()) / np.sqrt(var + eps)
    jac = (np.eye(m) - 1 / m - np.outer(xhat, xhat) / m) / np.sqrt(var + eps)
    return x, jac, var, eps


def _saved_width_px(fig) -> int:
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    return Image.open(io.BytesIO(buf.getvalue())).size[0]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_phone_layout_stacks_the_panels_and_keeps_text_legible(styled):
    wide, phone = PS.layouts(PD.figure_jacobian, *_jacobian_inputs())
    a, b = wide.axes[:2]
    assert a.get_position().y0 == pytest.approx(b.get_position().y0) and a.get_position().x1 < b.get_position().x0
    r = phone.canvas.get_renderer()
    top, bottom = (ax.get_tightbbox(r) for ax in phone.axes[:2])
    assert top.y0 >= bottom.y1 - 1, "the second panel, with its labels, sits wholly under the first"
    legend = phone.axes[1].get_legend()
    assert legend is not None and not any(_overlap(legend.get_window_extent(r), ax.get_window_extent(r))
                                          for ax in phone.axes[:2]), "the panel's legend moved out of every frame"
    width_px = _saved_width_px(phone)
    assert width_px / phone.dpi <= PS.PHONE_WIDTH_IN + 0.25  # bbox_inches="tight" pads 0.1 inch a side
    texts = [t for t in phone.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    smallest = min(t.get_fontsize() for t in texts)
    assert smallest * phone.dpi / 72 * min(1.0, PS.PHONE_DISPLAY_PX / width_px) >= PS.MIN_TEXT_PX
    assert _saved_width_px(wide) / wide.dpi > 2 * PS.PHONE_WIDTH_IN * 0.9  # the designed layout is untouched


def test_phone_layout_wraps_titles_outside_math_and_refuses_a_figure_without_panels(styled):
    wrapped = PS._split(r"(a) the loss at $w - \eta g$ over every step size", 12)
    assert "\n" in wrapped and r"$w - \eta g$" in wrapped.replace("\n", " ")
    assert all(line.count("$") % 2 == 0 for line in wrapped.splitlines())

    def plain():
        return plt.subplots(1, 2)[0]

    with pytest.raises(ValueError, match="does not draw its panels with bnlib.plots.style.panels"):
        PS.layouts(plain)
    plt.close("all")


def test_phone_layout_wraps_a_long_y_label_along_its_length(styled):
    def long_label():
        fig, ax = PS.panels(1, 2, figsize=(9, 3))
        ax[0].plot([0, 1], [0, 1])
        ax[0].set(ylabel="a y label far longer than the panel is tall, in plain words " * 2, xlabel="x", title="t")
        ax[1].set(ylabel="y", xlabel="x")
        return fig

    phone = PS.layouts(long_label)[1]
    r = phone.canvas.get_renderer()
    ax = phone.axes[0]
    label, frame = ax.yaxis.label.get_window_extent(r), ax.get_window_extent(r)
    assert "\n" in ax.get_ylabel() and label.height <= frame.height * 1.1
