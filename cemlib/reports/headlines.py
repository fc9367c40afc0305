"""Headline figures: each notebook records its key numbers in a small JSON file that the run
index (``cemlib.pipeline``) shows next to the stage."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_headlines(path: str | Path | None, figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``figures`` (label -> number or short text) to ``path`` as JSON; ``None`` skips."""
    clean = {str(k): _plain(v) for k, v in figures.items()}
    if path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(clean, ensure_ascii=False, indent=2), encoding="utf-8")
    return clean


def load_headlines(path: str | Path) -> dict[str, Any]:
    """The headline figures a notebook saved at ``path`` (empty when none)."""
    p = Path(path)
    if not p.exists():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))
