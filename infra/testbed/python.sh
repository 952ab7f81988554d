#!/usr/bin/env bash
# Create (or reuse) the Python venv the readers, benchmarks and test servers use: duckdb,
# polars and pyarrow; asyncssh (SFTP), aiosmtpd (SMTP), the GCS emulator; at pinned versions.
# Idempotent: a stamp file records what was installed, and a run whose
# stamp matches does nothing. Prints one line on success; on failure prints pip's output and
# exits non-zero.
#
#   EGRESS_VENV    where the venv lives (default: <repo>/.venv)
#   EGRESS_PYTHON  the interpreter to build it from (default: python3; needs 3.11 or newer)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${EGRESS_VENV:-$repo/.venv}"
python="${EGRESS_PYTHON:-python3}"

# Bump these together; the stamp holds this exact string.
requirements="duckdb==2.0.0 polars==2.1.0 pyarrow==26.0.1 pyyaml==6.0.3 openpyxl==3.1.5 xlsxwriter==3.3.1 pikepdf==10.17.0 fastavro==1.13.1 cramjam==2.14.0 backports.zstd==1.8.0 asyncssh==2.24.1 aiosmtpd==1.4.6 gcp-storage-emulator==2026.7.19 croniter==7.0.0"
stamp="$venv/.egress-stamp"

# A venv whose interpreter is gone (the base Python moved) is rebuilt from scratch.
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$venv"
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$requirements" ]]; then
    echo "python venv ready: $venv"
    exit 0
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "python.sh: $python is missing or older than 3.11" >&2
    exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

if [[ ! -x "$venv/bin/python" ]]; then
    if ! "$python" -m venv "$venv" >"$log" 2>&1; then
        cat "$log" >&2
        echo "python.sh: could not create the venv at $venv" >&2
        exit 1
    fi
fi

rm -f "$stamp"
# shellcheck disable=SC2086 # the requirements are words on purpose
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input $requirements >"$log" 2>&1; then
    cat "$log" >&2
    echo "python.sh: pip install failed in $venv" >&2
    exit 1
fi

# Importing proves the wheels fit this machine (polars' runtime needs a CPU it supports).
if ! "$venv/bin/python" -c 'import duckdb, polars, pyarrow' >"$log" 2>&1; then
    cat "$log" >&2
    echo "python.sh: the installed packages do not import in $venv" >&2
    exit 1
fi

printf '%s' "$requirements" >"$stamp"
echo "python venv ready: $venv"
