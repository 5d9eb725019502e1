"""The management side's endpoints: health, queue, worker control and shutdown."""

from flask import Blueprint, current_app, jsonify

bp = Blueprint("control", __name__)


def _instance():
    return current_app.extensions["bridge"]


@bp.get("/alive")
def alive():
    return jsonify(_instance().alive())


@bp.get("/queue")
def queue():
    tasks = _instance().store.active()
    return jsonify({"length": len(tasks), "tasks": tasks})


@bp.put("/clear_queue")
def clear_queue():
    cleared = _instance().clear_queue()
    current_app.logger.warning("clear_queue: %d order(s) cleared", len(cleared))
    return jsonify({"cleared": len(cleared), "uniqueids": cleared})


@bp.put("/start_worker")
def start_worker():
    worker = _instance().worker
    before = worker.state
    worker.start()
    return jsonify({"worker_before": before, "worker_after": worker.state})


@bp.put("/stop_worker")
def stop_worker():
    worker = _instance().worker
    before = worker.state
    worker.stop()  # graceful: returns once the order in hand is finished or released
    return jsonify({"worker_before": before, "worker_after": worker.state})


@bp.put("/kill")
def kill():
    instance = _instance()
    worker_was_running = instance.worker.running
    # The answer goes out first; the shutdown (worker drained, files closed, exit 0)
    # is carried out by whoever runs the server, see bridge.server.
    current_app.config["REQUEST_SHUTDOWN"]()
    current_app.logger.warning("kill requested: shutting down")
    return jsonify({"was_running": True, "worker_was_running": worker_was_running,
                    "message": "shutting down"})
