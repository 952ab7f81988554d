#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the independent readers (Debian
# packages: xmllint, qpdf, poppler, LibreOffice; a Python venv with DuckDB, openpyxl, pikepdf,
# fastavro; asyncssh, aiosmtpd and the GCS emulator as test servers), moto server (the AWS
# emulator) and Azurite (the Azure Blob emulator), then formatting, lints, the dependency guard,
# the static checks of the AWS templates, unit tests and end-to-end tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash infra/testbed/apt.sh
bash infra/testbed/python.sh
export EGRESS_TEST_PYTHON="${EGRESS_VENV:-$root/.venv}/bin/python"
EGRESS_MOTO_PYTHON="$(bash infra/testbed/moto.sh)"
export EGRESS_MOTO_PYTHON
EGRESS_AZURITE="$(bash infra/testbed/azurite.sh)"
export EGRESS_AZURITE

# One build per run: incremental state (gigabytes for the service library) would only use disk.
export CARGO_INCREMENTAL=0

echo "== cargo fmt (${SECONDS}s)"
cargo fmt --all -- --check
echo "== dependency guard (${SECONDS}s)"
bash infra/checks/deps.sh
echo "== static checks (${SECONDS}s)"
bash infra/checks/static.sh
echo "== cargo clippy (${SECONDS}s)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Lambda artifacts leave the local backend out (infra/lambda/build.sh): that build must stay clean.
cargo clippy -p egress-functions --no-default-features --bins --locked -- -D warnings
echo "== cargo test (${SECONDS}s)"
cargo test --workspace --locked --no-fail-fast
