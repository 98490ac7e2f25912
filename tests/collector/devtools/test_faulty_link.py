"""The fault-injecting proxy against a real TCP echo server: each fault does what it says."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from collector.devtools.faulty_link import FaultyLink


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def link(echo_port: int) -> Iterator[FaultyLink]:
    with FaultyLink("127.0.0.1", echo_port, seed=1) as proxy:
        yield proxy


def _connect(link: FaultyLink) -> socket.socket:
    return socket.create_connection(("127.0.0.1", link.port), timeout=5)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_a_clean_link_passes_bytes_both_ways(link: FaultyLink) -> None:
    with _connect(link) as s:
        s.sendall(b"hello")
        assert _recv_exactly(s, 5) == b"hello"
    assert link.stats.accepted == 1


def test_latency_holds_every_chunk_and_keeps_the_order(link: FaultyLink) -> None:
    link.set_latency(0.3, 0.1)
    with _connect(link) as s:
        started = time.monotonic()
        for i in range(20):
            s.sendall(bytes([i]))
        # there and back: at least twice the smallest one-way delay
        assert _recv_exactly(s, 20) == bytes(range(20))
        assert time.monotonic() - started >= 2 * 0.2


def test_the_throttle_limits_the_rate(link: FaultyLink) -> None:
    link.set_rate(20_000)
    with _connect(link) as s:
        started = time.monotonic()
        s.sendall(b"x" * 10_000)
        assert _recv_exactly(s, 10_000) == b"x" * 10_000
        # 10 kB at 20 kB/s each way cannot take less than half a second
        assert time.monotonic() - started >= 0.45


def test_a_black_hole_passes_nothing_closes_nothing_and_heals_in_order(
    link: FaultyLink,
) -> None:
    with _connect(link) as s:
        s.sendall(b"before")
        assert _recv_exactly(s, 6) == b"before"
        link.black_hole()
        s.sendall(b"during")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(10)  # no data, and no EOF or RST either
        with _connect(link) as late:  # new connections are accepted and hang too
            late.sendall(b"late")
            late.settimeout(0.3)
            with pytest.raises(TimeoutError):
                late.recv(10)
            link.heal()
            late.settimeout(5)
            assert _recv_exactly(late, 4) == b"late"
        s.settimeout(5)
        assert _recv_exactly(s, 6) == b"during"


def test_reset_aborts_open_connections_with_rst(link: FaultyLink) -> None:
    with _connect(link) as s:
        s.sendall(b"x")
        assert _recv_exactly(s, 1) == b"x"
        link.reset()
        with pytest.raises(ConnectionResetError):
            for _ in range(50):  # the RST may need a moment
                s.sendall(b"y")
                if not s.recv(10):
                    break
                time.sleep(0.05)
    assert link.stats.resets == 1


def test_down_refuses_new_connections_until_healed(link: FaultyLink) -> None:
    link.go_down()
    with pytest.raises(ConnectionResetError), _connect(link) as s:  # the RST may beat connect
        s.sendall(b"x")
        s.recv(10)
    assert link.stats.refused == 1
    link.heal()
    with _connect(link) as s:
        s.sendall(b"ok")
        assert _recv_exactly(s, 2) == b"ok"


def test_flap_resets_connections_and_comes_back(link: FaultyLink) -> None:
    with _connect(link) as s:
        s.sendall(b"x")
        assert _recv_exactly(s, 1) == b"x"
        link.flap(up_s=0.2, down_s=0.2)
        with pytest.raises(ConnectionResetError):
            s.recv(10)  # the first down period resets it
    link.heal()
    assert link.stats.resets >= 1
    with _connect(link) as s:
        s.sendall(b"up")
        assert _recv_exactly(s, 2) == b"up"
