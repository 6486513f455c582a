"""Basic authentication's user files: htpasswd lines and auth-maps, and password checks.

Owns: reading the users of an ``auth`` Secret (ingress-nginx's ``auth-file``: htpasswd
lines; ``auth-map``: one key per user) and checking a password against the hash
formats nginx's ``auth_basic`` accepts, through libpass (the maintained passlib) and
bcrypt rather than hand-written hashing: bcrypt (``$2y$``...), ``$apr1$``, the crypt(3)
formats (``$1$``, ``$5$``, ``$6$``, DES), ``{SHA}``, ``{SSHA}`` and ``{PLAIN}``.  Pure;
a check can take 100 ms (bcrypt), so callers run it off the event loop.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from passlib.context import CryptContext

_CONTEXT = CryptContext(
    schemes=[
        "bcrypt", "apr_md5_crypt", "md5_crypt", "sha256_crypt", "sha512_crypt",
        "ldap_sha1", "ldap_salted_sha1", "des_crypt",
    ]
)  # fmt: skip
_BCRYPT = ("$2a$", "$2b$", "$2x$", "$2y$")
_PLAIN = "{PLAIN}"
# Checked when there is no user at all (a valid $apr1$ hash of another text).
_DUMMY = "$apr1$ingressd$RnjU.EmzU0UafJIFOZRSe1"


def users_of_file(text: str) -> dict[str, str]:
    """htpasswd lines (``user:hash``); blank lines and ``#`` comments skipped; the first
    line of a user wins, as nginx reads the file top to bottom."""
    users: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        if colon and user:
            users.setdefault(user, hashed.split(":", 1)[0])
    return users


def users_of_map(data: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """auth-map: each key a user, its value the hash."""
    return {user: value.decode("utf-8", "replace").strip() for user, value in data if user}


def is_known_format(hashed: str) -> bool:
    return hashed.startswith(_PLAIN) or _CONTEXT.identify(hashed) is not None


def check(users: Mapping[str, str], user: str, password: str) -> bool:
    """Whether `password` is `user`'s; constant-time comparisons throughout."""
    hashed = users.get(user)
    if hashed is None:
        # An unknown name costs what a wrong password costs: the slowest hash of the
        # file is checked, so the answer's timing does not tell which names exist.
        _verify(password, max(users.values(), key=_cost, default=_DUMMY))
        return False
    return _verify(password, hashed)


def _cost(hashed: str) -> int:
    """A rough order of the formats by the time a check takes."""
    for rank, prefixes in enumerate(_BY_COST):
        if hashed.startswith(prefixes):
            return len(_BY_COST) - rank
    return 0


_BY_COST = (_BCRYPT, ("$6$", "$5$"), ("$apr1$", "$1$"))


def _verify(password: str, hashed: str) -> bool:
    if hashed.startswith(_PLAIN):
        return hmac.compare_digest(password.encode(), hashed[len(_PLAIN) :].encode())
    secret = password.encode()
    if hashed.startswith(_BCRYPT):
        secret = secret[:72]  # what crypt(3) and nginx do; bcrypt 5 refuses longer ones
    try:
        return bool(_CONTEXT.verify(secret, hashed))
    except (ValueError, TypeError):  # a hash libpass cannot read: never a match
        return False
