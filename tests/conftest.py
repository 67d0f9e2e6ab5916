"""Shared pytest policy.

The ``data`` marker (declared in pyproject.toml) marks tests that need the real datasets.
``@pytest.mark.data`` needs MNIST and CIFAR-10 (the sets CI provides in ../shared/data);
``@pytest.mark.data("cifar10")`` names the ones a test needs (keys of ``bnlib.data.SPECS``).
Before such a test runs, each dataset is looked up with :func:`bnlib.data.locate`, exactly
where the loaders look and without downloading. When one is absent, the test

- is skipped, with bnlib's sentence saying what it wanted and where it looked as the reason
  (``-ra``, in pyproject.toml's addopts, prints it), or
- FAILS with that sentence when the environment variable ``CI`` is set (to anything but
  empty), so that CI can never pass by silently skipping the real-data checks.
"""

from __future__ import annotations

import functools
import os
import re

import pytest

DEFAULT_DATASETS = ("mnist", "cifar10")


@functools.cache
def missing_reason(dataset: str) -> str | None:
    """None when ``dataset`` is on disk where bnlib looks, else bnlib's sentence saying why not."""
    from bnlib import data

    try:
        data.locate(dataset)
    except data.DatasetNotFound as e:
        return str(e)
    return None


def _missing(item: pytest.Item) -> list[str]:
    marks = list(item.iter_markers(name="data"))
    if not marks:
        return []
    wanted = [name for m in marks for name in m.args] or list(DEFAULT_DATASETS)
    return [r for r in (missing_reason(name) for name in dict.fromkeys(wanted)) if r]


def pytest_runtest_setup(item: pytest.Item) -> None:
    reasons = _missing(item)
    if reasons and not os.environ.get("CI"):
        pytest.skip("real data absent: " + " ".join(reasons))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    reasons = _missing(item)
    if reasons and os.environ.get("CI"):
        pytest.fail("CI is set but the real data is absent: " + " ".join(reasons), pytrace=False)


@pytest.fixture
def raises_one_sentence():
    """``check(fn, exc, pattern)``: calling ``fn`` raises ``exc`` whose message matches ``pattern`` and is
    one sentence (ends with a period, no line break)."""

    def check(fn, exc, pattern):
        with pytest.raises(exc) as info:
            fn()
        msg = str(info.value)
        assert re.search(pattern, msg), msg
        assert msg.endswith(".") and "\n" not in msg, msg

    return check
