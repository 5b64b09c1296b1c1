# Sourced by ./run and ./test: makes .venv with the pinned requirements (re-installs only when
# requirements.txt changed) and exports VENV_PY.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
pick_python() {
  for c in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  echo "livecommerce needs Python 3.11 or newer on PATH" >&2; return 1
}
if [ ! -x "$VENV/bin/python" ]; then
  PY="$(pick_python)"
  echo "==> creating virtualenv in .venv ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi
REQ_HASH="$(cat "$ROOT/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$REQ_HASH" ]; then
  echo "==> installing requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt" 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$REQ_HASH" > "$VENV/.requirements.sha256"
fi
export VENV_PY="$VENV/bin/python"
export PYTHONDONTWRITEBYTECODE="${PYTHONDONTWRITEBYTECODE:-}"
cd "$ROOT"
