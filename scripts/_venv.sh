# Sourced by scripts/dev and scripts/test: make a virtualenv with the project installed, if it is not yet.
#   VENV         where (default .venv)
#   CONSTRAINTS  a pip constraints file (e.g. constraints/lowest.txt for .venv-lowest); none by default,
#                and then every dependency resolves to the newest version pyproject.toml allows.
# Re-installed when pyproject.toml or the constraints change, with `--upgrade-strategy eager`: a
# dependency is upgraded to its newest allowed version even when the installed one still fits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
CONSTRAINTS="${CONSTRAINTS:-}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat pyproject.toml ${CONSTRAINTS:+"$CONSTRAINTS"} | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]" \
    ${CONSTRAINTS:+-c "$CONSTRAINTS"}
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
