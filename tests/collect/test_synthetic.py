"""The stage on the synthetic world: row conservation, raw as text, and the values it cannot
parse are exactly the defects the generator injected."""

import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.collect.report import headlines, summary_markdown
from cemlib.synth import generate
from cemlib.warehouse import Warehouse

PEOPLE, SEED = 1500, 11


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    wh = tmp_path_factory.mktemp("syn") / "cem.duckdb"
    result = collect(
        "synthetic", warehouse=wh, run_id="syn", n_people=PEOPLE, seed=SEED, progress=False
    )
    world = generate(n_people=PEOPLE, seed=SEED, as_of="2025-06-30")
    return result, wh, world


def test_every_source_row_lands_in_raw_and_staging(synthetic):
    result, wh, world = synthetic
    with Warehouse(wh, read_only=True) as w:
        for name, frame in world.sources.items():
            raw = w.read_table("raw", name)
            assert len(raw) == len(w.read_table("staging", name)) == len(frame)
            assert raw["_source_row"].tolist() == list(range(len(frame)))
            types = w.sql(
                "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema='raw' "
                f"AND table_name='{name}' AND column_name NOT LIKE '\\_%' ESCAPE '\\'"
            )
            assert types["data_type"].tolist() == ["VARCHAR"]
        assert len(w.read_table("truth", "record_person")) == len(world.truth["record_person"])
    assert result.truth["people"] == PEOPLE


def test_unparsed_values_are_the_injected_defects(synthetic):
    result, _, world = synthetic
    defects = world.truth["defects"]
    kinds = {"unparseable_date", "malformed_phone", "malformed_email"}
    injected = defects[defects["defect"].isin(kinds)].groupby(["table", "column"]).size()
    norm = result.normalization
    norm = norm[norm["kind"].isin(["timestamp", "date", "phone", "email"])]
    found = norm.set_index(["table", "column"])["n_unparsed"]
    found = found[found > 0]
    assert found.sort_index().to_dict() == injected.sort_index().to_dict()


