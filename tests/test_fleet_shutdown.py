"""fleet/shutdown.py: supervisord's stop signals a priority level at once, the next level
once it has stopped -- with fakes, and in a real supervisord with the plugin loaded."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from supervisor.states import ProcessStates, SupervisorStates

from fleet import shutdown

ROOT = Path(__file__).resolve().parent.parent


class FakeProcess:
    def __init__(self, name, priority, state=ProcessStates.RUNNING):
        self.name, self.state = name, state
        self.config = type("Config", (), {"priority": priority})()
        self.calls = []

    def get_state(self):
        return self.state

    def stop(self):
        self.calls.append("stop")
        self.state = ProcessStates.STOPPING

    def give_up(self):
        self.calls.append("give_up")
        self.state = ProcessStates.FATAL


class FakeSupervisord:
    def __init__(self, processes, mood=SupervisorStates.SHUTDOWN):
        self.options = type("Options", (), {"mood": mood})()
        self.process_groups = {p.name: type("Group", (), {"processes": {p.name: p}})()
                               for p in processes}


def test_the_highest_level_is_signalled_at_once_and_the_next_only_after_it():
    instances = [FakeProcess(f"bridge-{i}", 999) for i in range(5)]
    grid = FakeProcess("grid", 100)
    backoff = FakeProcess("bridge-backoff", 999, ProcessStates.BACKOFF)
    supervisord = FakeSupervisord([grid, *instances, backoff])
    stop = shutdown.StopByLevel(supervisord)
    stop.on_stopping(None)
    assert all(p.calls == ["stop"] for p in instances)
    assert backoff.calls == ["give_up"] and grid.calls == []
    for p in instances[:-1]:
        p.state = ProcessStates.STOPPED
        stop.on_process_state(None)
    assert grid.calls == []  # one instance is still stopping
    instances[-1].state = ProcessStates.EXITED
    stop.on_process_state(None)
    assert grid.calls == ["stop"]
    assert all(p.calls == ["stop"] for p in instances)  # each signalled once


def test_nothing_is_stopped_while_supervisord_runs():
    instance = FakeProcess("bridge-a", 999)
    stop = shutdown.StopByLevel(FakeSupervisord([instance], mood=SupervisorStates.RUNNING))
    stop.on_process_state(None)  # an instance restarted by hand, say
    assert instance.calls == []


PROGRAM = textwrap.dedent("""
    import os, signal, sys, time
    name, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def done(suffix):
        return sum(1 for f in os.listdir(folder) if f.startswith("bridge-") and f.endswith(suffix))

    def term(*_):
        open(os.path.join(folder, name + ".term"), "w").close()
        if name == "grid":
            seen = done(".exited")
        else:
            # an instance that is not signalled with the others waits here in vain
            deadline = time.monotonic() + 4
            while done(".term") < count and time.monotonic() < deadline:
                time.sleep(0.05)
            seen = done(".term")
        with open(os.path.join(folder, name + ".seen"), "w") as f:
            f.write(str(seen))
        open(os.path.join(folder, name + ".exited"), "w").close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, term)
    open(os.path.join(folder, name + ".up"), "w").close()
    while True:
        time.sleep(1)
""")


def test_a_real_supervisord_stops_the_instances_together_then_the_grid(tmp_path):
    count = 5
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    sections = []
    for name, priority in [("grid", 100)] + [(f"bridge-{i}", 999) for i in range(count)]:
        sections.append(textwrap.dedent(f"""
            [program:{name}]
            command={sys.executable} {script} {name} {marks} {count}
            priority={priority}
            startsecs=0
            stopwaitsecs=30
            stdout_logfile={tmp_path}/{name}.log
            redirect_stderr=true
            """))
    conf = tmp_path / "supervisord.conf"
    conf.write_text(textwrap.dedent(f"""
        [unix_http_server]
        file={tmp_path}/s.sock

        [supervisord]
        nodaemon=true
        logfile={tmp_path}/supervisord.log
        pidfile={tmp_path}/supervisord.pid

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [rpcinterface:fleet]
        supervisor.rpcinterface_factory = fleet.shutdown:make_rpcinterface
        """) + "".join(sections))
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while len(list(marks.glob("*.up"))) < count + 1:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the programs did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen = {p.stem: int(p.read_text()) for p in marks.glob("*.seen")}
    # every instance saw all of them signalled; the Grid saw all of them gone
    assert seen == {**{f"bridge-{i}": count for i in range(count)}, "grid": count}, seen
