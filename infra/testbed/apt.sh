#!/usr/bin/env bash
# Install the Debian packages the tests use as independent readers and validators: xmllint
# (XSD validation), qpdf and poppler (PDF structure, PDF/A metadata, attachments, rendering),
# LibreOffice Calc (opens the workbooks), libxml2 (validation at export time), and the tools
# that decrypt what egress packages: gpg, age, 7z. Idempotent:
# does nothing when every command is already there. Needs root (or sudo) and the Debian
# package registry.
set -euo pipefail

# command -> package
declare -A wanted=(
    [xmllint]=libxml2-utils
    [qpdf]=qpdf
    [pdfinfo]=poppler-utils
    [soffice]=libreoffice-calc-nogui
    [age]=age
    [gpg]=gnupg
    [7z]=p7zip-full
)
missing=()
for cmd in "${!wanted[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
if [[ ! -e /usr/lib/x86_64-linux-gnu/libxml2.so.2 ]]; then
    missing+=(libxml2)
fi
if ((${#missing[@]} == 0)); then
    echo "debian packages ready"
    exit 0
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "debian packages installed: ${missing[*]}"
