#!/usr/bin/env python3
"""Check an export made with the `fields` mapping of tests/field_mapping.rs against its source.

    check_fields.py SOURCE_GLOB EXPORT HASHES_OUT [--sorted]
    check_fields.py --same A.json B.json
    check_fields.py --differ A.json B.json

The expected values are computed from the source by DuckDB alone (its ICU time zones,
strftime, decimal casts), never by egress code: Vienna wall times, dates in Vienna, decimal
text and rescaling, value map, keep-last mask, redaction, constants. A CSV is read with Python's
csv module (every cell as text); a Parquet file with pyarrow, whose types are checked first.
Hashes cannot be recomputed (the salt never leaves the service): each must be 64 hex digits,
one per counterparty name and one name per hash; the name -> hash map is written to HASHES_OUT
for `--same` (two exports of one tenant: equal) and `--differ` (two tenants: no hash shared).
Exit 0 and `OK` when all holds; 1 with the first difference otherwise.
"""

import csv
import json
import re
import sys

import duckdb
import pyarrow.parquet as pq

EXPECTED_TYPES = {
    "id": "string",
    "booked_vienna": "string",
    "booked_day": "date32[day]",
    "amount_text": "string",
    "amount4": "decimal128(20, 4)",
    "ref_text": "string",
    "channel_code": "string",
    "account": "string",
    "counterparty": "string",
    "memo": "string",
    "value_date_text": "string",
    "system": "string",
    "version": "int64",
}

EXPECTED_SQL = """
SELECT
  transaction_id AS id,
  strftime(timezone('Europe/Vienna', booked_at), '%d.%m.%Y %H:%M:%S') AS booked_vienna,
  CAST(CAST(timezone('Europe/Vienna', booked_at) AS DATE) AS VARCHAR) AS booked_day,
  CAST(amount AS VARCHAR) AS amount_text,
  CAST(CAST(amount AS DECIMAL(20, 4)) AS VARCHAR) AS amount4,
  CAST(reference AS VARCHAR) AS ref_text,
  CASE channel WHEN 'card' THEN 'C' WHEN 'cash' THEN 'K' ELSE 'other' END AS channel_code,
  CASE WHEN length(account_id) > 4 THEN repeat('*', length(account_id) - 4) || right(account_id, 4)
       ELSE repeat('*', length(account_id)) END AS account,
  CASE WHEN memo IS NULL THEN NULL ELSE '[redacted]' END AS memo,
  strftime(value_date, '%d/%m/%Y') AS value_date_text,
  'core-banking' AS system,
  '2' AS version,
  counterparty_name,
  amount
FROM read_parquet(?)
WHERE channel != 'atm'
"""

COMPARED = ["id", "booked_vienna", "booked_day", "amount_text", "amount4", "ref_text", "channel_code", "account", "memo",
            "value_date_text", "system", "version"]


def fail(msg: str) -> None:
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def text(v) -> str:
    return "" if v is None else str(v)


def read_export(path: str) -> list[dict]:
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or list(rows[0].keys()) != list(EXPECTED_TYPES):
            fail(f"CSV header {list(rows[0].keys()) if rows else None} != {list(EXPECTED_TYPES)}")
        return rows
    table = pq.read_table(path)
    got = {f.name: str(f.type) for f in table.schema}
    if got != EXPECTED_TYPES or table.column_names != list(EXPECTED_TYPES):
        fail(f"Parquet schema {got} != {EXPECTED_TYPES}")
    rows = table.to_pylist()
    for r in rows:
        for k, v in r.items():
            r[k] = text(v)
    return rows


def main() -> int:
    if sys.argv[1] in ("--same", "--differ"):
        a, b = (json.load(open(p)) for p in sys.argv[2:4])
        common = set(a) & set(b)
        if len(common) < 10:
            fail(f"only {len(common)} counterparties in both exports")
        if sys.argv[1] == "--same":
            bad = [n for n in common if a[n] != b[n]]
            if bad:
                fail(f"{len(bad)} names hash differently in two exports of one tenant, e.g. {bad[0]!r}")
        else:
            shared = set(a.values()) & set(b.values())
            if shared:
                fail(f"{len(shared)} hashes are the same for two tenants")
        print("OK")
        return 0

    source, export, hashes_out = sys.argv[1:4]
    sorted_export = "--sorted" in sys.argv
    con = duckdb.connect()
    expected = con.execute(EXPECTED_SQL, [source]).fetchall()
    names = [d[0] for d in con.description]
    expected = [dict(zip(names, r)) for r in expected]
    got = read_export(export)
    if len(got) != len(expected):
        fail(f"{len(got)} rows, expected {len(expected)}")
    by_id = {r["id"]: r for r in expected}
    hashes: dict[str, str] = {}
    names_of: dict[str, str] = {}
    for i, row in enumerate(got):
        want = by_id.get(row["id"])
        if want is None:
            fail(f"row {i}: unknown id {row['id']!r}")
        for col in COMPARED:
            if row[col] != text(want[col]):
                fail(f"row {i} id {row['id']}: {col} = {row[col]!r}, expected {text(want[col])!r}")
        h = row["counterparty"]
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            fail(f"row {i}: counterparty hash {h!r} is not 64 hex digits")
        name = want["counterparty_name"]
        if hashes.setdefault(name, h) != h:
            fail(f"{name!r} hashes to {hashes[name]} and {h} in one export")
        if names_of.setdefault(h, name) != name:
            fail(f"{names_of[h]!r} and {name!r} share a hash")
    if sorted_export:
        want_order = [r["id"] for r in sorted(expected, key=lambda r: (-r["amount"], r["id"]))]
        if [r["id"] for r in got] != want_order:
            fail("rows are not in the order amount desc, id")
    if len(hashes) < 10:
        fail(f"only {len(hashes)} distinct counterparties: the check would prove little")
    with open(hashes_out, "w") as f:
        json.dump(hashes, f)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
