"""Make a language the admin's preference, as Tryton's own Preferences dialog would.

Runs **inside Tryton's own virtualenv** (``python -m erp_tryton.language CONF DATABASE
CODE``), after ``trytond-admin -l CODE`` has loaded the language's translations: it
writes ``res.user.language`` of ``admin`` (what ``model.res.user.set_preferences
[{"language": CODE}]`` does over JSON-RPC). sao reads it at the next login and draws every
label, tab, dialog and number in that language.
"""

import sys


def main(argv=None):
    """``python -m erp_tryton.language CONFIG_FILE DATABASE CODE``"""
    config_file, database, code = argv or sys.argv[1:]
    from erp_tryton.seed import open_pool
    pool = open_pool(config_file, database)
    from trytond.transaction import Transaction
    with Transaction().start(database, 0) as transaction:
        Lang, User = pool.get("ir.lang"), pool.get("res.user")
        # trytond-admin -l made it translatable; a code it does not know finds nothing.
        lang, = Lang.search([("code", "=", code), ("translatable", "=", True)])
        User.write(User.search([("login", "=", "admin")]), {"language": lang.id})
        transaction.commit()


if __name__ == "__main__":
    main()
