"""The data a fresh ERP starts with: one user, products 1-200, worksheets 1-999.

Generated, not random, so a given number always names the same product or customer.
"""

from werkzeug.security import generate_password_hash

USERS = (("admin", "admin"),)

OPEN_WORKSHEETS = range(1, 900)  # 1-899 take new lines
CLOSED_WORKSHEETS = range(900, 1000)  # 900-999 are invoiced
PRODUCTS = range(1, 201)

# The first products are the oils the pumps dispense; 10 is the classic 5W-30.
_OILS = (
    "Motor oil 0W-16", "Motor oil 0W-20", "Motor oil 0W-30", "Motor oil 0W-40",
    "Motor oil 5W-20", "Motor oil 5W-30 LL", "Motor oil 5W-30 C2", "Motor oil 5W-30 C3",
    "Motor oil 5W-40", "Motor oil 5W-30", "Motor oil 10W-30", "Motor oil 10W-40",
    "Motor oil 10W-60", "Motor oil 15W-40", "Motor oil 20W-50", "Gear oil 75W-80",
    "Gear oil 75W-90", "Gear oil 80W-90", "Automatic transmission fluid", "Hydraulic oil HV 46",
)
_PARTS = (
    "Oil filter", "Air filter", "Cabin filter", "Fuel filter", "Brake pads front",
    "Brake pads rear", "Brake disc", "Wiper blade", "Spark plug", "V-belt",
)
_BRANDS = ("Bosch", "Mann", "Mahle", "Febi", "Valeo", "NGK", "Brembo", "Gates", "SKF")
_CUSTOMERS = (
    "Benny's Auto", "Hansen Transport", "Maria Olsen", "Nordic Taxi", "Peter Jensen",
    "Greenfield Farms", "City Bakery", "Lund & Sons", "Anna Berg", "Ole Kristensen",
    "Fjord Logistics", "Karin Holm",
)
_VEHICLES = (
    "VW Golf", "Toyota Corolla", "Ford Transit", "Skoda Octavia", "Volvo V60",
    "Mercedes Sprinter", "Tesla Model 3", "Peugeot 308", "Scania R450", "Massey Ferguson 5713",
)


def product_name(nr):
    """Name of product ``nr`` (1-200)."""
    if nr <= len(_OILS):
        return f"{_OILS[nr - 1]} (litre)"
    if nr <= 30:
        return ("Coolant G12 (litre)", "Brake fluid DOT 4 (litre)", "Washer fluid (litre)",
                "AdBlue (litre)", "Grease (kg)", "Power steering fluid (litre)",
                "Engine flush (bottle)", "Oil drain plug gasket", "Workshop labour (hour)",
                "Disposal of waste oil (litre)")[nr - 21]
    part = _PARTS[nr % len(_PARTS)]
    brand = _BRANDS[nr % len(_BRANDS)]
    return f"{part} {brand} {nr:04d}"


def worksheet_row(number):
    """``(number, customer, vehicle, status)`` of seeded worksheet ``number``."""
    customer = _CUSTOMERS[number * 7 % len(_CUSTOMERS)]
    plate = f"{chr(65 + number % 26)}{chr(65 + number // 26 % 26)} {10000 + number * 37 % 90000}"
    vehicle = f"{_VEHICLES[number * 3 % len(_VEHICLES)]} ({plate})"
    status = "closed" if number in CLOSED_WORKSHEETS else "open"
    return number, customer, vehicle, status


def add_users(db, users):
    """Create (or reset the password of) each ``(username, password)``. The caller commits."""
    db.executemany(
        "INSERT OR REPLACE INTO users (username, password_hash) VALUES (?, ?)",
        # Hashed, but cheaply: tests log in all the time and nothing here is secret.
        [(name, generate_password_hash(password, method="pbkdf2:sha256:1000"))
         for name, password in users],
    )


def seed(db):
    """Fill an empty database. The caller commits."""
    add_users(db, USERS)
    db.executemany(
        "INSERT INTO products (nr, name) VALUES (?, ?)",
        [(nr, product_name(nr)) for nr in PRODUCTS],
    )
    db.executemany(
        "INSERT INTO worksheets (number, customer, vehicle, status) VALUES (?, ?, ?, ?)",
        [worksheet_row(n) for n in (*OPEN_WORKSHEETS, *CLOSED_WORKSHEETS)],
    )
