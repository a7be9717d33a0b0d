"""A loopback TCP proxy whose links can be black-holed and healed (used by scripts/cluster_faults.py).

Each `Link` listens on 127.0.0.1 (an ephemeral port) and forwards every connection to one
upstream server on 127.0.0.1. `blackhole()` stops the link the way a network partition does:

- nothing is closed, reset or refused: existing connections stay open and simply hang;
- no byte moves in either direction (the pumps stop reading, so the kernel's buffers fill and
  the senders block, as unacknowledged TCP segments would);
- a new connection is accepted by the listening socket (the kernel completes the handshake) but
  nothing flows on it, and the proxy does not even connect upstream until the link heals (a real
  SYN would vanish: the server never hears of the client).

`heal()` lets everything flow again, in order: like TCP retransmitting after a partition heals,
bytes held during the black hole are delivered late, never dropped. (Dropping them would tear a
hole in the middle of a TCP stream, which no real network can do.) A connection whose peer went
away (an upstream server that died, a client that gave up) is closed on the other side too, as a
normal proxy does.

Known limit: the proxy's kernel still answers TCP keep-alive probes while a link is
black-holed, so a client relying on TCP keep-alive alone does not notice the partition; the
hub's PostgreSQL and NATS clients see what an application would see over a silent network.

The proxy runs its own asyncio loop on a thread (`ProxyThread`), so it keeps forwarding however
busy the caller's loop is; the caller controls it with thread-safe calls. Only loopback
addresses are accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from typing import Optional

CHUNK = 65536


def require_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"only loopback addresses may be used, not {host}")


class Link:
    """One proxied service (for example one node's PostgreSQL link). Create and drive it on its loop."""

    def __init__(self, name: str, upstream_port: int, upstream_host: str = "127.0.0.1", listen_host: str = "127.0.0.1"):
        require_loopback(upstream_host)
        require_loopback(listen_host)
        self.name = name
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.port: Optional[int] = None
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: Optional[asyncio.AbstractServer] = None
        self.connections: set[tuple[asyncio.StreamWriter, Optional[asyncio.StreamWriter]]] = set()
        self.accepted = 0
        self.bytes_forwarded = 0
        self.blackholes = 0

    @property
    def is_blackholed(self) -> bool:
        return not self.flowing.is_set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, self.listen_host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    def blackhole(self) -> None:
        if self.flowing.is_set():
            self.blackholes += 1
        self.flowing.clear()

    def heal(self) -> None:
        self.flowing.set()

    async def close(self) -> None:
        self.flowing.set()
        if self.server is not None:
            self.server.close()
        for client, upstream in list(self.connections):
            for writer in (client, upstream):
                if writer is not None:
                    writer.transport.abort()
        self.connections.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        entry: tuple = (client_writer, None)
        self.connections.add(entry)
        try:
            # Black-holed: the connection is accepted, but the server is not told of it yet.
            await self.flowing.wait()
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                # The upstream server is down (e.g. nats-server being restarted): refuse as it would.
                client_writer.transport.abort()
                return
            self.connections.discard(entry)
            entry = (client_writer, upstream_writer)
            self.connections.add(entry)
            done = asyncio.Event()
            pumps = [
                asyncio.ensure_future(self._pump(client_reader, upstream_writer, done)),
                asyncio.ensure_future(self._pump(upstream_reader, client_writer, done)),
            ]
            await done.wait()
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, upstream_writer):
                try:
                    writer.close()
                except Exception:
                    pass
        finally:
            self.connections.discard(entry)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, done: asyncio.Event) -> None:
        try:
            while True:
                await self.flowing.wait()
                data = await reader.read(CHUNK)
                if not data:
                    break
                # Bytes read just as the link went dark are held, not dropped: delivered on heal.
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
                self.bytes_forwarded += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            # Either side ending (a peer that closed or died) ends the connection on both sides,
            # but only while the link flows: a black hole carries no FIN either.
            await self.flowing.wait()
            done.set()


class ProxyThread:
    """Runs `Link`s on an asyncio loop of their own thread; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.links: dict[str, Link] = {}
        self.thread = threading.Thread(target=self._run, name="tcp-blackhole", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def add(self, name: str, upstream_port: int) -> int:
        """A new link to 127.0.0.1:upstream_port; returns the port it listens on."""

        async def make() -> int:
            link = Link(name, upstream_port)
            self.links[name] = link
            return await link.start()

        return self._call(make())

    def blackhole(self, name: str) -> None:
        async def cut() -> None:
            self.links[name].blackhole()

        self._call(cut())

    def heal(self, name: str) -> None:
        async def heal() -> None:
            self.links[name].heal()

        self._call(heal())

    def heal_all(self) -> None:
        async def heal() -> None:
            for link in self.links.values():
                link.heal()

        self._call(heal())

    def stats(self) -> dict[str, dict]:
        async def read() -> dict[str, dict]:
            return {
                name: {
                    "port": link.port,
                    "upstream_port": link.upstream[1],
                    "accepted": link.accepted,
                    "bytes_forwarded": link.bytes_forwarded,
                    "blackholes": link.blackholes,
                    "blackholed": link.is_blackholed,
                }
                for name, link in self.links.items()
            }

        return self._call(read())

    def close(self) -> None:
        async def close_all() -> None:
            for link in self.links.values():
                await link.close()
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        try:
            self._call(close_all(), timeout=5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
