"""Progress bars that suit where the code runs.

In JupyterLab a widget bar (tqdm.auto with ipywidgets), in a terminal a text bar, and nothing
in a scheduled Papermill run (``cem run`` sets ``CEM_BATCH=1`` for its kernels), where a bar
would only end up as noise in the reviewer's HTML report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

BATCH_ENV = "CEM_BATCH"


def in_batch() -> bool:
    """True inside a kernel started by ``cem run``."""
    return os.environ.get(BATCH_ENV) == "1"


def progress(iterable: Iterable[T], *, disable: bool = False, **kwargs) -> Iterable[T]:
    """``tqdm(iterable, **kwargs)``, or the iterable itself in batch runs or when disabled."""
    if disable or in_batch():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
