#!/usr/bin/env python3
"""Checks a soak run (scripts/soak): did PostgreSQL keep every change the hub acknowledged?

Reads the load generator's record (`taxi-hub loadtest --record`, format in docs/soak.md, "The load generator's record"), the
soak's faults file (JSON lines: kind, start, end, details) and the hub's tables in PostgreSQL
(through `psql`), or in the embedded SQLite store (`--sqlite`), and classifies every
acknowledged change:

- a location the rider received (trip, seq, lat, lng) is kept when `trip_track_points` holds
  that trip and seq with the same lat/lng. Content counts, not presence: a seq lost to a SIGKILL
  must not count as kept just because the store holds some point under it (a restored trip
  numbers on above the restart's clock, docs/protocol.md §3.1 "Across restarts", and the check
  takes the seqs as it finds them).
- a trip event (created, accepted, each status) is kept when the stored trip is at that status
  or one reachable from it (docs/protocol.md §2.2), with the same rider and driver (when the
  event names them) and a stored seq at least the event's.

Trip changes are durable before they are acknowledged: losing one is never explained. The
only loss allowed is a GPS fix acknowledged inside a hub SIGKILL's window:
(lag read − lag − write allowance, kill + receive allowance]. `lag` is
`taxihub_snapshot_lag_seconds`, read right before the kill (the store held everything up to
`lag read − lag`); the write allowance covers the changes that snapshot's write did not carry
(drained before the write began); the receive allowance covers a frame the hub sent before it
died that the client read a moment after. Any other lost change is UNEXPLAINED.

Exit 1 when a change is lost unexplained, when nothing was acknowledged, or when the run held
less than --min-load-share of the target update rate; 0 otherwise. Python 3 standard library
only. Test: python3 scripts/soak_check_test.py
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

#: Statuses each status can still become (itself included), from the trip rules: a driver moves
#: a trip forward (any later status but CANCELED), the rider cancels a REQUESTED or STARTED one.
REACHABLE = {
    "REQUESTED": {"REQUESTED", "STARTED", "IN_PROGRESS", "COMPLETED", "CANCELED"},
    "STARTED": {"STARTED", "IN_PROGRESS", "COMPLETED", "CANCELED"},
    "IN_PROGRESS": {"IN_PROGRESS", "COMPLETED"},
    "COMPLETED": {"COMPLETED"},
    "CANCELED": {"CANCELED"},
}

#: Coordinates are stored as the 8-byte doubles the driver sent and echoed with round-trip
#: precision, so equal content is equal to the last bit; the tolerance only absorbs printing.
COORDINATE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Kill:
    """A hub SIGKILL from the faults file, with the snapshot lag read right before it."""

    at: float
    lag: float
    lag_read_at: float

    def window(self, write_allowance: float, receive_allowance: float) -> tuple[float, float]:
        return (self.lag_read_at - self.lag - write_allowance, self.at + receive_allowance)


@dataclass
class Change:
    """One acknowledged change as the record gives it."""

    kind: str  # "location" or the event's label, e.g. "status IN_PROGRESS"
    t: float
    trip: str
    seq: int
    data: dict


@dataclass
class Verdict:
    change: Change
    kept: bool
    reason: str = ""
    kill: Kill | None = None

    @property
    def explained(self) -> bool:
        return self.kept or self.kill is not None


@dataclass
class Phase:
    """The load between two faults (cut at each fault's start)."""

    name: str
    start: float
    end: float
    windows: list = field(default_factory=list)


@dataclass
class Settings:
    write_allowance: float = 0.5
    receive_allowance: float = 0.25
    min_load_share: float = 0.75
    target_rate: float | None = None  # driver updates per second the run aimed at


# ---------------------------------------------------------------- reading


def read_jsonl(path: str) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                # A run cut short may leave a half-written last line; anything else is a defect.
                raise SystemExit(f"{path}:{number}: not JSON ({error})")
    return rows


def record_kind(row: dict) -> str:
    return row.get("kind") or ""


def event_label(row: dict) -> str:
    """Trip state frames all have type `echo.message`; their status tells them apart."""
    status = row.get("status") or "?"
    return {"REQUESTED": "trip created", "STARTED": "trip accepted"}.get(status, f"status {status}")


def changes_from(record: list[dict]) -> list[Change]:
    """Acknowledged changes, each once (a resume may replay what a rider already saw)."""
    seen = set()
    changes = []
    for row in record:
        kind = record_kind(row)
        if kind == "location":
            key = ("location", row["trip"], int(row["seq"]), float(row["lat"]), float(row["lng"]))
            label = "location"
        elif kind == "event":
            key = ("event", row["trip"], int(row["seq"]), row.get("type"), row.get("status"), row.get("driver"))
            label = event_label(row)
        else:
            continue
        if key in seen:
            continue
        seen.add(key)
        changes.append(Change(kind=label, t=float(row["t"]), trip=str(row["trip"]).lower(), seq=int(row["seq"]), data=row))
    return changes


def kills_from(faults: list[dict]) -> list[Kill]:
    kills = []
    for fault in faults:
        if fault.get("kind") != "hub_kill":
            continue
        details = fault.get("details") or {}
        at = float(fault["start"])
        kills.append(Kill(at=at, lag=float(details["lag_seconds"]), lag_read_at=float(details.get("lag_read_at", at))))
    return sorted(kills, key=lambda kill: kill.at)


def psql_csv(database_url: str, query: str) -> list[list[str]]:
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", database_url, "-c", f"COPY ({query}) TO STDOUT WITH (FORMAT csv)"],
        check=True, capture_output=True, text=True,
    )
    return list(csv.reader(io.StringIO(result.stdout)))


