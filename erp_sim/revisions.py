"""UI revisions: the same ERP after a vendor update of its screens (issue 27).

Revision 1 is the ERP as it always was; its pages are never touched here, so they stay
byte for byte what they were. Revision 2 moves and renames what an integration relies
on, as a vendor update does, in both flavours:

* the add-line form's product field is another field (classic: ``name=article_nr``
  instead of ``product_nr``; SPA: ``input#article-search`` instead of
  ``#product-search``) and its submit button another button (``button#save-line``
  instead of ``#add-line-submit``);
* the lines table has its columns in another order, with a column more (a unit):
  text, amount, unit, product number, product name, line id -- the cells keep their
  classes, so only a check of the table's shape sees it.

It is made by editing each HTML page on its way out (:func:`rewrite`), the way the
issue's own check alters the pages on their way to the browser; the server takes the
renamed field in revision 2 (:func:`line_form`), so a person can still add a line.
The revision is ``SimConfig.ui_revision`` at start (``--ui-revision``,
``ERP_SIM_UI_REVISION``) and can be switched while the ERP runs
(``PUT /_sim/ui_revision``), so a test changes the screens under a running bridge and
changes them back.
"""

import re

from flask import current_app

from erp_sim.config import REVISIONS

_CELLS = (r'<td class="line-id">(?P<id>[^<]*)</td><td class="product-nr">(?P<nr>[^<]*)</td>'
          r'<td class="product-name">(?P<name>[^<]*)</td><td class="amount">(?P<amount>[^<]*)'
          r'</td><td class="text">(?P<text>[^<]*)</td>')
_SPA_CELLS = (r"(?P<id>el\('td', \{'class': 'line-id'\}, \[id\]\),)\s*"
              r"(?P<nr>el\('td', \{'class': 'product-nr'\}, \[String\(line.product_nr\)\]\),)\s*"
              r"(?P<name>el\('td', \{'class': 'product-name'\}, \[line.product_name\]\),)\s*"
              r"(?P<amount>el\('td', \{'class': 'amount'\}, \[line.amount\]\),)\s*"
              r"(?P<text>el\('td', \{'class': 'text'\}, \[line.text\]\),)")

#: revision 2's edits of each flavour's pages: (pattern, replacement); every one must
#: apply to the pages it is meant for (tests/test_erp_sim_revisions.py checks it)
EDITS = {
    "classic": (
        (r'(name|id|for)="product_nr"', r'\1="article_nr"'),
        (r'id="add-line-submit"', 'id="save-line"'),
        (r"<thead><tr><th>Line</th><th>Product nr</th><th>Product</th><th>Amount</th>"
         r"<th>Text</th>",
         "<thead><tr><th>Text</th><th>Qty</th><th>Unit</th><th>Article</th>"
         "<th>Description</th><th>#</th>"),
        (_CELLS, r'<td class="text">\g<text></td><td class="amount">\g<amount></td>'
                 r'<td class="unit">pcs</td><td class="product-nr">\g<nr></td>'
                 r'<td class="product-name">\g<name></td><td class="line-id">\g<id></td>'),
    ),
    "spa": (
        (r"product-search", "article-search"),
        (r"\{id: 'add-line-submit', type: 'submit'", "{id: 'save-line', type: 'submit'"),
        (r"\['Line', 'Product nr', 'Product', 'Amount', 'Text'\]",
         "['Text', 'Qty', 'Unit', 'Article', 'Description', '#']"),
        (_SPA_CELLS, r"\g<text> \g<amount> el('td', {'class': 'unit'}, ['pcs']), \g<nr> "
                     r"\g<name> \g<id>"),
    ),
}
_COMPILED = {flavor: tuple((re.compile(pattern), replacement)
                           for pattern, replacement in edits)
             for flavor, edits in EDITS.items()}
#: revision 2's name of the classic add-line form's product field
ARTICLE_FIELD = "article_nr"


def current():
    """The revision the ERP shows now."""
    return current_app.config["UI_REVISION"]


def switch(revision):
    """Show ``revision`` from the next page on. :raises ValueError: for no such revision"""
    if revision not in REVISIONS:
        raise ValueError(f"revision must be one of {', '.join(map(str, REVISIONS))}")
    current_app.config["UI_REVISION"] = revision


def edit(body, flavor):
    """``body`` (a page's HTML) as revision 2 of ``flavor`` shows it."""
    for pattern, replacement in _COMPILED[flavor]:
        body = pattern.sub(replacement, body)
    return body


def rewrite(response):
    """An HTML page of revision 1 as the current revision shows it (revision 1: as it is)."""
    if current() == 1 or response.mimetype != "text/html" or response.direct_passthrough:
        return response
    response.set_data(edit(response.get_data(as_text=True), current_app.config["ERP_SIM"].flavor))
    return response


def line_form(form):
    """A classic add-line post's fields as the rules of :mod:`erp_sim.worksheets` take
    them: revision 2's form sends the product as :data:`ARTICLE_FIELD`."""
    if current() == 1:
        return form
    return {"product_nr": form.get(ARTICLE_FIELD, ""), "amount": form.get("amount", ""),
            "text": form.get("text", "")}


def init_app(app):
    app.config["UI_REVISION"] = app.config["ERP_SIM"].ui_revision
    app.after_request(rewrite)
