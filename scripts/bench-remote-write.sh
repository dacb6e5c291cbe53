#!/usr/bin/env bash
# Issue 12 scale figures for one site: journal growth per day at production
# rates, and what remote_write costs (CPU per sample, bytes on the wire per
# sample, WAN bytes a day) next to scraping /metrics plain and gzipped.
# Writes benches/REMOTE_WRITE.md.
#
# Production rates: the demo's journeys and targets against the simulator,
# every journey every 5 minutes, 3 kept sessions per site (a keep-alive
# every 5 minutes, 8-hour life), no heartbeat, no active-hours window (a
# full 24-hour day of runs: an upper bound for a 07:00-19:00 office).
#
# Bounded in time: about JOURNAL_MIN minutes (default 20) plus a build.
#
#   scripts/bench-remote-write.sh
#   BENCH_QUICK=1 scripts/bench-remote-write.sh   # 4-minute smoke run (rough)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/casewatch
OUT=${BENCH_OUT:-$ROOT/benches/REMOTE_WRITE.md}
WORK=$(mktemp -d /tmp/casewatch-rw-bench.XXXXXX)
QUICK=${BENCH_QUICK:-0}
CLK=$(getconf CLK_TCK)

SIM_ICS=127.0.0.1:18281
SIM_CSS=127.0.0.1:18282
AGENT_J=127.0.0.1:19901
AGENT_RW=127.0.0.1:19902
VM=127.0.0.1:18428

if [[ $QUICK == 1 ]]; then
    JOURNAL_MIN=4
    RW_S=20
else
    JOURNAL_MIN=${JOURNAL_MIN:-20}
    RW_S=60
fi
# Fast pushes make remote_write's share of the agent's CPU measurable.
RW_INTERVAL_MS=100

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

