"""The annotation registry: each name's verdict (the migration report's words) and the
policy it gives, including the fail-closed rule of SPEC §6 "Never served open"."""

from __future__ import annotations

import pytest

from ingressd.annotations import DEFAULT_POLICY, PREFIX, Verdict, check, policy_of
from ingressd.model import Ingress, ObjectRef, Origin
from ingressd.report import render_annotations


def verdicts(**values: str) -> dict[str, Verdict]:
    pairs = [(PREFIX + name.replace("_", "-"), value) for name, value in values.items()]
    return {f.key.removeprefix(PREFIX): f.verdict for f in check(pairs)}


def test_each_annotation_gets_its_verdict_in_the_order_given() -> None:
    found = check(
        [
            (PREFIX + "proxy-body-size", "8m"),
            (PREFIX + "configuration-snippet", "more_set_headers 'X: 1';"),
            (PREFIX + "proxy-buffering", "off"),
            (PREFIX + "auth-type", "digest"),
            (PREFIX + "proxy-bodysize", "8m"),
            ("example.com/owner", "team-a"),
        ]
    )
    assert [(f.key.removeprefix(PREFIX), f.verdict) for f in found] == [
        ("proxy-body-size", Verdict.HONOURED),
        ("configuration-snippet", Verdict.REFUSED),
        ("proxy-buffering", Verdict.IGNORED),
        ("auth-type", Verdict.FAIL_CLOSED),
        ("proxy-bodysize", Verdict.UNKNOWN),
    ]


def test_an_ingress_nginx_name_ingressd_lacks_is_not_supported_never_unknown() -> None:
    assert verdicts(proxy_buffer_size="16k", mirror_target="http://m", proxy_cookie_path="/") == {
        "proxy-buffer-size": Verdict.IGNORED,
        "mirror-target": Verdict.IGNORED,
        "proxy-cookie-path": Verdict.IGNORED,
    }


@pytest.mark.parametrize(
    ("values", "closed_by"),
    [
        ({"auth-type": "digest", "auth-secret": "users"}, ("auth-type",)),
        ({"auth-url": "https://auth.example/check"}, ("auth-url",)),
        ({"auth-tls-secret": "default/ca"}, ("auth-tls-secret",)),
        ({"auth-tls-secret": "default/ca", "auth-tls-verify-client": "optional"},
         ("auth-tls-secret",)),
        ({"whitelist-source-range": "10.0.0.0/8", "auth-type": "digest"}, ("auth-type",)),
        ({"backend-protocol": "HTTPS", "proxy-ssl-verify": "on"}, ("proxy-ssl-verify",)),
        ({"backend-protocol": "grpcs"}, ("backend-protocol",)),
        ({"ssl-passthrough": "true"}, ("ssl-passthrough",)),
        ({"enable-modsecurity": "true"}, ("enable-modsecurity",)),
        # The same checks turned off, or an auth companion without the annotation that
        # turns authentication on: served as ingress-nginx serves them.
        ({"backend-protocol": "HTTP"}, ()),
        ({"backend-protocol": "HTTPS", "proxy-ssl-verify": "off"}, ()),
        ({"limit-rps": "0"}, ()),
        ({"auth-tls-secret": "default/ca", "auth-tls-verify-client": "off"}, ()),
        ({"auth-realm": "Staff", "auth-secret": "users"}, ()),
        ({"auth-type": "basic", "auth-secret": "users"}, ()),  # honoured
        ({"enable-modsecurity": "false", "allowlist-source-range": "10.0.0.0/8"}, ()),
    ],
)  # fmt: skip
def test_an_access_or_protocol_check_ingressd_lacks_closes_the_ingress(
    values: dict[str, str], closed_by: tuple[str, ...]
) -> None:
    policy = policy_of([(PREFIX + k, v) for k, v in values.items()])
    assert policy.closed_by == tuple(PREFIX + name for name in closed_by)
    found = {
        f.key.removeprefix(PREFIX): f for f in check((PREFIX + k, v) for k, v in values.items())
    }
    for name in closed_by:
        assert found[name].verdict is Verdict.FAIL_CLOSED
        assert "not supported" in found[name].message and "503" in found[name].message


