#!/usr/bin/env bash
# Build every Lambda function (one per API route and per stage) with cargo-lambda for
# `provided.al2023` on x86_64, then report each binary's size and the newest GLIBC symbol
# version it needs (al2023 has glibc 2.34). Fails when a binary is over 20 MB or needs a newer
# glibc.
#
#   infra/lambda/build.sh [--profile lambda|release]   (lambda: fat LTO, opt-level z, stripped)
#
# Artifacts: target/lambda/<function>/bootstrap (what `sam build` packages).
# cargo-lambda and zig come from PyPI into <repo>/.venv-lambda (EGRESS_LAMBDA_VENV).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
profile=lambda
[[ "${1:-}" == "--profile" ]] && profile="$2"
venv="${EGRESS_LAMBDA_VENV:-$root/.venv-lambda}"
requirements="cargo-lambda==1.9.2 ziglang==0.15.1"
if [[ ! -f "$venv/.egress-stamp" || "$(cat "$venv/.egress-stamp")" != "$requirements" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
    printf '%s' "$requirements" >"$venv/.egress-stamp"
fi
export PATH="$venv/bin:$PATH"

bins=()
for f in functions/src/bin/api_*.rs functions/src/bin/stage_*.rs functions/src/bin/schedule_*.rs; do
    bins+=(--bin "$(basename "$f" .rs)")
done
start=$SECONDS
# Non-PIE executables: no table of relative relocations (2 MB of the encode function). The code
# stays position-independent; only the link is fixed. cargo-lambda keeps RUSTFLAGS.
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-no-pie"
cargo lambda build --profile "$profile" --target x86_64-unknown-linux-gnu.2.34 --locked -p egress-functions --no-default-features "${bins[@]}" >&2
echo "built $(( ${#bins[@]} / 2 )) functions in $((SECONDS - start)) s (profile $profile)"

# 20 MB in decimal megabytes (20,000,000 bytes), the stricter reading of the bar.
limit=20000000
status=0
printf '%-28s %10s %8s\n' function "size MB" "GLIBC"
for f in functions/src/bin/api_*.rs functions/src/bin/stage_*.rs functions/src/bin/schedule_*.rs; do
    name="$(basename "$f" .rs)"
    bin="${CARGO_TARGET_DIR:-target}/lambda/$name/bootstrap"
    size=$(stat -c %s "$bin")
    glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
    printf '%-28s %10.2f %8s\n' "$name" "$(echo "$size / 1000000" | bc -l)" "$glibc"
    if ((size > limit)); then
        echo "  $name is over 20 MB" >&2
        status=1
    fi
    if [[ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -1)" != "2.34" ]]; then
        echo "  $name needs GLIBC $glibc, newer than al2023's 2.34" >&2
        status=1
    fi
done
exit $status
