#!/usr/bin/env bash
# Hookline benchmarks (issues 2 and 4): builds hookline and the load
# generator, then for each scenario starts the gateway on a fresh temporary
# data directory with bench/configs, runs the scenario, stops the gateway,
# and at the end prints one Markdown table. Everything runs on loopback and
# stops by itself. See docs/benchmarks.md.
#
#   bench/run.sh                               # the default scenarios
#   SCENARIOS="intake:64 whole:5000" bench/run.sh
#   DURATION=20s WARMUP=3s bench/run.sh
#   WRK=1 bench/run.sh                         # also intake with wrk (apt-get install -y wrk)
#   HOOKLINE_BIN=/tmp/hookline-old bench/run.sh  # measure a prebuilt binary (before/after)
#
# Scenarios: intake:CONNS (closed loop), whole:RATE (open loop at RATE
# webhooks/s), whole:max (closed loop on WHOLE_CONNS connections),
# wrk:CONNS (intake with wrk and bench/intake.lua).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
SCENARIOS=${SCENARIOS:-"intake:16 intake:64 intake:256 whole:5000 whole:max"}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
WHOLE_CONNS=${WHOLE_CONNS:-64}
PORT=${PORT:-18080}
SINK_PORT=${SINK_PORT:-18090}
WRK=${WRK:-0}
LOG_LEVEL=${LOG_LEVEL:-warn}

work=$(mktemp -d "${TMPDIR:-/tmp}/hookline-bench.XXXXXX")
results="$work/results.jsonl"
gw_pid=""

cleanup() {
	if [[ -n "$gw_pid" ]] && kill -0 "$gw_pid" 2>/dev/null; then
		kill -TERM "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	if [[ "${KEEP:-0}" != 1 ]]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT INT TERM

echo "building into $work ..."
if [[ -n "${HOOKLINE_BIN:-}" ]]; then
	cp "$HOOKLINE_BIN" "$work/hookline"
else
	(cd "$root" && go build -o "$work/hookline" ./cmd/hookline)
fi
(cd "$root" && go build -o "$work/load" ./bench/load)

start_gateway() {
	local name=$1
	rm -rf "$work/data"
	GENERIC_TARGET_URL="http://127.0.0.1:$SINK_PORT/hookline" \
		"$work/hookline" serve --config "$root/bench/configs/gateway.yaml" \
		--listen "127.0.0.1:$PORT" --data "$work/data" --watch=false --log-level "$LOG_LEVEL" \
		2>"$work/gateway-$name.log" &
	gw_pid=$!
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "gateway did not start; its log:" >&2
	cat "$work/gateway-$name.log" >&2
	exit 1
}

stop_gateway() {
	kill -TERM "$gw_pid"
	wait "$gw_pid" || true
	gw_pid=""
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for sc in $SCENARIOS; do
	kind=${sc%%:*}
	arg=${sc#*:}
	name=${sc//:/-}
	echo
	echo "== $sc"
	start_gateway "$name"
	case $kind in
	intake)
		"$work/load" -mode intake -target "127.0.0.1:$PORT" -conns "$arg" -duration "$DURATION" -warmup "$WARMUP" \
			-pid "$gw_pid" -label "$sc" -json "$results"
		;;
	whole)
		rate=$arg
		[[ $rate == max ]] && rate=0
		"$work/load" -mode whole -target "127.0.0.1:$PORT" -sink "127.0.0.1:$SINK_PORT" -conns "$WHOLE_CONNS" \
			-rate "$rate" -duration "$DURATION" -warmup "$WARMUP" -pid "$gw_pid" -label "$sc" -json "$results"
		;;
	wrk)
		if ! command -v wrk >/dev/null; then
			echo "wrk is not installed (apt-get install -y wrk); skipping $sc"
		else
			wrk -t2 -c"$arg" -d"$DURATION" --latency -s "$root/bench/intake.lua" "http://127.0.0.1:$PORT"
		fi
		;;
	*)
		echo "unknown scenario $sc" >&2
		exit 2
		;;
	esac
	stop_gateway
done
if [[ $WRK == 1 && $SCENARIOS != *wrk* ]]; then
	for c in 16 64 256; do
		echo
		echo "== wrk:$c"
		start_gateway "wrk-$c"
		wrk -t2 -c"$c" -d"$DURATION" --latency -s "$root/bench/intake.lua" "http://127.0.0.1:$PORT"
		stop_gateway
	done
fi

echo
if [[ -s $results ]]; then
	"$work/load" -table "$results"
fi
echo "machine after: load average $(cut -d' ' -f1-3 /proc/loadavg)"
