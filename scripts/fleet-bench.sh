#!/usr/bin/env bash
# Fleet-scale board benchmark (issue 10): backfills what 40 sites x 37 days
# of casewatch agents and the shipped rules leave in Prometheus, then times
# every query of the board dashboard over 30 days against a Prometheus on
# that data. Writes benches/fleet-queries.md. A benchmark, not a test.
#
#   scripts/fleet-bench.sh                         # 40 sites, 37 days, 30-day range
#   FLEET_SITES=10 FLEET_DAYS=8 FLEET_RANGE=7d scripts/fleet-bench.sh   # a quick look
#
# Needs prometheus and promtool (Debian: apt-get install -y prometheus) and
# python3. Uses about 3 GB of disk at a time under $FLEET_WORK (default a
# temporary directory) and about 4 GB of memory while generating.
set -euo pipefail
cd "$(dirname "$0")/.."
SITES=${FLEET_SITES:-40}
DAYS=${FLEET_DAYS:-37}
RANGE=${FLEET_RANGE:-30d}
RUNS=${FLEET_RUNS:-5}
PORT=${FLEET_PORT:-19090}
OUT=${FLEET_OUT:-benches/fleet-queries.md}
WORK=${FLEET_WORK:-$(mktemp -d /tmp/casewatch-fleet.XXXXXX)}
mkdir -p "$WORK"
PROM_PID=
cleanup() {
    if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in prometheus promtool python3; do
    command -v "$tool" >/dev/null || { echo "fleet-bench: $tool not found" >&2; exit 2; }
done

echo "==> backfill: $SITES sites x $DAYS days into $WORK/data"
started=$(date +%s)
END=$(( started / 300 * 300 ))
generate="python3 scripts/fleet-backfill.py $WORK/om --sites $SITES --days $DAYS --end $END --files 10 --promtool promtool --data $WORK/data"
$generate | tee "$WORK/backfill.txt"
backfill_s=$(( $(date +%s) - started ))
blocks=$(find "$WORK/data" -maxdepth 1 -mindepth 1 -type d | wc -l)
size=$(du -sh "$WORK/data" | cut -f1)

# The benchmark's Prometheus only serves queries: no scrapes, no rules (the
# backfill holds the rules' output), the retention the book asks for
# (docs/src/prometheus.md).
cat > "$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 15s
EOF
serve="prometheus --config.file=$WORK/prometheus.yml --storage.tsdb.path=$WORK/data --storage.tsdb.retention.time=40d --web.listen-address=127.0.0.1:$PORT"
$serve > "$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null
series=$(curl -fsS "http://127.0.0.1:$PORT/api/v1/query" --data-urlencode 'query=count({__name__=~".+"})' --data-urlencode "time=$END" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')

echo "==> timing every board query over $RANGE"
set +e
python3 scripts/fleet-queries.py --url "http://127.0.0.1:$PORT" --end "$END" --range "$RANGE" --runs "$RUNS" > "$WORK/queries.md" 2> "$WORK/queries.err"
status=$?
set -e
cat "$WORK/queries.md"
cat "$WORK/queries.err" >&2

{
    echo "# Board dashboard at fleet scale"
    echo
    echo "Written by \`scripts/fleet-bench.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): $SITES sites x $DAYS days, every query of \`dashboards/casewatch-board.json\` over $RANGE, each once cold and $RUNS more times. Goal: p95 at most 2 s per query."
    echo
    echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GB memory, shared with other builds."
    echo "- $(prometheus --version 2>&1 | head -1); promtool from the same package."
    echo "- Backfill: $(tail -1 "$WORK/backfill.txt") in ${backfill_s} s; $blocks blocks, $size on disk; $series series with a sample at the last instant."
    echo
    echo "Commands:"
    echo
    echo '```sh'
    echo "$generate"
    echo "  # each of the 10 files: promtool tsdb create-blocks-from openmetrics --max-block-duration=96h FILE $WORK/data"
    echo "$serve"
    echo "python3 scripts/fleet-queries.py --url http://127.0.0.1:$PORT --end $END --range $RANGE --runs $RUNS"
    echo '```'
    echo
    cat "$WORK/queries.md"
    cat <<'NOTES'

## What is backfilled, and why

- **The board reads only recording rules** (the `casewatch_fleet_5m` group of
  `config/alerts/casewatch.rules.yml`, evaluated every 5 minutes), plus
  `casewatch_build_info` for its site variable, `casewatch_journey_runs_total`
  for its target and journey variables (label values only) and
  `casewatch_change_timestamp_seconds` for the change annotation and rows.
  `scripts/check-rules.sh` and the test suite fail on a board query that reads
  another raw series.
- **So the backfill holds what those rules leave in Prometheus**, written
  directly by `scripts/fleet-backfill.py` at the rules' 5-minute resolution
  with the names and labels the rules produce, for the shipped
  `config/casewatch.yaml` fleet at every site (two targets, three journeys,
  14 steps with their bucket edges, 5 causes, 5 age bands), plus the raw
  series above. Backfilling the raw 15-second series and evaluating the rules
  over them (`promtool tsdb create-blocks-from rules`) would be the same data
  by a much longer road: some 24,000 raw series at 15 s for 37 days, about 5 G
  samples to write and then to evaluate every rule over (reading them is what
  the old board did: an estimated 46-57 G samples over 30 days, minutes a
  query), beyond this machine's disk and time.
- **Names and labels are the rules' own**: every query here must return data
  (the script exits 1 otherwise), and the test suite runs every board query
  against a real Prometheus evaluating the shipped rules over live agents.
  Values are plausible, not derived from one another; query cost depends on
  series and samples, which are as the rules make them.
- **As Grafana asks**: timeseries panels are range queries at their minimum
  interval (1 h, or 1 d for the per-day bars); stats, bar charts and bar gauges
  instant queries with `$__range` the whole 30 days; the annotation a range
  query at its 60 s step, widened to 236 s as Grafana does to stay within
  Prometheus's 11,000 points; the before/after row once per change. The
  Prometheus serves queries only (no scrapes, no rule evaluation).
NOTES
    if [ "$status" -ne 0 ]; then
        echo
        echo "Failures:"
        echo
        sed 's/^/    /' "$WORK/queries.err"
    fi
} > "$OUT"
echo "==> wrote $OUT"
exit "$status"
