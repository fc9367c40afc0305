import pandas as pd

from cemlib.identity import HubGuard, deterministic_links, prepare_records

ROLES = {"first_name": "fn", "last_name": "ln", "birth_date": "bd", "phone": "ph", "email": "em"}


def frame(rows):
    return pd.DataFrame(rows, columns=["id", "fn", "ln", "bd", "ph", "em"])


def test_unique_phone_links_across_formats_and_scripts():
    df = frame(
        [
            (1, "Иван", "Иванов", "1980-05-01", "+7 (916) 123-45-67", None),
            (2, "Ivan", "Ivanov", None, "8 916 1234567", None),
            (3, None, None, None, "9161234567", None),
            (4, "Петр", "Петров", "1970-01-01", "+7 916 000-11-22", None),
        ]
    )
    prep = prepare_records(df, ROLES, id_column="id")
    links, guarded = deterministic_links(prep)
    assert set(map(tuple, links[["rid_l", "rid_r"]].to_numpy())) == {(0, 1), (0, 2)}
    assert (links["rule"] == "phone").all() and guarded.empty


def test_family_phone_is_shared_and_test_email_is_a_hub():
    df = frame(
        [
            (1, "Анна", "Смирнова", "1985-03-07", "+79161112233", "test@test.ru"),
            (2, "Anna", "Smirnova", "1985-07-03", "+79161112233", None),  # day/month swap
            (3, "Олег", "Смирнов", "1983-11-12", "+79161112233", "test@test.ru"),
            (4, None, None, None, "+79161112233", None),  # a receipt: whose?
            (5, "Мария", "Козлова", "1990-01-01", None, "test@test.ru"),
            (6, "Дарья", "Павлова", "1991-02-02", None, "test@test.ru"),
            (7, "Игорь", "Ким", "1992-02-02", None, "test@test.ru"),
        ]
    )
    prep = prepare_records(df, ROLES, id_column="id")
    links, guarded = deterministic_links(prep, HubGuard())
    status = dict(zip(guarded["kind"], guarded["status"], strict=True))
    assert status == {"phone": "shared", "email": "hub"}
    # only Anna's two records link; Oleg and the anonymous receipt do not
    assert set(map(tuple, links[["rid_l", "rid_r"]].to_numpy())) == {(0, 1)}
    assert links["rule"].tolist() == ["phone+name"]
    row = guarded.set_index("kind").loc["email"]
    assert row["n_records"] == 5 and row["n_names"] == 5


def test_a_birth_date_typed_with_a_slip_is_one_date_not_a_second_person():
    # one man's CRM contact twice (a day three off, then a year digit slipped) and his till
    # receipt without a date: one person, so the phone stays his and links all three
    df = frame(
        [
            (1, "Владимир", "Кузнецов", "1966-01-28", "+7 925 459-67-21", None),
            (2, "Владимир", "Кузнеуов", "1966-01-31", "8(925)459-67-21", None),
            (3, "Владимир", None, None, "79254596721", None),
            (4, "Елена", "Крылова", "2003-10-21", "+7 921 465-67-81", None),
            (5, "Елена", "Крылова", "2000-10-21", "+7 921 465-67-81", None),
            (6, "Елена", None, None, "+7 921 465-67-81", None),
        ]
    )
    prep = prepare_records(df, ROLES, id_column="id")
    links, guarded = deterministic_links(prep)
    assert guarded.empty
    assert set(map(tuple, links[["rid_l", "rid_r"]].to_numpy())) == {(0, 1), (0, 2), (3, 4), (3, 5)}


def test_two_namesakes_far_apart_in_age_keep_a_family_phone_shared():
    # a mother and her daughter Olga on one phone: two dates no slip explains, so the phone is
    # shared, each date links its own records and the dateless receipt stays apart
    df = frame(
        [
            (1, "Ольга", "Попова", "1966-03-12", "+7 916 555-00-11", None),
            (2, "Ольга", "Попова", "1966-03-12", "+7 916 555-00-11", None),
            (3, "Ольга", "Попова", "1991-07-30", "+7 916 555-00-11", None),
            (4, "Ольга", None, None, "+7 916 555-00-11", None),
        ]
    )
    prep = prepare_records(df, ROLES, id_column="id")
    links, guarded = deterministic_links(prep)
    assert guarded[["status", "n_birth_dates"]].values.tolist() == [["shared", 2]]
    assert set(map(tuple, links[["rid_l", "rid_r"]].to_numpy())) == {(0, 1)}


def test_record_count_hub_threshold():
    df = frame([(i, None, None, None, "+74950000001", None) for i in range(6)])
    prep = prepare_records(df, ROLES, id_column="id")
    links, guarded = deterministic_links(prep, HubGuard(hub_records=5))
    assert links.empty and guarded["status"].tolist() == ["hub"]
    links, _ = deterministic_links(prep, HubGuard(hub_records=6))
    assert len(links) == 5


def test_shop_number_on_identical_receipts_is_a_hub_and_they_stay_unattached():
    from cemlib.identity.resolve import IdentityResolver

    rows = [(i, None, None, None, "+7 495 000-00-01", None) for i in range(30)]
    rows += [(100, "Иван", "Петров", "1980-01-01", "+79161234567", None)]
    rows += [(101, None, None, None, "89161234567", None)]
    prep = prepare_records(frame(rows), ROLES, id_column="id")
    res = IdentityResolver(guard=HubGuard(hub_records=20), use_model=False).fit(prep)
    assert res.guarded_["status"].tolist() == ["hub"]
    m = res.record_map()
    assert m["profile_id"].iloc[:30].isna().all()  # the shop's number attaches nobody
    assert m["profile_id"].iloc[30] == m["profile_id"].iloc[31]
