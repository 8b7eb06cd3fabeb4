#!/usr/bin/env bash
# tools.sh installs the developer tools some tests run, into a cache
# directory (not the repository), and prints the path of the one asked for:
#
#   scripts/tools.sh tsc        # TypeScript's compiler, from the npm registry
#
# The cache is $KAIROS_TOOLS_DIR (default ~/.cache/kairos-tools); a tool
# already there at the pinned version is reused. It needs npm (Debian's
# package npm; scripts/services.sh installs it under CI).
set -euo pipefail

TYPESCRIPT_VERSION=5.9.3

dir="${KAIROS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kairos-tools}"
log() { printf 'tools: %s\n' "$*" >&2; }

case "${1:-}" in
  tsc)
    prefix="$dir/typescript-$TYPESCRIPT_VERSION"
    tsc="$prefix/node_modules/.bin/tsc"
    if [ ! -x "$tsc" ]; then
      command -v npm >/dev/null 2>&1 || { log "npm not found (apt-get install npm)"; exit 1; }
      log "installing typescript@$TYPESCRIPT_VERSION into $prefix"
      mkdir -p "$prefix"
      npm install --silent --no-audit --no-fund --prefix "$prefix" "typescript@$TYPESCRIPT_VERSION" >&2
    fi
    echo "$tsc"
    ;;
  *)
    log "usage: scripts/tools.sh tsc"
    exit 2
    ;;
esac
