#!/usr/bin/env bash
# Load test for metric-gate's listener and scrape path (issue 6). Not run by CI.
#
#   scripts/load.sh                       # 60 s, 100x10 ingress payload
#   options: --duration SECONDS (default 60)  --connections N per scraper (default 4)
#            --ingresses N (default 100)      --keep DIR (keep payload, logs and wrk output)
#            --secure: serve TLS (self-signed, openssl) with basic auth (bcrypt cost 10 from
#                      htpasswd) through --web.config.file; the scrapers send credentials
#            --slow-readers N: N more connections that ask for /metrics and never read the
#                      answer (4 KiB receive buffer), each replaced by a new one after 5-15 s
#            --passthrough: no rules on /metrics (it answers the whole payload, 27 MB with
#                      the default size); the subsets stay
#            --hostile: one more client looping over hostile requests (a 0.15 s scrape
#                      timeout, absurd and invalid timeout headers, junk Accept headers, odd
#                      subset names and /source targets), counting the statuses it gets
#            (--slow-readers and --hostile speak plain HTTP: not with --secure)
#
# Builds the release binary, generates an ingress-nginx-shaped payload with gen_ingress, serves
# it from a local static upstream (python3 http.server), starts metric-gate with
# testdata/relabel/subsets.yaml (labeldrop: path on /metrics, subsets `process` and
# `requests`), then runs four wrk scrapers at once for the whole duration:
#   /metrics (plain), /metrics (Accept-Encoding: gzip), /metrics/process, /metrics/requests
# while sampling metric-gate's VmRSS every second. Prints per scraper: requests, non-2xx
# responses, socket errors, p50/p99 latency; and RSS at start/peak/end, with the mean of the
# first and last quarter of the run (a leak shows as a last quarter above the first), and RSS
# every 5 s.
# Installs wrk (and apache2-utils for --secure) with apt-get when missing (expects root). Everything listens on 127.0.0.1.
set -euo pipefail
{

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

DURATION=60; CONNS=4; INGRESSES=100; KEEP=""; SECURE=0; SLOW=0; HOSTILE=0; PASS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --ingresses) INGRESSES=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --secure) SECURE=1 ;;
    --slow-readers) SLOW=$2; shift ;;
    --hostile) HOSTILE=1 ;;
    --passthrough) PASS=1 ;;
    -h|--help) sed -n 2,28p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$SECURE" = 1 ] && { [ "$SLOW" -gt 0 ] || [ "$HOSTILE" = 1 ]; }; then
  echo "--slow-readers and --hostile speak plain HTTP: not with --secure" >&2; exit 2
fi

log() { printf '[load %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

apt_need() { apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }; }
command -v wrk >/dev/null || { log "installing wrk"; apt_need wrk; }
if [ "$SECURE" = 1 ]; then
  command -v htpasswd >/dev/null || { log "installing apache2-utils (htpasswd)"; apt_need apache2-utils; }
  command -v openssl >/dev/null || { log "installing openssl"; apt_need openssl; }
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

if [ -n "$KEEP" ]; then WORK=$KEEP; mkdir -p "$WORK"; else WORK=$(mktemp -d); fi
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

log "building (release)"
cargo build --release -q --bin metric-gate --example gen_ingress
BIN="$ROOT/target/release/metric-gate"

mkdir -p "$WORK/up"
log "generating ${INGRESSES}x10 payload"
"$ROOT/target/release/examples/gen_ingress" --ingresses "$INGRESSES" --paths 10 --out "$WORK/up/metrics"
PAYLOAD_BYTES=$(stat -c %s "$WORK/up/metrics")
PAYLOAD_SERIES=$(grep -vc '^#' "$WORK/up/metrics" || true)

UP_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/up" "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$UP_PORT/metrics" && break
  sleep 0.1
done

RELABEL="$ROOT/testdata/relabel/subsets.yaml"
if [ "$PASS" = 1 ]; then
  # The subsets of subsets.yaml without its default list.
  { echo 'metric_relabel_configs: []'; sed -n '/^process:/,$p' "$RELABEL"; } >"$WORK/relabel.yaml"
  RELABEL="$WORK/relabel.yaml"
