"""Output is held until the loop iteration ends, then sent once per connection, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ingressd.outbox import SEND_AT_ONCE, Outbox
from ingressd.pool import EndpointPool, State, UpstreamConnection
from ingressd.routes import Endpoint


class RecordingTransport(asyncio.Transport):
    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.log.append(bytes(data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.log.append("eof")

    def close(self) -> None:
        self.closing = True
        self.log.append("close")

    def abort(self) -> None:
        self.closing = True
        self.log.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


def upstream_connection(log: list[Any]) -> tuple[UpstreamConnection, Outbox]:
    loop = asyncio.get_running_loop()
    outbox = Outbox(loop)
    pool = EndpointPool(Endpoint("127.0.0.1", 9), loop, outbox)
    connection = UpstreamConnection(pool)
    connection.connection_made(RecordingTransport(log))
    return connection, outbox


async def test_writes_of_one_iteration_leave_in_one_send_after_its_callbacks() -> None:
    """Two events for the same backend in one poll: one send, after both."""
    sent: list[Any] = []
    connection, _ = upstream_connection(sent)
    loop = asyncio.get_running_loop()
    loop.call_soon(connection.write, b"GET /a HTTP/1.1\r\n\r\n")
    loop.call_soon(connection.write, b"GET /b HTTP/1.1\r\n\r\n")
    loop.call_soon(lambda: sent.append("callbacks done"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sent == ["callbacks done", b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"]


async def test_connections_are_sent_in_the_order_they_first_wrote() -> None:
    first_log: list[Any] = []
    second_log: list[Any] = []
    first, outbox = upstream_connection(first_log)
    second = UpstreamConnection(first.pool)
    second.connection_made(RecordingTransport(second_log))
    order: list[str] = []
    first.transport.write = lambda data: order.append("first")  # type: ignore[method-assign,union-attr]
    second.transport.write = lambda data: order.append("second")  # type: ignore[method-assign,union-attr]
    first.write(b"1")
    second.write(b"2")
    first.write(b"3")
    outbox.flush()
    assert order == ["first", "second"]


async def test_output_written_while_flushing_leaves_on_the_next_turn() -> None:
    sent: list[Any] = []
    connection, _ = upstream_connection(sent)
    written = asyncio.Event()

    def write_again(data: bytes | bytearray | memoryview) -> None:
        sent.append(bytes(data))
        if len(sent) == 1:
            connection.write(b"more")  # e.g. a protocol callback run by this send
        else:
            written.set()

    assert connection.transport is not None
    connection.transport.write = write_again  # type: ignore[method-assign]
    connection.write(b"first")
    await asyncio.wait_for(written.wait(), 5)
    assert sent == [b"first", b"more"]


async def test_held_output_is_sent_before_a_close_or_an_eof() -> None:
    """A request body's last bytes must reach the backend before the FIN."""
    sent: list[Any] = []
    connection, _ = upstream_connection(sent)
    connection.write(b"tunnel bytes")
    assert connection.has_unsent
    connection.write_eof()
    assert sent == [b"tunnel bytes", "eof"]
    assert not connection.has_unsent
    connection.write(b"last")
    connection.close()
    assert sent == [b"tunnel bytes", "eof", b"last", "close"]


async def test_an_aborted_connection_drops_what_it_held() -> None:
    sent: list[Any] = []
    connection, outbox = upstream_connection(sent)
    connection.write(b"never")
    connection.abort()
    outbox.flush()
    assert sent == ["abort"]


class PausableTransport(RecordingTransport):
    def __init__(self, log: list[Any]) -> None:
        super().__init__(log)
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading


async def test_a_connection_paused_by_a_slow_client_reads_again_once_idle() -> None:
    """A response's last chunk, sent at once, can make the client's transport pause
    the backend just before the exchange ends: the next request on that backend
    connection would wait for an answer nobody reads (wrk -c1 stalled on it)."""
    loop = asyncio.get_running_loop()
    pool = EndpointPool(Endpoint("127.0.0.1", 9), loop, Outbox(loop))
    connection = UpstreamConnection(pool)
    transport = PausableTransport([])
    connection.connection_made(transport)
    connection.state = State.ACTIVE
    transport.pause_reading()  # the client stopped reading the response
    pool.release(connection)
    assert pool.acquire() is connection
    assert transport.is_reading()


async def test_a_failing_send_does_not_keep_the_other_connections_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first_log: list[Any] = []
    second_log: list[Any] = []
    first, outbox = upstream_connection(first_log)
    second = UpstreamConnection(first.pool)
    second.connection_made(RecordingTransport(second_log))

    def broken(data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("transport broke")

    first.transport.write = broken  # type: ignore[method-assign,union-attr]
    first.write(b"lost")
    second.write(b"delivered")
    outbox.flush()
    assert second_log == [b"delivered"]
    assert "sending the output of" in caplog.text
    second.write(b"again")  # nothing left stuck: the next write is held and sent
    outbox.flush()
    assert second_log == [b"delivered", b"again"]


async def test_held_bytes_are_sent_when_the_backend_half_closes() -> None:
    """Returning False from eof_received closes the transport: tunnel bytes held for
    the backend in the same poll go out first."""
    sent: list[Any] = []
    connection, _ = upstream_connection(sent)
    connection.write(b"websocket frame")
    assert connection.eof_received() is False
    assert sent == [b"websocket frame"]


async def test_a_large_chunk_leaves_at_once_after_what_was_held() -> None:
    """A streaming body meets the transport's flow control write by write, in order."""
    sent: list[Any] = []
    connection, outbox = upstream_connection(sent)
    connection.write(b"response head")
    assert sent == []  # small: held for the end of the iteration
    chunk = b"x" * SEND_AT_ONCE
    connection.write(chunk)
    assert sent == [b"response head" + chunk]
    assert not connection.has_unsent
    connection.write(b"last chunk")
    outbox.flush()  # the connection is held once; nothing is sent twice
    assert sent == [b"response head" + chunk, b"last chunk"]
