#!/usr/bin/env python3
"""Check a Parquet file written by egress against its source, with pyarrow and DuckDB.

    check_parquet.py SOURCE_GLOB EXPORT COLUMNS WHERE [ORDER_BY LIMIT] [--codec ZSTD] [--min-row-groups N]
                     [--delta COL,COL]

pyarrow must read the file with the Arrow types egress promises: decimal128 for amounts,
timestamp[us, tz=UTC], date32, strings, booleans, int64, double. DuckDB compares the rows with
the source query (as a multiset; with ORDER_BY and LIMIT, in order). The columns named by
--delta must be DELTA_BINARY_PACKED in every row group (and so read by both through it). Every column chunk has
statistics, and they agree with its values: null counts, a minimum and maximum wherever there
is a value, those of the double columns bound the values, and those of the string columns are
theirs (values of over 64 bytes are cut: then they must bound them). Exit 0 and `OK` when all
holds; 1 with the first difference otherwise.
"""

import sys

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

EXPECTED_TYPES = {
    "transaction_id": "string",
    "account_id": "string",
    "counterparty_name": "string",
    "amount": "decimal128(18, 2)",
    "currency": "string",
    "booked_at": "timestamp[us, tz=UTC]",
    "value_date": "date32[day]",
    "country": "string",
    "channel": "string",
    "flagged": "bool",
    "risk_score": "double",
    "memo": "string",
    "reference": "int64",
}


def fail(msg: str) -> None:
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def check_statistics(pf: pq.ParquetFile) -> None:
    md = pf.metadata
    for rg in range(md.num_row_groups):
        data = pf.read_row_group(rg)
        for c in range(md.num_columns):
            chunk = md.row_group(rg).column(c)
            name = chunk.path_in_schema
            values = data.column(name)
            stats = chunk.statistics
            if stats is None:
                fail(f"row group {rg} column {name} has no statistics")
            if stats.null_count != values.null_count:
                fail(f"row group {rg} column {name}: null count {stats.null_count}, the values have {values.null_count}")
            # Every column with a value has a minimum and a maximum that pyarrow reads (a
            # FLOAT or DOUBLE column's only when its footer declares an order pyarrow knows).
            if values.null_count < len(values) and not stats.has_min_max:
                fail(f"row group {rg} column {name} ({values.type}) has no minimum and maximum")
            if not stats.has_min_max:
                continue
            if str(values.type) == "double":
                low, high = pc.min_max(values).values()
                if not stats.min <= low.as_py() or not stats.max >= high.as_py():
                    fail(f"row group {rg} column {name}: statistics {stats.min}..{stats.max}, values {low}..{high}")
            if str(values.type) != "string":
                continue
            low, high = pc.min_max(values).values()
            low, high = low.as_py().encode(), high.as_py().encode()
            smin, smax = stats.min.encode(), stats.max.encode()
            if len(low) <= 64 and smin != low or not smin <= low:
                fail(f"row group {rg} column {name}: minimum {smin!r}, the values' is {low!r}")
            if len(high) <= 64 and smax != high or not smax >= high:
                fail(f"row group {rg} column {name}: maximum {smax!r}, the values' is {high!r}")


def main() -> int:
    argv = sys.argv[1:]
    # Options take a value each; the rest are positional.
    options_at = {i for i, a in enumerate(argv) if a.startswith("--")}
    args = [a for i, a in enumerate(argv) if i not in options_at and i - 1 not in options_at]
    opts = {argv[i]: argv[i + 1] for i in options_at}
    src, out, cols, where = args[:4]
    order_by, limit = (args[4], int(args[5])) if len(args) >= 6 else (None, None)
    pf = pq.ParquetFile(out)
    table = pf.read()
    names = cols.split(",")
    if table.column_names != names:
        fail(f"columns {table.column_names}, expected {names}")
    for field in table.schema:
        want = EXPECTED_TYPES.get(field.name)
        if want and str(field.type) != want:
            fail(f"column {field.name} has type {field.type}, expected {want}")
    md = pf.metadata
    if md.num_row_groups < int(opts.get("--min-row-groups", "1")):
        fail(f"{md.num_row_groups} row groups")
    codec = opts.get("--codec", "ZSTD")
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            if md.row_group(rg).column(c).compression != codec:
                fail(f"row group {rg} column {c} is {md.row_group(rg).column(c).compression}, expected {codec}")
    delta = [c for c in opts.get("--delta", "").split(",") if c]
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            chunk = md.row_group(rg).column(c)
            if chunk.path_in_schema in delta and "DELTA_BINARY_PACKED" not in chunk.encodings:
                fail(f"row group {rg} column {chunk.path_in_schema} is {chunk.encodings}, expected DELTA_BINARY_PACKED")
    check_statistics(pf)
    con = duckdb.connect()
    select = ", ".join(f'"{c}"' for c in names)
    src_q = f"SELECT {select} FROM read_parquet('{src}') WHERE {where}"
    if order_by:
        # Compared as text, the same cast on both sides (exact for decimals and instants).
        as_text = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in names)
        src_q += f" ORDER BY {order_by} LIMIT {limit}"
        got = con.execute(f"SELECT {as_text} FROM read_parquet('{out}')").fetchall()
        want = con.execute(f"SELECT {as_text} FROM ({src_q})").fetchall()
        if got != want:
            first = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b) if len(got) == len(want) else None
            fail(f"ordered rows differ (got {len(got)}, want {len(want)}, first difference at {first})")
    else:
        n_src = con.execute(f"SELECT count(*) FROM ({src_q})").fetchone()[0]
        n_out = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
        if n_src != n_out:
            fail(f"{n_out} rows, the source has {n_src}")
        for a, b in ((f"SELECT {select} FROM read_parquet('{out}')", src_q), (src_q, f"SELECT {select} FROM read_parquet('{out}')")):
            extra = con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]
            if extra:
                fail(f"{extra} rows of one side are not in the other")
    print(f"OK {table.num_rows} rows, {md.num_row_groups} row groups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
