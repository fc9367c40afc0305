from tqdm.std import tqdm as std_tqdm

from cemlib.progress import BATCH_ENV, in_batch, progress


def test_batch_runs_get_the_plain_iterable(monkeypatch):
    monkeypatch.setenv(BATCH_ENV, "1")
    items = [1, 2, 3]
    assert in_batch()
    assert progress(items, desc="x") is items


def test_interactive_runs_get_a_bar(monkeypatch):
    monkeypatch.delenv(BATCH_ENV, raising=False)
    bar = progress([1, 2, 3], desc="x", disable=False)
    assert isinstance(bar, std_tqdm)
    assert list(bar) == [1, 2, 3]
    assert progress([1], disable=True) == [1]
