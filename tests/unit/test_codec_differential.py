"""Differential tests: ingressd.codec against h11, the oracle.

The rule (SPEC, "Parsing"): the codec never accepts what h11 rejects, and when
both accept they agree on method or status, target, version, headers (names
lower-cased), body bytes and message boundaries.  The codec may be stricter; every
case where it is, and h11 is not, is listed in STRICTER with the reason.

Each corpus case is fed whole and one byte at a time; hypothesis adds generated
valid messages (which both must parse identically) and mutated or random bytes
(on which the codec may only raise ProtocolError / UpstreamProtocolError, and
must still never accept what h11 rejects).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingressd.errors import ProtocolError, UpstreamProtocolError
from tests.h11_oracle import (
    codec_requests,
    codec_response,
    h11_requests,
    h11_response,
    not_more_lenient,
)


def whole_and_bytewise(raw: bytes) -> list[list[bytes]]:
    return [[raw], [raw[i : i + 1] for i in range(len(raw))]]


# --------------------------------------------------------------------------- corpus

H = b"Host: example.com\r\n"


def post(headers: bytes, body: bytes, version: bytes = b"1.1") -> bytes:
    host = H if version == b"1.1" else b""
    return b"POST /submit HTTP/" + version + b"\r\n" + host + headers + b"\r\n" + body


def chunked(body: bytes, te: bytes = b"chunked") -> bytes:
    return post(b"Transfer-Encoding: " + te + b"\r\n", body)


# name -> (raw request, the codec's verdict: None = accepted, else the error status)
REQUESTS: dict[str, tuple[bytes, int | None]] = {
    # --- valid
    "get": (b"GET / HTTP/1.1\r\n" + H + b"\r\n", None),
    "get_query_and_fragment": (b"GET /a/b?c=d&e=%20#frag HTTP/1.1\r\n" + H + b"\r\n", None),
    "get_odd_target_chars": (b'GET /a"b{c}|d\\e^f`g HTTP/1.1\r\n' + H + b"\r\n", None),
    "get_absolute_form": (b"GET http://example.com/x?y HTTP/1.1\r\n" + H + b"\r\n", None),
    "options_asterisk": (b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", None),
    "head": (b"HEAD /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "delete": (b"DELETE /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "purge_method": (b"PURGE /x HTTP/1.1\r\n" + H + b"\r\n", None),
    "host_with_port": (b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", None),
    "host_ipv6": (b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", None),
    "host_empty": (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", None),
    "post_content_length": (post(b"Content-Length: 5\r\n", b"hello"), None),
    "post_content_length_zero": (post(b"Content-Length: 0\r\n", b""), None),
    "content_length_with_ows": (post(b"Content-Length: \t 5 \t\r\n", b"hello"), None),
    "content_length_leading_zeros": (post(b"Content-Length: 005\r\n", b"hello"), None),
    "chunked": (chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), None),
    "chunked_upper_hex": (chunked(b"A\r\n0123456789\r\n0\r\n\r\n"), None),
    "chunked_leading_zeros": (chunked(b"0005\r\nhello\r\n000\r\n\r\n"), None),
    "chunked_extension": (chunked(b"5;name=value;flag\r\nhello\r\n0;x=y\r\n\r\n"), None),
    "chunked_quoted_extension": (chunked(b'5;a="x y"\r\nhello\r\n0\r\n\r\n'), None),
    "chunked_ows_after_size": (chunked(b"5 \t\r\nhello\r\n0\r\n\r\n"), None),
    "chunked_trailers": (chunked(b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-B: two words\r\n\r\n"), None),
    "te_mixed_case": (chunked(b"0\r\n\r\n", te=b"ChUnKeD"), None),
    "te_value_ows": (post(b"Transfer-Encoding:\t chunked \r\n", b"0\r\n\r\n"), None),
    "header_all_tchars": (b"GET / HTTP/1.1\r\n" + H + b"!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", None),
    "header_obs_text": (b"GET / HTTP/1.1\r\n" + H + b"X: caf\xc3\xa9 \x80\xff\r\n\r\n", None),
    "header_inner_whitespace": (b"GET / HTTP/1.1\r\n" + H + b"X: a \t b\r\n\r\n", None),
    "header_surrounding_ows": (b"GET / HTTP/1.1\r\n" + H + b"X:  \t v \t \r\n\r\n", None),
    "header_empty_value": (b"GET / HTTP/1.1\r\n" + H + b"X:\r\nY: \t\r\n\r\n", None),
    "header_repeated": (b"GET / HTTP/1.1\r\n" + H + b"Cookie: a=1\r\nCookie: b=2\r\n\r\n", None),
    "header_underscore": (b"GET / HTTP/1.1\r\n" + H + b"X_Forwarded_For: 1.2.3.4\r\n\r\n", None),
    "many_headers": (
        b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(60)) + b"\r\n",
        None,
    ),
    "pipelined_three": (
        b"GET /1 HTTP/1.1\r\n" + H + b"\r\n"
        b"POST /2 HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc"
        b"PUT /3 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
        None,
    ),
    "close_then_more": (b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGARBAGE", None),
    "http10": (b"GET / HTTP/1.0\r\n\r\n", None),
    "http10_keep_alive_pipelined": (
        b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
        None,
    ),
    "http10_content_length": (post(b"Content-Length: 2\r\n", b"ok", version=b"1.0"), None),
    "expect_continue": (post(b"Expect: 100-continue\r\nContent-Length: 2\r\n", b"ok"), None),
    "upgrade_websocket": (
        b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
        None,
    ),
    "upgrade_with_body": (
        b"GET /ws HTTP/1.1\r\n"
        + H
        + b"Connection: upgrade\r\nUpgrade: x\r\nContent-Length: 2\r\n\r\nhiTUNNEL",
        None,
    ),
    "upgrade_without_connection": (
        b"GET / HTTP/1.1\r\n" + H + b"Upgrade: h2c\r\n\r\nGET /2 HTTP/1.1\r\n" + H + b"\r\n",
        None,
    ),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03", None),
    "te_underscore_is_just_a_header": (post(b"Transfer_Encoding: chunked\r\n", b""), None),
    # --- framing ambiguity and smuggling vectors
    "cl_and_te": (post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    "te_and_cl": (post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 400),
    "cl_duplicate_same": (post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 400),
    "cl_duplicate_different": (post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    "cl_list_same": (post(b"Content-Length: 5, 5\r\n", b"hello"), 400),
    "cl_list_different": (post(b"Content-Length: 5, 6\r\n", b"hello!"), 400),
    "cl_plus_sign": (post(b"Content-Length: +5\r\n", b"hello"), 400),
    "cl_minus_sign": (post(b"Content-Length: -5\r\n", b""), 400),
    "cl_hex": (post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    "cl_inner_space": (post(b"Content-Length: 5 5\r\n", b"hello"), 400),
    "cl_trailing_garbage": (post(b"Content-Length: 5x\r\n", b"hello"), 400),
    "cl_empty": (post(b"Content-Length:\r\n", b""), 400),
    "cl_huge": (post(b"Content-Length: 99999999999999999999\r\n", b"x"), 400),
    "cl_unicode_digit": (post(b"Content-Length: \xd9\xa5\r\n", b"hello"), 400),
    "te_xchunked": (chunked(b"0\r\n\r\n", te=b"xchunked"), 400),
    "te_chunked_identity": (chunked(b"0\r\n\r\n", te=b"chunked , identity"), 400),
    "te_identity": (chunked(b"", te=b"identity"), 400),
    "te_gzip_chunked": (chunked(b"0\r\n\r\n", te=b"gzip, chunked"), 501),
    "te_chunked_chunked": (chunked(b"0\r\n\r\n", te=b"chunked, chunked"), 400),
    "te_trailing_comma": (chunked(b"0\r\n\r\n", te=b"chunked,"), 400),
    "te_parameter": (chunked(b"0\r\n\r\n", te=b"chunked;q=1"), 400),
    "te_empty": (chunked(b"", te=b""), 400),
    "te_twice": (
        post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
        400,
    ),
    "te_space_before_colon": (post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400),
    "te_tab_before_colon": (post(b"Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n"), 400),
    "te_vertical_tab": (post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n"), 400),
    "te_obs_fold": (post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"), 400),
    "te_in_http10": (post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n", version=b"1.0"), 400),
    "chunk_size_17_digits": (chunked(b"fffffffffffffffff\r\nhello\r\n"), 400),
    "chunk_size_21_digits": (chunked(b"000000000000000000005\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_size_0x": (chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_size_negative": (chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_size_plus": (chunked(b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_size_missing": (chunked(b"\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_size_space_before_ext": (chunked(b"5 ;a=b\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_size_bare_lf": (chunked(b"5\nhello\r\n0\r\n\r\n"), 400),
    "chunk_data_too_long": (chunked(b"5\r\nhelloXX\r\n0\r\n\r\n"), 400),
    "chunk_data_bare_lf": (chunked(b"5\r\nhello\n0\r\n\r\n"), 400),
    "chunk_ext_ctl": (chunked(b"5;a\x01b\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk_ext_bare_cr": (chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"), 400),
    "last_chunk_bare_lf": (chunked(b"5\r\nhello\r\n0\n\r\n"), 400),
    "chunked_end_bare_lf": (chunked(b"5\r\nhello\r\n0\r\n\n"), 400),
    "trailer_bare_lf": (chunked(b"0\r\nX: y\n\r\n"), 400),
    "trailer_obs_fold": (chunked(b"0\r\nX: y\r\n z\r\n\r\n"), 400),
    "trailer_space_before_colon": (chunked(b"0\r\nX : y\r\n\r\n"), 400),
    # --- head syntax
    "bare_lf_everywhere": (b"GET / HTTP/1.1\nHost: example.com\n\n", 400),
    "bare_lf_one_header": (b"GET / HTTP/1.1\r\nHost: example.com\nX: y\r\n\r\n", 400),
    "bare_lf_end_of_head": (b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", 400),
    "bare_cr_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n", 400),
    "obs_fold": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n", 400),
    "obs_fold_tab": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n\tb\r\n\r\n", 400),
    "obs_fold_first_line": (b"GET / HTTP/1.1\r\n " + H + b"\r\n", 400),
    "nul_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", 400),
    "ctl_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x01b\r\n\r\n", 400),
    "del_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x7fb\r\n\r\n", 400),
    "form_feed_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x0cb\r\n\r\n", 400),
    "space_before_colon": (b"GET / HTTP/1.1\r\n" + H + b"X : y\r\n\r\n", 400),
    "name_not_a_token": (b"GET / HTTP/1.1\r\n" + H + b"X(y): z\r\n\r\n", 400),
    "name_non_ascii": (b"GET / HTTP/1.1\r\n" + H + b"X\xc3\xa9: z\r\n\r\n", 400),
    "name_empty": (b"GET / HTTP/1.1\r\n" + H + b": z\r\n\r\n", 400),
    "line_without_colon": (b"GET / HTTP/1.1\r\n" + H + b"NoColon\r\n\r\n", 400),
    "host_missing": (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
    "host_twice": (b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", 400),
    "host_twice_http10": (b"GET / HTTP/1.0\r\n" + H + H + b"\r\n", 400),
    "host_with_space": (b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400),
    "host_with_path": (b"GET / HTTP/1.1\r\nHost: example.com/admin\r\n\r\n", 400),
    "target_with_space": (b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400),
    "target_with_del": (b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400),
    "target_with_nul": (b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    "target_non_ascii": (b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "double_space_after_method": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "double_space_before_version": (b"GET /  HTTP/1.1\r\n" + H + b"\r\n", 400),
    "tab_separator": (b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    "missing_version": (b"GET /\r\n" + H + b"\r\n", 400),
    "lowercase_protocol": (b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    "version_two_digit_minor": (b"GET / HTTP/1.10\r\n" + H + b"\r\n", 400),
    "version_2": (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    "version_09": (b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505),
    "version_12": (b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    "method_lowercase": (b"get / HTTP/1.1\r\n" + H + b"\r\n", 501),
    "method_unknown": (b"BREW /pot HTTP/1.1\r\n" + H + b"\r\n", 501),
    "method_not_a_token": (b"GE(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "leading_empty_line": (b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "leading_bare_lf": (b"\nGET / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "empty_line_between_requests": (
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 1\r\n\r\nx\r\nGET / HTTP/1.1\r\n"
        + H
        + b"\r\n",
        400,
    ),
    "tls_client_hello": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32), 400),
    "garbage_after_request": (b"GET / HTTP/1.1\r\n" + H + b"\r\nXYZ\x00\r\n\r\n", 400),
    "eof_inside_body": (post(b"Content-Length: 10\r\n", b"hello"), 400),
    "eof_inside_head": (b"GET / HTTP/1.1\r\nHost: exam", 400),
    "eof_inside_chunked_body": (chunked(b"5\r\nhello\r\n"), 400),
}

# Cases the codec rejects although h11 accepts them, and why (SPEC §4 / RFC 9112).
STRICTER: dict[str, str] = {
    "cl_and_te": "CL with TE is ambiguous framing (RFC 9112 §6.1); h11 lets TE win",
    "te_and_cl": "same, other order",
    "cl_duplicate_same": "any repeated Content-Length is refused; h11 merges equal ones",
    "cl_list_same": "a Content-Length list is refused; h11 merges equal members",
    "te_obs_fold": "obs-fold is refused (SPEC §4); h11 unfolds it",
    "te_in_http10": "TE in an HTTP/1.0 message is faulty framing (RFC 9112 §6.1)",
    "chunk_ext_ctl": "CTLs in chunk extensions are refused; h11 skips extensions unparsed",
    "chunk_ext_bare_cr": "same, for a bare CR",
    "chunked_end_bare_lf": "bare LF is refused everywhere; h11 accepts LF line ends",
    "trailer_bare_lf": "same, in the trailer section",
    "trailer_obs_fold": "obs-fold is refused in trailers too",
    "bare_lf_everywhere": "bare LF in the head (SPEC §4); h11 accepts LF line ends",
    "bare_lf_one_header": "same",
    "bare_lf_end_of_head": "same",
    "obs_fold": "obs-fold (SPEC §4); h11 unfolds it",
    "obs_fold_tab": "same, with HTAB",
    "ctl_in_value": "llhttp refuses CTLs other than HTAB in values; h11 allows all but NUL",
    "del_in_value": "same, for DEL",
    "host_with_space": "Host must be a uri-host[:port]; h11 does not check the value",
    "host_with_path": "same",
    "version_2": "only HTTP/1.0 and 1.1 are served (505); h11 parses any d.d",
    "version_09": "same",
    "version_12": "same",
    "method_lowercase": "llhttp only knows registered methods, upper case",
    "method_unknown": "same",
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_corpus(name: str) -> None:
    raw, expected = REQUESTS[name]
    for chunks in whole_and_bytewise(raw):
        codec = codec_requests(chunks)
        oracle = h11_requests(chunks)
        not_more_lenient(codec, oracle)
        if expected is None:
            assert codec.error is None, f"codec refused a valid request: {codec.error!r}"
            assert codec.messages and codec.messages[0].complete
        else:
            assert isinstance(codec.error, ProtocolError), "codec accepted a bad request"
            assert codec.error.status == expected
            if name in STRICTER:
                assert oracle.error is None, f"h11 refused it too: {oracle.error!r}"
            else:
                assert oracle.error is not None, "h11 accepts it: add it to STRICTER with a reason"


def test_stricter_list_only_names_refused_cases() -> None:
    assert set(STRICTER) <= {name for name, (_, status) in REQUESTS.items() if status}


def test_corpus_is_large_enough() -> None:
    assert sum(status is None for _, status in REQUESTS.values()) >= 30
    assert sum(status is not None for _, status in REQUESTS.values()) >= 60
    assert len(RESPONSES) >= 30


# name -> (request method, raw response, codec accepts)
RESPONSES: dict[str, tuple[bytes, bytes, bool]] = {
    "ok_content_length": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", True),
    "ok_chunked": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        True,
    ),
    "ok_until_close": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world",
        True,
    ),
    "http10_until_close": (b"GET", b"HTTP/1.0 200 OK\r\n\r\nhello", True),
    "no_reason": (b"GET", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", True),
    "empty_reason": (b"GET", b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", True),
    "reason_with_spaces": (
        b"GET",
        b"HTTP/1.1 404 Not  Found Here\r\nContent-Length: 0\r\n\r\n",
        True,
    ),
    "reason_obs_text": (b"GET", b"HTTP/1.1 200 \xc3\x93K\r\nContent-Length: 0\r\n\r\n", True),
    "status_599": (b"GET", b"HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", True),
    "head_with_content_length": (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", True),
    "head_with_chunked": (b"HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", True),
    "no_content_with_content_length": (
        b"GET",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
        True,
    ),
    "not_modified": (b"GET", b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', True),
    "continue_then_ok": (
        b"POST",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        True,
    ),
    "early_hints_then_ok": (
        b"GET",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        True,
    ),
    "switching_protocols": (
        b"GET",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"\x81\x00",
        True,
    ),
    "connect_established": (
        b"CONNECT",
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03",
        True,
    ),
    "chunked_trailers": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        True,
    ),
    "close_header": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        True,
    ),
    "cl_and_te": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        False,
    ),
    "cl_duplicate_same": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        False,
    ),
    "cl_duplicate_different": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
        False,
    ),
    "cl_not_digits": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx", False),
    "te_gzip": (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", False),
    "te_gzip_chunked": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        False,
    ),
    "te_in_http10": (
        b"GET",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        False,
    ),
    "bad_chunk_size": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        False,
    ),
    "chunk_ext_ctl": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;\x01\r\nx\r\n0\r\n\r\n",
        False,
    ),
    "bare_lf_head": (b"GET", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", False),
    "obs_fold": (b"GET", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", False),
    "nul_in_value": (b"GET", b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n", False),
    "reason_ctl": (b"GET", b"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", False),
    "status_099": (b"GET", b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", False),
    "status_600": (b"GET", b"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", False),
    "status_four_digits": (b"GET", b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", False),
    "status_two_digits": (b"GET", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", False),
    "version_2": (b"GET", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    "lowercase_protocol": (b"GET", b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    "leading_empty_line": (b"GET", b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    "bytes_after_the_response": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy", True),
    "eof_inside_body": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", False),
    "eof_inside_chunked": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        False,
    ),
    "eof_before_response": (b"GET", b"", False),
}

RESPONSES_STRICTER: dict[str, str] = {
    "cl_and_te": "ambiguous framing; h11 lets TE win",
    "cl_duplicate_same": "any repeated Content-Length is refused",
    "te_in_http10": "TE in an HTTP/1.0 message is faulty framing",
    "chunk_ext_ctl": "CTLs in chunk extensions are refused",
    "bare_lf_head": "bare LF in the head (SPEC §4)",
    "obs_fold": "obs-fold (SPEC §4)",
    "reason_ctl": "CTLs other than HTAB in the reason phrase",
    "status_600": "RFC 9110 §15: status codes are 100-599",
    "version_2": "only HTTP/1.0 and 1.1",
}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_corpus(name: str) -> None:
    method, raw, accepted = RESPONSES[name]
    for chunks in whole_and_bytewise(raw) if raw else [[]]:
        codec = codec_response(method, chunks)
        oracle = h11_response(method, chunks)
        not_more_lenient(codec, oracle)
        if accepted:
            assert codec.error is None, f"codec refused a valid response: {codec.error!r}"
            assert codec.messages and (codec.messages[-1].complete or codec.stopped)
        else:
            assert isinstance(codec.error, UpstreamProtocolError), "codec accepted a bad response"
            if name in RESPONSES_STRICTER:
                assert oracle.error is None, f"h11 refused it too: {oracle.error!r}"
            else:
                assert oracle.error is not None, "h11 accepts it: add it to RESPONSES_STRICTER"


# --------------------------------------------------------------------------- hypothesis

TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FIELD_CHARS = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
PATH_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%"
NOTABLE = {b"content-length", b"transfer-encoding", b"host", b"connection", b"expect", b"upgrade"}
HYPOTHESIS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _chars(alphabet: bytes, min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    # Random bytes mapped onto the alphabet in C: much faster than lists of characters.
    table = bytes(alphabet[i % len(alphabet)] for i in range(256))
    return st.binary(min_size=min_size, max_size=max_size).map(lambda b: b.translate(table))


header_names = _chars(TCHARS, 1, 12).filter(lambda n: n.lower() not in NOTABLE)
header_values = st.builds(
    lambda words, sep, pad_l, pad_r: pad_l + sep.join(words) + pad_r,
    st.lists(_chars(FIELD_CHARS, 1, 8), max_size=3),
    st.sampled_from([b" ", b"\t", b"  "]),
    st.sampled_from([b"", b" ", b"\t "]),
    st.sampled_from([b"", b" ", b" \t"]),
)
fields = st.lists(st.tuples(header_names, header_values), max_size=6)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(framing headers, encoded body) for a random body."""
    data = draw(st.binary(max_size=200))
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    if kind == "none" and not data:
        return b"", b""
    if kind != "chunked":
        return b"Content-Length: %d\r\n" % len(data), data
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=5)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    trailer = draw(st.sampled_from([b"", b"X-Trailer: v\r\n"]))
    return b"Transfer-Encoding: chunked\r\n", encoded + b"0\r\n" + trailer + b"\r\n"


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"]))
    target = b"/" + draw(_chars(PATH_CHARS, 0, 30))
    framing, body = draw(bodies())
    lines = [b"%s: %s\r\n" % pair for pair in draw(fields)]
    lines.insert(draw(st.integers(0, len(lines))), b"Host: example.com\r\n")
    if framing:
        lines.insert(draw(st.integers(0, len(lines))), framing)
    return b"%s %s HTTP/1.1\r\n%s\r\n%s" % (method, target, b"".join(lines), body)


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([200, 201, 202, 206, 301, 404, 418, 500, 503]))
    reason = draw(_chars(FIELD_CHARS + b" \t", 0, 20))
    framing, body = draw(bodies())
    lines = [b"%s: %s\r\n" % pair for pair in draw(fields)]
    if framing:
        lines.insert(draw(st.integers(0, len(lines))), framing)
    interim = draw(st.sampled_from([b"", b"HTTP/1.1 100 Continue\r\n\r\n"]))
    return interim + b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, reason, b"".join(lines), body)


