#!/usr/bin/env bash
# Remote-write benchmark (issue 16): metric-gate next to vmagent, in the same run. Not run by CI.
#
#   scripts/bench_remote_write.sh             # 1000x10 ingress payload (~276 MB, ~851k series)
#   scripts/bench_remote_write.sh --quick     # 100x10 payload, shorter runs
#   options: --runs N (default 3)  --cycles N (measured scrapes per run, default 3)
#            --interval S (default 20; 6 with --quick)  --recv-seconds S (default 20; 8 with --quick)
#            --no-doc (print the section only)  --no-build (use the binaries as they are; MG=PATH
#            and GEN=PATH in the environment name other metric-gate and gen_ingress binaries)
#            KEEP_RESULTS=DIR in the environment keeps the raw results
#
# Everything listens on 127.0.0.1 and everything started here is stopped at exit (trap):
#   a static upstream serving the payload and a remote-write sink answering 204 (threads of
#   scripts/bench_remote_write.py), then in turns, one at a time:
#   A. push: metric-gate (--relabel labeldrop path, --remote-write.config-file) and vmagent
#      (-promscrape.config with metric_relabel_configs labeldrop path, -remoteWrite.url) scrape
#      the upstream every interval and remote-write to the sink;
#   B. forwarding: metric-gate --remote-write.receiver and vmagent's /api/v1/write forward the
#      requests of a loader to the sink.
# Measured per run: the tool's CPU (user+sys from /proc), samples and bytes the sink received,
# RSS. The section "Remote write" of docs/benchmarks.md is replaced with the result (unless
# --no-doc); scripts/bench_report.py keeps that section when it rewrites the file.
# Installs victoria-metrics (vmagent) and python3-snappy with apt-get if missing (as root).
set -euo pipefail
# One { ... } block: bash parses it whole before running, so editing the file mid-run is safe.
{

ARGS="$*"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=0; DOC=1; BUILD=1; RUNS=3; CYCLES=3; INTERVAL=""; RECV_SECONDS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --runs) RUNS=$2; shift ;;
    --cycles) CYCLES=$2; shift ;;
    --interval) INTERVAL=$2; shift ;;
    --recv-seconds) RECV_SECONDS=$2; shift ;;
    --no-doc) DOC=0 ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n 2,22p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then SIZE=100x10; INGRESSES=100; : "${INTERVAL:=6}" "${RECV_SECONDS:=8}"
else SIZE=1000x10; INGRESSES=1000; : "${INTERVAL:=20}" "${RECV_SECONDS:=20}"; fi
export RUNS CYCLES INTERVAL RECV_SECONDS

log() { printf '[bench-rw %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
T_START=$(date +%s)

# The Python that has the snappy module: the one on PATH, else Debian's (python3-snappy).
find_py() {
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import snappy' 2>/dev/null; then echo "$p"; return; fi
  done
}
need_apt=()
command -v vmagent >/dev/null || need_apt+=(victoria-metrics)
[ -n "$(find_py)" ] || need_apt+=(python3-snappy)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
PY=$(find_py)
[ -n "$PY" ] || { echo "no python3 with the snappy module" >&2; exit 1; }

if [ "$BUILD" = 1 ]; then
  log "cargo build --release"
  cargo build --release --bins --examples -q
fi
export MG="${MG:-$ROOT/target/release/metric-gate}"
GEN="${GEN:-$ROOT/target/release/examples/gen_ingress}"

WORK=$(mktemp -d /tmp/mg-bench-rw.XXXXXX)
DRIVER=""
cleanup() {
  # The driver runs in its own session: its process group holds every tool it started.
  if [ -n "$DRIVER" ]; then
    kill -TERM -- "-$DRIVER" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$DRIVER" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$DRIVER" 2>/dev/null || true
  fi
  if [ -n "${KEEP_RESULTS:-}" ] && [ -d "$WORK" ]; then
    rm -rf "$KEEP_RESULTS"; mkdir -p "$KEEP_RESULTS"
    find "$WORK" -maxdepth 1 -type f ! -name ingress.prom -exec cp {} "$KEEP_RESULTS/" \;
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "generating payload $SIZE"
"$GEN" --ingresses "$INGRESSES" --paths 10 --out "$WORK/ingress.prom" 2>"$WORK/gen.log"
{
  echo "args=$ARGS"
  echo "size=$SIZE"
  echo "payload_bytes=$(stat -c %s "$WORK/ingress.prom")"
  echo "payload_series=$(grep -vc '^#' "$WORK/ingress.prom" || true)"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "date=$(date -u +'%Y-%m-%d %H:%M UTC')"
  echo "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "vmagent_version=vmagent $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown) (Debian package victoria-metrics)"
} >"$WORK/machine.env"

log "runs=$RUNS cycles=$CYCLES interval=${INTERVAL}s recv=${RECV_SECONDS}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
setsid "$PY" "$ROOT/scripts/bench_remote_write.py" "$WORK" &
DRIVER=$!
wait "$DRIVER"
DRIVER=""
PYTHONDONTWRITEBYTECODE=1 "$PY" "$ROOT/scripts/bench_remote_write.py" "$WORK" report >"$WORK/report.md"
cat "$WORK/report.md"
if [ "$DOC" = 1 ]; then
  python3 - "$ROOT/docs/benchmarks.md" "$WORK/report.md" <<'PY'
import sys
doc, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- remote-write:begin -->", "<!-- remote-write:end -->"
text = open(doc).read()
block = f"{begin}\n## Remote write: metric-gate and vmagent\n\n{section}{end}\n"
if begin in text and end in text:
    text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
else:
    marker = "## Reproduce"
    text = text.replace(marker, block + "\n" + marker) if marker in text else text + "\n" + block
open(doc, "w").write(text)
PY
  log "docs/benchmarks.md: section 'Remote write' replaced"
fi
log "done in $(( $(date +%s) - T_START )) s"
exit 0
}
