#!/usr/bin/env bash
# Runs `holdfast bench` side by side against holdfast (SQLite, durable), holdfast
# (--storage memory), the no-op baseline and moto's server, then measures cost growth (backlog
# of 0 / 100k / 1M messages, RSS per queued message, restart time with 1M messages on disk) and
# 10k queues with 5k idle long polls. Raw results: target/bench/*.json; tables:
# target/bench/results.md (also printed).
#
# Usage: scripts/bench-compare.sh [--quick] [--no-side] [--no-moto] [--no-cost] [--no-idle] [--tables-only]
#   --quick        short runs (3 s; backlogs 0 / 10k / 100k; 1,000 queues / 500 polls): ~5 minutes
#   (full)         10 s runs; backlogs 0 / 100k / 1M; 10,000 queues / 5,000 polls: ~15-20 minutes
#   --no-X         skip a section (side-by-side, moto, cost growth, idle); its earlier results stay
#   --tables-only  only rebuild target/bench/results.md from the JSON already there
#
# Every server listens on loopback only and every run is bounded in time. The load generator and
# the server share this machine's cores: each result reports both processes' CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0 SIDE=1 MOTO=1 COST=1 IDLE=1 TABLES_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --no-side) SIDE=0 ;;
        --tables-only) TABLES_ONLY=1 ;;
        --no-moto) MOTO=0 ;;
        --no-cost) COST=0 ;;
        --no-idle) IDLE=0 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    D=3 MOTO_D=2 BACKLOGS="0 10000 100000" BIG=100000 QUEUES=1000 POLLS=500 IDLE_D=10
else
    D=10 MOTO_D=5 BACKLOGS="0 100000 1000000" BIG=1000000 QUEUES=10000 POLLS=5000 IDLE_D=25
fi
C=32
MOTO_C=4
OUT=target/bench
BIN=target/release/holdfast
PORT_BASE=19324
mkdir -p "$OUT"
rm -rf "$OUT"/data-*
# A section's earlier results are removed only when it runs again.
if [ "$TABLES_ONLY" = 1 ]; then
    SIDE=0 MOTO=0 COST=0 IDLE=0
else
    rm -f "$OUT"/fsync-*.json "$OUT"/settings.json
    [ "$SIDE" = 1 ] && rm -f "$OUT"/{durable,memory,baseline}-*.{json,err,log}
    [ "$MOTO" = 1 ] && rm -f "$OUT"/moto-*.{json,err,log}
    [ "$COST" = 1 ] && rm -f "$OUT"/backlog-*.{json,err,log} "$OUT"/restart.json
    [ "$IDLE" = 1 ] && rm -f "$OUT"/idle-*.{json,err,log}
fi

# Each long poll holds a socket on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$TABLES_ONLY" = 0 ]; then
    echo "== building (release)"
    cargo build --release -p holdfast --quiet
    echo "{\"quick\": $QUICK, \"duration\": $D, \"concurrency\": $C}" >"$OUT/settings.json"
fi

PID=""
URL=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

# start NAME CMD...: runs CMD in the background and waits for it to accept requests.
start() {
    local name=$1
    shift
    "$@" >"$OUT/$name.log" 2>&1 &
    PID=$!
    URL=""
    for _ in $(seq 1 1200); do
        URL=$(grep -o -m1 'listening on http://[0-9.:]*' "$OUT/$name.log" | sed 's/listening on //' || true)
        [ -n "$URL" ] && break
        kill -0 "$PID" 2>/dev/null || { echo "$name exited:"; cat "$OUT/$name.log"; exit 1; }
        sleep 0.05
    done
    [ -n "$URL" ] || { echo "$name did not start"; exit 1; }
}

stop() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}

# Other processes on this machine (builds, tests) take CPU and disk from both sides and depress
# every figure. Before each run, wait (at most 60 s, and at most QUIET_BUDGET seconds over the
# whole script) for a second in which the machine is less than 30% busy; each result records
# how busy the rest of the machine was during the run anyway (machine.others_pct).
QUIET_BUDGET=${QUIET_BUDGET:-300}
busy_pct() {
    local a b
    a=$(head -1 /proc/stat)
    sleep 1
    b=$(head -1 /proc/stat)
    python3 -c "
a = [int(x) for x in '$a'.split()[1:9]]; b = [int(x) for x in '$b'.split()[1:9]]
d = [y - x for x, y in zip(a, b)]
print(int(100 * (sum(d) - d[3] - d[4]) / max(1, sum(d)) * $(nproc)))"
}
wait_quiet() {
    local waited=0 busy
    while [ "$QUIET_BUDGET" -gt 0 ] && [ "$waited" -lt 60 ]; do
        busy=$(busy_pct)
        [ "$busy" -lt 30 ] && return 0
        waited=$((waited + 1))
        QUIET_BUDGET=$((QUIET_BUDGET - 1))
    done
    [ "$waited" -gt 0 ] && echo "   (machine still ${busy:-?}% busy after waiting ${waited} s; running anyway)"
    return 0
}

