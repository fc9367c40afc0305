"""An independent world of noisy Russian person records, for evaluating identity resolution.

Written apart from :mod:`cemlib.synth` (nothing read or imported from it), on purpose with its
own assumptions, so that the resolver is not scored on the world it was tuned on:

* full names follow steep Zipf-like laws (surnames, first names and patronymics, each gendered:
  Попов/Попова, Владимирович/Владимировна), steep enough that the commonest full names
  (Иванов Александр Александрович, Попова Ольга Владимировна, ...) are carried by tens of
  *different* people per 3,000 -- namesakes with their own birth dates, phones and e-mails;
* 1 to 5 records per person (mean ~1.85) from four sources of different shape: ``crm`` (mostly
  complete), ``web`` (an e-mail, the name often in Latin letters, sometimes a phone, no birth
  date), ``till`` (a first name and a phone) and ``support`` (a first name or first + last
  name, a phone or an e-mail);
* noise: one-character typos, several transliteration styles (Yuliya / Iuliia / Julija), name
  order variants and a dropped patronymic, day/month swaps and one-digit typos in birth dates
  written in several formats, phones in several formats, e-mail case and Gmail dots, a second
  phone or e-mail for some people, relatives (same surname, same city) sharing a household
  phone, a skewed city distribution sometimes written ``г. Москва``.

``make_world(n_people, seed)`` returns one row per record (with the truth ``person_id``);
``make_people`` the person table behind it; ``write_world(dir, n_people, seed)`` writes
``records.csv``, ``truth.csv`` and ``roles.yaml`` for ``cem identity``::

    cem identity records.csv --id-column rec_id --roles roles.yaml --source-column source \
        --out clusters.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

try:  # Faker's ru_RU surname list is used only as the long tail beyond our own head list
    from faker.providers.person.ru_RU import Provider as _FakerRu

    _FAKER_SURNAMES: tuple[str, ...] = tuple(_FakerRu.last_names_male)
except ImportError:  # pragma: no cover - Faker is installed in the venv
    _FAKER_SURNAMES = ()

# --------------------------------------------------------------------------- name pools
# Ordered commonest first; the order is what the Zipf laws act on.
_SURNAME_HEAD = [
    "Иванов",
    "Попов",
    "Смирнов",
    "Кузнецов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Федоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семенов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьев",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьев",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королев",
    "Гусев",
    "Киселев",
    "Ильин",
    "Максимов",
    "Поляков",
    "Сорокин",
    "Виноградов",
    "Ковалев",
    "Белов",
    "Медведев",
    "Антонов",
    "Тарасов",
    "Жуков",
    "Баранов",
    "Филиппов",
    "Комаров",
    "Давыдов",
    "Беляев",
    "Герасимов",
    "Богданов",
    "Осипов",
    "Сидоров",
    "Матвеев",
    "Титов",
    "Марков",
    "Миронов",
    "Крылов",
    "Куликов",
    "Карпов",
    "Власов",
    "Мельников",
    "Денисов",
    "Гаврилов",
    "Тихонов",
    "Казаков",
    "Афанасьев",
    "Данилов",
    "Савельев",
    "Тимофеев",
    "Фомин",
    "Чернов",
    "Абрамов",
    "Мартынов",
    "Ефимов",
    "Федотов",
    "Щербаков",
    "Назаров",
    "Калинин",
    "Исаев",
    "Чернышев",
    "Быков",
    "Маслов",
    "Родионов",
    "Коновалов",
    "Лазарев",
    "Воронин",
    "Климов",
    "Филатов",
    "Пономарев",
    "Голубев",
    "Кудрявцев",
    "Прохоров",
    "Наумов",
    "Потапов",
    "Журавлев",
    "Овчинников",
    "Трофимов",
    "Леонов",
    "Соболев",
    "Ермаков",
    "Колесников",
    "Гончаров",
    "Емельянов",
    "Никифоров",
    "Грачев",
    "Котов",
    "Гришин",
    "Ефремов",
    "Архипов",
    "Громов",
    "Кириллов",
    "Малышев",
    "Панов",
    "Моисеев",
    "Румянцев",
    "Акимов",
    "Кондратьев",
    "Бирюков",
    "Горбунов",
    "Анисимов",
    "Еремин",
    "Тихомиров",
    "Шевченко",
    "Бондаренко",
    "Ковальчук",
    "Черных",
    "Седых",
    "Мельник",
    "Ким",
    "Литвиненко",
    "Белых",
    "Кравец",
    "Покровский",
    "Вишневский",
    "Островский",
    "Толстой",
    "Луговской",
    "Полянский",
    "Высоцкий",
    "Дубровский",
]
_SURNAMES: tuple[str, ...] = tuple(
    dict.fromkeys([*_SURNAME_HEAD, *_FAKER_SURNAMES])  # commonest first, no duplicates
)

_MALE_NAMES = [
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Владимир",
    "Евгений",
    "Михаил",
    "Николай",
    "Игорь",
    "Максим",
    "Иван",
    "Денис",
    "Артем",
    "Павел",
    "Олег",
    "Роман",
    "Виктор",
    "Юрий",
    "Антон",
    "Константин",
    "Вадим",
    "Илья",
    "Кирилл",
    "Никита",
    "Владислав",
    "Станислав",
    "Василий",
    "Анатолий",
    "Вячеслав",
    "Валерий",
    "Геннадий",
    "Борис",
    "Петр",
    "Григорий",
    "Леонид",
    "Степан",
    "Федор",
    "Георгий",
    "Тимур",
    "Руслан",
    "Ярослав",
    "Егор",
    "Данил",
    "Арсений",
    "Глеб",
    "Матвей",
    "Эдуард",
    "Аркадий",
    "Всеволод",
]
_FEMALE_NAMES = [
    "Ольга",
    "Елена",
    "Татьяна",
    "Наталья",
    "Ирина",
    "Анна",
    "Екатерина",
    "Светлана",
    "Юлия",
    "Мария",
    "Марина",
    "Анастасия",
    "Людмила",
    "Надежда",
    "Галина",
    "Оксана",
    "Ксения",
    "Дарья",
    "Алена",
    "Виктория",
    "Валентина",
    "Любовь",
    "Вера",
    "Евгения",
    "Кристина",
    "Полина",
    "Алина",
    "Софья",
    "Яна",
    "Ангелина",
    "Лариса",
    "Нина",
    "Зоя",
    "Олеся",
    "Жанна",
    "Диана",
    "Вероника",
    "Маргарита",
    "Тамара",
    "Регина",
    "Элина",
    "Василиса",
    "Ульяна",
    "Арина",
    "Лилия",
    "Инна",
    "Антонина",
    "Лидия",
    "Эльвира",
]
# father's name -> (male, female) patronymic, commonest first
_PATRONYMICS = [
    ("Александрович", "Александровна"),
    ("Сергеевич", "Сергеевна"),
    ("Владимирович", "Владимировна"),
    ("Андреевич", "Андреевна"),
    ("Алексеевич", "Алексеевна"),
    ("Николаевич", "Николаевна"),
    ("Викторович", "Викторовна"),
    ("Юрьевич", "Юрьевна"),
    ("Михайлович", "Михайловна"),
    ("Игоревич", "Игоревна"),
    ("Дмитриевич", "Дмитриевна"),
    ("Евгеньевич", "Евгеньевна"),
    ("Анатольевич", "Анатольевна"),
    ("Олегович", "Олеговна"),
    ("Иванович", "Ивановна"),
    ("Васильевич", "Васильевна"),
    ("Валерьевич", "Валерьевна"),
    ("Петрович", "Петровна"),
    ("Геннадьевич", "Геннадьевна"),
    ("Павлович", "Павловна"),
    ("Борисович", "Борисовна"),
    ("Вячеславович", "Вячеславовна"),
    ("Константинович", "Константиновна"),
    ("Романович", "Романовна"),
    ("Леонидович", "Леонидовна"),
    ("Григорьевич", "Григорьевна"),
    ("Федорович", "Федоровна"),
    ("Максимович", "Максимовна"),
    ("Степанович", "Степановна"),
    ("Аркадьевич", "Аркадьевна"),
    ("Вадимович", "Вадимовна"),
    ("Георгиевич", "Георгиевна"),
    ("Станиславович", "Станиславовна"),
    ("Денисович", "Денисовна"),
    ("Ильич", "Ильинична"),
    ("Кузьмич", "Кузьминична"),
    ("Никитич", "Никитична"),
    ("Эдуардович", "Эдуардовна"),
    ("Тимурович", "Тимуровна"),
    ("Рустамович", "Рустамовна"),
]
# a few everyday short forms (till and support staff type what the customer says)
_SHORT = {
    "Александр": "Саша",
    "Александра": "Саша",
    "Дмитрий": "Дима",
    "Алексей": "Леша",
    "Сергей": "Сережа",
    "Евгения": "Женя",
    "Евгений": "Женя",
    "Екатерина": "Катя",
    "Наталья": "Наташа",
    "Мария": "Маша",
    "Анастасия": "Настя",
    "Владимир": "Вова",
    "Михаил": "Миша",
    "Татьяна": "Таня",
    "Елена": "Лена",
    "Юлия": "Юля",
}

_CITIES = [
    "Москва",
    "Санкт-Петербург",
    "Новосибирск",
    "Екатеринбург",
    "Казань",
    "Нижний_Новгород",
    "Челябинск",
    "Самара",
    "Омск",
    "Ростов-на-Дону",
    "Уфа",
    "Красноярск",
    "Воронеж",
    "Пермь",
    "Волгоград",
    "Краснодар",
    "Саратов",
    "Тюмень",
    "Тольятти",
    "Ижевск",
    "Барнаул",
    "Ульяновск",
    "Иркутск",
    "Хабаровск",
    "Ярославль",
    "Владивосток",
    "Махачкала",
    "Томск",
    "Оренбург",
    "Кемерово",
    "Новокузнецк",
    "Рязань",
    "Астрахань",
    "Набережные_Челны",
    "Пенза",
    "Киров",
    "Липецк",
    "Чебоксары",
    "Калининград",
    "Тула",
    "Курск",
    "Ставрополь",
    "Сочи",
    "Тверь",
    "Магнитогорск",
    "Иваново",
    "Брянск",
    "Белгород",
    "Сургут",
    "Владимир",
    "Архангельск",
    "Чита",
    "Смоленск",
    "Калуга",
    "Волжский",
    "Курган",
    "Орел",
    "Череповец",
    "Вологда",
    "Саранск",
    "Мурманск",
    "Якутск",
    "Тамбов",
    "Грозный",
    "Стерлитамак",
    "Кострома",
    "Петрозаводск",
    "Нижневартовск",
    "Йошкар-Ола",
    "Новороссийск",
    "Химки",
    "Подольск",
    "Балашиха",
    "Мытищи",
    "Королев",
    "Люберцы",
    "Электросталь",
    "Коломна",
    "Одинцово",
    "Серпухов",
    "Обнинск",
    "Дзержинск",
    "Ногинск",
]
_CITIES = tuple(c.replace("_", " ") for c in _CITIES)

_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "list.ru", "inbox.ru", "rambler.ru")
_DOMAIN_P = np.array([0.34, 0.24, 0.2, 0.07, 0.06, 0.05, 0.04])

_SOURCES = ("crm", "web", "till", "support")
_SOURCE_P = np.array([0.36, 0.30, 0.20, 0.14])
_N_RECORDS = np.array([1, 2, 3, 4, 5])
_N_RECORDS_P = np.array([0.48, 0.32, 0.13, 0.06, 0.01])

ROLES: dict[str, str] = {
    "full_name": "full_name",
    "phone": "phone",
    "email": "email",
    "birth_date": "birth_date",
    "city": "city",
}
COLUMNS = ("rec_id", "source", "full_name", "phone", "email", "birth_date", "city", "person_id")


def _zipf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def female_surname(male: str) -> str:
    """Попов -> Попова, Покровский -> Покровская, Толстой -> Толстая; Шевченко, Черных as is."""
    if male.endswith(("ский", "цкий")):
        return male[:-2] + "ая"
    if male.endswith("ой"):
        return male[:-2] + "ая"
    if male.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return male + "а"
    return male


# --------------------------------------------------------------------------- transliteration
_BASE = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "з": "z",
    "и": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "ы": "y", "э": "e", "ъ": "", "ь": "",
}  # fmt: skip
_STYLES = {
    # the Russian passport (ICAO 9303): Iuliia, Natalia, Sergei
    "passport": {"ж": "zh", "й": "i", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
                 "щ": "shch", "ю": "iu", "я": "ia", "ъ": "ie"},
    # everyday English-style: Yuliya, Natalya, Sergey
    "common": {"ж": "zh", "й": "y", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
               "щ": "sch", "ю": "yu", "я": "ya"},
    # older, German/Polish-flavoured: Julija, Natalja, Sergej
    "scholarly": {"ж": "zh", "й": "j", "х": "h", "ц": "c", "ч": "ch", "ш": "sh",
                  "щ": "sch", "ю": "ju", "я": "ja", "е": "e"},
}  # fmt: skip
TRANSLIT_STYLES = tuple(_STYLES)


def translit(text: str, style: str = "common") -> str:
    """Cyrillic -> Latin in one of :data:`TRANSLIT_STYLES` (our own tables, not a library's)."""
    table = {**_BASE, **_STYLES[style]}
    out = []
    for ch in text:
        low = ch.lower()
        t = table.get(low, ch) if low in table else ch
        out.append(t.capitalize() if ch != low and t else t)
    return "".join(out).replace("'", "")


# --------------------------------------------------------------------------- noise
_NEAR = "йцукенгшщзхъфывапролджэячсмитьбю"


def _typo(word: str, rng: np.random.Generator) -> str:
    """One character substituted, dropped, doubled or swapped with its neighbour."""
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))  # never the first letter
    kind = rng.integers(4)
    if kind == 0:
        pos = _NEAR.find(word[i].lower())
        rep = _NEAR[(pos + (1 if rng.random() < 0.5 else -1)) % len(_NEAR)] if pos >= 0 else "a"
        return word[:i] + rep + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    i = max(i, 2)  # swapped with the letter before, the first letter still kept
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def format_phone(national: str, rng: np.random.Generator) -> str:
    """A 10-digit national number in one of the formats people type."""
    a, b, c, d = national[:3], national[3:6], national[6:8], national[8:]
    k = rng.choice(6, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1])
    return (
        f"+7 ({a}) {b}-{c}-{d}",
        f"8 {a} {b}{c}{d}",
        national,
        "7" + national,
        f"8({a}){b}-{c}-{d}",
        f"+7{national}",
    )[k]