CMDS=$WORK/commands.md
: >"$CMDS"
rel() {
    local line="$*"
    line=${line//$BIN/target\/release\/casewatch}
    line=${line//$WORK\//\$W\/}
    echo "$line"
}
section() { printf '\n%s\n\n' "$*" >>"$CMDS"; }
start_bg() { # name cmd...; sets LAST_PID
    local name=$1
    shift
    echo "    $(rel "$@") &" >>"$CMDS"
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
wait_http() {
    for _ in $(seq 1 200); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    log "no answer from $1"
    return 1
}
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
metric_sum() { # url metric-name [label filter regex]
    curl -fs "$1" | awk -v m="$2" -v f="${3:-}" '$1 ~ "^"m"({|$)" && $1 ~ f { s += $NF } END { printf "%.0f", s }'
}

need_apt=()
command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)
command -v curl >/dev/null || need_apt+=(curl)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
log "building release"
cargo build --release -q
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
VM_V=$(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo "?")

# The production-rate config: the demo's, every interval set to production.
prod_yaml() { # site journal-path listen-extra
    python3 - "$1" "$2" <<'PY'
import re, sys
site, journal = sys.argv[1], sys.argv[2]
text = open("config/demo.yaml").read()
text = re.sub(r"^site: .*$", f"site: {site}", text, flags=re.M)
text = text.replace("http://127.0.0.1:8181/", "http://127.0.0.1:18281/")
text = text.replace("http://127.0.0.1:8182/", "http://127.0.0.1:18282/")
# No heartbeat: production configs of the issue have none.
text = re.sub(r"\n    # A cheap unauthenticated[^\n]*\n    heartbeat:\n(      [^\n]*\n)+", "\n", text)
text = re.sub(r"\n    heartbeat:\n(      .*\n)+", "\n", text)
text = re.sub(r"(\n    keep_sessions:\n      count: )\d+", r"\g<1>3", text)
text = re.sub(r"(\n    keep_sessions:\n(?:      .*\n)*?      every: )\S+", r"\g<1>5m", text)
text = re.sub(r"(\n    keep_sessions:\n(?:      .*\n)*?      max_age: )\S+", r"\g<1>8h", text)
text = re.sub(r"(\n    keep_sessions:\n(?:      .*\n)*?      stagger: )\S+", r"\g<1>20s", text)
text = re.sub(r"(\n    schedule:\n      interval: )\S+", r"\g<1>5m", text)
text = re.sub(r"(\n      jitter: )\S+", r"\g<1>20s", text)
text = re.sub(r"^  age_bands: .*$", "  age_bands: [1h, 2h, 3h, 4h]", text, flags=re.M)
text = re.sub(r"^journal:\n  path: .*$", f"journal:\n  path: {journal}", text, flags=re.M)
assert "heartbeat" not in text, "heartbeat left in"
print(text)
PY
}

export CASEWATCH_PASSWORD=bench-password
cat >"$WORK/sim.yaml" <<'EOF'
users: [sw.demo]
EOF
section "Simulator (both sections):"
start_bg sim "$BIN" sim --profile "$WORK/sim.yaml" --ics-listen $SIM_ICS --css-listen $SIM_CSS
wait_http "http://$SIM_ICS/login"

# ---------------------------------------------------- journal growth --
section "1. Journal growth (production rates, ${JOURNAL_MIN} minutes of real time):"
prod_yaml bench-journal "$WORK/journal.db" >"$WORK/prod-journal.yaml"
JOURNAL_T0=$(date +%s)
start_bg agent-journal "$BIN" run --config "$WORK/prod-journal.yaml" --listen $AGENT_J
AGENT_J_PID=$LAST_PID
wait_http "http://$AGENT_J/-/healthy"
sleep 2
# Bytes in use (page size less free space, over every table and index, as a
# reader sees them, WAL included) of the fresh journal.
used_bytes() { sqlite3 "$1" "SELECT SUM(pgsize - unused) FROM dbstat"; }
echo "    sqlite3 \$W/journal.db 'SELECT SUM(pgsize - unused) FROM dbstat'   # 2 s after start, and after the window" >>"$CMDS"
USED0=$(used_bytes "$WORK/journal.db")

# ------------------------------------------------- remote_write cost --
# The same config without a journal, pushing to VictoriaMetrics every
# RW_INTERVAL_MS, and once more without remote_write: the CPU difference
# over the window, per sample the store accepted.
section "2. remote_write cost (push every ${RW_INTERVAL_MS} ms to VictoriaMetrics for ${RW_S} s; the same config without remote_write as the baseline):"
start_bg vm victoria-metrics -httpListenAddr=$VM -storageDataPath="$WORK/vm-data" -retentionPeriod=1d
VM_PID=$LAST_PID
wait_http "http://$VM/health"
prod_yaml bench-rw "$WORK/unused.db" | python3 -c '
import re, sys
text = sys.stdin.read()
text = re.sub(r"\njournal:\n(  .*\n)+", "\n", text)
print(text)' >"$WORK/prod-base.yaml"
cp "$WORK/prod-base.yaml" "$WORK/prod-rw.yaml"
cat >>"$WORK/prod-rw.yaml" <<EOF
remote_write:
  - name: central
    url: http://$VM/api/v1/write
    push_interval: ${RW_INTERVAL_MS}ms
    queue:
      path: $WORK/rw-queue.db
EOF

measure_cpu() { # config name → prints "ticks samples bytes series"
    start_bg "agent-$2" "$BIN" run --config "$1" --listen $AGENT_RW
    local pid=$LAST_PID
    wait_http "http://$AGENT_RW/-/healthy"
    sleep 5
    local t0 s0 b0 t1 s1 b1
    t0=$(cpu_ticks "$pid")
    s0=$(metric_sum "http://$AGENT_RW/metrics" casewatch_remote_write_samples_sent_total)
    b0=$(metric_sum "http://$AGENT_RW/metrics" casewatch_remote_write_sent_bytes_total)
    echo "    # CPU: utime+stime from /proc/PID/stat over ${RW_S} s" >>"$CMDS"
    sleep "$RW_S"
    t1=$(cpu_ticks "$pid")
    s1=$(metric_sum "http://$AGENT_RW/metrics" casewatch_remote_write_samples_sent_total)
    b1=$(metric_sum "http://$AGENT_RW/metrics" casewatch_remote_write_sent_bytes_total)
    local series
    series=$(curl -fs "http://$AGENT_RW/metrics" | grep -vc '^#')
    curl -fs -o "$WORK/$2-metrics.txt" "http://$AGENT_RW/metrics"
    curl -fs -H 'Accept-Encoding: gzip' -o "$WORK/$2-metrics.gz" "http://$AGENT_RW/metrics"
    stop_pid "$pid"
    echo "$((t1 - t0)) $((s1 - s0)) $((b1 - b0)) $series"
}
log "remote_write: baseline"
read -r BASE_TICKS _ _ BASE_SERIES < <(measure_cpu "$WORK/prod-base.yaml" base)
log "remote_write: pushing"
read -r RW_TICKS RW_SAMPLES RW_BYTES RW_SERIES < <(measure_cpu "$WORK/prod-rw.yaml" rw)
stop_pid "$VM_PID"
PLAIN_BYTES=$(stat -c %s "$WORK/rw-metrics.txt")
GZIP_BYTES=$(stat -c %s "$WORK/rw-metrics.gz")
echo "    curl -H 'Accept-Encoding: gzip' http://$AGENT_RW/metrics   # and without the header" >>"$CMDS"

# ------------------------------------------------ journal growth, end --
left=$((JOURNAL_T0 + JOURNAL_MIN * 60 - $(date +%s)))
if ((left > 0)); then
    log "journal: waiting ${left} s more"
    sleep "$left"
fi
RUNS=$(metric_sum "http://$AGENT_J/metrics" casewatch_journey_runs_total)
KEEPALIVES=$(metric_sum "http://$AGENT_J/metrics" casewatch_step_outcomes_total 'journey="keepalive"')
stop_pid "$AGENT_J_PID"
JOURNAL_T1=$(date +%s)
ELAPSED=$((JOURNAL_T1 - JOURNAL_T0))
JOURNAL_BYTES=$(stat -c %s "$WORK/journal.db")
USED1=$(used_bytes "$WORK/journal.db")
echo "    # after ${JOURNAL_MIN} minutes, SIGTERM; then: stat -c %s \$W/journal.db and" >>"$CMDS"
echo "    sqlite3 \$W/journal.db 'SELECT name, SUM(pgsize - unused), SUM(pgsize) FROM dbstat GROUP BY name'" >>"$CMDS"
TABLES=$(sqlite3 "$WORK/journal.db" "SELECT name, SUM(pgsize - unused) AS used, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY used DESC" 2>/dev/null || echo "")
ROWCOUNTS=$(for t in runs steps histograms session_spans freezes missed_slots; do
    printf '%s=%s ' "$t" "$(sqlite3 "$WORK/journal.db" "SELECT COUNT(*) FROM $t")"
done)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------- results --
awk_fig() { awk "BEGIN { $1 }"; }
# Before the report is written: redirecting into it dirties the tree.
REV="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' + working tree')"
PER_DAY=$(awk_fig "printf \"%.2f\", ($USED1 - $USED0) / $ELAPSED * 86400 / 1048576")
PER_YEAR=$(awk_fig "printf \"%.0f\", ($USED1 - $USED0) / $ELAPSED * 86400 * 365 / 1048576")
PER_RUN=$(awk_fig "printf \"%.0f\", ($USED1 - $USED0) / $RUNS")
RUNS_DAY=$(awk_fig "printf \"%.0f\", $RUNS / $ELAPSED * 86400")
CPU_US=$(awk_fig "printf \"%.2f\", ($RW_TICKS - $BASE_TICKS) / $CLK * 1e6 / $RW_SAMPLES")
CPU_SHARE=$(awk_fig "printf \"%.3f\", ($RW_TICKS - $BASE_TICKS) / $CLK / $RW_SAMPLES * $RW_SERIES / 15 * 100")
B_SAMPLE=$(awk_fig "printf \"%.2f\", $RW_BYTES / $RW_SAMPLES")
RW_DAY=$(awk_fig "printf \"%.1f\", $RW_BYTES / $RW_SAMPLES * $RW_SERIES * 5760 / 1048576")
PLAIN_DAY=$(awk_fig "printf \"%.1f\", $PLAIN_BYTES * 5760 / 1048576")
GZIP_DAY=$(awk_fig "printf \"%.1f\", $GZIP_BYTES * 5760 / 1048576")
QUEUE_DAY=$(awk_fig "printf \"%.0f\", $RW_SERIES * 5760")
QUEUE_CAP_H=$(awk_fig "printf \"%.0f\", 20000000 / ($RW_SERIES * 240)")

{
    echo "# casewatch scale figures for one site (issue 12)"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; shared with other work"
    echo "- Load average (1/5/15 min) at start: $LOAD_START; at end: $LOAD_END"
    echo "- casewatch: $REV, release build; VictoriaMetrics $VM_V (Debian)"
    echo "- Production rates: the demo's targets and journeys against the simulator, every journey every 5 minutes, 3 kept sessions (keep-alive every 5 minutes, 8 h life), no heartbeat, runs all 24 hours"
    echo
    echo "Every figure comes from one run of \`scripts/bench-remote-write.sh\`."
    echo
    echo "| figure | value | how |"
    echo "| --- | --- | --- |"
    echo "| journal growth per site per day (MiB) | $PER_DAY | ($USED1 − $USED0) bytes in use over ${ELAPSED} s, × 86,400 s |"
    echo "| journal bytes per run (all rows: runs, steps, histograms, session spans) | $PER_RUN | the growth ÷ $RUNS runs |"
    echo "| journal size per site per year before retention (MiB) | $PER_YEAR | the growth × 365; retention (90 d successes, 400 d failures) keeps successes for a quarter of that |"
    echo "| journal file after the window (bytes) | $JOURNAL_BYTES | stat; a young file is mostly part-filled pages, one at least per table and index |"
    echo "| runs per day, journeys and keep-alives (at these rates) | $RUNS_DAY | $RUNS runs (casewatch_journey_runs_total) in ${ELAPSED} s, of which keep-alives: $KEEPALIVES |"
    echo "| journal rows after the window | $ROWCOUNTS | sqlite3 COUNT(*) |"
    echo "| series per push (samples per push) | $RW_SERIES | lines of /metrics that are samples |"
    echo "| remote_write CPU per sample (µs) | $CPU_US | (agent CPU pushing − agent CPU not pushing) over ${RW_S} s ÷ $RW_SAMPLES samples accepted |"
    echo "| remote_write CPU at a 15 s push interval (% of one core) | $CPU_SHARE | CPU per sample × series ÷ 15 s |"
    echo "| bytes on the wire per sample (request body) | $B_SAMPLE | casewatch_remote_write_sent_bytes_total ÷ …_samples_sent_total ($RW_BYTES ÷ $RW_SAMPLES) |"
    echo "| WAN per site per day, remote_write every 15 s (MiB) | $RW_DAY | bytes per sample × series × 5,760 pushes |"
    echo "| WAN per site per day, scrape every 15 s, plain (MiB) | $PLAIN_DAY | $PLAIN_BYTES bytes per scrape × 5,760 |"
    echo "| WAN per site per day, scrape every 15 s, gzip (MiB) | $GZIP_DAY | $GZIP_BYTES bytes per scrape × 5,760 |"
    echo "| queue samples per day at 15 s / hours the default cap (20 M samples) holds | $QUEUE_DAY / $QUEUE_CAP_H | series × 5,760; 20,000,000 ÷ (series × 240 pushes an hour) |"
    echo
    if [[ -n $TABLES ]]; then
        echo "Journal bytes by table and index after the window (sqlite3 dbstat: name, bytes in use, bytes of pages):"
        echo
        echo '```'
        echo "$TABLES"
        echo '```'
        echo
    fi
    echo "## Commands"
    echo
    echo "Release binary: \`cargo build --release\`. \`\$W\` is the scratch directory holding the generated configs (written by \`scripts/bench-remote-write.sh\`, the authority on their content)."
    cat "$CMDS"
    echo
    echo "## How the figures are made"
    echo
    echo "- **Journal growth.** The real agent (\`casewatch run\`) at production rates against the simulator for ${JOURNAL_MIN} minutes of real time, stopped with SIGTERM (the journal is checkpointed on close), then the bytes in use in every table and index (SQLite's \`dbstat\`: page size less free space, so a young file's part-filled pages do not count as growth) less the same 2 s after start, scaled to a day. Every row the journal holds comes at a steady rate at these settings (runs, steps, one HdrHistogram row per step per minute that had data, kept-session spans), and append-only B-trees fill their pages, so a linear scale-up is fair; the window holds few runs, so treat the second digit as noise."
    echo "- **remote_write CPU per sample.** The same production config without a journal, twice: once pushing every ${RW_INTERVAL_MS} ms to a VictoriaMetrics on loopback, once not pushing. The difference of utime + stime from \`/proc/PID/stat\` over ${RW_S} s (after a 5 s warm-up), divided by the samples the store accepted, is what one sample costs the agent end to end: gathering the registry, building and encoding the protobuf, snappy, the SQLite insert and delete, and the HTTP request. The push interval is short only to make the cost measurable; per sample it does not depend on the interval."
    echo "- **Bytes on the wire.** The request bodies the store accepted (snappy-compressed protobuf; HTTP headers not counted), per sample. Every push carries every series' labels again (remote_write 1.0 has no series references), which is why a sample costs tens of bytes where a gzipped scrape costs fewer: gzip compresses across the whole exposition."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