def test_figures_and_summary(synthetic):
    result, _, world = synthetic
    figures = headlines(result)
    assert figures["rows loaded"] == sum(len(f) for f in world.sources.values())
    receipts = world.sources["pos_receipts"]
    text = summary_markdown(result)
    assert f"pos_receipts {len(receipts):,}" in text
    # the activity range comes from the event tables, the CRM's registrations are their own
    tables = result.tables.set_index("table")
    events = tables[tables["date_column"].notna() & (tables["date_column"] != "registered_at")]
    assert f"{events['p01_date'].min():%d.%m.%Y} to {events['p99_date'].max():%d.%m.%Y}" in text
    crm = tables.loc["crm_contacts"]
    assert f"Customers of crm_contacts registered from {crm.p01_date:%d.%m.%Y}" in text
    cov = result.coverage.set_index(["table", "identifier"])
    has_card = receipts["loyalty_card"].notna() & receipts["loyalty_card"].str.strip().ne("")
    assert cov.loc[("pos_receipts", "loyalty_card"), "n_present"] == has_card.sum()
    dated = pd.to_datetime(
        world.sources["online_orders"]["ordered_at"], errors="coerce", format="mixed"
    )
    assert result.tables.set_index("table").loc["online_orders", "n_after_as_of"] == int(
        (dated > pd.Timestamp("2025-06-30 23:59:59")).sum()
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_synthetic_path_equals_collecting_the_written_files(tmp_path, fmt):
    """The in-memory path writes the same raw text and staging values as collecting the files
    `cem generate` writes from the same world."""
    world = generate(n_people=300, seed=5, as_of="2025-06-30")
    world.write(tmp_path / "export", format=fmt)
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    collect("synthetic", warehouse=a, world=world, progress=False)
    collect(tmp_path / "export", warehouse=b, progress=False)
    with Warehouse(a, read_only=True) as wa, Warehouse(b, read_only=True) as wb:
        assert wa.tables("raw") == wb.tables("raw")
        for schema in ("raw", "staging"):
            for name in wa.tables(schema):
                pd.testing.assert_frame_equal(
                    wa.read_table(schema, name), wb.read_table(schema, name), check_dtype=False
                )


def test_full_names_split_in_the_right_order_with_gender(synthetic):
    """Against the world's truth: the part put in last_name is the person's surname (typos
    aside), and the gender hint is right."""
    from difflib import SequenceMatcher

    from cemlib.normalize import split_full_name, translit_key

    _, _, world = synthetic
    crm = world.sources["crm_contacts"].dropna(subset=["full_name"]).set_index("contact_id")
    rp = world.truth["record_person"]
    rp = rp[rp["source_table"] == "crm_contacts"].set_index("record_id")["person_id"]
    truth = world.truth["people"].set_index("person_id").loc[rp.loc[crm.index]]
    parts = split_full_name(crm["full_name"])
    keys = [translit_key(pd.Series(list(s), dtype="string").fillna("")) for s in (
        parts["last_name"], parts["first_name"], truth["last_name"], truth["first_name"])]  # fmt: skip

    def sim(a, b):
        return SequenceMatcher(None, a, b).ratio()

    right = [
        sim(a, c) + sim(b, d) > sim(a, d) + sim(b, c)
        for a, b, c, d in zip(*(k.tolist() for k in keys), strict=True)
    ]
    assert len(right) > 500
    assert sum(right) / len(right) >= 0.99
    exact = (keys[0] == keys[2]) & (keys[1] == keys[3])
    assert exact.mean() >= 0.9  # the rest are typos the generator put in
    hint = parts["gender_hint"].to_numpy()
    true_gender = truth["gender"].to_numpy()
    assert (hint == true_gender).mean() >= 0.98


def test_normalized_identifiers_collapse_spellings_without_merging_people(synthetic):
    """Per person, E.164 phones and email keys have far fewer distinct values than the raw
    spellings, and no two people's own mailboxes share a key."""
    from cemlib.normalize import email_key, normalize_phone

    _, _, world = synthetic
    rp = world.truth["record_person"]
    frames = []
    for table, id_col in (("crm_contacts", "contact_id"), ("online_orders", "order_id")):
        df = world.sources[table][[id_col, "email", "phone"]].rename(columns={id_col: "record_id"})
        frames.append(df.assign(source_table=table))
    recs = pd.concat(frames).merge(rp, on=["source_table", "record_id"])
    recs["email_key"] = email_key(recs["email"])
    recs["phone_e164"] = normalize_phone(recs["phone"])

    def per_person(col):
        return recs.dropna(subset=[col]).groupby("person_id")[col].nunique().mean()

    assert per_person("email_key") < 0.8 * per_person("email")
    assert per_person("phone_e164") < 0.6 * per_person("phone")
    # records may carry a relative's address (the world's family_email noise), so a key shared
    # by two people of one household is expected; what the key must not do is join two
    # people's own different mailboxes
    people = world.truth["people"].set_index("person_id")
    own = pd.concat([people["email"], people["email2"]]).dropna()
    assert own.nunique() == len(own)
    assert email_key(own).nunique() == len(own)  # ya.ru / yandex.ru spellings of one mailbox
    # new mailboxes of duplicate accounts included: no key reaches across households
    recs["household"] = recs["person_id"].map(people["household_id"])
    households = recs.dropna(subset=["email_key"]).groupby("email_key")["household"].nunique()
    assert len(households) > 1000 and households.max() == 1


@pytest.mark.parametrize("fmt", [None, "csv", "parquet"])
def test_chunked_load_equals_whole_table_load(tmp_path, fmt):
    """Staging a table in chunks of rows gives the same tables, figures and table log as
    staging it whole (in memory, from CSV and from Parquet files); a released world is emptied."""
    world = generate(n_people=300, seed=5, as_of="2025-06-30")
    if fmt:
        world.write(tmp_path / "export", format=fmt)
        source, kwargs = tmp_path / "export", {}
    else:
        source, kwargs = "synthetic", {"world": world}
    whole = collect(source, warehouse=tmp_path / "a.duckdb", progress=False, **kwargs)
    chunked = collect(
        source,
        warehouse=tmp_path / "b.duckdb",
        progress=False,
        chunk_rows=97,
        release_world=True,
        **kwargs,
    )
    assert whole.tables["n_raw"].max() > 5 * 97  # several chunks per big table
    for attr in ("tables", "coverage", "normalization"):
        pd.testing.assert_frame_equal(getattr(whole, attr), getattr(chunked, attr))
    assert whole.truth == chunked.truth
    with (
        Warehouse(tmp_path / "a.duckdb", read_only=True) as wa,
        Warehouse(tmp_path / "b.duckdb", read_only=True) as wb,
    ):
        for schema in ("raw", "staging", "truth"):
            assert wa.tables(schema) == wb.tables(schema)
            for name in wa.tables(schema):
                a = wa.read_table(schema, name)
                b = wb.read_table(schema, name)
                if schema != "truth":
                    assert b["_source_row"].tolist() == list(range(len(b)))
                pd.testing.assert_frame_equal(a, b)
        log = wb.sql(
            "SELECT schema_name, table_name, n_rows FROM meta.table_log WHERE schema_name = 'raw'"
        )
        counts = dict(zip(log["table_name"], log["n_rows"], strict=True))
        assert counts == dict(zip(chunked.tables["table"], chunked.tables["n_raw"], strict=True))
    if not fmt:
        assert world.sources == {} and world.truth == {}


def test_a_month_first_file_is_read_month_first_in_every_chunk(tmp_path):
    # orders re-saved month first: the first chunks hold only days <= 12, where nothing shows
    # the order; the whole file decides it, so every chunk reads the same
    world = generate(n_people=300, seed=5, as_of="2025-06-30")
    world.write(tmp_path / "export", format="csv")
    path = tmp_path / "export" / "online_orders.csv"
    orders = pd.read_csv(path, dtype=str)
    ts = pd.to_datetime(orders["ordered_at"], errors="coerce")
    truth = pd.Series(ts.dt.floor("min").to_numpy(), index=orders["order_id"].to_numpy())
    # days 1-12 first (as in a file sorted by date, where a chunk may span a few days only)
    early = (ts.dt.day <= 12).to_numpy()
    orders = orders.assign(ordered_at=ts.dt.strftime("%m/%d/%Y %H:%M"))
    orders = pd.concat([orders[early], orders[~early]])
    orders.to_csv(path, index=False)
    chunk = int(early.sum()) // 2
    assert chunk > 50 and len(orders) > 3 * chunk  # the first chunks alone would read day first
    for name, rows in (("whole", None), ("chunked", chunk)):
        kwargs = {"chunk_rows": rows} if rows else {}
        collect(
            tmp_path / "export", warehouse=tmp_path / f"{name}.duckdb", progress=False, **kwargs
        )
    with (
        Warehouse(tmp_path / "whole.duckdb", read_only=True) as wa,
        Warehouse(tmp_path / "chunked.duckdb", read_only=True) as wb,
    ):
        a = wa.sql("SELECT order_id, ordered_at FROM staging.online_orders ORDER BY order_id")
        b = wb.sql("SELECT order_id, ordered_at FROM staging.online_orders ORDER BY order_id")
    pd.testing.assert_frame_equal(a, b)
    got = a.set_index("order_id")["ordered_at"]
    readable = truth.reindex(got.index).notna()
    assert readable.mean() > 0.95
    assert (got[readable] == truth.reindex(got.index)[readable]).all()