def test_backend_protocol_outside_ingress_nginx_values_is_an_error() -> None:
    (finding,) = check([(PREFIX + "backend-protocol", "SPDY")])
    assert finding.verdict is Verdict.INVALID and finding.is_error
    assert "HTTPS" in finding.message and "'SPDY'" in finding.message


def test_an_ingress_without_annotations_shares_the_default_policy() -> None:
    assert policy_of([]) is DEFAULT_POLICY
    assert policy_of([(PREFIX + "proxy-buffering", "off")]) is DEFAULT_POLICY


def test_the_migration_report_gives_every_annotation_its_verdict_on_its_own_line() -> None:
    main = Ingress(
        ObjectRef("shop", "web"),
        Origin("shop.yaml", 1),
        annotations=(
            (PREFIX + "proxy-body-size", "8m"),
            (PREFIX + "permanent-redirect-code", "399"),
            (PREFIX + "auth-url", "http://auth/check"),
            (PREFIX + "proxy-buffering", "off"),
            (PREFIX + "server-snippet", "return 200;"),
            (PREFIX + "proxy-bodysize", "8m"),
            (PREFIX + "canary-weight", "10"),
            ("example.com/team", "a"),
        ),
    )
    canary = Ingress(
        ObjectRef("shop", "web-canary"),
        Origin("shop.yaml", 30),
        annotations=((PREFIX + "canary", "true"), (PREFIX + "proxy-read-timeout", "5")),
    )
    quiet = Ingress(ObjectRef("shop", "quiet"), Origin("shop.yaml", 60))
    lines = render_annotations([canary, quiet, main]).splitlines()
    assert lines[0] == f"Annotations ({PREFIX}*), per Ingress:"
    assert lines[1] == "  Ingress shop/web  (shop.yaml:1)"
    text = "\n".join(lines)
    expected = [
        ("honoured", "proxy-body-size: 8m", ""),
        ("honoured", "permanent-redirect-code: 399", "ingress-nginx answers 301"),
        ("not supported, fail closed", "auth-url: http://auth/check", "answer 503"),
        ("not supported, ignored", "proxy-buffering: off", ""),
        ("refused", "server-snippet: return 200;", "no user-supplied configuration"),
        ("unknown", "proxy-bodysize: 8m", "ingress-nginx has no such annotation"),
        ("ignored, not a canary Ingress", "canary-weight: 10", 'canary: "true"'),
        ("ignored, canary Ingress", "proxy-read-timeout: 5", "main Ingress's policy"),
        ("honoured", "canary: true", ""),
    ]
    for verdict, annotation, reason in expected:
        (line,) = [line for line in lines if f"  {annotation}" in line]
        assert line.strip().startswith(verdict + " "), line
        assert reason in line, line
    assert "example.com/team" not in text
    assert "shop/quiet" not in text  # no annotation: nothing to report


def test_source_ranges_are_parsed_once_and_the_new_name_wins() -> None:
    policy = policy_of(
        [
            (PREFIX + "whitelist-source-range", "192.168.0.0/16"),
            (PREFIX + "allowlist-source-range", " 10.0.0.0/8 ,2001:db8::1"),
            (PREFIX + "denylist-source-range", "10.9.9.9"),
        ]
    )
    assert [str(n) for n in policy.allow] == ["10.0.0.0/8", "2001:db8::1/128"]
    assert [str(n) for n in policy.deny] == ["10.9.9.9/32"]
    # An empty allowlist-source-range does not open what whitelist-source-range closes.
    old_name = policy_of(
        [(PREFIX + "allowlist-source-range", ""), (PREFIX + "whitelist-source-range", "10.0.0.0/8")]
    )
    assert [str(n) for n in old_name.allow] == ["10.0.0.0/8"]
