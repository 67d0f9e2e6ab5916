"""Batch Normalization derived and proven with SymPy: the equations the chapters display (see :mod:`.core`)."""

from bnlib.symbolic.core import *  # noqa: F403
from bnlib.symbolic.core import __all__, _ATOM_SUMS, _k, display, numeric_report  # noqa: F401
