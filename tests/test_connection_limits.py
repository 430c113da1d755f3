"""Idle and half-sent connections do not lock other clients out (issue 11, item 6).

With waitress's defaults (100 connections, a silent channel kept for 120 s), about 100
connections that send half a request and stop leave nobody else a way in. A real server
process gets several hundred such connections here; a keyed request must still answer.
Another server with a small `--connection-limit` and `--channel-timeout` shows the idle
connections are closed after the timeout, so even a full server recovers by itself.
"""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
import requests

from realserver import RealServer, session

IDLE = 400  # well above waitress's default limit of 100


def open_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections: half of them send half a request line, the rest nothing at all."""
    socks = []
    for n in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if n % 2:
            s.sendall(b"GET /v0/management/debug HTTP/1.1\r\nHost: x\r\nAuthor")
        socks.append(s)
    return socks


def close_all(socks) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


@pytest.fixture
def server(tmp_path):
    server = RealServer(tmp_path, threads=2).start()
    yield server
    server.stop()


def test_a_keyed_request_answers_next_to_hundreds_of_idle_connections(server):
    socks = open_idle(server.port, IDLE)
    try:
        time.sleep(0.5)  # let the server accept them all
        with session() as s:
            r = s.get(server.url("/debug"), timeout=10)  # generous: an answer at all is the point
        assert r.status_code == 200 and r.json() == {"debug": False}
    finally:
        close_all(socks)


def test_silent_connections_are_closed_after_the_channel_timeout(tmp_path):
    server = RealServer(tmp_path, threads=2, args=["--connection-limit", "20", "--channel-timeout", "2"]).start()
    socks = []
    try:
        socks = open_idle(server.port, 20)  # the server is full now
        deadline = time.monotonic() + 30
        answered = None
        with session() as s:
            while answered is None and time.monotonic() < deadline:
                try:
                    answered = s.get(server.url("/debug"), timeout=5)
                except requests.RequestException:
                    time.sleep(0.5)
        assert answered is not None and answered.status_code == 200
        closed = 0
        for sock in socks:  # the server hung up on the silent ones
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                if sock.recv(1) == b"":
                    closed += 1
        assert closed >= 10
    finally:
        close_all(socks)
        server.stop()