# fsync latency of the disk holding target/: the floor of every durable commit. Appending and
# fsyncing (the file grows: the filesystem journal commits too) and overwriting in place with
# fdatasync (what SQLite's WAL does once it has reached its size) cost very different amounts.
fsync_probe() {
    [ "$TABLES_ONLY" = 1 ] && return 0
    python3 - "$OUT/fsync-$1.json" <<'EOF'
import json, os, sys, time
path = os.path.join(os.path.dirname(sys.argv[1]), "fsync.probe")
result = {}
for mode in ["append_fsync", "overwrite_fdatasync"]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"x" * 65536 * 4)
    os.fsync(fd)
    samples = []
    for i in range(200):
        if mode == "append_fsync":
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fsync(fd)
        else:
            os.pwrite(fd, b"y" * 4096, (i % 64) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
        samples.append((time.perf_counter() - t) * 1000)
    os.close(fd)
    samples.sort()
    result[mode] = {"p50_ms": samples[100], "p99_ms": samples[198]}
os.unlink(path)
json.dump(result, open(sys.argv[1], "w"))
print("   4 KiB append+fsync p50 %.2f ms, p99 %.2f ms; overwrite+fdatasync p50 %.2f ms, p99 %.2f ms" % (
    result["append_fsync"]["p50_ms"], result["append_fsync"]["p99_ms"],
    result["overwrite_fdatasync"]["p50_ms"], result["overwrite_fdatasync"]["p99_ms"]))
EOF
}

# bench RESULT ARGS...: one `holdfast bench` run against $URL, JSON to $OUT/RESULT.json.
bench() {
    local result=$1
    shift
    wait_quiet
    # The exit status says "aborted" or "lost messages"; the JSON says it too, and more.
    "$BIN" bench --endpoint-url "$URL" --server-pid "$PID" --json "$@" >"$OUT/$result.json" 2>"$OUT/$result.err" || true
    python3 - "$OUT/$result.json" "$result" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"   {sys.argv[2]:<30} no result ({e}); see {sys.argv[1][:-5]}.err"); sys.exit(0)
lat = r.get("latency_ms", {})
p99 = lambda k: f"{lat[k]['p99_ms']:.1f}" if k in lat else "-"
srv = r.get("server") or {}
extra = ""
if r.get("aborted"):
    extra += "  ABORTED: " + r["aborted"]
if (r.get("reconcile") or {}).get("lost"):
    extra += f"  reconcile: {r['reconcile']['lost']:,} lost"
print(f"   {sys.argv[2]:<30} {r['messages_per_s']:>9,.0f} msgs/s  errors {r['errors']:<4} "
      f"p99 ms send {p99('send')} recv {p99('receive')} delivery {p99('delivery')}  "
      f"CPU server {srv.get('cpu_pct', 0):.0f}% client {r['client']['cpu_pct']:.0f}% "
      f"others {r['machine']['others_pct']:.0f}%{extra}")
EOF
}

# The side-by-side scenarios against the current target.
scenarios() {
    local target=$1 c=$2 d=$3 drain=()
    # The baseline's queue is never empty: do not drain it.
    [ "$target" = baseline ] && drain=(--drain-timeout 0)
    bench "$target-send" send -c "$c" -d "$d"
    bench "$target-send-batch" send-batch -c "$c" -d "$d"
    bench "$target-roundtrip" roundtrip -c "$c" -d "$d" "${drain[@]}"
    bench "$target-roundtrip-batch" roundtrip --batch --delete-batch -c "$c" -d "$d" "${drain[@]}"
    bench "$target-latency" latency --rate 1000 -c "$c" -d "$d"
}

echo "== disk"
fsync_probe start

