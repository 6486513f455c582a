"""accesslog.py: buffered writing (a timer or 64 KiB), text and JSON lines, escaping, reopen.

The event loop is a fake that records `call_later`, so the flush timer is driven by hand
and no test waits for a second to pass.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from ingressd.accesslog import AccessLog


class FakeTimer:
    def __init__(self, delay: float, callback: Callable[[], object]) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        assert not self.cancelled, "a cancelled timer fired"
        self.callback()


class FakeLoop:
    """Just enough of an event loop for `AccessLog`: it records the timers it is given."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(delay, lambda: callback(*args))
        self.timers.append(timer)
        return timer

    @property
    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]


Fields = dict[str, Any]

REQUEST: Fields = {
    "remote": "192.0.2.7",
    "method": b"GET",
    "target": b"/shop/cart?id=3",
    "version": b"1.1",
    "status": 200,
    "sent": 640,
    "body_sent": 512,
    "referer": b"https://shop.example/",
    "agent": b"curl/8.5.0",
    "request_time": 0.0123,
    "upstream_addr": "10.0.0.5:8080",
    "upstream_status": 200,
    "upstream_time": 0.0101,
    "request_id": b"0123456789abcdef0123456789abcdef",
    "ingress": "shop/web",
    "service": "frontend",
}

WITHOUT_UPSTREAM: Fields = {
    "status": 404,
    "referer": b"",
    "agent": b"",
    "upstream_addr": "",
    "upstream_status": 0,
    "upstream_time": None,
    "ingress": "",
    "service": "",
}

COMBINED = re.compile(
    r"^(?P<remote>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)" '
    r"(?P<request_time>\d+\.\d{3}) (?P<upstream_addr>\S+) (?P<upstream_status>\S+) "
    r"(?P<upstream_time>\S+) (?P<request_id>\S+) (?P<ingress>\S+) (?P<service>\S+) (?P<canary>\S+)$"
)


MakeLog = Callable[..., tuple[AccessLog, FakeLoop, Path]]


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[MakeLog]:
    """``make_log(format="text", path=tmp_path/"access.log")``; every log is closed at the end."""
    opened: list[AccessLog] = []

    def make(
        log_format: str = "text", path: Path | None = None
    ) -> tuple[AccessLog, FakeLoop, Path]:
        loop = FakeLoop()
        path = path or tmp_path / "access.log"
        log = AccessLog(str(path), log_format, cast(asyncio.AbstractEventLoop, loop))
        opened.append(log)
        return log, loop, path

    yield make
    for log in opened:
        log.close()  # a second close is harmless: the file object ignores it


def write(log: AccessLog, **changes: Any) -> None:
    log.log(**{**REQUEST, **changes})


def one_line(path: Path) -> str:
    lines = path.read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- buffering ---------------------------------------------------------------------


def test_nothing_is_written_before_the_flush(make_log: MakeLog) -> None:
    log, loop, path = make_log()
    write(log)
    write(log)
    assert path.read_bytes() == b""
    assert len(loop.pending) == 1, "one timer for the whole batch"
    log.close()


def test_the_timer_flushes_within_a_second(make_log: MakeLog) -> None:
    log, loop, path = make_log()
    write(log)
    write(log, target=b"/second")
    (timer,) = loop.pending
    assert 0 < timer.delay <= 1.0
    timer.fire()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert "/second" in lines[1]
    # The next line arms a new timer: nothing waits for the close.
    write(log, target=b"/third")
    assert path.read_text().count("\n") == 2
    loop.pending[-1].fire()
    assert path.read_text().count("\n") == 3
    log.close()


