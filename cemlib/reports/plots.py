"""Plots that read well in the HTML reports and always reach them.

``use_style()`` sets one quiet matplotlib look for every notebook. ``show(fig)`` displays a
figure as an embedded PNG and closes it: the plot lands in the executed notebook (and so in
the nbconvert HTML, base64-embedded) whatever matplotlib backend the kernel has, and is never
shown twice. It also refuses figures without a title or axis labels, a rule of the reports.
"""

from __future__ import annotations

import io
from typing import Any

STYLE: dict[str, Any] = {
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "font.size": 10,
    "legend.frameon": False,
    "axes.prop_cycle": None,  # filled in by use_style (needs cycler)
}
PALETTE: tuple[str, ...] = (
    "#2f6db5", "#e07b39", "#3a9a5b", "#c0392b", "#8e6bbf", "#7f7f7f", "#c9a227", "#2bb3c0"
)  # fmt: skip


def use_style() -> None:
    """Apply the cemlib plotting style to matplotlib (idempotent)."""
    import matplotlib as mpl
    from cycler import cycler

    params = dict(STYLE)
    params["axes.prop_cycle"] = cycler(color=list(PALETTE))
    mpl.rcParams.update(params)


def _missing_labels(fig) -> list[str]:
    problems = []
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    for i, ax in enumerate(fig.get_axes()):
        if not ax.get_visible() or not ax.has_data() and not ax.images and not ax.collections:
            continue
        if not (title or ax.get_title() or ax.get_title("left") or ax.get_title("right")):
            problems.append(f"axes {i}: no title")
        if ax.name != "polar" and ax.axison:
            if not ax.get_xlabel():
                problems.append(f"axes {i}: no x label")
            if not ax.get_ylabel():
                problems.append(f"axes {i}: no y label")
    return problems


def figure_png(fig, *, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def show(fig=None, *, alt: str | None = None, check_labels: bool = True) -> None:
    """Display ``fig`` (default: the current figure) as an embedded PNG, then close it.

    Raises ValueError naming what is missing when an axes with data has no title or an
    unlabelled axis (``check_labels=False`` for figures where that is deliberate).
    """
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    fig = fig if fig is not None else plt.gcf()
    if check_labels:
        problems = _missing_labels(fig)
        if problems:
            plt.close(fig)
            raise ValueError("plot needs a title and labelled axes: " + "; ".join(problems))
    if alt is None:
        titles = [ax.get_title() or ax.get_title("left") for ax in fig.get_axes()]
        alt = next((t for t in titles if t), "plot")
    png = figure_png(fig)
    plt.close(fig)
    display(Image(data=png, format="png", alt=alt))
