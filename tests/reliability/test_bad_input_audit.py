"""Every ``cem`` entry point on bad input, as a user meets it (ops18's audit): one line on
stderr naming the file (and the column), exit 2, no traceback, and nothing left behind, not
even an empty folder. Real files in ``tmp_path``, the real CLI through ``main()``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cemlib.cli import main
from tests.reliability.conftest import CRM

TX = "customer_id,ts,item_id,quantity,amount\n" + "".join(
    f"c{i % 9},2025-0{1 + i % 6}-1{i % 9} 10:00:00,sku{i % 4},1,{100 + i}\n" for i in range(60)
)
RECORDS = CRM
ROLES = "full_name: full_name\nphone: phone\nemail: email\nbirth_date: birth_date\n"
#: a folder no process may create a file in, root included (a read-only mount, ``/proc``)
UNWRITABLE = Path("/proc")


def _cem(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_line(code: int, err: str, *names) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def _write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def _drop(text: str, column: str) -> str:
    rows = [line.split(",") for line in text.splitlines()]
    i = rows[0].index(column)
    return "\n".join(",".join(r[:i] + r[i + 1 :]) for r in rows) + "\n"


def _all_rows(text: str, column: str, value: str) -> str:
    rows = [line.split(",") for line in text.splitlines()]
    i = rows[0].index(column)
    body = [",".join(r[:i] + [value] + r[i + 1 :]) for r in rows[1:]]
    return "\n".join([",".join(rows[0]), *body]) + "\n"


#: class of bad input -> (file content, the names the error line must hold besides the file)
INPUTS = {
    "empty file": (b"", ["empty file"]),
    "header only": (TX.splitlines()[0] + "\n", ["no data rows"]),
    "UTF-16": (TX.encode("utf-16"), ["UTF-16"]),
    "missing column": (_drop(TX, "ts"), ["'ts'", "missing"]),
    "wrong type": (_all_rows(TX, "amount", "abc"), ["'amount'", "not a number"]),
    "unparseable date": (_all_rows(TX, "ts", "31.31.2025"), ["'ts'", "date"]),
}


def _command(command: str, path: Path, out: Path, tmp: Path) -> list:
    if command == "identity":
        roles = _write(tmp / "roles.yaml", ROLES)
        return ["identity", path, "--id-column", "contact_id", "--roles", roles, "--out", out]
    return [command, path, "--as-of", "2025-06-30", "--out", out]


@pytest.mark.parametrize("kind", ["missing", "a folder"])
@pytest.mark.parametrize("command", ["churn", "offers", "identity"])
def test_an_input_file_missing_or_a_folder(tmp_path, capsys, command, kind):
    path = tmp_path / "in.csv"
    if kind == "a folder":
        path.mkdir()
    out = tmp_path / "new" / "o.csv"
    line = _one_line(*_cem(capsys, *_command(command, path, out, tmp_path)), path)
    assert ("not found" if kind == "missing" else "folder") in line
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("command", ["churn", "offers"])
def test_a_bad_transactions_file(tmp_path, capsys, command, kind):
    content, names = INPUTS[kind]
    path = _write(tmp_path / "tx.csv", content)
    out = tmp_path / "new" / "o.csv"  # a folder to create: left uncreated by the refusal
    _one_line(*_cem(capsys, *_command(command, path, out, tmp_path)), path, *names)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "kind, content, names",
    [
        ("empty file", b"", ["empty file"]),
        ("header only", RECORDS.splitlines()[0] + "\n", ["no data rows"]),
        ("UTF-16", RECORDS.encode("utf-16"), ["UTF-16"]),
        ("missing id column", _drop(RECORDS, "contact_id"), ["'contact_id'"]),
    ],
)
def test_a_bad_records_file(tmp_path, capsys, kind, content, names):
    path = _write(tmp_path / "records.csv", content)
    out = tmp_path / "new" / "clusters.csv"
    _one_line(*_cem(capsys, *_command("identity", path, out, tmp_path)), path, *names)
    assert not (tmp_path / "new").exists()


def _output_cases(tmp: Path) -> dict[str, list]:
    """command -> argv with ``{OUT}`` where the output path goes (a file, or a folder)."""
    tx = _write(tmp / "tx.csv", TX)
    src = _write(tmp / "src" / "crm_contacts.csv", CRM).parent
    roles = _write(tmp / "roles.yaml", ROLES)
    records = _write(tmp / "records.csv", RECORDS)
    return {
        "churn": ["churn", tx, "--as-of", "2025-06-30", "--out", "{OUT}"],
        "offers": ["offers", tx, "--as-of", "2025-06-30", "--out", "{OUT}"],
        "identity": ["identity", records, "--id-column", "contact_id", "--roles", roles,
                     "--rules-only", "--out", "{OUT}"],
        "validate": ["validate", src, "--out", "{OUT}"],
        "collect": ["collect", "--source", src, "--quiet", "--warehouse", "{OUT}"],
        "generate": ["generate", "--people", "20", "--out", "{OUT}"],
        "run": ["run", "--stages", "00", "-p", "n_people=20", "--no-progress",
                "-p", f"warehouse={tmp / 'cem.duckdb'}", "--out", "{OUT}"],
    }  # fmt: skip


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: a folder nobody writes")
@pytest.mark.parametrize("command", ["churn", "offers", "identity", "validate", "collect",
                                     "generate", "run"])  # fmt: skip
def test_an_output_in_a_folder_that_cannot_be_written_is_refused_before_the_work(
    tmp_path, capsys, command
):
    """As root, ``os.access`` says yes to ``/proc`` (and to a read-only mount): the command
    used to work for minutes and then stop on the write, or write nothing and exit 0."""
    out = UNWRITABLE / "cem-out" / ("o.csv" if command in ("churn", "offers", "identity") else "x")
    argv = [out if a == "{OUT}" else a for a in _output_cases(tmp_path)[command]]
    line = _one_line(*_cem(capsys, *argv), out)
    assert "cannot" in line
    assert not (tmp_path / "cem.duckdb").exists()


@pytest.mark.parametrize("command", ["churn", "offers", "identity", "validate", "generate"])
def test_an_output_under_a_file_is_refused(tmp_path, capsys, command):
    blocker = _write(tmp_path / "taken.txt", "x")
    out = blocker / "o.csv"
    argv = [out if a == "{OUT}" else a for a in _output_cases(tmp_path)[command]]
    _one_line(*_cem(capsys, *argv), blocker, "is a file")
    assert blocker.read_text() == "x"


def test_missing_output_folders_are_created_when_the_output_is_written(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "clusters.csv"
    argv = [out if a == "{OUT}" else a for a in _output_cases(tmp_path)["identity"]]
    assert _cem(capsys, *argv)[0] == 0
    assert out.read_text(encoding="utf-8").startswith("record_id,profile_id")


def test_identity_resolve_on_a_file_that_is_no_warehouse(tmp_path, capsys):
    not_duckdb = _write(tmp_path / "tx.csv", TX)
    line = _one_line(*_cem(capsys, "identity", "resolve", "P1", "--warehouse", not_duckdb),
                     not_duckdb)  # fmt: skip
    assert "DuckDB" in line
    folder = tmp_path / "wh"
    folder.mkdir()
    _one_line(*_cem(capsys, "identity", "resolve", "P1", "--warehouse", folder), folder)


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: bad run configuration -> (config file text or None, -p overrides, names the line must hold)
RUN_CONFIGS = {
    "unknown key": ("run_id: r\nfoo_bar: 1\n", [], ["{config}", "unknown setting 'foo_bar'"]),
    "wrong type": ("n_people: many\n", [], ["{config}", "'n_people'"]),
    "not YAML": ("run_id: [unclosed\n", [], ["{config}", "not valid YAML"]),
    "a list": ("- a\n- b\n", [], ["{config}", "expected a mapping"]),
    "-p without =": (None, ["n_people"], ["-p", "name=value"]),
    "-p wrong type": (None, ["seed=forty"], ["'seed'", "integer"]),
    "-p negative size": (None, ["n_people=-5"], ["'n_people'", "at least 1"]),
    "-p unknown stage": (None, ["stages=07"], ["unknown stage '07'"]),
    "-p impossible date": (None, ["as_of=2025-02-30"], ["as_of"]),
    "warehouse a CSV": (None, ["warehouse={tx}"], ["{tx}", "not a DuckDB file"]),
    "warehouse a folder": (None, ["warehouse={tmp}"], ["{tmp}", "is a folder"]),
    "reports folder a file": (None, ["out={tx}"], ["{tx}", "out is a file"]),
}


@pytest.mark.parametrize("kind", list(RUN_CONFIGS))
def test_a_bad_run_configuration_is_one_line_and_nothing_runs(tmp_path, capsys, kind):
    text, params, names = RUN_CONFIGS[kind]
    tx = _write(tmp_path / "tx.csv", TX)
    subs = {"tx": tx, "tmp": tmp_path, "config": tmp_path / "run.yaml"}
    argv = ["run", "--notebooks", NOTEBOOKS, "-p", "run_id=r"]
    if not any(p.startswith("out=") for p in params):
        argv += ["--out", tmp_path / "reports"]
    if text is not None:
        argv += ["--config", _write(tmp_path / "run.yaml", text)]
    for p in params:
        argv += ["-p", p.format(**subs)]
    _one_line(*_cem(capsys, *argv, "--check"), *[n.format(**subs) for n in names])
    assert tx.read_text(encoding="utf-8") == TX
    assert not (tmp_path / "reports").exists()


def test_validate_on_a_header_only_export_names_the_file_in_one_line(tmp_path, capsys):
    src = _write(tmp_path / "src" / "crm_contacts.csv", CRM.splitlines()[0] + "\n").parent
    line = _one_line(*_cem(capsys, "validate", src, "--out", tmp_path / "v"),
                     src / "crm_contacts.csv", "the table is empty")  # fmt: skip
    assert "nothing was written" in line
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    "argv, named",
    [(["--people", "-5"], "--people: n_people must be at least 10, got -5"),
     (["--start", "x"], "--start: not a date: 'x'"),
     (["--horizon-days", "-3"], "--horizon-days:")],
)  # fmt: skip
def test_generate_names_the_option_not_the_generator_parameter(tmp_path, capsys, argv, named):
    out = tmp_path / "g"
    _one_line(*_cem(capsys, "generate", "--people", "10", *argv, "--out", out), named)
    assert not out.exists()


BROKEN_YAML = "full_name: [full_name\n phone: phone\n"


def test_a_role_map_that_is_no_yaml_is_one_line_with_its_line_and_column(tmp_path, capsys):
    records = _write(tmp_path / "records.csv", RECORDS)
    roles = _write(tmp_path / "roles.yaml", BROKEN_YAML)
    out = tmp_path / "out" / "clusters.csv"
    argv = ["identity", records, "--id-column", "contact_id", "--roles", roles, "--out", out]
    _one_line(*_cem(capsys, *argv), roles, "not a valid YAML role map (line 2, column")
    assert not out.parent.exists()


def test_a_mapping_file_that_is_no_yaml_is_one_line_with_its_line_and_column(tmp_path, capsys):
    src = _write(tmp_path / "src" / "crm_contacts.csv", CRM).parent
    mapping = _write(tmp_path / "mapping.yaml", BROKEN_YAML)
    argv = ["validate", src, "--mapping", mapping, "--out", tmp_path / "v"]
    _one_line(*_cem(capsys, *argv), mapping, "not a readable YAML mapping: line 2, column")
    assert not (tmp_path / "v").exists()


# -- ops19: what ops18's audit left ------------------------------------------------------------
def _staging_rows(warehouse: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'"
        ).fetchall()]  # fmt: skip
        return {t: con.execute(f'SELECT count(*) FROM staging."{t}"').fetchone()[0] for t in names}


def test_collect_refuses_a_header_only_table_that_may_not_be_empty(tmp_path, capsys):
    """As ``cem churn``, ``offers`` and ``identity`` refuse a header-only file: one line naming
    the file, exit 2, no warehouse, no folder; the table's suite says the table may not be
    empty (01_quality would stop on it minutes later)."""
    src = _write(tmp_path / "src" / "crm_contacts.csv", CRM.splitlines()[0] + "\n").parent
    warehouse = tmp_path / "wh" / "cem.duckdb"
    line = _one_line(*_cem(capsys, "collect", "--source", src, "--quiet", "--warehouse", warehouse))
    assert line == (
        f"cem collect: error: {src / 'crm_contacts.csv'}: no data rows (only a header): table "
        "crm_contacts may not be empty (its suite's critical check 'the table is empty' would "
        "stop 01_quality); nothing was written"
    )
    assert not (tmp_path / "wh").exists()


def test_collect_loads_a_header_only_table_its_suite_lets_be_empty_and_says_so(tmp_path, capsys):
    """No web events this month is a legitimate export (``web_events.yaml``: the empty
    table is a warning): loaded as 0 rows beside the CRM's 4, and noted."""
    src = _write(tmp_path / "src" / "crm_contacts.csv", CRM).parent
    _write(src / "web_events.csv", "event_id,ts,event_type,email\n")
    warehouse = tmp_path / "wh" / "cem.duckdb"
    code = main(["collect", "--source", str(src), "--quiet", "--warehouse", str(warehouse)])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: web_events: header only, loaded as 0 rows" in out
    assert _staging_rows(warehouse) == {"crm_contacts": 4, "web_events": 0}