@st.composite
def split(draw: st.DrawFn, raw: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(raw)), max_size=12))))
    # No empty pieces: h11 takes receive_data(b"") as the end of the stream.
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]


@HYPOTHESIS
@given(st.lists(requests(), min_size=1, max_size=3).map(b"".join).flatmap(split))
def test_valid_requests_parse_like_h11(chunks: list[bytes]) -> None:
    codec = codec_requests(chunks)
    oracle = h11_requests(chunks)
    assert codec.error is None and oracle.error is None, (codec.error, oracle.error)
    assert len(codec.messages) == len(oracle.messages)
    not_more_lenient(codec, oracle)


@HYPOTHESIS
@given(responses().flatmap(split))
def test_valid_responses_parse_like_h11(chunks: list[bytes]) -> None:
    codec = codec_response(b"GET", chunks)
    oracle = h11_response(b"GET", chunks)
    assert codec.error is None and oracle.error is None, (codec.error, oracle.error)
    assert len(codec.messages) == len(oracle.messages)
    not_more_lenient(codec, oracle)


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(messages))
    interesting = b"\r\n \t:;,0123456789aAfF\x00\x01\x7f\x80\xff-+xX"
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        byte = draw(st.sampled_from(interesting) | st.integers(0, 255))
        if op == "flip" and data:
            data[at] = byte
        elif op == "insert":
            data.insert(at, byte)
        elif op == "delete" and data:
            del data[at]
        elif op == "duplicate":
            end = draw(st.integers(at, min(len(data), at + 20)))
            data[at:at] = data[at:end]
    return bytes(data)


