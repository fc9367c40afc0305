"""The retailer's catalogue: categories, seasonality, cross-sell and consumables, products.

A general online-and-stores retailer of the Russian market. Each category has a price range,
a margin, monthly seasonality multipliers (index 0 = January), an optional repurchase interval
(consumables) and cross-sell partners (buying in A raises the chance of B within weeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FLAT = (1.0,) * 12


@dataclass(frozen=True)
class Category:
    """A category: prices, margin, seasonality, repurchase days, cross-sells."""

    code: str
    name: str
    price: tuple[float, float]  # min, max in roubles
    margin: float
    season: tuple[float, ...] = FLAT
    repeat_days: int | None = None  # consumables: usual repurchase interval
    cross_sell: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()


_WINTER_GIFTS = (0.9, 0.9, 1.1, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.4, 2.2)
_SPRING_GARDEN = (0.2, 0.4, 1.3, 2.5, 2.8, 1.8, 1.1, 0.8, 0.6, 0.3, 0.2, 0.2)
_SUMMER = (0.5, 0.5, 0.7, 1.0, 1.5, 1.8, 1.8, 1.4, 0.9, 0.7, 0.6, 0.7)
_SCHOOL = (0.7, 0.7, 0.8, 0.8, 0.8, 0.8, 1.0, 2.8, 2.0, 0.8, 0.8, 0.9)
_BLACK_FRIDAY = (0.9, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.6, 1.6)

CATEGORIES: tuple[Category, ...] = (
    Category(
        "smartphones",
        "Смартфоны",
        (8000, 95000),
        0.09,
        _BLACK_FRIDAY,
        cross_sell=("phone_accessories", "headphones"),
        kinds=("Смартфон",),
        brands=("Samsung", "Xiaomi", "Apple", "Realme", "HONOR", "Tecno"),
    ),
    Category(
        "phone_accessories",
        "Чехлы и защитные стёкла",
        (290, 2500),
        0.48,
        kinds=(
            "Чехол-книжка",
            "Силиконовый чехол",
            "Защитное стекло",
            "Кабель USB-C",
            "Зарядное устройство",
        ),
        brands=("Deppa", "Red Line", "Borasco", "Baseus"),
    ),
    Category(
        "headphones",
        "Наушники",
        (900, 28000),
        0.24,
        _BLACK_FRIDAY,
        kinds=("Беспроводные наушники", "Проводные наушники", "Полноразмерные наушники"),
        brands=("JBL", "Sony", "Apple", "Xiaomi", "Sennheiser"),
    ),
    Category(
        "laptops",
        "Ноутбуки и планшеты",
        (25000, 160000),
        0.08,
        (0.9, 0.8, 0.9, 0.9, 0.9, 0.9, 1.0, 1.6, 1.5, 0.9, 1.3, 1.3),
        cross_sell=("pc_accessories",),
        kinds=("Ноутбук", "Планшет"),
        brands=("Lenovo", "ASUS", "HUAWEI", "Acer", "Apple", "HP"),
    ),
    Category(
        "pc_accessories",
        "Компьютерные аксессуары",
        (450, 9000),
        0.35,
        _SCHOOL,
        kinds=("Мышь", "Клавиатура", "Сумка для ноутбука", "Веб-камера", "Флеш-накопитель 64 ГБ"),
        brands=("Logitech", "A4Tech", "Defender", "SVEN"),
    ),
    Category(
        "tv",
        "Телевизоры",
        (14000, 130000),
        0.10,
        (1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.9, 1.0, 1.1, 1.5, 1.6),
        cross_sell=("pc_accessories",),
        kinds=('Телевизор 43"', 'Телевизор 55"', 'Телевизор 65"'),
        brands=("Samsung", "LG", "Haier", "TCL", "Hisense"),
    ),
    Category(
        "big_appliances",
        "Крупная бытовая техника",
        (22000, 95000),
        0.12,
        (0.9, 0.9, 1.0, 1.0, 1.1, 1.2, 1.2, 1.0, 0.9, 0.9, 1.3, 1.0),
        cross_sell=("household_chemicals",),
        kinds=("Холодильник", "Стиральная машина", "Посудомоечная машина", "Варочная панель"),
        brands=("Bosch", "Indesit", "Haier", "Атлант", "Beko"),
    ),
    Category(
        "small_appliances",
        "Мелкая бытовая техника",
        (1200, 18000),
        0.22,
        _WINTER_GIFTS,
        cross_sell=("coffee_tea", "kitchen"),
        kinds=("Электрочайник", "Блендер", "Кофемашина", "Пылесос", "Утюг", "Мультиварка"),
        brands=("Polaris", "Redmond", "Philips", "Tefal", "Scarlett"),
    ),
    Category(
        "kitchen",
        "Посуда и кухня",
        (250, 7000),
        0.38,
        kinds=("Сковорода", "Набор кастрюль", "Кружка", "Набор ножей", "Контейнер для еды"),
        brands=("Tefal", "Kukmara", "Attribute", "Home Club"),
    ),
    Category(
        "home_textile",
        "Домашний текстиль",
        (400, 6500),
        0.42,
        _WINTER_GIFTS,
        kinds=("Комплект постельного белья", "Плед", "Полотенце махровое", "Подушка"),
        brands=("Ivanovo", "Togas", "Cleanelly", "Самойловский текстиль"),
    ),
    Category(
        "household_chemicals",
        "Бытовая химия",
        (120, 1200),
        0.30,
        repeat_days=35,
        kinds=("Гель для стирки", "Средство для посуды", "Капсулы для ПММ", "Чистящее средство"),
        brands=("Synergetic", "Fairy", "Persil", "BioMio", "Finish"),
    ),
    Category(
        "cosmetics",
        "Косметика и уход",
        (250, 3500),
        0.45,
        repeat_days=45,
        cross_sell=("perfume",),
        kinds=("Крем для лица", "Шампунь", "Бальзам для волос", "Тушь для ресниц", "Гель для душа"),
        brands=("Natura Siberica", "Nivea", "L'Oreal", "Чистая линия", "Garnier"),
    ),
    Category(
        "perfume",
        "Парфюмерия",
        (1500, 14000),
        0.40,
        (0.8, 1.5, 2.0, 0.8, 0.8, 0.7, 0.7, 0.7, 0.8, 0.9, 1.1, 2.2),
        kinds=("Туалетная вода", "Парфюмерная вода"),
        brands=("Lacoste", "Hugo Boss", "Lanvin", "Zara", "Chanel"),
    ),
    Category(
        "baby",
        "Детские товары",
        (500, 25000),
        0.28,
        cross_sell=("diapers", "toys"),
        kinds=("Коляска", "Автокресло", "Детская бутылочка", "Боди детское"),
        brands=("Chicco", "Happy Baby", "Philips Avent", "Mothercare"),
    ),
    Category(
        "diapers",
        "Подгузники и детская гигиена",
        (600, 2200),
        0.22,
        repeat_days=24,
        kinds=("Подгузники", "Трусики-подгузники", "Влажные салфетки"),
        brands=("Pampers", "Huggies", "Merries", "Lovular"),
    ),
    Category(
        "toys",
        "Игрушки",
        (300, 9000),
        0.40,
        (0.7, 0.7, 0.8, 0.7, 1.0, 1.1, 0.8, 0.8, 0.9, 1.0, 1.3, 3.0),
        kinds=(
            "Конструктор",
            "Кукла",
            "Настольная игра",
            "Мягкая игрушка",
            "Радиоуправляемая машина",
        ),
        brands=("LEGO", "Hasbro", "Играем вместе", "Mattel"),
    ),
    Category(
        "pet",
        "Зоотовары",
        (250, 4500),
        0.25,
        repeat_days=30,
        kinds=(
            "Сухой корм для кошек",
            "Сухой корм для собак",
            "Наполнитель для лотка",
            "Влажный корм",
        ),
        brands=("Purina One", "Royal Canin", "Whiskas", "Pedigree", "Grandorf"),
    ),
    Category(
        "garden_seeds",
        "Семена и рассада",
        (60, 1500),
        0.50,
        _SPRING_GARDEN,
        cross_sell=("garden_tools",),
        kinds=(
            "Семена томатов",
            "Семена огурцов",
            "Грунт универсальный",
            "Удобрение",
            "Рассада клубники",
        ),
        brands=("Гавриш", "СеДеК", "Агроуспех", "Поиск"),
    ),
    Category(
        "garden_tools",
        "Садовый инвентарь и техника",
        (400, 35000),
        0.30,
        _SPRING_GARDEN,
        kinds=("Шланг поливочный", "Секатор", "Газонокосилка", "Триммер", "Лопата"),
        brands=("Gardena", "Fiskars", "PALISAD", "Huter", "Greenworks"),
    ),
    Category(
        "sport",
        "Спорт и отдых",
        (500, 30000),
        0.33,
        _SUMMER,
        kinds=("Велосипед", "Палатка", "Коврик для йоги", "Гантели", "Самокат"),
        brands=("Stern", "Demix", "Outventure", "Forward", "Torneo"),
    ),
    Category(
        "books",
        "Книги",
        (300, 2000),
        0.30,
        (1.1, 0.9, 0.9, 0.8, 0.8, 0.9, 1.0, 1.2, 1.1, 1.0, 1.0, 1.5),
        kinds=("Роман", "Детская книга", "Книга по саморазвитию", "Учебник"),
        brands=("Эксмо", "АСТ", "МИФ", "Азбука"),
    ),
    Category(
        "stationery",
        "Канцтовары",
        (60, 2500),
        0.45,
        _SCHOOL,
        kinds=("Тетрадь 48 листов", "Рюкзак школьный", "Набор ручек", "Пенал"),
        brands=("Brauberg", "Erich Krause", "Hatber", "Альт"),
    ),
    Category(
        "coffee_tea",
        "Кофе и чай",
        (250, 2500),
        0.32,
        (1.2, 1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.8, 0.9, 1.0, 1.1, 1.4),
        repeat_days=28,
        kinds=(
            "Кофе в зёрнах 1 кг",
            "Молотый кофе",
            "Чай чёрный листовой",
            "Капсулы для кофемашины",
        ),
        brands=("Jardin", "Lavazza", "Greenfield", "Ahmad Tea", "Live Coffee"),
    ),
    Category(
        "auto",
        "Автотовары",
        (300, 18000),
        0.30,
        (1.1, 0.9, 1.0, 1.3, 1.1, 0.9, 0.9, 0.9, 1.0, 1.6, 1.5, 1.2),
        kinds=(
            "Видеорегистратор",
            "Автомобильный компрессор",
            "Щётка для снега",
            "Омывающая жидкость",
            "Автомобильное зарядное",
        ),
        brands=("Xiaomi 70mai", "Autoprofi", "Airline", "Неглинка"),
    ),
    Category(
        "new_year",
        "Новогодний декор",
        (150, 6000),
        0.55,
        (0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 2.5, 8.0),
        kinds=(
            "Ёлка искусственная",
            "Гирлянда светодиодная",
            "Набор ёлочных шаров",
            "Новогодняя фигурка",
        ),
        brands=("Царь Елка", "Neon-Night", "Snowmen", "Winter Glade"),
    ),
    Category(
        "gift_sets",
        "Подарочные наборы",
        (700, 6000),
        0.45,
        (0.6, 2.2, 2.6, 0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.8, 1.1, 3.2),
        kinds=(
            "Подарочный набор косметики",
            "Набор чая",
            "Подарочный сертификат",
            "Набор сладостей",
        ),
        brands=("Подарок", "Ситимикс", "Сладкая сказка", "Gift Box"),
    ),
)
CATEGORY_CODES: tuple[str, ...] = tuple(c.code for c in CATEGORIES)
N_CAT = len(CATEGORIES)

#: segments and the categories they favour (used to draw per-person preference vectors)
SEGMENTS: dict[str, tuple[str, ...]] = {
    "tech": ("smartphones", "phone_accessories", "headphones", "laptops", "pc_accessories", "tv"),
    "family": ("baby", "diapers", "toys", "kitchen", "household_chemicals", "books", "stationery"),
    "home": (
        "big_appliances",
        "small_appliances",
        "kitchen",
        "home_textile",
        "household_chemicals",
        "new_year",
    ),
    "garden": ("garden_seeds", "garden_tools", "auto", "household_chemicals", "kitchen"),
    "beauty": ("cosmetics", "perfume", "gift_sets", "home_textile", "coffee_tea"),
    "pet_coffee": ("pet", "coffee_tea", "household_chemicals", "books"),
    "active": ("sport", "auto", "headphones", "smartphones", "coffee_tea"),
}
SEGMENT_NAMES: tuple[str, ...] = tuple(SEGMENTS)


def category_index(code: str) -> int:
    """The position of the category ``code`` in ``CATEGORY_CODES``."""
    return CATEGORY_CODES.index(code)


def seasonality_matrix() -> np.ndarray:
    """``(12, n_categories)`` monthly multipliers, each category normalised to mean 1."""
    m = np.array([c.season for c in CATEGORIES], dtype=np.float64).T
    return m / m.mean(axis=0, keepdims=True)


def cross_sell_matrix() -> np.ndarray:
    """``(n_categories, n_categories)`` row-stochastic follow-up category probabilities."""
    m = np.zeros((N_CAT, N_CAT))
    for i, c in enumerate(CATEGORIES):
        for j, code in enumerate(c.cross_sell):
            m[i, category_index(code)] = 1.0 / (j + 1)
    s = m.sum(axis=1, keepdims=True)
    return np.divide(m, s, out=np.zeros_like(m), where=s > 0)


_VARIANTS = ("", " Pro", " Lite", " Max", " Plus", " Mini", " 2", " 3", " S", " X")


def build_products(rng: np.random.Generator, per_category: int = 16) -> pd.DataFrame:
    """About ``per_category`` SKUs per category with Russian names, prices and margins."""
    rows = []
    for ci, cat in enumerate(CATEGORIES):
        names: set[str] = set()
        tries = 0
        while len(names) < per_category and tries < 500:
            tries += 1
            kind = cat.kinds[rng.integers(len(cat.kinds))]
            brand = cat.brands[rng.integers(len(cat.brands))]
            variant = _VARIANTS[rng.integers(len(_VARIANTS))]
            names.add(f"{kind} {brand}{variant}")
        lo, hi = cat.price
        for name in sorted(names):
            price = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            price = round(price / 10) * 10 - 1 if price > 100 else round(price) - 0.01
            margin = float(np.clip(rng.normal(cat.margin, 0.04), 0.03, 0.7))
            rows.append((cat.code, cat.name, name, round(price, 2), round(margin, 3), ci))
    df = pd.DataFrame(rows, columns=["category", "category_name", "name", "price", "margin", "_ci"])
    df.insert(0, "sku", [f"SKU{100001 + i}" for i in range(len(df))])
    # popularity inside a category: Zipf-like weights over a random order
    pop = np.empty(len(df))
    for ci in range(N_CAT):
        idx = np.flatnonzero(df["_ci"].to_numpy() == ci)
        ranks = rng.permutation(len(idx)) + 1
        w = 1.0 / ranks**0.9
        pop[idx] = w / w.sum()
    df["_popularity"] = pop
    return df
