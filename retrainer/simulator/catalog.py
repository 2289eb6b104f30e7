"""The simulated world's vocabulary: expense categories, merchants, currencies, customer traits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """An expense category with its typical amount (median, log-spread) and where it is spent."""

    name: str
    median: float
    spread: float
    merchants: tuple[str, ...]
    descriptions: tuple[str, ...]
    travel: bool = False
    whole_units: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category(
        "travel",
        220.0,
        0.6,
        ("SkyWays Airlines", "EuroRail", "Northern Air", "Coastline Trains", "BlueJet"),
        ("Flight to client site", "Train ticket", "Return flight", "Seat upgrade"),
        travel=True,
    ),
    Category(
        "lodging",
        160.0,
        0.45,
        ("Grand Plaza Hotel", "CityStay Inn", "Harbor View Suites", "Parkside Hotel"),
        ("Hotel, 1 night", "Hotel stay for conference", "Hotel, 2 nights"),
        travel=True,
    ),
    Category(
        "meals",
        35.0,
        0.6,
        ("Trattoria Roma", "Green Bowl Cafe", "Sushi Corner", "Main Street Diner", "Le Bistro"),
        ("Lunch", "Dinner while travelling", "Team lunch", "Breakfast"),
        travel=True,
    ),
    Category(
        "ground_transport",
        28.0,
        0.55,
        ("CityCab", "RideNow", "Metro Transit", "AirportShuttle Co", "QuickTaxi"),
        ("Taxi to airport", "Taxi to client", "Metro card", "Shuttle"),
        travel=True,
    ),
    Category(
        "office_supplies",
        45.0,
        0.8,
        ("OfficeMart", "PaperPlus", "DeskDepot", "InkWorks"),
        ("Printer paper", "Toner", "Notebooks and pens", "Desk lamp"),
    ),
    Category(
        "software",
        60.0,
        0.9,
        ("CloudSoft Subscriptions", "DevTools Inc", "AppStore Business", "SaaSly"),
        ("Monthly subscription", "Licence renewal", "Plugin licence"),
    ),
    Category(
        "training",
        300.0,
        0.5,
        ("SkillUp Academy", "TechConf Registrations", "LearnPro", "Business School Online"),
        ("Conference ticket", "Online course", "Certification exam", "Workshop fee"),
        whole_units=True,
    ),
    Category(
        "client_entertainment",
        180.0,
        0.6,
        ("The Oak Steakhouse", "Skyline Lounge", "Vineyard Restaurant", "Theatre Box Office"),
        ("Client dinner", "Drinks with prospect", "Event tickets for client"),
    ),
    Category(
        "fuel",
        60.0,
        0.35,
        ("FuelStop", "GreenGas", "Highway Petrol"),
        ("Fuel, rental car", "Fuel, field visit", "Fuel"),
    ),
    Category(
        "telecom",
        40.0,
        0.4,
        ("TeleNet Mobile", "RoamAway Data", "FiberCom"),
        ("Mobile plan", "Roaming data pack", "Home internet share"),
    ),
)

CATEGORY_INDEX = {category.name: i for i, category in enumerate(CATEGORIES)}

PERSONAL_MERCHANTS: tuple[str, ...] = (
    "Luxe Jewellers",
    "GadgetWorld Electronics",
    "Lucky Star Casino",
    "Bella Day Spa",
    "FunPark Tickets",
    "Fashion Avenue Boutique",
)
"""Where no legitimate business expense is ever bought; only category-mismatch fraud uses them."""

LARGE_TICKET_CATEGORIES: tuple[int, ...] = tuple(
    CATEGORY_INDEX[name] for name in ("travel", "lodging", "training", "client_entertainment")
)
"""Categories where an amount just under the approval limit looks plausible."""

ROLES: tuple[tuple[str, tuple[float, ...]], ...] = (
    # Dirichlet concentration per category (same order as CATEGORIES): what each role spends on.
    ("sales", (4.0, 4.0, 5.0, 4.0, 0.5, 0.5, 0.5, 4.0, 1.5, 1.5)),
    ("engineering", (1.0, 1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 0.3, 0.3, 1.0)),
    ("field_service", (0.5, 1.5, 3.0, 2.0, 1.0, 0.3, 0.3, 0.2, 6.0, 2.0)),
    ("management", (3.0, 3.0, 3.0, 2.0, 0.5, 1.0, 1.5, 3.0, 0.5, 1.0)),
)

CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP", "CHF", "SEK", "PLN")
HOME_CURRENCY_WEIGHTS: tuple[float, ...] = (0.5, 0.25, 0.15, 0.1, 0.0, 0.0)
UNITS_PER_EUR: tuple[float, ...] = (1.0, 1.08, 0.86, 0.95, 11.3, 4.3)
"""Fixed exchange rates: a line paid abroad is the home-currency amount times this ratio."""

REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")
REGION_RISK: tuple[float, ...] = (-0.1, 0.25, 0.15, -0.15, 0.0)

EMPLOYMENT: tuple[str, ...] = ("employed", "self_employed", "unemployed", "retired", "student")
EMPLOYMENT_WEIGHTS: tuple[float, ...] = (0.68, 0.14, 0.06, 0.07, 0.05)
EMPLOYMENT_MEDIAN_INCOME: tuple[float, ...] = (52_000.0, 60_000.0, 14_000.0, 30_000.0, 11_000.0)
EMPLOYMENT_RISK: tuple[float, ...] = (0.0, 0.3, 1.0, -0.3, 0.4)

PRODUCTS: tuple[str, ...] = ("student", "classic", "gold", "platinum")
PRODUCT_LIMIT_RATIO: tuple[float, ...] = (0.08, 0.15, 0.22, 0.3)
"""Credit limit as a fraction of annual income, per product."""
