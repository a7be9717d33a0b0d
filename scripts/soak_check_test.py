#!/usr/bin/env python3
"""Unit tests of scripts/soak-check.py on made-up records, faults and stored rows (no live run).

Run: python3 scripts/soak_check_test.py
"""
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import unittest

_spec = importlib.util.spec_from_file_location("soak_check", os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak-check.py"))
soak_check = importlib.util.module_from_spec(_spec)
sys.modules["soak_check"] = soak_check  # dataclasses look their module up there
_spec.loader.exec_module(soak_check)

TRIP_A = "aaaaaaaa-0000-0000-0000-000000000001"
TRIP_B = "bbbbbbbb-0000-0000-0000-000000000002"
TRIP_C = "cccccccc-0000-0000-0000-000000000003"
KILL_AT = 1000.0
#: The lag read at 999.9 was 0.8 s: the store held everything up to 999.1; with the 0.5 s write
#: allowance the window is (998.6, 1000.25].
FAULTS = [
    {"kind": "pg_restart", "start": 980.0, "end": 980.5, "details": {}},
    {"kind": "hub_kill", "start": KILL_AT, "end": 1003.0, "details": {"lag_seconds": 0.8, "lag_read_at": 999.9}},
]


def windows(start, seconds, sent=100, received=40):
    return [
        {"kind": "window", "t": start + i, "sent": sent, "received": received, "p50_ms": 2, "p99_ms": 9,
         "max_ms": 20, "open": 60, "reconnects": 0, "errors": 0, "drops": 0}
        for i in range(1, seconds + 1)
    ]


def event(t, trip, seq, status, driver=None, rider=7):
    return {"kind": "event", "t": t, "trip": trip, "seq": seq, "type": "echo.message", "status": status, "driver": driver, "rider": rider}


def location(t, trip, seq, lat, lng):
    return {"kind": "location", "t": t, "trip": trip, "seq": seq, "lat": lat, "lng": lng}


def base_record():
    return (
        [{"kind": "start", "t": 970.0, "settings": {"drivers": 50, "gps_hz": 2}}]
        + windows(970.0, 40)
        + [
            # Trip A: created, accepted, moving, completed, all stored.
            event(971.0, TRIP_A, 1, "REQUESTED"),
            event(972.0, TRIP_A, 2, "STARTED", driver=3),
            location(973.0, TRIP_A, 3, 40.1, -74.1),
            location(973.5, TRIP_A, 4, 40.2, -74.2),
            location(973.5, TRIP_A, 4, 40.2, -74.2),  # replayed by a resume: counted once
            event(974.0, TRIP_A, 5, "IN_PROGRESS", driver=3),
            # Trip B: STARTED acknowledged long before the kill; the store has it IN_PROGRESS later.
            event(975.0, TRIP_B, 1, "REQUESTED"),
            event(976.0, TRIP_B, 2, "STARTED", driver=4),
            location(999.5, TRIP_B, 3, 41.0, -73.0),  # lost in the kill's window; seq 3 later reused
            location(1004.0, TRIP_B, 3, 41.5, -73.5),  # the restarted hub's seq 3: stored
            event(1005.0, TRIP_B, 4, "IN_PROGRESS", driver=4),
            {"kind": "drop", "t": 985.0, "clients": 5},
            {"kind": "end", "t": 1010.0, "summary": {"trips_completed": 12, "reconnects": 60, "drops": 5,
                                                     "errors": {}, "connection_failures": {"http_503": 2}}},
        ]
    )


TRIPS = [
    [TRIP_A, "IN_PROGRESS", "5", "7", "3"],
    [TRIP_B, "IN_PROGRESS", "4", "7", "4"],
]
POINTS = [
    [TRIP_A, "3", "40.1", "-74.1"],
    [TRIP_A, "4", "40.2", "-74.2"],
    [TRIP_B, "3", "41.5", "-73.5"],
]


class SoakCheckTests(unittest.TestCase):
    def check(self, record, faults=FAULTS, trips=TRIPS, points=POINTS, extra=()):
        """Runs the checker's command line on files; returns (exit code, output)."""
        with tempfile.TemporaryDirectory() as folder:
            paths = {name: os.path.join(folder, name) for name in ("record", "faults", "trips", "points", "md")}
            for name, rows in (("record", record), ("faults", faults)):
                with open(paths[name], "w") as handle:
                    handle.writelines(json.dumps(row) + "\n" for row in rows)
            for name, rows in (("trips", trips), ("points", points)):
                with open(paths[name], "w") as handle:
                    handle.writelines(",".join(row) + "\n" for row in rows)
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                code = soak_check.main([
                    "--record", paths["record"], "--faults", paths["faults"], "--trips-csv", paths["trips"],
                    "--points-csv", paths["points"], "--markdown", paths["md"], *extra,
                ])
            with open(paths["md"]) as handle:
                self.assertIn("| change | acknowledged |", handle.read())
            return code, output.getvalue()

    def verdicts(self, record, trips=TRIPS, points=POINTS):
        stored_trips, stored_points = soak_check.stored_from_csv(trips, points)
        return soak_check.classify(
            soak_check.changes_from(record), soak_check.kills_from(FAULTS), stored_trips, stored_points, soak_check.Settings()
        )

    def test_a_loss_inside_the_kill_window_is_explained(self):
        code, output = self.check(base_record())
        self.assertEqual(code, 0, output)
        self.assertIn("10 changes acknowledged, 9 kept, 1 lost inside a SIGKILL window, 0 unexplained", output)
        self.assertIn("explained: 0.500 s before the SIGKILL", output)
        self.assertIn("12 trips completed, 60 reconnections, 5 sockets dropped on purpose; error frames: none; "
                      "failed connection attempts: http_503 2.", output)
        self.assertIn("| trip created | 2 | 2 | 0 | 0 |\n| trip accepted | 2 | 2 | 0 | 0 |\n| status IN_PROGRESS | 2 | 2 | 0 | 0 |\n"
                      "| location | 4 | 3 | 1 | 0 |", output)

    def test_a_reused_seq_with_other_content_is_lost_not_kept(self):
        lost = [v for v in self.verdicts(base_record()) if not v.kept]
        self.assertEqual(len(lost), 1)
        self.assertEqual((lost[0].change.trip, lost[0].change.seq, lost[0].change.data["lat"]), (TRIP_B, 3, 41.0))
        self.assertIn("seq reused by another point", lost[0].reason)
        self.assertEqual(lost[0].kill.at, KILL_AT)

    def test_a_loss_outside_every_window_is_unexplained(self):
        # Seq 4 of trip A acknowledged at 990: 8.6 s before the window opens.
        record = base_record() + [location(990.0, TRIP_A, 6, 40.3, -74.3)]
        code, output = self.check(record)
        self.assertEqual(code, 1, output)
        self.assertIn("UNEXPLAINED", output)
        self.assertIn("1 acknowledged changes lost outside every SIGKILL window", output)
        self.assertIn("| hub_kill at 30.0 s | 1 (1 location) | 0.500–0.500 s | 1.400 s (lag 0.800 s, read 0.100 s before the kill, + 0.5 s) |\n"
                      "| **UNEXPLAINED** | **1** | outside every window | – |", output)

    def test_the_window_edges(self):
        # Just inside the low edge (998.6) and the receive allowance (1000.25); just outside both.
        record = [
            location(998.61, TRIP_C, 1, 1.0, 1.0), location(1000.24, TRIP_C, 2, 1.0, 1.0),
            location(998.59, TRIP_C, 3, 1.0, 1.0), location(1000.26, TRIP_C, 4, 1.0, 1.0),
        ]
        explained = [v.explained for v in self.verdicts(record)]
        self.assertEqual(explained, [True, True, False, False])

    def test_a_status_is_kept_only_when_the_stored_trip_can_have_passed_through_it(self):
        trips = [[TRIP_A, "COMPLETED", "9", "7", "3"], [TRIP_B, "CANCELED", "3", "7", "4"], [TRIP_C, "STARTED", "2", "7", "5"]]
        record = [
            event(971.0, TRIP_A, 5, "IN_PROGRESS", driver=3),  # COMPLETED follows IN_PROGRESS: kept
            event(972.0, TRIP_B, 3, "IN_PROGRESS", driver=4),  # CANCELED never follows IN_PROGRESS: lost
            event(973.0, TRIP_C, 2, "STARTED", driver=6),  # another driver stored: lost
            event(974.0, TRIP_C, 3, "STARTED", driver=5),  # stored seq 2 < 3: lost
        ]
        verdicts = self.verdicts(record, trips=trips, points=[])
        self.assertEqual([v.kept for v in verdicts], [True, False, False, False])
        self.assertIn("not IN_PROGRESS or later", verdicts[1].reason)
        self.assertIn("stored driver 5", verdicts[2].reason)
        self.assertIn("stored seq 2 < 3", verdicts[3].reason)

    def test_a_missing_trip_loses_its_creation_and_no_kill_window_explains_it(self):
        # 999.0 is inside the kill's window: a location lost there would be explained, a trip
        # change never is (trip changes are durable before they are acknowledged).
        verdicts = self.verdicts([event(999.0, TRIP_C, 1, "REQUESTED")], points=[])
        self.assertFalse(verdicts[0].kept)
        self.assertEqual(verdicts[0].reason, "no such trip")
        self.assertFalse(verdicts[0].explained)

    def test_the_embedded_store_reads_like_postgresql(self):
        import os, sqlite3, tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "taxihub.sqlite")
            with sqlite3.connect(path) as db:
                db.execute("CREATE TABLE trips (id TEXT, status TEXT, seq INTEGER, rider_id INTEGER, driver_id INTEGER)")
                db.execute("CREATE TABLE trip_track_points (trip_id TEXT, seq INTEGER, lat REAL, lng REAL)")
                db.execute("INSERT INTO trips VALUES (?, 'STARTED', 3, 1, NULL)", (TRIP_A.upper(),))
                db.execute("INSERT INTO trip_track_points VALUES (?, 4, 52.5, 13.4)", (TRIP_A,))
            trips, points = soak_check.read_sqlite(path)
        self.assertEqual(trips, {TRIP_A.lower(): ("STARTED", 3, 1, None)})
        self.assertEqual(points, {(TRIP_A.lower(), 4): (52.5, 13.4)})

    def test_nothing_acknowledged_fails(self):
        record = [{"kind": "start", "t": 970.0, "settings": {"drivers": 50, "gps_hz": 2}}] + windows(970.0, 10)
        code, output = self.check(record)
        self.assertEqual(code, 1)
        self.assertIn("nothing was acknowledged", output)

    def test_too_little_load_fails(self):
        record = [row for row in base_record() if row["kind"] != "window"] + windows(970.0, 40, sent=60)
        code, output = self.check(record)
        self.assertEqual(code, 1)
        self.assertIn("less than 75% of the target 100", output)
        self.assertEqual(self.check(record, extra=["--min-load-share", "0.5"])[0], 0)

    def test_phases_are_cut_at_the_faults(self):
        report = soak_check.Report(base_record(), FAULTS, [], soak_check.Settings())
        self.assertEqual([p.name for p in report.phases], ["steady load", "from pg_restart", "from hub_kill"])
        self.assertEqual([len(p.windows) for p in report.phases], [10, 20, 10])
        self.assertEqual(report.fault_counts(), {"pg_restart": 1, "hub_kill": 1, "client_drop": 1})


if __name__ == "__main__":
    unittest.main()
