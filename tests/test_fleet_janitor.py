"""The parking's janitor (fleet/janitor.py) against a stand-in Grid: a real HTTP server
answering the Grid's status and queue endpoints and recording each session it is told
to end. With a real Grid: tests/test_e2e_grid_pool.py."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet.janitor import sweep
from integrations.browser import parking as parking_module
from integrations.browser.parking import Parking


class StandInGrid:
    def __init__(self):
        self.waiting, self.ended = 0, []
        grid = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/status":
                    value = {"nodes": [{"availability": "UP", "maxSessions": 1,
                                        "slots": [{"session": {"sessionId": "x"}}]}]}
                else:  # /se/grid/newsessionqueue/queue
                    value = [{}] * grid.waiting
                self._answer({"value": value})

            def do_DELETE(self):
                grid.ended.append(self.path.rsplit("/", 1)[1])
                self._answer({"value": None})

            def _answer(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def grid():
    stand_in = StandInGrid()
    yield stand_in
    stand_in.server.shutdown()


def test_nothing_is_quit_while_nobody_waits_in_the_grids_queue(grid, tmp_path):
    parking = Parking(tmp_path)
    parking.park("kept", {})
    assert sweep(parking, grid.url) == 0
    assert grid.ended == [] and parking.parked() == 1


def test_one_parked_session_is_quit_per_request_in_the_grids_queue(grid, tmp_path):
    parking = Parking(tmp_path)
    for name in ("a", "b", "c"):
        parking.park(name, {})
    grid.waiting = 2
    assert sweep(parking, grid.url) == 2
    assert len(grid.ended) == 2 and parking.parked() == 1


def test_stale_parked_sessions_are_quit_and_fresh_ones_left(grid, tmp_path):
    clock = [1_000_000.0]
    parking = Parking(tmp_path, now=lambda: clock[0])
    parking.park("stale", {})
    clock[0] += parking_module.PARK_SECONDS + 1
    parking.park("fresh", {})
    assert sweep(parking, grid.url) == 1
    assert grid.ended == ["stale"] and parking.claim()["session_id"] == "fresh"


def test_each_sweep_publishes_the_grids_state_for_the_instances(grid, tmp_path):
    grid.waiting = 3
    sweep(Parking(tmp_path), grid.url)
    unreachable = "http://127.0.0.1:9"  # what an instance reads comes from the parking
    assert Parking(tmp_path).pool_status(unreachable) == {
        "slots": 1, "in_use": 1, "waiting": 3, "nodes": 1}
    grid.server.shutdown()
    grid.server.server_close()
    sweep(Parking(tmp_path), grid.url)  # the Grid down: published as unknown
    assert Parking(tmp_path).pool_status(unreachable) is None
