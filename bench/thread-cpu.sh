#!/usr/bin/env bash
# CPU per request by thread, the balancer against the plain undici proxy (issue 24): where the
# difference goes (the JavaScript thread, or V8's worker threads: parallel garbage collection),
# and how much the same process's cost moves between rounds on a small machine.
#
#   npm run build -w @lcb/balancer && bash bench/thread-cpu.sh
#
# 4 bench origins, bench/plain-proxy.mjs and the balancer at its default settings (plus
# --health-path /), all on 127.0.0.1; ROUNDS (4) interleaved rounds of wrk -t1 -c64 on /tiny, each a
# 2 s warm-up and a DURATION (6) s measured run. Per thread: CPU (utime + stime from
# /proc/<pid>/task/<tid>/stat) ÷ requests, and context switches. PIN=1 runs each proxy on CPU 0 and
# wrk and the origins on CPU 1 (taskset), which takes the scheduler's placement out of the figures.
# BEFORE_MAIN=<another build's dist/main.js> adds it as a third target, `before` (a change's start).
# Prints a Markdown table.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-6}
PIN=${PIN:-0}
for v in ROUNDS DURATION; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "thread-cpu: $v must be a positive whole number (got '${!v}')" >&2; exit 2; }
done
[[ $PIN =~ ^[01]$ ]] || { echo "thread-cpu: PIN must be 0 or 1 (got '$PIN')" >&2; exit 2; }
for tool in wrk node taskset; do command -v "$tool" >/dev/null || { echo "thread-cpu: $tool is not installed" >&2; exit 2; }; done
[ -f services/balancer/dist/main.js ] || { echo "thread-cpu: build the balancer first (npm run build -w @lcb/balancer)" >&2; exit 2; }
BEFORE_MAIN=${BEFORE_MAIN:-}
[ -z "$BEFORE_MAIN" ] || [ -f "$BEFORE_MAIN" ] || { echo "thread-cpu: BEFORE_MAIN is not a file (got '$BEFORE_MAIN')" >&2; exit 2; }
targets=(plain balancer)
[ -z "$BEFORE_MAIN" ] || targets+=(before)

proxy_cpu=() load_cpu=()
if [ "$PIN" = 1 ]; then proxy_cpu=(taskset -c 0); load_cpu=(taskset -c 1); fi
work=$(mktemp -d)
pids=()
cleanup() {
  [ "${#pids[@]}" -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Port 0: each origin prints the port it got.
origins=()
for i in 1 2 3 4; do
  "${load_cpu[@]}" node bench/origin.mjs --slow-ms 0 > "$work/origin$i" 2>/dev/null & pids+=($!)
done
for i in 1 2 3 4; do
  for _ in $(seq 100); do grep -q '^listening ' "$work/origin$i" && break; sleep 0.1; done
  port=$(sed -n 's/^listening //p' "$work/origin$i")
  [ -n "$port" ] || { echo "thread-cpu: origin $i did not start" >&2; exit 1; }
  origins+=("127.0.0.1:$port")
done

answers() { node -e "fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "$1"; }
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
declare -A pid port
port[plain]=$(free_port)
"${proxy_cpu[@]}" node bench/plain-proxy.mjs --host 127.0.0.1 --port "${port[plain]}" "${origins[@]}" > /dev/null & pids+=($!); pid[plain]=$!
start_balancer() {
  local name=$1 main=$2 admin
  port[$name]=$(free_port)
  admin=$(free_port)
  "${proxy_cpu[@]}" node "$main" --host 127.0.0.1 --port "${port[$name]}" --admin-port "$admin" --health-path / "${origins[@]}" > "$work/$name.log" 2>&1 & pids+=($!); pid[$name]=$!
}
start_balancer balancer services/balancer/dist/main.js
[ -z "$BEFORE_MAIN" ] || start_balancer before "$BEFORE_MAIN"
for name in "${targets[@]}"; do
  for _ in $(seq 100); do answers "http://127.0.0.1:${port[$name]}/tiny" && break; sleep 0.1; done
done

# name cpu-ticks context-switches, one line per thread
threads() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ < "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")" "$(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")"
  done
}

tick_us=$((1000000 / $(getconf CLK_TCK)))
echo "| round | target | req/s | CPU µs/req, all | JavaScript thread | V8 workers | other threads | context switches per 1000 req (JS thread / V8 workers) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
  for name in "${targets[@]}"; do
    url="http://127.0.0.1:${port[$name]}/tiny"
    "${load_cpu[@]}" wrk -t1 -c64 -d2s "$url" > /dev/null
    threads "${pid[$name]}" > "$work/before"
    "${load_cpu[@]}" wrk -t1 -c64 -d"${DURATION}"s "$url" > "$work/wrk"
    threads "${pid[$name]}" > "$work/after"
    requests=$(awk '/requests in/ {print $1}' "$work/wrk")
    [ "${requests:-0}" -gt 0 ] || { echo "thread-cpu: wrk got no answer from $name" >&2; exit 1; }
    # Threads are matched by position: a process keeps its threads through the run.
    paste -d' ' "$work/before" "$work/after" | awk -v r="$requests" -v us="$tick_us" -v name="$name" -v round="$round" -v d="$DURATION" '
      { cpu = ($5 - $2) * us / r; cs = ($6 - $3) * 1000 / r; all += cpu
        if ($1 == "MainThread" || $1 ~ /^node/) { js += cpu; jscs += cs }
        else if ($1 == "V8Worker") { v8 += cpu; v8cs += cs }
        else other += cpu }
      END { printf "| %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f / %.0f |\n", round, name, r / d, all, js, v8, other, jscs, v8cs }'
  done
done
