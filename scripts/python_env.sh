#!/usr/bin/env bash
# Create/refresh the project virtualenv at $ROOT/.venv.
#   - creates it when missing or broken (python3 -m venv; on Debian as root,
#     installs python3-venv when the venv module is unusable);
#   - runs `pip install -r requirements.txt` only when requirements.txt changed
#     since the last successful install (sha256 kept in .venv/.requirements.sha256).
# Prints the venv's python path on stdout. Environment: EVC_PYTHON (interpreter
# used to create the venv, default python3; must be 3.11+).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$ROOT/.venv"
REQ="$ROOT/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PY="${EVC_PYTHON:-python3}"

command -v "$PY" >/dev/null 2>&1 || {
    if is_root; then apt_install python3; else die "$PY not found"; fi
}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$PY is $("$PY" -V 2>&1); Python 3.11+ is required (set EVC_PYTHON)"

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1
}

if ! venv_ok; then
    rm -rf "$VENV"
    log "creating virtualenv $VENV"
    if ! "$PY" -m venv "$VENV" >&2; then
        rm -rf "$VENV"
        if is_root && command -v apt-get >/dev/null 2>&1; then
            apt_install python3-venv
            "$PY" -m venv "$VENV" >&2 || die "python3 -m venv failed even after installing python3-venv"
        else
            die "python3 -m venv failed (install python3-venv)"
        fi
    fi
    venv_ok || die "virtualenv at $VENV has no working pip"
fi

want="$(sha256sum "$REQ" | awk '{print $1}')"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    log "installing requirements into $VENV"
    t0="$(now_ms)"
    "$VENV/bin/python" -m pip install -q -r "$REQ" >&2 || die "pip install -r requirements.txt failed"
    echo "$want" >"$STAMP"
    log "requirements installed in $(elapsed_s "$t0")s"
fi

echo "$VENV/bin/python"
