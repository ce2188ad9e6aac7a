#!/usr/bin/env bash
# Benchmark suite for metric-gate (issue 5, section 5). Not run by CI.
#
#   scripts/bench.sh            # full run on the 1000x10 ingress payloads (~276 MB, ~851k series)
#   scripts/bench.sh --quick    # same steps on the 100x10 payloads (~28 MB)
#   options: --shape 10x|2x|both (default both)  --apply-only  --skip-criterion  --skip-http
#            --no-profile  --runs N (default 5)  --runs-promtool N (default 2, 3 with --quick)
#            --out DIR
#            KEEP_RESULTS=DIR in the environment keeps the raw results; MG_BIN=PATH times that
#            metric-gate binary instead of building one (GEN_BIN=PATH: that gen_ingress)
#
# Two payload shapes: "10x", where `labeldrop: path` sums every ingress' 10 paths into one series
# (851k series in, 86k out), and "2x", where every two paths of an ingress have a method and
# status of their own (`gen_ingress --paths-per-status 2`: 851k in, ~426k out). Step 2 runs on
# each shape asked for; steps 1, 3 and 4 on the 10x shape (skipped without it). --apply-only
# runs step 2 alone.
#
# In ONE run it times whole processes with GNU time (wall, user, sys, peak RSS):
#   1. metric-gate --file PAYLOAD                 vs  promtool check metrics --extended < PAYLOAD
#   2. metric-gate --file PAYLOAD --apply (labeldrop: path)
#                                                 vs  vmagent /api/v1/import/prometheus with
#                                                     -remoteWrite.relabelConfig (labeldrop: path),
#                                                     remote write to a local sink answering 204
#   3. criterion benches (benches/pipeline.rs) and the server latency test (tests/http_bench.rs)
#   4. a flat `perf` profile of the --apply run (if perf works here)
# then writes docs/benchmarks.md and docs/benchmarks.svg via scripts/bench_report.py.
# Installs missing tools with apt-get (expects to run as root). Everything listens on 127.0.0.1.
set -euo pipefail
# The whole body is one { ... } block, so bash parses it before running: editing this file while
# a run is in progress cannot change what that run executes.
{

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=0; PROFILE=1; SKIP_CRIT=0; SKIP_HTTP=0; RUNS_FAST=5; RUNS_PROMTOOL=""; OUT="$ROOT/docs"
SHAPE=both; APPLY_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --shape) SHAPE=$2; shift ;;
    --apply-only) APPLY_ONLY=1; SKIP_CRIT=1; SKIP_HTTP=1; PROFILE=0 ;;
    --skip-criterion) SKIP_CRIT=1 ;;
    --skip-http) SKIP_HTTP=1 ;;
    --no-profile) PROFILE=0 ;;
    --runs-fast) RUNS_FAST=$2; shift ;;
    --runs) RUNS_FAST=$2; shift ;;
    --runs-promtool) RUNS_PROMTOOL=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n 2,25p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then SIZE=100x10; INGRESSES=100; : "${RUNS_PROMTOOL:=3}"
else SIZE=1000x10; INGRESSES=1000; : "${RUNS_PROMTOOL:=2}"; fi
case "$SHAPE" in
  both) SHAPES="10x 2x" ;;
  10x|2x) SHAPES=$SHAPE ;;
  *) echo "--shape must be 10x, 2x or both" >&2; exit 2 ;;
esac
HAS_10X=0; case " $SHAPES " in *" 10x "*) HAS_10X=1 ;; esac
# The 10x shape keeps the step names of earlier runs (mg_apply, ...); others get a suffix.
shape_suffix() { if [ "$1" = 10x ]; then echo ""; else echo "_$1"; fi; }
shape_payload() { echo "$WORK/ingress$(shape_suffix "$1").prom"; }
RELABEL_MG="$ROOT/testdata/relabel/labeldrop_path.yaml"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- tools
need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v vmagent >/dev/null || need_apt+=(victoria-metrics)
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v curl >/dev/null || need_apt+=(curl)
command -v taskset >/dev/null || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