def format_date(day: int, month: int, year: int, rng: np.random.Generator) -> str:
    k = rng.choice(3, p=[0.5, 0.45, 0.05])
    if k == 0:
        return f"{year:04d}-{month:02d}-{day:02d}"
    if k == 1:
        return f"{day:02d}.{month:02d}.{year:04d}"
    return f"{day:02d}/{month:02d}/{year:04d}"


def _noisy_date(d: pd.Timestamp, rng: np.random.Generator) -> str:
    day, month, year = d.day, d.month, d.year
    r = rng.random()
    if r < 0.04 and day <= 12 and day != month:  # day and month swapped
        day, month = month, day
    elif r < 0.08:  # one digit mistyped (day's last digit or year's last digit)
        if rng.random() < 0.5:
            day = min(28, max(1, day - day % 10 + int(rng.integers(10))))
        else:
            year = year - year % 10 + int(rng.integers(10))
    return format_date(day, month, year, rng)


def _email_variant(email: str, rng: np.random.Generator) -> str:
    local, domain = email.split("@")
    r = rng.random()
    if r < 0.12:  # typed in capitals somewhere
        return (
            (local.capitalize() + "@" + domain.capitalize())
            if rng.random() < 0.5
            else email.upper()
        )
    if domain == "gmail.com" and r < 0.35:  # Gmail ignores dots in the local part
        if "." in local:
            return local.replace(".", "") + "@" + domain
        cut = int(rng.integers(1, max(2, len(local) - 1)))
        return local[:cut] + "." + local[cut:] + "@" + domain
    return email


