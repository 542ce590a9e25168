#!/usr/bin/env bash
# Serving benchmark (churn.v1 and the Open Inference Protocol): starts `churn serve` on the bundled models (client and server on this machine),
# runs the load generator over the scenarios below, and reports the server's peak RSS.
# Usage: bash benches/serve_bench.sh [seconds per scenario, default 10]
# MODELS=DIR serves another model repository instead of models/ (its model must be named telco and
# take the Telco columns, e.g. an additive model: DIR/telco/1/model.json).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --quiet --bin churn --example loadgen
log=$(mktemp)
./target/release/churn serve --models "${MODELS:-models}" --addr 127.0.0.1:0 --http-addr off --metrics-addr off >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q "gRPC on" "$log" && break; sleep 0.1; done
addr=http://$(grep -o "gRPC on [0-9.:]*" "$log" | cut -d' ' -f3)
echo "server pid $pid at $addr; RSS at start $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
gen=./target/release/examples/loadgen
$gen --addr "$addr" --method score --concurrency 1 --seconds "$secs"
$gen --addr "$addr" --method score --concurrency 32 --seconds "$secs"
$gen --addr "$addr" --method batch --rows 100 --concurrency 1 --seconds "$secs"
$gen --addr "$addr" --method batch --rows 100 --concurrency 8 --seconds "$secs"
# The Open Inference Protocol (KServe V2) on the same port: ModelInfer with raw tensors.
$gen --addr "$addr" --method infer --rows 1 --concurrency 1 --seconds "$secs"
$gen --addr "$addr" --method infer --rows 1 --concurrency 32 --seconds "$secs"
$gen --addr "$addr" --method infer --rows 100 --concurrency 1 --seconds "$secs"
$gen --addr "$addr" --method infer --rows 100 --concurrency 32 --seconds "$secs"
echo "server peak RSS $(awk '/VmHWM/{print $2" "$3}' /proc/$pid/status), now $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
