#!/usr/bin/env bash
# Puts mcp-perfcheck on the Action's PATH: the release binary matching the Action's own version
# when one exists, checksum-verified, else a build from the Action's source.
#
#   action-install.sh fetch   the release binary; when there is none to use, writes
#                             `build=true` and the build cache's `cache-key` to GITHUB_OUTPUT
#   action-install.sh build   the build from source (the Action restores its cache first)
#
#   ACTION_PATH   the Action's checkout (github.action_path); its Cargo.toml names the version
#   ACTION_REF    the ref the workflow used (github.action_ref): a version tag (v1, v1.2,
#                 v1.2.3) means "the release of this source"; anything else (a branch, a SHA)
#                 builds from source
#   ACTION_REPO   owner/name of the Action (github.action_repository)
#   RELEASES_URL  where releases are downloaded from (default https://github.com); tests point
#                 it at a local fake
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH, GITHUB_OUTPUT   as Actions sets them
#   TOOLCHAIN     the Rust toolchain a fallback build pins (default 1.95.0; empty: the
#                 runner's own cargo, as it is)
#
# A release that exists but whose checksum does not match is refused (exit 1), never replaced
# by a build. Writes `installed=release|build` and `version=` to GITHUB_OUTPUT.
set -euo pipefail

: "${ACTION_PATH:?}" "${RUNNER_TEMP:?}" "${GITHUB_PATH:?}"
releases="${RELEASES_URL:-https://github.com}"
ref="${ACTION_REF:-}"
repo="${ACTION_REPO:-mcp-perfcheck/mcp-perfcheck}"
toolchain="${TOOLCHAIN-1.95.0}"
output="${GITHUB_OUTPUT:-/dev/null}"

version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$ACTION_PATH/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "mcp-perfcheck: no version in $ACTION_PATH/Cargo.toml" >&2; exit 1; }

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

mode="${1:-fetch}"

# No usable release: say why, and leave the build (and its cache) to the next steps.
needs_build() {
  echo "mcp-perfcheck: $1: building v$version from source with Rust ${toolchain:-as installed}" >&2
  local lock
  lock=$(sha256 "$ACTION_PATH/Cargo.lock" | cut -c1-16)
  printf 'build=true\ncache-key=mcp-perfcheck-%s-%s-rust%s-%s\ncache-prefix=mcp-perfcheck-%s-%s-rust%s-\n' \
    "${RUNNER_OS:-os}" "${RUNNER_ARCH:-arch}" "$toolchain" "$lock" "${RUNNER_OS:-os}" "${RUNNER_ARCH:-arch}" "$toolchain" >>"$output"
}

build() {
  if [ -n "$toolchain" ] && command -v rustup >/dev/null; then
    rustup toolchain install "$toolchain" --profile minimal --no-self-update >&2
    cargo "+$toolchain" build --release --locked --manifest-path "$ACTION_PATH/Cargo.toml" >&2
  else
    cargo build --release --locked --manifest-path "$ACTION_PATH/Cargo.toml" >&2
  fi
  echo "$ACTION_PATH/target/release" >>"$GITHUB_PATH"
  printf 'installed=build\nversion=%s\n' "$version" >>"$output"
}

if [ "$mode" = build ]; then
  build
  exit 0
fi

if ! [[ "$ref" =~ ^v[0-9]+(\.[0-9]+){0,2}$ ]]; then
  needs_build "ref '${ref:-none}' is not a version tag"
  exit 0
fi
if [ -z "$target" ]; then
  needs_build "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"
  exit 0
fi

asset="mcp-perfcheck-v$version-$target.tar.gz"
base="$releases/$repo/releases/download/v$version"
dir="$RUNNER_TEMP/mcp-perfcheck-v$version"
mkdir -p "$dir"
fetch() { curl --fail --silent --show-error --location --retry 3 --retry-delay 2 --output "$2" "$1"; }
if ! fetch "$base/SHA256SUMS" "$dir/SHA256SUMS" 2>"$dir/curl.log" || ! fetch "$base/$asset" "$dir/$asset" 2>>"$dir/curl.log"; then
  needs_build "no release v$version with $asset at $base ($(tail -n 1 "$dir/curl.log"))"
  exit 0
fi
expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1 }' "$dir/SHA256SUMS")
actual=$(sha256 "$dir/$asset")
if [ -z "$expected" ]; then
  echo "mcp-perfcheck: refusing $asset: SHA256SUMS of v$version does not list it" >&2
  exit 1
fi
if [ "$expected" != "$actual" ]; then
  echo "mcp-perfcheck: refusing $asset: its SHA-256 is $actual, SHA256SUMS of v$version says $expected" >&2
  exit 1
fi
tar -xzf "$dir/$asset" -C "$dir"
[ -x "$dir/mcp-perfcheck" ] || { echo "mcp-perfcheck: $asset holds no mcp-perfcheck executable" >&2; exit 1; }
echo "mcp-perfcheck: using the v$version release binary for $target (SHA-256 verified)" >&2
echo "$dir" >>"$GITHUB_PATH"
printf 'installed=release\nversion=%s\n' "$version" >>"$output"
