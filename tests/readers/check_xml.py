#!/usr/bin/env python3
"""Check an XML file written by egress against its source, with Python's XML parser and DuckDB.

    check_xml.py --xml FILE --source GLOB --row NAME [--where SQL]
                 --field 'REL_PATH=SQL' ... [--expect 'PATH=SQL' ...]

Each element named NAME (namespaces ignored) is one row; its values are the texts at REL_PATH
below it (element names joined by `/`, `@attr` for an attribute; a missing element is NULL).
The rows, as a multiset, must equal `SELECT <SQL>, ... FROM source WHERE ...` with every
value cast to text. `--expect` compares the text at a path from the document element
(`GrpHdr/NbOfTxs`) with a scalar query. Exit 0 and `OK`, or 1 with the first difference.
"""

import argparse
import collections
import sys
import xml.etree.ElementTree as ET

import duckdb


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find(elem, rel: str):
    parts = rel.split("/")
    cur = [elem]
    for p in parts:
        if p.startswith("@"):
            for c in cur:
                for k, v in c.attrib.items():
                    if local(k) == p[1:]:
                        return v
            return None
        cur = [c for e in cur for c in e if local(c.tag) == p]
        if not cur:
            return None
    return cur[0].text or ""


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--xml", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--row", required=True)
    p.add_argument("--where", default="true")
    p.add_argument("--field", action="append", default=[])
    p.add_argument("--expect", action="append", default=[])
    a = p.parse_args()
    fields = [f.split("=", 1) for f in a.field]
    tree = ET.parse(a.xml)  # the file has no DTD; ElementTree expands no external entity
    root = tree.getroot()
    got = collections.Counter()
    for e in root.iter():
        if local(e.tag) == a.row:
            got[tuple(find(e, rel) for rel, _ in fields)] += 1
    con = duckdb.connect()
    select = ", ".join(f"CAST(({sql}) AS VARCHAR)" for _, sql in fields)
    rows = con.execute(f"SELECT {select} FROM read_parquet('{a.source}') WHERE {a.where}").fetchall()
    want = collections.Counter(tuple(r) for r in rows)
    if sum(want.values()) == 0:
        print("the source query selects no rows: the check would prove nothing")
        return 1
    if got != want:
        missing = list((want - got).elements())[:3]
        extra = list((got - want).elements())[:3]
        print(f"rows differ: file has {sum(got.values())}, source {sum(want.values())}")
        print(f"  in the source, not the file: {missing}")
        print(f"  in the file, not the source: {extra}")
        return 1
    for ex in a.expect:
        path, sql = ex.split("=", 1)
        text = find(root, path)
        value = con.execute(sql.replace("SOURCE", f"read_parquet('{a.source}')")).fetchone()[0]
        if text != str(value):
            print(f"{path}: the file has {text!r}, the source gives {value!r}")
            return 1
    print(f"OK {sum(got.values())} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
