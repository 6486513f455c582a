"""`Settings`: the process-wide choices of the command line, frozen.

Owns: the settings every part of the server reads (SPEC §1 and §4 defaults)
and their making from parsed arguments.  Pure: no I/O; importing it pulls in
neither the server nor the configuration loader.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide settings (SPEC §1, §4 defaults)."""

    config_paths: tuple[str, ...]
    ingress_class: str | None = None
    certs_dir: str | None = None
    default_cert: str | None = None
    default_key: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    drain_timeout: float = 30.0
    max_connections: int = 10_000
    https_redirect_port: int | None = None
    access_log: str | None = None  # a path, "-" for standard output, None for off
    log_format: str = "text"
    client_header_timeout: float = 60.0
    client_body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    client_send_timeout: float = 60.0
    max_request_line: int = 8 * 1024
    max_header_bytes: int = 32 * 1024


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        config_paths=tuple(args.config),
        ingress_class=args.ingress_class,
        certs_dir=args.certs_dir,
        default_cert=args.default_cert,
        default_key=args.default_key,
        trusted_proxies=tuple(args.trusted_proxies),
        drain_timeout=args.drain_timeout,
        max_connections=args.max_connections,
        https_redirect_port=args.https_redirect_port,
        access_log=None if args.access_log == "off" else args.access_log,
        log_format=args.log_format,
        client_header_timeout=args.client_header_timeout,
        client_body_timeout=args.client_body_timeout,
        keepalive_timeout=args.keepalive_timeout,
    )
