"""Person names of the Russian market: cleaning, splitting a full name, transliteration keys.

* :func:`name_norm` -- lower case, ``ё``->``е``, punctuation except inner hyphens removed, single
  spaces. Cyrillic stays Cyrillic.
* :func:`translit_key` -- a Latin key on which Cyrillic and the usual Latin spellings of one name
  meet: ``Иванов``/``Ivanov``, ``Юлия``/``Yuliya``/``Julia``/``Iuliia``,
  ``Сергей``/``Sergey``/``Sergei``, ``Михаил``/``Mikhail``/``Mihail``, ``Алексей``/``Alexey``.
  Unidecode transliterates, then a folding table removes the differences between GOST, ICAO and
  English habits (``y/j/i``, ``kh/h``, ``x/ks``, ``ph/f``, doubled letters, ``ye/e``...).
* :func:`split_full_name` -- ``Фамилия Имя Отчество``, ``Имя Отчество Фамилия``,
  ``Фамилия Имя``, ``Имя Фамилия`` (Cyrillic or Latin) into parts, with the patronymic recognized
  by its suffix and the first name by a list of Russian first names, plus a gender hint.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd
from unidecode import unidecode

from cemlib.normalize.unique import map_unique

_APOSTROPHES_ONLY = re.compile(r"['’`ʼʹ]")
_PUNCT = re.compile(r"[^\w\s\-]|_|\d")
_SPACE = re.compile(r"\s+")
_HYPHEN_EDGE = re.compile(r"(?:^-+|-+$|(?<=\s)-+|-+(?=\s))")

PATRONYMIC_MALE = re.compile(r"(?:ович|евич|ьич|ич|ovich|evich|ovitch|evitch|ovic|evic|ich)$")
PATRONYMIC_FEMALE = re.compile(r"(?:овна|евна|ична|инична|ovna|evna|ichna|inichna|ichnа)$")
#: Turkic patronymic particles written as a separate word ("Мамед оглы", "Алиевна кызы")
PATRONYMIC_PARTICLES = frozenset({"оглы", "кызы", "улы", "ogly", "oglu", "kyzy", "kizi", "uly"})

SURNAME_FEMALE = re.compile(
    r"(?:ова|ева|ёва|ина|ына|ская|цкая|ая|ova|eva|ina|yna|skaya|tskaya|aya)$"
)
SURNAME_MALE = re.compile(r"(?:ов|ев|ёв|ин|ын|ский|цкий|ой|ий|ov|ev|in|yn|sky|skiy|skii|tskiy|oy)$")


def _clean(text: str) -> str:
    value = text.replace("ё", "е").replace("Ё", "Е").lower()
    value = _APOSTROPHES_ONLY.sub("", value)
    value = _PUNCT.sub(" ", value)
    value = _HYPHEN_EDGE.sub(" ", value)
    return _SPACE.sub(" ", value).strip()


def _clean_or_none(text: str) -> str | None:
    return _clean(text) or None


# Latin folding: applied in order to the unidecoded lower-case text of one word.
_FOLD: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"[^a-z\s\-]", ""),  # apostrophes of soft/hard signs, anything unidecode left
        (r"x", "ks"),
        (r"shch|sch|shh", "sh"),
        (r"tch", "ch"),
        (r"kh", "h"),
        (r"ph", "f"),
        (r"th", "t"),
        (r"ck", "k"),
        (r"tz", "ts"),
        (r"c(?=[eiy])", "ts"),
        (r"c(?!h)", "k"),
        (r"w", "v"),
        (r"ff\b", "v"),
        (r"(?<=[aeiouy\s-])ye|^ye", "e"),
        (r"[yj]", "i"),
        (r"ou", "u"),
        (r"(.)\1+", r"\1"),
    )
)


def _latin_key(text: str) -> str:
    value = unidecode(_clean(text))
    for pattern, repl in _FOLD:
        value = pattern.sub(repl, value)
    return _SPACE.sub(" ", value.replace("-", " ")).strip()


def _key_or_none(text: str) -> str | None:
    return _latin_key(text) or None


def _sorted_key_or_none(text: str) -> str | None:
    return " ".join(sorted(_latin_key(text).split())) or None


#: everyday short forms of Russian first names and the full name they stand for: a cashier
#: types "Саша" for Александр, a support agent "Таня" for Татьяна. Unisex forms (Саша, Женя,
#: Валя) map to one key; the full forms' keys are within a typo of each other anyway.
DIMINUTIVES: dict[str, str] = {
    **dict.fromkeys(("Саша", "Шура", "Саня", "Алекс"), "Александр"),
    **dict.fromkeys(("Лёша", "Алёша", "Леша", "Алеша"), "Алексей"),
    **dict.fromkeys(("Андрюша",), "Андрей"),
    **dict.fromkeys(("Тёма", "Тема"), "Артём"),
    **dict.fromkeys(("Боря",), "Борис"),
    **dict.fromkeys(("Вадик",), "Вадим"),
    **dict.fromkeys(("Валера",), "Валерий"),
    **dict.fromkeys(("Витя",), "Виктор"),
    **dict.fromkeys(("Вова", "Володя"), "Владимир"),
    **dict.fromkeys(("Влад",), "Владислав"),
    **dict.fromkeys(("Гена",), "Геннадий"),
    **dict.fromkeys(("Гоша", "Жора"), "Георгий"),
    **dict.fromkeys(("Гриша",), "Григорий"),
    **dict.fromkeys(("Дима",), "Дмитрий"),
    **dict.fromkeys(("Женя",), "Евгений"),
    **dict.fromkeys(("Ваня",), "Иван"),
    **dict.fromkeys(("Илюша",), "Илья"),
    **dict.fromkeys(("Костя",), "Константин"),
    **dict.fromkeys(("Коля",), "Николай"),
    **dict.fromkeys(("Лёня", "Леня"), "Леонид"),
    **dict.fromkeys(("Макс",), "Максим"),
    **dict.fromkeys(("Миша",), "Михаил"),
    **dict.fromkeys(("Паша",), "Павел"),
    **dict.fromkeys(("Петя",), "Пётр"),
    **dict.fromkeys(("Рома",), "Роман"),
    **dict.fromkeys(("Серёжа", "Сережа", "Серж"), "Сергей"),
    **dict.fromkeys(("Стас",), "Станислав"),
    **dict.fromkeys(("Толя",), "Анатолий"),
    **dict.fromkeys(("Федя",), "Фёдор"),
    **dict.fromkeys(("Юра",), "Юрий"),
    **dict.fromkeys(("Слава",), "Вячеслав"),
    **dict.fromkeys(("Валя",), "Валентина"),
    **dict.fromkeys(("Аня", "Анюта"), "Анна"),
    **dict.fromkeys(("Вика",), "Виктория"),
    **dict.fromkeys(("Галя",), "Галина"),
    **dict.fromkeys(("Даша",), "Дарья"),
    **dict.fromkeys(("Катя",), "Екатерина"),
    **dict.fromkeys(("Лена",), "Елена"),
    **dict.fromkeys(("Лиза",), "Елизавета"),
    **dict.fromkeys(("Ира",), "Ирина"),
    **dict.fromkeys(("Ксюша",), "Ксения"),
    **dict.fromkeys(("Лара",), "Лариса"),
    **dict.fromkeys(("Люба",), "Любовь"),
    **dict.fromkeys(("Люда", "Мила"), "Людмила"),
    **dict.fromkeys(("Маша",), "Мария"),
    **dict.fromkeys(("Надя",), "Надежда"),
    **dict.fromkeys(("Наташа",), "Наталья"),
    **dict.fromkeys(("Настя",), "Анастасия"),
    **dict.fromkeys(("Оля",), "Ольга"),
    **dict.fromkeys(("Поля",), "Полина"),
    **dict.fromkeys(("Света",), "Светлана"),
    **dict.fromkeys(("Соня",), "Софья"),
    **dict.fromkeys(("Тома",), "Тамара"),
    **dict.fromkeys(("Таня",), "Татьяна"),
    **dict.fromkeys(("Юля",), "Юлия"),
    **dict.fromkeys(("Зина",), "Зинаида"),
}


@lru_cache(maxsize=1)
def _diminutive_keys() -> dict[str, str]:
    """Latin key of a short form -> Latin key of its full name (Cyrillic and Latin alike)."""
    return {_latin_key(short): _latin_key(full) for short, full in DIMINUTIVES.items()}


def _first_key_or_none(text: str) -> str | None:
    key = _latin_key(text)
    return _diminutive_keys().get(key, key) or None


def first_name_key(series: pd.Series) -> pd.Series:
    """Latin match key of a first name with everyday short forms read as their full name
    (Саша, Sasha -> aleksandr; Таня -> tatiana): see :data:`DIMINUTIVES`."""
    return map_unique(series, _first_key_or_none)


def name_norm(series: pd.Series) -> pd.Series:
    """Lower case, ``ё``->``е``, punctuation and digits removed, single spaces (NA if nothing left)."""
    return map_unique(series, _clean_or_none)


def translit_key(series: pd.Series, *, sort_tokens: bool = False) -> pd.Series:
    """Latin match key of each name (see module docstring); ``sort_tokens`` makes the key of a
    full name independent of word order."""
    return map_unique(series, _sorted_key_or_none if sort_tokens else _key_or_none)


@lru_cache(maxsize=1)
def _first_names() -> tuple[frozenset[str], frozenset[str]]:
    """Translit keys of Russian male and female first names (Faker's ru_RU lists plus common
    short forms), so Cyrillic and Latin spellings are recognized alike."""
    from faker.providers.person.ru_RU import Provider

    extra_male = ("Саша", "Женя", "Валя", "Дима", "Миша", "Ваня", "Коля", "Серж", "Алекс", "Макс")
    extra_female = (
        "Саша",
        "Женя",
        "Валя",
        "Маша",
        "Наташа",
        "Оля",
        "Катя",
        "Лена",
        "Таня",
        "Юля",
        "Настя",
        "Аня",
    )
    male = {_latin_key(n) for n in (*Provider.first_names_male, *extra_male)}
    female = {_latin_key(n) for n in (*Provider.first_names_female, *extra_female)}
    return frozenset(male - {""}), frozenset(female - {""})


def _is_patronymic(word: str) -> str | None:
    """'M'/'F' when ``word`` (cleaned, lower case) looks like a patronymic, else None."""
    if len(word) < 5:
        return None
    if PATRONYMIC_FEMALE.search(word):
        return "F"
    if PATRONYMIC_MALE.search(word):
        return "M"
    return None


def _first_name_gender(word: str) -> str | None:
    male, female = _first_names()
    key = _latin_key(word)
    if key in male and key not in female:
        return "M"
    if key in female and key not in male:
        return "F"
    return "U" if key in male else None


def _surname_gender(word: str) -> str | None:
    if SURNAME_FEMALE.search(word):
        return "F"
    if SURNAME_MALE.search(word):
        return "M"
    return None


def _split(text: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(last, first, middle, gender hint) of one full name; parts keep their original spelling."""
    original = [w for w in _SPACE.split(re.sub(r"[,;]", " ", text).strip()) if w]
    words = [_clean(w) for w in original]
    keep = [i for i, w in enumerate(words) if w]
    original, words = [original[i] for i in keep], [words[i] for i in keep]
    # Turkic particle: glue to the preceding word ("Мамед оглы" is one patronymic)
    for i in range(len(words) - 1, 0, -1):
        if words[i] in PATRONYMIC_PARTICLES:
            original[i - 1 : i + 1] = [f"{original[i - 1]} {original[i]}"]
            words[i - 1 : i + 1] = [f"{words[i - 1]} {words[i]}"]
    n = len(words)
    if n == 0:
        return None, None, None, None

    def patro(i: int) -> str | None:
        w = words[i]
        if w.split()[-1] in PATRONYMIC_PARTICLES:
            return "F" if w.split()[-1] in {"кызы", "kyzy", "kizi"} else "M"
        return _is_patronymic(w)

    last = first = middle = None
    gender = None
    if n == 1:
        # a bare word is a first name (a till's «Лилия», a ticket's «Сережа») unless it is
        # shaped like a surname and is no listed first name («Тютчев»)
        if _first_name_gender(words[0]) or not _surname_gender(words[0]):
            first = original[0]
        else:
            last = original[0]
    elif n == 2:
        g0, g1 = _first_name_gender(words[0]), _first_name_gender(words[1])
        if g1 and not g0:
            last, first = original
        elif g0 and not g1:
            first, last = original
        elif _surname_gender(words[0]) and not _surname_gender(words[1]):
            last, first = original
        else:  # "Имя Фамилия" when nothing tells otherwise
            first, last = original
    else:
        if n == 3 and patro(2) and not patro(1):
            last, first, middle = original
        elif (
            n == 3
            and patro(1)
            and not patro(2)
            or n == 3
            and _first_name_gender(words[0])
            and not _first_name_gender(words[1])
        ):
            first, middle, last = original
        else:  # Фамилия Имя Отчество, the order of Russian documents; extra words join the middle
            last, first = original[0], original[1]
            middle = " ".join(original[2:])
    if middle:
        gender = patro(len(words) - 1) if middle == original[-1] else None
        gender = gender or _is_patronymic(_clean(middle.split()[0]))
    if gender is None and first:
        g = _first_name_gender(_clean(first))
        gender = g if g in ("M", "F") else None
    if gender is None and last:
        gender = _surname_gender(_clean(last))
    return last, first, middle, gender


def split_full_name(series: pd.Series) -> pd.DataFrame:
    """Split full names into ``last_name``, ``first_name``, ``middle_name`` and ``gender_hint``
    (``M``/``F``/NA); parts keep the original spelling (normalize them with :func:`name_norm`).

    Each distinct value is split once.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    parts = [_split(str(u)) for u in uniques] + [(None, None, None, None)]
    table = pd.DataFrame(parts, columns=["last_name", "first_name", "middle_name", "gender_hint"])
    out = table.iloc[codes].reset_index(drop=True).astype("string")
    out.index = series.index
    return out


def gender_hint(
    last: pd.Series | None = None, first: pd.Series | None = None, middle: pd.Series | None = None
) -> pd.Series:
    """``M``/``F``/NA from the patronymic, else the first name, else the surname ending."""
    index = next(s.index for s in (last, first, middle) if s is not None)
    out = pd.Series(pd.NA, index=index, dtype="string")
    for series, func in (
        (middle, _is_patronymic),
        (first, _first_name_gender),
        (last, _surname_gender),
    ):
        if series is None:
            continue

        def hint(text: str, func=func) -> str | None:
            g = func(_clean(text))
            return g if g in ("M", "F") else None

        out = out.fillna(map_unique(series, hint))
    return out