# --------------------------------------------------------------------------- people
def make_people(n_people: int = 3000, seed: int = 2026) -> pd.DataFrame:
    """The true persons: names, birth date, city, phones (10 digits) and e-mails."""
    rng = np.random.default_rng(seed)
    n = int(n_people)
    male = rng.random(n) < 0.48
    s_idx = rng.choice(len(_SURNAMES), n, p=_zipf(len(_SURNAMES), 1.05))
    fm_idx = rng.choice(len(_MALE_NAMES), n, p=_zipf(len(_MALE_NAMES), 1.2))
    ff_idx = rng.choice(len(_FEMALE_NAMES), n, p=_zipf(len(_FEMALE_NAMES), 1.2))
    p_idx = rng.choice(len(_PATRONYMICS), n, p=_zipf(len(_PATRONYMICS), 1.1))
    c_idx = rng.choice(len(_CITIES), n, p=_zipf(len(_CITIES), 1.1))
    days = rng.integers(0, (pd.Timestamp("2006-12-31") - pd.Timestamp("1950-01-01")).days, n)
    births = pd.Timestamp("1950-01-01") + pd.to_timedelta(days, unit="D")

    people = pd.DataFrame(
        {
            "person_id": [f"T{i:06d}" for i in range(n)],
            "gender": np.where(male, "m", "f"),
            "last_name": [
                _SURNAMES[s] if m else female_surname(_SURNAMES[s])
                for s, m in zip(s_idx, male, strict=True)
            ],
            "first_name": [
                _MALE_NAMES[a] if m else _FEMALE_NAMES[b]
                for a, b, m in zip(fm_idx, ff_idx, male, strict=True)
            ],
            "middle_name": [
                _PATRONYMICS[p][0 if m else 1] for p, m in zip(p_idx, male, strict=True)
            ],
            "birth_date": births,
            "city": [_CITIES[c] for c in c_idx],
        }
    )
    # relatives: ~8% of people are one of a pair living together (same surname, same city)
    # whose household phone is that of the first of the pair
    n_pairs = int(round(0.04 * n))
    order = rng.permutation(n)
    heads, kin = order[:n_pairs], order[n_pairs : 2 * n_pairs]
    people["household_with"] = pd.NA
    for h, k in zip(heads, kin, strict=True):
        male_base = _SURNAMES[s_idx[h]]
        people.at[k, "last_name"] = male_base if male[k] else female_surname(male_base)
        people.at[k, "city"] = people.at[h, "city"]
        people.at[k, "household_with"] = people.at[h, "person_id"]

    # phones: unique 10-digit mobile numbers; ~15% have a second one
    phones = [str(9_000_000_000 + x) for x in rng.choice(1_000_000_000, 2 * n, replace=False)]
    people["phone"] = phones[:n]
    people["phone_2"] = [phones[n + i] if rng.random() < 0.15 else None for i in range(n)]
    by_id = dict(zip(people["person_id"], people["phone"], strict=True))
    people["household_phone"] = [
        by_id[h] if isinstance(h, str) else None for h in people["household_with"]
    ]

    # e-mails: built from the (transliterated) name and birth year, unique, ~12% a second one
    seen: set[str] = set()

    def mail(i: int) -> str:
        style = TRANSLIT_STYLES[int(rng.integers(3))]
        first = translit(people.at[i, "first_name"], style).lower()
        last = translit(people.at[i, "last_name"], style).lower()
        year = people.at[i, "birth_date"].year
        k = int(rng.integers(6))
        local = (
            f"{first}.{last}",
            f"{first[0]}.{last}{year % 100:02d}",
            f"{last}{year}",
            f"{first}{last[:3]}{int(rng.integers(1, 999))}",
            f"{last}_{first[0]}",
            f"{first}{int(rng.integers(10, 99))}",
        )[k].replace("'", "")
        domain = str(rng.choice(_DOMAINS, p=_DOMAIN_P))
        email = f"{local}@{domain}"
        while email in seen:
            email = f"{local}{int(rng.integers(1, 9999))}@{domain}"
        seen.add(email)
        return email

    people["email"] = [mail(i) for i in range(n)]
    people["email_2"] = [mail(i) if rng.random() < 0.12 else None for i in range(n)]
    return people