fi

GATE_PORT=$(free_port)
WEB_ARGS=(); CURL=(curl -sf); AUTH_HEADER=(); SCHEME=http
if [ "$SECURE" = 1 ]; then
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=metric-gate-load -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/tls/server.key" -out "$WORK/tls/server.crt" 2>/dev/null
  HASH=$(htpasswd -nbBC 10 "" load-password | tr -d ':\n')
  printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: %s\n' "$HASH" >"$WORK/tls/web.yml"
  WEB_ARGS=(--web.config.file "$WORK/tls/web.yml")
  CURL=(curl -sf --cacert "$WORK/tls/server.crt" -u prometheus:load-password)
  AUTH_HEADER=(-H "Authorization: Basic $(printf prometheus:load-password | base64)")
  SCHEME=https
fi
"$BIN" --listen-address 127.0.0.1 -p "$GATE_PORT" -H "http://127.0.0.1:$UP_PORT/metrics" \
  --relabel-file "$RELABEL" --log-level warn "${WEB_ARGS[@]}" >"$WORK/gate.log" 2>&1 &
GATE_PID=$!
PIDS+=("$GATE_PID")
BASE="$SCHEME://127.0.0.1:$GATE_PORT"

for _ in $(seq 1 100); do
  "${CURL[@]}" "$BASE/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
"${CURL[@]}" "$BASE/-/ready" >/dev/null || { log "metric-gate never became ready"; cat "$WORK/gate.log" >&2; exit 1; }
OUT_SERIES=$("${CURL[@]}" "$BASE/metrics" | grep -vc '^#' || true)
log "payload ${PAYLOAD_BYTES} bytes, ${PAYLOAD_SERIES} series; /metrics answers ${OUT_SERIES} series"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$GATE_PID/status"; }
: >"$WORK/rss.txt"
( while kill -0 "$GATE_PID" 2>/dev/null; do rss_kib >>"$WORK/rss.txt" 2>/dev/null || true; sleep 1; done ) &
SAMPLER=$!
PIDS+=("$SAMPLER")

# Clients that misbehave beside the scrapers (--slow-readers, --hostile): plain HTTP only.
cat >"$WORK/bad_clients.py" <<'PY'
import socket, sys, time, random, collections
mode, host, port, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
end = time.time() + duration

def slow(n):
    def conn():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: load\r\n\r\n")
        return s
    life = lambda: time.time() + random.uniform(5, 15)
    conns, replaced = [(conn(), life()) for _ in range(n)], 0
    while time.time() < end:
        time.sleep(0.5)
        for i, (s, until) in enumerate(conns):
            if time.time() > until:
                s.close()
                conns[i] = (conn(), life())
                replaced += 1
    print(f"slow readers: {n} connections open at any time, never read; {replaced} replaced after 5-15 s")

def hostile():
    long = "a" * 4000
    reqs = [("/metrics", "X-Prometheus-Scrape-Timeout-Seconds: 0.15")]
    reqs += [("/metrics", f"X-Prometheus-Scrape-Timeout-Seconds: {v}")
             for v in ["1e20", "1e300", "18446744073709551616", "-1", "NaN", "inf", "junk", "0"]]
    reqs += [("/metrics", "Accept: */*;q=2"), ("/metrics", "Accept-Encoding: gzip;q=NaN"),
             ("/metrics/..", ""), ("/metrics/%00", ""), (f"/metrics/{long}", ""),
             ("/source?target=%ff", ""), ("/metrics", "Authorization: Basic !!!")]
    statuses, i = collections.Counter(), 0
    while time.time() < end:
        path, header = reqs[i % len(reqs)]
        i += 1
        try:
            s = socket.create_connection((host, port), timeout=15)
            h = f"{header}\r\n" if header else ""
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: load\r\nConnection: close\r\n{h}\r\n".encode())
            head = s.recv(64)
            statuses[head.split(b" ")[1].decode() if head.count(b" ") else "none"] += 1
            s.close()
        except OSError as e:
            statuses[type(e).__name__] += 1
    print("hostile client: %d requests, statuses %s" % (sum(statuses.values()), dict(sorted(statuses.items()))))

