"""Batch Normalization derived and proven with SymPy: the equations the chapters display.

A mini-batch is ``x_1, ..., x_m`` (one feature), written with SymPy's ``IndexedBase`` and
``Sum`` so that the batch size ``m`` stays a symbol. Each claim is built as two SymPy
expressions and returned as an :class:`Identity`: the two sides and their *simplified
difference*, exactly ``0`` when the claim is proven. The tests assert ``identity.holds``;
the chapters display the two sides and the difference. Derivatives are always SymPy's:
``sympy.diff`` of the explicit forward expression.

The parts, each importing only SymPy and the parts above it in this list:
:mod:`~bnlib.symbolic.core` (symbols, the batch, :func:`close`, :func:`residual`, :class:`Identity`,
the LaTeX printer), :mod:`~bnlib.symbolic.forward` (Sec. 3.1), :mod:`~bnlib.symbolic.backward`
(Sec. 3: the six equations, the gradient, the Jacobian), :mod:`~bnlib.symbolic.scale` (Sec. 3.3,
convolutional BN) and :mod:`~bnlib.symbolic.lambdified` (the expressions lambdified, against
:mod:`bnlib.functional`).
"""

from bnlib.symbolic import backward, core, forward, lambdified, scale
from bnlib.symbolic.backward import *  # noqa: F403
from bnlib.symbolic.core import *  # noqa: F403
from bnlib.symbolic.core import _ATOM_SUMS, _k  # noqa: F401  (the tests read the sums' opaque symbols)
from bnlib.symbolic.forward import *  # noqa: F403
from bnlib.symbolic.lambdified import *  # noqa: F403
from bnlib.symbolic.scale import *  # noqa: F403

__all__ = [*core.__all__, *forward.__all__, *backward.__all__, *scale.__all__, *lambdified.__all__]
