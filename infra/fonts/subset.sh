#!/usr/bin/env bash
# Remakes the fonts the PDF report embeds (shared/assets/fonts/): DejaVu Sans and DejaVu Sans
# Bold cut down to Basic Latin, Latin-1, Latin Extended-A/B, Greek, Cyrillic, general
# punctuation, currency symbols and U+FFFD (the replacement for characters outside the font).
# Needs pyftsubset (fonttools); give a Python with it in PYTHON, or the script makes a
# throwaway venv. krilla subsets these again to the glyphs each document uses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../shared/assets/fonts"
src=${DEJAVU_DIR:-/usr/share/fonts/truetype/dejavu}
if [[ -z "${PYTHON:-}" ]]; then
  venv=$(mktemp -d)
  trap 'rm -rf "$venv"' EXIT
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q fonttools
  PYTHON="$venv/bin/python"
fi
unicodes="U+0020-007E,U+00A0-00FF,U+0100-017F,U+0180-024F,U+0370-03FF,U+0400-04FF,U+2000-206F,U+20A0-20CF,U+FFFD"
for name in DejaVuSans DejaVuSans-Bold; do
  "$PYTHON" -m fontTools.subset "$src/$name.ttf" --unicodes="$unicodes" \
    --layout-features='' --no-hinting --desubroutinize --name-IDs='*' --name-languages='*' \
    --output-file="$out/$name-subset.ttf"
done
ls -l "$out"
