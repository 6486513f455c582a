"""The policies the benchmarks put on their one route, to measure what each costs.

Shared by `bench_codepath.py` (instructions per request) and `bench_proxy.py` (CPU per
request against nginx): the same manifests, so both measure the same thing.
"""

from __future__ import annotations


def canary(host: str, port: int) -> str:
    """Documents to append: a canary Ingress for ``host`` ``/`` whose Service has the same
    endpoint, 127.0.0.1:``port``.  The rule runs on every request: no X-Canary header,
    then a weight of 50 out of 100."""
    return f"""
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bench-canary
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-by-header: X-Canary
    nginx.ingress.kubernetes.io/canary-weight: "50"
spec:
  rules:
  - host: {host}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: canary, port: {{number: 80}}}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: canary}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: canary}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{name: http, port: {port}}}]}}]
"""


# The route's path and an annotation for it: a regex host (one location) and a rewrite
# through a capture; or a request step that runs and does not answer (app-root only
# redirects "/" itself, and the benchmarks request other paths).
REWRITE = ("'/(.*)'", "ImplementationSpecific", "nginx.ingress.kubernetes.io/rewrite-target: /$1")
STEP = ("/", "Prefix", "nginx.ingress.kubernetes.io/app-root: /app")
# A source range the benchmark client (127.0.0.1) passes, after one network it is not in.
ALLOWLIST = (
    "/",
    "Prefix",
    "nginx.ingress.kubernetes.io/allowlist-source-range: '10.0.0.0/8,127.0.0.0/8'",
)

# A rate limit the benchmark never reaches: the accounting runs on every request.
LIMIT = ("/", "Prefix", "nginx.ingress.kubernetes.io/limit-rps: '1000000'")

# Basic authentication whose credentials were verified once (what every later request
# of a client costs): the Secret is appended, the request carries BASIC_AUTHORIZATION.
BASIC = (
    "/",
    "Prefix",
    "nginx.ingress.kubernetes.io/auth-type: basic, "
    "nginx.ingress.kubernetes.io/auth-secret: bench-users",
)
BASIC_SECRET = """
---
apiVersion: v1
kind: Secret
metadata: {name: bench-users}
type: Opaque
stringData: {auth: "bench:{PLAIN}bench"}
"""
BASIC_AUTHORIZATION = b"Basic YmVuY2g6YmVuY2g="  # bench:bench

ANNOTATED = {
    "rewrite": REWRITE, "step": STEP, "allowlist": ALLOWLIST, "limit": LIMIT, "basic": BASIC,
}  # fmt: skip
