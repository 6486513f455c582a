"""The ``ingressd`` command: argument parsing, logging set-up, and dispatch.

Owns: SPEC §1's command line.  Validation of values happens here so that a
bad flag is a usage error (exit 2) before anything starts.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from . import __version__
from .errors import ConfigError
from .logs import LOG_FORMAT
from .report import render_annotations, render_text
from .routes import RouteTable

logger = logging.getLogger("ingressd")


def _address(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) or ``off``."""
    if value == "off":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or off, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _cidrs(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in value.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _workers(value: str) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1 or auto, got {value!r}")
    return int(value)


def _positive(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingressd",
        description="Serve Kubernetes Ingress objects from YAML: an HTTP/1.1 reverse proxy.",
    )
    parser.add_argument("--version", action="version", version=f"ingressd {__version__}")
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML file or directory of *.yaml (repeatable)",
    )
    parser.add_argument(
        "--check", action="store_true", help="validate, print the compiled route table and exit"
    )
    parser.add_argument(
        "--explain",
        metavar="URL",
        help="with --check: which rule, steps and upstream request a GET of URL would get",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="with --explain: a request header (repeatable), e.g. a canary header or Cookie",
    )
    parser.add_argument(
        "--client",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="with --explain: the client's address, for source ranges (default 127.0.0.1)",
    )
    parser.add_argument("--http", type=_address, default=("0.0.0.0", 8080), metavar="HOST:PORT")
    parser.add_argument("--https", type=_address, default=("0.0.0.0", 8443), metavar="HOST:PORT")
    parser.add_argument("--admin", type=_address, default=("127.0.0.1", 10254), metavar="HOST:PORT")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="processes sharing the listeners (auto: one per CPU)",
    )
    parser.add_argument("--ingress-class", metavar="NAME")
    parser.add_argument("--default-cert", metavar="PEM")
    parser.add_argument("--default-key", metavar="PEM")
    parser.add_argument("--certs-dir", metavar="DIR")
    parser.add_argument("--trusted-proxies", type=_cidrs, default=(), metavar="CIDR,...")
    parser.add_argument("--drain-timeout", type=_positive, default=30.0, metavar="SECONDS")
    parser.add_argument("--max-connections", type=int, default=10000, metavar="N")
    parser.add_argument("--https-redirect-port", type=int, metavar="N")
    parser.add_argument(
        "--client-header-timeout",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="time to receive a request head (default 60)",
    )
    parser.add_argument(
        "--client-body-timeout",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="time between two reads of a request body (default 60)",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=_positive,
        default=75.0,
        metavar="SECONDS",
        help="idle time of a client keep-alive connection (default 75)",
    )
    parser.add_argument("--access-log", default="-", metavar="PATH|-|off")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    return parser  # fmt: skip


def check(args: argparse.Namespace) -> int:
    """``--check``: the same loading as serving, then the table instead of listeners."""
    from .runtime import build_runtime
    from .settings import settings_from_args
    from .tls import CertificateError, default_certificate

    try:
        default = default_certificate(args.default_cert, args.default_key)
        runtime = build_runtime(settings_from_args(args), default)
    except (CertificateError, OSError) as exc:
        print(f"default certificate: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        if exc.warnings:  # found on the way: the user fixing the errors wants them too
            _print_warnings(exc.warnings, sys.stderr)
        print(f"{len(exc.problems)} error(s); configuration rejected", file=sys.stderr)
        return 1
    if args.explain is not None:
        return _explain(args, runtime.table)
    print(render_text(runtime.table, runtime.certs))
    print(render_annotations(runtime.config.ingresses))
    _print_warnings(runtime.warnings, sys.stdout)
    return 0


def _explain(args: argparse.Namespace, table: RouteTable) -> int:
    from .explain import ExplainError, explain, parse_request

    try:
        head, secure = parse_request(args.explain, args.header)
    except ExplainError as exc:
        print(f"--explain: {exc}", file=sys.stderr)
        return 2
    https_port = args.https_redirect_port or (args.https[1] if args.https else 443)
    print(explain(table, head, secure, https_port, args.client))
    return 0


def _print_warnings(warnings: Sequence[str], out: TextIO) -> None:
    print(f"Warnings: {len(warnings)}", file=out)
    for warning in warnings:
        print(f"  {warning}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    if args.explain is not None and not args.check:
        build_parser().error("--explain needs --check")
    if args.check:
        return check(args)
    from .server import run

    return run(args)
