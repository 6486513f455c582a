"""Demo backends for ``make run``: one small h11 server per endpoint in a config.

``python -m ingressd.demo config/ingress.yaml`` reads the Services and their
endpoints from the file, listens on every endpoint address (127.0.0.x:port)
and answers each request with the name of the "pod" that served it, so that
round-robin is visible with curl.  Not part of the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence

import h11

from .config import load_config
from .errors import ConfigError
from .routes import compile_routes
from .tls import generate_self_signed


class DemoBackend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def close(self) -> None:
        """End the open connections and wait for their handlers: a handler cancelled
        by `asyncio.run` instead gets a traceback printed on Ctrl-C (Python 3.11)."""
        for writer in self.open.values():
            writer.close()
        if self.open:
            await asyncio.wait(list(self.open), timeout=2.0)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("sockname")
        task = asyncio.current_task()
        assert task is not None
        self.open[task] = writer
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    connection.receive_data(data)
                    if not data and connection.their_state is h11.IDLE:
                        return
                    continue
                if isinstance(event, h11.Request):
                    await self._answer(connection, writer, event, peer)
                elif isinstance(event, h11.EndOfMessage):
                    if connection.our_state is h11.MUST_CLOSE:
                        return
                    connection.start_next_cycle()
                elif isinstance(event, (h11.ConnectionClosed, h11.PAUSED)):
                    return
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            del self.open[task]
            writer.close()

    async def _answer(
        self,
        connection: h11.Connection,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        sockname: tuple[str, int],
    ) -> None:
        headers = {k.decode(): v.decode("latin-1") for k, v in request.headers}
        body = (
            json.dumps(
                {
                    "served_by": self.name,
                    "endpoint": f"{sockname[0]}:{sockname[1]}",
                    "method": request.method.decode(),
                    "path": request.target.decode("latin-1"),
                    "x_forwarded_for": headers.get("x-forwarded-for"),
                    "x_request_id": headers.get("x-request-id"),
                },
                indent=2,
            ).encode()
            + b"\n"
        )
        response = h11.Response(
            status_code=200,
            headers=[("content-type", "application/json"), ("content-length", str(len(body)))],
        )
        writer.write(
            (connection.send(response) or b"") + (connection.send(h11.Data(data=body)) or b"")
        )
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()


async def serve_demo(paths: Sequence[str]) -> None:
    table = compile_routes(load_config(paths))
    servers = []
    demos = []
    for backend in table.backends():
        for index, endpoint in enumerate(backend.endpoints, start=1):
            name = f"{backend.service.name}-{index}"
            demo = DemoBackend(name)
            demos.append(demo)
            servers.append(await asyncio.start_server(demo.handle, endpoint.address, endpoint.port))
            print(f"demo: {name} on {endpoint}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    for demo in demos:
        await demo.close()


def make_demo_certificates(certs_dir: str, secret_name: str, hosts: Sequence[str]) -> list[str]:
    """A demo CA and a certificate for `hosts` signed by it; keeps files that already exist.

    Writes ``demo-ca.crt`` (for ``curl --cacert``) and ``<secret_name>.crt/.key``
    (the key mode 0600), as ``--certs-dir`` expects them.
    """
    os.makedirs(certs_dir, exist_ok=True)
    crt = os.path.join(certs_dir, f"{secret_name}.crt")
    key = os.path.join(certs_dir, f"{secret_name}.key")
    ca_crt = os.path.join(certs_dir, "demo-ca.crt")
    if os.path.exists(crt) and os.path.exists(key) and os.path.exists(ca_crt):
        return []
    ca = generate_self_signed([], common_name="ingressd demo CA", days=3650, is_ca=True)
    leaf_crt, leaf_key = generate_self_signed(hosts, common_name=hosts[0], issuer=ca)
    with open(ca_crt, "wb") as handle:
        handle.write(ca[0])
    with open(crt, "wb") as handle:
        handle.write(leaf_crt + ca[0])
    descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(leaf_key)
    return [ca_crt, crt, key]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingressd.demo")
    parser.add_argument("config", nargs="+", help="the ingressd config whose endpoints to serve")
    parser.add_argument(
        "--make-cert",
        nargs=3,
        metavar=("CERTS_DIR", "SECRET", "HOST"),
        help="only create the demo CA and a certificate for HOST, then exit",
    )
    args = parser.parse_args(argv)
    if args.make_cert:
        certs_dir, secret, host = args.make_cert
        for path in make_demo_certificates(certs_dir, secret, [host]):
            print(f"demo: wrote {path}")
        return 0
    try:
        asyncio.run(serve_demo(args.config))
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
