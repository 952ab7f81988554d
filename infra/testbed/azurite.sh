#!/usr/bin/env bash
# Install (or reuse) Azurite, the Azure Blob emulator, into infra/azurite/node_modules from the
# committed lock file. Idempotent. Prints the path of `azurite-blob`.
#
# Tests start it themselves: `azurite-blob --blobHost 127.0.0.1 --blobPort PORT --location DIR
# --silent --skipApiVersionCheck --loose`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(cd "$here/../azurite" && pwd)"
bin="$dir/node_modules/.bin/azurite-blob"
stamp="$dir/node_modules/.egress-stamp"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$bin"
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "azurite.sh: npm is missing (Azurite needs Node.js and npm)" >&2
    exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$log" 2>&1 || [[ ! -x "$bin" ]]; then
    cat "$log" >&2
    echo "azurite.sh: npm ci failed in $dir" >&2
    exit 1
fi
printf '%s' "$want" >"$stamp"
echo "$bin"
