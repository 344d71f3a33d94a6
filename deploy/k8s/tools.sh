#!/usr/bin/env bash
# The tools that render deploy/k8s, pinned, built from source with Go and cached in
# deploy/k8s/.bin/ (git-ignored). Nothing else on the machine is used, so every developer and
# CI render the manifests with the same kustomize, whatever `kubectl kustomize` is installed.
#
#   tools.sh kustomize        build kustomize once (about a minute with a cold Go cache),
#                             then print its path
#   tools.sh build OVERLAY    render deploy/k8s/overlays/OVERLAY (or any kustomization
#                             directory) to stdout
#
# Needs Go >= 1.24 (Debian 13's golang-go will do) and the Go module proxy; exits 3 when Go
# is missing. Settings (environment): K8S_TOOLS_DIR (the cache, default deploy/k8s/.bin).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="${K8S_TOOLS_DIR:-$HERE/.bin}"
# v5.8.1 is the newest kustomize whose module builds with Go 1.24 (v5.8.2 needs 1.26).
KUSTOMIZE_VERSION="v5.8.1"
KUSTOMIZE="$TOOLS_DIR/kustomize-$KUSTOMIZE_VERSION/kustomize"

log() { printf 'k8s-tools: %s\n' "$*" >&2; }
die() { log "$1"; exit "${2:-1}"; }

kustomize_path() {
  if [[ -x "$KUSTOMIZE" ]]; then
    printf '%s\n' "$KUSTOMIZE"
    return 0
  fi
  command -v go >/dev/null \
    || die "Go is needed to build kustomize $KUSTOMIZE_VERSION; install Go >= 1.24 (Debian: golang-go)." 3
  mkdir -p "$TOOLS_DIR"
  # Build into a private directory and rename it into place: a concurrent or interrupted
  # build never leaves a half-written binary where the next run would trust it.
  staging="$(mktemp -d "$TOOLS_DIR/.build.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  log "building kustomize $KUSTOMIZE_VERSION with $(go version | cut -d' ' -f3) (first run only)"
  # GOTOOLCHAIN=local: never download another Go toolchain. GOFLAGS is replaced so that a
  # user's flags (-mod=vendor, say) cannot change what `go install pkg@version` builds.
  GOBIN="$staging" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2 \
    || die "go install of kustomize $KUSTOMIZE_VERSION failed; see the output above."
  mkdir -p "$(dirname "$KUSTOMIZE")"
  mv -f "$staging/kustomize" "$KUSTOMIZE"
  rm -rf "$staging"
  log "kustomize $KUSTOMIZE_VERSION is $KUSTOMIZE"
  printf '%s\n' "$KUSTOMIZE"
}

case "${1:-}" in
  kustomize)
    kustomize_path
    ;;
  build)
    [[ $# -eq 2 ]] || die "usage: tools.sh build OVERLAY|DIRECTORY"
    target="$2"
    [[ -d "$target" ]] || target="$HERE/overlays/$2"
    [[ -f "$target/kustomization.yaml" ]] || die "no kustomization.yaml in $target"
    binary="$(kustomize_path)"
    exec "$binary" build "$target"
    ;;
  *)
    die "usage: tools.sh kustomize | build OVERLAY"
    ;;
esac
