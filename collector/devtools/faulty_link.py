"""A fault-injecting TCP proxy for tests and benchmarks: a bad Wi-Fi or 4G link in a box.

:class:`FaultyLink` listens on 127.0.0.1 on a free port and forwards every connection to an
upstream (the broker). It runs its own asyncio loop in a thread, so a test drives it with
plain method calls while the gateway and the broker are real processes. The faults:

- :meth:`~FaultyLink.set_latency`: every chunk is held ``latency_s`` plus a uniform jitter of
  ``± jitter_s`` before it is passed on, in order (a TCP stream never reorders);
- :meth:`~FaultyLink.set_rate`: at most ``bytes_per_s`` per direction and connection;
- :meth:`~FaultyLink.black_hole`: nothing passes in either direction and nothing is closed,
  new connections are accepted and hang too (a half-open link: TCP does not notice, only the
  MQTT keepalive and publish timeouts can). The proxy stops reading, so bytes wait in the
  kernel's buffers as they would in the sender's TCP retransmission queue; :meth:`heal` lets
  them through in order, as TCP would once the path is back;
- :meth:`~FaultyLink.reset`: every open connection is aborted with a TCP RST (``SO_LINGER``
  0) on both sides;
- :meth:`~FaultyLink.go_down` / :meth:`~FaultyLink.flap`: connections reset and new ones
  refused (RST) while down; ``flap`` alternates up and down every few seconds;
- :meth:`~FaultyLink.partition`: a black hole for as long as it lasts (minutes, days).

Nothing is dropped from the middle of a stream: a real TCP connection either delivers its
bytes in order or breaks, so a proxy that dropped chunks would test a fault that cannot occur.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from collector.devtools.services import free_port

_T = TypeVar("_T")

#: Bytes read from one side at a time.
CHUNK_BYTES = 16 * 1024
#: Chunks held per direction (latency, throttle) before the proxy stops reading that side.
QUEUE_CHUNKS = 64


@dataclass
class LinkStats:
    """What the link did (for tests and benches)."""

    accepted: int = 0
    refused: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    open_connections: int = 0


@dataclass
class _Shape:
    latency_s: float = 0.0
    jitter_s: float = 0.0
    bytes_per_s: float | None = None


@dataclass(eq=False)  # hashed by identity: the link keeps a set of them
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultyLink:
    """A TCP proxy from ``127.0.0.1:<port>`` to ``upstream_host:upstream_port`` with faults.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. All methods may be
    called from any thread.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, port: int | None = None, seed: int = 0
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.stats = LinkStats()
        self._rng = random.Random(seed)
        self._shape = _Shape()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._down = False
        self._connections: set[_Connection] = set()
        self._flapper: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"faulty-link-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the faulty link did not start")

    def stop(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    # --- faults (any thread) -----------------------------------------------------------------

    def set_latency(self, latency_s: float, jitter_s: float = 0.0) -> None:
        """Hold every chunk ``latency_s`` ± ``jitter_s`` (uniform) before passing it on [s]."""
        if latency_s < 0 or jitter_s < 0 or jitter_s > latency_s:
            raise ValueError("need 0 <= jitter_s <= latency_s")
        self._shape.latency_s = latency_s
        self._shape.jitter_s = jitter_s

    def set_rate(self, bytes_per_s: float | None) -> None:
        """Throttle each direction of each connection to ``bytes_per_s`` (None: unlimited)."""
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive")
        self._shape.bytes_per_s = bytes_per_s

    def black_hole(self) -> None:
        """Stop everything passing, close nothing (new connections hang as well)."""
        self._run(self._set_flowing(False))

    def partition(self) -> None:
        """The link is cut for as long as it lasts: a black hole until :meth:`heal`."""
        self.black_hole()

    def heal(self) -> None:
        """End a black hole, partition, down period or flapping; shaping stays as set."""
        self._run(self._heal())

    def reset(self) -> None:
        """Abort every open connection with a TCP RST on both sides."""
        self._run(self._reset_all())

    def go_down(self) -> None:
        """Reset every connection and refuse (RST) new ones until :meth:`heal`."""
        self._run(self._go_down())

    def flap(self, up_s: float, down_s: float) -> None:
        """Alternate: up for ``up_s``, then down (reset, refused) for ``down_s``, until
        :meth:`heal` [s]."""
        self._run(self._start_flapping(up_s, down_s))

    def clear(self) -> None:
        """No faults and no shaping."""
        self.set_latency(0.0)
        self.set_rate(None)
        self.heal()

    # --- internals (the loop's thread) ----------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        assert self._loop is not None, "the link is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        self._call(coro)

    async def _serve(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _shutdown(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
        if self._server is not None:
            self._server.close()
        await self._reset_all(count=False)

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _heal(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
            self._flapper = None
        self._down = False
        await self._set_flowing(True)

    async def _go_down(self) -> None:
        self._down = True
        await self._reset_all()

    async def _start_flapping(self, up_s: float, down_s: float) -> None:
        if self._flapper is not None:
            self._flapper.cancel()

        async def flapping() -> None:
            while True:
                self._down = False
                await asyncio.sleep(up_s)
                await self._go_down()
                await asyncio.sleep(down_s)

        self._flapper = asyncio.get_running_loop().create_task(flapping())

    async def _reset_all(self, *, count: bool = True) -> None:
        for conn in list(self._connections):
            self._drop(conn, rst=True)
            if count:
                self.stats.resets += 1

    def _drop(self, conn: _Connection, *, rst: bool) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        self.stats.open_connections = len(self._connections)
        for writer in (conn.client, conn.upstream):
            if writer is None:
                continue
            if rst:
                _abort_with_rst(writer)
            else:
                writer.close()
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            self.stats.refused += 1
            _abort_with_rst(writer)
            return
        self.stats.accepted += 1
        conn = _Connection(client=writer)
        self._connections.add(conn)
        self.stats.open_connections = len(self._connections)
        assert self._flowing is not None
        await self._flowing.wait()  # a connection made into a black hole hangs right here
        if conn not in self._connections:
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            self._drop(conn, rst=True)
            return
        if conn not in self._connections:
            _abort_with_rst(up_writer)
            return
        conn.upstream = up_writer
        loop = asyncio.get_running_loop()
        conn.tasks = [
            loop.create_task(self._pump(conn, reader, up_writer, up=True)),
            loop.create_task(self._pump(conn, up_reader, writer, up=False)),
        ]

    async def _pump(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        up: bool,
    ) -> None:
        """One direction: read, hold for the latency, pass on at the rate, in order."""
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)
        loop = asyncio.get_running_loop()
        sender = loop.create_task(self._send(conn, held, writer, up=up))
        conn.tasks.append(sender)
        assert self._flowing is not None
        last_due = 0.0
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await self._flowing.wait()  # bytes read just as the hole opened wait too
                shape = self._shape
                delay = shape.latency_s + self._rng.uniform(-shape.jitter_s, shape.jitter_s)
                last_due = max(last_due, time.monotonic() + delay)  # never reorder
                await held.put((last_due, data))
            await held.put((0.0, b""))  # end of stream after what is held
            await sender
        except (OSError, asyncio.IncompleteReadError):
            self._drop(conn, rst=True)
        except asyncio.CancelledError:
            sender.cancel()
            raise

    async def _send(
        self,
        conn: _Connection,
        held: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        *,
        up: bool,
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                due, data = await held.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                rate = self._shape.bytes_per_s
                if rate is None:
                    writer.write(data)
                    await writer.drain()
                else:  # small slices, so a throttled link trickles instead of bursting
                    step = max(1, int(rate / 20))
                    for i in range(0, len(data), step):
                        piece = data[i : i + step]
                        writer.write(piece)
                        await writer.drain()
                        await asyncio.sleep(len(piece) / rate)
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
            # the sender closed its side: pass the close on (and so end the connection)
            self._drop(conn, rst=False)
        except OSError:
            self._drop(conn, rst=True)
