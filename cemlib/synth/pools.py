"""The pools people are drawn from: cities, names (weighted, built once with Faker's
``ru_RU`` provider), streets, e-mail domains and mobile codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from faker import Faker

from cemlib.synth.noise import translit

# city, region, population weight (thousands), macro-region
CITIES: tuple[tuple[str, str, float], ...] = (
    ("Москва", "Москва", 13100),
    ("Санкт-Петербург", "Санкт-Петербург", 5600),
    ("Новосибирск", "Новосибирская область", 1630),
    ("Екатеринбург", "Свердловская область", 1540),
    ("Казань", "Республика Татарстан", 1310),
    ("Нижний Новгород", "Нижегородская область", 1230),
    ("Красноярск", "Красноярский край", 1190),
    ("Челябинск", "Челябинская область", 1180),
    ("Самара", "Самарская область", 1160),
    ("Уфа", "Республика Башкортостан", 1160),
    ("Ростов-на-Дону", "Ростовская область", 1140),
    ("Краснодар", "Краснодарский край", 1100),
    ("Омск", "Омская область", 1120),
    ("Воронеж", "Воронежская область", 1050),
    ("Пермь", "Пермский край", 1030),
    ("Волгоград", "Волгоградская область", 1020),
    ("Саратов", "Саратовская область", 900),
    ("Тюмень", "Тюменская область", 850),
    ("Тольятти", "Самарская область", 680),
    ("Барнаул", "Алтайский край", 630),
    ("Ижевск", "Удмуртская Республика", 630),
    ("Махачкала", "Республика Дагестан", 620),
    ("Хабаровск", "Хабаровский край", 610),
    ("Ульяновск", "Ульяновская область", 610),
    ("Иркутск", "Иркутская область", 610),
    ("Владивосток", "Приморский край", 600),
    ("Ярославль", "Ярославская область", 570),
    ("Севастополь", "Севастополь", 550),
    ("Томск", "Томская область", 560),
    ("Оренбург", "Оренбургская область", 550),
    ("Кемерово", "Кемеровская область", 540),
    ("Новокузнецк", "Кемеровская область", 540),
    ("Рязань", "Рязанская область", 520),
    ("Набережные Челны", "Республика Татарстан", 540),
    ("Пенза", "Пензенская область", 500),
    ("Липецк", "Липецкая область", 500),
    ("Киров", "Кировская область", 470),
    ("Чебоксары", "Чувашская Республика", 490),
    ("Тула", "Тульская область", 470),
    ("Калининград", "Калининградская область", 490),
    ("Балашиха", "Московская область", 520),
    ("Подольск", "Московская область", 310),
    ("Химки", "Московская область", 260),
    ("Мытищи", "Московская область", 240),
    ("Курск", "Курская область", 440),
    ("Ставрополь", "Ставропольский край", 550),
    ("Сочи", "Краснодарский край", 470),
    ("Тверь", "Тверская область", 410),
    ("Брянск", "Брянская область", 380),
    ("Белгород", "Белгородская область", 340),
)
CITY_NAMES = tuple(c[0] for c in CITIES)
CITY_REGIONS = tuple(c[1] for c in CITIES)
METRO = {"Москва", "Санкт-Петербург"}

_POPULAR_MALE = [
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Максим",
    "Евгений",
    "Иван",
    "Михаил",
    "Владимир",
    "Николай",
    "Артём",
    "Денис",
    "Игорь",
    "Павел",
    "Роман",
    "Олег",
    "Антон",
    "Никита",
    "Илья",
    "Кирилл",
    "Виктор",
    "Юрий",
    "Егор",
    "Вадим",
]
_POPULAR_FEMALE = [
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Анна",
    "Мария",
    "Екатерина",
    "Ирина",
    "Светлана",
    "Юлия",
    "Анастасия",
    "Марина",
    "Дарья",
    "Ксения",
    "Виктория",
    "Людмила",
    "Галина",
    "Полина",
    "Алина",
    "Валентина",
    "Надежда",
    "Вероника",
    "Кристина",
]
_POPULAR_PATRONYMIC = [
    "Александрович",
    "Сергеевич",
    "Владимирович",
    "Николаевич",
    "Андреевич",
    "Алексеевич",
    "Викторович",
    "Михайлович",
    "Юрьевич",
    "Игоревич",
    "Анатольевич",
    "Дмитриевич",
    "Евгеньевич",
    "Олегович",
    "Васильевич",
    "Петрович",
    "Иванович",
    "Валерьевич",
    "Геннадьевич",
    "Борисович",
]
EMAIL_DOMAINS = (
    ("mail.ru", 0.30), ("yandex.ru", 0.18), ("gmail.com", 0.20), ("bk.ru", 0.06),
    ("list.ru", 0.05), ("inbox.ru", 0.05), ("rambler.ru", 0.05), ("ya.ru", 0.05),
    ("outlook.com", 0.03), ("icloud.com", 0.03),
)  # fmt: skip
MOBILE_CODES = np.array([c for c in range(900, 1000) if c != 930 and not 940 <= c <= 949])


@dataclass
class Pools:
    """Name and street pools built once with Faker; index arrays point into them."""

    first_male: np.ndarray
    first_female: np.ndarray
    w_first_male: np.ndarray
    w_first_female: np.ndarray
    patronymic_male: np.ndarray
    patronymic_female: np.ndarray
    w_patronymic: np.ndarray
    last_male: np.ndarray
    last_female: np.ndarray
    w_last: np.ndarray
    streets: np.ndarray


def _female_patronymic(p: str) -> str:
    for m, f in (("ьич", "ьинична"), ("ович", "овна"), ("евич", "евна"), ("ич", "инична")):
        if p.endswith(m):
            return p[: -len(m)] + f
    return p


def build_pools() -> Pools:
    """Pools of names from Faker ``ru_RU`` with realistic frequency weights."""
    fk = Faker("ru_RU")
    person = fk.provider("faker.providers.person")
    address = fk.provider("faker.providers.address")

    def weights(names, popular, base=0.04):
        w = np.array([1.0 / (popular.index(n) + 3) ** 0.6 if n in popular else base for n in names])
        return w / w.sum()

    first_male = np.array(sorted(set(person.first_names_male)))
    first_female = np.array(sorted(set(person.first_names_female)))
    patr_male = np.array(sorted(set(person.middle_names_male)))
    last_male = np.array(person.last_names_male)
    last_female = np.array(person.last_names_female)
    w_last = 1.0 / (np.arange(len(last_male)) + 4.0) ** 0.9
    streets = sorted(
        {f"ул. {s}" for s in address.street_titles}
        | {f"пр. {s}" for s in address.street_titles[:40]}
        | {f"пер. {s}" for s in address.street_titles[40:80]}
    )
    return Pools(
        first_male=first_male,
        first_female=first_female,
        w_first_male=weights(list(first_male), _POPULAR_MALE, 0.004),
        w_first_female=weights(list(first_female), _POPULAR_FEMALE, 0.01),
        patronymic_male=patr_male,
        patronymic_female=np.array([_female_patronymic(p) for p in patr_male]),
        w_patronymic=weights(list(patr_male), _POPULAR_PATRONYMIC, 0.01),
        last_male=last_male,
        last_female=last_female,
        w_last=w_last / w_last.sum(),
        streets=np.array(streets),
    )


def latin(arr: np.ndarray) -> np.ndarray:
    """The Latin transliteration of every name of ``arr``."""
    return np.array([translit(x) for x in arr])


def stores_table(rng: np.random.Generator) -> pd.DataFrame:
    """The chain's stores: about one per 400 thousand inhabitants of a city, at least one."""
    rows = []
    k = 0
    for ci, (city, region, w) in enumerate(CITIES):
        for j in range(max(1, int(round(w / 400)))):
            k += 1
            rows.append((f"ST{k:03d}", city, region, ci, f"ТЦ №{j + 1}, {city}"))
    return pd.DataFrame(rows, columns=["store_id", "city", "region", "_city_idx", "name"])
