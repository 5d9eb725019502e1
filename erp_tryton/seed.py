"""Fill a fresh Tryton database (``sale`` activated) with a workshop's data.

Runs **inside Tryton's own virtualenv** (``python -m erp_tryton.seed CONF DATABASE``), not
the project's: it imports trytond. It talks to the ORM directly rather than through
proteus, because proteus saves record by record and 999 sales are the bulk of the work;
``Model.create`` with lists writes them in a few statements.

What it creates (see erp_tryton/README.md):

* a currency (EUR), a company (the admin user's), customers with an address each;
* the unit *Liter* rounded to 0.001 with 3 digits (the pumps dispense millilitres);
* products whose *Code* is ``1``-``200``, sold per litre, with a list price;
* products whose *Code* is ``201``-``205``, sold per *Unit* (0 decimals: Tryton refuses
  2.5 of them, which is how tests get a real INVALID_AMOUNT);
* products whose *Code* is ``206``-``210``, sold per *Kilogram* with 2 decimals (grease by
  weight: the third number of digits a workshop's units come in, beside 0 and 3);
* sales with *Reference* ``1``-``899`` in draft (open worksheets, no lines) and ``900``-``999``
  quoted (closed worksheets, one line each);
* every module-configuration wizard item marked done, so no wizard pops up at first login.

Generated, not random, so a given code or reference always names the same thing.
"""

import sys
from decimal import Decimal

OPEN_REFERENCES = range(1, 900)
CLOSED_REFERENCES = range(900, 1000)
PRODUCT_CODES = range(1, 201)
UNIT_PRODUCT_CODES = range(201, 206)  # sold per Unit, whole numbers only
KILO_PRODUCT_CODES = range(206, 211)  # sold per Kilogram, 2 decimals
COMPANY = "OilMat Demo Workshop"
CUSTOMERS = ("Benny's Auto", "Hansen Transport", "Maria Olsen", "Nordic Taxi", "Peter Jensen",
             "Greenfield Farms", "City Bakery", "Lund & Sons")
_UNIT_GOODS = ("Oil filter", "Drain plug washer", "Funnel", "Oil can 1 l", "Grease cartridge")
_OILS = ("Motor oil 0W-20", "Motor oil 5W-30", "Motor oil 5W-40", "Motor oil 10W-40",
         "Motor oil 15W-40", "Gear oil 75W-90", "Gear oil 80W-90",
         "Automatic transmission fluid", "Hydraulic oil HV 46", "Coolant G12")


def product_name(code):
    """Name of the product with *Code* ``code`` (1-210)."""
    if code in KILO_PRODUCT_CODES:
        return f"Bulk grease #{code}"
    if code in UNIT_PRODUCT_CODES:
        return f"{_UNIT_GOODS[code - UNIT_PRODUCT_CODES[0]]} #{code}"
    return f"{_OILS[code % len(_OILS)]} #{code}"


def list_price(code):
    """Price per litre of product ``code``: 8.00-27.90, so lines have visible amounts."""
    return Decimal(800 + code * 37 % 2000) / 100


def seed(pool):
    """Create everything, inside the caller's transaction (user 0, which bypasses access)."""
    from trytond.transaction import Transaction
    get = pool.get
    euro, = get("currency.currency").create([{
        "name": "Euro", "code": "EUR", "symbol": "€", "rounding": Decimal("0.01"),
        "digits": 2}])
    Party = get("party.party")
    company_party, *customers = Party.create([
        {"name": name, "addresses": [("create", [{"street": f"Workshop street {i}",
                                                   "postal_code": "1000", "city": "Oiltown"}])]}
        for i, name in enumerate((COMPANY, *CUSTOMERS), 1)])
    company, = get("company.company").create([{"party": company_party.id,
                                              "currency": euro.id}])
    admin, = get("res.user").search([("login", "=", "admin")])
    get("res.user").write([admin], {"companies": [("add", [company.id])],
                                    "company": company.id})
    Item = get("ir.module.config_wizard.item")
    Item.write(Item.search([]), {"state": "done"})
    liter = get("ir.model.data").get_id("product", "uom_liter")
    unit = get("ir.model.data").get_id("product", "uom_unit")  # ships with 0 digits
    kilo = get("ir.model.data").get_id("product", "uom_kilogram")
    Uom = get("product.uom")
    # The product module ships Liter at 0.01; pumps measure to the millilitre.
    Uom.write([Uom(liter)], {"rounding": 0.001, "digits": 3})
    Uom.write([Uom(kilo)], {"rounding": 0.01, "digits": 2})  # the scale's 10 g

    with Transaction().set_context(company=company.id):
        templates = _create(get("product.template"), [
            _template(code, liter) for code in PRODUCT_CODES] + [
            _template(code, unit) for code in UNIT_PRODUCT_CODES] + [
            _template(code, kilo) for code in KILO_PRODUCT_CODES])
        products = {t.products[0].code: t.products[0] for t in templates}
        Sale = get("sale.sale")
        addresses = {c.id: c.addresses[0].id for c in customers}

        def sale(reference, lines=()):
            customer = customers[reference % len(customers)]
            address = addresses[customer.id]
            return {"reference": str(reference), "party": customer.id,
                    "invoice_address": address, "shipment_address": address,
                    "company": company.id, "currency": euro.id,
                    "lines": [("create", list(lines))]}

        _create(Sale, [sale(reference) for reference in OPEN_REFERENCES])
        closed = _create(Sale, [sale(reference, [_line(products, reference)])
                              for reference in CLOSED_REFERENCES])
        Sale.quote(closed)


def _template(code, uom):
    """A salable product template with one variant whose *Code* is ``code``, sold per ``uom``."""
    return {"name": product_name(code), "type": "goods", "default_uom": uom, "salable": True,
            "sale_uom": uom, "list_price": list_price(code),
            "products": [("create", [{"suffix_code": str(code)}])]}


def _create(model, values, chunk=25):
    """``model.create(values)`` in chunks: on SQLite trytond checks an exclusion constraint
    with one nested ``OR`` per new row, and SQLite's parser overflows at about 50 of them."""
    records = []
    for start in range(0, len(values), chunk):
        records.extend(model.create(values[start:start + chunk]))
    return records


def _line(products, reference):
    """The one line a closed sale carries: 4.5 l of an oil, as a pump would have dispensed."""
    code = reference % 20 + 1
    product = products[str(code)]
    return {"type": "line", "product": product.id, "quantity": 4.5,
            "unit": product.sale_uom.id, "unit_price": list_price(code),
            "description": f"OilMat seed-{reference}"}


def open_pool(config_file, database):
    """trytond configured from ``config_file``, ``database`` loaded: its ``Pool``."""
    import trytond.config
    # 8.0 configures through the module's functions, 7.0 through its one parser object.
    (getattr(trytond.config, "update_etc", None)
     or trytond.config.config.update_etc)(config_file)
    from trytond.pool import Pool
    Pool.start()
    pool = Pool(database)
    pool.init()
    return pool


def main(argv=None):
    """``python -m erp_tryton.seed CONFIG_FILE DATABASE``"""
    config_file, database = (argv or sys.argv[1:])
    pool = open_pool(config_file, database)
    from trytond.transaction import Transaction
    with Transaction().start(database, 0) as transaction:
        seed(pool)
        transaction.commit()


if __name__ == "__main__":
    main()
