"""lifelines' warnings of the survival fits, held back from a report's reader.

A warning names a file of the server (``…/site-packages/lifelines/fitters/__init__.py:2101``)
and speaks to a statistician; the 03 report showed eleven of them at the top of the page
(trial 10 M3). :func:`held_back` counts them instead and :meth:`FitWarnings.sentence` says in
one plain sentence, with no path, how many fits warned and what it means. Warnings of any other
library pass on unchanged.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class FitWarnings:
    """The lifelines warnings held back: their count by kind (``StatisticalWarning``...)."""

    kinds: Counter = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return int(sum(self.kinds.values()))

    def sentence(self) -> str:
        """One plain sentence for the reader ('' when no fit warned)."""
        n = self.count
        if not n:
            return ""
        what = []
        if self.kinds.get("StatisticalWarning"):
            what.append("could not measure the uncertainty of some effects")
        if self.kinds.get("ConvergenceWarning"):
            what.append("stopped before settling")
        if set(self.kinds) - {"StatisticalWarning", "ConvergenceWarning"}:
            what.append("met a numerical problem")
        return (
            f"The survival model fits raised {n} warning{'s' if n != 1 else ''} (some fits "
            f"{' or '.join(what)}): the scores are computed all the same, but read the "
            "confidence intervals and p-values of the effects tables with care."
        )


def _from_lifelines(w: warnings.WarningMessage) -> bool:
    return (w.category.__module__ or "").startswith("lifelines") or "lifelines" in str(
        w.filename
    ).replace("\\", "/").split("/")


@contextlib.contextmanager
def held_back() -> Iterator[FitWarnings]:
    """Count the lifelines warnings raised in the block (every one, not once per place) and
    pass the others on."""
    held = FitWarnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield held
        finally:
            others = []
            for w in caught:
                if _from_lifelines(w):
                    held.kinds[w.category.__name__] += 1
                else:
                    others.append(w)
    for w in others:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