def stored_from_csv(trip_rows: list[list[str]], point_rows: list[list[str]]) -> tuple[dict, dict]:
    """trips: id → (status, seq, rider, driver); points: (trip, seq) → (lat, lng)."""
    def number(text: str) -> int | None:
        return int(text) if text != "" else None

    trips = {row[0].lower(): (row[1], int(row[2]), number(row[3]), number(row[4])) for row in trip_rows}
    points = {(row[0].lower(), int(row[1])): (float(row[2]), float(row[3])) for row in point_rows}
    return trips, points


def read_sqlite(path: str) -> tuple[dict, dict]:
    """The same two tables from the embedded store's file (read-only; the hub has stopped)."""
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        trips = connection.execute("SELECT id, status, seq, rider_id, driver_id FROM trips").fetchall()
        points = connection.execute("SELECT trip_id, seq, lat, lng FROM trip_track_points").fetchall()
    text = lambda rows: [["" if value is None else str(value) for value in row] for row in rows]
    return stored_from_csv(text(trips), text(points))


def read_database(database_url: str) -> tuple[dict, dict]:
    return stored_from_csv(
        psql_csv(database_url, "SELECT id, status, seq, rider_id, driver_id FROM trips"),
        psql_csv(database_url, "SELECT trip_id, seq, lat, lng FROM trip_track_points"),
    )


# ---------------------------------------------------------------- judging


def judge(change: Change, trips: dict, points: dict) -> tuple[bool, str]:
    if change.kind == "location":
        stored = points.get((change.trip, change.seq))
        if stored is None:
            return False, "no track point with this seq"
        lat, lng = float(change.data["lat"]), float(change.data["lng"])
        if abs(stored[0] - lat) > COORDINATE_TOLERANCE or abs(stored[1] - lng) > COORDINATE_TOLERANCE:
            return False, f"seq reused by another point ({stored[0]}, {stored[1]})"
        return True, ""
    stored = trips.get(change.trip)
    if stored is None:
        return False, "no such trip"
    status, seq, rider, driver = stored
    wanted = change.data.get("status") or "REQUESTED"
    if status not in REACHABLE.get(wanted, {wanted}):
        return False, f"stored status {status} is not {wanted} or later"
    if change.data.get("driver") is not None and int(change.data["driver"]) != driver:
        return False, f"stored driver {driver}, acknowledged {change.data['driver']}"
    if change.data.get("rider") is not None and int(change.data["rider"]) != rider:
        return False, f"stored rider {rider}, acknowledged {change.data['rider']}"
    if seq < change.seq:
        return False, f"stored seq {seq} < {change.seq}"
    return True, ""


