#!/usr/bin/env python3
"""Check an Avro or Arrow IPC file written by egress against its source.

    check_avro_arrow.py avro|arrow EXPORT --source 'GLOB' --columns a,b --where SQL [--order-by SQL] [--limit N] [--codec C]
    check_avro_arrow.py avro|arrow EXPORT --inline ROWS.json [--codec C]

Avro is read with fastavro, Arrow IPC with pyarrow (pyarrow.ipc.open_file, and
pyarrow.feather.read_table, which must agree). Both are also read with Polars.

The expected rows come from the source: a Parquet dataset queried with DuckDB (the columns,
the WHERE clause, and for ORDER BY / LIMIT the order too), read back as Arrow, so the expected
types are the dataset's own; or a JSON file {"schema": [{"name", "type"}], "rows": [...]} with
an inline source's declared types (decimals and timestamps as text), converted here.

Avro: the writer schema must be a record whose fields carry the Arrow types as Avro types
(string, long, double, boolean; date on int; timestamp-micros on long; decimal on bytes with
the column's precision and scale), nullable columns as ["null", T] with default null, and the
`avro.codec` must be the one asked for. Arrow IPC: the file's schema must equal the source's
(names, types and nullability), with the codec asked for on every record batch. Then every
value must equal the source's (as a multiset; in order with ORDER BY). Exit 0 and `OK` when all
holds; 1 with the first difference otherwise.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import decimal
import json
import math
import sys

import duckdb
import fastavro
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc

# Decimals of up to 38 digits, exactly.
decimal.getcontext().prec = 80


def fail(msg: str) -> None:
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def avro_type(t: pa.DataType):
    """The Avro type egress promises for an Arrow type (without the null branch)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_int64(t):
        return "long"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date32(t):
        return {"type": "int", "logicalType": "date"}
    if pa.types.is_timestamp(t) and t.unit == "us":
        return {"type": "long", "logicalType": "timestamp-micros" if t.tz else "local-timestamp-micros"}
    if pa.types.is_decimal(t):
        return {"type": "bytes", "logicalType": "decimal", "precision": t.precision, "scale": t.scale}
    fail(f"no Avro type expected for {t}")


def expected_from_source(args) -> tuple[pa.Schema, list[tuple]]:
    con = duckdb.connect()
    cols = args.columns.split(",")
    select = ", ".join(f'"{c}"' for c in cols)
    q = f"SELECT {select} FROM read_parquet('{args.source}') WHERE {args.where}"
    if args.order_by:
        q += f" ORDER BY {args.order_by}"
    if args.limit:
        # Without ORDER BY: the first rows in the files' order (a cut export).
        q += f" LIMIT {args.limit}"
    # The dataset's own Arrow schema (DuckDB's Arrow output may name types differently).
    import pyarrow.parquet as pq
    import glob

    src_schema = pq.read_schema(sorted(glob.glob(args.source))[0])
    # Exports mark every column nullable (the source files of one dataset may differ in it).
    schema = pa.schema([src_schema.field(c).with_nullable(True) for c in cols])
    table = con.sql(q).to_arrow_table()
    return schema, [tuple(r[c] for c in cols) for r in table.to_pylist()]


def inline_type(decl: str) -> pa.DataType:
    if decl == "string":
        return pa.string()
    if decl == "int64":
        return pa.int64()
    if decl == "float64":
        return pa.float64()
    if decl == "bool":
        return pa.bool_()
    if decl == "date":
        return pa.date32()
    if decl == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if decl.startswith("decimal("):
        p, s = decl[len("decimal(") : -1].split(",")
        return pa.decimal128(int(p), int(s))
    fail(f"unknown declared type {decl}")


def inline_value(t: pa.DataType, v):
    if v is None:
        return None
    if pa.types.is_decimal(t):
        return decimal.Decimal(str(v)).quantize(decimal.Decimal(1).scaleb(-t.scale))
    if pa.types.is_date32(t):
        return dt.date.fromisoformat(v)
    if pa.types.is_timestamp(t):
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    if pa.types.is_float64(t):
        return float(v)
    return v


def expected_from_inline(path: str) -> tuple[pa.Schema, list[tuple]]:
    spec = json.load(open(path))
    schema = pa.schema([pa.field(c["name"], inline_type(c["type"]), nullable=True) for c in spec["schema"]])
    rows = [tuple(inline_value(f.type, r.get(f.name)) for f in schema) for r in spec["rows"]]
    return schema, rows


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a == b and (a.tzinfo is None) == (b.tzinfo is None)
    return type(a) is type(b) and a == b


