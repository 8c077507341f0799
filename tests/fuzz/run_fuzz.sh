#!/usr/bin/env bash
# Runs each libFuzzer binary of a USHER_FUZZ build for a fixed time and prints
# how many inputs it executed. Used by `make fuzz`:
#   tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS [TARGET...]
# New coverage is kept in BUILD_DIR/fuzz-corpus/<target> (the seeds in the
# source tree are only read); crashes are written to
# BUILD_DIR/fuzz-artifacts/<target>/ and fail the run. A crash, once fixed,
# belongs in tests/fuzz/regressions/<target>/ so `make test` replays it.
set -u
build_dir=${1:?usage: run_fuzz.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run_fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
source_dir=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(loader expression json_schema kafka_reply api_handler http_step_reply)
fi

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build_dir/tests/fuzz/usher_fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (build the usher_fuzz_all target)" >&2
    failed+=("$t")
    continue
  fi
  work="$build_dir/fuzz-corpus/$t"
  artifacts="$build_dir/fuzz-artifacts/$t/"
  log="$build_dir/fuzz-logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  dirs=("$work" "$source_dir/corpus/$t")
  [ -d "$source_dir/regressions/$t" ] && dirs+=("$source_dir/regressions/$t")
  echo "fuzz: $t for ${seconds}s (log: $log)"
  # -timeout: an input taking 10 s is a hang worth a report. -rss_limit_mb:
  # ASan's shadow plus the api target's engine need more than the default.
  # FUZZ_SEED (0: random) makes a run repeatable: CI fixes it, so a CI run
  # explores the same inputs as the run that was checked before it.
  "$bin" -seed="${FUZZ_SEED:-0}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)
  fi
  line=$(printf '%-12s %12s executions' "$t" "${execs:-?}")
  if [ $rc -ne 0 ]; then
    line="$line  FAILED (exit $rc; see $log and $artifacts)"
    failed+=("$t")
    tail -40 "$log" >&2
  fi
  summary+=("$line")
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
