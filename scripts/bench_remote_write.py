#!/usr/bin/env python3
"""Remote-write benchmark driver for scripts/bench_remote_write.sh (standard library + python3-snappy).

Usage: bench_remote_write.py WORKDIR           runs the benchmark (WORKDIR prepared by the script)
       bench_remote_write.py WORKDIR report    prints the markdown section from WORKDIR's results

WORKDIR holds ingress.prom (the payload), machine.env, and receives results.json and report.md.
Environment: MG (metric-gate binary), RUNS (runs per tool, default 3), CYCLES (measured scrape
cycles per run, default 3), INTERVAL (seconds between scrapes, default 20), RECV_SECONDS (load
per receiver run, default 20), RELABEL (metric-gate's --relabel value).

In this one process: a static upstream (GET /metrics: the payload; GET /tiny: one line) and a
remote-write sink (POST: 204, bodies kept per run) on 127.0.0.1, threads of this process, so
neither shows in the measured tools' CPU. The tools run as child processes, one at a time, in
turns (metric-gate, vmagent, metric-gate, ...); every child is stopped before the next starts
and at exit, whatever happens.

Part A, push: each tool scrapes the upstream every INTERVAL s with `labeldrop: path` and
remote-writes to the sink. After one warm-up cycle, a window of CYCLES whole cycles is
measured: a cycle ends once the sink and the tool have been quiet for a moment, so the window
holds exactly CYCLES scrapes and everything they sent. CPU is the tool's user+sys from
/proc/PID/stat over the window; samples are counted by decoding what the sink received in it.

Part B, forwarding: each tool receives remote write (metric-gate: --remote-write.receiver;
vmagent: /api/v1/write) from a loader here (4 connections, the 1.0 requests metric-gate pushed
in part A, each 2000 samples) for RECV_SECONDS and forwards it to the sink; the window ends
when the sink has received every forwarded sample.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import snappy  # python3-snappy: snappy block format, as remote write uses
except ImportError:  # the shell script installs it; fail clearly if it is missing
    sys.exit("bench_remote_write.py needs python3-snappy (apt-get install python3-snappy)")

CLK_TCK = os.sysconf("SC_CLK_TCK")
WORK = sys.argv[1] if len(sys.argv) > 1 else "."
MG = os.environ.get("MG", "target/release/metric-gate")
RUNS = int(os.environ.get("RUNS", "3"))
CYCLES = int(os.environ.get("CYCLES", "3"))
INTERVAL = int(os.environ.get("INTERVAL", "20"))
RECV_SECONDS = float(os.environ.get("RECV_SECONDS", "20"))
QUIET_S = min(1.5, INTERVAL / 4)
RELABEL = os.environ.get("RELABEL", "metric_relabel_configs: [{action: labeldrop, regex: path}]")
PAYLOAD = os.path.join(WORK, "ingress.prom")


def log(msg):
    print(f"[bench-rw {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- upstream and sink (threads)
class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scrapes = 0
    lock = threading.Lock()

    def do_GET(self):
        if self.path.startswith("/tiny"):
            body = b"# TYPE tiny gauge\ntiny 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with Upstream.lock:
            Upstream.scrapes += 1
        size = os.path.getsize(PAYLOAD)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        with open(PAYLOAD, "rb") as f:
            self.connection.sendfile(f)  # zero-copy: the upstream costs next to nothing

    def log_message(self, *a):
        pass


class Sink(BaseHTTPRequestHandler):
    """Answers 204 to every POST and keeps the bodies (counted after the run, not during it)."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    bodies = []  # (arrival time, body, content-type)
    last = 0.0

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        chunks = []
        while n > 0:
            c = self.rfile.read(min(n, 1 << 20))
            if not c:
                break
            chunks.append(c)
            n -= len(c)
        body = b"".join(chunks)
        now = time.monotonic()
        with Sink.lock:
            Sink.bodies.append((now, body, self.headers.get("Content-Type", "")))
            Sink.last = now
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def serve(handler):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def sink_take(since=None):
    with Sink.lock:
        if since is None:
            Sink.bodies = []
            return []
        out = [b for b in Sink.bodies if b[0] > since]
        Sink.bodies = []
        return out


# ---------------------------------------------------------------- counting samples
def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def skip(buf, i, wt):
    if wt == 0:
        return varint(buf, i)[1]
    if wt == 1:
        return i + 8
    if wt == 2:
        n, i = varint(buf, i)
        return i + n
    if wt == 5:
        return i + 4
    raise ValueError(f"wire type {wt}")


