#!/usr/bin/env bash
# Create (or reuse) the venv with moto server (the AWS emulator the AWS adapters are tested on)
# and boto3. Idempotent: a stamp file records what was installed. Prints the venv's python.
#
#   EGRESS_MOTO_VENV  where the venv lives (default: <repo>/.venv-moto)
#   EGRESS_PYTHON     the interpreter to build it from (default: python3)
#
# Tests start the server themselves: `$venv/bin/python -m moto.server -H 127.0.0.1 -p PORT`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${EGRESS_MOTO_VENV:-$repo/.venv-moto}"
python="${EGRESS_PYTHON:-python3}"

requirements="moto[server]==5.2.5 boto3==1.44.8"
stamp="$venv/.egress-stamp"

if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$venv"
fi
if [[ -f "$stamp" && "$(cat "$stamp")" == "$requirements" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if [[ ! -x "$venv/bin/python" ]] && ! "$python" -m venv "$venv" >"$log" 2>&1; then
    cat "$log" >&2
    echo "moto.sh: could not create the venv at $venv" >&2
    exit 1
fi
rm -f "$stamp"
# shellcheck disable=SC2086 # the requirements are words on purpose
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input $requirements >"$log" 2>&1 \
    || ! "$venv/bin/python" -c 'import moto.server, boto3' >"$log" 2>&1; then
    cat "$log" >&2
    echo "moto.sh: installing moto failed in $venv" >&2
    exit 1
fi
printf '%s' "$requirements" >"$stamp"
echo "$venv/bin/python"
