#!/usr/bin/env python3
"""A Jepsen-style fault suite for TaxiHub's cluster mode: real processes, real faults.

Run it through `scripts/cluster-faults` (which installs the Debian packages it needs first):

    scripts/cluster-faults [--binary PATH] [--dir DIR] [--races-per-fault N] [--only FAULT,...]
                           [--lease S] [--load | --no-load] [--keep] [--time-limit S]

What it starts, all on loopback (127.0.0.1) and all stopped again on exit, failure or Ctrl-C:
a throwaway PostgreSQL (`scripts/postgres start`), a `nats-server`, and three hub nodes
(`taxi-hub serve --node-id node-K --cluster-lease 3 ...`, the binary copied into the run
folder first, so a rebuild during the run cannot swap it). Every node reaches PostgreSQL and
NATS through a TCP proxy of its own that this process controls (`tcp_blackhole.py`): one link
per node and service, which it can black-hole (nothing is closed or refused, no byte moves,
connections just hang) and heal. node-2 runs under libfaketime (LD_PRELOAD, with a timestamp
file read on every clock call) so that its wall clock can be stepped. With `--load` (default
when CI is set), `taxi-hub loadtest` drives 200 drivers and 40 riders over all three nodes
during the whole run (a short cluster soak); its own failures are expected and not checked.

The faults, one phase each, in this order (`--only` picks some; names in brackets):

0. [baseline] no fault: the same races on a healthy cluster, the checker's control.
1. [pg-blackhole] node-0's PostgreSQL link black-holed for three leases, then healed. Its lease
   runs out and another node takes its trips over while node-0 still holds them in memory.
2. [nats-blackhole] node-1's NATS link black-holed for two leases, then healed.
3. [sigstop] node-1 stopped with SIGSTOP for 2.5 leases (past its lease): its drivers' accepts
   are sent while it sleeps (they wait in its socket buffers); then SIGCONT.
4. [clock-step] node-2's wall clock stepped 30 s forward, races, then 30 s back, races.
   libfaketime fakes CLOCK_MONOTONIC too by default (0.9.10 even reports a monotonic clock near
   the epoch time): the suite sets FAKETIME_DONT_FAKE_MONOTONIC=1, because a real clock step
   (NTP, an operator) moves CLOCK_REALTIME only, and a hub must measure its leases and timeouts
   on the monotonic clock. A hub that times its lease with the wall clock shows here (a lease
   loss in this phase is reported as a warning). Caveat of libfaketime 0.9.10 with that setting:
   clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) fails with EINVAL (Python's time.sleep does
   that); the hub does not sleep that way and runs normally under it. The step is checked
   through the node's HTTP Date header.
5. [nats-restart] nats-server killed (SIGKILL) and started again on the same port 3 s later.
6. [owner-kill] node-0, owner of live trips, SIGKILLed right after some of them moved (so the
   last changes it acknowledged may not be in PostgreSQL yet); started again as a new
   incarnation after lease + 2 s, as a supervisor would.

A node that exits by itself with code 75 (it lost its lease, docs/cluster.md "Failure") is
started again at once, as a supervisor would; that is counted, not failed. Any other exit the
suite did not cause (a crash) is a failure.

What each phase does: every race has its own rider and three drivers, each signed up through
`POST /api/sign_up/` and logged in through `POST /api/log_in/`. Most trips are created before
the fault by a rider connected to the faulted node (so that node owns them); the rest during
the fault, on any node. Trips carry a pick-up location far from the load generator's city, so
no simulated driver is offered (and snipes) them. Then, at moments spread over the fault, the
race's drivers, one on each node that is up (the faulted one included whenever it is up), send
`update.trip` STARTED for the same trip at the same moment. A driver told `unavailable`, or
whose connection dropped, tries again a second later (on another node if its own is gone) for
up to 8 s, as a client would. Winners then drive the trip on (IN_PROGRESS, COMPLETED), or the
rider cancels it, or it stays where it is, in turn by race.

Every socket's frames are recorded. A request's answer is the first frame after it that
carries its outcome: the trip in the requested state with the sender as driver (success), or
an error frame for its request type (a documented refusal: `trip_taken`, `forbidden`,
`unavailable`, `not_found`, `invalid_transition`, ...). No answer within the bound (15 s) while
the socket stayed open is *silence*; a socket closed before the answer is a *drop* (reported,
not failed: a killed or exiting node cannot answer).

The checks, after each phase (once every node is back and ready and two leases passed) and
again at the end, reading PostgreSQL (`trips`) with psql:

- never two winners: per trip, at most one distinct driver was shown the trip STARTED (or
  later) with itself as the driver;
- nothing acknowledged is lost: every trip state any client received (the trip frame is the
  acknowledgement: creation, accept, each move on, cancel) is in PostgreSQL with the same
  driver and the same or a later status (REQUESTED < STARTED < IN_PROGRESS < COMPLETED;
  CANCELED after REQUESTED or STARTED). PostgreSQL is polled for a while before a change is
  called lost, since snapshots may lag;
- every client heard an answer (success or a documented error), never silence past the bound.

Reported, not failed: drivers told they won although no accept of theirs had been answered
with success by then (say `unavailable`, which promises that nothing changed, and the change
happened after all), and trips whose clients were shown two different drivers.

It prints a table per fault (races, winners told, double winners, acknowledged changes, lost,
silent, drops, exits 75, restarts), writes everything as JSON to DIR/results.json (with every
race, lost change and silent request in detail; every frame every client received in
DIR/frames.jsonl; node logs beside them) and exits 1 on any double
winner, lost acknowledged change, silent client or crash; 2 on bad usage; 3 when the suite
itself could not run; 124 when it ran out of time. A watchdog kills everything after
--time-limit (default 360 s; the run stops gracefully 30 s before). `--keep` leaves the cluster
running (proxies included) after the report, for debugging, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime
import email.utils
import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tcp_blackhole import ProxyThread  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"  # every process and connection of the suite stays on loopback
FAULTS = ["baseline", "pg-blackhole", "nats-blackhole", "sigstop", "clock-step", "nats-restart", "owner-kill"]
RANK = {"REQUESTED": 0, "STARTED": 1, "IN_PROGRESS": 2, "COMPLETED": 3}
WON = ("STARTED", "IN_PROGRESS", "COMPLETED", "CANCELED")
PLANS = ["complete", "cancel", "progress", "hold"]
PASSWORD = "fault-Suite-pw1"
LEASE_LOST = 75
T0 = time.monotonic()


def now() -> float:
    """Seconds since the suite started (monotonic)."""
    return time.monotonic() - T0


def log(message: str) -> None:
    print(f"faults {now():6.1f}s  {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def reaches(acknowledged: str, stored: str) -> bool:
    """True when a trip stored as `stored` is `acknowledged` or a later state of it."""
    if acknowledged == stored:
        return True
    if stored == "CANCELED":
        return acknowledged in ("REQUESTED", "STARTED")
    if acknowledged == "CANCELED" or stored not in RANK or acknowledged not in RANK:
        return False
    return RANK[stored] > RANK[acknowledged]


# ---------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 client and WebSocket client (RFC 6455, client side), on asyncio streams.


class HandshakeRefused(Exception):
    def __init__(self, status: int):
        super().__init__(f"handshake answered {status}")
        self.status = status


async def http(port: int, method: str, path: str, body: Any = None, timeout: float = 5.0):
    """One request on its own connection; returns (status, headers, JSON body or None)."""
    payload = b"" if body is None else json.dumps(body).encode()
    writer = None

    async def exchange() -> bytes:
        nonlocal writer
        reader, writer = await asyncio.open_connection(HOST, port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        return await reader.read(-1)

    try:
        raw = await asyncio.wait_for(exchange(), timeout)
    finally:
        if writer is not None:
            writer.transport.abort()
    head, _, content = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks, rest = [], content
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            chunks.append(rest[:size])
            rest = rest[size + 2 :]
        content = b"".join(chunks)
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        parsed = None
    return status, headers, parsed


CLOSED = object()  # what WebSocket.wait returns for a connection that ended


class WebSocket:
    """A client WebSocket that records every text frame it receives, with its arrival time."""

    def __init__(self, label: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.label = label
        self.reader = reader
        self.writer = writer
        self.frames: list[tuple[float, dict]] = []
        self.closed_at: Optional[float] = None
        self.close_reason = ""
        self._news = asyncio.Event()
        self._task = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def connect(cls, port: int, token: str, label: str, timeout: float = 4.0) -> "WebSocket":
        writer = None

        async def handshake():
            nonlocal writer
            reader, writer = await asyncio.open_connection(HOST, port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    f"GET /taxi/?token={token} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status != 101:
                raise HandshakeRefused(status)
            return reader, writer

        try:
            reader, writer = await asyncio.wait_for(handshake(), timeout)
        except BaseException:
            if writer is not None:
                writer.transport.abort()
            raise
        return cls(label, reader, writer)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def _notify(self) -> None:
        self._news.set()
        self._news = asyncio.Event()

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        if length:
            repeated = (mask * (length // 4 + 1))[:length]
            masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(length, "big")
        else:
            masked = b""
        self.writer.write(header + mask + masked)

    def send(self, message: dict) -> None:
        if not self.is_open or self.writer.is_closing():
            raise ConnectionError("socket closed")
        self._write_frame(0x1, json.dumps(message).encode())

    async def _read_loop(self) -> None:
        parts: list[bytes] = []
        opcode = 0
        try:
            while True:
                head = await self.reader.readexactly(2)
                op, fin = head[0] & 0x0F, head[0] & 0x80
                length = head[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                mask = await self.reader.readexactly(4) if head[1] & 0x80 else None
                payload = await self.reader.readexactly(length)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if op == 0x9:  # ping
                    self._write_frame(0xA, payload)
                    continue
                if op == 0xA:
                    continue
                if op == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.close_reason = f"closed by the hub ({code})"
                    with contextlib.suppress(Exception):
                        self._write_frame(0x8, payload[:2])
                    break
                if op in (0x1, 0x2):
                    opcode, parts = op, [payload]
                else:
                    parts.append(payload)
                if fin:
                    data = b"".join(parts)
                    parts = []
                    if opcode == 0x1:
                        try:
                            frame = json.loads(data)
                        except ValueError:
                            frame = {"type": "unreadable", "raw": data[:200].decode("utf-8", "replace")}
                        self.frames.append((now(), frame if isinstance(frame, dict) else {"type": "unreadable"}))
                        self._notify()
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as error:
            self.close_reason = self.close_reason or f"connection lost ({type(error).__name__})"
        except asyncio.CancelledError:
            self.close_reason = self.close_reason or "closed by the suite"
        finally:
            self.closed_at = now()
            self.writer.transport.abort()
            self._notify()

    async def wait(self, matches: Callable[[dict], bool], start: int, timeout: float):
        """The first frame from index `start` on that `matches`; CLOSED or None (timed out)."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            news = self._news
            while index < len(self.frames):
                frame = self.frames[index][1]
                index += 1
                if matches(frame):
                    return frame
            if not self.is_open:
                return CLOSED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(news.wait(), remaining)

    async def close(self) -> None:
        if self.is_open:
            with contextlib.suppress(Exception):
                self._write_frame(0x8, struct.pack("!H", 1000))
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def trip_of(frame: dict) -> Optional[dict]:
    """The trip a frame carries (any type whose data is a trip), else None."""
    data = frame.get("data")
    if isinstance(data, dict) and "id" in data and "status" in data and "rider" in data:
        return data
    return None


