"""Tryton's virtualenv, the sao web client and a seeded template database, built once and cached.

Standard library only: this runs in whatever Python starts the stand-up (the project's
``.venv``, a bare ``python3`` on a fresh CI machine), and trytond must never land in the
project's virtualenv -- it pins its own dependencies (werkzeug, lxml, ...).

The cache lives outside the work tree, so fresh clones and other checkouts on the same
machine reuse it: ``$ERP_TRYTON_CACHE``, else ``$XDG_CACHE_HOME/oilmat/erp_tryton``, else
``~/.cache/oilmat/erp_tryton``. Inside it, one folder per *build key* (a hash of the pinned
versions, the sao version and the Python version), so a version change builds afresh next
to the old one instead of patching it::

    <cache>/lock                         one builder at a time (flock), others wait
    <cache>/<key>/venv/                  trytond, trytond-sale, proteus (requirements.txt;
                                         requirements-7.0.txt for --series 7.0)
    <cache>/<key>/sao/                   tryton-sao from npm, with its node_modules
    <cache>/<key>/template-<seed>.sqlite the seeded database; <seed> hashes seed.py
    <cache>/<key>/template-<seed>-<lang>.sqlite  the same with a language loaded and made
                                         the admin's preference (built on first use, ~12 s)

Every step builds into a temporary name and renames it into place when it is complete (the
virtualenv, which cannot move, gets a ``.complete`` mark last), so an interrupted build
(Ctrl-C, a lost network) leaves nothing that looks finished.
Measured here (2 cores): virtualenv ~15 s and sao ~20 s (in parallel), template ~30 s.
"""

import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(PACKAGE_DIR)
REQUIREMENTS = os.path.join(PACKAGE_DIR, "requirements.txt")
SEED_SCRIPT = os.path.join(PACKAGE_DIR, "seed.py")
LANGUAGE_SCRIPT = os.path.join(PACKAGE_DIR, "language.py")
SAO_PACKAGE = "tryton-sao@8.0.11"
#: sao 7.0 gets its libraries with bower (its postinstall runs ``bower install``), whose
#: registry this machine cannot reach; the same packages come from npm, in bower.json's
#: ranges, laid out as bower would (``bower_components/<name>``). d3 comes with c3.
SAO_70_LIBRARIES = ("jquery@3", "bootstrap@^3.3.7", "moment@^2.10", "gettext.js@^0.7",
                    "c3@^0.7", "papaparse@^5.0", "fullcalendar@^3.10.2", "mousetrap@^1.6",
                    "bootstrap-rtl-ondemand@^3.3.4-ondemand", "sortablejs@^1.8.4")
#: the Tryton series the stand-up runs: its pinned requirements, the sao of the same series
#: (npm has tryton-sao 7.0.56 and 8.0.11 only, FIELD-NOTES) and, when sao wants bower,
#: its libraries from npm. Each series is built in a folder of its own, side by side.
SERIES = {
    "8.0": (REQUIREMENTS, SAO_PACKAGE, None),
    "7.0": (os.path.join(PACKAGE_DIR, "requirements-7.0.txt"), "tryton-sao@7.0.56",  # LTS
            SAO_70_LIBRARIES),
}
DEFAULT_SERIES = "8.0"
DATABASE = "workshop"
ADMIN_LOGIN = ADMIN_PASSWORD = "admin"
#: English (Tryton's own language, the template's) and every language Tryton ships
#: translations for (``trytond/ir/locale/*.po``: the same 24 in 7.0 and 8.0)
DEFAULT_LANGUAGE = "en"
LANGUAGES = (DEFAULT_LANGUAGE, "bg", "ca", "cs", "de", "es", "es_419", "et", "fa", "fi", "fr",
             "hu", "id", "it", "lo", "lt", "nl", "pl", "pt", "ro", "ru", "sl", "tr", "uk",
             "zh_CN")


