"""bnlib: Batch Normalization, executable — the library behind the book.

Modules (each imports only those above it in this list): ``functional`` (NumPy BN),
``symbolic`` (SymPy derivations), ``nn`` (torch modules), ``data`` (dataset readers),
``models``, ``train``, ``experiments``, ``plots``.
"""

__version__ = "0.1.0"