def classify(changes: list[Change], kills: list[Kill], trips: dict, points: dict, settings: Settings) -> list[Verdict]:
    verdicts = []
    for change in changes:
        kept, reason = judge(change, trips, points)
        verdict = Verdict(change=change, kept=kept, reason=reason)
        # Trip changes (created, accepted, each status) are durable before they are acknowledged:
        # no window explains losing one. Only GPS fixes go to the store in periodic snapshots.
        if not kept and change.kind == "location":
            for kill in kills:
                low, high = kill.window(settings.write_allowance, settings.receive_allowance)
                if low < change.t <= high:
                    verdict.kill = kill
                    break
        verdicts.append(verdict)
    return verdicts


def phases_from(windows: list[dict], faults: list[dict]) -> list[Phase]:
    if not windows:
        return []
    first, last = float(windows[0]["t"]), float(windows[-1]["t"])
    cuts = sorted((float(f["start"]), f["kind"]) for f in faults if first < float(f["start"]) < last)
    bounds = [(first - 1, "steady load")] + cuts
    phases = []
    for index, (start, name) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else last
        label = name if index == 0 else f"from {name}"
        phases.append(Phase(name=label, start=start, end=end))
    for window in windows:
        t = float(window["t"])
        for phase in phases:
            if phase.start < t <= phase.end:
                phase.windows.append(window)
                break
    return [phase for phase in phases if phase.windows]


# ---------------------------------------------------------------- reporting


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(share * len(ordered))) - 1)]


def fmt(value: float, digits: int = 0) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


