"""The report plotting helpers: style applied, figures displayed as PNG and closed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from cemlib.reports import plots  # noqa: E402


def test_use_style_sets_rcparams():
    plots.use_style()
    assert matplotlib.rcParams["axes.spines.top"] is False
    assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0] == plots.PALETTE[0]


def test_show_displays_png_and_closes(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(["a", "b"], [3, 5])
    ax.set_title("Orders per channel")
    ax.set_xlabel("channel")
    ax.set_ylabel("orders")
    plots.show(fig)
    assert len(shown) == 1
    png = shown[0].data
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") > 200  # width in pixels
    assert shown[0].alt == "Orders per channel"
    assert not plt.fignum_exists(fig.number)


def test_show_refuses_unlabelled_plot():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    ax.set_xlabel("day")
    with pytest.raises(ValueError, match="axes 0: no title; axes 0: no y label"):
        plots.show(fig)
    assert not plt.fignum_exists(fig.number)
