"""Trial 12 F6: a service ticket's customer name (``ФИО клиента`` mapped to ``full_name``) is read
by stage 02, so a ticket carrying a family's shared phone lands on the family member it names,
not on the other one (the real collect and identity stages on files)."""

from __future__ import annotations

from cemlib.collect import collect
from cemlib.identity.sources import SOURCE_ROLES
from cemlib.identity.stage import run_stage
from cemlib.warehouse import Warehouse

FAMILY = "+7 (977) 857-05-04"
CRM = (
    "Код;ФИО;Телефон;Эл. почта;Дата рождения\n"
    "K1;Федотова Агата Ивановна;+79778570504;agata.f@mail.ru;12.03.1984\n"
    "K2;Федотов Борис Петрович;8 977 857 05 04;boris.f@yandex.ru;01.10.1981\n"
    "K3;Зуева Ольга;+7 916 000-11-22;olga.z@mail.ru;05.05.1990\n"
)
TICKETS = (
    "Номер заявки;Дата обращения;ФИО клиента;Телефон\n"
    f"S1;05.11.2024;Федотова Агата;{FAMILY}\n"
    f"S2;19.02.2025;Федотов Борис;{FAMILY}\n"
    f"S3;20.02.2025;Федотов Борис;{FAMILY}\n"
    "S4;21.03.2025;Зуева Ольга;+7 916 000-11-22\n"
)
MAPPING = """\
crm_contacts:
  Код: contact_id
  ФИО: full_name
  Телефон: phone
  Эл. почта: email
  Дата рождения: birth_date
support_tickets:
  Номер заявки: ticket_id
  Дата обращения: created_at
  Телефон: phone
"""


def test_support_tickets_have_name_roles():
    _id, roles = SOURCE_ROLES["support_tickets"]
    assert {roles[r] for r in ("full_name", "first_name", "last_name", "middle_name")} == {
        "full_name", "first_name", "last_name", "middle_name"
    }  # fmt: skip


def _profiles(tmp_path, mapping: str) -> dict[str, str | None]:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    (folder / "crm_contacts.csv").write_text(CRM, encoding="cp1251")
    (folder / "support_tickets.csv").write_text(TICKETS, encoding="cp1251")
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    wh_path = tmp_path / "w.duckdb"
    collect(folder, warehouse=wh_path, run_id="t", as_of="2025-06-30",
            mapping=tmp_path / "m.yaml", progress=False)  # fmt: skip
    with Warehouse(wh_path) as wh:
        run_stage(wh, run_id="t", as_of="2025-06-30")
        return dict(wh.con.execute("SELECT record_id, profile_id FROM identity.map").fetchall())


def test_a_ticket_lands_on_the_family_member_it_names(tmp_path):
    pid = _profiles(tmp_path, MAPPING + "  ФИО клиента: full_name\n")
    assert len({pid["K1"], pid["K2"], pid["K3"]}) == 3  # the shared phone merged nobody
    assert pid["S1"] == pid["K1"]  # Агата's ticket on Агата
    assert pid["S2"] == pid["S3"] == pid["K2"]  # Борис's two tickets on Борис
    assert pid["S4"] == pid["K3"]


def test_without_the_name_the_family_phone_tickets_stay_unattached(tmp_path):
    """The same files without ``ФИО клиента`` mapped (an extra column): the household guard
    cannot tell whose the family's tickets are, so none of the three is attached."""
    pid = _profiles(tmp_path, MAPPING)
    assert len({pid["K1"], pid["K2"], pid["K3"]}) == 3
    assert [pid[t] for t in ("S1", "S2", "S3")] == [None, None, None]
    assert pid["S4"] == pid["K3"]
