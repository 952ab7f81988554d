#!/usr/bin/env python3
"""Run the best peer tools on the data egress benchmarks, and print one JSON line per tool.

    peers.py --source 'DIR/*.parquet' --format csv|jsonl|parquet|avro|arrow|xlsx --out-dir DIR [--tools duckdb,duckdb1,polars,pyarrow,xlsxwriter]

Tools:
  duckdb   COPY (SELECT * FROM read_parquet(SRC)) TO OUT, all threads
  duckdb1  the same with SET threads=1
  polars   pl.scan_parquet(SRC).sink_csv(OUT) / .sink_ndjson(OUT) / .sink_parquet(OUT, zstd) /
           .sink_ipc(OUT, lz4); Avro: .collect().write_avro(OUT, deflate) (no streaming Avro
           writer; zoned timestamps written without their zone, which Polars requires)
  pyarrow  Arrow IPC only: pyarrow.feather.write_feather(pq.read_table(SRC), OUT, lz4)
  xlsxwriter  (xlsx, the only peer for it) Python XlsxWriter in constant_memory mode, fed by
           pyarrow in batches, writing what egress writes: typed cells with the same number
           formats, a bold frozen header, autofilter, column widths, text for integers beyond
           15 digits, empty cells for null and NaN, a new sheet after 1,048,575 rows

A tool that cannot write the format is left out (DuckDB writes neither Avro nor Arrow IPC).
The codecs are egress's defaults: deflate for Avro, LZ4 for Arrow IPC.

Each tool runs in its own child process (this script with --run-one). `seconds` is the wall
clock of the whole child as the parent sees it (interpreter start and imports included);
`tool_seconds` is the time the child spent in the export call alone. `peak_rss_mb` is the
child's peak resident set (ru_maxrss from os.wait4, KiB / 1024), so it includes the Python
interpreter and the imported library. `rows` is the source's row count (Parquet metadata),
`bytes` the output file's size; `mb_per_s` is bytes / 1e6 / seconds, like egress's own bench
line. Each output file is deleted once measured. A tool that fails prints a line with
"error", and the script then exits 1 after running the others.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

TOOLS = ("duckdb", "duckdb1", "polars", "pyarrow", "xlsxwriter")
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "avro": "avro", "arrow": "arrow", "xlsx": "xlsx"}
# The formats each tool writes.
WRITES = {
    "duckdb": ("csv", "jsonl", "parquet"),
    "duckdb1": ("csv", "jsonl", "parquet"),
    "polars": ("csv", "jsonl", "parquet", "avro", "arrow"),
    "pyarrow": ("arrow",),
    "xlsxwriter": ("xlsx",),
}


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def write_xlsx(source: str, out: str) -> None:
    """The xlsx peer: what egress writes, with XlsxWriter in constant_memory mode."""
    import datetime
    import math

    import pyarrow as pa
    import pyarrow.parquet as pq
    import xlsxwriter

    max_rows, max_exact = 1_048_575, 999_999_999_999_999
    files = sorted(glob.glob(source))
    schema = pq.ParquetFile(files[0]).schema_arrow
    names = schema.names
    wb = xlsxwriter.Workbook(out, {"constant_memory": True, "remove_timezone": True})
    bold = wb.add_format({"bold": True})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    datetime_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    first_date, last_date = datetime.date(1900, 3, 1), datetime.date(9999, 12, 31)

    def writer(t: pa.DataType):
        if pa.types.is_decimal(t):
            fmt = wb.add_format({"num_format": "0" if t.scale <= 0 else "0." + "0" * t.scale})
            return lambda ws, r, c, v: ws.write_number(r, c, float(v), fmt)
        if pa.types.is_integer(t):
            return lambda ws, r, c, v: ws.write_number(r, c, v) if -max_exact <= v <= max_exact else ws.write_string(r, c, str(v))
        if pa.types.is_floating(t):
            return lambda ws, r, c, v: ws.write_number(r, c, v) if math.isfinite(v) else None
        if pa.types.is_boolean(t):
            return lambda ws, r, c, v: ws.write_boolean(r, c, v)
        if pa.types.is_date(t):
            return lambda ws, r, c, v: ws.write_datetime(r, c, v, date_fmt) if first_date <= v <= last_date else ws.write_string(r, c, v.isoformat())
        if pa.types.is_timestamp(t):
            return lambda ws, r, c, v: ws.write_datetime(r, c, v, datetime_fmt) if first_date <= v.date() <= last_date else ws.write_string(r, c, v.isoformat())
        return lambda ws, r, c, v: ws.write_string(r, c, v)

    writers = [writer(f.type) for f in schema]
    sheets = []
    ws, row = None, max_rows + 1
    widths = None
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            cols = [col.to_pylist() for col in batch.columns]
            if widths is None:
                widths = [
                    min(60, max(8, 1 + max([len(n) + 2] + [len(str(v)) for v in col[:1000] if v is not None])))
                    for n, col in zip(names, cols)
                ]
            for i in range(batch.num_rows):
                if row > max_rows:
                    if ws is not None:
                        ws.autofilter(0, 0, row - 1, len(names) - 1)
                    ws = wb.add_worksheet("Data" if not sheets else f"Data ({len(sheets) + 1})")
                    sheets.append(ws)
                    for c, w in enumerate(widths):
                        ws.set_column(c, c, w)
                    ws.freeze_panes(1, 0)
                    for c, n in enumerate(names):
                        ws.write_string(0, c, n, bold)
                    row = 1
                for c, w in enumerate(writers):
                    v = cols[c][i]
                    if v is not None:
                        w(ws, row, c, v)
                row += 1
    if ws is not None:
        ws.autofilter(0, 0, row - 1, len(names) - 1)
    wb.close()


def run_one(tool: str, source: str, fmt: str, out: str) -> None:
    """In the child: do the export, then print how long the export call took."""
    if tool == "xlsxwriter":
        started = time.perf_counter()
        write_xlsx(source, out)
    elif tool in ("duckdb", "duckdb1"):
        import duckdb

        con = duckdb.connect()
        if tool == "duckdb1":
            con.execute("SET threads=1")
        options = {
            "csv": "(HEADER, DELIMITER ',')",
            "jsonl": "(FORMAT JSON)",
            # The same codec and row group size egress uses by default.
            "parquet": "(FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE 131072)",
        }[fmt]
        sql = f"COPY (SELECT * FROM read_parquet({sql_string(source)})) TO {sql_string(out)} {options}"
        started = time.perf_counter()
        con.execute(sql)
    elif tool == "polars":
        import polars as pl

        started = time.perf_counter()
        frame = pl.scan_parquet(source)
        if fmt == "csv":
            frame.sink_csv(out)
        elif fmt == "avro":
            # Polars cannot write a zoned timestamp to Avro: the same instants without the zone.
            zoned = [n for n, t in frame.collect_schema().items() if isinstance(t, pl.Datetime) and t.time_zone]
            frame.with_columns(pl.col(zoned).dt.replace_time_zone(None)).collect().write_avro(out, compression="deflate")
        elif fmt == "arrow":
            frame.sink_ipc(out, compression="lz4")
        elif fmt == "parquet":
            frame.sink_parquet(out, compression="zstd", row_group_size=131072)
        else:
            frame.sink_ndjson(out)
    elif tool == "pyarrow":
        import pyarrow.feather as feather
        import pyarrow.parquet as pq

        started = time.perf_counter()
        feather.write_feather(pq.read_table(sorted(glob.glob(source))), out, compression="lz4")
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    print(json.dumps({"tool_seconds": time.perf_counter() - started}), flush=True)


def source_rows(source: str) -> int:
    import duckdb

    return duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({sql_string(source)})").fetchone()[0]


def warm_cache(source: str) -> None:
    """Read the source once so that no tool pays for the first read from disk."""
    for path in sorted(glob.glob(source)):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def measure(tool: str, args, rows: int) -> dict:
    out = os.path.join(args.out_dir, f"peer-{tool}.{EXTENSIONS[args.format]}")
    if os.path.exists(out):
        os.remove(out)
    cmd = [sys.executable, os.path.abspath(__file__), "--run-one", tool, "--source", args.source, "--format", args.format, "--out", out]
    line = {"tool": tool, "format": args.format, "compression": "none"}
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    # The child prints one short line, far below a pipe's buffer, so waiting first is safe.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    reported = child.stdout.read().decode(errors="replace").strip().splitlines()
    child.stdout.close()
    try:
        size = os.path.getsize(out)
    except OSError:
        size = None
    if os.path.exists(out):
        os.remove(out)
    if child.returncode != 0 or size is None:
        line["error"] = f"exit status {child.returncode}" + ("" if size is not None else ", no output file")
        return line
    tool_seconds = json.loads(reported[-1])["tool_seconds"] if reported else None
    line.update(
        seconds=round(seconds, 4),
        rows=rows,
        bytes=size,
        rows_per_s=round(rows / seconds, 1),
        mb_per_s=round(size / 1e6 / seconds, 2),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        tool_seconds=round(tool_seconds, 4) if tool_seconds is not None else None,
        source=args.source,
    )
    return line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, help="Parquet file or glob, e.g. 'DIR/*.parquet' (quote it)")
    p.add_argument("--format", required=True, choices=sorted(EXTENSIONS))
    p.add_argument("--out-dir", help="where the outputs go (each is deleted after measuring)")
    p.add_argument("--tools", help=f"comma-separated, from {', '.join(TOOLS)} (default: all that write the format)")
    p.add_argument("--run-one", metavar="TOOL", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.run_one:
        run_one(args.run_one, args.source, args.format, args.out)
        return 0

    if not args.out_dir:
        p.error("--out-dir is required")
    if args.tools is None:
        args.tools = ",".join(t for t in TOOLS if args.format in WRITES[t])
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        p.error(f"unknown tools {unknown}; known: {', '.join(TOOLS)}")
    if not glob.glob(args.source):
        p.error(f"no files match {args.source!r}")
    os.makedirs(args.out_dir, exist_ok=True)

    rows = source_rows(args.source)
    warm_cache(args.source)
    failed = False
    for tool in tools:
        line = measure(tool, args, rows)
        failed |= "error" in line
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
