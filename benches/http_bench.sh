#!/usr/bin/env bash
# The HTTP door beside MLServer's REST, on the same machine with the same Telco row, in one run:
# 1-row POST /v1/score and V2 REST infer against churn, V2 REST infer against MLServer serving the
# scikit-learn peer of the bundled model (benches/http_vs_mlserver.py), each with wrk at
# concurrency 1 (one connection) and 32 (32 keep-alive connections, 2 threads); then the servers'
# peak RSS. wrk, the servers and Python share the machine's cores, as in every bench here.
# Usage: bash benches/http_bench.sh [seconds per scenario, default 10]
# Needs wrk (Debian package wrk) and the bench venv (made on first use: mlserver, scikit-learn;
# uvloop pinned to 0.21: MLServer 1.7.1 does not start with uvloop 0.22 or later).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
VENV=${CHURN_BENCH_VENV:-$HOME/.cache/churn-bench-venv}
if [ ! -x "$VENV/bin/mlserver" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q mlserver==1.7.1 mlserver-sklearn==1.7.1 scikit-learn pandas "uvloop==0.21.0"
fi
[ -x target/release/churn ] || cargo build --release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$VENV/bin/python" benches/http_vs_mlserver.py data/telco_customer_churn.csv "$work"
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BODY")):read("*a")
LUA

run() {  # run LABEL URL BODY CONNECTIONS
  local label=$1 url=$2 body=$3 c=$4 t=1
  [ "$c" -gt 1 ] && t=2
  local out
  out=$(BODY=$body wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$work/post.lua" "$url")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr -s ' ' | tr '\n' ';' || true)
  printf '%-44s concurrency %2d: %10s req/s  p50 %8s  p99 %8s %s\n' "$label" "$c" "$rps" "$p50" "$p99" "$errors"
}

rss() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

# churn: gRPC on a free port, HTTP on 18180.
./target/release/churn serve --models models --addr 127.0.0.1:0 --http-addr 127.0.0.1:18180 --metrics-addr off \
  >"$work/churn.log" 2>&1 &
churn_pid=$!
for _ in $(seq 50); do curl -sf 127.0.0.1:18180/v2/health/ready >/dev/null && break; sleep 0.1; done
curl -sf -H 'content-type: application/json' --data-binary @"$work/v1.json" 127.0.0.1:18180/v1/score >/dev/null
echo "== churn $(./target/release/churn --version 2>/dev/null || true), ${secs} s per scenario"
for c in 1 32; do
  run "churn POST /v1/score (1 row)" http://127.0.0.1:18180/v1/score "$work/v1.json" "$c"
  run "churn V2 REST infer (1 row, JSON)" http://127.0.0.1:18180/v2/models/telco/infer "$work/v2_churn.json" "$c"
done
echo "churn server peak RSS: $(( $(rss $churn_pid) / 1024 )) MB"
kill $churn_pid; wait $churn_pid 2>/dev/null || true

# MLServer: its defaults (ML_WORKERS unset: one inference worker process beside the front
# process; ML_WORKERS=0 scores in the front process), REST on 18181.
cat >"$work/mlserver/settings.json" <<JSON
{"http_port": 18181, "grpc_port": 18182, "metrics_port": 18183, "debug": false${ML_WORKERS:+, \"parallel_workers\": $ML_WORKERS}}
JSON
(cd "$work/mlserver" && exec "$VENV/bin/mlserver" start . >"$work/mlserver.log" 2>&1) &
ml_pid=$!
for _ in $(seq 600); do curl -sf 127.0.0.1:18181/v2/models/telco/ready >/dev/null && break; sleep 0.1; done
curl -sf -H 'content-type: application/json' --data-binary @"$work/v2_mlserver.json" \
  127.0.0.1:18181/v2/models/telco/infer >/dev/null || { echo "MLServer did not answer:"; tail -20 "$work/mlserver.log"; exit 1; }
echo "== MLServer $("$VENV/bin/pip" show mlserver | awk '/^Version/{print $2}') (scikit-learn, parallel_workers ${ML_WORKERS:-default}), ${secs} s per scenario"
for c in 1 32; do
  run "MLServer V2 REST infer (1 raw row, pipeline)" http://127.0.0.1:18181/v2/models/telco/infer "$work/v2_mlserver.json" "$c"
  run "MLServer V2 REST infer (1 encoded row)" http://127.0.0.1:18181/v2/models/telco_encoded/infer "$work/v2_mlserver_encoded.json" "$c"
done
# MLServer runs as several processes: the peak RSS of each, summed.
total=0
for p in $ml_pid $(pgrep -P $ml_pid) $(for q in $(pgrep -P $ml_pid); do pgrep -P "$q"; done); do
  [ -r /proc/$p/status ] && total=$(( total + $(rss "$p") ))
done
echo "MLServer peak RSS (all its processes): $(( total / 1024 )) MB"