# ---------------------------------------------------------------- build + payload
if [ -n "${MG_BIN:-}" ]; then
  MG=$MG_BIN; log "timing $MG (MG_BIN; not building)"
else
  log "cargo build --release"
  cargo build --release --bins --examples -q
  MG="$ROOT/target/release/metric-gate"
fi

WORK=$(mktemp -d /tmp/mg-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RES="$WORK/results"; mkdir -p "$RES"
PAYLOAD=$(shape_payload 10x)
for shape in $SHAPES; do
  p=$(shape_payload "$shape"); sfx=$(shape_suffix "$shape")
  extra=(); [ "$shape" = 2x ] && extra=(--paths-per-status 2)
  log "generating payload $SIZE, shape $shape"
  if [ -n "${GEN_BIN:-}" ]; then gen=("$GEN_BIN"); else gen=(cargo run --release -q --example gen_ingress --); fi
  "${gen[@]}" --ingresses "$INGRESSES" --paths 10 "${extra[@]}" --out "$p" 2>>"$RES/gen.log"
  { echo "payload_bytes$sfx=$(stat -c %s "$p")"
    echo "payload_series$sfx=$(grep -vc '^#' "$p" || true)"; } >>"$RES/payloads.env"
done

{
  echo "size=$SIZE"
  echo "shapes=$SHAPES"
  echo "apply_only=$APPLY_ONLY"
  cat "$RES/payloads.env"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total=$(grep MemTotal /proc/meminfo | awk '{print $2 " kB"}')"
  echo "kernel=$(uname -r)"
  echo "load_start=$LOAD_START"
  echo "date=$(date -u +'%Y-%m-%d %H:%M UTC')"
  echo "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "metric_gate_version=$("$MG" --version 2>/dev/null | head -1)"
  echo "promtool_version=$(promtool --version 2>&1 | head -1)"
  echo "vmagent_version=$(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown) (Debian package victoria-metrics)"
  echo "rustc=$(rustc --version)"
  echo "quick=$QUICK"
} > "$RES/machine.env"

# ---------------------------------------------------------------- timing helper
# timed_run NAME I/RUNS STDIN CMD...   -> one line in results/runs.tsv:
#   name  run  wall_s  peak_rss_kb  user_s  sys_s  exit
timed_run() {
  local name=$1 i=${2%/*} runs=${2#*/} stdin=$3; shift 3
  local out wall rss user sys code
  out="$RES/$name.$i"
  set +e
  /usr/bin/time -f '%e %M %U %S %x' -o "$out.time" "$@" <"$stdin" >"$out.stdout" 2>"$out.stderr"
  set -e
  read -r wall rss user sys code <"$out.time" || true
  # GNU time prefixes "Command exited with non-zero status N" on failures
  if ! [[ "$wall" =~ ^[0-9.]+$ ]]; then read -r wall rss user sys code < <(tail -1 "$out.time"); fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$i" "$wall" "$rss" "$user" "$sys" "$code" >>"$RES/runs.tsv"
  log "$name run $i/$runs: ${wall}s, peak RSS $((rss / 1024)) MiB, exit $code"
  if [ "$i" -gt 1 ]; then rm -f "$out.stdout"; fi   # keep the first run's output only
}
# timed NAME RUNS STDIN CMD...   -> RUNS runs of timed_run
timed() {
  local name=$1 runs=$2 stdin=$3 i; shift 3
  for i in $(seq 1 "$runs"); do timed_run "$name" "$i/$runs" "$stdin" "$@"; done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- 1. analyze vs promtool
if [ "$HAS_10X" = 1 ] && [ "$APPLY_ONLY" = 0 ]; then
cat "$PAYLOAD" >/dev/null   # warm the page cache
log "1. metric-gate --file vs promtool check metrics --extended"
timed mg_analyze "$RUNS_FAST" /dev/null taskset -c 0 "$MG" --file "$PAYLOAD"
# promtool prints the --extended cardinality table only when linting finds nothing; the generated
# payload has three counters without the _total suffix, so promtool would stop after linting (exit 3).
# Give promtool a copy whose three TYPE lines say "untyped" instead: same size, same series.
sed -E 's/^# TYPE (nginx_ingress_controller_(errors|requests|success)) counter$/# TYPE \1 untyped/' \
  "$PAYLOAD" >"$WORK/ingress.promtool.prom"
cmp -s <(stat -c %s "$PAYLOAD") <(stat -c %s "$WORK/ingress.promtool.prom") || log "warning: promtool copy differs in size"
timed promtool_extended "$RUNS_PROMTOOL" "$WORK/ingress.promtool.prom" promtool check metrics --extended
fi

# ---------------------------------------------------------------- 2. apply vs vmagent
log "2. metric-gate --file --apply vs vmagent import + relabel (runs interleaved)"

# vmagent: same relabel rule in vmagent's relabel_config list format
cat >"$WORK/vm_relabel.yml" <<'YML'
- action: labeldrop
  regex: path
YML
# remote-write sink: answers 204 to everything, discards bodies
cat >"$WORK/sink.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
SINK_PORT=$(free_port)
python3 "$WORK/sink.py" "$SINK_PORT" & PIDS+=($!)

# vmagent_run I/RUNS PAYLOAD SUFFIX: a fresh vmagent, one timed POST of the payload, then stop it.
vmagent_run() {
  local i=${1%/*} runs=${1#*/} payload=$2 sfx=$3
  local VM_PORT VM_PID utime0 stime0 utime1 stime1 rss code wall tck user sys curl_out
  VM_PORT=$(free_port)
  rm -rf "$WORK/vmdata"
  vmagent -httpListenAddr="127.0.0.1:$VM_PORT" \
    -remoteWrite.url="http://127.0.0.1:$SINK_PORT/api/v1/write" \
    -remoteWrite.relabelConfig="$WORK/vm_relabel.yml" \
    -remoteWrite.tmpDataPath="$WORK/vmdata" \
    -loggerLevel=ERROR >"$RES/vmagent$sfx.$i.log" 2>&1 &
  VM_PID=$!; PIDS+=($VM_PID)
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$VM_PORT/health" 2>/dev/null && break; sleep 0.1
  done
  read -r utime0 stime0 < <(awk '{print $14, $15}' "/proc/$VM_PID/stat")
  set +e
  curl_out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -X POST \
    -H 'Content-Type: text/plain' -T "$payload" \
    "http://127.0.0.1:$VM_PORT/api/v1/import/prometheus")
  set -e
  read -r utime1 stime1 < <(awk '{print $14, $15}' "/proc/$VM_PID/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$VM_PID/status")
  read -r code wall <<<"$curl_out"
  tck=$(getconf CLK_TCK)
  user=$(python3 -c "print(($utime1-$utime0)/$tck)"); sys=$(python3 -c "print(($stime1-$stime0)/$tck)")
  curl -fsS "http://127.0.0.1:$VM_PORT/metrics" >"$RES/vmagent$sfx.$i.metrics" || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "vmagent_import$sfx" "$i" "$wall" "$rss" "$user" "$sys" "$code" >>"$RES/runs.tsv"
  log "vmagent_import$sfx run $i/$runs: ${wall}s (HTTP $code), peak RSS $((rss / 1024)) MiB"
  kill "$VM_PID"; wait "$VM_PID" 2>/dev/null || true
}

# Alternate the two tools run by run, so a load change on this shared machine hits both alike.
for shape in $SHAPES; do
  p=$(shape_payload "$shape"); sfx=$(shape_suffix "$shape")
  cat "$p" >/dev/null   # warm the page cache
  for i in $(seq 1 "$RUNS_FAST"); do
    # Not pinned: --file --apply splits the file between every core (--threads, default all),
    # as vmagent uses every core too.
    timed_run "mg_apply$sfx" "$i/$RUNS_FAST" /dev/null "$MG" --file "$p" --apply --relabel-file "$RELABEL_MG"
    vmagent_run "$i/$RUNS_FAST" "$p" "$sfx"
  done
done

# ---------------------------------------------------------------- 3. criterion + server latency
if [ "$SKIP_CRIT" = 0 ] && [ "$HAS_10X" = 1 ]; then
  log "3a. cargo bench --bench pipeline ($SIZE)"
  rm -rf "$ROOT/target/criterion"
  METRIC_GATE_BENCH_SIZE=$SIZE cargo bench -q --bench pipeline >"$RES/criterion.log" 2>&1 || log "criterion failed (see log)"
  mkdir -p "$RES/criterion"
  for f in "$ROOT"/target/criterion/*/*/new/estimates.json; do
    [ -e "$f" ] || continue
    rel=${f#"$ROOT/target/criterion/"}; rel=${rel%/new/estimates.json}
    mkdir -p "$RES/criterion/$rel"; cp "$f" "$(dirname "$f")/benchmark.json" "$RES/criterion/$rel/" 2>/dev/null || true
  done
fi
if [ "$APPLY_ONLY" = 0 ]; then
  log "3b. parse_alloc test (allocations per line)"
  cargo test -q --release --test parse_alloc >"$RES/parse_alloc.log" 2>&1 && echo pass >"$RES/parse_alloc.status" \
    || echo fail >"$RES/parse_alloc.status"
fi
if [ "$SKIP_HTTP" = 0 ] && [ "$HAS_10X" = 1 ]; then
  log "3c. http_bench (server latency, RSS, dns+ fan-out)"
  MG_BENCH_PAYLOAD="$PAYLOAD" MG_BENCH_RELABEL="$RELABEL_MG" MG_BENCH_RUNS=$RUNS_FAST \
    cargo test -q --release --test http_bench -- --ignored --nocapture --test-threads=1 >"$RES/http_bench.log" 2>&1 \
    || log "http_bench failed (see log)"
fi
# The sidecar's first and repeat scrapes of the other shapes (the 10x one ran above, with the
# rest of http_bench).
if [ "$SKIP_HTTP" = 0 ]; then
  for shape in $SHAPES; do
    [ "$shape" = 10x ] && continue
    log "3d. http_bench first_and_repeat_scrape ($shape)"
    MG_BENCH_PAYLOAD="$(shape_payload "$shape")" MG_BENCH_RELABEL="$RELABEL_MG" MG_BENCH_RUNS=$RUNS_FAST \
      cargo test -q --release --test http_bench first_and_repeat_scrape -- --ignored --nocapture \
      >"$RES/http_bench_$shape.log" 2>&1 || log "http_bench ($shape) failed (see log)"
  done
fi

if [ "$PROFILE" = 1 ] && [ "$HAS_10X" = 1 ] && command -v perf >/dev/null; then
  log "4. perf profile of metric-gate --file --apply"
  if perf record -F 1999 -o "$WORK/perf.data" -- taskset -c 0 "$MG" --file "$PAYLOAD" --apply \
       --relabel-file "$RELABEL_MG" >/dev/null 2>"$RES/perf_record.log"; then
    perf report -i "$WORK/perf.data" --no-children --stdio --sort dso,symbol --percent-limit 1 2>/dev/null \
      | grep -v '^#' | sed '/^ *$/d' | head -30 >"$RES/perf_top.txt" || true
  else
    log "perf record failed (see perf_record.log); no profile"
  fi
fi

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/machine.env"
echo "script_seconds=$(( $(date +%s) - T_START ))" >>"$RES/machine.env"
mkdir -p "$OUT"
PYTHONDONTWRITEBYTECODE=1 python3 "$ROOT/scripts/bench_report.py" "$RES" "$OUT"
if [ -n "${KEEP_RESULTS:-}" ]; then rm -rf "$KEEP_RESULTS"; cp -r "$RES" "$KEEP_RESULTS"; fi
log "done in $(( $(date +%s) - T_START )) s: $OUT/benchmarks.md, $OUT/benchmarks.svg"
exit 0
}
