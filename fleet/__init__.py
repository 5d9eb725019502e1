"""The fleet: every workshop's instance, configured, supervised and watched.

* :mod:`fleet.registry` -- which integrations exist (SQLite, secrets encrypted).
* :mod:`fleet.supervisor_conf` -- supervisord configuration generated from the registry.
* :mod:`fleet.supervisor_client` -- supervisord's XML-RPC interface.
* :mod:`fleet.instances` -- the instances' own HTTP endpoints.
* :mod:`fleet.control` -- the operations, shared by ``manage.py`` and the management API.
* :mod:`fleet.management` -- the management API and the health overview page.
"""
