#!/usr/bin/env bash
# What TLS and API keys cost: three `churn serve` processes on the bundled models, one plain, one
# requiring an API key, one with TLS and an API key, measured with the same load generator
# scenarios in turn, in one run (client and servers on this machine; only one server is loaded at
# a time). The certificates (a CA and a `localhost` server certificate, P-256) are made with
# openssl in a temporary folder.
# Usage: bash benches/serve_secure_bench.sh [seconds per scenario, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --quiet --bin churn --example loadgen
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 \
  -subj /CN=churn-bench-ca 2>/dev/null
openssl req "${ec[@]}" -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -out "$tmp/server.pem" -days 2 -extfile "$tmp/ext" 2>/dev/null
key=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "$key" >"$tmp/keys"

# start NAME ARGS...: starts a server, sets $addr_NAME and $pid_NAME.
start() {
  local name=$1
  shift
  ./target/release/churn serve --models models --addr 127.0.0.1:0 --http-addr off --metrics-addr off "$@" \
    >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  printf -v "pid_$name" %s $!
  for _ in $(seq 50); do grep -q "gRPC on" "$tmp/$name.log" && break; sleep 0.1; done
  printf -v "addr_$name" %s "$(grep -o "gRPC on [0-9.:]*" "$tmp/$name.log" | cut -d' ' -f3)"
}
start plain
start keys --api-keys "$tmp/keys"
start tls --api-keys "$tmp/keys" --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key"

gen=./target/release/examples/loadgen
run() {
  local scenario=("$@")
  echo "-- ${scenario[*]}"
  printf 'plain      '
  $gen --addr "http://$addr_plain" "${scenario[@]}" --seconds "$secs"
  printf 'key        '
  $gen --addr "http://$addr_keys" --api-key "$key" "${scenario[@]}" --seconds "$secs"
  printf 'TLS + key  '
  $gen --addr "https://localhost:${addr_tls##*:}" --ca "$tmp/ca.pem" --api-key "$key" \
    "${scenario[@]}" --seconds "$secs"
}
run --method score --concurrency 1
run --method score --concurrency 32
run --method infer --rows 100 --concurrency 1
for name in plain keys tls; do
  pid_var=pid_$name
  echo "$name server peak RSS $(awk '/VmHWM/{print $2" "$3}' "/proc/${!pid_var}/status")"
done