def driver_of(trip: dict) -> Optional[int]:
    driver = trip.get("driver")
    if isinstance(driver, dict):
        return driver.get("id")
    if isinstance(driver, int):
        return driver
    return None


def error_for(frame: dict, request_type: str) -> Optional[str]:
    data = frame.get("data")
    if frame.get("type") == "error" and isinstance(data, dict) and data.get("request_type") == request_type:
        return str(data.get("code"))
    return None


# ---------------------------------------------------------------------------------------------
# Processes: PostgreSQL, nats-server, hub nodes, the load generator.


class Processes:
    """Starts child processes in sessions of their own that die with this one (setpriv
    --pdeathsig KILL), and keeps them: only they are ever signalled, and only while not reaped."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, args: list[str], log_path: str, env: Optional[dict] = None, cwd: Optional[str] = None):
        with open(log_path, "ab") as out:
            out.write(f"\n==== {datetime.datetime.now().isoformat()} {' '.join(args)}\n".encode())
            out.flush()
            proc = await asyncio.create_subprocess_exec(
                "setpriv", "--pdeathsig", "KILL", "--", *args, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                start_new_session=True,  # a terminal's Ctrl-C reaches this process only, which stops them in order
            )
        self.procs = [p for p in self.procs if p.returncode is None] + [proc]
        return proc

    def kill_all_now(self) -> None:
        """Last resort (watchdog): SIGCONT then SIGKILL every child not yet reaped."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, signal.SIGKILL)


async def run(args: list[str], timeout: float = 60.0, env: Optional[dict] = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


class Postgres:
    """A throwaway PostgreSQL through scripts/postgres; read with psql."""

    def __init__(self, directory: str):
        self.directory = directory
        self.port = free_port()
        self.started = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/taxihub"

    async def start(self) -> None:
        await run([os.path.join(REPO, "scripts/postgres"), "stop", self.directory], timeout=60)
        code, out, err = await run([os.path.join(REPO, "scripts/postgres"), "start", self.directory, str(self.port)], timeout=120)
        if code != 0:
            raise RuntimeError(f"scripts/postgres start failed:\n{err}")
        self.started = True
        url = out.strip().split("=", 1)[-1]
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])

    async def query(self, sql: str, timeout: float = 15.0) -> list[list[str]]:
        code, out, err = await run(
            ["psql", "-X", "-At", "-F", "\t", "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", "taxihub", "-c", sql],
            timeout=timeout,
        )
        if code != 0:
            raise RuntimeError(f"psql failed: {err.strip()}")
        return [line.split("\t") for line in out.splitlines() if line]

    async def trips(self, ids: list[str]) -> dict[str, dict]:
        if not ids:
            return {}
        listed = ",".join(ids)
        rows = await self.query(
            "SELECT id::text, status, COALESCE(driver_id::text, ''), COALESCE(owner_node, '') "
            f"FROM trips WHERE id = ANY('{{{listed}}}'::uuid[])"
        )
        return {
            row[0]: {"status": row[1], "driver": int(row[2]) if row[2] else None, "owner": row[3] or None} for row in rows
        }

    def stop_now(self) -> None:
        if self.started:
            subprocess.run([os.path.join(REPO, "scripts/postgres"), "stop", self.directory], capture_output=True, timeout=90)
            self.started = False


