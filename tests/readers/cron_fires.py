#!/usr/bin/env python3
"""Fire times of cron expressions in IANA zones, by croniter and zoneinfo, for tests/cron_corpus.rs.

    cron_fires.py < cases.json > fires.json

Input: {"cases": [{"expr": "30 2 * * *", "zone": "Europe/Vienna",
                   "start": "2025-01-01T00:00:00Z", "count": 1000,
                   "until": "2100-01-01T00:00:00Z"}, ...]}
Output: {"fires": [["2025-01-01T01:30:00Z", ...], ...],   # one list per case, UTC
         "normalised": {"fold_repeat_dropped": N, "gap_fire_added": M}}

Each list holds the first `count` fires strictly after `start` and before `until`, under
egress's schedule contract (docs/schedules.md): a wall time in a spring-forward gap runs once at the first valid
instant after the gap (several such wall times run once, together); a wall time in a
fall-back fold runs at its first occurrence only; a day a month lacks is skipped.

croniter, given a start in a zone, mostly moves a wall time in a gap to the gap's end and
collapses several into one (or into the real wall time at the gap's end). It differs from the
contract in two cases, which are normalised here:
  - fold: croniter runs a wall time that occurs twice at both occurrences (02:30+02:00 and
    02:30+01:00 in Europe/Vienna on the last Sunday of October). The contract runs it once,
    so the second occurrence is dropped ("fold_repeat_dropped" counts them).
  - gap with `*` hours: when the hour field is `*`, croniter skips a gap's wall times and goes
    on to the next wall time that exists (`*/20 * * * *` in Australia/Lord_Howe on the first
    Sunday of October: 01:40, then 02:40, where 02:00 and 02:20 fell in the 02:00-02:30 gap).
    The contract runs them once at the gap's end (02:30), so that fire is added
    ("gap_fire_added" counts them): for each gap between two croniter fires, croniter on naive
    wall times says whether one of the expression's wall times falls in the minutes the clock
    skipped; if so, a fire at the gap's end is inserted unless croniter already has one there.
To be sure those are the only differences, the contract is also computed without croniter's
time zone code: croniter on naive wall times (the calendar alone), each wall time resolved with
zoneinfo (a gap's wall times to the first whole minute that exists after them, a fold's to
its first occurrence), wall times that resolve to the same instant merged. The two must agree
for every case; the script exits 1 with the first difference otherwise.
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import croniter

UTC = timezone.utc
PRESETS = {"hourly", "daily", "weekly", "monthly", "yearly", "annually"}


def croniter_expr(expr):
    # croniter knows the presets only with `@`.
    return "@" + expr if expr in PRESETS else expr


def wall_exists(wall, zone, fold):
    aware = wall.replace(tzinfo=zone, fold=fold)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def is_second_occurrence(t, zone):
    """True when `t` (aware, in `zone`) is the later of two instants showing the same wall time."""
    wall = t.replace(tzinfo=None)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return False
    if not (wall_exists(wall, zone, 0) and wall_exists(wall, zone, 1)):
        return False  # a gap, not a fold
    instants = sorted([first.astimezone(UTC), second.astimezone(UTC)])
    return t.astimezone(UTC) == instants[1]


def gaps_between(zone, a, b):
    """The forward transitions of `zone` between instants a < b, as (last second before, first
    second after), found in steps of a day and then to the second."""
    offset = lambda ts: datetime.fromtimestamp(ts, zone).utcoffset()
    t, end = int(a.timestamp()), int(b.timestamp())
    while t < end:
        u = min(t + 86400, end)
        if offset(u) > offset(t):
            lo, hi = t, u
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) > offset(lo):
                    hi = mid
                else:
                    lo = mid
            yield datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
        t = u


def skipped_gap_fires(expr, zone, prev, t):
    """Gap ends croniter passed over between its fires `prev` and `t` (aware, in `zone`): those
    of gaps in which one of the expression's wall times fell."""
    out = []
    for before, after in gaps_between(zone, prev.astimezone(UTC), t.astimezone(UTC)):
        # The skipped wall minutes are those after `before`'s and before `after`'s.
        last_shown = before.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        first_shown = after.astimezone(zone).replace(tzinfo=None)
        if croniter(croniter_expr(expr), last_shown).get_next(datetime) < first_shown:
            out.append(after)
    return [g for g in out if g < t.astimezone(UTC)]


def by_croniter(expr, zone, start, count, until, counts):
    it = croniter(croniter_expr(expr), start.astimezone(zone))
    out = []
    prev = start.astimezone(zone)
    while len(out) < count:
        t = it.get_next(datetime)
        for added in skipped_gap_fires(expr, zone, prev, t):
            if start < added < until and len(out) < count:
                counts["gap_fire_added"] += 1
                out.append(added)
        prev = t
        if len(out) == count:
            break
        if t >= until:
            break
        if is_second_occurrence(t, zone):
            counts["fold_repeat_dropped"] += 1
            continue
        out.append(t.astimezone(UTC))
    return out


def resolve(wall, zone):
    """The instant of a wall time under the contract."""
    if wall_exists(wall, zone, 0) or wall_exists(wall, zone, 1):
        instants = [wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1) if wall_exists(wall, zone, f)]
        return min(instants)
    probe = wall
    while True:
        probe += timedelta(minutes=1)
        if wall_exists(probe, zone, 0) or wall_exists(probe, zone, 1):
            return resolve(probe, zone)


def by_calendar(expr, zone, start, count, until):
    # Two days early: a gap's wall times may be up to a day before the instant they run at.
    wall_start = start.astimezone(zone).replace(tzinfo=None) - timedelta(days=2)
    it = croniter(croniter_expr(expr), wall_start)
    out = []
    while len(out) < count:
        t = resolve(it.get_next(datetime), zone)
        if t >= until:
            break
        if t <= start or (out and out[-1] == t):
            continue
        out.append(t)
    return out


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    cases = json.load(sys.stdin)["cases"]
    counts = {"fold_repeat_dropped": 0, "gap_fire_added": 0}
    fires = []
    for c in cases:
        zone = ZoneInfo(c["zone"])
        start = datetime.fromisoformat(c["start"].replace("Z", "+00:00"))
        until = datetime.fromisoformat(c["until"].replace("Z", "+00:00"))
        got = by_croniter(c["expr"], zone, start, c["count"], until, counts)
        want = by_calendar(c["expr"], zone, start, c["count"], until)
        if got != want:
            i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)) - 1)
            print(
                f"croniter (normalised) and the calendar disagree for {c['expr']!r} in {c['zone']} from {c['start']}: "
                f"fire {i}: croniter {iso(got[i])} ({got[i].astimezone(zone).isoformat()}), "
                f"calendar {iso(want[i])} ({want[i].astimezone(zone).isoformat()})",
                file=sys.stderr,
            )
            sys.exit(1)
        fires.append([iso(t) for t in got])
    json.dump({"fires": fires, "normalised": counts}, sys.stdout)


if __name__ == "__main__":
    main()
