"""Byte-compile the project's own modules before ``manage.py up`` starts the fleet.

Every instance imports the same ~40 modules of ``core``, ``orders``, ``service``, ``integrations`` and
``workers``. Where Python may not write its bytecode cache (``PYTHONDONTWRITEBYTECODE``,
set on our build machines and common in containers, or a tree the fleet's user cannot
write), each instance compiled all of them from source at every start: measured, one
instance's start to ``/alive`` took 0.39 CPU-s without the cache and 0.30 with it, and
200 instances start at once on 2 cores. So ``up`` compiles them once with the fleet's own
interpreter (``compileall`` writes even under ``PYTHONDONTWRITEBYTECODE``; it skips what
is already up to date). A tree it cannot write is not an error: the fleet starts all the
same, only slower, and ``up`` says so in one line.
"""

import subprocess

#: what instances, the Grid's launcher and the management API import, relative to ROOT
SOURCES = ("api.py", "manage.py", "core", "orders", "service", "integrations", "workers", "fleet")


def compile_sources(python, root, sources=SOURCES, timeout=120):
    """Compile ``sources`` (files and folders under ``root``) with ``python``.

    :returns: None when done, else a one-line reason (nothing is raised: a fleet whose
        code cannot be compiled ahead still runs)
    """
    try:
        done = subprocess.run([python, "-m", "compileall", "-q", "-q", *sources], cwd=str(root),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot run {python} -m compileall: {e}"
    if done.returncode != 0:
        return f"{python} -m compileall could not write every module's bytecode under {root}"
    return None