def test_identity_counts_the_values_it_could_not_read(tmp_path, capsys):
    """A birth date or e-mail that cannot be read is kept as missing (the record stays, and C1
    still joins C2 by its phone), and the summary says how many of which column."""
    rows = CRM.splitlines()
    rows[1] = rows[1].replace("1990-03-05", "31.02.1990")  # no such day
    rows[3] = rows[3].replace("1985-07-01", "вчера")
    rows[4] = rows[4].replace("oleg.s@gmail.com", "oleg.s(at)gmail")
    records = _write(tmp_path / "records.csv", "\n".join(rows) + "\n")
    roles = _write(tmp_path / "roles.yaml", ROLES)
    out = tmp_path / "clusters.csv"
    code = main(["identity", str(records), "--id-column", "contact_id", "--roles", str(roles),
                 "--rules-only", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert printed[0] == "4 records -> 3 profiles, 1 of 2+ records"
    assert (
        "not read, kept as missing (the record stays and matches on its other values): 2 of 4 "
        "values of 'birth_date' (not a date); 1 of 4 values of 'email' (not an e-mail)"
    ) in printed
    clusters = dict(line.split(",") for line in out.read_text(encoding="utf-8").splitlines()[1:])
    assert len(clusters) == 4 and clusters["C1"] == clusters["C2"] != clusters["C3"]


def test_identity_says_nothing_of_unread_values_when_every_value_reads(tmp_path, capsys):
    roles = _write(tmp_path / "roles.yaml", ROLES)
    records = _write(tmp_path / "records.csv", RECORDS)
    argv = ["identity", records, "--id-column", "contact_id", "--roles", roles, "--rules-only",
            "--out", tmp_path / "o.csv"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("4 records -> 3 profiles") and "not read" not in printed


@pytest.mark.slow
def test_a_stage_stopped_by_bad_input_inside_cem_run_says_so_on_stderr(tmp_path):
    """A cron job that keeps only stderr sees the bad input, as with every other command; the
    stage's status line on stdout still names it; exit 2, nothing published."""
    from tests.reliability.conftest import cem

    src = _write(tmp_path / "src" / "crm_contacts.csv", CRM.encode("utf-16")).parent
    warehouse = tmp_path / "cem.duckdb"
    proc = cem("run", "--notebooks", NOTEBOOKS, "--stages", "00", "--no-progress",
               "-p", "run_id=r1", "-p", f"source={src}", "-p", f"warehouse={warehouse}",
               "--out", tmp_path / "reports", cwd=tmp_path)  # fmt: skip
    bad = f"{src / 'crm_contacts.csv'}: UTF-16 is not supported, save the file as UTF-8"
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.splitlines() == [f"cem run: error: 00_collect: {bad}"]
    status = next(ln for ln in proc.stdout.splitlines() if ln.startswith("[1/1] 00_collect"))
    assert " failed " in status and status.endswith(f"InputError: {bad}")
    assert not warehouse.exists()


@pytest.mark.slow
def test_cem_run_refuses_a_header_only_crm_in_stage_00_not_01(tmp_path):
    """Stage 00 of ``cem run`` refuses a header-only table that may not be empty as ``cem
    collect`` does (exit 2, one line naming the file, no warehouse), instead of loading 0 rows
    for 01_quality to stop on with exit 1."""
    from tests.reliability.conftest import cem

    header = CRM.splitlines()[0] + "\n"
    src = _write(tmp_path / "src" / "crm_contacts.csv", header).parent
    warehouse = tmp_path / "cem.duckdb"
    proc = cem("run", "--notebooks", NOTEBOOKS, "--stages", "00,01", "--no-progress",
               "-p", "run_id=r1", "-p", f"source={src}", "-p", f"warehouse={warehouse}",
               "--out", tmp_path / "reports", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"cem run: error: 00_collect: {src / 'crm_contacts.csv'}: no data rows (only a header): "
        "table crm_contacts may not be empty"
    ), lines
    assert not warehouse.exists()


@pytest.mark.parametrize(
    "argv, line",
    [(["generate", "--people", "20", "--out", "{file}"], "cem generate: error: {file}: --out is a file, expected a folder"),
     (["validate", "{src}", "--out", "{file}"], "cem validate: error: {file}: --out is a file, expected a folder"),
     (["run", "--notebooks", NOTEBOOKS, "-p", "out={file}", "--check"], "cem run: error: {file}: out is a file, expected the reports folder"),
     (["collect", "--source", "{src}", "--warehouse", "{file}"], "cem collect: error: {file}: --warehouse: not a DuckDB file (a warehouse starts with DuckDB's header); give the warehouse's path, or a new file name"),
     (["run", "--notebooks", NOTEBOOKS, "-p", "warehouse={file}", "--check"], "cem run: error: {file}: warehouse: not a DuckDB file (a warehouse starts with DuckDB's header); give the warehouse's path, or a new file name")],
    ids=["generate --out", "validate --out", "run out", "collect --warehouse", "run warehouse"],
)  # fmt: skip
def test_one_check_of_an_output_folder_and_a_warehouse_for_every_command(
    tmp_path, capsys, argv, line
):
    """``cem generate`` / ``validate`` and ``cem run`` check a folder to write and a warehouse
    with the same function (:func:`cemlib.io.output_folder`, :func:`cemlib.io.warehouse_file`):
    the same line but for the option's name."""
    file = _write(tmp_path / "taken.csv", TX)
    src = _write(tmp_path / "src" / "crm_contacts.csv", CRM).parent
    subs = {"file": file, "src": src}
    argv = [str(a).format(**subs) for a in argv]
    assert _one_line(*_cem(capsys, *argv)) == line.format(**subs)
    assert file.read_text(encoding="utf-8") == TX


def test_collect_reads_the_tables_that_may_not_be_empty_as_01_quality_does():
    """``cem collect`` reads the suite files as YAML (no Great Expectations import); the
    tables it refuses empty are those whose loaded suite has the critical row-count check."""
    from cemlib.collect.empty import ROW_COUNT, empty_table_refusals
    from cemlib.quality.suites import load_suites

    critical = {
        table: check.reason
        for table, suite in load_suites().items()
        for check in suite.checks
        if check.type == ROW_COUNT and check.severity == "critical"
        and (check.kwargs.get("min_value") or 0) >= 1
    }  # fmt: skip
    assert empty_table_refusals() == critical
    assert sorted(critical) == ["crm_contacts", "online_orders", "order_lines", "pos_receipts",
                                "products", "receipt_lines"]  # fmt: skip
