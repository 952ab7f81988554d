#!/usr/bin/env python3
"""Check an Excel workbook written by egress against its source, with openpyxl and LibreOffice.

    check_xlsx.py EXPORT (--source GLOB --where SQL | --inline JSON_FILE) --columns a,b,c
                  [--sheet-name Data] [--sheet-rows 1048575] [--no-header]
                  [--metadata EXPORT_ID --filters JSON_LIST] [--soffice]

The expected rows are read from the source: Parquet files with DuckDB (in file and row order,
filtered by WHERE), or an inline source's JSON file ({"schema": [{"name", "type"}], "rows": [..]})
with the declared types. openpyxl (read-only) then checks every cell's value and type, and the
number formats: decimals `0.00` (as many zeros as the scale), dates `yyyy-mm-dd`, timestamps
`yyyy-mm-dd hh:mm:ss` in UTC; integers beyond 15 digits and dates outside 1900-03-01 ..
9999-12-31 are text; NaN and null are empty cells. A full load checks the bold header, the
frozen pane below it, the autofilter over each sheet's written range, the column widths, the
sheet names (`Data`, `Data (2)`, ... with SHEET_ROWS data rows each) and the metadata sheet.
With --soffice, LibreOffice headless converts every sheet to CSV and the values, as LibreOffice
shows them, must match too. Exit 0 and `OK` when all holds; 1 with the first difference.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import openpyxl
import pyarrow as pa
from openpyxl.utils import get_column_letter

MAX_EXACT_INTEGER = 999_999_999_999_999
FIRST_DATE = dt.date(1900, 3, 1)
LAST_DATE = dt.date(9999, 12, 31)


def fail(msg: str) -> None:
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def read_parquet_source(source: str, columns: list[str], where: str) -> pa.Table:
    import duckdb

    select = ", ".join(f'"{c}"' for c in columns)
    q = (
        f"SELECT {select} FROM read_parquet('{source}', filename=true, file_row_number=true) "
        f"WHERE {where} ORDER BY filename, file_row_number"
    )
    return duckdb.connect().sql(q).to_arrow_table()


def declared_type(t: str) -> pa.DataType:
    t = t.strip().lower()
    m = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", t)
    if m:
        return pa.decimal128(int(m[1]), int(m[2]))
    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[t]


def read_inline_source(path: str, columns: list[str]) -> pa.Table:
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    types = {c["name"]: declared_type(c["type"]) for c in spec["schema"]}
    arrays = []
    for name in columns:
        t = types[name]
        values = [row.get(name) for row in spec["rows"]]
        if pa.types.is_decimal(t):
            values = [None if v is None else decimal.Decimal(str(v)) for v in values]
        elif pa.types.is_date(t):
            values = [None if v is None else dt.date.fromisoformat(v) for v in values]
        elif pa.types.is_timestamp(t):
            values = [None if v is None else dt.datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values]
        arrays.append(pa.array(values, type=t))
    return pa.Table.from_arrays(arrays, names=columns)


def is_text_int(v: int) -> bool:
    return abs(v) > MAX_EXACT_INTEGER


def expected_format(t: pa.DataType) -> str | None:
    if pa.types.is_decimal(t):
        return "0" if t.scale <= 0 else "0." + "0" * t.scale
    if pa.types.is_date(t):
        return "yyyy-mm-dd"
    if pa.types.is_timestamp(t):
        return "yyyy-mm-dd hh:mm:ss"
    return None


def iso_timestamp(v: dt.datetime) -> str:
    v = v.astimezone(dt.timezone.utc)
    s = v.strftime("%Y-%m-%dT%H:%M:%S")
    if v.microsecond:
        s += f".{v.microsecond:06d}"
    return s + "Z"


def check_cell(where: str, t: pa.DataType, want, cell) -> None:
    """One cell as openpyxl reads it against the source value."""
    got = cell.value
    if want is None or (isinstance(want, float) and not math.isfinite(want)) or want == "":
        if got is not None:
            fail(f"{where}: {got!r}, expected an empty cell")
        return
    fmt = expected_format(t)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        ok = isinstance(got, str) and got == want
    elif pa.types.is_boolean(t):
        ok = isinstance(got, bool) and got == want
    elif pa.types.is_integer(t):
        ok = (isinstance(got, str) and got == str(want)) if is_text_int(want) else (type(got) in (int, float) and got == want)
        fmt = None
    elif pa.types.is_floating(t):
        ok = type(got) in (int, float) and got == want
    elif pa.types.is_decimal(t):
        ok = type(got) in (int, float) and got == float(want)
    elif pa.types.is_date(t):
        if FIRST_DATE <= want <= LAST_DATE:
            ok = isinstance(got, dt.datetime) and got == dt.datetime.combine(want, dt.time())
        else:
            ok, fmt = got == want.isoformat(), None
    elif pa.types.is_timestamp(t):
        utc = want.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if FIRST_DATE <= utc.date() <= LAST_DATE:
            # openpyxl rounds a serial to the millisecond.
            ok = isinstance(got, dt.datetime) and abs((got - utc).total_seconds()) <= 0.0006
        else:
            ok, fmt = got == iso_timestamp(want), None
    else:
        fail(f"{where}: no check for type {t}")
    if not ok:
        fail(f"{where}: {got!r} ({type(got).__name__}), expected {want!r}")
    if fmt is not None and cell.number_format != fmt:
        fail(f"{where}: number format {cell.number_format!r}, expected {fmt!r}")


def shown_by_libreoffice(t: pa.DataType, want) -> str | float | tuple:
    """What LibreOffice's CSV shows for a source value (a float compares with a tolerance)."""
    if want is None or (isinstance(want, float) and not math.isfinite(want)):
        return ""
    if pa.types.is_boolean(t):
        return "TRUE" if want else "FALSE"
    if pa.types.is_integer(t):
        return str(want)
    if pa.types.is_floating(t):
        return float(want)
    if pa.types.is_decimal(t):
        return format(want, f".{max(t.scale, 0)}f")
    if pa.types.is_date(t):
        return want.isoformat()
    if pa.types.is_timestamp(t):
        utc = want.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if not FIRST_DATE <= utc.date() <= LAST_DATE:
            return iso_timestamp(want)
        # Shown to the second: rounded or cut, either is a faithful display.
        cut = utc.replace(microsecond=0)
        rounded = (utc + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
        return (cut.strftime("%Y-%m-%d %H:%M:%S"), rounded.strftime("%Y-%m-%d %H:%M:%S"))
    return want


def check_soffice(path: str, sheets: list[str], table: pa.Table, columns: list[str], header: bool, sheet_rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        env = dict(os.environ, HOME=tmp)
        # Field separator, text delimiter, UTF-8, first line 1, ..., every sheet to its own file.
        filt = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
        r = subprocess.run(
            ["soffice", "--headless", "--norestore", "--convert-to", filt, "--outdir", out, path],
            env=env, capture_output=True, text=True, timeout=600,
        )
        base = os.path.splitext(os.path.basename(path))[0]
        files = {os.path.basename(p): p for p in glob.glob(os.path.join(out, "*.csv"))}
        if r.returncode != 0 or not files:
            fail(f"LibreOffice did not convert the workbook: {r.returncode} {r.stdout} {r.stderr}")
        types = [table.schema.field(c).type for c in columns]
        data = [table.column(c).to_pylist() for c in columns]
        n = table.num_rows
        for s, name in enumerate(sheets):
            p = files.get(f"{base}-{name}.csv") or (files.get(f"{base}.csv") if len(sheets) == 1 else None)
            if p is None:
                fail(f"LibreOffice wrote {sorted(files)}, no CSV for sheet {name!r}")
            with open(p, encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
            if header:
                if rows[:1] != [columns]:
                    fail(f"LibreOffice sheet {name!r}: header {rows[:1]}")
                rows = rows[1:]
            first = s * sheet_rows
            count = min(sheet_rows, n - first)
            if len(rows) != count:
                fail(f"LibreOffice sheet {name!r}: {len(rows)} rows, expected {count}")
            for i, row in enumerate(rows):
                row = row + [""] * (len(columns) - len(row))
                for c, (t, got) in enumerate(zip(types, row)):
                    want = shown_by_libreoffice(t, data[c][first + i])
                    if isinstance(want, float):
                        ok = got != "" and math.isclose(float(got), want, rel_tol=1e-9)
                    elif isinstance(want, tuple):
                        ok = got in want
                    else:
                        ok = got == want
                    if not ok:
                        fail(f"LibreOffice sheet {name!r} data row {first + i + 1} column {columns[c]}: {got!r}, expected {want!r}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("export")
    p.add_argument("--source")
    p.add_argument("--where", default="true")
    p.add_argument("--inline")
    p.add_argument("--columns", required=True)
    p.add_argument("--sheet-name", default="Data")
    p.add_argument("--sheet-rows", type=int, default=1_048_575, help="data rows per sheet")
    p.add_argument("--no-header", action="store_true")
    p.add_argument("--metadata", metavar="EXPORT_ID")
    p.add_argument("--filters", default="[]")
    p.add_argument("--soffice", action="store_true")
    a = p.parse_args()
    columns = a.columns.split(",")
    header = not a.no_header
    table = read_inline_source(a.inline, columns) if a.inline else read_parquet_source(a.source, columns, a.where)
    n = table.num_rows
    n_sheets = max(1, -(-n // a.sheet_rows))
    names = [a.sheet_name] + [f"{a.sheet_name[: 31 - len(f' ({i})')]} ({i})" for i in range(2, n_sheets + 1)]
    expected_sheets = names + (["Metadata"] if a.metadata else [])

    wb = openpyxl.load_workbook(a.export, read_only=True)
    if wb.sheetnames != expected_sheets:
        fail(f"sheets {wb.sheetnames}, expected {expected_sheets}")
    types = [table.schema.field(c).type for c in columns]
    data = [table.column(c).to_pylist() for c in columns]
    k = 0
    for name in names:
        rows = wb[name].iter_rows()
        if header:
            head = next(rows, ())
            if [c.value for c in head] != columns:
                fail(f"sheet {name!r}: header {[c.value for c in head]}, expected {columns}")
            for c in head:
                if not c.font.b:
                    fail(f"sheet {name!r}: header cell {c.coordinate} is not bold")
        in_sheet = 0
        for row in rows:
            if k >= n:
                fail(f"sheet {name!r}: more rows than the source's {n}")
            cells = list(row) + [None] * (len(columns) - len(row))
            for c, t in enumerate(types):
                cell = cells[c]
                if cell is None or cell.__class__.__name__ == "EmptyCell":
                    cell = type("Empty", (), {"value": None, "number_format": "General"})()
                check_cell(f"sheet {name!r} data row {k + 1} column {columns[c]}", t, data[c][k], cell)
            k += 1
            in_sheet += 1
        if in_sheet != min(a.sheet_rows, n - (k - in_sheet)):
            fail(f"sheet {name!r}: {in_sheet} data rows")
    if k != n:
        fail(f"{k} data rows, the source has {n}")
    wb.close()

    # Structure: a full load (read-only worksheets do not keep views and filters).
    wb = openpyxl.load_workbook(a.export)
    last_col = get_column_letter(len(columns))
    for s, name in enumerate(names):
        ws = wb[name]
        in_sheet = min(a.sheet_rows, n - s * a.sheet_rows)
        if header:
            if ws.freeze_panes != "A2":
                fail(f"sheet {name!r}: frozen at {ws.freeze_panes}, expected A2")
            want_ref = f"A1:{last_col}{in_sheet + 1}"
            if ws.auto_filter.ref != want_ref:
                fail(f"sheet {name!r}: autofilter {ws.auto_filter.ref}, expected {want_ref}")
        for c in range(1, len(columns) + 1):
            w = ws.column_dimensions[get_column_letter(c)].width
            if w is None or not 8 <= w <= 61:
                fail(f"sheet {name!r}: column {get_column_letter(c)} width {w}")
    if a.metadata:
        ws = wb["Metadata"]
        meta: dict[str, list] = {}
        key = None
        for label, value in ws.iter_rows(values_only=True, max_col=2):
            key = label or key
            meta.setdefault(key, []).append(value)
        if meta.get("Export id") != [a.metadata]:
            fail(f"metadata export id {meta.get('Export id')}")
        if meta.get("Rows") != [n]:
            fail(f"metadata rows {meta.get('Rows')}, expected {n}")
        if meta.get("Sheets") != [", ".join(names)]:
            fail(f"metadata sheets {meta.get('Sheets')}")
        filters = json.loads(a.filters) or ["none"]
        if meta.get("Filters") != filters:
            fail(f"metadata filters {meta.get('Filters')}, expected {filters}")
        spec = json.loads("".join(meta.get("Spec", [])))
        if spec.get("format", {}).get("type") != "xlsx":
            fail(f"metadata spec {spec}")
        generated = meta.get("Generated at (UTC)", [None])[0]
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        if not isinstance(generated, dt.datetime) or abs((now - generated).total_seconds()) > 3600:
            fail(f"metadata generated at {generated!r}, now is {now}")
        if not isinstance(meta.get("Title", [None])[0], str):
            fail(f"metadata title {meta.get('Title')}")
    wb.close()

    if a.soffice:
        check_soffice(a.export, names, table, columns, header, a.sheet_rows)
    print(f"OK {n} rows in {len(names)} sheets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
