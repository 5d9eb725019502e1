"""The fleet's HTTPS front door: nginx on ``PUBLIC_PORT``, one public entry for the fleet.

``/w/<slug>/...`` goes to that workshop's instance with the prefix taken off,
``/manage/...`` to the management API and the overview page. nginx (Debian's package)
runs as the supervisord program ``nginx``; its configuration is written under
``SUPERVISOR_DIR/nginx/``:

    nginx.conf    from supervisor/nginx.conf.in: TLS, limits, logs, the two locations
    routes.conf   slug -> port of every integration, rewritten by every change and loaded
                  with a reload (SIGHUP), never a restart: nginx's old workers answer the
                  requests they hold while new ones take the new connections
    nginx.pid, tmp/

Without ``TLS_CERT``/``TLS_KEY`` a self-signed certificate is made once, in
``SUPERVISOR_DIR/tls/`` (with the ``cryptography`` package the fleet already uses), and
kept: clients pin it with ``--cacert``.
"""

import datetime
import grp
import ipaddress
import os
import pwd
import re
import socket
import subprocess
from pathlib import Path

from core.errors import ConfigError
from fleet.files import write_private
from fleet.instances import PROBE_TIMEOUT_SECONDS
from fleet.settings import ROOT

TEMPLATES = ROOT / "supervisor"

#: the supervisord program
PROGRAM = "nginx"

_FIELD = re.compile(r"@([a-z_]+)@")


def runs_front_door(settings):
    return settings.public_port is not None


def nginx_dir(settings):
    return Path(settings.supervisor_dir) / "nginx"


def self_signed_paths(settings):
    """:returns: ``(cert, key)`` of the certificate made when no ``TLS_CERT`` is given"""
    tls = Path(settings.supervisor_dir) / "tls"
    return tls / "cert.pem", tls / "key.pem"


def certificate(settings, make=False):
    """:param make: make the self-signed certificate if there is none (``up`` does)
    :returns: ``(cert, key, note)``: the PEM files nginx serves, and one line for ``up``
        to say when they are a self-signed certificate (made now or earlier), else None"""
    if settings.tls_cert is not None:
        return settings.tls_cert, settings.tls_key, None
    cert, key = self_signed_paths(settings)
    made = "kept"
    if make and not (cert.is_file() and key.is_file()):
        make_self_signed(cert, key, _host_names())
        made = "made"
    return cert, key, (f"front door: no TLS_CERT/TLS_KEY, so a self-signed certificate "
                       f"({made}: {cert}) is served; clients verify it with --cacert {cert}")


def _host_names():
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    return sorted(n for n in names if n and n != "localhost.localdomain")


def make_self_signed(cert_path, key_path, names, days=825):
    """Write a self-signed certificate for ``names`` (and 127.0.0.1, ::1), key mode 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OilMat Bridge front door")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    Path(key_path).parent.mkdir(parents=True, exist_ok=True)
    os.chmod(Path(key_path).parent, 0o700)
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode("ascii"))
    write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                  0o644)


def timeout_seconds(settings):
    """Above the slowest answer behind the door: a management call that waits for an
    instance to stop (``STOP_WAIT_SECONDS`` + 30, :class:`fleet.supervisor_client.Supervisor`),
    or for an instance's ERP probe (``PROBE_TIMEOUT_SECONDS`` of :mod:`fleet.instances`)."""
    return int(max(settings.stop_wait_seconds, PROBE_TIMEOUT_SECONDS)) + 30  # nginx: whole seconds


def render_nginx(settings, cert, key):
    """:returns: the text of ``nginx.conf``"""
    # nginx ignores "user" (with a warning) unless its master runs as root; as root its
    # workers would otherwise be "nobody", who may not read SUPERVISOR_DIR (0700)
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    paths = {"dir": nginx_dir(settings), "logs": Path(settings.supervisor_dir) / "logs",
             "cert": cert, "key": key}
    for path in paths.values():
        # paths of this installation: nothing that would end or split an nginx directive
        if re.search(r'[\s;{}"\'#$\\]', str(path)):
            raise ConfigError(f"a path of the front door must not contain spaces, quotes or "
                              f"any of ;{{}}#$\\: {path}")
    values = {**paths, "user": user, "timeout": timeout_seconds(settings),
              "public_port": settings.public_port, "management_port": settings.management_port}
    text = (TEMPLATES / "nginx.conf.in").read_text("utf-8")
    return _FIELD.sub(lambda m: str(values[m.group(1)]), text)


def render_routes(integrations):
    """:returns: the text of ``routes.conf``: ``/w/<slug>`` -> the instance's port, or
        ``inactive``; a slug not in it is the JSON 404 of nginx.conf"""
    lines = ["# generated by fleet/frontdoor.py from the registry, reloaded, never edited",
             "map /w/$fd_slug $fd_port {", '    default "";']
    for integration in sorted(integrations, key=lambda i: i.slug):
        if not re.fullmatch(r"[a-z0-9-]+", integration.slug or ""):
            continue  # not reachable from outside (a row the migration has not seen)
        target = integration.port if integration.active else "inactive"
        lines.append(f"    /w/{integration.slug} {target};")
    return "\n".join([*lines, "}", ""])


def nginx_argv(settings, *extra):
    """nginx with its prefix, startup error log and configuration in SUPERVISOR_DIR"""
    base = nginx_dir(settings)
    return [settings.nginx, "-p", f"{base}/", "-e",
            str(Path(settings.supervisor_dir) / "logs" / "nginx-error.log"),
            "-c", str(base / "nginx.conf"), *extra]


def write_routes(settings, integrations):
    """Write ``routes.conf`` (atomically: a reload never reads half a file).

    :returns: whether it changed
    """
    base = nginx_dir(settings)
    base.mkdir(parents=True, exist_ok=True)
    text = render_routes(integrations)
    path = base / "routes.conf"
    if path.is_file() and path.read_text("utf-8") == text:
        return False
    write_private(path, text)
    return True


def write_config(settings, integrations, make_certificate=False):
    """Write nginx.conf and routes.conf (and, for ``up``, the certificate if there is none).

    :returns: the line for ``up`` to say about a self-signed certificate, or None
    """
    base = nginx_dir(settings)
    for sub in (base, base / "tmp", Path(settings.supervisor_dir) / "logs"):
        sub.mkdir(parents=True, exist_ok=True)
        os.chmod(sub, 0o700)
    cert, key, note = certificate(settings, make_certificate)
    write_private(base / "nginx.conf", render_nginx(settings, cert, key))
    write_routes(settings, integrations)
    return note


def check(settings):
    """``nginx -t`` on the written configuration (certificate and key included).

    :raises ConfigError: with nginx's own complaint, in one line
    """
    try:
        result = subprocess.run(nginx_argv(settings, "-t", "-q"), capture_output=True,
                                text=True, timeout=30)
    except OSError as e:
        raise ConfigError(f"nginx cannot run ({settings.nginx}: {e.strerror or e}): "
                          "run scripts/setup.sh") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "[emerg]" in line or "[crit]" in line]
        said = (lines or result.stderr.splitlines() or ["no reason given"])[0]
        raise ConfigError(f"the front door's nginx configuration is refused: "
                          f"{said.split('] ', 1)[-1]}")


def reload(supervisor):
    """Have the running nginx load the new routes (SIGHUP), if it runs.

    :returns: what was done, for the admin's line
    """
    done = supervisor.signal(PROGRAM, "HUP")
    return "front door reloaded" if done else "front door not running"