def test_64_kib_of_lines_are_written_without_waiting_for_the_timer(make_log: MakeLog) -> None:
    log, loop, path = make_log()
    probe, _, probe_path = make_log(path=path.with_name("probe.log"))
    write(probe, agent=b"a" * 1000)
    probe.flush()
    line_size = probe_path.stat().st_size
    needed = -(-64 * 1024 // line_size)  # lines until the buffer holds 64 KiB
    for _ in range(needed - 1):
        write(log, agent=b"a" * 1000)
    assert path.stat().st_size == 0, "written before 64 KiB were buffered"
    write(log, agent=b"a" * 1000)
    assert path.stat().st_size == needed * line_size, "64 KiB buffered: all written at once"
    assert not loop.pending, "nothing left buffered: no timer left running"


def test_explicit_flush_writes_and_cancels_the_timer(make_log: MakeLog) -> None:
    log, loop, path = make_log()
    write(log)
    (timer,) = loop.pending
    log.flush()
    assert timer.cancelled
    assert path.read_bytes().count(b"\n") == 1
    log.flush()  # nothing buffered: nothing written twice
    assert path.read_bytes().count(b"\n") == 1
    log.close()


def test_close_flushes(make_log: MakeLog) -> None:
    log, _, path = make_log()
    write(log)
    log.close()
    assert path.read_bytes().count(b"\n") == 1


def test_lines_are_appended_to_an_existing_file(tmp_path: Path, make_log: MakeLog) -> None:
    path = tmp_path / "access.log"
    path.write_text("earlier line\n")
    log, _, _ = make_log(path=path)
    write(log)
    log.close()
    lines = path.read_text().splitlines()
    assert lines[0] == "earlier line"
    assert len(lines) == 2


# --- text format ---------------------------------------------------------------------


def test_text_line_is_combined_plus_upstream_fields(make_log: MakeLog) -> None:
    log, _, path = make_log()
    write(log)
    log.close()
    line = one_line(path)
    match = COMBINED.match(line)
    assert match, line
    assert match.groupdict() | {"time": "-"} == {
        "remote": "192.0.2.7",
        "time": "-",
        "request": "GET /shop/cart?id=3 HTTP/1.1",
        "status": "200",
        "bytes": "512",
        "referer": "https://shop.example/",
        "agent": "curl/8.5.0",
        "request_time": "0.012",
        "upstream_addr": "10.0.0.5:8080",
        "upstream_status": "200",
        "upstream_time": "0.010",
        "request_id": "0123456789abcdef0123456789abcdef",
        "ingress": "shop/web",
        "service": "frontend",
        "canary": "-",
    }


def test_text_line_without_upstream_uses_dashes(make_log: MakeLog) -> None:
    log, _, path = make_log()
    write(log, **WITHOUT_UPSTREAM)
    log.close()
    match = COMBINED.match(one_line(path))
    assert match, one_line(path)
    fields = match.groupdict()
    assert fields["status"] == "404"
    assert fields["referer"] == fields["agent"] == "-"
    assert fields["upstream_addr"] == fields["upstream_status"] == fields["upstream_time"] == "-"
    assert fields["ingress"] == fields["service"] == fields["canary"] == "-"


def test_text_time_is_the_local_time_of_the_request(make_log: MakeLog) -> None:
    log, _, path = make_log()
    write(log)
    log.close()
    match = COMBINED.match(one_line(path))
    assert match
    stamp = datetime.datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z")
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - stamp).total_seconds()) < 5


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (b'/say?"hi"', r"/say?\x22hi\x22"),
        (b"/a\\b", r"/a\x5Cb"),
        (b"/tab\there", r"/tab\x09here"),
        (b"/nl\r\nX", r"/nl\x0D\x0AX"),
        (b"/nul\x00\x1b", r"/nul\x00\x1B"),
        (b"/del\x7f", r"/del\x7F"),
        (b"/caf\xc3\xa9", r"/caf\xC3\xA9"),
        (b"/only\xe9", r"/only\xE9"),
    ],
)
def test_text_escapes_quotes_backslashes_control_and_non_ascii_bytes(
    make_log: MakeLog, raw: bytes, logged: str
) -> None:
    """As nginx does: '"', '\\', bytes < 0x20 and >= 0x7F become \\xHH, so a client cannot
    end a field, forge a line, or write bytes that are not ASCII into the log."""
    log, _, path = make_log()
    write(log, target=raw, referer=raw, agent=raw)
    log.close()
    data = path.read_bytes()
    assert data.count(b"\n") == 1 and data.endswith(b"\n"), data
    assert all(32 <= byte < 127 for byte in data[:-1]), f"raw bytes in the log line: {data!r}"
    match = COMBINED.match(data[:-1].decode("ascii"))
    assert match, data
    assert match["request"] == f"GET {logged} HTTP/1.1"
    assert match["referer"] == logged
    assert match["agent"] == logged