class Nats:
    def __init__(self, processes: Processes, log_path: str):
        self.processes = processes
        self.log_path = log_path
        self.port = free_port()
        self.proc = None

    async def start(self) -> None:
        self.proc = await self.processes.spawn(["nats-server", "-a", HOST, "-p", str(self.port)], self.log_path)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(HOST, self.port)
                writer.transport.abort()
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("nats-server did not start")

    async def kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


class Node:
    """One hub node, started again like a supervisor would when it exits with 75."""

    def __init__(self, suite: "Suite", index: int):
        self.suite = suite
        self.index = index
        self.id = f"node-{index}"
        self.port = free_port()
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.paused = False
        self.expect_exit = False
        self.faketime_file: Optional[str] = None
        self.incarnations = 0
        self.restarting = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def available(self) -> bool:
        return self.running and not self.paused

    def command(self) -> list[str]:
        suite = self.suite
        command = [
            suite.binary, "serve", "--host", HOST, "--port", str(self.port), "--node-id", self.id,
            "--nats-url", f"nats://{HOST}:{suite.links[self.id]['nats']}",
            "--database-url", f"postgres://postgres@{HOST}:{suite.links[self.id]['pg']}/taxihub",
            "--data-dir", os.path.join(suite.dir, self.id, "data"), "--media-dir", os.path.join(suite.dir, "media"),
            "--cluster-lease", str(suite.args.lease), "--snapshot-interval", "1", "--bcrypt-cost", "4",
            "--password-hashing-class", "normal", "--login-rate-per-address", "100000",
            "--login-rate-per-username", "1000", "--max-password-checks", "64", "--log-level", "info",
        ]  # fmt: skip
        if suite.args.load:
            command.append("--bench-routes")
        return command

    def environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAXI_HUB_") and not k.startswith("FAKETIME")}
        env.pop("LD_PRELOAD", None)
        env["TAXI_HUB_JWT_SECRET"] = self.suite.jwt_secret
        if self.faketime_file:
            env["LD_PRELOAD"] = self.suite.libfaketime
            env["FAKETIME_TIMESTAMP_FILE"] = self.faketime_file
            env["FAKETIME_NO_CACHE"] = "1"  # the file is read at every clock call: a step is seen at once
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"  # a real clock step moves CLOCK_REALTIME only
        return env

    async def start(self) -> None:
        self.expect_exit = False
        self.paused = False
        self.proc = await self.suite.processes.spawn(
            self.command(), os.path.join(self.suite.dir, f"{self.id}.log"), env=self.environment(), cwd=self.suite.dir
        )
        self.incarnations += 1
        asyncio.ensure_future(self._watch(self.proc))

    async def _watch(self, proc) -> None:
        code = await proc.wait()
        if proc is not self.proc or self.expect_exit or self.suite.stopping:
            return
        self.suite.node_exited(self, code)
        # A supervisor: start it again (exit 75 is the node's way to hand its trips over).
        self.restarting = True
        try:
            await asyncio.sleep(0.5)
            if not self.suite.stopping and proc is self.proc:
                await self.start()
                self.suite.node_restarted(self, "supervisor")
        finally:
            self.restarting = False

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        if not self.running:
            return
        self.expect_exit = True
        if self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.send_signal(sig)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.paused = False

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.running:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    async def readiness(self) -> Optional[dict]:
        if not self.available:
            return None
        try:
            status, _, body = await http(self.port, "GET", "/readyz", timeout=2.0)
        except (OSError, asyncio.TimeoutError, ValueError, IndexError):
            return None
        return body if status == 200 and isinstance(body, dict) else None

    async def is_ready(self) -> bool:
        body = await self.readiness()
        return bool(body) and body.get("status") == "ready" and body.get("cluster_lease") == "held" and body.get(
            "cluster_nats"
        ) == "connected"

    async def clock_offset(self) -> Optional[float]:
        """The node's wall clock minus ours, from its HTTP Date header (1 s resolution)."""
        try:
            _, headers, _ = await http(self.port, "GET", "/healthz", timeout=2.0)
            stamp = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
        except Exception:
            return None
        return stamp - time.time()


# ---------------------------------------------------------------------------------------------
# Clients, requests and races.


@dataclasses.dataclass
class User:
    username: str
    group: str
    id: int = 0
    token: str = ""


@dataclasses.dataclass
class Attempt:
    """One request a client sent, and what it heard."""

    phase: str
    race: int
    kind: str  # create, accept, in_progress, complete, cancel
    user: int
    node: str
    trip: Optional[str]
    sent: float
    answer: str = "pending"  # ok, an error code, silent, dropped, not_sent
    waited: float = 0.0
    message: str = ""


class Client:
    """A user with one socket at a time (a new one after a drop), each socket's frames kept."""

    def __init__(self, suite: "Suite", user: User, home: Optional[Node] = None):
        self.suite = suite
        self.user = user
        self.home = home
        self.ws: Optional[WebSocket] = None
        self.node: Optional[Node] = None
        self.sockets: list[tuple[str, WebSocket]] = []

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.ws.is_open

    async def connect(self, nodes: list[Node], timeout: float = 6.0) -> bool:
        """Connects to the first of `nodes` that takes the socket (retrying while they load)."""
        if self.connected:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in nodes:
                if not node.available:
                    continue
                try:
                    ws = await WebSocket.connect(node.port, self.user.token, f"{self.user.username}@{node.id}", timeout=3.0)
                except (HandshakeRefused, OSError, asyncio.TimeoutError, ValueError, IndexError):
                    continue
                self.ws, self.node = ws, node
                self.sockets.append((node.id, ws))
                return True
            await asyncio.sleep(0.3)
        return False

    async def request(self, phase: "Phase", race: int, kind: str, message: dict, trip: Optional[str], answer) -> tuple[Attempt, Optional[dict]]:
        """Sends `message` and waits up to the bound for its answer; `answer(frame)` returns
        "ok", an error code, or None for a frame that does not answer it."""
        attempt = Attempt(phase.name, race, kind, self.user.id, self.node.id if self.node else "-", trip, now())
        phase.attempts.append(attempt)
        if not self.connected:
            attempt.answer = "not_sent"
            return attempt, None
        ws = self.ws
        start = len(ws.frames)
        try:
            ws.send(message)
        except (ConnectionError, OSError):
            attempt.answer = "not_sent"
            return attempt, None
        found: dict = {}

        def matches(frame: dict) -> bool:
            outcome = answer(frame)
            if outcome is not None:
                found["outcome"] = outcome
            return outcome is not None

        frame = await ws.wait(matches, start, self.suite.args.bound)
        attempt.waited = round(now() - attempt.sent, 3)
        if frame is CLOSED:
            attempt.answer = "dropped"
            attempt.message = ws.close_reason
            return attempt, None
        if frame is None:
            attempt.answer = "silent"
            return attempt, None
        attempt.answer = found["outcome"]
        if attempt.answer != "ok":
            attempt.message = str(frame.get("data", {}).get("message", ""))[:200]
        return attempt, frame

    def frames(self):
        for _, ws in self.sockets:
            for arrived, frame in ws.frames:
                yield arrived, frame

    async def close(self) -> None:
        for _, ws in self.sockets:
            await ws.close()