def count_v1(raw):
    """(series, samples, metadata) of a prometheus.WriteRequest."""
    series = samples = metadata = 0
    i, end = 0, len(raw)
    while i < end:
        key, i = varint(raw, i)
        field, wt = key >> 3, key & 7
        if field in (1, 3) and wt == 2:
            n, i = varint(raw, i)
            stop = i + n
            if field == 3:
                metadata += 1
                i = stop
                continue
            series += 1
            while i < stop:
                k2, i = varint(raw, i)
                if (k2 >> 3) in (2, 4):  # samples, histograms
                    samples += 1
                i = skip(raw, i, k2 & 7)
        else:
            i = skip(raw, i, wt)
    return series, samples, metadata


def count_bodies(bodies):
    out = dict(requests=len(bodies), bytes=0, raw_bytes=0, series=0, samples=0, metadata=0)
    for _, body, ctype in bodies:
        out["bytes"] += len(body)
        raw = snappy.uncompress(body)
        out["raw_bytes"] += len(raw)
        if "v2" in ctype:
            raise SystemExit("the sink got a 2.0 request; this benchmark configures 1.0 only")
        s, n, m = count_v1(raw)
        out["series"] += s
        out["samples"] += n
        out["metadata"] += m
    return out


# ---------------------------------------------------------------- processes
def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


CHILDREN = []


def start(cmd, logname):
    logf = open(os.path.join(WORK, logname), "w")
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    CHILDREN.append(p)
    log(f"started pid {p.pid}: {' '.join(cmd)}")
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in CHILDREN:
        CHILDREN.remove(p)


def stop_all(*_):
    for p in list(CHILDREN):
        stop(p)


