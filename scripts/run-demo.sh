#!/usr/bin/env bash
# `make run`: the demo backends of config/ingress.yaml, then ingressd in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CONFIG=${CONFIG:-config/ingress.yaml}

"$BIN/python" -m ingressd.demo "$CONFIG" --make-cert certs hello-tls hello.example.com
"$BIN/python" -m ingressd.demo "$CONFIG" &
demo_pid=$!
trap 'kill "$demo_pid" 2>/dev/null || true' EXIT

cat <<'TXT'

ingressd is starting on http://127.0.0.1:8080 and https://127.0.0.1:8443 (admin on 127.0.0.1:10254).
Try, in another shell:

  curl -H 'Host: hello.example.com' http://127.0.0.1:8080/frontend   # run it twice: round-robin
  curl -H 'Host: hello.example.com' http://127.0.0.1:8080/api/hello
  curl --resolve hello.example.com:8443:127.0.0.1 --cacert certs/demo-ca.crt https://hello.example.com:8443/
  curl -i http://127.0.0.1:8080/                                     # no route: 404 from ingressd
  curl http://127.0.0.1:10254/metrics                                # Prometheus metrics
  curl http://127.0.0.1:10254/routes                                 # the compiled table as JSON
  kill -HUP $(pgrep -f 'ingressd --config')                          # reload routes and certificates
  .venv/bin/ingressd --check --config config/ingress.yaml --certs-dir certs   # print the route table

Ctrl-C stops everything.

TXT
"$BIN/ingressd" --config "$CONFIG" --certs-dir certs "$@"
