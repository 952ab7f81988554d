#!/usr/bin/env bash
# One HTTP/TLS stack and no C crypto: these crates must stay out of the build graph
# (see ../shared/DEPENDENCIES.md: one crate on default features brings them back).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bad=0
for spec in ring openssl-sys hyper@0.14 rustls@0.21 http@0.2; do
  if out=$(cargo tree --locked -e normal -i "$spec" 2>/dev/null) && [ -n "$out" ]; then
    echo "dependency guard: $spec is in the build graph:"; echo "$out" | head -20; bad=1
  fi
done
exit $bad