def compare(got: list[tuple], want: list[tuple], ordered: bool, reader: str) -> None:
    if len(got) != len(want):
        fail(f"{reader}: {len(got)} rows, the source has {len(want)}")
    if not ordered:
        key = lambda r: repr(r)  # noqa: E731
        got, want = sorted(got, key=key), sorted(want, key=key)
    for i, (g, w) in enumerate(zip(got, want)):
        if len(g) != len(w) or not all(same(x, y) for x, y in zip(g, w)):
            fail(f"{reader}: row {i} is {g!r}, expected {w!r}")


def check_avro(path: str, schema: pa.Schema, want: list[tuple], codec: str, ordered: bool) -> None:
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        raw_schema = json.loads(reader.metadata["avro.schema"])
        got_codec = reader.metadata.get("avro.codec", "null")
        records = list(reader)
    fastavro.parse_schema(raw_schema)
    if got_codec != codec:
        fail(f"avro.codec is {got_codec!r}, expected {codec!r}")
    if raw_schema.get("type") != "record" or raw_schema.get("name") != "Row" or raw_schema.get("namespace") != "egress":
        fail(f"the schema is not the record egress.Row: {raw_schema}")
    fields = raw_schema["fields"]
    if [f.get("arrow_name", f["name"]) for f in fields] != schema.names:
        fail(f"fields {[f['name'] for f in fields]}, expected {schema.names}")
    for f, a in zip(fields, schema):
        t = avro_type(a.type)
        want_type = ["null", t] if a.nullable else t
        if f["type"] != want_type:
            fail(f"field {f['name']} has type {f['type']}, expected {want_type}")
        if a.nullable and ("default" not in f or f["default"] is not None):
            fail(f"nullable field {f['name']} has no default null")
    names = [f["name"] for f in fields]
    got = [tuple(r[n] for n in names) for r in records]
    compare(got, want, ordered, "fastavro")
    # Polars reads the same file with its own Avro reader. It has no Zstandard, and it fails
    # on a file without blocks whose codec is not null (fastavro's own such files too).
    if got_codec != "zstandard" and (records or got_codec == "null"):
        frame = pl.read_avro(path)
        compare([tuple(r) for r in frame.rows()], want, ordered, "polars")
    print(f"avro OK {len(records)} rows, codec {got_codec}")


def check_arrow(path: str, schema: pa.Schema, want: list[tuple], codec: str, ordered: bool) -> None:
    with ipc.open_file(path) as r:
        got_schema = r.schema
        table = r.read_all()
        batches = [r.get_batch(i) for i in range(r.num_record_batches)]
    if not got_schema.equals(schema):
        fail(f"schema {got_schema}, expected {schema}")
    f_table = feather.read_table(path)
    if not f_table.equals(table):
        fail("pyarrow.feather reads something else than pyarrow.ipc")
    got = [tuple(r[n] for n in schema.names) for r in table.to_pylist()]
    compare(got, want, ordered, "pyarrow")
    # The codec of the buffers: pyarrow does not expose it, so look for the frames' magic
    # numbers in the file (each compressed buffer is its length, then an LZ4 or Zstandard
    # frame).
    data = open(path, "rb").read()
    frames = {"lz4": data.count(b"\x04\x22\x4d\x18"), "zstd": data.count(b"\x28\xb5\x2f\xfd")}
    if codec == "none" and any(frames.values()):
        fail(f"compressed frames {frames}, expected none")
    if codec != "none" and (frames[codec] < len(batches) or any(n for c, n in frames.items() if c != codec)):
        fail(f"compressed frames {frames} in {len(batches)} batches, expected {codec}")
    frame = pl.read_ipc(path)
    if frame.columns != schema.names:
        fail(f"polars read the columns {frame.columns}")
    compare([tuple(r) for r in frame.rows()], want, ordered, "polars")
    print(f"arrow OK {table.num_rows} rows in {len(batches)} batches, {len(data)} bytes, frames {frames}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("format", choices=["avro", "arrow"])
    p.add_argument("export")
    p.add_argument("--source")
    p.add_argument("--columns")
    p.add_argument("--where", default="true")
    p.add_argument("--order-by")
    p.add_argument("--limit")
    p.add_argument("--inline")
    p.add_argument("--codec", required=True)
    args = p.parse_args()
    schema, want = expected_from_inline(args.inline) if args.inline else expected_from_source(args)
    ordered = bool(args.order_by or args.limit)
    if args.format == "avro":
        check_avro(args.export, schema, want, args.codec, ordered)
    else:
        check_arrow(args.export, schema, want, args.codec, ordered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
