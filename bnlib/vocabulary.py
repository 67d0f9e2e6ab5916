"""One vocabulary for the whole book: what each normalization is called, and its colour.

Keys are :class:`bnlib.train.RunConfig` ``norm`` values; experiments also label runs ``"none"``,
``"bn"`` and ``"noisy"`` (:func:`norm_of`). Reports and plots both read from here, so a table and
the figure beside it always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008), distinguishable with every common
#: colour-vision deficiency: vermillion, blue, bluish green, orange, reddish purple, and grey. Kept under
#: the names the prose uses ("without BN (red)", "with BN (blue)"). ``BROWN`` (l_inf, drawn beside BN)
#: is Okabe-Ito's sky blue, the palette having no brown: lighter than ``BLUE``, so the two stay apart.
RED, BLUE, GREEN, ORANGE, PURPLE, GREY, BROWN = "#d55e00", "#0072b2", "#009e73", "#e69f00", "#cc79a7", "#767676", \
    "#56b4e9"


@dataclass(frozen=True)
class Norm:
    """``name``: in tables (``"none"``, ``"BN"``); ``legend``: in figure legends (``"no BN"``);
    ``phrase``: in sentences (``"without BN"``); ``colour``: everywhere it is drawn."""

    name: str
    legend: str
    phrase: str
    colour: str


NORMS: dict[str | None, Norm] = {
    None: Norm("none", "no BN", "without BN", RED),
    "torch": Norm("BN", "BN", "with BN", BLUE),
    "bnlib": Norm("BN", "BN", "with BN", BLUE),
    "noisy": Norm("noisy BN", "noisy BN", "with noisy BN", GREEN),
    "renorm": Norm("Batch Renorm", "Batch Renorm", "with Batch Renorm", PURPLE),
    "layer": Norm("Layer Norm", "Layer Norm", "with Layer Norm", GREEN),
    "group": Norm("Group Norm", "Group Norm", "with Group Norm", ORANGE),
    "l1": Norm("l_1 norm", "l_1 norm", "with l_1 normalization", GREY),
    "linf": Norm("l_inf norm", "l_inf norm", "with l_inf normalization", BROWN),
    "skipinit": Norm("SkipInit", "SkipInit", "with SkipInit", GREEN),
}

#: Run labels the experiments use for a normalization, and the ``norm`` each stands for.
LABELS = {"none": None, "bn": "torch", "torch": "torch", "bnlib": "bnlib", "noisy": "noisy"}


def norm_of(label: str | None) -> str | None:
    """The ``norm`` a run label or ``norm`` value stands for (``"bn"`` -> ``"torch"``, ``"none"`` -> None)."""
    if label in NORMS:
        return label
    if label in LABELS:
        return LABELS[label]
    raise ValueError(f"unknown normalization {label!r}; known: {sorted(map(str, NORMS))} and labels {sorted(LABELS)}.")


def norm_name(norm: str | None) -> str:
    """The label the book's tables use for a ``RunConfig.norm`` value (unknown values as they are)."""
    return NORMS[norm].name if norm in NORMS else str(norm)


def by_name(name: str) -> Norm:
    """The vocabulary entry whose table ``name`` is ``name`` (``"BN"``, ``"Layer Norm"``, ``"none"``)."""
    for n in NORMS.values():
        if n.name == name:
            return n
    raise ValueError(f"no normalization is called {name!r}; the names are {sorted({n.name for n in NORMS.values()})}.")


def colour(key: str | None) -> str:
    """The colour of a normalization, given as a ``norm`` value, a run label or a table name."""
    try:
        return NORMS[norm_of(key)].colour
    except ValueError:
        return by_name(key).colour


def legend(key: str | None) -> str:
    """The legend text of a normalization, given as a ``norm`` value or a run label."""
    return NORMS[norm_of(key)].legend


def phrase(key: str | None) -> str:
    """How a sentence names a network with this normalization (``"with BN"``)."""
    return NORMS[norm_of(key)].phrase