slow(int(mode)) if mode != "hostile" else hostile()
PY
BAD=()
if [ "$SLOW" -gt 0 ]; then
  python3 "$WORK/bad_clients.py" "$SLOW" 127.0.0.1 "$GATE_PORT" "$DURATION" >"$WORK/slow.txt" 2>&1 &
  BAD+=($!)
fi
if [ "$HOSTILE" = 1 ]; then
  python3 "$WORK/bad_clients.py" hostile 127.0.0.1 "$GATE_PORT" "$DURATION" >"$WORK/hostile.txt" 2>&1 &
  BAD+=($!)
fi

log "scraping $BASE for ${DURATION}s: 4 scrapers x ${CONNS} connections, ${SLOW} slow readers, hostile client: ${HOSTILE}"
WRK=(wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency "${AUTH_HEADER[@]}")
"${WRK[@]}" "$BASE/metrics" >"$WORK/wrk_metrics.txt" 2>&1 &
W1=$!
"${WRK[@]}" -H 'Accept-Encoding: gzip' "$BASE/metrics" >"$WORK/wrk_metrics_gzip.txt" 2>&1 &
W2=$!
"${WRK[@]}" "$BASE/metrics/process" >"$WORK/wrk_process.txt" 2>&1 &
W3=$!
"${WRK[@]}" "$BASE/metrics/requests" >"$WORK/wrk_requests.txt" 2>&1 &
W4=$!
wait "$W1" "$W2" "$W3" "$W4"
for p in "${BAD[@]}"; do wait "$p" || true; done
sleep 2
kill "$SAMPLER" 2>/dev/null || true

SELF=$("${CURL[@]}" "$BASE/-/metrics" || true)

python3 - "$WORK" "$DURATION" <<'PY'
import re, sys, statistics
work, duration = sys.argv[1], int(sys.argv[2])

def lat_ms(text, pct):
    m = re.search(r'^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$' % pct, text, re.M)
    if not m:
        return float('nan')
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == 'us' else v * 1000 if u == 's' else v

print(f"{'scraper':<24}{'requests':>10}{'req/s':>9}{'non-2xx':>9}{'sock err':>10}{'p50 ms':>9}{'p99 ms':>9}")
for name, f in [("/metrics", "wrk_metrics.txt"), ("/metrics (gzip)", "wrk_metrics_gzip.txt"),
                ("/metrics/process", "wrk_process.txt"), ("/metrics/requests", "wrk_requests.txt")]:
    t = open(f"{work}/{f}").read()
    req = re.search(r'(\d+) requests in', t)
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', t)
    sock = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', t)
    n = int(req.group(1)) if req else 0
    errs = sum(int(x) for x in sock.groups()) if sock else 0
    print(f"{name:<24}{n:>10}{n/duration:>9.1f}{int(non2xx.group(1)) if non2xx else 0:>9}{errs:>10}"
          f"{lat_ms(t, 50):>9.2f}{lat_ms(t, 99):>9.2f}")

rss = [int(x) / 1024 for x in open(f"{work}/rss.txt").read().split() if x.strip()]
if rss:
    q = max(1, len(rss) // 4)
    print(f"\nRSS (MiB), {len(rss)} samples 1 s apart: start {rss[0]:.1f}, peak {max(rss):.1f}, end {rss[-1]:.1f}; "
          f"mean of first quarter {statistics.mean(rss[:q]):.1f}, of last quarter {statistics.mean(rss[-q:]):.1f}")
    print("RSS every 5 s (MiB): " + " ".join(f"{x:.0f}" for x in rss[::5]))
for f in ("slow.txt", "hostile.txt"):
    try:
        print(open(f"{work}/{f}").read().strip())
    except OSError:
        pass
PY
echo
echo "metric-gate self-metrics after the run:"
printf '%s\n' "$SELF" | grep -E '^metric_gate_(http_requests_total|scrapes_shared_total|http_connections_|http_response_held_bytes|upstream_errors_total)' | sort || true

}