def wait_http(port, path, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not answer {path}")


def get_text(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    return c.getresponse().read().decode(errors="replace")


def wait_quiet(p, quiet_s=None, timeout_s=None):
    """Waits until the sink has received nothing for quiet_s and the tool used under 2% of a
    core over the last quiet_s: the work of its cycle, sending included, is done."""
    quiet_s = quiet_s or QUIET_S
    end = time.monotonic() + (timeout_s or INTERVAL * 3)
    seen = []  # (time, cpu seconds), polled every 50 ms
    while True:
        now = time.monotonic()
        seen.append((now, cpu_s(p.pid)))
        old = [c for t, c in seen if t <= now - quiet_s]
        with Sink.lock:
            idle_sink = now - Sink.last >= quiet_s
        if old and idle_sink and seen[-1][1] - old[-1] <= 0.02 * quiet_s + 0.011:
            return
        if now > end:
            raise SystemExit(
                f"pid {p.pid} never went quiet (sink idle {now - Sink.last:.1f} s, CPU "
                f"{seen[-1][1] - (old[-1] if old else seen[0][1]):.2f} s in the last {quiet_s} s): "
                "the cycle does not fit the interval (--interval)")
        seen = [(t, c) for t, c in seen if t > now - 2 * quiet_s]
        time.sleep(0.05)


def wait_scrapes(n, timeout_s=None):
    end = time.monotonic() + (timeout_s or INTERVAL * 4)
    while Upstream.scrapes < n:
        if time.monotonic() > end:
            raise SystemExit(f"upstream scrape {n} never came")
        time.sleep(0.05)


# ---------------------------------------------------------------- part A: push
def push_run(tool, i, up_port):
    sink_take()
    port = free_port()
    if tool == "metric-gate":
        rw = os.path.join(WORK, "mg-remote-write.yml")
        with open(rw, "w") as f:
            f.write(
                f"interval: {INTERVAL}s\n"
                f"external_labels: {{job: ingress, instance: '127.0.0.1:{up_port}'}}\n"
                f"remote_write:\n- url: http://127.0.0.1:{SINK_PORT}/api/v1/write\n"
                "  name: sink\n"
                "  queue_config: {capacity: 200000}\n"
            )
        cmd = [MG, "-H", f"http://127.0.0.1:{up_port}/metrics", "-p", str(port),
               "--listen-address", "127.0.0.1", "--relabel", RELABEL,
               "--remote-write.config-file", rw, "--log-level", "warn"]
        health = "/-/healthy"
    else:
        sc = os.path.join(WORK, "vm-scrape.yml")
        with open(sc, "w") as f:
            f.write(
                f"global:\n  scrape_interval: {INTERVAL}s\n  scrape_timeout: {INTERVAL}s\n"
                # stream_parse: vmagent's mode for targets with millions of series. Without it,
                # Debian's vmagent 1.79 spends minutes of CPU on the first scrape of this payload
                # (counting the series it added) before it sends anything.
                "scrape_configs:\n- job_name: ingress\n  stream_parse: true\n"
                f"  static_configs: [{{targets: ['127.0.0.1:{up_port}']}}]\n"
                "  metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n"
            )
        tmp = os.path.join(WORK, f"vmdata-{i}")
        cmd = ["vmagent", f"-httpListenAddr=127.0.0.1:{port}", f"-promscrape.config={sc}",
               "-promscrape.maxScrapeSize=1GB",
               f"-remoteWrite.url=http://127.0.0.1:{SINK_PORT}/api/v1/write",
               f"-remoteWrite.tmpDataPath={tmp}", "-loggerLevel=ERROR"]
        health = "/health"
    load0 = loadavg()
    base = Upstream.scrapes
    p = start(cmd, f"{tool}.push.{i}.log")
    try:
        wait_http(port, health)
        # Warm-up: the first cycle (cold caches, first allocations) is not measured.
        wait_scrapes(base + 1)
        wait_quiet(p)
        t0, c0, s0 = time.monotonic(), cpu_s(p.pid), Upstream.scrapes
        sink_take()
        wait_scrapes(s0 + CYCLES)
        wait_quiet(p)
        t1, c1, s1 = time.monotonic(), cpu_s(p.pid), Upstream.scrapes
        bodies = sink_take(since=0.0)
        rss_now, hwm = status_kb(p.pid, "VmRSS"), status_kb(p.pid, "VmHWM")
        own = get_text(port, "/-/metrics" if tool == "metric-gate" else "/metrics")
    finally:
        stop(p)
    with open(os.path.join(WORK, f"{tool}.push.{i}.metrics"), "w") as f:
        f.write(own)
    counted = count_bodies(bodies)
    r = dict(tool=tool, run=i, cpu_s=c1 - c0, wall_s=t1 - t0, scrapes=s1 - s0,
             rss_kb=rss_now, hwm_kb=hwm, load_before=load0, load_after=loadavg(), **counted)
    log(f"push {tool} run {i}: {r['scrapes']} scrapes, {r['samples']} samples, {r['bytes']} bytes, "
        f"cpu {r['cpu_s']:.2f} s, RSS {rss_now // 1024} MiB (peak {hwm // 1024} MiB), load {r['load_after']}")
    if tool == "metric-gate" and i == 1:
        global LOAD_BODIES
        LOAD_BODIES = [b for _, b, ct in bodies if count_v1(snappy.uncompress(b))[1] > 0]
    return r


# ---------------------------------------------------------------- part B: forwarding
LOAD_BODIES = []


def loader(port, path, bodies, seconds, stats):
    """Sends the bodies over one keep-alive connection, in a loop, for `seconds`."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdr = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "bench-loader"}
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        body, n = bodies[k % len(bodies)]
        k += 1
        while True:
            c.request("POST", path, body=body, headers=hdr)
            r = c.getresponse()
            r.read()
            if r.status in (200, 204):
                with stats["lock"]:
                    stats["samples"] += n
                    stats["requests"] += 1
                break
            with stats["lock"]:
                stats["refused"] += 1
            if r.status not in (429, 503):
                raise SystemExit(f"receiver answered {r.status}")
            time.sleep(0.2)
    c.close()


def recv_run(tool, i, up_port):
    sink_take()
    port = free_port()
    if tool == "metric-gate":
        rw = os.path.join(WORK, "mg-forward.yml")
        with open(rw, "w") as f:
            f.write(
                "interval: 1h\nremote_write:\n"
                f"- url: http://127.0.0.1:{SINK_PORT}/api/v1/write\n  name: sink\n"
                "  queue_config: {capacity: 2000000}\n"
            )
        cmd = [MG, "-H", f"http://127.0.0.1:{up_port}/tiny", "-p", str(port),
               "--listen-address", "127.0.0.1", "--remote-write.config-file", rw,
               "--remote-write.receiver", "--log-level", "warn"]
        health, path = "/-/healthy", "/api/v1/write"
    else:
        tmp = os.path.join(WORK, f"vmfwd-{i}")
        cmd = ["vmagent", f"-httpListenAddr=127.0.0.1:{port}",
               f"-remoteWrite.url=http://127.0.0.1:{SINK_PORT}/api/v1/write",
               f"-remoteWrite.tmpDataPath={tmp}", "-loggerLevel=ERROR"]
        health, path = "/health", "/api/v1/write"
    bodies = [(b, count_v1(snappy.uncompress(b))[1]) for b in LOAD_BODIES]
    load0 = loadavg()
    p = start(cmd, f"{tool}.recv.{i}.log")
    try:
        wait_http(port, health)
        time.sleep(1.0)
        wait_quiet(p, quiet_s=1.0)
        sink_take()
        stats = dict(lock=threading.Lock(), samples=0, requests=0, refused=0)
        t0, c0 = time.monotonic(), cpu_s(p.pid)
        threads = [threading.Thread(target=loader, args=(port, path, bodies, RECV_SECONDS, stats))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_sent = time.monotonic()
        wait_quiet(p, quiet_s=1.0, timeout_s=120)
        with Sink.lock:
            t_last = Sink.last
        c1 = cpu_s(p.pid)
        got = sink_take(since=0.0)
        rss_now, hwm = status_kb(p.pid, "VmRSS"), status_kb(p.pid, "VmHWM")
    finally:
        stop(p)
    counted = count_bodies(got)
    r = dict(tool=tool, run=i, cpu_s=c1 - c0, wall_s=max(t_last, t_sent) - t0, sent_samples=stats["samples"],
             sent_requests=stats["requests"], refused=stats["refused"], rss_kb=rss_now, hwm_kb=hwm,
             load_before=load0, load_after=loadavg(), **counted)
    log(f"forward {tool} run {i}: sent {r['sent_samples']} samples ({r['refused']} refused and retried), "
        f"sink got {r['samples']} in {r['wall_s']:.1f} s, cpu {r['cpu_s']:.2f} s, peak RSS {hwm // 1024} MiB")
    return r


# ---------------------------------------------------------------- report
def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if xs else float("nan")


def spread(xs, fmt):
    return f"{fmt(med(xs))} ({fmt(min(xs))} - {fmt(max(xs))})" if xs else "n/a"


def report(res, env):
    """The markdown section for docs/benchmarks.md."""
    L = []
    A = L.append
    n_in = int(env.get("payload_series", "0"))
    args = env.get("args", "").strip()
    A(f"Generated by `scripts/bench_remote_write.sh{' ' + args if args else ''}` on {env.get('date', '?')} "
      f"(commit `{env.get('git', '?')}`, "
      f"{env.get('cpu', '?')}, {env.get('nproc', '?')} cores shared with other jobs). Load average (1/5/15 min): "
      f"{res['load_start']} at the start, {res['load_end']} at the end; per run below. Payload: "
      f"`gen_ingress --ingresses {env.get('size', '?').split('x')[0]} --paths {env.get('size', '?').split('x')[-1]}`, "
      f"{int(env.get('payload_bytes', '0')) / 1e6:.1f} MB, {n_in:,} series. Peers: {env.get('vmagent_version', '?')}.")
    A("")
    A("### Push: scrape, `labeldrop: path`, remote write")
    A("")
    A(f"Each tool scrapes the same static upstream (a local server sending the payload) every {res['interval_s']} s "
      "and remote-writes 1.0 to a local sink that answers 204. Runs alternate (metric-gate, vmagent, metric-gate, "
      f"...), {res['runs']} each; in every run the first cycle is a warm-up and the next {res['cycles']} whole "
      f"cycles are measured (a cycle ends when the sink and the tool have both been quiet for {res['quiet_s']} s). CPU is the "
      "tool's user+sys from `/proc/PID/stat` over the window; samples and bytes are what the sink received in it "
      "(request bodies, snappy-compressed; decoded afterwards to count samples). RSS is `VmRSS` at the end of the "
      "window, peak is `VmHWM`. Medians over the runs, min - max in brackets.")
    A("")
    A("| tool | samples delivered per scrape | CPU per scrape | samples per CPU-second | input series per CPU-second | bytes on the wire per sample | requests per scrape | RSS / peak RSS |")
    A("|---|---|---|---|---|---|---|---|")
    for tool in ("metric-gate", "vmagent"):
        rs = [r for r in res["push"] if r["tool"] == tool]
        if not rs:
            continue
        per = lambda k: [r[k] / max(r["scrapes"], 1) for r in rs]
        sps = [r["samples"] / r["cpu_s"] for r in rs if r["cpu_s"] > 0]
        ips = [n_in * r["scrapes"] / r["cpu_s"] for r in rs if r["cpu_s"] > 0]
        bps = [r["bytes"] / r["samples"] for r in rs if r["samples"]]
        A(f"| {tool} | {med(per('samples')):,.0f} | {spread(per('cpu_s'), lambda x: f'{x:.2f} s')} | "
          f"**{spread(sps, lambda x: f'{x / 1e3:.0f}k')}** | {spread(ips, lambda x: f'{x / 1e3:.0f}k')} | "
          f"{spread(bps, lambda x: f'{x:.1f}')} | {med(per('requests')):.0f} | "
          f"{med([r['rss_kb'] for r in rs]) / 1024:.0f} / {med([r['hwm_kb'] for r in rs]) / 1024:.0f} MiB |")
    A("")
    mg = [r for r in res["push"] if r["tool"] == "metric-gate"]
    vm = [r for r in res["push"] if r["tool"] == "vmagent"]
    if mg and vm:
        per = lambda rs, k: med([r[k] / max(r["scrapes"], 1) for r in rs])
        A(f"Per scrape of the same upstream, metric-gate sent {per(mg, 'bytes') / 1e6:.1f} MB "
          f"({per(mg, 'samples'):,.0f} summed samples) for {per(mg, 'cpu_s'):.2f} CPU-seconds; vmagent sent "
          f"{per(vm, 'bytes') / 1e6:.1f} MB ({per(vm, 'samples'):,.0f} samples: Debian's vmagent 1.79 has no stream "
          "aggregation, so every series that differed only in `path` goes out as it came, and the backend has to "
          f"sum them) for {per(vm, 'cpu_s'):.2f} CPU-seconds: {per(vm, 'bytes') / per(mg, 'bytes'):.1f}x the bytes "
          f"and {per(vm, 'cpu_s') / per(mg, 'cpu_s'):.1f}x the CPU of metric-gate. Per sample delivered, vmagent "
          "is the cheaper encoder; metric-gate's scrape itself (parse, relabel, sum) is a small part of its cycle "
          "(see the pipeline figures above), the rest is the push path.")
        A("")
    A("### Forwarding received remote write")
    A("")
    A(f"Each tool receives remote write 1.0 from a loader (4 keep-alive connections, {res['recv_seconds']:.0f} s, "
      "sending in a loop the 2000-sample requests metric-gate pushed in the first run above) and forwards it to the "
      "sink: metric-gate with `--remote-write.receiver` (queue capacity 2,000,000 samples), vmagent on its "
      "`/api/v1/write` with `-remoteWrite.url`. Neither relabels. The window runs from the first request until "
      "the sink has received the last forwarded sample; CPU is the forwarder's user+sys over it. The loader and "
      "the sink run on the same 2 cores, so the wall-clock rate is a floor for both tools alike.")
    A("")
    A("| tool | samples forwarded | samples per second (wall) | samples per CPU-second | bytes on the wire per sample (out) | refused and retried | peak RSS |")
    A("|---|---|---|---|---|---|---|")
    for tool in ("metric-gate", "vmagent"):
        rs = [r for r in res["forward"] if r["tool"] == tool]
        if not rs:
            continue
        A(f"| {tool} | {med([r['samples'] for r in rs]):,.0f} (sent {med([r['sent_samples'] for r in rs]):,.0f}) | "
          f"{spread([r['samples'] / r['wall_s'] for r in rs], lambda x: f'{x / 1e3:.0f}k')} | "
          f"**{spread([r['samples'] / r['cpu_s'] for r in rs if r['cpu_s'] > 0], lambda x: f'{x / 1e3:.0f}k')}** | "
          f"{spread([r['bytes'] / r['samples'] for r in rs if r['samples']], lambda x: f'{x:.1f}')} | "
          f"{sum(r['refused'] for r in rs)} | {med([r['hwm_kb'] for r in rs]) / 1024:.0f} MiB |")
    A("")
    A("Commands (ports are picked at random; `UP` is the upstream, `SINK` the sink, `RW` and `SC` the files below):")
    A("")
    A("```sh")
    A(f"metric-gate -H http://UP/metrics -p PORT --listen-address 127.0.0.1 --relabel '{RELABEL}' \\")
    A("    --remote-write.config-file RW --log-level warn")
    A("vmagent -httpListenAddr=127.0.0.1:PORT -promscrape.config=SC -promscrape.maxScrapeSize=1GB \\")
    A("    -remoteWrite.url=http://SINK/api/v1/write -remoteWrite.tmpDataPath=TMP -loggerLevel=ERROR")
    A("# forwarding:")
    A("metric-gate -H http://UP/tiny -p PORT --listen-address 127.0.0.1 --remote-write.config-file RW_FORWARD \\")
    A("    --remote-write.receiver --log-level warn")
    A("vmagent -httpListenAddr=127.0.0.1:PORT -remoteWrite.url=http://SINK/api/v1/write -remoteWrite.tmpDataPath=TMP -loggerLevel=ERROR")
    A("```")
    A("")
    A("```yaml")
    A("# RW (metric-gate, push)")
    A(f"interval: {res['interval_s']}s")
    A("external_labels: {job: ingress, instance: 'UP'}   # the labels vmagent adds, so both send the same series")
    A("remote_write:")
    A("- url: http://SINK/api/v1/write")
    A("  name: sink")
    A("  queue_config: {capacity: 200000}                  # one scrape is 86k samples")
    A("# RW_FORWARD (metric-gate, forwarding; the push loop scrapes a one-line upstream once at start)")
    A("interval: 1h")
    A("remote_write:")
    A("- url: http://SINK/api/v1/write")
    A("  name: sink")
    A("  queue_config: {capacity: 2000000}")
    A("# SC (vmagent)")
    A(f"global: {{scrape_interval: {res['interval_s']}s, scrape_timeout: {res['interval_s']}s}}")
    A("scrape_configs:")
    A("- job_name: ingress")
    A("  stream_parse: true      # without it, vmagent 1.79's first scrape of this payload takes minutes of CPU")
    A("  static_configs: [{targets: ['UP']}]")
    A("  metric_relabel_configs:")
    A("  - action: labeldrop")
    A("    regex: path")
    A("```")
    A("")
    A("Per run (load average after the run):")
    A("")
    A("```")
    for r in res["push"]:
        A(f"push    {r['tool']:<11} run {r['run']}: {r['scrapes']} scrapes, {r['samples']} samples, {r['bytes']} bytes "
          f"in {r['requests']} requests, cpu {r['cpu_s']:.2f} s, RSS {r['rss_kb'] // 1024} MiB, peak {r['hwm_kb'] // 1024} MiB, "
          f"load {r['load_after']}")
    for r in res["forward"]:
        A(f"forward {r['tool']:<11} run {r['run']}: sent {r['sent_samples']}, sink got {r['samples']} samples, "
          f"{r['bytes']} bytes, in {r['wall_s']:.1f} s, cpu {r['cpu_s']:.2f} s, refused {r['refused']}, "
          f"peak {r['hwm_kb'] // 1024} MiB, load {r['load_after']}")
    A("```")
    return "\n".join(L) + "\n"


def main():
    global SINK_PORT
    if len(sys.argv) > 2 and sys.argv[2] == "report":
        env = {}
        for line in open(os.path.join(WORK, "machine.env")):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
        res = json.load(open(os.path.join(WORK, "results.json")))
        sys.stdout.write(report(res, env))
        return
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(143)))
    up = serve(Upstream)
    sink = serve(Sink)
    SINK_PORT = sink.server_address[1]
    up_port = up.server_address[1]
    results = dict(push=[], forward=[], load_start=loadavg(), interval_s=INTERVAL, cycles=CYCLES, quiet_s=QUIET_S,
                   runs=RUNS, recv_seconds=RECV_SECONDS)
    try:
        for i in range(1, RUNS + 1):
            for tool in ("metric-gate", "vmagent"):
                results["push"].append(push_run(tool, i, up_port))
        for i in range(1, RUNS + 1):
            for tool in ("metric-gate", "vmagent"):
                results["forward"].append(recv_run(tool, i, up_port))
    finally:
        stop_all()
        results["load_end"] = loadavg()
        with open(os.path.join(WORK, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        up.shutdown()
        sink.shutdown()


if __name__ == "__main__":
    main()
