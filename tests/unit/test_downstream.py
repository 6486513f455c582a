"""Client connections behind TLS take their plaintext from uvloop through a buffer."""

from __future__ import annotations

import asyncio

from ingressd.downstream import TLSClientConnection


class RecordingTLSConnection(TLSClientConnection):
    __slots__ = ("received",)
    received: list[bytes]

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


def test_uvloop_hands_tls_plaintext_over_in_a_buffer() -> None:
    """uvloop's test for a buffered protocol: `get_buffer`, and not an `asyncio.Protocol`.

    Unbuffered, its TLS layer allocates 256 KiB per read (`SSLObject.read(256 KiB)`):
    an mmap, mremap and munmap plus page faults each, 45 µs per request measured.
    """
    assert hasattr(TLSClientConnection, "get_buffer")
    assert not issubclass(TLSClientConnection, asyncio.Protocol)


def test_each_read_is_a_copy_that_outlives_the_shared_buffer() -> None:
    connection = object.__new__(RecordingTLSConnection)
    connection.received = []
    buffer = connection.get_buffer(-1)
    buffer[:5] = b"GET /"
    connection.buffer_updated(5)
    buffer = connection.get_buffer(-1)
    buffer[:5] = b"xxxxx"  # the next read, on this or another connection
    connection.buffer_updated(2)
    assert connection.received == [b"GET /", b"xx"]