# --------------------------------------------------------------------------- records
def _full_name(p, rng: np.random.Generator, *, order_p, drop_patronymic: float, typo: float):
    last, first, middle = p.last_name, p.first_name, p.middle_name
    if rng.random() < typo:
        which = rng.integers(3)
        if which == 0:
            last = _typo(last, rng)
        elif which == 1:
            first = _typo(first, rng)
        else:
            middle = _typo(middle, rng)
    k = rng.choice(3, p=order_p)
    no_mid = rng.random() < drop_patronymic
    if k == 0:  # Фамилия Имя Отчество
        parts = [last, first] if no_mid else [last, first, middle]
    elif k == 1:  # Имя Фамилия
        parts = [first, last]
    else:  # Имя Отчество Фамилия
        parts = [first, last] if no_mid else [first, middle, last]
    return " ".join(parts)


def _city(city: str, rng: np.random.Generator) -> str:
    if city == "Санкт-Петербург" and rng.random() < 0.1:
        return "СПб"
    return f"г. {city}" if rng.random() < 0.2 else city


def _record(p, source: str, rng: np.random.Generator) -> dict:
    rec = {"full_name": None, "phone": None, "email": None, "birth_date": None, "city": None}

    def phone() -> str:
        r = rng.random()
        if isinstance(p.household_phone, str) and r < 0.4:
            num = p.household_phone
        elif isinstance(p.phone_2, str) and r > 0.65:
            num = p.phone_2
        else:
            num = p.phone
        return format_phone(num, rng)

    def email() -> str:
        e = p.email_2 if isinstance(p.email_2, str) and rng.random() < 0.4 else p.email
        return _email_variant(e, rng)

    if source == "crm":
        rec["full_name"] = _full_name(
            p, rng, order_p=[0.82, 0.08, 0.10], drop_patronymic=0.1, typo=0.06
        )
        if rng.random() < 0.95:
            rec["phone"] = phone()
        if rng.random() < 0.85:
            rec["email"] = email()
        if rng.random() < 0.9:
            rec["birth_date"] = _noisy_date(p.birth_date, rng)
        if rng.random() < 0.9:
            rec["city"] = _city(p.city, rng)
    elif source == "web":
        if rng.random() < 0.92:
            name = _full_name(p, rng, order_p=[0.3, 0.6, 0.1], drop_patronymic=0.7, typo=0.04)
            if rng.random() < 0.4:
                name = translit(name, TRANSLIT_STYLES[int(rng.integers(3))]).replace("'", "")
            rec["full_name"] = name
        rec["email"] = email()
        if rng.random() < 0.4:
            rec["phone"] = phone()
        if rng.random() < 0.5:
            rec["city"] = _city(p.city, rng)
    elif source == "till":
        first = p.first_name
        if first in _SHORT and rng.random() < 0.15:
            first = _SHORT[first]
        elif rng.random() < 0.04:
            first = _typo(first, rng)
        rec["full_name"] = first
        rec["phone"] = phone()
    else:  # support
        first = p.first_name
        rec["full_name"] = f"{first} {p.last_name}" if rng.random() < 0.4 else first
        r = rng.random()
        if r < 0.45:
            rec["phone"] = phone()
        elif r < 0.9:
            rec["email"] = email()
        else:
            rec["phone"], rec["email"] = phone(), email()
    return rec


