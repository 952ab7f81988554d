#!/usr/bin/env python3
r"""Check a file written by egress against its source, independently of egress's own code.

The source (Parquet, a glob of Parquet files, or a CSV/JSONL file) is read with DuckDB, with the
same column choice, filter, sort and limit the export asked for. The export is read with
Python's own `csv` or `json` module, PyYAML (YAML), or by splitting lines and tabs (TSV, whose
escapes `\t \n \r \\` are undone and `\N` is null). Then every row and every value is
compared, by type (TSV as CSV text; YAML as YAML 1.1 types: floats read as exact Decimals from
their text, timestamps and dates as YAML's own types):

  DECIMAL      CSV text is exactly the value with the column's scale (12.30 stays "12.30");
               JSON: a number that, read as Decimal, is equal and has the same exponent
               (or, with --json-decimals string, a string holding that exact text).
  integers     exact, at any size (JSON is parsed with parse_int=int, so 2**53+1 survives).
  DOUBLE/FLOAT CSV: float(text) == value (NaN for NaN); JSON: an equal number, or null for
               NaN and infinities, which JSON cannot hold. FLOAT compares at 32-bit precision.
  BOOLEAN      CSV `true`/`false`; JSON true/false.
  DATE         ISO `YYYY-MM-DD`.
  TIMESTAMP*   an RFC 3339 string (`T`, and `Z` or `+HH:MM`), read with datetime.fromisoformat,
               that names exactly the same instant (to the microsecond, or the nanosecond for
               TIMESTAMP_NS). A timestamp without a zone is taken as UTC.
  VARCHAR      equal. In CSV with the formula guard on (the default), text starting with
               = + - @ TAB CR NUL that is not simply a number (`-12.5`) must read back as
               `'` + the original; header names are guarded the same way.
  NULL         CSV: an empty field (or --csv-null TEXT); JSON: null.

Also checked: the CSV header equals the column names; each JSON object has exactly the
columns, in order; the row counts are equal. Without --order-by rows are compared in file
order (files in name order, then rows in file order); with it, ties keep file order, as a
stable sort does. Other column types (lists, structs, UUID, BLOB, TIME, ...) are refused:
leave them out with --columns.

Exit status: 0 and `OK <rows> rows, <cols> columns` when everything matches; 1 and a message
naming the row, column, expected and actual value at the first difference; 2 on any error.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import math
import re
import struct
import sys
import traceback
from decimal import Context, Decimal

try:
    import duckdb
    import yaml
except ImportError:  # pragma: no cover - a setup problem, not a check result
    sys.exit("check_export.py needs duckdb and PyYAML: run infra/testbed/python.sh and use its venv's python")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Text a spreadsheet could run as a formula starts with one of these ...
GUARD_START = ("=", "+", "-", "@", "\t", "\r", "\0")
# ... unless it is simply a number.
PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)\Z")
RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII)
CSV_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z|NaN\Z|[+-]?inf\Z")
INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}
# Hidden columns that carry file order through the query.
ORDER_FILE = "__egress_file"
ORDER_ROW = "__egress_row"


class Mismatch(Exception):
    """The export differs from the source."""


class Column:
    def __init__(self, name: str, sql_type: str):
        self.name = name
        self.sql_type = sql_type
        self.scale = 0
        self.f32 = sql_type == "FLOAT"
        self.ns_per_unit = 1
        if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", sql_type):
            self.kind, self.scale = "decimal", int(m.group(2))
        elif sql_type in INT_TYPES:
            self.kind = "int"
        elif sql_type in ("DOUBLE", "FLOAT"):
            self.kind = "float"
        elif sql_type == "BOOLEAN":
            self.kind = "bool"
        elif sql_type == "VARCHAR":
            self.kind = "string"
        elif sql_type == "DATE":
            self.kind = "date"
        elif sql_type in TIMESTAMP_TYPES:
            # Fetched as an integer count since the epoch (exact, and no pytz needed).
            self.kind = "timestamp"
            self.ns_per_unit = 1 if sql_type == "TIMESTAMP_NS" else 1000
        else:
            raise ValueError(f"column {name!r} has type {sql_type}, which this checker does not compare; leave it out with --columns")

    def select(self) -> str:
        q = ident(self.name)
        if self.kind == "timestamp":
            fn = "epoch_ns" if self.ns_per_unit == 1 else "epoch_us"
            return f"{fn}({q}) AS {q}"
        return q


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------- the source, through DuckDB


def source_format(src: str, given: str | None) -> str:
    if given:
        return given
    s = src.lower().removesuffix(".gz")
    if s.endswith((".parquet", ".parq", ".pq")):
        return "parquet"
    if s.endswith((".csv", ".tsv")):
        return "csv"
    if s.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {src!r}; pass --source-format")


def source_relation(src: str, fmt: str) -> str:
    """A SELECT over the source with two extra columns giving file order."""
    lit = sql_string(src)
    if fmt == "parquet":
        return (
            f"SELECT * EXCLUDE (file_row_number, {ORDER_FILE}), {ORDER_FILE}, file_row_number AS {ORDER_ROW} "
            f"FROM read_parquet({lit}, filename={sql_string(ORDER_FILE)}, file_row_number=true)"
        )
    # Text sources have no row numbers of their own; one thread with insertion order kept
    # scans them in file order, and row_number() records it.
    reader = f"read_csv({lit})" if fmt == "csv" else f"read_json({lit}, format='newline_delimited')"
    return f"SELECT *, '' AS {ORDER_FILE}, row_number() OVER () AS {ORDER_ROW} FROM {reader}"


def source_query(args, select_list: str) -> str:
    sql = f"WITH src AS ({source_relation(args.source, source_format(args.source, args.source_format))}) SELECT {select_list} FROM src"
    if args.where:
        sql += f" WHERE ({args.where})"
    sql += " ORDER BY " + (f"{args.order_by}, " if args.order_by else "") + f"{ORDER_FILE}, {ORDER_ROW}"
    if args.limit is not None:
        sql += f" LIMIT {int(args.limit)}"
    return sql


def open_source(args):
    """(columns, cursor positioned on the expected rows)."""
    con = duckdb.connect()
    con.execute("SET threads=1")
    con.execute("SET preserve_insertion_order=true")
    if args.columns:
        names = [c.strip() for c in args.columns.split(",") if c.strip()]
        plain = ", ".join(ident(n) for n in names)
    else:
        plain = f"* EXCLUDE ({ORDER_FILE}, {ORDER_ROW})"
    described = con.execute("DESCRIBE " + source_query(args, plain)).fetchall()
    columns = [Column(name, sql_type) for name, sql_type, *_ in described]
    con.execute(source_query(args, ", ".join(c.select() for c in columns)))
    return columns, con


def expected_rows(con, columns):
    ts = [i for i, c in enumerate(columns) if c.kind == "timestamp"]
    while batch := con.fetchmany(8192):
        for row in batch:
            if ts:
                row = list(row)
                for i in ts:
                    if row[i] is not None:
                        row[i] *= columns[i].ns_per_unit
            yield row


# ---------------------------------------------------------------- values


def decimal_text(v: Decimal, scale: int) -> str:
    return format(v.quantize(Decimal(1).scaleb(-scale), context=Context(prec=100)), "f")


def guarded(s: str) -> str:
    if s.startswith(GUARD_START) and not PLAIN_NUMBER.match(s):
        return "'" + s
    return s


def same_float(col: Column, got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if col.f32 and math.isfinite(got):
        try:
            got = struct.unpack("<f", struct.pack("<f", got))[0]
        except OverflowError:
            return False
    return got == want


def parse_rfc3339(text: str) -> int | None:
    """Nanoseconds since the epoch, or None if `text` is not an RFC 3339 date-time."""
    m = RFC3339.match(text)
    if not m:
        return None
    date, time, frac, zone = m.groups()
    try:
        whole = dt.datetime.fromisoformat(f"{date}T{time}{zone}")
    except ValueError:
        return None
    seconds = (whole - EPOCH) // dt.timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def show_instant(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    try:
        whole = (EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    except OverflowError:
        return f"{ns} ns since 1970"
    return f"{whole}.{rest:09d}Z"


def show_json(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, JsonObject):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {show_json(x)}" for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show_json(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def csv_problem(col: Column, want, text: str, opts) -> str | None:
    """None when `text` is what must be written for `want`, else what was expected."""
    if want is None:
        return None if text == opts.csv_null else f"{opts.csv_null!r} (NULL)"
    kind = col.kind
    if kind == "float":
        ok = bool(CSV_FLOAT.match(text)) and same_float(col, float(text), want)
        return None if ok else f"a number equal to {want!r}"
    if kind == "timestamp":
        return None if parse_rfc3339(text) == want else f"an RFC 3339 time for {show_instant(want)}"
    if kind == "decimal":
        expect = decimal_text(want, col.scale)
    elif kind == "int":
        expect = str(want)
    elif kind == "bool":
        expect = "true" if want else "false"
    elif kind == "date":
        expect = want.isoformat()
    else:  # string
        expect = guarded(want) if opts.formula_guard else want
    return None if text == expect else repr(expect)


def json_problem(col: Column, want, got, opts) -> str | None:
    """None when the parsed JSON value `got` is right for `want`, else what was expected."""
    if want is None:
        return None if got is None else "null"
    kind = col.kind
    if kind == "decimal":
        text = decimal_text(want, col.scale)
        if opts.json_decimals == "string":
            return None if type(got) is str and got == text else json.dumps(text)
        if col.scale == 0:
            ok = type(got) is int and got == want
        else:
            ok = type(got) is Decimal and got == want and got.as_tuple().exponent == -col.scale
        return None if ok else text
    if kind == "int":
        return None if type(got) is int and got == want else str(want)
    if kind == "float":
        if not math.isfinite(want):
            return None if got is None else f"null (for {want!r})"
        ok = type(got) in (int, Decimal) and same_float(col, float(got), want)
        return None if ok else f"a number equal to {want!r}"
    if kind == "bool":
        return None if got is want else show_json(want)
    if kind == "timestamp":
        ok = type(got) is str and parse_rfc3339(got) == want
        return None if ok else f"an RFC 3339 time for {show_instant(want)}"
    expect = want.isoformat() if kind == "date" else want
    return None if type(got) is str and got == expect else json.dumps(expect, ensure_ascii=False)


# ---------------------------------------------------------------- the export


class JsonObject(list):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


def reject_constant(name: str):
    raise ValueError(f"{name} is not JSON (NaN and infinities must be written as null)")


def json_loads(text: str):
    return json.loads(text, parse_float=Decimal, parse_int=int, parse_constant=reject_constant, object_pairs_hook=JsonObject)


def row_values(obj, names: list[str], where: str) -> list:
    if not isinstance(obj, JsonObject):
        raise Mismatch(f"{where}: expected a JSON object, got {show_json(obj)}")
    keys = [k for k, _ in obj]
    if keys != names:
        raise Mismatch(f"{where}: keys {keys} differ from the columns {names}")
    return [v for _, v in obj]


def open_export(args, encoding: str, newline: str):
    if args.gzip:
        return gzip.open(args.export, "rt", encoding=encoding, newline=newline)
    return open(args.export, encoding=encoding, newline=newline)


def csv_records(f, names: list[str], opts):
    reader = csv.reader(f, delimiter=opts.csv_delimiter, strict=True)
    header = next(reader, None)
    want = [guarded(n) if opts.formula_guard else n for n in names]
    if header != want:
        raise Mismatch(f"header: expected {want}, got {header}")
    i = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise Mismatch(f"not valid CSV after line {reader.line_num}: {e}") from None
        i += 1
        where = f"CSV record ending on line {reader.line_num}"
        if len(record) != len(names):
            raise Mismatch(f"row {i} ({where}): expected {len(names)} fields, got {len(record)}: {record!r}")
        yield where, record


def jsonl_records(f, names: list[str]):
    blank = None
    for lineno, line in enumerate(f, 1):
        text = line.removesuffix("\n").removesuffix("\r")
        if not text:
            blank = blank or lineno
            continue
        if blank:
            raise Mismatch(f"line {blank}: blank line inside the export")
        where = f"line {lineno}"
        try:
            obj = json_loads(text)
        except ValueError as e:
            raise Mismatch(f"{where}: not valid JSON: {e}") from None
        yield where, row_values(obj, names, where)


def json_array_records(f, names: list[str]):
    try:
        doc = json_loads(f.read())
    except ValueError as e:
        raise Mismatch(f"not valid JSON: {e}") from None
    if not isinstance(doc, list) or isinstance(doc, JsonObject):
        raise Mismatch(f"expected one JSON array, got {type(doc).__name__}")
    for i, obj in enumerate(doc):
        where = f"array element {i}"
        yield where, row_values(obj, names, where)


TSV_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def tsv_unescape(field: str, where: str) -> str:
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\":
            nxt = field[i + 1 : i + 2]
            if nxt not in TSV_UNESCAPE:
                raise Mismatch(f"{where}: a lone backslash in {field!r}")
            out.append(TSV_UNESCAPE[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tsv_records(f, names: list[str], opts):
    lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        raise Mismatch("the TSV file does not end with a line break")
    lines = [l.removesuffix("\r") for l in lines]
    want = [guarded(n) if opts.formula_guard else n for n in names]
    header = [tsv_unescape(h, "header") for h in lines[0].split("\t")] if lines else None
    if header != want:
        raise Mismatch(f"header: expected {want}, got {header}")
    for i, line in enumerate(lines[1:], 1):
        where = f"line {i + 1}"
        if "\r" in line:
            raise Mismatch(f"{where}: a raw carriage return")
        fields = line.split("\t")
        if len(fields) != len(names):
            raise Mismatch(f"row {i} ({where}): expected {len(names)} fields, got {len(fields)}: {line!r}")
        yield where, [opts.csv_null if x == opts.csv_null else tsv_unescape(x, where) for x in fields]


class ExactLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with floats read as exact Decimals from their text."""


