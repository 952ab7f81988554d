#!/usr/bin/env bash
# One command for the benchmark: egress (through the export state machine, and by direct stage
# calls) and the best peers (DuckDB, DuckDB single-threaded, Polars; Python XlsxWriter in
# constant-memory mode for xlsx) export the same synthetic Parquet dataset in the same run;
# prints a table and ratios.
#
#   infra/bench/run.sh [--format csv|jsonl|parquet|xlsx|pdf|avro|arrow|xml] [--rows N] [--compression none|gzip] [--rounds N]
#
# Tools run interleaved for --rounds rounds (default 2) and each is judged by its best round:
# on a shared virtual machine a writer that needs more memory than the run before it freed pays
# for the memory the host has not yet handed over, whichever tool it is (see below).
#
# EGRESS_BENCH_DIR (default <repo>/data) holds the dataset (made once, reused) and the outputs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
format=csv rows=10000000 compression=none rounds=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --format) format="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --compression) compression="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--format csv|jsonl|parquet|xlsx] [--rows N] [--compression none|gzip] [--rounds N]" >&2; exit 2 ;;
  esac
done
data="${EGRESS_BENCH_DIR:-$root/data}"
cd "$root"
cargo build --release --locked --bin egress >&2
bash infra/testbed/python.sh >&2
py="${EGRESS_VENV:-$root/.venv}/bin/python"
bin="${CARGO_TARGET_DIR:-$root/target}/release/egress"
results="$data/bench/results-$format-$rows.jsonl"
mkdir -p "$data/bench/out"
# Make the dataset before anything is timed.
"$bin" --data-dir "$data" bench --format "$format" --rows "$rows" --prepare-only
run_tool() {
  case "$1" in
    egress) "$bin" --data-dir "$data" bench --format "$format" --rows "$rows" --compression "$compression" --json ;;
    direct) "$bin" --data-dir "$data" bench --format "$format" --rows "$rows" --compression "$compression" --json --driver direct ;;
    peers)
      # No peer writes PDF/A-3 reports: pdf is measured against its bar (60 s, 500 MB RSS) alone.
      if [[ "$compression" == none && "$format" != pdf ]]; then
        "$py" infra/bench/peers.py --source "$data/bench/transactions-$rows/*.parquet" --format "$format" --out-dir "$data/bench/out"
      fi ;;
  esac
}
# The two egress runs swap places every round. A run that needs more fresh page cache than the
# run before it freed pays for the memory the host has not yet handed over (about a second for
# egress's CSV, which writes its parts and then the file, after the peers, which write the file
# once); in the round it follows the other egress run, it does not.
for ((round = 0; round < rounds; round++)); do
  if ((round % 2 == 0)); then order=(egress direct peers); else order=(direct egress peers); fi
  for tool in "${order[@]}"; do run_tool "$tool"; done
done | tee "$results" | "$py" infra/bench/compare.py
echo "raw results: $results" >&2
