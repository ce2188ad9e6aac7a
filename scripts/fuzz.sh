#!/usr/bin/env bash
# Coverage-guided fuzzing of the parser, the relabel configuration loader and the whole pipeline
# with cargo-fuzz (libFuzzer). Not run by the test command; CI runs `scripts/fuzz.sh --smoke`.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   # each target for SECONDS (default 300), AddressSanitizer
#   scripts/fuzz.sh --smoke                 # each target for 20 s, no sanitizer, fixed seed (CI)
#   options: --jobs N (parallel fuzzing processes per target, default 1)
#            --sanitizer address|none
#   targets: parse relabel_config pipeline (default: all)
#
# The seed corpus is built from testdata/ (expositions, golden outputs, bad inputs, relabel
# files) plus testdata/fuzz/<target>/; the growing corpus stays in fuzz/corpus/ (not committed).
# A crash leaves its input in fuzz/artifacts/<target>/ and makes the script fail; minimize it
# (`cargo fuzz tmin`), save it under testdata/fuzz/<target>/ and fix the bug.
# At the end a table of executions, coverage and crashes per target is printed and written to
# fuzz/last-run.txt.
set -euo pipefail
{
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/fuzz"

SECONDS_PER=300; SANITIZER=address; JOBS=1; TARGETS=(); SEED=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SECONDS_PER=20; SANITIZER=none; SEED=(-seed=1) ;;
    --jobs) JOBS=$2; shift ;;
    --sanitizer) SANITIZER=$2; shift ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    [0-9]*) SECONDS_PER=$1 ;;
    parse|relabel_config|pipeline) TARGETS+=("$1") ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(parse relabel_config pipeline)

log() { printf '[fuzz %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# cargo-fuzz drives libFuzzer; its flags need a nightly compiler, which RUSTC_BOOTSTRAP=1 gives
# the stable toolchain for this build only.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked -q
fi

# ---------------------------------------------------------------- seed corpus
seed() { # seed TARGET FILE [PREFIX_BYTE]
  local dir="corpus/$1" name
  name=$(basename "$2")
  mkdir -p "$dir"
  if [ $# -ge 3 ]; then
    { printf "\\x$(printf %02x "$3")"; cat "$2"; } >"$dir/seed-$3-$name"
  else
    cp "$2" "$dir/seed-$name"
  fi
}
shopt -s nullglob
EXPOSITIONS=("$ROOT"/testdata/*.prom "$ROOT"/testdata/*.txt "$ROOT"/testdata/golden/*.prom
             "$ROOT"/testdata/bad/*.prom)
for f in "${EXPOSITIONS[@]}" "$ROOT"/testdata/fuzz/parse/*; do seed parse "$f"; done
for f in "$ROOT"/testdata/relabel/*.yaml "$ROOT"/testdata/fuzz/relabel_config/*; do
  seed relabel_config "$f"
done
for f in "${EXPOSITIONS[@]}"; do for pick in 0 1 2 3; do seed pipeline "$f" "$pick"; done; done
for f in "$ROOT"/testdata/fuzz/pipeline/*; do seed pipeline "$f"; done

# ---------------------------------------------------------------- build + run
log "cargo fuzz build (sanitizer: $SANITIZER)"
cargo fuzz build -s "$SANITIZER" 2>&1 | grep -E '^(error|warning: unused)' >&2 || true
cargo fuzz build -s "$SANITIZER" >/dev/null 2>&1 || { cargo fuzz build -s "$SANITIZER"; exit 1; }

LOGDIR=$(mktemp -d /tmp/mg-fuzz.XXXXXX)
STATUS=0
SUMMARY="target | seconds | executions | exec/s | coverage (cov) | features (ft) | corpus | crashes"
SUMMARY+=$'\n'"---|---|---|---|---|---|---|---"
for t in "${TARGETS[@]}"; do
  dict=exposition.dict; [ "$t" = relabel_config ] && dict=relabel.dict
  log "$t: ${SECONDS_PER}s"
  mkdir -p "artifacts/$t"
  rc=0
  parallel=()
  [ "$JOBS" -gt 1 ] && parallel=(-jobs="$JOBS" -workers="$JOBS")
  cargo fuzz run -s "$SANITIZER" "$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER" -dict="dict/$dict" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "${parallel[@]}" "${SEED[@]}" \
    >"$LOGDIR/$t.log" 2>&1 || rc=$?
  # With -jobs the per-job logs are fuzz-<n>.log in the current directory.
  if [ "$JOBS" -gt 1 ]; then cat fuzz-*.log >>"$LOGDIR/$t.log" 2>/dev/null || true; rm -f fuzz-*.log; fi
  execs=$(grep -h 'stat::number_of_executed_units' "$LOGDIR/$t.log" | awk '{s+=$2} END {print s+0}' || true)
  rate=$(grep -h 'stat::average_exec_per_sec' "$LOGDIR/$t.log" | awk '{s+=$2} END {print s+0}' || true)
  last=$(grep -h -E '^#[0-9]+' "$LOGDIR/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last"); ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  crashes=$(find "artifacts/$t" -type f | wc -l)
  SUMMARY+=$'\n'"$t | $SECONDS_PER | $execs | $rate | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    log "$t FAILED (exit $rc); log tail:"; tail -40 "$LOGDIR/$t.log" >&2
    STATUS=1
  fi
done
printf '%s\n' "$SUMMARY" | tee last-run.txt
log "logs in $LOGDIR"
exit "$STATUS"
}
