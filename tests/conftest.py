"""Settings of the whole test session."""

from __future__ import annotations

import sys

# A pytest-xdist worker runs with a ``__main__`` that has neither ``__spec__`` nor ``__file__``;
# pyspark (installed by the ``spark`` extra) reads that as "running doctests" when Great
# Expectations imports it and, without grpc, calls ``sys.exit(0)`` inside the import, which
# kills the worker during collection. Naming the worker's main module avoids the mistake.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"