if [ "$SIDE" = 1 ]; then
    echo "== side by side: $C producers / $C consumers, ${D} s per run"
    echo "-- holdfast durable (SQLite, fresh data dir)"
    rm -rf "$OUT/data-durable"
    start durable "$BIN" serve --bind "127.0.0.1:$PORT_BASE" --data-dir "$OUT/data-durable"
    scenarios durable "$C" "$D"
    stop

    echo "-- holdfast --storage memory"
    start memory "$BIN" serve --bind "127.0.0.1:$((PORT_BASE + 1))" --storage memory
    scenarios memory "$C" "$D"
    stop

    echo "-- baseline (no-op, canned answers)"
    start baseline "$BIN" baseline --bind "127.0.0.1:$((PORT_BASE + 2))"
    scenarios baseline "$C" "$D"
    stop
fi

if [ "$MOTO" = 1 ]; then
    echo "-- moto_server ($MOTO_C producers / $MOTO_C consumers, ${MOTO_D} s per run: it is much slower)"
    if [ ! -x "$OUT/venv/bin/moto_server" ]; then
        python3 -m venv "$OUT/venv"
        "$OUT/venv/bin/pip" install --quiet 'moto[server]'
    fi
    port=$((PORT_BASE + 3))
    "$OUT/venv/bin/moto_server" -p "$port" >"$OUT/moto.log" 2>&1 &
    PID=$!
    URL="http://127.0.0.1:$port"
    for _ in $(seq 1 200); do curl -s -o /dev/null "$URL" && break; sleep 0.1; done
    scenarios moto "$MOTO_C" "$MOTO_D"
    stop
fi

