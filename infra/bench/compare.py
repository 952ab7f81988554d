#!/usr/bin/env python3
"""Compare egress's benchmark line with the peers' (infra/bench/peers.py), read from stdin.

    (egress bench ...; peers.py ...) | compare.py

Every input line that is a JSON object with a "tool" is a result: egress's has "tool": "egress"
(through the export state machine) or "egress-direct" (the stage functions called straight).
Other lines are ignored. Results are grouped by format and compression; in each group a
table shows every tool, then:
  speed   egress rows/s divided by the fastest peer's rows/s (above 1: egress is faster), each
          over the export call alone (a peer's `tool_seconds`: no interpreter start-up);
  memory  egress peak RSS divided by each peer's (below 1: egress uses less);
  and, when both egress lines are there, the state machine's time over the direct calls'.
When a tool appears several times in a group, its fastest line is the one compared.
Always exits 0.
"""

from __future__ import annotations

import json
import sys


def seconds(r: dict) -> float:
    """The time of the export itself: a peer's `tool_seconds` (its COPY or sink call, without
    Python's start-up and imports) when given, so that the ratio never flatters egress."""
    return float(r.get("tool_seconds") or r.get("seconds") or 0.0)


def speed(r: dict) -> float:
    return r.get("rows", 0) / seconds(r) if seconds(r) else 0.0


def main() -> int:
    groups: dict[tuple[str, str], list[dict]] = {}
    for raw in sys.stdin:
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            r = json.loads(raw)
        except ValueError:
            continue
        if isinstance(r, dict) and "tool" in r:
            key = (str(r.get("format", "?")), str(r.get("compression", "none")))
            groups.setdefault(key, []).append(r)
    if not groups:
        print("no results on stdin")
        return 0

    for (fmt, compression), results in groups.items():
        print(f"\n{fmt}" + ("" if compression == "none" else f" + {compression}"))
        print(f"  {'tool':<10} {'seconds':>9} {'rows/s':>13} {'MB/s':>9} {'peak RSS MB':>12}")
        for r in results:
            if "error" in r:
                print(f"  {r['tool']:<10} failed: {r['error']}")
                continue
            print(f"  {r['tool']:<10} {seconds(r):>9.3f} {speed(r):>13,.0f} {(r.get('bytes') or 0) / 1e6 / (seconds(r) or 1):>9.1f} {r.get('peak_rss_mb') or 0:>12.1f}")

        best: dict[str, dict] = {}
        for r in results:
            if "error" not in r and (r["tool"] not in best or speed(r) > speed(best[r["tool"]])):
                best[r["tool"]] = r
        egress = best.pop("egress", None)
        direct = best.pop("egress-direct", None)
        if egress is not None and direct is not None and speed(direct) > 0:
            print(f"  state machine / direct stage calls = {seconds(egress) / seconds(direct):.3f}x time"
                  f"  (peak RSS {egress.get('peak_rss_mb') or 0:.0f} MB vs {direct.get('peak_rss_mb') or 0:.0f} MB)")
        if egress is None:
            print("  (no egress result for this format)")
            continue
        if not best:
            print("  (no peer results for this format)")
            continue
        rows = {r.get("rows") for r in best.values()} | {egress.get("rows")}
        if len(rows) > 1:
            print(f"  warning: the tools wrote different row counts: {sorted(rows, key=str)}")
        fastest = max(best.values(), key=speed)
        if speed(fastest) > 0:
            print(f"  speed:  egress / fastest peer ({fastest['tool']}) = {speed(egress) / speed(fastest):.2f}x  (>1: egress faster)")
        for tool, r in best.items():
            if r.get("peak_rss_mb") and egress.get("peak_rss_mb"):
                ratio = egress["peak_rss_mb"] / r["peak_rss_mb"]
                print(f"  memory: egress / {tool:<8} = {ratio:.2f}x  ({egress['peak_rss_mb']:.1f} MB vs {r['peak_rss_mb']:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