corpus_requests = st.sampled_from([raw for raw, _ in REQUESTS.values()])
corpus_responses = st.sampled_from(
    [raw for method, raw, _ in RESPONSES.values() if method == b"GET"]
)


@HYPOTHESIS
@given(
    st.one_of(mutated(requests()), mutated(corpus_requests), st.binary(max_size=200)).flatmap(split)
)
def test_mangled_requests_are_never_accepted_beyond_h11(chunks: list[bytes]) -> None:
    not_more_lenient(codec_requests(chunks), h11_requests(chunks))


@HYPOTHESIS
@given(
    st.one_of(mutated(responses()), mutated(corpus_responses), st.binary(max_size=200)).flatmap(
        split
    )
)
def test_mangled_responses_are_never_accepted_beyond_h11(chunks: list[bytes]) -> None:
    not_more_lenient(codec_response(b"GET", chunks), h11_response(b"GET", chunks))


framing_names = st.sampled_from(
    [
        b"Content-Length",
        b"content-length",
        b"Content-Length ",
        b"Transfer-Encoding",
        b"transfer-encoding",
        b"TRANSFER-ENCODING",
        b"Transfer-Encoding ",
        b"Transfer_Encoding",
        b" Transfer-Encoding",
        b"Connection",
        b"Host",
    ]
)
framing_values = st.lists(
    st.sampled_from(
        [
            *(b"chunked", b"Chunked", b"identity", b"gzip", b"close", b"a", b",", b", ", b" "),
            *(b"\t", b"0", b"5", b"05", b"+5", b"-1", b"5 5", b"0x5", b"\x0b", b";", b"\r\n "),
            *(b"\n", b"\r"),
        ]
    ),
    max_size=4,
).map(b"".join)
framing_bodies = st.sampled_from(
    [
        b"",
        b"hello",
        b"0\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"helloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
)


@HYPOTHESIS
@given(
    st.builds(
        lambda pairs, body: (
            b"POST / HTTP/1.1\r\nHost: a\r\n"
            + b"".join(name + b":" + value + b"\r\n" for name, value in pairs)
            + b"\r\n"
            + body
        ),
        st.lists(st.tuples(framing_names, framing_values), min_size=1, max_size=3),
        framing_bodies,
    ).flatmap(split)
)
def test_framing_header_combinations_never_accepted_beyond_h11(chunks: list[bytes]) -> None:
    # The smuggling surface, explored densely: Content-Length / Transfer-Encoding
    # name and value variants, repeated, in front of bodies that would desync.
    not_more_lenient(codec_requests(chunks), h11_requests(chunks))
