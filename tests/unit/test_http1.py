"""Pure proxy header rules: hop-by-hop removal, forwarded headers, targets, own answers."""

from __future__ import annotations

import ipaddress

import pytest

from ingressd import http1
from ingressd.errors import ProtocolError

LISTENER = http1.Listener(b"http", 8080)
TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


def test_hop_by_hop_headers_and_those_named_in_connection_are_removed() -> None:
    headers = [
        (b"host", b"a"),
        (b"connection", b"keep-alive, X-Secret"),
        (b"x-secret", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"proxy-connection", b"keep-alive"),
        (b"accept", b"*/*"),
    ]
    assert http1.end_to_end(headers) == [(b"host", b"a"), (b"accept", b"*/*")]


def test_untrusted_client_forwarded_headers_are_replaced() -> None:
    incoming = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")]
    forwarded = dict(
        http1.forwarded_headers(incoming, "192.0.2.7", LISTENER, b"shop.example", None)
    )
    assert forwarded == {
        b"x-real-ip": b"192.0.2.7",
        b"x-forwarded-for": b"192.0.2.7",
        b"x-forwarded-host": b"shop.example",
        b"x-forwarded-port": b"8080",
        b"x-forwarded-proto": b"http",
    }


def test_trusted_proxy_chain_is_appended_and_real_ip_is_rightmost_untrusted() -> None:
    incoming = [
        (b"x-forwarded-for", b"203.0.113.9, 10.1.1.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-port", b"443"),
    ]
    forwarded = dict(http1.forwarded_headers(incoming, "10.0.0.2", LISTENER, b"h", TRUSTED))
    assert forwarded[b"x-forwarded-for"] == b"203.0.113.9, 10.1.1.1, 10.0.0.2"
    assert forwarded[b"x-real-ip"] == b"203.0.113.9"
    assert forwarded[b"x-forwarded-proto"] == b"https"
    assert forwarded[b"x-forwarded-port"] == b"443"


def test_upstream_fields_drop_client_values_of_headers_ingressd_sets() -> None:
    fields = (
        b"\r\nHost: h\r\nX-Real-IP: 1.1.1.1\r\nExpect: 100-continue\r\nAccept: */*\r\n"
        b"X-Request-ID: r\r\nx-forwarded-for: 6.6.6.6\r\nTE: trailers\r\nTE-X: kept\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\n"
    )
    assert http1.upstream_fields(fields, ()) == b"\r\nAccept: */*\r\nTE-X: kept\r\n"
    assert http1.upstream_fields(b"\r\n", ()) == b"\r\n"
    assert http1.upstream_fields(b"\r\nHost: h\r\n", ()) == b"\r\n"


def test_fields_named_in_connection_are_dropped_from_forwarded_fields() -> None:
    fields = b"\r\nX-Secret: 1\r\nConnection: keep-alive, X-Secret\r\nA: b\r\n"
    assert http1.downstream_fields(fields, (b"keep-alive", b"x-secret")) == b"\r\na: b\r\n"
    fields = b"\r\nConnection: keep-alive\r\nA: b\r\nX-Request-ID: backend\r\n"
    assert http1.downstream_fields(fields, (b"keep-alive",)) == b"\r\nA: b\r\n"


def test_connection_cannot_remove_the_content_length_that_frames_a_response() -> None:
    fields = b"\r\nConnection: content-length, x-a\r\nContent-Length: 5\r\nX-A: 1\r\n"
    forwarded = http1.downstream_fields(fields, (b"content-length", b"x-a"))
    assert forwarded == b"\r\ncontent-length: 5\r\n"


def test_request_id_is_kept_when_sane_and_generated_otherwise() -> None:
    assert http1.request_id_of(b"abc-123") == b"abc-123"
    generated = http1.request_id_of(b"bad id\x7f")
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert http1.request_id_of(None) != http1.request_id_of(None)
    assert len(http1.request_id_of(b"")) == 32


@pytest.mark.parametrize(
    ("target", "host_header", "host", "path", "forward"),
    [
        (b"/a?b", b"Shop.Example:8080", "shop.example", "/a?b", b"/a?b"),
        (b"http://Other.Example/x?y", b"shop.example", "other.example", "/x?y", b"/x?y"),
        (b"http://other.example", b"shop.example", "other.example", "/", b"/"),
        (b"http://other.example?q", b"", "other.example", "/?q", b"/?q"),
        (b"/", b"[::1]:80", "[::1]", "/", b"/"),
        (b"/", b"example.com.", "example.com", "/", b"/"),
    ],
)
def test_routing_host_and_path_come_from_the_target_and_host(
    target: bytes, host_header: bytes, host: str, path: str, forward: bytes
) -> None:
    result = http1.split_target(b"GET", target, host_header)
    assert (result.host, result.path, result.forward_target) == (host, path, forward)


def test_absolute_form_authority_replaces_host_upstream() -> None:
    result = http1.split_target(b"GET", b"http://a.example:81/", b"b.example")
    assert result.host_header == b"a.example:81"


@pytest.mark.parametrize(
    ("target", "host_header"),
    [
        (b"http://user:pw@a.example/", b"a.example"),
        (b"ftp://a.example/", b"a.example"),
        (b"a.example:443", b"a.example"),
        (b"/", b"a b"),
        (b"/", b"a.example:80x"),
    ],
)
def test_bad_targets_and_hosts_are_rejected(target: bytes, host_header: bytes) -> None:
    with pytest.raises(ProtocolError):
        http1.split_target(b"GET", target, host_header)


def test_simple_response_is_a_complete_plain_text_message() -> None:
    data = http1.simple_response(404, keep_alive=True, request_id=b"r1")
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"Content-Length: %d" % len(body) in head
    assert b"Connection: keep-alive" in head and b"X-Request-ID: r1" in head
    assert body == b"404 Not Found\n"
    assert http1.simple_response(404, keep_alive=False, head_only=True).endswith(b"\r\n\r\n")


def test_redirect_location_leaves_out_port_443() -> None:
    assert http1.redirect_location("a.example", b"/p?q=1", 443) == b"https://a.example/p?q=1"
    assert http1.redirect_location("a.example", b"/", 8443) == b"https://a.example:8443/"


def test_long_host_names_are_split_like_short_ones() -> None:
    long_name = b"A" * 63 + b"." + b"b" * 400 + b".example"  # past the cached length
    result = http1.split_target(b"GET", b"/x", long_name + b":8080")
    assert result.host == long_name.decode().lower()
    assert http1.split_target(b"GET", b"/x", b"Short.Example:80").host == "short.example"
