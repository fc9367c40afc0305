"""Property tests: whatever bytes, encoding or column order a file has, the loaders either
refuse it with one line naming the file, or every row ends clean or quarantined."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from cemlib.collect.loaders import read_table_file
from cemlib.errors import CemError, InputError
from tests.reliability.conftest import AS_OF, CRM

HEADER, *ROWS = CRM.strip("\n").split("\n")


def _refused_in_one_line(exc: CemError, path: Path) -> None:
    text = str(exc)
    assert str(path) in text, text
    assert "\n" not in text, text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([b"", b"contact_id,full_name\n", b"\xef\xbb\xbfcontact_id;email\n"]),
    body=st.binary(max_size=300),
)
@example(prefix=b"contact_id,full_name\n", body=b"C1,\xd0\x98\0\xd0\xb2\n")
def test_random_bytes_either_refused_with_one_line_or_every_line_loaded(prefix, body):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crm_contacts.csv"
        data = prefix + body
        path.write_bytes(data)
        try:
            loaded = read_table_file(path, "crm_contacts")
        except InputError as exc:
            _refused_in_one_line(exc, path)
            return
        frame = loaded.frame
        assert list(frame["_source_row"]) == list(range(len(frame)))
        if b"\0" in data and len(frame):  # a NUL byte is kept, never ends a value
            assert (
                frame.drop(columns="_source_row")
                .astype("string")
                .apply(lambda s: s.str.contains("\0", regex=False).fillna(False).any())
                .any()
                or b"\0" in data.split(b"\n", 1)[0]
            )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each example is slow
)
@given(
    order=st.permutations(range(len(HEADER.split(",")))),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251", "utf-16"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
    keep=st.lists(st.integers(0, len(ROWS) - 1), min_size=1, max_size=8),
    junk=st.sampled_from(["", "\0", "1970-01-01", "не дата", '"']),
)
@example(order=list(range(8))[::-1], encoding="utf-8", delimiter=";", keep=[0, 1], junk="\0")
@example(order=list(range(8)), encoding="utf-16", delimiter=",", keep=[0, 2, 3], junk="")
def test_shuffled_columns_and_encodings_nothing_lost(order, encoding, delimiter, keep, junk):
    from cemlib.collect import collect
    from cemlib.quality import QualityStage
    from cemlib.warehouse import Warehouse

    def line(text: str) -> str:
        cells = text.split(",")
        return delimiter.join(cells[i] for i in order)

    rows = [ROWS[i] for i in keep]
    cells = rows[0].split(",")
    cells[4] = junk or cells[4]  # birth_date
    rows[0] = ",".join(cells)
    text = "\n".join([line(HEADER), *map(line, rows)]) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        path = src / "crm_contacts.csv"
        path.write_bytes(text.encode(encoding))
        with Warehouse(Path(tmp) / "w.duckdb") as wh:
            try:
                collect(str(src), warehouse=wh, run_id="p", as_of=AS_OF, progress=False)
            except InputError as exc:
                _refused_in_one_line(exc, path)
                assert encoding == "utf-16" or junk == '"', exc
                return
            assert encoding != "utf-16"
            n_raw = wh.sql("SELECT count(*) AS n FROM raw.crm_contacts")["n"].iloc[0]
            assert n_raw == len(rows)
            if junk == "\0":  # kept exactly in raw, not cut to an empty value
                births = wh.sql("SELECT birth_date FROM raw.crm_contacts")["birth_date"]
                assert (births == "\0").any(), list(births)
            try:
                QualityStage(progress=False).run(wh, run_id="p", as_of=AS_OF)
            except CemError:
                return  # a critical table-level failure writes nothing: nothing mixed
            n_clean = wh.sql("SELECT count(*) AS n FROM clean.crm_contacts")["n"].iloc[0]
            n_quar = wh.sql("SELECT count(*) AS n FROM quarantine.crm_contacts")["n"].iloc[0]
            assert n_clean + n_quar == n_raw
