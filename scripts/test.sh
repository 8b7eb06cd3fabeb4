#!/usr/bin/env bash
# test.sh runs the whole Kairos test suite, as the README tells a new user
# and as CI does: it first installs/starts RabbitMQ, Redis and Chromium where
# they are missing (scripts/services.sh), then vets and runs every test
# against them, then a short fuzz of the untrusted-input decoders.
#
# It says when each phase starts (with the time since the start), prints one
# line per package as soon as that package finishes (scripts/testfmt reads
# `go test -json`), with the output of every failed test, and ends with a
# summary whose last line is "tests: N passed, N failed, N skipped". Any
# failure makes it exit non-zero.
#
#   scripts/test.sh              # every package
#   scripts/test.sh ./api/...    # only these packages (vet, tests, fuzz)
#   KAIROS_CLUSTER_TESTS=1 scripts/test.sh ./internal/clustertest/...
#                                # also start the local clusters (scripts/clusters.sh)
#                                # and run the distributed tests against them
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=("$@")
[ "${#pkgs[@]}" -gt 0 ] || pkgs=(./...)

clock() {
  local s=$((SECONDS - start))
  if ((s < 60)); then printf '%ds' "$s"; else printf '%dm%02ds' $((s / 60)) $((s % 60)); fi
}
phase() { printf '\n==> [+%s] %s\n' "$(clock)" "$*"; }

start=$SECONDS
start_unix=$(date +%s)
work=$(mktemp -d)
vet_result="not run"
fuzz_result="not run"

# summary runs on every exit, success or not, and keeps the exit code.
summary() {
  local code=$?
  phase "summary"
  echo "vet: $vet_result"
  echo "fuzz: $fuzz_result"
  if [ -s "$work/tests.txt" ]; then sed -n '1p' "$work/tests.txt"; else echo "packages: not run"; fi
  if [ -s "$work/tests-alarm.txt" ]; then sed -n '$p' "$work/tests-alarm.txt" | sed 's/^tests:/alarm tests:/'; fi
  if [ -s "$work/tests-faults.txt" ]; then sed -n '$p' "$work/tests-faults.txt" | sed 's/^tests:/cluster fault tests:/'; fi
  if [ "$code" -ne 0 ]; then scripts/services.sh report || true; fi
  if [ "$code" -eq 0 ]; then echo "result: PASS in $(clock)"; else echo "result: FAIL (exit $code) in $(clock)"; fi
  if [ -s "$work/tests.txt" ]; then sed -n '$p' "$work/tests.txt"; fi
  rm -rf "$work"
  exit "$code"
}
trap summary EXIT

phase "services: RabbitMQ, Redis, Chromium (scripts/services.sh)"
scripts/services.sh

# The local clusters of the distributed tests (internal/clustertest) only
# when asked for: they take ~½ GB and up to a minute to start.
if [ "${KAIROS_CLUSTER_TESTS:-}" = "1" ]; then
  phase "clusters: 3-node RabbitMQ, 6-node Redis Cluster (scripts/clusters.sh, KAIROS_CLUSTER_TESTS=1)"
  scripts/clusters.sh up
  eval "$(scripts/clusters.sh env)"
fi

export KAIROS_AMQP_URL="${KAIROS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
export KAIROS_REDIS_URL="${KAIROS_REDIS_URL:-redis://127.0.0.1:6379/0}"

phase "vet: go vet ${pkgs[*]}"
vet_result="FAILED"
go vet "${pkgs[@]}"
vet_result="ok"
echo "vet: ok"

phase "tests: go test -count=1 -timeout 30m ${pkgs[*]} (a line per package as it finishes; every minute, those still running)"
go build -o "$work/testfmt" ./scripts/testfmt
# Tests that raise a RabbitMQ memory alarm block every publisher of the
# broker while it lasts (other packages' tests run in parallel), so they
# run after the others, one package at a time.
alarm_tests='^(TestMemoryAlarm|TestMemoryAlarmServe)$'
# Tests that kill cluster nodes (KAIROS_CLUSTER_TESTS=1) disturb every
# other user of the clusters while they run, and the acceptance test
# wants the machine's cores: they run last, one at a time.
fault_tests='^(TestAcceptanceFaults|TestClusterCommitSurvivesMasterFailover|TestClusterNodeLoss|TestClusterReplicaTakeover|TestStreamSurvivesNodeStop|TestRedisMasterFailover|TestRabbitQuorumQueueLeaderLoss)$'
go test -json -count=1 -timeout 30m -skip "$alarm_tests|$fault_tests" "${pkgs[@]}" | "$work/testfmt" -since "$start_unix" -summary "$work/tests.txt"
phase "tests that raise a RabbitMQ memory alarm, alone: go test -p 1 -run '$alarm_tests'"
go test -json -count=1 -p 1 -timeout 10m -run "$alarm_tests" "${pkgs[@]}" | "$work/testfmt" -since "$start_unix" -summary "$work/tests-alarm.txt"
if [ "${KAIROS_CLUSTER_TESTS:-}" = "1" ]; then
  phase "tests that kill cluster nodes, one at a time: go test -p 1 -run '$fault_tests' (KAIROS_ACCEPTANCE=${KAIROS_ACCEPTANCE:-})"
  go test -json -count=1 -p 1 -timeout 30m -run "$fault_tests" "${pkgs[@]}" | "$work/testfmt" -since "$start_unix" -summary "$work/tests-faults.txt"
fi

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
go list -f '{{.ImportPath}} {{.Dir}}' "${pkgs[@]}" | while read -r pkg dir; do
  for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    printf '%s %s\n' "$pkg" "$t"
  done
done >"$work/fuzz-targets"
phase "fuzz: $(wc -l <"$work/fuzz-targets") targets, $fuzztime executions each (FuzzRecoverSegment $(budget FuzzRecoverSegment))"
fuzz_ok=0 fuzz_failed=0 fuzz_result="no targets"
while read -r pkg target; do
  t0=$SECONDS
  if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$(budget "$target")" "$pkg" >"$work/fuzz.log" 2>&1; then
    fuzz_ok=$((fuzz_ok + 1))
    printf '[+%s] ok    %-28s %-54s %4ds\n' "$(clock)" "$target" "$pkg" $((SECONDS - t0))
  else
    fuzz_failed=$((fuzz_failed + 1))
    printf '[+%s] FAIL  %-28s %-54s %4ds\n' "$(clock)" "$target" "$pkg" $((SECONDS - t0))
    sed 's/^/      | /' "$work/fuzz.log"
  fi
  fuzz_result="$fuzz_ok targets passed, $fuzz_failed failed"
done <"$work/fuzz-targets"
[ "$fuzz_failed" -eq 0 ]
