#!/usr/bin/env bash
# Installs uv (the project's only prerequisite besides Python, Java, Maven and cargo) into ~/.local/bin when it is
# missing. Debian's and Ubuntu's Pythons are "externally managed" (PEP 668) and refuse `pip install --user`; a
# private virtual environment under ~/.local/share/stvs touches nothing of the system's and works there as on any
# other Python. Usage: infra/bootstrap/uv.sh [python]   (UV_VERSION pins the version, as `make install` does)
set -euo pipefail
PYTHON="${1:-python3}"
UV_VERSION="${UV_VERSION:-0.13.10}"
BIN="$HOME/.local/bin"
if command -v uv >/dev/null 2>&1 || [ -x "$BIN/uv" ]; then
  exit 0
fi
VENV="$HOME/.local/share/stvs/uv-$UV_VERSION"
mkdir -p "$BIN" "$(dirname "$VENV")"
if "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  ln -sf "$VENV/bin/uv" "$BIN/uv"
  ln -sf "$VENV/bin/uvx" "$BIN/uvx"
elif "$PYTHON" -m pip --version >/dev/null 2>&1; then
  # No venv module (Debian without python3-venv): a user install, allowed past PEP 668 since uv is one binary.
  "$PYTHON" -m pip install --quiet --user "uv==$UV_VERSION" 2>/dev/null ||
    "$PYTHON" -m pip install --quiet --user --break-system-packages "uv==$UV_VERSION"
else
  echo "uv is missing and $PYTHON has neither venv nor pip: install python3-venv (Debian, Ubuntu) or uv itself" >&2
  exit 1
fi
"$BIN/uv" --version
