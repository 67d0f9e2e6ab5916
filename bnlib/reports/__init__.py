"""The numbers and tables the chapters show, computed from experiment results: one module per chapter
(:mod:`~bnlib.reports.mnist`, :mod:`~bnlib.reports.cifar`, :mod:`~bnlib.reports.train_test`,
:mod:`~bnlib.reports.why`), the claims ledger (:mod:`~bnlib.reports.claims`) and how numbers are shown
(:mod:`~bnlib.reports.format`). Nothing here trains a network or imports one.
"""
