#!/usr/bin/env bash
# The central report at fleet scale: fills a real VictoriaMetrics with what
# SITES agents would have pushed over DAYS days (scripts/store-backfill.py,
# one sample every EVERY seconds), then times
# `casewatch report --prometheus URL` over the whole window, fleet and one
# site, and writes the figures to OUT.
#
#   scripts/central-report-bench.sh target/release benches/CENTRAL-REPORT.md
#   SITES=40 DAYS=90 EVERY=300 KEEP=1 ...
#
# WORK=DIR keeps the store in DIR and, when DIR already holds a finished
# backfill, times the report on it without filling it again; FILL_ONLY=1
# stops after the fill.
#
# Needs victoria-metrics (Debian), GNU time, and numpy + prometheus-client
# for the backfill (pip install numpy prometheus-client).
set -euo pipefail
bin=$(cd "${1:?release folder holding casewatch}" && pwd)
out=${2:?the Markdown file to write}
SITES=${SITES:-40}
DAYS=${DAYS:-90}
EVERY=${EVERY:-300}
PORT=${PORT:-18428}
if [ -n "${WORK:-}" ]; then
  work=$WORK; KEEP=1; mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/casewatch-central.XXXXXX")
fi
vm_pid=
demo_pid=
cleanup() {
  [ -n "$vm_pid" ] && kill "$vm_pid" 2>/dev/null || true
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

filled=; [ -s "$work/backfill.done" ] && filled=1
if [ -z "$filled" ]; then
echo "== the series of a real agent: the demo's /metrics after a minute"
port_demo=$((PORT + 1))
(cd "$work" && exec "$bin/casewatch" demo --listen "127.0.0.1:$port_demo" --journal demo.db >demo.log 2>&1) &
demo_pid=$!
sleep 60
curl -sf "http://127.0.0.1:$port_demo/metrics" >"$work/template.txt"
kill "$demo_pid"; wait "$demo_pid" 2>/dev/null || true; demo_pid=
fi

echo "== VictoriaMetrics"
victoria-metrics -storageDataPath="$work/vm" -httpListenAddr="127.0.0.1:$PORT" \
  -retentionPeriod=1y -loggerLevel=ERROR >"$work/vm.log" 2>&1 &
vm_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
url="http://127.0.0.1:$PORT"

[ -n "$filled" ] || date +%s | awk '{ print int($1 / 3600) * 3600 }' >"$work/end"
end=$(cat "$work/end")
backfill=(python3 scripts/store-backfill.py --template "$work/template.txt" --url "$url"
  --sites "$SITES" --days "$DAYS" --every "$EVERY" --end "$end" --worse site-07)
if [ -z "$filled" ]; then
  echo "== ${backfill[*]}"
  /usr/bin/time -f '%e' -o "$work/backfill.time" "${backfill[@]}" | tee "$work/backfill.log"
  # Everything imported searchable and merged, as in a store that has held it for days.
  curl -sf "$url/internal/force_flush" >/dev/null
  curl -sf "$url/internal/force_merge" >/dev/null || true
  sleep 5
  cp "$work/backfill.log" "$work/backfill.done"
fi
[ -z "${FILL_ONLY:-}" ] || exit 0
disk=$(du -sh "$work/vm" | cut -f1)
from=$(date -u -d "@$(( end - ${DAYS%.*} * 86400 ))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$end" +%Y-%m-%dT%H:%M:%SZ)

timed() { # label, then the report's arguments
  local label=$1; shift
  local runs=()
  for run in 1 2; do
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      "$bin/casewatch" report --prometheus "$url" --from "$from" --to "$to" "$@" \
      >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r wall user sys rss <"$work/time"
    runs+=("$(awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" \
      'BEGIN { printf "%s s wall, %.1f s CPU, %d MiB", w, u + s, r / 1024 }')")
  done
  echo "| $label | ${runs[0]} | ${runs[1]} |" | tee -a "$work/rows"
}
: >"$work/rows"; : >"$work/dense-rows"
echo "== timing"
timed "fleet, $SITES sites, HTML" --out "$work/fleet.html"
timed "fleet, $SITES sites, JSON" --format json --out "$work/fleet.json"
timed "one site (site-07), HTML" --site site-07 --out "$work/site.html"
# The same site over 30 days from a store holding a sample every 15 s (the
# agent's default push interval), against this one: what sample density
# costs the report.
echo "== density: one site, 30 days, samples every 15 s against every $EVERY s"
dense=$work/dense; port_dense=$((PORT + 10))
if [ ! -s "$dense/backfill.done" ]; then
  rm -rf "$dense"; mkdir -p "$dense"
fi
victoria-metrics -storageDataPath="$dense/vm" -httpListenAddr="127.0.0.1:$port_dense" \
  -retentionPeriod=1y -loggerLevel=ERROR >"$dense/vm.log" 2>&1 &
dense_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port_dense/health" >/dev/null && break; sleep 0.2; done
if [ ! -s "$dense/backfill.done" ]; then
  python3 scripts/store-backfill.py --template "$work/template.txt" --url "http://127.0.0.1:$port_dense" \
    --sites 1 --days 30 --every 15 --end "$end" >"$dense/backfill.log"
  curl -sf "http://127.0.0.1:$port_dense/internal/force_flush" >/dev/null
  sleep 5
  cp "$dense/backfill.log" "$dense/backfill.done"
fi
month=$(date -u -d "@$(( end - 30 * 86400 ))" +%Y-%m-%dT%H:%M:%SZ)
for store in "$EVERY s:$url" "15 s:http://127.0.0.1:$port_dense"; do
  label=${store%%:http*}; store_url=${store#*:}
  runs=()
  for run in 1 2 3; do
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin/casewatch" report --prometheus "$store_url" \
      --from "$month" --to "$to" --site site-01 --format json --out "$work/dense.json" 2>"$work/err" \
      || { cat "$work/err" >&2; exit 1; }
    read -r wall user sys rss <"$work/time"
    runs+=("$(awk -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN { printf "%s s (%.2f s CPU)", w, u + s }')")
  done
  echo "| one site, 30 days, a sample every $label | ${runs[*]} |" | tee -a "$work/dense-rows"
done
kill "$dense_pid"; wait "$dense_pid" 2>/dev/null || true

worse=$(python3 -c "import json; print(', '.join(json.load(open('$work/fleet.json'))['worse']) or 'none')" 2>/dev/null || echo '?')

{
  echo "# Central report at fleet scale"
  echo
  echo "Written by \`scripts/central-report-bench.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): $SITES sites x $DAYS days read from a real VictoriaMetrics by \`casewatch report --prometheus URL\`. Goal: 40 sites x 90 days in at most 60 s."
  echo
  echo "- Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB memory; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "- VictoriaMetrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo "(version unknown)") (Debian package)."
  echo "- Backfill: $(tail -1 "$work/backfill.log" | sed 's/^backfill: //'); $disk on disk."
  echo "- Window: $from to $to."
  echo
  echo "Commands:"
  echo
  echo '```sh'
  echo "victoria-metrics -storageDataPath=DATA -httpListenAddr=127.0.0.1:$PORT -retentionPeriod=1y"
  echo "${backfill[*]}" | sed "s#$work#WORK#g"
  echo "casewatch report --prometheus $url --from $from --to $to --out fleet.html"
  echo '```'
  echo
  echo "| report | first run | second run |"
  echo "|---|---|---|"
  cat "$work/rows"
  echo
  echo "Sites named worse than the rest (\`--worse site-07\` made one 1.5 times slower with 6 times the freezes and server restarts): $worse."
  echo
  echo "## Sample density"
  echo
  echo "A real agent pushes every 15 s by default; the fleet above holds a sample every $EVERY s (as a store deduplicating to $EVERY s keeps it: VictoriaMetrics' \`-dedup.minScrapeInterval\`). The same site over 30 days from a second store filled at 15 s ($(tail -1 "$dense/backfill.done" | sed 's/^backfill: //')), three runs each:"
  echo
  echo "| store | runs |"
  echo "|---|---|"
  cat "$work/dense-rows"
  echo
  echo "## How to read it"
  echo
  echo "- Wall time is the report's whole run: reading the store, filling one ledger per site, the statistics and the rendering. CPU is the report process's own; the store's is not in it. The machine was shared (load average above), so wall time is an upper bound."
  echo "- The report asks, per site, one range query per counter family at the slot's step (an hour over 90 days: 2,161 points a series) and reads raw samples only for slots where a counter fell, a boundary has no sample or the agent restarted (about one agent restart a month here). Its memory holds one ledger per site, not the series."
  echo "- Values are plausible, not a model of any office: the figure is the cost of reading and reporting this many series, not what the report concludes (\`scripts/store-backfill.py\` says what is drawn)."
} >"$out"
echo "wrote $out"
