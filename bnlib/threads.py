"""One intra-op thread for a computation, the caller's setting restored after: how every run trains (for the
book's small networks one thread is faster than two, and a run's numbers then do not depend on the machine)."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_thread():
    """``with one_thread(): ...`` runs the block with ``torch.set_num_threads(1)``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
