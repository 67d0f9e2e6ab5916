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
