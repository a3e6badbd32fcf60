"""Test configuration: hypothesis profiles and the slow/gpu markers.

Hypothesis profiles (choose with ``--hypothesis-profile NAME``):

* ``default``: ``deadline=None``, moderate example counts; what CI runs.
* ``thorough``: 10x the examples, for a long local run.

``deadline=None`` is global (exact arithmetic makes run times vary with the drawn sizes, so a
per-example deadline would flake); hypothesis's health checks stay on, and a test whose data
generation is legitimately slow or large suppresses the one check it needs, with a comment.

Markers: ``slow`` tests run only with ``--run-slow``; ``gpu`` tests only with
``--run-gpu`` (and a CUDA device).
"""
from __future__ import annotations

import pytest
from hypothesis import settings

_COMMON = dict(deadline=None, print_blob=True)
settings.register_profile("default", max_examples=25, **_COMMON)
settings.register_profile("thorough", max_examples=250, **_COMMON)
settings.load_profile("default")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run tests marked slow")
    parser.addoption("--run-gpu", action="store_true", default=False, help="run tests marked gpu (needs CUDA)")


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    skip_gpu = pytest.mark.skip(reason="gpu: run with --run-gpu on a machine with CUDA")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not config.getoption("--run-gpu"):
            item.add_marker(skip_gpu)