# --- JSON format ------------------------------------------------------------------


def test_json_line_carries_the_same_fields(make_log: MakeLog) -> None:
    log, _, path = make_log("json")
    write(log)
    log.close()
    record = json.loads(one_line(path))
    time_field = record.pop("time")
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", time_field)
    assert record == {
        "remote_addr": "192.0.2.7",
        "request": "GET /shop/cart?id=3 HTTP/1.1",
        "status": 200,
        "bytes_sent": 640,
        "body_bytes_sent": 512,
        "http_referer": "https://shop.example/",
        "http_user_agent": "curl/8.5.0",
        "request_time": 0.012,
        "upstream_addr": "10.0.0.5:8080",
        "upstream_status": 200,
        "upstream_response_time": 0.01,
        "request_id": "0123456789abcdef0123456789abcdef",
        "ingress": "shop/web",
        "service": "frontend",
        "canary": False,
    }


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_canary_served_requests_say_so(make_log: MakeLog, log_format: str) -> None:
    log, _, path = make_log(log_format)
    write(log, canary=True)
    log.close()
    if log_format == "json":
        assert json.loads(one_line(path))["canary"] is True
    else:
        match = COMBINED.match(one_line(path))
        assert match and match["canary"] == "canary"


def test_json_line_without_upstream_uses_nulls(make_log: MakeLog) -> None:
    log, _, path = make_log("json")
    write(log, **WITHOUT_UPSTREAM)
    log.close()
    record = json.loads(one_line(path))
    assert record["status"] == 404
    assert record["upstream_addr"] is None
    assert record["upstream_status"] is None
    assert record["upstream_response_time"] is None
    assert record["ingress"] is None
    assert record["service"] is None


def test_json_keeps_hostile_values_inside_their_field(make_log: MakeLog) -> None:
    raw = b'/x"y\\z\n{"status":1}\x00\xe9'
    log, _, path = make_log("json")
    write(log, target=raw, agent=raw, referer=raw)
    write(log)
    log.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2, "a newline in a value must not start a new line"
    record = json.loads(lines[0])
    assert record["request"] == f"GET {raw.decode('latin-1')} HTTP/1.1"
    assert record["http_user_agent"] == raw.decode("latin-1")
    assert record["status"] == 200


# --- reopen ----------------------------------------------------------------------


def test_reopen_after_rename_continues_in_a_new_file(tmp_path: Path, make_log: MakeLog) -> None:
    log, _, path = make_log()
    write(log, target=b"/before")
    log.flush()
    rotated = tmp_path / "access.log.1"
    path.rename(rotated)
    write(log, target=b"/buffered-at-rotation")
    log.reopen()
    write(log, target=b"/after")
    log.close()
    old = rotated.read_text()
    new = path.read_text()
    assert "/before" in old
    # Lines buffered when SIGUSR1 arrives belong to the old file (written before the switch).
    assert "/buffered-at-rotation" in old
    assert "/after" not in old
    assert new.count("\n") == 1 and "/after" in new


def test_reopen_failure_keeps_the_old_file(tmp_path: Path, make_log: MakeLog) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    log, _, path = make_log(path=directory / "access.log")
    rotated = tmp_path / "rotated.log"
    path.rename(rotated)
    directory.rmdir()  # the path cannot be created again
    log.reopen()
    write(log, target=b"/still-logged")
    log.close()
    assert "/still-logged" in rotated.read_text()


def test_standard_output_is_used_for_dash(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    loop = FakeLoop()
    log = AccessLog("-", "json", cast(asyncio.AbstractEventLoop, loop))
    write(log)
    log.reopen()  # nothing to reopen; must not close standard output
    write(log, target=b"/second")
    log.close()
    out = capfdbinary.readouterr().out.splitlines()
    assert [json.loads(line)["request"] for line in out] == [
        "GET /shop/cart?id=3 HTTP/1.1",
        "GET /second HTTP/1.1",
    ]