def make_world(n_people: int = 3000, seed: int = 2026) -> pd.DataFrame:
    """One row per record: rec_id, source, full_name, phone, email, birth_date, city, person_id."""
    people = make_people(n_people, seed)
    rng = np.random.default_rng([seed, 1])
    counts = rng.choice(_N_RECORDS, len(people), p=_N_RECORDS_P)
    rows = []
    for p, k in zip(people.itertuples(index=False), counts, strict=True):
        sources = rng.choice(_SOURCES, int(k), p=_SOURCE_P)
        for s in sources:
            rows.append({"source": str(s), **_record(p, str(s), rng), "person_id": p.person_id})
    df = pd.DataFrame(rows)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)  # sources interleaved
    prefix = {"crm": "C", "web": "W", "till": "T", "support": "S"}
    df.insert(0, "rec_id", [f"{prefix[s]}{i:07d}" for i, s in enumerate(df["source"])])
    return df[list(COLUMNS)].astype("string")


def roles_yaml() -> str:
    """The role map for ``cem identity`` (column: role); the source goes by --source-column."""
    return yaml.safe_dump(ROLES, allow_unicode=True, sort_keys=False)


def write_world(directory: str | Path, n_people: int = 3000, seed: int = 2026) -> pd.DataFrame:
    """Write records.csv (no person_id), truth.csv (rec_id, person_id), roles.yaml; return world."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    world = make_world(n_people, seed)
    world.drop(columns="person_id").to_csv(d / "records.csv", index=False)
    world[["rec_id", "person_id"]].to_csv(d / "truth.csv", index=False)
    (d / "roles.yaml").write_text(roles_yaml(), encoding="utf-8")
    return world