@dataclasses.dataclass
class Race:
    phase: "Phase"
    index: int
    plan: str
    rider: Client
    drivers: list[Client]
    create_on: Node
    precreate: bool
    trip: Optional[str] = None
    fired_at: Optional[float] = None
    note: str = ""


class Phase:
    def __init__(self, name: str, victim: Optional[Node]):
        self.name = name
        self.victim = victim
        self.races: list[Race] = []
        self.attempts: list[Attempt] = []
        self.tasks: list[asyncio.Task] = []
        self.timeline: list[tuple[float, str]] = []
        self.exits75 = 0
        self.restarts = 0
        self.crashes: list[str] = []
        self.started = now()
        self.result: dict = {}

    def event(self, message: str) -> None:
        self.timeline.append((round(now(), 2), message))
        log(f"[{self.name}] {message}")

    @property
    def clients(self) -> list[Client]:
        return [client for race in self.races for client in [race.rider, *race.drivers]]

    @property
    def trips(self) -> list[str]:
        return [race.trip for race in self.races if race.trip]


# ---------------------------------------------------------------------------------------------
# The suite.


class Suite:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dir = os.path.abspath(args.dir)
        self.processes = Processes()
        self.proxy: Optional[ProxyThread] = None
        self.pg = Postgres(os.path.join(self.dir, "pg"))
        self.nats = Nats(self.processes, os.path.join(self.dir, "nats.log"))
        self.nodes = [Node(self, k) for k in range(3)]
        self.links: dict[str, dict[str, int]] = {}
        self.jwt_secret = base64.b64encode(os.urandom(48)).decode()
        self.binary = ""
        self.libfaketime = ""
        self.load_proc = None
        self.stopping = False
        self.phase: Optional[Phase] = None
        self.phases: list[Phase] = []
        self.users: list[User] = []
        self.unexpected: list[str] = []
        self.run_id = f"{int(time.time()) % 100000:05d}{os.getpid() % 1000:03d}"  # unique usernames per run

    # -- setup ----------------------------------------------------------------------------------

    async def prepare_binary(self) -> None:
        source = os.path.abspath(self.args.binary)
        deadline = time.monotonic() + 180
        while True:
            try:
                first = os.stat(source)
                await asyncio.sleep(1.0)
                second = os.stat(source)
                if first.st_size == second.st_size and first.st_mtime == second.st_mtime and first.st_size > 0:
                    break
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no binary at {source}")
                log(f"waiting for {source} (being rebuilt?)")
                await asyncio.sleep(5)
        bin_dir = os.path.join(self.dir, "bin")
        os.makedirs(bin_dir, exist_ok=True)
        self.binary = os.path.join(bin_dir, "taxi-hub")
        shutil.copy2(source, self.binary)
        for bundle in glob.glob(os.path.join(os.path.dirname(source), "*.resources")):
            shutil.copytree(bundle, os.path.join(bin_dir, os.path.basename(bundle)), dirs_exist_ok=True)
        log(f"binary {source} (copied to {self.binary}, built {time.ctime(second.st_mtime)})")

    def find_libfaketime(self) -> str:
        for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1", "/usr/local/lib/faketime/libfaketime.so.1"):
            found = sorted(glob.glob(pattern))
            if found:
                return found[0]
        return ""

    async def setup(self) -> None:
        if os.path.exists(self.dir):
            for entry in os.listdir(self.dir):
                if entry == "pg":
                    continue  # a cluster left by a run that was killed: `scripts/postgres stop` below removes it
                path = os.path.join(self.dir, entry)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)  # the postgres user must reach DIR/pg
        await self.prepare_binary()
        if "clock-step" in self.args.faults:
            self.libfaketime = self.find_libfaketime()
            if not self.libfaketime:
                raise RuntimeError("libfaketime not found (apt-get install faketime); or leave out clock-step with --only")
            faketime_file = os.path.join(self.dir, "node-2.faketime")
            with open(faketime_file, "w") as out:
                out.write("+0\n")
            self.nodes[2].faketime_file = faketime_file
        log(f"starting PostgreSQL (scripts/postgres, port {self.pg.port}) and nats-server (port {self.nats.port})")
        await asyncio.gather(self.pg.start(), self.nats.start())
        code, _, err = await run([self.binary, "migrate", "--database-url", self.pg.url], timeout=60)
        if code != 0:
            raise RuntimeError(f"taxi-hub migrate failed: {err}")
        self.proxy = ProxyThread()
        for node in self.nodes:
            self.links[node.id] = {
                "pg": self.proxy.add(f"{node.id}/pg", self.pg.port),
                "nats": self.proxy.add(f"{node.id}/nats", self.nats.port),
            }
        for node in self.nodes:
            await node.start()
            log(f"{node.id} on http://{HOST}:{node.port} (PostgreSQL via :{self.links[node.id]['pg']}, "
                f"NATS via :{self.links[node.id]['nats']}{', under libfaketime' if node.faketime_file else ''})")
        if not await self.wait_all_ready(90):
            raise RuntimeError("the cluster did not come up (see the node logs)")
        if self.nodes[2].faketime_file:
            offset = await self.nodes[2].clock_offset()
            log(f"node-2 clock offset under libfaketime at +0: {offset:+.1f} s" if offset is not None else "node-2 clock unreadable")
        await self.sign_up_everyone()
        if self.args.load:
            await self.start_load()

    async def wait_all_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = await asyncio.gather(*(node.is_ready() for node in self.nodes))
            if all(states):
                return True
            await asyncio.sleep(0.3)
        details = [f"{node.id}: {await node.readiness()}" for node in self.nodes]
        log(f"not every node is ready after {timeout:.0f} s: {details}")
        return False

    async def sign_up_everyone(self) -> None:
        """Signs up and logs in every rider and driver the phases will use, before any fault."""
        per_phase = {name: self.races_for(name) for name in self.args.faults}
        wanted = sum(per_phase.values())
        started = now()
        users = []
        for k in range(wanted):
            users.append(User(f"fs{self.run_id}-r{k}@example.com", "rider"))
            users += [User(f"fs{self.run_id}-d{k}-{j}@example.com", "driver") for j in range(3)]
        gate = asyncio.Semaphore(6)

        async def enroll(k: int, user: User) -> None:
            node = self.nodes[k % 3]
            async with gate:
                for _ in range(20):
                    try:
                        status, _, body = await http(node.port, "POST", "/api/sign_up/", {
                            "username": user.username, "password1": PASSWORD, "password2": PASSWORD,
                            "group": user.group, "first_name": "Fault", "last_name": "Suite"}, timeout=10)  # fmt: skip
                        if status == 201:
                            user.id = body["id"]
                        elif not (status == 400 and "username" in (body or {})):
                            await asyncio.sleep(0.5)
                            continue
                        status, _, body = await http(node.port, "POST", "/api/log_in/", {"username": user.username, "password": PASSWORD}, timeout=10)
                        if status == 200:
                            user.token = body["access"]
                            if not user.id:
                                user.id = json.loads(base64.urlsafe_b64decode(user.token.split(".")[1] + "=="))["id"]
                            return
                    except (OSError, asyncio.TimeoutError, ValueError, KeyError):
                        pass
                    await asyncio.sleep(0.5)
                raise RuntimeError(f"could not sign up and log in {user.username} on {node.id}")

        await asyncio.gather(*(enroll(k, user) for k, user in enumerate(users)))
        self.users = users
        log(f"signed up and logged in {len(users)} users ({wanted} riders, {3 * wanted} drivers) in {now() - started:.1f} s")

    async def start_load(self) -> None:
        urls = [arg for node in self.nodes for arg in ("--url", f"http://{HOST}:{node.port}")]
        self.load_proc = await self.processes.spawn(
            [self.binary, "loadtest", *urls, "--drivers", str(self.args.load_drivers), "--riders", str(self.args.load_drivers // 5),
             "--gps-hz", "1", "--duration", "900", "--warmup", "2", "--user-prefix", f"fl{self.run_id}", "--threads", "1",
             "--open-concurrency", "50"],
            os.path.join(self.dir, "loadtest.log"), cwd=self.dir,
        )  # fmt: skip
        log(f"load: taxi-hub loadtest, {self.args.load_drivers} drivers at 1 Hz and {self.args.load_drivers // 5} riders over the 3 nodes (log loadtest.log)")
        await asyncio.sleep(3)

    # -- node events ------------------------------------------------------------------------------

    def node_exited(self, node: Node, code: int) -> None:
        phase = self.phase
        if code == LEASE_LOST:
            log(f"{node.id} exited with 75 (lost its lease); the supervisor starts it again")
            if phase:
                phase.exits75 += 1
                phase.event(f"{node.id} exited 75")
        else:
            what = f"{node.id} exited with {code} (not caused by the suite)"
            log(what)
            self.unexpected.append(what)
            if phase:
                phase.crashes.append(what)

    def node_restarted(self, node: Node, why: str) -> None:
        if self.phase:
            self.phase.restarts += 1
            self.phase.event(f"{node.id} started again ({why}), incarnation {node.incarnations}")

    # -- races ------------------------------------------------------------------------------------

    def races_for(self, fault: str) -> int:
        return max(2, self.args.races_per_fault // 2) if fault == "baseline" else self.args.races_per_fault

    def up_nodes(self, first: Optional[Node] = None) -> list[Node]:
        ordered = ([first] if first else []) + [node for node in self.nodes if node is not first]
        return [node for node in ordered if node.available]

    async def create_trip(self, phase: Phase, race: Race) -> bool:
        rider = race.rider
        if not await rider.connect([race.create_on] + [n for n in self.nodes if n is not race.create_on]):
            race.note = "rider could not connect"
            return False
        lat = -33.86 - 0.01 * race.index
        message = {"type": "create.trip", "data": {
            "pick_up_address": f"{phase.name} race {race.index} pick-up", "drop_off_address": "Harbour",
            "pick_up_location": {"lat": lat, "lng": 151.2}, "drop_off_location": {"lat": lat - 0.01, "lng": 151.21}}}  # fmt: skip

        def answer(frame: dict) -> Optional[str]:
            trip = trip_of(frame)
            if trip and trip.get("status") == "REQUESTED" and (trip.get("rider") or {}).get("id") == rider.user.id:
                return "ok"
            return error_for(frame, "create.trip")

        attempt, frame = await rider.request(phase, race.index, "create", message, None, answer)
        if attempt.answer == "ok":
            race.trip = trip_of(frame)["id"]
            attempt.trip = race.trip
            return True
        race.note = f"create answered {attempt.answer}"
        return False

    async def change(self, phase: Phase, race: Race, client: Client, kind: str, status: Optional[str], home: Optional[Node]) -> Attempt:
        """An update (status) by a driver or a cancel by the rider, tried again while the answer is
        `unavailable` or the connection dropped, for up to the retry window."""
        trip = race.trip
        deadline = time.monotonic() + self.args.retry_window
        request_type = "cancel.trip" if kind == "cancel" else "update.trip"
        message = {"type": request_type, "data": {"id": trip, **({"status": status} if status else {})}}

        def answer(frame: dict) -> Optional[str]:
            state = trip_of(frame)
            if state and state.get("id") == trip:
                if kind == "cancel" and state.get("status") == "CANCELED":
                    return "ok"
                if kind != "cancel" and driver_of(state) == client.user.id and reaches(status, state.get("status", "")):
                    return "ok"
            return error_for(frame, request_type)

        while True:
            nodes = ([home] if home and home.available else []) + self.up_nodes(client.node)
            if not await client.connect(nodes):
                attempt = Attempt(phase.name, race.index, kind, client.user.id, "-", trip, now(), "not_sent", message="no node took the socket")
                phase.attempts.append(attempt)
                return attempt
            attempt, _ = await client.request(phase, race.index, kind, message, trip, answer)
            if attempt.answer in ("unavailable", "dropped", "not_sent") and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                continue
            return attempt

    async def run_race(self, phase: Phase, race: Race) -> None:
        if race.trip is None and not await self.create_trip(phase, race):
            phase.event(f"race {race.index}: no trip ({race.note})")
            return
        # One driver per node that is up, each on its own node (sockets opened before the fault
        # stay in use: a stopped node's drivers send into its socket buffer).
        racers = []
        for driver in race.drivers:
            if driver.connected and driver.node is driver.home:
                racers.append(driver)
            elif driver.home.available and await driver.connect([driver.home], timeout=3.0):
                racers.append(driver)
        race.fired_at = now()
        where = ", ".join(f"{d.user.id}@{d.node.id}{'(stopped)' if d.node.paused else ''}" for d in racers)
        phase.event(f"race {race.index}: trip {race.trip[:8]} (created on {race.create_on.id}), accepts from {where}")
        results = await asyncio.gather(*(self.change(phase, race, d, "accept", "STARTED", d.home) for d in racers))
        winners = [d for d, attempt in zip(racers, results) if attempt.answer == "ok"]
        answers = ", ".join(f"{d.user.id}:{a.answer}" for d, a in zip(racers, results))
        phase.event(f"race {race.index}: answers {answers}")
        if race.plan == "cancel":
            await self.change(phase, race, race.rider, "cancel", None, race.create_on)
        elif race.plan in ("complete", "progress"):

            async def drive(driver: Client) -> None:
                attempt = await self.change(phase, race, driver, "in_progress", "IN_PROGRESS", driver.home)
                if attempt.answer == "ok" and race.plan == "complete":
                    await self.change(phase, race, driver, "complete", "COMPLETED", driver.home)

            await asyncio.gather(*(drive(d) for d in winners))

    def fire(self, phase: Phase, race: Race) -> None:
        phase.tasks.append(asyncio.ensure_future(self.run_race(phase, race)))

    async def blackhole_link(self, phase: Phase, races: list[Race], victim, link: str, name: str, span: float, t0: float) -> None:
        """Black-holes one of the victim's links for `span` seconds, firing the races meanwhile."""
        self.proxy.blackhole(f"{victim.id}/{link}")
        phase.event(f"{victim.id}: {name} link black-holed")
        await self.fire_spread(phase, races, 0.5, span - 0.5, t0)
        await self.sleep_until(t0 + span)
        self.proxy.heal(f"{victim.id}/{link}")
        phase.event(f"{victim.id}: {name} link healed")

    async def fire_spread(self, phase: Phase, races: list[Race], start: float, end: float, t0: float) -> None:
        """Fires `races` at moments spread evenly over [start, end] seconds after `t0`."""
        for k, race in enumerate(races):
            at = start + (end - start) * (k / max(1, len(races) - 1))
            delay = t0 + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.fire(phase, race)

    # -- phases -----------------------------------------------------------------------------------

    def victim_of(self, fault: str) -> Optional[Node]:
        return {"baseline": None, "pg-blackhole": self.nodes[0], "nats-blackhole": self.nodes[1], "sigstop": self.nodes[1],
                "clock-step": self.nodes[2], "nats-restart": None, "owner-kill": self.nodes[0]}[fault]  # fmt: skip

    async def run_phase(self, fault: str, users: list[User]) -> Phase:
        victim = self.victim_of(fault)
        phase = Phase(fault, victim)
        self.phase = phase
        self.phases.append(phase)
        phase.event(f"begins (faulted node: {victim.id if victim else 'none'})")
        lease = self.args.lease
        count = self.races_for(fault)
        for k in range(count):
            rider = Client(self, users[4 * k])
            drivers = [Client(self, users[4 * k + 1 + j], home=self.nodes[j]) for j in range(3)]
            # Most trips belong to the faulted node (created there before the fault); every third
            # is created during the fault, on any node.
            late = k % 3 == 2 and fault not in ("sigstop", "owner-kill")
            if late:
                create_on = self.nodes[(k // 3) % 3]
            else:
                create_on = victim or self.nodes[(k + 1) % 3]
            phase.races.append(Race(phase, k, PLANS[k % len(PLANS)], rider, drivers, create_on, precreate=not late))
        # Sockets first (a stopped node takes no handshake), then the trips made before the fault.
        await asyncio.gather(*(d.connect([d.home]) for race in phase.races for d in race.drivers))
        await asyncio.gather(*(self.create_trip(phase, race) for race in phase.races if race.precreate))
        await self.wait_stored(phase, [race.trip for race in phase.races if race.precreate and race.trip])
        t0 = time.monotonic()
        races = phase.races
        if fault == "baseline":
            await self.fire_spread(phase, races, 0.0, 2.0, t0)
        elif fault == "pg-blackhole":
            await self.blackhole_link(phase, races, victim, "pg", "PostgreSQL", 3 * lease, t0)
        elif fault == "nats-blackhole":
            await self.blackhole_link(phase, races, victim, "nats", "NATS", 2 * lease, t0)
        elif fault == "sigstop":
            victim.pause()
            phase.event(f"{victim.id}: SIGSTOP")
            await self.fire_spread(phase, races, 0.3, 2.5 * lease - 0.5, t0)
            await self.sleep_until(t0 + 2.5 * lease)
            victim.resume()
            phase.event(f"{victim.id}: SIGCONT")
        elif fault == "clock-step":
            half = max(1, len(races) // 2)
            await self.step_clock(phase, victim, "+30")
            t1 = time.monotonic()
            await self.fire_spread(phase, races[:half], 0.0, 3.0, t1)
            await self.sleep_until(t1 + 4.0)
            await self.step_clock(phase, victim, "+0")
            t2 = time.monotonic()
            await self.fire_spread(phase, races[half:], 0.0, 3.0, t2)
        elif fault == "nats-restart":
            await self.nats.kill()
            phase.event("nats-server killed")
            await self.fire_spread(phase, races[: len(races) // 2], 0.5, 2.5, t0)
            await self.sleep_until(t0 + 3.0)
            await self.nats.start()
            phase.event("nats-server started again")
            await self.fire_spread(phase, races[len(races) // 2 :], 0.5, 3.5, time.monotonic())
        elif fault == "owner-kill":
            early = races[:2]
            for race in early:
                self.fire(phase, race)
            await asyncio.sleep(0.6)  # their accepts and moves on were answered; the next snapshot is not due yet
            await victim.kill()
            phase.event(f"{victim.id}: SIGKILL")
            await self.fire_spread(phase, races[2:], 0.5, lease + 3.5, time.monotonic())
            await self.sleep_until(t0 + 0.6 + lease + 2)
            await victim.start()
            self.node_restarted(victim, "after the kill")
        phase.event("fault over; waiting for the races")
        done, pending = await asyncio.wait(phase.tasks, timeout=self.args.bound * 3 + self.args.retry_window)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception():
                phase.event(f"a race failed inside the suite: {task.exception()!r}")
        await self.settle(phase)
        await self.check_phase(phase)
        self.dump_frames(phase)
        for client in phase.clients:
            await client.close()
        return phase

    def dump_frames(self, phase: Phase) -> None:
        """Every frame every client of the phase received, for reading a finding afterwards."""
        with open(os.path.join(self.dir, "frames.jsonl"), "a") as out:
            for client in phase.clients:
                for node, ws in client.sockets:
                    for arrived, frame in ws.frames:
                        out.write(json.dumps({"phase": phase.name, "user": client.user.id, "group": client.user.group,
                                              "node": node, "at": round(arrived, 3), "frame": frame}) + "\n")
                    if ws.closed_at is not None:
                        out.write(json.dumps({"phase": phase.name, "user": client.user.id, "node": node,
                                              "at": round(ws.closed_at, 3), "closed": ws.close_reason}) + "\n")

    async def sleep_until(self, moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def step_clock(self, phase: Phase, node: Node, offset: str) -> None:
        with open(node.faketime_file + ".tmp", "w") as out:
            out.write(offset + "\n")
        os.replace(node.faketime_file + ".tmp", node.faketime_file)
        await asyncio.sleep(1.1)
        seen = await node.clock_offset()
        phase.event(f"{node.id}: wall clock set to {offset} s (its Date header reads {seen:+.0f} s)" if seen is not None else f"{node.id}: wall clock set to {offset} s (not answering)")

    async def wait_stored(self, phase: Phase, ids: list[str], timeout: float = 6.0) -> None:
        """Waits until PostgreSQL has the trips (so a takeover finds them)."""
        deadline = time.monotonic() + timeout
        while ids and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if len(await self.pg.trips(ids)) == len(ids):
                    return
            await asyncio.sleep(0.3)
        if ids:
            phase.event("not every trip made before the fault reached PostgreSQL in time")

    async def settle(self, phase: Phase) -> None:
        """Every node back (started again if down) and ready, and still so two leases later (a
        node that resumed from SIGSTOP or reached PostgreSQL again may exit 75 only then)."""
        for node in self.nodes:
            if node.paused:
                node.resume()
        for _ in range(4):
            for node in self.nodes:
                if not node.running and not node.restarting:
                    await node.start()
                    self.node_restarted(node, "settle")
            before = sum(node.incarnations for node in self.nodes)
            ready = await self.wait_all_ready(40)
            await asyncio.sleep(2 * self.args.lease)
            if ready and before == sum(node.incarnations for node in self.nodes) and await self.wait_all_ready(5):
                phase.event("cluster settled")
                return
        phase.event("cluster did NOT settle (a node is not ready)")

    # -- checks -----------------------------------------------------------------------------------

    def acknowledged(self, phase: Phase) -> dict[tuple, dict]:
        """Every trip state a client of the phase received: (trip, status, driver) -> first sighting."""
        ours = set(phase.trips)
        seen: dict[tuple, dict] = {}
        for client in phase.clients:
            for arrived, frame in client.frames():
                trip = trip_of(frame)
                if trip and trip.get("id") in ours:
                    key = (trip["id"], trip.get("status"), driver_of(trip))
                    seen.setdefault(key, {"at": arrived, "client": client.user.id})
        return seen

    def told_won(self, race: Race) -> dict[int, float]:
        """Drivers of the race shown the trip STARTED or later with themselves as its driver."""
        told: dict[int, float] = {}
        for driver in race.drivers:
            for arrived, frame in driver.frames():
                trip = trip_of(frame)
                if trip and trip.get("id") == race.trip and driver_of(trip) == driver.user.id and trip.get("status") in WON:
                    told.setdefault(driver.user.id, arrived)
        return told

    async def lost_changes(self, phases: list[Phase], patience: float) -> dict[str, list[dict]]:
        """Acknowledged states missing from PostgreSQL, by phase; polls for `patience` seconds."""
        deadline = time.monotonic() + patience
        while True:
            lost: dict[str, list[dict]] = {}
            ids = [trip for phase in phases for trip in phase.trips]
            try:
                rows = await self.pg.trips(ids)
            except Exception as error:  # noqa: BLE001
                log(f"cannot read PostgreSQL: {error}")
                rows = None
            if rows is not None:
                for phase in phases:
                    for (trip, status, driver), seen in self.acknowledged(phase).items():
                        row = rows.get(trip)
                        if row is None or not reaches(status, row["status"]) or (driver is not None and row["driver"] != driver):
                            lost.setdefault(phase.name, []).append(
                                {"trip": trip, "acknowledged": {"status": status, "driver": driver, "at": round(seen["at"], 2),
                                 "to_user": seen["client"]}, "stored": row})  # fmt: skip
                if not lost:
                    return lost
            if time.monotonic() >= deadline:
                return lost
            await asyncio.sleep(1.0)

    async def check_phase(self, phase: Phase) -> None:
        lost = (await self.lost_changes([phase], patience=2 * self.args.lease + 2)).get(phase.name, [])
        self.summarize(phase, lost)
        result = phase.result
        phase.event(
            f"check: {result['races']} races, {result['winners_told']} winners told, {result['double_winners']} double, "
            f"{result['acknowledged_changes']} acknowledged, {result['lost']} lost, {result['silent']} silent, "
            f"{result['dropped']} dropped"
        )

    def summarize(self, phase: Phase, lost: list[dict]) -> None:
        races, doubles, winners, conflicting = [], [], 0, 0
        for race in phase.races:
            told = self.told_won(race) if race.trip else {}
            winners += len(told)
            attempts = [a for a in phase.attempts if a.race == race.index]
            # Told it won although no accept of its own had been answered with success by then:
            # a refusal (e.g. `unavailable`: "nothing changed") that was not true.
            refused_then_won = sorted(
                user for user, first in told.items()
                if not any(a.kind == "accept" and a.user == user and a.answer == "ok" and a.sent <= first for a in attempts)
            )
            # Every driver any client of the phase was shown driving the trip (two: a split brain
            # that may have told only the rider, or no one, of the second winner).
            shown = sorted({driver_of(trip) for client in phase.clients for _, frame in client.frames()
                            if (trip := trip_of(frame)) and trip.get("id") == race.trip and driver_of(trip) is not None})
            if len(shown) > 1:
                conflicting += 1
            entry = {
                "race": race.index, "trip": race.trip, "plan": race.plan, "created_on": race.create_on.id,
                "fired_at": race.fired_at, "note": race.note, "told_won": sorted(told), "drivers_shown": shown,
                "refused_then_told_won": refused_then_won,
                "drivers": {d.user.id: [s for s, _ in d.sockets] for d in race.drivers},
                "attempts": [dataclasses.asdict(a) for a in attempts],
            }  # fmt: skip
            races.append(entry)
            if len(told) > 1:
                doubles.append(entry)
        refusals: dict[str, int] = {}
        for attempt in phase.attempts:
            if attempt.answer not in ("ok", "silent", "dropped", "not_sent"):
                refusals[attempt.answer] = refusals.get(attempt.answer, 0) + 1
        silent = [dataclasses.asdict(a) for a in phase.attempts if a.answer == "silent"]
        phase.result = {
            "fault": phase.name,
            "faulted_node": phase.victim.id if phase.victim else None,
            "races": sum(1 for race in phase.races if race.fired_at is not None),
            "winners_told": winners,
            "double_winners": len(doubles),
            "trips_shown_with_two_drivers": conflicting,
            "acknowledged_changes": len(self.acknowledged(phase)),
            "lost": len(lost),
            "lost_at_phase_check": len(lost),
            "silent": len(silent),
            "dropped": sum(1 for a in phase.attempts if a.answer == "dropped"),
            "requests": sum(1 for a in phase.attempts if a.answer != "not_sent"),
            "refusals": refusals,
            "refused_then_told_won": sum(len(r["refused_then_told_won"]) for r in races),
            "exits_75": phase.exits75,
            "restarts": phase.restarts,
            "crashes": phase.crashes,
            "double_winner_detail": doubles,
            "lost_detail": lost,
            "silent_detail": silent,
            "race_detail": races,
            "timeline": phase.timeline,
        }

    # -- the run ----------------------------------------------------------------------------------

    async def run(self) -> int:
        await self.setup()
        users = iter(range(len(self.users)))
        for fault in self.args.faults:
            count = self.races_for(fault)
            mine = [self.users[next(users)] for _ in range(4 * count)]
            await self.run_phase(fault, mine)
        self.phase = None
        # The final check: everything acknowledged in any phase, once more.
        log("final check of every acknowledged change")
        final = await self.lost_changes(self.phases, patience=2 * self.args.lease + 2)
        for phase in self.phases:
            phase.result["lost_detail"] = final.get(phase.name, [])
            phase.result["lost"] = len(phase.result["lost_detail"])
        return self.report()

    def report(self) -> int:
        columns = [("fault", 15), ("races", 5), ("winners", 7), ("double", 6), ("acked", 5), ("lost", 4), ("silent", 6),
                   ("dropped", 7), ("exit75", 6), ("restarts", 8), ("crashes", 7)]  # fmt: skip
        keys = ["fault", "races", "winners_told", "double_winners", "acknowledged_changes", "lost", "silent", "dropped", "exits_75", "restarts"]
        lines = ["  ".join(name.rjust(width) if i else name.ljust(width) for i, (name, width) in enumerate(columns))]
        totals = {key: 0 for key in keys[1:]}
        for phase in self.phases:
            r = phase.result
            values = [r[key] for key in keys] + [len(r["crashes"])]
            for key in keys[1:]:
                totals[key] += r[key]
            lines.append("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, (_, w)) in enumerate(zip(values, columns))))
        crashes = len(self.unexpected)  # crashes outside a phase (start-up) count too
        values = ["total"] + [totals[key] for key in keys[1:]] + [crashes]
        lines.append("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, (_, w)) in enumerate(zip(values, columns))))
        reasons = []
        if totals["double_winners"]:
            reasons.append(f"{totals['double_winners']} trips with two winners")
        if totals["lost"]:
            reasons.append(f"{totals['lost']} acknowledged changes missing from PostgreSQL")
        if totals["silent"]:
            reasons.append(f"{totals['silent']} requests never answered within {self.args.bound:.0f} s")
        if crashes:
            reasons.append(f"{crashes} node exits the suite did not cause")
        refusals: dict[str, int] = {}
        for phase in self.phases:
            for code, n in phase.result["refusals"].items():
                refusals[code] = refusals.get(code, 0) + n
        print("\nTaxiHub cluster fault suite: " + ("PASS" if not reasons else "FAIL: " + "; ".join(reasons)))
        print("\n".join(lines))
        print("refusals heard: " + (", ".join(f"{code} {n}" for code, n in sorted(refusals.items())) or "none"))
        conflicting = sum(p.result["trips_shown_with_two_drivers"] for p in self.phases)
        if conflicting:
            print(f"trips whose clients were shown two different drivers: {conflicting}")
        # Only a node cut off from PostgreSQL (or stopped, or killed) has a reason to lose its lease.
        for phase in self.phases:
            if phase.name in ("baseline", "nats-blackhole", "clock-step", "nats-restart") and phase.result["exits_75"]:
                print(f"warning: {phase.result['exits_75']} lease losses (exit 75) in {phase.name}, where every node kept "
                      "its PostgreSQL link" + (": does a node time its lease by the wall clock?" if phase.name == "clock-step" else ""))
        contradicted = sum(p.result["refused_then_told_won"] for p in self.phases)
        if contradicted:
            print(f"warning: {contradicted} drivers were told they won without a successful answer to their accept "
                  "(e.g. answered `unavailable`, which promises that nothing changed); see refused_then_told_won")
        results = {
            "binary": os.path.abspath(self.args.binary),
            "run_dir": self.dir,
            "lease_seconds": self.args.lease,
            "bound_seconds": self.args.bound,
            "load": self.args.load,
            "duration_seconds": round(now(), 1),
            "passed": not reasons,
            "reasons": reasons,
            "totals": {**totals, "crashes": crashes, "refusals": refusals},
            "phases": [phase.result for phase in self.phases],
            "proxy": self.proxy.stats() if self.proxy else {},
        }
        path = os.path.join(self.dir, "results.json")
        with open(path, "w") as out:
            json.dump(results, out, indent=1, default=str)
        print(f"details: {path}; logs: {self.dir}/node-*.log, nats.log, loadtest.log; took {now():.0f} s")
        return 0 if not reasons else 1

    # -- cleanup ----------------------------------------------------------------------------------

    def endpoints(self) -> str:
        nodes = ", ".join(f"{n.id} http://{HOST}:{n.port} (pid {n.proc.pid if n.running else '-'})" for n in self.nodes)
        return f"{nodes}; nats-server :{self.nats.port}; PostgreSQL {self.pg.url}"

    async def cleanup(self) -> None:
        self.stopping = True
        for phase in self.phases:
            for task in phase.tasks:
                task.cancel()
        if self.load_proc and self.load_proc.returncode is None:
            self.load_proc.send_signal(signal.SIGINT)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.load_proc.wait(), 3)
            if self.load_proc.returncode is None:
                self.load_proc.kill()
                await self.load_proc.wait()
        for node in self.nodes:
            if node.running:
                node.expect_exit = True
                if node.paused:
                    node.resume()
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None and node.proc.returncode is None:
                try:
                    await asyncio.wait_for(node.proc.wait(), 8)
                except asyncio.TimeoutError:
                    node.proc.kill()
                    await node.proc.wait()
        await self.nats.kill()
        if self.proxy:
            self.proxy.close()
        await asyncio.get_running_loop().run_in_executor(None, self.pg.stop_now)


# ---------------------------------------------------------------------------------------------


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster-faults", description="Jepsen-style fault suite for TaxiHub's cluster mode (see the module docstring)."
    )
    parser.add_argument("--binary", default=os.path.join(REPO, ".build/debug/taxi-hub"))
    parser.add_argument("--dir", default="/tmp/taxihub-faults", help="run folder: logs, data, results.json")
    parser.add_argument("--races-per-fault", type=int, default=6)
    parser.add_argument("--only", default="", help="comma-separated faults: " + ",".join(FAULTS))
    parser.add_argument("--keep", action="store_true", help="at the end, leave everything running (proxies too) until Ctrl-C")
    parser.add_argument("--load", dest="load", action="store_true", default=os.environ.get("CI", "").lower() in ("1", "true", "yes"))
    parser.add_argument("--no-load", dest="load", action="store_false")
    parser.add_argument("--load-drivers", type=int, default=200)
    parser.add_argument("--lease", type=float, default=3.0, help="--cluster-lease of the nodes, seconds")
    parser.add_argument("--bound", type=float, default=15.0, help="seconds a request may go unanswered before it counts as silent")
    parser.add_argument("--retry-window", type=float, default=8.0, help="seconds a client retries after unavailable or a drop")
    parser.add_argument("--time-limit", type=float, default=360.0, help="watchdog: everything is killed after this")
    args = parser.parse_args(argv)
    if args.only:
        args.faults = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in args.faults if name not in FAULTS]
        if unknown:
            parser.error(f"unknown faults {unknown}; choose from {','.join(FAULTS)}")
        args.faults = [name for name in FAULTS if name in args.faults]
    else:
        args.faults = list(FAULTS)
    if args.races_per_fault < 1:
        parser.error("--races-per-fault must be at least 1")
    if len(args.dir) > 80:
        parser.error("--dir must be at most 80 characters (PostgreSQL's socket lives in it)")
    return args


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    suite = Suite(args)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def watchdog() -> None:
        print(f"faults: time limit of {args.time_limit:.0f} s reached; killing everything", file=sys.stderr, flush=True)
        suite.stopping = True
        suite.processes.kill_all_now()
        with contextlib.suppress(Exception):
            suite.pg.stop_now()
        os._exit(124)

    timer = threading.Timer(args.time_limit, watchdog)
    timer.daemon = True
    timer.start()
    main_task = loop.create_task(suite.run())
    stop_requested = loop.create_future()

    def interrupt(signum: int) -> None:
        log(f"signal {signum}: stopping")
        if not main_task.done():
            main_task.cancel()
        if not stop_requested.done():
            stop_requested.set_result(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt, signum)
    code = 3
    try:
        code = loop.run_until_complete(asyncio.wait_for(main_task, args.time_limit - 30))
    except asyncio.CancelledError:
        code = 130
    except asyncio.TimeoutError:
        log("the suite ran out of time")
        code = 124
    except Exception as error:  # noqa: BLE001
        log(f"the suite could not run: {error!r}")
        import traceback

        traceback.print_exc()
        code = 3
    finally:
        if args.keep and not stop_requested.done():
            timer.cancel()
            log(suite.endpoints() + " -- left running (--keep); Ctrl-C stops everything")
            loop.run_until_complete(stop_requested)
        try:
            loop.run_until_complete(asyncio.wait_for(suite.cleanup(), 60))
        except Exception as error:  # noqa: BLE001
            log(f"cleanup: {error!r}")
            suite.processes.kill_all_now()
            with contextlib.suppress(Exception):
                suite.pg.stop_now()
        timer.cancel()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
