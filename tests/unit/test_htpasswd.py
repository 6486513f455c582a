"""Basic authentication's pieces: htpasswd and auth-map users, the hash formats nginx
reads (made by the libraries), and the per-route memory of verified credentials."""

from __future__ import annotations

import base64

import bcrypt
from passlib.hash import apr_md5_crypt, sha256_crypt

from ingressd import htpasswd
from ingressd.codec import RequestHead, RequestParser
from ingressd.http1 import split_target
from ingressd.limits import LimitStore
from ingressd.policy import BasicAuthCheck, Pending, Request


def test_htpasswd_lines_skip_comments_and_the_first_line_of_a_user_wins() -> None:
    text = "# team\n\nalice:{PLAIN}one\nbob:$apr1$x$y:extra field\nalice:{PLAIN}two\nbroken\n"
    assert htpasswd.users_of_file(text) == {"alice": "{PLAIN}one", "bob": "$apr1$x$y"}


def test_an_auth_map_is_one_key_per_user() -> None:
    assert htpasswd.users_of_map([("alice", b"{PLAIN}one\n"), ("", b"x")]) == {
        "alice": "{PLAIN}one"
    }


def test_each_format_checks_and_long_bcrypt_passwords_are_cut_at_72_bytes() -> None:
    long = "x" * 100
    users = {
        "b": bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode(),
        "a": apr_md5_crypt.hash("pw"),
        "s": sha256_crypt.using(rounds=1000).hash("pw"),
        "odd": "not a hash",
    }
    assert htpasswd.check(users, "b", long)  # as crypt(3): only the first 72 bytes count
    assert htpasswd.check(users, "a", "pw") and not htpasswd.check(users, "a", "pW")
    assert htpasswd.check(users, "s", "pw")
    assert not htpasswd.check(users, "odd", "not a hash")
    assert not htpasswd.check(users, "nobody", "pw")
    assert not htpasswd.is_known_format("not a hash") and htpasswd.is_known_format(users["a"])


def request(authorization: str | None) -> Request:
    lines = "GET / HTTP/1.1\r\nHost: a.test\r\n"
    if authorization is not None:
        lines += f"Authorization: {authorization}\r\n"
    (head, *_) = RequestParser().feed((lines + "\r\n").encode())
    assert isinstance(head, RequestHead)
    target = split_target(b"GET", b"/", b"a.test")
    return Request(head, target, "/", False, 443, "127.0.0.1", 0.0, LimitStore(), [], [])


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_only_verified_credentials_are_remembered_and_the_memory_is_bounded() -> None:
    check = BasicAuthCheck({"alice": "{PLAIN}pw"}, "realm")
    wrong = check(request(basic("alice", "no")))
    assert isinstance(wrong, Pending) and wrong.work() is not None  # 401
    assert not check.verified
    right = check(request(basic("alice", "pw")))
    assert isinstance(right, Pending) and right.work() is None
    assert check(request(basic("alice", "pw"))) is None  # remembered: no second check
    for n in range(1100):  # distinct valid-looking values cannot grow it past the bound
        check._check(f"value {n}".encode(), "alice", "pw")
    assert len(check.verified) == 1024
    missing = check(request(None))
    assert missing is not None and not isinstance(missing, Pending) and missing.status == 401