class Report:
    """The checker's findings and their text and Markdown forms."""

    def __init__(self, record: list[dict], faults: list[dict], verdicts: list[Verdict], settings: Settings):
        self.record = record
        self.faults = faults
        self.verdicts = verdicts
        self.settings = settings
        self.start = next((row for row in record if record_kind(row) == "start"), {})
        self.end = next((row for row in reversed(record) if record_kind(row) == "end"), None)
        self.windows = [row for row in record if record_kind(row) == "window"]
        self.drops = [row for row in record if record_kind(row) == "drop"]
        self.phases = phases_from(self.windows, faults)

    # -- figures

    def by_kind(self) -> dict[str, list[int]]:
        table: dict[str, list[int]] = {}
        for verdict in self.verdicts:
            row = table.setdefault(verdict.change.kind, [0, 0, 0, 0])
            row[0] += 1
            row[1 if verdict.kept else 2 if verdict.explained else 3] += 1
        order = ["trip created", "trip accepted", "status IN_PROGRESS", "status COMPLETED", "status CANCELED", "location"]
        return dict(sorted(table.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0])))

    def unexplained(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.explained]

    def lost_explained(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.kept and v.explained]

    def target_rate(self) -> float | None:
        if self.settings.target_rate:
            return self.settings.target_rate
        settings = self.start.get("settings") or {}
        drivers, hz = settings.get("drivers"), settings.get("gps_hz")
        return float(drivers) * float(hz) if drivers and hz else None

    def held_rate(self) -> float:
        if not self.windows:
            return 0.0
        return sum(float(w.get("sent", 0)) for w in self.windows) / len(self.windows)

    def failures(self) -> list[str]:
        problems = []
        if not self.verdicts:
            problems.append("nothing was acknowledged")
        if self.unexplained():
            problems.append(f"{len(self.unexplained())} acknowledged changes lost outside every SIGKILL window")
        target = self.target_rate()
        if target and self.held_rate() < self.settings.min_load_share * target:
            problems.append(
                f"the run held {self.held_rate():,.0f} updates/s, less than {self.settings.min_load_share:.0%} "
                f"of the target {target:,.0f}"
            )
        return problems

    def fault_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fault in self.faults:
            counts[fault["kind"]] = counts.get(fault["kind"], 0) + 1
        if self.drops:
            counts["client_drop"] = len(self.drops)
        return counts

    # -- text

    def phase_rows(self) -> list[list[str]]:
        rows = []
        origin = float(self.windows[0]["t"]) - 1 if self.windows else 0.0
        for phase in self.phases:
            seconds = len(phase.windows)
            p99s = [float(w["p99_ms"]) for w in phase.windows if w.get("p99_ms") is not None and w.get("received", 0)]
            rows.append([
                phase.name, f"{phase.start - origin:.0f}–{phase.end - origin:.0f} s",
                fmt(sum(float(w.get("sent", 0)) for w in phase.windows) / seconds),
                fmt(sum(float(w.get("received", 0)) for w in phase.windows) / seconds),
                fmt(statistics.median(p99s) if p99s else math.nan, 1),
                fmt(max(p99s) if p99s else math.nan, 1),
                f"{sum(int(w.get('reconnects', 0)) for w in phase.windows):,}",
                f"{sum(int(w.get('errors', 0)) for w in phase.windows):,}",
            ])
        return rows

    def fault_rows(self) -> list[list[str]]:
        origin = float(self.windows[0]["t"]) - 1 if self.windows else (float(self.faults[0]["start"]) if self.faults else 0.0)
        rows = []
        for fault in sorted(self.faults, key=lambda f: float(f["start"])):
            details = fault.get("details") or {}
            text = ", ".join(f"{key} {value}" for key, value in details.items() if key != "lag_read_at")
            end = fault.get("end")
            span = f"{float(end) - float(fault['start']):.1f} s" if end is not None else "–"
            rows.append([f"{float(fault['start']) - origin:.1f} s", fault["kind"], span, text])
        if self.drops:
            dropped = sum(int(row.get("clients", 0)) for row in self.drops)
            rows.append(["every drop", "client_drop", "–", f"{len(self.drops)} rounds, {dropped:,} connections cut mid-trip"])
        return rows

    def lost_rows(self) -> list[list[str]]:
        origin = float(self.windows[0]["t"]) - 1 if self.windows else 0.0
        rows = []
        for verdict in sorted(self.lost_explained() + self.unexplained(), key=lambda v: v.change.t):
            change = verdict.change
            if verdict.kill is not None:
                age = verdict.kill.at - change.t
                low, _ = verdict.kill.window(self.settings.write_allowance, self.settings.receive_allowance)
                why = (f"explained: {age:.3f} s before the SIGKILL, window {verdict.kill.at - low:.3f} s "
                       f"(lag {verdict.kill.lag:.3f} s + allowance)")
            else:
                why = "UNEXPLAINED"
            rows.append([change.kind, change.trip[:8], str(change.seq), f"{change.t - origin:.3f} s", why, verdict.reason])
        return rows

    def markdown(self) -> str:
        def table(header: list[str], rows: list[list[str]]) -> str:
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            return "\n".join(lines)

        kinds = self.by_kind()
        totals = [sum(row[i] for row in kinds.values()) for i in range(4)]
        out = []
        target = self.target_rate()
        out.append(
            f"Load held: {self.held_rate():,.0f} driver updates/s on average over {len(self.windows)} s"
            + (f" (target {target:,.0f}, {self.held_rate() / target:.0%})" if target else "") + "."
        )
        out.append("")
        out.append(table(["phase", "time", "sent/s", "received/s", "p99 ms (median s)", "p99 ms (worst s)", "reconnects", "errors"], self.phase_rows()))
        summary = (self.end or {}).get("summary") or {}
        if summary:
            def by_code(table: dict) -> str:
                return ", ".join(f"{code} {count:,}" for code, count in sorted(table.items())) or "none"
            out.append("")
            out.append(
                f"Load generator: {summary.get('trips_completed', 0):,} trips completed, "
                f"{summary.get('reconnects', 0):,} reconnections, {summary.get('drops', 0):,} sockets dropped on purpose; "
                f"error frames: {by_code(summary.get('errors') or {})}; "
                f"failed connection attempts: {by_code(summary.get('connection_failures') or {})}."
            )
        out.append("")
        counts = self.fault_counts()
        out.append("Faults injected: " + ", ".join(f"{kind} × {count}" for kind, count in counts.items()) + ".")
        out.append("")
        out.append(table(["at", "fault", "lasted", "details"], self.fault_rows()))
        out.append("")
        out.append(table(
            ["change", "acknowledged", "kept", "lost, explained", "lost, UNEXPLAINED"],
            [[kind] + [f"{n:,}" for n in row] for kind, row in kinds.items()] + [["**total**"] + [f"**{n:,}**" for n in totals]],
        ))
        out.append("")
        out.append(table(["lost in", "lost changes", "acknowledged before the kill", "window before the kill"], self.kill_rows()))
        out.append("")
        out.append(
            f"Window of a SIGKILL: (lag read − lag − {self.settings.write_allowance} s write allowance, "
            f"kill + {self.settings.receive_allowance} s receive allowance]; the lag is "
            "`taxihub_snapshot_lag_seconds` read right before the kill."
        )
        return "\n".join(out)

    def kill_rows(self) -> list[list[str]]:
        """One row per SIGKILL (and one for unexplained losses): what was lost and how long before the kill."""
        origin = float(self.windows[0]["t"]) - 1 if self.windows else 0.0
        groups: dict = {}
        for verdict in self.verdicts:
            if not verdict.kept:
                groups.setdefault(verdict.kill, []).append(verdict)
        kills = sorted({kill for kill in kills_from(self.faults)} | {k for k in groups if k is not None}, key=lambda k: k.at)
        rows = []
        for kill in kills:
            lost = groups.get(kill, [])
            low, _ = kill.window(self.settings.write_allowance, self.settings.receive_allowance)
            kinds: dict[str, int] = {}
            for verdict in lost:
                kinds[verdict.change.kind] = kinds.get(verdict.change.kind, 0) + 1
            ages = [kill.at - verdict.change.t for verdict in lost]
            rows.append([
                f"hub_kill at {kill.at - origin:.1f} s",
                f"{len(lost):,}" + (" (" + ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items())) + ")" if lost else ""),
                f"{min(ages):.3f}–{max(ages):.3f} s" if ages else "–",
                f"{kill.at - low:.3f} s (lag {kill.lag:.3f} s, read {kill.at - kill.lag_read_at:.3f} s before the kill, "
                f"+ {self.settings.write_allowance} s)",
            ])
        if None in groups:
            rows.append(["**UNEXPLAINED**", f"**{len(groups[None]):,}**", "outside every window", "–"])
        return rows

    def lost_list(self) -> str:
        """Every lost change, oldest first, with its age before its kill."""
        rows = self.lost_rows()
        if not rows:
            return "No acknowledged change was lost."
        header = ["lost change", "trip", "seq", "acknowledged at", "why", "store has"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def run(args: argparse.Namespace) -> int:
    settings = Settings(
        write_allowance=args.write_allowance, receive_allowance=args.receive_allowance,
        min_load_share=args.min_load_share, target_rate=args.target_rate,
    )
    record = read_jsonl(args.record)
    faults = read_jsonl(args.faults) if args.faults else []
    if args.database_url:
        trips, points = read_database(args.database_url)
    elif args.sqlite:
        trips, points = read_sqlite(args.sqlite)
    else:
        with open(args.trips_csv, encoding="utf-8") as a, open(args.points_csv, encoding="utf-8") as b:
            trips, points = stored_from_csv(list(csv.reader(a)), list(csv.reader(b)))
    verdicts = classify(changes_from(record), kills_from(faults), trips, points, settings)
    report = Report(record, faults, verdicts, settings)
    text = report.markdown() + "\n\n### Every lost change\n\n" + report.lost_list()
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    problems = report.failures()
    print()
    if problems:
        for problem in problems:
            print(f"soak-check: FAILED: {problem}")
        return 1
    totals = [sum(row[i] for row in report.by_kind().values()) for i in range(4)]
    print(f"soak-check: {totals[0]:,} changes acknowledged, {totals[1]:,} kept, {totals[2]:,} lost inside a SIGKILL window, 0 unexplained")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", required=True, help="the load generator's --record file (JSON lines)")
    parser.add_argument("--faults", help="the soak's faults file (JSON lines)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--database-url", help="PostgreSQL the hub wrote to (read with psql)")
    source.add_argument("--sqlite", help="the embedded store's file the hub wrote to (DATA/taxihub.sqlite)")
    source.add_argument("--trips-csv", help="instead of PostgreSQL: id,status,seq,rider_id,driver_id rows")
    parser.add_argument("--points-csv", help="with --trips-csv: trip_id,seq,lat,lng rows")
    parser.add_argument("--write-allowance", type=float, default=0.5, help="seconds before the last snapshot's end still at risk (default 0.5)")
    parser.add_argument("--receive-allowance", type=float, default=0.25, help="seconds after a kill a client may still read the hub's last frames (default 0.25)")
    parser.add_argument("--min-load-share", type=float, default=0.75, help="least share of the target update rate the run must hold (default 0.75)")
    parser.add_argument("--target-rate", type=float, help="target driver updates/s (default: drivers × gps_hz from the record's start line)")
    parser.add_argument("--markdown", help="also write the Markdown report here")
    args = parser.parse_args(argv)
    if args.trips_csv and not args.points_csv:
        parser.error("--trips-csv needs --points-csv")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
