"""`make run`'s demo: backends that answer with their own name behind ingressd, a demo
certificate curl can verify, and a quiet stop."""

from __future__ import annotations

import asyncio
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from ingressd.demo import make_demo_certificates
from tests import manifests
from tests.integration.conftest import StartIngressd, app, client, dead_port
from tests.integration.rawhttp import RawClient


class DemoProcess:
    """``python -m ingressd.demo CONFIG`` as a subprocess, its output collected."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingressd.demo", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def wait_serving(self, count: int) -> list[str]:
        """The first `count` "demo: NAME on ADDRESS" lines."""
        assert self.proc.stdout is not None
        lines = []
        for _ in range(count):
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 10)
            if not line.startswith("demo: "):
                raise AssertionError(f"demo printed {line!r}; stderr: {self._stderr()}")
            lines.append(line.strip())
        return lines

    def _stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()

    async def stop(self) -> tuple[int, str]:
        """SIGTERM (what the Ctrl-C of `make run` sends the demo); exit code and stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(self.proc.communicate, timeout=10)
        return self.proc.returncode, stderr


async def test_demo_backends_answer_with_their_name_round_robin_and_stop_quietly(
    tmp_path: Path, ingressd: StartIngressd
) -> None:
    ports = [dead_port(), dead_port()]
    objects = app(*ports)
    demo = DemoProcess(manifests.write(tmp_path / "demo.yaml", objects))
    try:
        assert await demo.wait_serving(2) == [
            f"demo: app-1 on 127.0.0.1:{ports[0]}",
            f"demo: app-2 on 127.0.0.1:{ports[1]}",
        ]
        proxy = await ingressd(objects)
        async with client(proxy) as http:
            answers = [(await http.get("/frontend?x=1")).json() for _ in range(4)]
        assert sorted(a["served_by"] for a in answers) == ["app-1", "app-1", "app-2", "app-2"]
        assert {a["path"] for a in answers} == {"/frontend?x=1"}
        assert all(a["x_forwarded_for"] == "127.0.0.1" and a["x_request_id"] for a in answers)
        # ingressd now holds idle keep-alive connections to both demo backends, and a
        # client holds one to ingressd: stopping the demo must not print tracebacks.
        async with RawClient(proxy.ports["http"]) as raw:
            await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            assert (await raw.read_response()).status == 200
            code, stderr = await demo.stop()
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.wait()
    assert code == 0
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr


async def test_demo_certificate_verifies_for_its_host_and_its_key_is_private(
    tmp_path: Path, ingressd: StartIngressd
) -> None:
    certs = tmp_path / "certs"
    written = make_demo_certificates(str(certs), "hello-tls", ["hello.example.com"])
    assert sorted(Path(p).name for p in written) == [
        "demo-ca.crt",
        "hello-tls.crt",
        "hello-tls.key",
    ]
    assert stat.S_IMODE((certs / "hello-tls.key").stat().st_mode) == 0o600
    assert make_demo_certificates(str(certs), "hello-tls", ["hello.example.com"]) == []  # kept

    objects = app(dead_port(), host="hello.example.com", tls_secret="hello-tls")
    proxy = await ingressd(objects, "--certs-dir", str(certs), https=True)
    context = ssl.create_default_context(cafile=str(certs / "demo-ca.crt"))
    port = proxy.ports["https"]
    async with httpx.AsyncClient(verify=context, trust_env=False, timeout=10) as http:
        # Nothing listens behind the route: the 502 still proves the handshake verified.
        response = await http.get(
            f"https://127.0.0.1:{port}/",
            headers={"host": "hello.example.com"},
            extensions={"sni_hostname": "hello.example.com"},
        )
    assert response.status_code == 502
