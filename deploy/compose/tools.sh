#!/usr/bin/env bash
# A pinned Docker Compose CLI, for machines that have the docker client but not its compose
# plugin (this project's CI among them). `docker compose config` needs no engine, so the tests
# validate deploy/docker-compose.yml with the real Compose, not an imitation of its rules.
#
#   tools.sh fetch           build the plugin once (cached; offline afterwards)
#   tools.sh path            print the plugin binary's path (building it first if needed)
#   tools.sh compose ARGS... run `docker compose ARGS...` with the pinned plugin, e.g.
#                            tools.sh compose -f deploy/docker-compose.yml config --quiet
#
# The plugin is built from its source through the Go module proxy (checked against Go's
# checksum database): the project reaches no other download site. A cold build takes about
# 3.5 minutes on two cores; Go's own caches make a rebuild take seconds. `go install
# pkg@version` refuses modules whose go.mod has exclude directives, as Compose's has, so the
# module is downloaded and built in place instead.
#
# `compose` runs the docker client with DOCKER_CONFIG set to the cache, whose cli-plugins/
# holds the plugin: contexts and credentials in ~/.docker are not seen. Use it to validate
# files; where Docker is installed for real, its own `docker compose` runs the stack. Without
# the docker client the plugin runs on its own (Compose supports standalone use).
#
# Settings (environment): TOOLS_DIR (default deploy/compose/.tools, git-ignored),
# COMPOSE_VERSION (default below; the cache keeps one directory per version).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="${TOOLS_DIR:-$HERE/.tools}"
COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
COMPOSE_MODULE="github.com/docker/compose/v2"
CONFIG_DIR="$TOOLS_DIR/compose-$COMPOSE_VERSION"
PLUGIN="$CONFIG_DIR/cli-plugins/docker-compose"

log() { printf 'tools: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

build_compose() {
  [[ -x "$PLUGIN" ]] && return 0
  command -v go >/dev/null \
    || die "Go 1.21 or later is needed to build Docker Compose $COMPOSE_VERSION (the newer toolchain Compose asks for comes through the module proxy); it is built once and cached in $TOOLS_DIR."
  mkdir -p "$CONFIG_DIR/cli-plugins"
  # One build at a time: a second caller waits for the first and then finds the binary.
  exec 9>"$CONFIG_DIR/.lock"
  flock 9
  [[ -x "$PLUGIN" ]] && return 0
  local started=$SECONDS source_dir
  log "building Docker Compose $COMPOSE_VERSION from the Go module proxy (first run only, a few minutes)"
  source_dir="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$source_dir" ]] || die "go mod download did not give a source directory for $COMPOSE_MODULE@$COMPOSE_VERSION"
  # CGO off, as Compose's own release builds: no C toolchain needed. Built to a temporary
  # name and renamed, so an interrupted build never leaves a broken plugin behind.
  (cd "$source_dir" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
    -o "$PLUGIN.partial" ./cmd) || die "building Docker Compose $COMPOSE_VERSION failed; see the output above."
  mv "$PLUGIN.partial" "$PLUGIN"
  log "Docker Compose $COMPOSE_VERSION built in $(( SECONDS - started ))s: $PLUGIN"
}

run_compose() {
  build_compose
  if command -v docker >/dev/null; then
    DOCKER_CONFIG="$CONFIG_DIR" exec docker compose "$@"
  fi
  exec "$PLUGIN" "$@"
}

case "${1:-}" in
  fetch) build_compose ;;
  path) build_compose; echo "$PLUGIN" ;;
  compose) shift; run_compose "$@" ;;
  *) die "usage: tools.sh fetch|path|compose ARGS..." ;;
esac
