#!/usr/bin/env bash
# Soak: runs the agent against the simulator with a chaotic fault profile and
# records, every few seconds, the agent's RSS, open file descriptors, runtime
# task count and missed slots into a CSV. Then checks that none of them grows
# without bound (the last third of the run against the middle third).
#
#   scripts/soak.sh [DURATION_SECONDS=180] [CSV=soak.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-180}
csv=${2:-soak.csv}
interval=5

cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CASEWATCH_LOG=error ./target/release/casewatch demo \
  --duration "$((duration + 10))s" --listen "127.0.0.1:$port" \
  --profile config/sim-chaos.yaml --journal "$work/journal.db" > "$work/demo.out" 2> "$work/demo.err" &
pid=$!

metric() { # name -> summed value from /metrics
  curl -sf "http://127.0.0.1:$port/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" { s += $NF } END { printf "%d\n", s }'
}
echo "seconds,rss_kib,open_fds,tasks,missed_slots,freeze_episodes,forced_logouts" > "$csv"
start=$(date +%s)
sleep 3
while [ $(( $(date +%s) - start )) -lt "$duration" ]; do
  kill -0 "$pid" 2>/dev/null || { echo "soak: the agent died" >&2; cat "$work/demo.err" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  echo "$(( $(date +%s) - start )),$rss,$fds,$(metric casewatch_runtime_alive_tasks),$(metric casewatch_schedule_missed_total),$(metric casewatch_freeze_episodes_total),$(metric casewatch_forced_logouts_total)" >> "$csv"
  sleep "$interval"
done
wait "$pid" || { echo "soak: the agent exited with an error" >&2; cat "$work/demo.err" >&2; exit 1; }

python3 - "$csv" <<'PY'
import csv, sys
rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(sys.argv[1]))]
if len(rows) < 9:
    sys.exit(f"soak: only {len(rows)} samples; run longer")
third = len(rows) // 3
middle, last = rows[third:2 * third], rows[2 * third:]
def peak(rows, key): return max(r[key] for r in rows)
checks = [
    # (what, middle peak, last peak, allowed growth)
    ("rss_kib", peak(middle, "rss_kib"), peak(last, "rss_kib"), max(8192, 0.15 * peak(middle, "rss_kib"))),
    ("open_fds", peak(middle, "open_fds"), peak(last, "open_fds"), 16),
    ("tasks", peak(middle, "tasks"), peak(last, "tasks"), 16),
]
failed = False
for what, mid, end, allowed in checks:
    ok = end - mid <= allowed
    failed |= not ok
    print(f"soak: {what}: middle-third peak {mid:.0f}, last-third peak {end:.0f}, allowed growth {allowed:.0f}: {'ok' if ok else 'GROWING'}")
final = rows[-1]
print(f"soak: {len(rows)} samples over {final['seconds']:.0f} s; missed slots {final['missed_slots']:.0f}, "
      f"freeze episodes {final['freeze_episodes']:.0f}, forced logouts {final['forced_logouts']:.0f}")
sys.exit(1 if failed else 0)
PY
