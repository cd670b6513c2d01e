#!/usr/bin/env bash
# Installs the third-party MCP servers the integration tests measure, from the public
# registries, into .peers/ (git-ignored). Idempotent: re-running only checks what is there.
#   .peers/node/  npm: @modelcontextprotocol/server-everything (TypeScript SDK, stdio)
#   .peers/venv/  PyPI: fastmcp (Python), for fixtures/peers/fastmcp_server.py
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
echo "setup-peers: ready (.peers/node, .peers/venv)" >&2
