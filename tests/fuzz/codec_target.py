"""The fuzz target for the data-path codec: one input → every property checked, or an error.

Shared by the atheris harness (fuzz_codec.py) and the hypothesis run in
test_fuzz_codec.py, so both exercise exactly the same function, `run_one(data)`.

Input layout (plain, so that seeds are written by hand; see `encode`):

    byte 0     bit 0: 0 = request side (RequestParser), 1 = response side
               (ResponseParser); bits 1-2: the method the response answers
    byte 1     n = number of cut points (low 3 bits: 0-7)
    2n bytes   the cut points, uint16 little-endian, each modulo len(payload) + 1
    the rest   the payload, fed in n + 1 pieces, then end of stream

Properties (each failure raises `CodecFinding`, anything unexpected propagates):

* only `ProtocolError` (request side) or `UpstreamProtocolError` (response side)
  leaves the codec, with a status the module documents; a failed parser stays dead;
* events are well-formed: a head first, no empty `Body`, nothing after the end
  of a message but the next head;
* where the bytes were cut does not change whether they are accepted, nor, when
  they are, the messages;
* the codec never completes a message that h11 (the oracle, SPEC "Parsing")
  rejects, and what both accept they read alike: start line, headers, body.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from tests.h11_oracle import (
    CodecFinding,
    Outcome,
    codec_requests,
    codec_response,
    h11_requests,
    h11_response,
    not_more_lenient,
)

__all__ = ["Case", "CodecFinding", "check", "decode", "encode", "run_one", "seeds"]

METHODS = (b"GET", b"HEAD", b"POST", b"CONNECT")
MAX_CUTS = 7


@dataclass(frozen=True)
class Case:
    response: bool
    method: bytes
    payload: bytes
    cuts: tuple[int, ...]

    def pieces(self) -> list[bytes]:
        points = sorted({cut % (len(self.payload) + 1) for cut in self.cuts})
        edges = [0, *points, len(self.payload)]
        return [self.payload[a:b] for a, b in itertools.pairwise(edges) if b > a]


def decode(data: bytes) -> Case:
    flags = data[0] if data else 0
    count = (data[1] & MAX_CUTS) if len(data) > 1 else 0
    raw_cuts = data[2 : 2 + 2 * count]
    cuts = tuple(v for (v,) in struct.iter_unpack("<H", raw_cuts[: len(raw_cuts) // 2 * 2]))
    payload = data[2 + 2 * count :]
    return Case(bool(flags & 1), METHODS[(flags >> 1) & 3], payload, cuts)


def encode(payload: bytes, *, response: bool = False, method: bytes = b"GET",
           cuts: Sequence[int] = ()) -> bytes:  # fmt: skip
    """The input that `decode` turns into this case (for seeds)."""
    flags = int(response) | METHODS.index(method) << 1
    count = min(len(cuts), MAX_CUTS)
    packed = b"".join(struct.pack("<H", cut & 0xFFFF) for cut in cuts[:count])
    return bytes([flags, count]) + packed + payload


# --------------------------------------------------------------------------- properties


def _same_verdict(whole: Outcome, cut: Outcome, case: Case) -> None:
    if (whole.error is None) != (cut.error is None):
        raise CodecFinding(
            f"the cuts {case.cuts} change the verdict: whole {whole.error!r}, cut {cut.error!r}"
        )
    if whole.error is None and whole.messages != cut.messages:
        raise CodecFinding(f"the cuts {case.cuts} change the messages")


def check(case: Case) -> None:
    """Every property for one case; raises `CodecFinding` (or whatever escaped the codec)."""
    pieces = case.pieces()
    if case.response:
        outcome = codec_response(case.method, pieces)
        whole = codec_response(case.method, [case.payload] if case.payload else [])
        oracle = h11_response(case.method, pieces)
    else:
        outcome = codec_requests(pieces)
        whole = codec_requests([case.payload] if case.payload else [])
        oracle = h11_requests(pieces)
    _same_verdict(whole, outcome, case)
    not_more_lenient(outcome, oracle)


def run_one(data: bytes) -> None:
    """The fuzz target: decode the input, check every property."""
    check(decode(data))


# --------------------------------------------------------------------------- seeds

_H = b"Host: example.com\r\n"
REQUEST_SEEDS = (
    b"GET / HTTP/1.1\r\n" + _H + b"\r\n",
    b"GET /a?b=c HTTP/1.1\r\n" + _H + b"Connection: close\r\n\r\nGARBAGE",
    b"POST /p HTTP/1.1\r\n" + _H + b"Content-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"GET /1 HTTP/1.1\r\n" + _H + b"\r\nPUT /2 HTTP/1.1\r\n" + _H + b"Content-Length: 1\r\n\r\nx"
    b"GET /3 HTTP/1.0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\n" + _H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    b"GET / HTTP/1.1\r\n" + _H + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + _H + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"PUT / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"
    b"0\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
)
_OK = b"Content-Length: 2\r\n\r\nok"
_WEBSOCKET = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
RESPONSE_SEEDS = (
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    (b"GET", b"HTTP/1.1 200 OK\r\n\r\nuntil the close"),
    (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    (b"GET", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n" + _OK),
    (b"GET", b"HTTP/1.1 101 Switching Protocols\r\n" + _WEBSOCKET + b"\r\n\x81\x00"),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
    (b"POST", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"),
    (b"CONNECT", b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03"),
)


def seeds() -> list[bytes]:
    """Inputs that reach every state of both parsers, whole and cut in a few places."""
    out = []
    for payload in REQUEST_SEEDS:
        out += [encode(payload), encode(payload, cuts=(1, len(payload) // 2, len(payload) - 1))]
    for method, payload in RESPONSE_SEEDS:
        out.append(encode(payload, response=True, method=method))
        out.append(encode(payload, response=True, method=method, cuts=(len(payload) // 3,)))
    return out
