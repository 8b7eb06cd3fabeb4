#!/usr/bin/env bash
# test.sh runs the whole Kairos test suite, as the README tells a new user
# and as CI does: it first installs/starts RabbitMQ, Redis and Chromium where
# they are missing (scripts/services.sh), then runs every test against them,
# then a short fuzz of the untrusted-input decoders.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh

export KAIROS_AMQP_URL="${KAIROS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
export KAIROS_REDIS_URL="${KAIROS_REDIS_URL:-redis://127.0.0.1:6379/0}"

go vet ./...
go test -count=1 -timeout 30m ./...

# Fuzz the decoders of untrusted input for a short budget each. The budget
# is a number of executions, not a duration: Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure when a duration
# budget expires while a worker is busy (golang/go#75804, fixed in 1.27).
# Slow targets (each execution writes files) get a smaller count.
fuzztime="${KAIROS_FUZZTIME:-100000x}"
budget() {
  case "$1" in
    FuzzRecoverSegment) echo "${KAIROS_FUZZTIME_SLOW:-8000x}" ;;
    *) echo "$fuzztime" ;;
  esac
}
while read -r pkg target; do
  [ -n "$pkg" ] || continue
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$(budget "$target")" "$pkg"
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r t; do
    printf '%s %s\n' "./$(dirname "${f#./}")" "$t"
  done
done)
