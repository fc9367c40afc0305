"""An offline, ephemeral Great Expectations context.

Usage analytics are switched off before Great Expectations is imported (``GX_ANALYTICS_ENABLED``)
and again in the context's own config, so a run never tries to reach the network; nothing is
written to disk (no ``gx/`` project folder).
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

__all__ = ["gx", "offline_context"]


def offline_context() -> gx.data_context.EphemeralDataContext:
    """A fresh in-memory context with analytics and progress bars off."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.config.analytics_enabled = False
    ctx.config.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx
