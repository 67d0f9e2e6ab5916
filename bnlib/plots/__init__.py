"""The book's figures: :mod:`~bnlib.plots.style` (one style for every chapter) and one module per
chapter. Each figure takes what :mod:`bnlib.reports` or :mod:`bnlib.results` give and returns a matplotlib figure;
nothing here computes a number the prose states."""
