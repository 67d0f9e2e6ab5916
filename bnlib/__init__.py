"""bnlib: Batch Normalization, executable — the library behind the book.

Layers, bottom to top; each module imports only modules below it (tests/test_layers.py checks it):

- ``_checks`` (one-sentence argument checks), ``results`` (the results JSON schema: accessors, load/save,
  seed groups, steps-to-target), ``vocabulary`` (one set of names and colours for the normalizations);
- ``functional`` (NumPy BN: forward/backward with an explicit cache, inference, running statistics,
  folding), ``symbolic`` (SymPy derivations), ``identities`` (float64 checks of BN's exact identities);
- ``nn`` (``BatchNorm`` with the hand-derived backward, ``_NormBase``), ``norms`` (Layer/Group Norm,
  Batch Renorm, l_p), ``data`` (dataset readers);
- ``models`` (sigmoid MLP/CNN, probes, layer finders), ``evaluate`` (eval mode / batch statistics,
  probe statistics), ``analysis`` (recorders and post-training analyses), ``train`` (``RunConfig``, the
  seeded loop), ``experiments`` (registry, scales, results cache, CLI);
- ``reports`` (per chapter: the numbers and tables; ``reports.claims``: the ledger; ``reports.format``:
  formatters and glue) and ``plots`` (per chapter: the figures; ``plots.style``), which read results and
  never build or train a network; plots never import reports.
"""

__version__ = "0.1.0"