def cache_root():
    """The folder every build lives in (see the module docstring)."""
    if os.environ.get("ERP_TRYTON_CACHE"):
        return os.environ["ERP_TRYTON_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "oilmat", "erp_tryton")


def _digest(*parts):
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Build:
    """One cached build of Tryton: where its parts are, and how to make the missing ones.

    :param root: the cache folder (default :func:`cache_root`)
    :param log: a callable taking one line of progress
    :param series: one of :data:`SERIES`
    """

    def __init__(self, root=None, log=print, series=DEFAULT_SERIES):
        self.root = root or cache_root()
        self.series = series
        self.requirements, self.sao_package, self.sao_bower = SERIES[series]
        py = f"{sys.version_info[0]}.{sys.version_info[1]}"
        self.dir = os.path.join(self.root,
                                _digest(_read(self.requirements), self.sao_package, py))
        self.venv = os.path.join(self.dir, "venv")
        self.python = os.path.join(self.venv, "bin", "python")
        self.venv_done = os.path.join(self.venv, ".complete")
        self.sao = os.path.join(self.dir, "sao")
        self.seed_key = _digest(_read(SEED_SCRIPT))
        self.template = os.path.join(self.dir, f"template-{self.seed_key}.sqlite")
        self.log = log

    def template_for(self, language):
        """The seeded template with ``language`` loaded and made the admin's preference
        (English: the template itself)."""
        if language == DEFAULT_LANGUAGE:
            return self.template
        key = _digest(self.seed_key, _read(LANGUAGE_SCRIPT), language)
        return os.path.join(self.dir, f"template-{self.seed_key}-{language}-{key}.sqlite")

    def ready(self, language=DEFAULT_LANGUAGE):
        """Whether everything is built (then :meth:`ensure` returns at once)."""
        return all(os.path.exists(p) for p in (self.venv_done, self.sao, self.template,
                                               self.template_for(language)))

    def ensure(self, language=DEFAULT_LANGUAGE):
        """Build whatever is missing; idempotent, and safe with several processes at once.

        :param language: also the template in this language (one of :data:`LANGUAGES`)
        :returns: ``self``
        :raises subprocess.CalledProcessError: when pip, npm or trytond-admin fails
        """
        if self.ready(language):
            return self
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.root, "lock"), "w") as lock:
            # A second test process starting meanwhile waits here, then finds it all built.
            fcntl.flock(lock, fcntl.LOCK_EX)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                # pip and npm both mostly wait on the network: run them side by side.
                jobs = [pool.submit(self._venv), pool.submit(self._sao)]
                for job in jobs:
                    job.result()
            self._template()
            self._language_template(language)
        return self

    def _venv(self):
        if os.path.exists(self.venv_done):
            return
        with self._step(f"installing trytond into {self.venv}"):
            self._build_venv()

    def _build_venv(self):
        # A virtualenv hard-codes its path in its scripts, so it is built in place (not
        # renamed into place like the rest) and marked complete last.
        shutil.rmtree(self.venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", self.venv])
        _run([self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
              "-r", self.requirements])
        open(self.venv_done, "w").close()

    def _sao(self):
        if os.path.exists(self.sao):
            return
        with self._step(f"installing {self.sao_package} into {self.sao}"), \
                _building(self.sao) as tmp:
            os.mkdir(tmp)
            _run(["npm", "pack", self.sao_package, "--silent", "--pack-destination", tmp], cwd=tmp)
            tarball, = [n for n in os.listdir(tmp) if n.endswith(".tgz")]
            with tarfile.open(os.path.join(tmp, tarball)) as tar:
                # npm's own tarball, but refuse odd paths where Python can (3.11.4+)
                tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter")
                                       else {}))
            os.remove(os.path.join(tmp, tarball))
            package = os.path.join(tmp, "package")
            if self.sao_bower:
                _bower_from_npm(package, self.sao_bower)
            else:
                # index.html loads jQuery & co. from node_modules/; the grunt peer conflict
                # only concerns the dev build, hence --legacy-peer-deps.
                _run(["npm", "install", "--omit=dev", "--legacy-peer-deps", "--no-audit",
                      "--no-fund", "--silent"], cwd=package)
            for name in ("custom.js", "custom.css"):  # optional hooks; missing ones answer 405
                open(os.path.join(package, name), "w").close()
            for name in os.listdir(package):
                os.rename(os.path.join(package, name), os.path.join(tmp, name))
            os.rmdir(package)

    def _template(self):
        if os.path.exists(self.template):
            return
        with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
            config = write_config(tmp, tmp, port=0, sao=self.sao)
            database = os.path.join(tmp, f"{DATABASE}.sqlite")
            open(database, "w").close()  # trytond-admin wants the SQLite file to exist
            password_file = os.path.join(tmp, "password")
            with open(password_file, "w") as f:
                f.write(ADMIN_PASSWORD)
            with self._step("creating a database with the sale module activated"):
                _run([os.path.join(self.venv, "bin", "trytond-admin"), "-c", config,
                      "-d", DATABASE, "-u", "sale", "--activate-dependencies",
                      "--email", "admin@example.com"],
                     env={**os.environ, "TRYTONPASSFILE": password_file})
            with self._step("seeding it"):
                _run([self.python, "-m", "erp_tryton.seed", config, DATABASE],
                     env={**os.environ, "PYTHONPATH": REPO_ROOT})
            os.rename(database, self.template)

    def _language_template(self, language):
        target = self.template_for(language)
        if os.path.exists(target):
            return
        # A copy of the seeded template with the language loaded: seconds, not a rebuild,
        # and cached, so the next stand-up in this language only copies a file.
        with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
            database = os.path.join(tmp, f"{DATABASE}.sqlite")
            shutil.copyfile(self.template, database)
            with self._step(f"loading language {language} into a copy of the template"):
                self.set_language(tmp, language)
            os.rename(database, target)

    def set_language(self, data_dir, language):
        """Load ``language`` into the database in ``data_dir`` with Tryton's own
        ``trytond-admin -l`` and make it the admin's preference (:mod:`erp_tryton.language`).
        """
        config = write_config(data_dir, data_dir, port=0, sao=self.sao)
        if language != DEFAULT_LANGUAGE:  # English is Tryton's own: nothing to load
            _run([os.path.join(self.venv, "bin", "trytond-admin"), "-c", config,
                  "-d", DATABASE, "--all", "-l", language])
        _run([self.python, "-m", "erp_tryton.language", config, DATABASE, language],
             env={**os.environ, "PYTHONPATH": REPO_ROOT})

    @contextlib.contextmanager
    def _step(self, what):
        """Log a build step before and after, with how long it took."""
        self.log(f"erp_tryton: {what} (once)")
        started = time.monotonic()
        yield
        self.log(f"erp_tryton: {what}: done in {time.monotonic() - started:.1f} s")


