"""The app factory."""

from flask import Flask

from erp_sim import auth, chaos, db, request_log, revisions, sim_api, spa, worksheets
from erp_sim.config import SimConfig
from erp_sim.errors import handle_http_error


def create_app(config):
    """Build one stand-in ERP.

    :param config: a :class:`erp_sim.config.SimConfig`
    """
    if not isinstance(config, SimConfig):
        raise TypeError("create_app() takes a SimConfig")
    app = Flask(__name__)
    app.config["ERP_SIM"] = config
    app.config["SECRET_KEY"] = config.secret_key
    app.config["SESSION_COOKIE_NAME"] = "erp_sim_session"
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    db.init_app(app)
    request_log.init_app(app)  # before chaos: it logs the answer chaos leaves
    chaos.init_app(app)
    revisions.init_app(app)  # after chaos: a page is edited, then chaos delays or replaces it
    if config.flavor == "spa":
        spa.init_app(app)
    else:
        auth.init_app(app)
        app.register_blueprint(worksheets.bp)
    app.register_blueprint(sim_api.bp)
    for code in (404, 405, 500):
        app.register_error_handler(code, handle_http_error)
    return app
