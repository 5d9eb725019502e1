"""The app factory."""

from flask import Flask, render_template

from erp_sim import auth, db, sim_api, worksheets
from erp_sim.config import SimConfig


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
    auth.init_app(app)
    app.register_blueprint(worksheets.bp)
    app.register_blueprint(sim_api.bp)
    app.register_error_handler(404, _error_page)
    app.register_error_handler(405, _error_page)
    app.register_error_handler(500, _error_page)
    return app


def _error_page(error):
    # One recognisable page for every HTTP error, as a real ERP (or its proxy) has.
    code = getattr(error, "code", 500) or 500
    name = getattr(error, "name", "Internal Server Error")
    return render_template("error.html", code=code, name=name), code
