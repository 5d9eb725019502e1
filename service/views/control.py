"""The management side's endpoints: health, queue, worker control and shutdown."""

from flask import Blueprint, current_app, jsonify

bp = Blueprint("control", __name__)


def _instance():
    return current_app.extensions["service"]


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
    resumed = worker.resume()  # orders held for a changed ERP screen: worked again
    return jsonify({"worker_before": before, "worker_after": worker.state, "resumed": resumed})


@bp.put("/probe")
def probe():
    """Check the ERP's screens now (workers/probing.py); answers the result. With the
    worker stopped there is no probe (the integration is the worker's): 409 and the
    last state."""
    worker = _instance().worker
    result = worker.ask_probe()
    if result is None:
        last = worker.erp.snapshot()
        why = ("the worker is stopped: start it (PUT /start_worker) to probe" if not
               worker.running else "the worker did not answer in time")
        return jsonify({"error": "probe_not_run", "message": why, "erp": last}), 409
    return jsonify(result)


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
    # is carried out by whoever runs the server, see service.server.
    current_app.config["REQUEST_SHUTDOWN"]()
    current_app.logger.warning("kill requested: shutting down")
    return jsonify({"was_running": True, "worker_was_running": worker_was_running,
                    "message": "shutting down"})
