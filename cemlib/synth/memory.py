"""Keep the resident memory of a big generation low: hand freed memory back between steps.

The helpers live in :mod:`cemlib.budget` (the identity stage uses them too); re-exported here
for the generator's modules.
"""

from __future__ import annotations

from cemlib.budget import peak_gib, release, rss_gib

__all__ = ["peak_gib", "release", "rss_gib"]