def _bower_from_npm(package, libraries):
    """Install sao's bower libraries from npm into ``package/bower_components``."""
    side = os.path.join(package, "npm-for-bower")
    os.mkdir(side)
    with open(os.path.join(side, "package.json"), "w") as f:
        f.write('{"name": "sao-libraries", "version": "0.0.0", "private": true}')
    _run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--ignore-scripts",
          "--legacy-peer-deps", *libraries], cwd=side)
    components = os.path.join(package, "bower_components")
    os.rename(os.path.join(side, "node_modules"), components)
    shutil.rmtree(side)
    # Where bower's packages differ from npm's: the name, and d3's file at its root.
    os.rename(os.path.join(components, "sortablejs"), os.path.join(components, "Sortable"))
    shutil.copyfile(os.path.join(components, "d3", "dist", "d3.min.js"),
                    os.path.join(components, "d3", "d3.min.js"))


def write_config(folder, data_dir, port, sao, session_ttl=None):
    """Write ``folder/trytond.conf`` for a database folder and a port; return its path.

    :param data_dir: where ``workshop.sqlite`` is (``[database] path``)
    :param sao: the web client folder trytond serves at ``/`` (``[web] root``)
    :param session_ttl: seconds a login stays valid from the login (``[session] max_age``;
        ``[session] timeout``, an idle limit, guards only the few "fresh session" calls
        such as changing a password, so it would not expire a browser's login)
    """
    lines = ["[database]", "uri = sqlite://", f"path = {data_dir}", "",
             "[web]", f"listen = 127.0.0.1:{port}", f"root = {sao}", ""]
    if session_ttl is not None:
        lines += ["[session]", f"max_age = {session_ttl}", ""]
    path = os.path.join(folder, "trytond.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def install_database(build, data_dir, language=DEFAULT_LANGUAGE):
    """Copy the template (in ``language``) into ``data_dir`` unless a database is there
    already.

    :returns: ``True`` when it copied, ``False`` when it kept what was there
    """
    target = os.path.join(data_dir, f"{DATABASE}.sqlite")
    if os.path.exists(target):
        return False
    os.makedirs(data_dir, exist_ok=True)
    with _building(target) as tmp:
        shutil.copyfile(build.template_for(language), tmp)
    return True


@contextlib.contextmanager
def _building(path):
    """Yield a temporary name next to ``path``; rename it to ``path`` when the block succeeds."""
    tmp = f"{path}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        os.rename(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def _run(command, **kwargs):
    """Run a build step; its output goes to our stderr so a failure shows why."""
    subprocess.run(command, check=True, stdout=sys.stderr, **kwargs)