def _exact_float(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    low = text.lower()
    if low in (".nan",):
        return float("nan")
    if low in (".inf", "+.inf"):
        return float("inf")
    if low == "-.inf":
        return float("-inf")
    return Decimal(text)


ExactLoader.add_constructor("tag:yaml.org,2002:float", _exact_float)


def yaml_records(f, names: list[str]):
    try:
        doc = yaml.load(f, Loader=ExactLoader)
    except yaml.YAMLError as e:
        raise Mismatch(f"not valid YAML: {e}") from None
    if not isinstance(doc, list):
        raise Mismatch(f"expected a YAML sequence, got {type(doc).__name__}")
    for i, obj in enumerate(doc):
        where = f"sequence item {i}"
        if not isinstance(obj, dict) or list(obj.keys()) != names:
            raise Mismatch(f"{where}: expected a mapping with keys {names}, got {obj!r}")
        yield where, [obj[n] for n in names]


def yaml_problem(col: Column, want, got, opts) -> str | None:
    """None when the value PyYAML read is right for `want`, else what was expected."""
    if want is None:
        return None if got is None else "null"
    kind = col.kind
    if kind == "decimal":
        text = decimal_text(want, col.scale)
        if opts.json_decimals == "string":
            return None if type(got) is str and got == text else repr(text)
        if col.scale == 0:
            ok = type(got) is int and got == want
        else:
            ok = type(got) is Decimal and got == want and got.as_tuple().exponent == -col.scale
        return None if ok else text
    if kind == "int":
        return None if type(got) is int and got == want else str(want)
    if kind == "float":
        ok = isinstance(got, (Decimal, float)) and same_float(col, float(got), want)
        return None if ok else f"a float equal to {want!r}"
    if kind == "bool":
        return None if got is want else repr(want)
    if kind == "timestamp":
        if not isinstance(got, dt.datetime):
            return f"a YAML timestamp for {show_instant(want)}"
        aware = got if got.tzinfo else got.replace(tzinfo=dt.timezone.utc)
        delta = aware - EPOCH
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
        return None if ns == want else f"a YAML timestamp for {show_instant(want)}"
    if kind == "date":
        return None if type(got) is dt.date and got == want else f"the YAML date {want.isoformat()}"
    return None if type(got) is str and got == want else repr(want)


# ---------------------------------------------------------------- main


def compare(args) -> str:
    columns, con = open_source(args)
    names = [c.name for c in columns]
    if args.format == "csv":
        f = open_export(args, "utf-8-sig", "")
        actual = csv_records(f, names, args)
        problem = csv_problem
        show = repr
    elif args.format == "tsv":
        f = open_export(args, "utf-8-sig", "")
        actual = tsv_records(f, names, args)
        problem = csv_problem
        show = repr
    elif args.format == "yaml":
        f = open_export(args, "utf-8", "")
        actual = yaml_records(f, names)
        problem = yaml_problem
        show = repr
    else:
        f = open_export(args, "utf-8", "\n")
        actual = jsonl_records(f, names) if args.format == "jsonl" else json_array_records(f, names)
        problem = json_problem
        show = show_json
    with f:
        rows = 0
        expected = expected_rows(con, columns)
        for want_row in expected:
            rows += 1
            got = next(actual, None)
            if got is None:
                total = rows + sum(1 for _ in expected)
                raise Mismatch(f"row count: the source has {total} rows, the export {rows - 1}")
            where, cells = got
            for col, want, cell in zip(columns, want_row, cells):
                why = problem(col, want, cell, args)
                if why is not None:
                    raise Mismatch(f"row {rows} ({where}), column {col.name!r} ({col.sql_type}): expected {why}, got {show(cell)}")
        extra = sum(1 for _ in actual)
        if extra:
            raise Mismatch(f"row count: the source has {rows} rows, the export {rows + extra}")
    return f"OK {rows} rows, {len(columns)} columns"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="Parquet file or glob (dir/*.parquet), or a CSV/JSONL file")
    p.add_argument("--source-format", choices=["parquet", "csv", "jsonl"], help="when the file name does not tell")
    p.add_argument("--export", required=True, help="the file egress wrote")
    p.add_argument("--format", required=True, choices=["csv", "tsv", "jsonl", "json", "yaml"])
    p.add_argument("--columns", help="comma-separated column names, in export order (default: all)")
    p.add_argument("--where", help="SQL condition the export filtered by")
    p.add_argument("--order-by", help="SQL ORDER BY list the export sorted by (ties keep file order)")
    p.add_argument("--limit", type=int, help="at most this many rows")
    p.add_argument("--csv-null", default=None, help="text written for NULL in CSV or TSV (default: empty for CSV, \\N for TSV)")
    p.add_argument("--csv-delimiter", default=",", help="one character; 'tab' or '\\t' for a tab")
    p.add_argument("--gzip", action="store_true", help="the export is gzip-compressed")
    p.add_argument("--formula-guard", action=argparse.BooleanOptionalAction, default=True, help="CSV text cells were guarded against formula injection (default: on)")
    p.add_argument("--json-decimals", choices=["number", "string"], default="number", help="how the JSON export writes decimals (default: number)")
    args = p.parse_args(argv)
    if args.csv_null is None:
        args.csv_null = "\\N" if args.format == "tsv" else ""
    if args.csv_delimiter in ("tab", "\\t"):
        args.csv_delimiter = "\t"
    if len(args.csv_delimiter) != 1:
        p.error("--csv-delimiter must be one character")
    if args.limit is not None and args.limit < 0:
        p.error("--limit must not be negative")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    csv.field_size_limit(2**31 - 1)
    try:
        print(compare(args))
        return 0
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - any failure to check is a failure
        traceback.print_exc()
        print(f"ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
