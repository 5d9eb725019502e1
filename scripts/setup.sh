#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine (as root, or with sudo for apt):
# Debian's chromium + chromium-driver (and nginx, the fleet's HTTPS front door) when missing,
# then a virtualenv with requirements.txt, then the fleet's browser pool (Java and the Selenium Grid jar, scripts/setup_grid.sh).
# A stamp file skips pip when requirements.txt has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# nginx: `manage.py up` runs it under supervisord as the front door when PUBLIC_PORT is set
# (fleet/frontdoor.py); the package's own nginx.service is not used by the fleet
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/sbin/nginx ]; then
  echo "setup: installing Debian chromium, chromium-driver and nginx"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver nginx
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi
PYTHON="$PYTHON" bash scripts/setup_grid.sh

echo "setup: ready ($("$VENV/bin/python" --version), $(/usr/bin/chromium --version 2>/dev/null | head -1))"
