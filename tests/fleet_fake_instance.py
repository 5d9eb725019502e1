"""A hand-written stand-in for api.py, for the fleet's unit tests only.

``python tests/fleet_fake_instance.py PORT WORKSHOP`` answers /alive, /start_worker,
/stop_worker, /probe (it finds a changed screen) and /kill like an instance does (same JSON, same Bearer token from
API_TOKEN), exits 0 on SIGTERM and after /kill. ``FAKE_HANG_ALIVE=1`` makes /alive hang,
to show that one hung instance does not slow the overview. No queue, no ERP.
"""

import json
import os
import signal
import sys
import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def build(workshop, token, server_box):
    state = {"worker": "running"}

    @Request.application
    def app(request):
        def answer(data, status=200):
            return Response(json.dumps(data, ensure_ascii=False), status, mimetype="application/json")

        if request.path == "/alive" and request.method == "GET":
            if os.environ.get("FAKE_HANG_ALIVE"):
                time.sleep(30)
            return answer({"api": "running", "worker": state["worker"], "workshop": workshop,
                           "queue_length": 0, "last_success": None, "last_error": None,
                           "erp": state.get("erp")})
        if request.headers.get("Authorization") != f"Bearer {token}":
            return answer({"error": "UNAUTHORIZED"}, 401)
        if request.method != "PUT":
            return answer({"error": "METHOD_NOT_ALLOWED"}, 405)
        if request.path == "/start_worker":
            state["worker"] = "running"
            return answer({"worker": "running"})
        if request.path == "/stop_worker":
            state["worker"] = "stopped"
            return answer({"worker": "stopped"})
        if request.path == "/probe":  # a probe that finds the line form changed
            if state["worker"] != "running":
                return answer({"error": "probe_not_run", "message": "the worker is stopped: "
                               "start it (PUT /start_worker) to probe"}, 409)
            state["erp"] = {"state": "changed", "detail": "line form: no field 'product_nr'",
                            "checked": ["login", "worksheet"], "held": True}
            return answer(state["erp"])
        if request.path == "/kill":
            threading.Timer(0.2, lambda: server_box[0].shutdown()).start()
            return answer({"api": "stopping", "worker": state["worker"]})
        return answer({"error": "NOT_FOUND"}, 404)

    return app


def main():
    port, workshop = int(sys.argv[1]), sys.argv[2]
    box = []
    server = make_server("127.0.0.1", port, build(workshop, os.environ["API_TOKEN"], box), threaded=True)
    box.append(server)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