if [ "$COST" = 1 ]; then
    for storage in sqlite memory; do
        echo "== cost growth ($storage): roundtrip with a backlog of $BACKLOGS messages"
        for n in $BACKLOGS; do
            data="$OUT/data-backlog-$storage-$n"
            rm -rf "$data"
            start "backlog-$storage-$n" "$BIN" serve --bind "127.0.0.1:$((PORT_BASE + 4))" --storage "$storage" --data-dir "$data"
            keep=()
            # The biggest SQLite backlog stays on disk for the restart measurement.
            [ "$storage" = sqlite ] && [ "$n" = "$BIG" ] && keep=(--queue backlog --keep)
            bench "backlog-$storage-$n" backlog --backlog "$n" -c "$C" -d "$D" "${keep[@]}"
            stop
            [ ${#keep[@]} -gt 0 ] || rm -rf "$data"
        done
    done

    echo "== restart with $BIG messages on disk (SQLite)"
    python3 - "$BIN" "$OUT/data-backlog-sqlite-$BIG" "127.0.0.1:$((PORT_BASE + 5))" "$OUT/restart.json" <<'EOF'
import json, subprocess, sys, time, urllib.error, urllib.request
binary, data_dir, bind, out = sys.argv[1:]
started = time.monotonic()
proc = subprocess.Popen([binary, "serve", "--bind", bind, "--data-dir", data_dir],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
result = {}

def call(target, payload):
    request = urllib.request.Request(f"http://{bind}/", data=json.dumps(payload).encode(), headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{target}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)

queue = f"http://{bind}/000000000000/backlog"
try:
    for line in proc.stdout:
        if line.startswith("listening on"):
            result["listening_s"] = time.monotonic() - started
            break
    while time.monotonic() - started < 60:
        try:
            if call("ReceiveMessage", {"QueueUrl": queue, "MaxNumberOfMessages": 1}).get("Messages"):
                result["first_receive_s"] = time.monotonic() - started
                break
        except urllib.error.HTTPError as e:
            sys.exit(f"   restart: ReceiveMessage failed: {e.code} {e.read()[:200]!r}")
        except OSError:
            time.sleep(0.01)
    attributes = call("GetQueueAttributes", {"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages"]})
    result["messages_on_disk"] = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
finally:
    proc.terminate()
    proc.wait()
json.dump(result, open(out, "w"), indent=2)
print("   " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
EOF
    rm -rf "$OUT/data-backlog-sqlite-$BIG"
fi

if [ "$IDLE" = 1 ]; then
    for storage in sqlite memory; do
        echo "== idle ($storage): $QUEUES queues, $POLLS long polls held for ${IDLE_D} s"
        rm -rf "$OUT/data-idle"
        start "idle-$storage" "$BIN" serve --bind "127.0.0.1:$((PORT_BASE + 6))" --storage "$storage" --data-dir "$OUT/data-idle"
        bench "idle-$storage" idle --queues "$QUEUES" --polls "$POLLS" -c "$C" -d "$IDLE_D" --request-timeout 30
        stop
    done
    rm -rf "$OUT/data-idle"
fi

echo "== disk, again"
fsync_probe end

echo "== tables"
python3 - "$OUT" "$QUICK" "$C" "$D" "$MOTO_C" "$MOTO_D" "$BIG" <<'EOF' | tee "$OUT/results.md"
import json, os, sys
out, quick, c, d, moto_c, moto_d, big = sys.argv[1:]
big = int(big)

def load(name):
    try:
        return json.load(open(os.path.join(out, name + ".json")))
    except Exception:
        return None

def n(x):
    return "-" if x is None else f"{x:,.0f}"

def ms(r, op, q="p99_ms"):
    if not r or op not in r.get("latency_ms", {}):
        return "-"
    return f"{r['latency_ms'][op][q]:.2f}"

def cpu(r):
    if not r:
        return "-"
    s = r.get("server") or {}
    return f"{s.get('cpu_pct', 0):.0f}% / {r['client']['cpu_pct']:.0f}%"

fs = [(w, load(f"fsync-{w}")) for w in ["start", "end"]]
fs = [(w, f) for w, f in fs if f and "append_fsync" in f]
if fs:
    print("4 KiB fsync latency on the disk under target/ (the floor of a durable commit), at the start and the end of the run:\n")
    print("| when | append + fsync p50 / p99 | overwrite + fdatasync p50 / p99 |")
    print("|---|---:|---:|")
    for w, f in fs:
        a, o = f["append_fsync"], f["overwrite_fdatasync"]
        print(f"| {w} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms | {o['p50_ms']:.2f} / {o['p99_ms']:.2f} ms |")
    print()
settings = load("settings") or {}
c, d = settings.get("concurrency", c), settings.get("duration", d)
print(f"### Side by side ({c} producers + {c} consumers, {d} s per run; moto: {moto_c} + {moto_c}, {moto_d} s)\n")
targets = [t for t in ["durable", "memory", "baseline", "moto"] if load(t + "-send")]
label = {"durable": "holdfast SQLite", "memory": "holdfast memory", "baseline": "no-op baseline", "moto": "moto_server"}
print("| scenario | " + " | ".join(label[t] for t in targets) + " |")
print("|---|" + "---:|" * len(targets))
rows = [
    ("send: msgs/s", "send", lambda r: n(r["messages_per_s"])),
    ("send: p50 / p99 ms", "send", lambda r: f"{ms(r, 'send', 'p50_ms')} / {ms(r, 'send')}"),
    ("send-batch (10): msgs/s", "send-batch", lambda r: n(r["messages_per_s"])),
    ("roundtrip single: msgs/s processed", "roundtrip", lambda r: n(r["messages_per_s"])),
    ("roundtrip single: p99 send / receive / delete ms", "roundtrip",
     lambda r: f"{ms(r, 'send')} / {ms(r, 'receive')} / {ms(r, 'delete')}"),
    ("roundtrip single: reconcile", "roundtrip",
     lambda r: (r.get("reconcile") or {}).get("verdict", "-").split(":")[0] +
               f" ({(r.get('reconcile') or {}).get('lost', '-')} lost, {(r.get('reconcile') or {}).get('duplicates', '-')} dup)"),
    ("roundtrip batch+delete-batch: msgs/s processed", "roundtrip-batch", lambda r: n(r["messages_per_s"])),
    ("latency @1,000 msgs/s: delivery p50 / p99 ms", "latency",
     lambda r: f"{ms(r, 'delivery', 'p50_ms')} / {ms(r, 'delivery')}"),
    ("roundtrip single: CPU server / client", "roundtrip", cpu),
    ("roundtrip batch: CPU server / client", "roundtrip-batch", cpu),
    ("roundtrip single: other processes' CPU meanwhile", "roundtrip", lambda r: f"{r['machine']['others_pct']:.0f}%"),
    ("errors (all runs)", None, None),
]
for title, scenario, f in rows:
    cells = []
    for t in targets:
        if scenario is None:
            total = sum((load(f"{t}-{s}") or {}).get("errors", 0) for s in ["send", "send-batch", "roundtrip", "roundtrip-batch", "latency"])
            cells.append(str(total))
            continue
        r = load(f"{t}-{scenario}")
        if t == "baseline" and (title.endswith("reconcile") or scenario == "latency"):
            cells.append("n/a (canned answers)")
            continue
        try:
            cells.append(f(r) if r else "-")
        except Exception:
            cells.append("-")
    print(f"| {title} | " + " | ".join(cells) + " |")

backlogs = sorted({int(f.split("-")[2].split(".")[0]) for f in os.listdir(out) if f.startswith("backlog-") and f.endswith(".json")})
if backlogs:
    print(f"\n### Cost growth: roundtrip (single calls, {c} + {c}) with a backlog\n")
    print("| storage | backlog | preload msgs/s | roundtrip msgs/s | vs empty | receive p50 / p99 ms | server RSS after preload MiB | RSS per queued message |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for storage in ["sqlite", "memory"]:
        empty = load(f"backlog-{storage}-0")
        for b in backlogs:
            r = load(f"backlog-{storage}-{b}")
            if not r:
                continue
            p = r.get("preload") or {}
            vs = f"{100 * r['messages_per_s'] / empty['messages_per_s']:.0f}%" if empty and empty["messages_per_s"] else "-"
            per = p.get("server_rss_bytes_per_message")
            print(f"| {storage} | {b:,} | {n(p.get('messages_per_s')) if b else '-'} | {n(r['messages_per_s'])} | {vs} | "
                  f"{ms(r, 'receive', 'p50_ms')} / {ms(r, 'receive')} | {p.get('server_rss_mib_after', 0):.0f} | "
                  f"{f'{per:.0f} B' if per is not None and b else '-'} |")

restart = load("restart")
if restart:
    print(f"\n### Restart with {restart.get('messages_on_disk', big):,} messages on disk (SQLite)\n")
    print("| to `listening on` | to first successful receive |")
    print("|---:|---:|")
    print(f"| {restart.get('listening_s', float('nan')):.2f} s | {restart.get('first_receive_s', float('nan')):.2f} s |")

idle = [(s, load(f"idle-{s}")) for s in ["sqlite", "memory"] if load(f"idle-{s}")]
if idle:
    print("\n### Idle: queues and long polls held\n")
    print("| storage | queues | long polls | queue creation | server CPU while idle | server RSS | client CPU | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s, r in idle:
        i, srv = r.get("idle") or {}, r.get("server") or {}
        print(f"| {s} | {i.get('queues', 0):,} | {i.get('polls', 0):,} | {i.get('queue_create_s', 0):.1f} s | "
              f"{srv.get('cpu_pct', 0):.1f}% | {srv.get('rss_mib_end', 0):.0f} MiB | {r['client']['cpu_pct']:.1f}% | {r['errors']} |")

print("\n### Targets\n")
print("| target | measured | met |")
print("|---|---:|:-:|")
def target(name, value, ok):
    print(f"| {name} | {value} | {'-' if ok is None else ('yes' if ok else '**no**')} |")
rt, rtb, mem = load("durable-roundtrip"), load("durable-roundtrip-batch"), load("memory-roundtrip")
lat = load("durable-latency")
target("durable roundtrip, single calls, 32+32: ≥ 10,000 msgs/s", n(rt and rt["messages_per_s"]) + " msgs/s", rt and rt["messages_per_s"] >= 10000)
target("durable roundtrip, batches of 10: ≥ 50,000 msgs/s", n(rtb and rtb["messages_per_s"]) + " msgs/s", rtb and rtb["messages_per_s"] >= 50000)
if rt and mem:
    ratio = rt["messages_per_s"] / mem["messages_per_s"]
    target("durable ≥ half of in-memory (roundtrip, single)", f"{100 * ratio:.0f}%", ratio >= 0.5)
e0, eb = load("backlog-sqlite-0"), load(f"backlog-sqlite-{big}")
if e0 and eb:
    ratio = eb["messages_per_s"] / e0["messages_per_s"]
    target(f"throughput with a {big:,} backlog ≥ 80% of empty (SQLite)", f"{100 * ratio:.0f}%", ratio >= 0.8)
if lat:
    target("p99 delivery to a waiting long poll at 1,000 msgs/s < 5 ms (durable)", ms(lat, "delivery") + " ms", lat["latency_ms"].get("delivery", {}).get("p99_ms", 1e9) < 5)
if restart and "first_receive_s" in restart:
    target(f"restart with {restart.get('messages_on_disk', big):,} messages < 10 s (first receive)", f"{restart['first_receive_s']:.2f} s", restart["first_receive_s"] < 10)
EOF
