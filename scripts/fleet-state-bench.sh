#!/usr/bin/env bash
# The Fleet dashboard at fleet scale: backfills what 40 sites x 31 days of
# the shipped rules leave for it (site:casewatch_alert_state:max, recorded
# every 15 s, and each site's change timestamp for the annotation), then
# times every query of dashboards/casewatch-fleet.json over its default 6h
# and over 7d and 30d against a Prometheus on that data. Writes
# benches/fleet-state.md. A benchmark, not a test.
#
#   scripts/fleet-state-bench.sh
#   FLEET_SITES=10 FLEET_DAYS=2 scripts/fleet-state-bench.sh   # a quick look
#
# Needs prometheus and promtool (Debian: apt-get install -y prometheus) and
# python3; about 1 GB of disk under a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SITES=${FLEET_SITES:-40}
DAYS=${FLEET_DAYS:-31}
RUNS=${FLEET_RUNS:-5}
PORT=${FLEET_PORT:-19091}
OUT=${FLEET_OUT:-benches/fleet-state.md}
WORK=$(mktemp -d /tmp/casewatch-fleet-state.XXXXXX)
PROM_PID=
cleanup() {
    if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
for tool in prometheus promtool python3; do
    command -v "$tool" >/dev/null || { echo "fleet-state-bench: $tool not found" >&2; exit 2; }
done

started=$(date +%s)
END=$(( started / 300 * 300 ))
# Each site is OK most of the time, with a ticket open about 2 hours a day
# and a page about 20 minutes a day, in stretches (seeded, so runs repeat).
python3 - "$WORK/state.om" "$SITES" "$DAYS" "$END" <<'PY'
import random, sys
path, sites, days, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(7)
start = end - days * 86400
with open(path, "w") as f:
    f.write("# TYPE site:casewatch_alert_state:max gauge\n")
    for s in range(1, sites + 1):
        site = f"site-{s:02d}"
        t, state = start, 0
        while t <= end:
            # Stretches: OK for hours, a ticket for an hour, a page for minutes.
            length = {0: rng.expovariate(1 / (9 * 3600)), 1: rng.expovariate(1 / 3600),
                      2: rng.expovariate(1 / 600)}[state]
            until = min(end, t + max(15, int(length) // 15 * 15))
            while t <= until:
                f.write(f'site:casewatch_alert_state:max{{site="{site}"}} {state} {t}\n')
                t += 15
            state = 0 if state else (2 if rng.random() < 0.15 else 1)
    f.write("# TYPE casewatch_change_timestamp_seconds gauge\n")
    for s in range(1, sites + 1):
        for t in range(start, end + 1, 60):
            f.write(f'casewatch_change_timestamp_seconds{{change="extra_server_capacity",site="site-{s:02d}"}} {start + 86400} {t}\n')
    f.write("# EOF\n")
PY
promtool tsdb create-blocks-from openmetrics --max-block-duration=96h "$WORK/state.om" "$WORK/data" > "$WORK/backfill.txt"
rm "$WORK/state.om"
backfill_s=$(( $(date +%s) - started ))

printf 'global:\n  scrape_interval: 15s\n' > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
    --storage.tsdb.retention.time=40d --web.listen-address=127.0.0.1:$PORT > "$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1 && break
    sleep 1
done

status=0
{
    echo "# Fleet dashboard at fleet scale"
    echo
    echo "Written by \`scripts/fleet-state-bench.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): $SITES sites x $DAYS days of \`site:casewatch_alert_state:max\` at 15 s (the recording rule's interval) and each site's change timestamp, every query of \`dashboards/casewatch-fleet.json\` over 6h (its default), 7d and 30d, each once cold and $RUNS more times. Goal: p95 at most 2 s per query."
    echo
    echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GB memory, shared with other builds."
    echo "- $(prometheus --version 2>&1 | head -1); promtool from the same package. Backfill in ${backfill_s} s."
    echo
    for range in 6h 7d 30d; do
        echo "## Over $range"
        echo
        echo "    python3 scripts/fleet-queries.py --url http://127.0.0.1:$PORT --end $END --range $range --runs $RUNS --dashboard dashboards/casewatch-fleet.json"
        echo
        python3 scripts/fleet-queries.py --url "http://127.0.0.1:$PORT" --end "$END" --range "$range" \
            --runs "$RUNS" --dashboard dashboards/casewatch-fleet.json || status=1
        echo
    done
} > "$WORK/out.md"
cat "$WORK/out.md"
cp "$WORK/out.md" "$OUT"
exit $status
