#!/usr/bin/env bash
# Issue 7 benchmarks: timing fidelity, coordinated omission, CPU per step,
# memory, scrape cost; casewatch side by side with oha, wrk and the Debian
# prometheus-blackbox-exporter, in one run. Writes benches/RESULTS.md.
#
# Issue 11 benchmarks (sections 6 and 7): the agent's own inputs. Reloading a
# config at the 1 MiB cap every 2 s while a journey runs every second, and 200
# wrong-password requests 16 at a time at the basic-auth endpoints, each with
# lateness read from the journal. With BENCH_BASELINE=path/to/casewatch (a
# release build of an earlier commit) each row shows that build beside this
# one, as the peer column.
#
# Installs what it needs when missing, builds release, and is bounded in
# time (about 12 minutes on 2 cores). Nothing here is a test: it measures.
#
#   scripts/bench.sh                 # full run
#   BENCH_QUICK=1 scripts/bench.sh   # short smoke run (figures are rough)
#   BENCH_ONLY="1 3" scripts/bench.sh   # only some sections
#   BENCH_ONLY="6 7" BENCH_BASELINE=/tmp/casewatch-before BENCH_OUT=benches/RESULTS-inputs.md scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/casewatch
# The benchmark tools are a binary of their own, not part of `casewatch`.
BENCH=$CARGO_TARGET_DIR/release/casewatch-bench
OUT=${BENCH_OUT:-$ROOT/benches/RESULTS.md}
WORK=$(mktemp -d /tmp/casewatch-bench.XXXXXX)
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-"1 2 3 4 5 6 7"}
BASE=${BENCH_BASELINE:-}
RELOAD_S=60
QUIET_S=20
only() { [[ " $ONLY " == *" $1 "* ]]; }
CLK=$(getconf CLK_TCK)

SRV=127.0.0.1:18080
AGENT=127.0.0.1:19898
BB=127.0.0.1:19115
SIM_ICS=127.0.0.1:18181
SIM_CSS=127.0.0.1:18182

if [[ $QUICK == 1 ]]; then
    FID_S=6
    CO_S=30
    CO_FREEZE_AT=10
    CPU_S=8
    SCRAPE_S=10
    SESSION_COUNTS="1 100 1000"
    RELOAD_S=20
    QUIET_S=10
else
    FID_S=20
    CO_S=60
    CO_FREEZE_AT=20
    CPU_S=20
    SCRAPE_S=30
    SESSION_COUNTS="1 100 1000 5000"
fi

# ------------------------------------------------------------ helpers --

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

log() { echo "bench: $*" >&2; }

# Records a command line for RESULTS.md (with paths made relative) and runs it.
CMDS=$WORK/commands.md
cmd() {
    local line="$*"
    line=${line//$BIN/target\/release\/casewatch}
    line=${line//$WORK\//\$W\/}
    echo "    $line" >>"$CMDS"
    "$@"
}
section() { printf '\n%s\n\n' "$*" >>"$CMDS"; }

start_bg() { # name cmd...; sets LAST_PID
    local name=$1
    shift
    local line="$*"
    line=${line//$BIN/target\/release\/casewatch}
    line=${line//$WORK\//\$W\/}
    echo "    $line &" >>"$CMDS"
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

wait_http() { # url
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    log "no answer from $1"
    return 1
}

cpu_ticks() { # pid → utime+stime in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
rss_mib() { awk '/^VmRSS:/ { printf "%.2f", $2 / 1024 }' "/proc/$1/status"; }

metric_sum() { # url metric-name
    curl -fs "$1" | awk -v m="$2" '$1 ~ "^"m"({|$)" { s += $NF } END { printf "%d", s }'
}

fig() { awk -v k="$2" '$1 == k { print $2 }' "$1" | tail -1; }
fig0() { local v; v=$(fig "$1" "$2"); echo "${v:-0}"; }

ROWS=$WORK/rows.md
# row: target, casewatch figure, peer figure ("—" if none), pass condition on
# the casewatch figure as an awk expression of x (and p for the peer).
row() {
    local target=$1 cw=$2 peer=$3 cond=$4 ratio verdict
    if [[ -z $cw || $cw == nan ]]; then
        printf '| %s | n/a | %s | — | not measured |\n' "$target" "$peer" >>"$ROWS"
        return
    fi
    ratio=$(awk -v x="$cw" -v p="$peer" 'BEGIN { if (p + 0 > 0) printf "%.2f", x / p; else print "—" }')
    verdict=$(awk -v x="$cw" -v p="$peer" "BEGIN { if ($cond) print \"pass\"; else print \"**miss**\" }")
    printf '| %s | %s | %s | %s | %s |\n' "$target" "$cw" "$peer" "$ratio" "$verdict" >>"$ROWS"
}
note_row() { printf '| %s | %s | %s | — | %s |\n' "$1" "$2" "$3" "$4" >>"$ROWS"; }

# ------------------------------------------------------------- set-up --

# The peers are needed by sections 1-3 only.
need_apt=()
if only 2; then command -v wrk >/dev/null || need_apt+=(wrk); fi
if only 3; then
    command -v prometheus-blackbox-exporter >/dev/null || need_apt+=(prometheus-blackbox-exporter)
fi
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if (only 1 || only 2) && ! command -v oha >/dev/null; then
    log "installing oha from crates.io (a few minutes)"
    cargo install oha --locked -q || log "oha did not build; its rows are left out"
fi
HAVE_OHA=0
command -v oha >/dev/null && HAVE_OHA=1

log "building release"
cargo build --release -q

OHA_V=$( ((HAVE_OHA)) && oha --version | head -1 || echo "not available")
WRK_V=$(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo "?")
BB_V=$(dpkg-query -W -f '${Version}' prometheus-blackbox-exporter 2>/dev/null || echo "?")
: >"$ROWS"
: >"$CMDS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Bench server: fixed delays, arrival log, global freeze on demand.
section "Bench server (all sections; \`\$W\` is a scratch directory):"
start_bg server "$BENCH" serve --listen $SRV
SERVER_PID=$LAST_PID
wait_http "http://$SRV/_log"

drain() { curl -fs "http://$SRV/_log" >"$1"; }

# A target on the bench server and N anonymous one-step journeys.
# journeys_yaml N interval delay-ms prefix [extra step yaml]
journeys_yaml() {
    local n=$1 interval=$2 d=$3 prefix=$4 extra=${5:-}
    # max_sessions above the journey count: the agent takes a session permit
    # even for anonymous journeys (default 16), which would cap concurrency.
    cat <<EOF
site: bench
agent:
  max_sessions: 500
targets:
  - name: bench
    base_url: http://$SRV/
    connect_timeout: 2s
    defaults:
      slow_after: 5s
      freeze_after: 10s
      give_up_after: 30s
journeys:
EOF
    for i in $(seq -w 0 $((n - 1))); do
        cat <<EOF
  - name: ${prefix}$i
    target: bench
    login: false
    schedule: { interval: $interval }
    steps:
      - name: get
        path: /d/$d/${prefix}$i
        assert:
          status: [200]
$extra
EOF
    done
}

# ------------------------------------------------- 1. timing fidelity --

if [[ " $ONLY " == *" 1 "* ]]; then
    section "1. Timing fidelity (50 steps/s: 60 journeys every 1.2 s, staggered 20 ms; oha -q 50):"
    for d in 0 10 100 1000; do
        log "fidelity d=${d}ms"
        journeys_yaml 60 1200ms "$d" f >"$WORK/fid-$d.yaml"
        drain /dev/null
        cmd "$BENCH" drive --config "$WORK/fid-$d.yaml" --duration ${FID_S}s --out "$WORK/fid-drive-$d.tsv"
        drain "$WORK/fid-srv-agent-$d.tsv"
        cmd "$BENCH" fidelity --server-log "$WORK/fid-srv-agent-$d.tsv" --delay-ms "$d" --gap-ms 1200 \
            --drive-log "$WORK/fid-drive-$d.tsv" >"$WORK/fid-agent-$d.txt"
        : >"$WORK/fid-oha-$d.txt"
        if ((HAVE_OHA)); then
            cmd oha --no-tui --output-format json -q 50 -z ${FID_S}s -c 64 "http://$SRV/d/$d/oha" >"$WORK/fid-oha-$d.json"
            drain "$WORK/fid-srv-oha-$d.tsv"
            cmd "$BENCH" fidelity --server-log "$WORK/fid-srv-oha-$d.tsv" --delay-ms "$d" --gap-ms 20 \
                --oha-json "$WORK/fid-oha-$d.json" >"$WORK/fid-oha-$d.txt"
        fi
        a=$WORK/fid-agent-$d.txt
        o=$WORK/fid-oha-$d.txt
        row "1. L−d median, d=${d} ms (ms, ≤ 0.5)" "$(fig "$a" l_minus_d_p50_ms)" "$(fig "$o" l_minus_d_p50_ms)" 'x <= 0.5'
        row "1. L−d p99, d=${d} ms (ms, ≤ 2)" "$(fig "$a" l_minus_d_p99_ms)" "$(fig "$o" l_minus_d_p99_ms)" 'x <= 2'
        note_row "1. agent L−s p50 / p99, d=${d} ms (s = the server's real hold; the agent's own share)" "$(fig "$a" l_minus_s_p50_ms) / $(fig "$a" l_minus_s_p99_ms)" "—" "server timer error p99: $(fig "$a" server_hold_minus_d_p99_ms) ms"
        note_row "1. agent L − Σphases p50 / p99 / max, d=${d} ms (the step's time in no phase; tests/integration/phases.rs checks the split on a paused clock)" "$(fig "$a" l_minus_phases_p50_ms) / $(fig "$a" l_minus_phases_p99_ms) / $(fig "$a" l_minus_phases_max_ms)" "—" "measured"
        row "1. pacing error p99, d=${d} ms (ms, ≤ 2)" "$(fig "$a" pacing_p99_ms)" "$(fig "$o" pacing_p99_ms)" 'x <= 2'
    done
fi

# ------------------------------------------ 2. coordinated omission --

if [[ " $ONLY " == *" 2 "* ]]; then
    section "2. Coordinated omission (200 steps/s for ${CO_S} s on a 10 ms endpoint, 2 s global freeze at ${CO_FREEZE_AT} s):"
    freeze_later() {
        (sleep $CO_FREEZE_AT && curl -fs -X POST "http://$SRV/_freeze?ms=2000" >/dev/null) &
        FREEZE_PID=$!
    }
    echo "    (sleep $CO_FREEZE_AT; curl -X POST 'http://$SRV/_freeze?ms=2000') &   # beside each of the runs below" >>"$CMDS"
    log "CO: agent"
    journeys_yaml 20 100ms 10 c >"$WORK/co.yaml"
    drain /dev/null
    freeze_later
    cmd "$BENCH" drive --config "$WORK/co.yaml" --duration ${CO_S}s --out "$WORK/co-drive.tsv"
    wait "$FREEZE_PID"
    drain "$WORK/co-srv-agent.tsv"
    cmd "$BENCH" co --server-log "$WORK/co-srv-agent.tsv" --delay-ms 10 --drive-log "$WORK/co-drive.tsv" >"$WORK/co-agent.txt"
    : >"$WORK/co-oha.txt"
    : >"$WORK/co-ohac.txt"
    if ((HAVE_OHA)); then
        log "CO: oha"
        freeze_later
        cmd oha --no-tui --output-format json -q 200 -z ${CO_S}s -c 20 "http://$SRV/d/10/oha" >"$WORK/co-oha.json"
        wait "$FREEZE_PID"
        drain "$WORK/co-srv-oha.tsv"
        cmd "$BENCH" co --server-log "$WORK/co-srv-oha.tsv" --delay-ms 10 --duration ${CO_S}s --oha-json "$WORK/co-oha.json" >"$WORK/co-oha.txt"
        log "CO: oha --latency-correction"
        freeze_later
        cmd oha --no-tui --output-format json -q 200 -z ${CO_S}s -c 20 --latency-correction "http://$SRV/d/10/ohac" >"$WORK/co-ohac.json"
        wait "$FREEZE_PID"
        drain "$WORK/co-srv-ohac.tsv"
        cmd "$BENCH" co --server-log "$WORK/co-srv-ohac.tsv" --delay-ms 10 --duration ${CO_S}s --oha-json "$WORK/co-ohac.json" >"$WORK/co-ohac.txt"
    fi
    log "CO: wrk"
    cat >"$WORK/pct.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("cw_p99 %d\n", latency:percentile(99)))
  io.write(string.format("cw_p999 %d\n", latency:percentile(99.9)))
  io.write(string.format("cw_requests %d\n", summary.requests))
end
EOF
    freeze_later
    # wrk has no rate limit: 2 connections on a 10 ms endpoint is ~200 req/s.
    cmd wrk -t1 -c2 -d${CO_S}s -s "$WORK/pct.lua" "http://$SRV/d/10/wrk" >"$WORK/co-wrk.out"
    wait "$FREEZE_PID"
    drain "$WORK/co-srv-wrk.tsv"
    cmd "$BENCH" co --server-log "$WORK/co-srv-wrk.tsv" --delay-ms 10 --duration ${CO_S}s --wrk-out "$WORK/co-wrk.out" >"$WORK/co-wrk.txt"

    a=$WORK/co-agent.txt
    truth99=$(fig "$a" truth_p99_ms)
    truth999=$(fig "$a" truth_p999_ms)
    within='x >= 0.9 * p && x <= 1.1 * p'
    row "2. agent journey p99 from intended start vs open-loop truth (ms, ±10%)" "$(fig "$a" agent_run_p99_ms)" "$truth99" "$within"
    row "2. agent journey p99.9 vs truth (ms, ±10%)" "$(fig "$a" agent_run_p999_ms)" "$truth999" "$within"
    row "2. agent step p99 (from send) vs truth (ms)" "$(fig "$a" agent_step_p99_ms)" "$truth99" "$within"
    row "2. agent p99 with skipped slots counted as the agent's journey histogram records them, vs truth (ms)" "$(fig "$a" agent_corrected_p99_ms)" "$truth99" "$within"
    row "2. agent p99.9 with skipped slots counted as the agent's journey histogram records them, vs truth (ms)" "$(fig "$a" agent_corrected_p999_ms)" "$truth999" "$within"
    row "2. missed slots counted vs slots omitted by the pause" "$(fig "$a" agent_missed)" "$(fig "$a" omitted_slots)" "$within"
    row "2. schedule lateness max (ms; no burst after the freeze)" "$(fig "$a" agent_lateness_max_ms)" "—" 'x <= 5'
    for peer in oha ohac; do
        f=$WORK/co-$peer.txt
        [[ -s $f ]] || continue
        label="oha"
        [[ $peer == ohac ]] && label="oha --latency-correction"
        row "2. $label p99 vs its open-loop truth (ms, ±10%)" "$(fig "$f" oha_p99_ms)" "$(fig "$f" truth_p99_ms)" "$within"
        row "2. $label p99.9 vs truth (ms, ±10%)" "$(fig "$f" oha_p999_ms)" "$(fig "$f" truth_p999_ms)" "$within"
    done
    f=$WORK/co-wrk.txt
    row "2. wrk -c2 p99 vs open-loop truth (ms, ±10%)" "$(fig "$f" wrk_p99_ms)" "$(fig "$f" truth_p99_ms)" "$within"
    row "2. wrk -c2 p99.9 vs truth (ms, ±10%)" "$(fig "$f" wrk_p999_ms)" "$(fig "$f" truth_p999_ms)" "$within"
fi

# ------------------------------------------------------ 3. CPU per step --

if [[ " $ONLY " == *" 3 "* ]]; then
    section "3. CPU per step (500 steps/s: 50 journeys every 100 ms, status + body assertions + JSONPath extraction; blackbox driven at the same rate):"
    extra=$(
        cat <<'YAML'
          body_contains: ['"status":"open"']
          body_matches: ['"worker":"sw\.[a-z]+"']
        extract:
          - var: case_id
            jsonpath: '$.case.id'
YAML
    )
    journeys_yaml 50 100ms 0 p "$extra" >"$WORK/cpu.yaml"
    log "CPU: agent"
    start_bg agent-cpu "$BIN" run --config "$WORK/cpu.yaml" --listen $AGENT
    pid=$LAST_PID
    wait_http "http://$AGENT/metrics"
    sleep 3
    t1=$(cpu_ticks "$pid")
    s1=$(metric_sum "http://$AGENT/metrics" casewatch_step_outcomes_total)
    sleep $CPU_S
    t2=$(cpu_ticks "$pid")
    s2=$(metric_sum "http://$AGENT/metrics" casewatch_step_outcomes_total)
    ok=$(curl -fs "http://$AGENT/metrics" | awk '/^casewatch_step_outcomes_total/ && /outcome="ok"/ { s += $NF } END { print s + 0 }')
    stop_pid "$pid"
    echo "    # CPU: utime+stime from /proc/PID/stat over ${CPU_S} s / steps from casewatch_step_outcomes_total" >>"$CMDS"
    agent_cpu=$(awk -v t=$((t2 - t1)) -v s=$((s2 - s1)) -v c="$CLK" 'BEGIN { printf "%.4f", t * 1000 / c / s }')
    log "agent: $((s2 - s1)) steps, $((t2 - t1)) ticks, ok total $ok"

    log "CPU: blackbox"
    cat >"$WORK/bb.yml" <<'EOF'
modules:
  bench:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp:
        - '"status":"open"'
        - '"worker":"sw\.[a-z]+"'
EOF
    start_bg blackbox prometheus-blackbox-exporter --config.file="$WORK/bb.yml" --web.listen-address=$BB
    pid=$LAST_PID
    wait_http "http://$BB/metrics"
    t1=$(cpu_ticks "$pid")
    cmd "$BENCH" load --url "http://$BB/probe?module=bench&target=http://$SRV/d/0/bb" --rate 500 --duration ${CPU_S}s >"$WORK/bb-load.txt"
    t2=$(cpu_ticks "$pid")
    probes=$(fig "$WORK/bb-load.txt" count)
    stop_pid "$pid"
    bb_cpu=$(awk -v t=$((t2 - t1)) -v s="$probes" -v c="$CLK" 'BEGIN { printf "%.4f", t * 1000 / c / s }')
    log "blackbox: $probes probes ($(fig "$WORK/bb-load.txt" errors) failed), $((t2 - t1)) ticks"
    row "3. CPU per HTTP step (ms, ≤ 0.25)" "$agent_cpu" "—" 'x <= 0.25'
    row "3. CPU per probe vs blackbox_exporter (ms; ratio ≤ 0.5)" "$agent_cpu" "$bb_cpu" 'x <= 0.5 * p'
fi

# ------------------------------------------------------------ 4. memory --

if [[ " $ONLY " == *" 4 "* ]]; then
    section "4. Memory (RSS from /proc/PID/status):"
    log "memory: idle"
    journeys_yaml 1 1h 0 idle >"$WORK/idle.yaml"
    start_bg agent-idle "$BIN" run --config "$WORK/idle.yaml" --listen $AGENT
    pid=$LAST_PID
    wait_http "http://$AGENT/metrics"
    sleep 5
    idle=$(rss_mib "$pid")
    stop_pid "$pid"
    row "4. idle RSS (MiB, ≤ 20)" "$idle" "—" 'x <= 20'

    cat >"$WORK/quiet.yaml" <<'EOF'
users: [sw.bench]
EOF
    export CASEWATCH_PASSWORD=bench-password
    start_bg sim "$BIN" sim --profile "$WORK/quiet.yaml" --ics-listen $SIM_ICS --css-listen $SIM_CSS
    sim_pid=$LAST_PID
    wait_http "http://$SIM_ICS/login"
    pts=""
    for n in $SESSION_COUNTS; do
        log "memory: $n sessions"
        cat >"$WORK/sess-$n.yaml" <<EOF
site: bench
agent:
  max_sessions: 6000
targets:
  - name: ics
    base_url: http://$SIM_ICS/
    connect_timeout: 2s
    credentials:
      username: { value: sw.bench }
      password: { env: CASEWATCH_PASSWORD }
    login:
      - name: login_page
        path: /login
        extract:
          - var: csrf_token
            css: 'input[name="csrf_token"]'
            attr: value
      - name: login_submit
        method: POST
        path: /login
        form:
          username: \${username}
          password: \${password}
          csrf_token: \${csrf_token}
        assert:
          status: [200]
    logout:
      name: logout
      path: /logout
    keep_sessions:
      count: $n
      stagger: 2ms
      every: 10m
      max_age: 2h
      keepalive:
        name: keepalive
        path: /home
journeys:
  - name: idle
    target: ics
    login: false
    schedule: { interval: 1h }
    steps:
      - name: login_page
        path: /login
EOF
        start_bg agent-sess-$n "$BIN" run --config "$WORK/sess-$n.yaml" --listen $AGENT
        pid=$LAST_PID
        wait_http "http://$AGENT/metrics"
        live=0
        for _ in $(seq 1 120); do
            live=$(metric_sum "http://$AGENT/metrics" casewatch_sessions_active)
            ((live >= n)) && break
            sleep 0.5
        done
        sleep 2
        rss=$(rss_mib "$pid")
        log "  $live sessions live, RSS $rss MiB"
        pts="$pts $n:$rss"
        note_row "4. RSS with $n kept sessions (MiB; $live live)" "$rss" "—" "measured"
        stop_pid "$pid"
    done
    stop_pid "$sim_pid"
    # Least-squares slope of RSS over sessions, in MiB per session.
    slope=$(echo "$pts" | tr ' ' '\n' | awk -F: 'NF == 2 { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
        END { printf "%.4f", (n * sxy - sx * sy) / (n * sxx - sx * sx) }')
    row "4. RSS slope per kept logged-in session (MiB, ≤ 0.2; k6: 1–5 MB per VU)" "$slope" "—" 'x <= 0.2'
fi

# ------------------------------------------------------- 5. scrape cost --

if [[ " $ONLY " == *" 5 "* ]]; then
    section "5. Scrape cost (/metrics at 10 scrapes/s while probing 142 journeys every 1 s):"
    journeys_yaml 142 1s 0 s >"$WORK/scrape.yaml"
    start_bg agent-scrape "$BIN" run --config "$WORK/scrape.yaml" --listen $AGENT
    pid=$LAST_PID
    wait_http "http://$AGENT/metrics"
    sleep 6
    series=$(curl -fs "http://$AGENT/metrics" | grep -vc '^#')
    bytes=$(curl -fs "http://$AGENT/metrics" | wc -c)
    cmd "$BENCH" load --url "http://$AGENT/metrics" --rate 10 --duration ${SCRAPE_S}s >"$WORK/scrape.txt"
    stop_pid "$pid"
    note_row "5. series exposed (bytes per scrape: $bytes)" "$series" "—" "$( ((series >= 10000)) && echo '≥ 10,000' || echo '**below 10,000**')"
    row "5. /metrics p99 at $series series while probing (ms, ≤ 25)" "$(fig "$WORK/scrape.txt" p99_ms)" "—" 'x <= 25'
fi

# -------------------------------------- 6. reload at the size cap --

# Waits (up to 5 minutes: a large config takes a while to start on some
# builds) until something answers HTTP at the URL, whatever the status.
wait_up() {
    for _ in $(seq 1 1500); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") != 000 ]] && return 0
        sleep 0.2
    done
    log "no answer from $1"
    return 1
}

# builds: "new" (this tree) and, with BENCH_BASELINE, "base".
builds() {
    echo new
    [[ -n $BASE && -x $BASE ]] && echo base
    return 0
}
bin_of() { if [[ $1 == base ]]; then echo "$BASE"; else echo "$BIN"; fi; }

if only 6; then
    section "6. A config at the 1 MiB cap: ${QUIET_S} s as it is, then reloaded every 2 s for ${RELOAD_S} s, while a journey ('probe') runs every 1 s and /metrics is read once a second (lateness of the probe's runs from the journal, for each phase):"
    cmd "$BENCH" large-config --base-url "http://$SRV/" --probe-path /d/0/probe --probe-interval 1s --out "$WORK/large.yaml" >"$WORK/large.txt"
    for b in $(builds); do
        bin=$(bin_of "$b")
        log "reload ($b build)"
        rm -f "$WORK/reload-$b.db"*
        start_bg agent-reload-$b "$bin" run --config "$WORK/large.yaml" --listen $AGENT --journal "$WORK/reload-$b.db"
        pid=$LAST_PID
        wait_up "http://$AGENT/-/healthy"
        sleep 5
        quiet=$(date +%s.%N)
        cmd "$BENCH" load --url "http://$AGENT/metrics" --rate 1 --duration ${QUIET_S}s >"$WORK/quiet-scrape-$b.txt"
        since=$(date +%s.%N)
        "$BENCH" load --url "http://$AGENT/metrics" --rate 1 --duration ${RELOAD_S}s >"$WORK/reload-scrape-$b.txt" &
        load_pid=$!
        cmd "$BENCH" reloads --url "http://$AGENT/-/reload" --every 2s --count $((RELOAD_S / 2)) >"$WORK/reloads-$b.txt"
        wait "$load_pid"
        until_s=$(date +%s.%N)
        stop_pid "$pid"
        cmd "$BENCH" lateness --journal "$WORK/reload-$b.db" --journey probe --since "$quiet" --until "$since" >"$WORK/quiet-late-$b.txt"
        cmd "$BENCH" lateness --journal "$WORK/reload-$b.db" --journey probe --since "$since" --until "$until_s" >"$WORK/reload-late-$b.txt"
    done
    echo "    $BENCH load --url http://$AGENT/metrics --rate 1 --duration ${RELOAD_S}s &   # beside each reloads run" | sed "s#$BIN#target/release/casewatch#" >>"$CMDS"
    # file-of: the new build's file, or /dev/null when the base has none.
    file_of() { if [[ -f $1 ]]; then echo "$1"; else echo /dev/null; fi; }
    size="$(fig "$WORK/large.txt" bytes) bytes, $(fig "$WORK/large.txt" journeys) journeys"
    qn=$WORK/quiet-late-new.txt
    qo=$(file_of "$WORK/quiet-late-base.txt")
    n=$WORK/reload-late-new.txt
    o=$(file_of "$WORK/reload-late-base.txt")
    note_row "6. control, no reloads: probe lateness p99 / max (ms; $(fig "$qn" runs) runs; config $size)" "$(fig "$qn" lateness_p99_ms) / $(fig "$qn" lateness_max_ms)" "$(fig "$qo" lateness_p99_ms) / $(fig "$qo" lateness_max_ms)" "the machine's own noise"
    row "6. probe lateness p99 during reloads (ms, ≤ 50; $(fig "$n" runs) runs)" "$(fig "$n" lateness_p99_ms)" "$(fig "$o" lateness_p99_ms)" 'x <= 50'
    row "6. probe lateness max during reloads (ms)" "$(fig "$n" lateness_max_ms)" "$(fig "$o" lateness_max_ms)" 'x <= 50'
    row "6. probe slots missed during reloads (= 0)" "$(fig "$n" missed)" "$(fig "$o" missed)" 'x == 0'
    rn=$WORK/reloads-new.txt
    ro=$WORK/reloads-base.txt
    [[ -f $ro ]] || ro=/dev/null
    note_row "6. reload time p50 / max (ms; $(fig "$rn" reloads) reloads, $(fig "$rn" failed) failed)" "$(fig "$rn" reload_p50_ms) / $(fig "$rn" reload_max_ms)" "$(fig "$ro" reload_p50_ms) / $(fig "$ro" reload_max_ms)" "measured"
    qs=$WORK/quiet-scrape-new.txt
    qso=$(file_of "$WORK/quiet-scrape-base.txt")
    sn=$WORK/reload-scrape-new.txt
    so=$(file_of "$WORK/reload-scrape-base.txt")
    note_row "6. control, no reloads: /metrics p50 / max (ms; $(fig "$qs" count) scrapes of the large config's series)" "$(fig "$qs" p50_ms) / $(fig "$qs" max_ms)" "$(fig "$qso" p50_ms) / $(fig "$qso" max_ms)" "measured"
    note_row "6. /metrics p50 / max during reloads (ms; $(fig "$sn" count) scrapes)" "$(fig "$sn" p50_ms) / $(fig "$sn" max_ms)" "$(fig "$so" p50_ms) / $(fig "$so" max_ms)" "measured"
fi

# ----------------------------------------- 7. wrong-password flood --

if only 7; then
    section "7. Basic auth (bcrypt cost 10) under 200 wrong-password requests, 16 at a time, each password different, while a journey ('auth0') runs every 1 s and correct scrapes go 10 a second (lateness from the journal, over the flood):"
    export BENCH_PASSWORD=bench-scrape-password
    hash=$("$BENCH" hash-password --cost 10)
    echo "    BENCH_PASSWORD=... target/release/casewatch-bench hash-password --cost 10   # into \$W/web.yml as basic_auth_users.prometheus" >>"$CMDS"
    printf 'basic_auth_users:\n  prometheus: %s\n' "$hash" >"$WORK/web.yml"
    journeys_yaml 1 1s 0 auth >"$WORK/auth.yaml"
    for b in $(builds); do
        bin=$(bin_of "$b")
        log "auth flood ($b build)"
        rm -f "$WORK/auth-$b.db"*
        start_bg agent-auth-$b "$bin" run --config "$WORK/auth.yaml" --listen $AGENT --journal "$WORK/auth-$b.db" --web.config.file "$WORK/web.yml"
        pid=$LAST_PID
        wait_up "http://$AGENT/-/healthy"
        sleep 3
        since=$(date +%s.%N)
        cmd "$BENCH" auth-flood --url "http://$AGENT/metrics" --user prometheus --wrong 200 --concurrency 16 --scrape-rate 10 --quiet ${QUIET_S}s >"$WORK/flood-$b.txt"
        sleep 1
        stop_pid "$pid"
        f=$WORK/flood-$b.txt
        cmd "$BENCH" lateness --journal "$WORK/auth-$b.db" --journey auth0 --since "$since" --until "$(fig "$f" flood_start)" >"$WORK/quiet-auth-late-$b.txt"
        cmd "$BENCH" lateness --journal "$WORK/auth-$b.db" --journey auth0 --since "$(fig "$f" flood_start)" --until "$(fig "$f" flood_end)" >"$WORK/flood-late-$b.txt"
    done
    n=$WORK/flood-new.txt
    o=$WORK/flood-base.txt
    [[ -f $o ]] || o=/dev/null
    ln=$WORK/flood-late-new.txt
    lo=$WORK/flood-late-base.txt
    [[ -f $lo ]] || lo=/dev/null
    qn=$WORK/quiet-auth-late-new.txt
    qo=$WORK/quiet-auth-late-base.txt
    [[ -f $qo ]] || qo=/dev/null
    note_row "7. control, no flood: journey lateness p99 / max (ms; $(fig "$qn" runs) runs)" "$(fig "$qn" lateness_p99_ms) / $(fig "$qn" lateness_max_ms)" "$(fig "$qo" lateness_p99_ms) / $(fig "$qo" lateness_max_ms)" "the machine's own noise"
    note_row "7. control, no flood: correct scrape p99 / max (ms; $(fig "$n" quiet_count) scrapes)" "$(fig "$n" quiet_p99_ms) / $(fig "$n" quiet_max_ms)" "$(fig "$o" quiet_p99_ms) / $(fig "$o" quiet_max_ms)" "the machine's own noise"
    row "7. journey lateness p99 during the flood (ms, ≤ 50; $(fig "$ln" runs) runs)" "$(fig "$ln" lateness_p99_ms)" "$(fig "$lo" lateness_p99_ms)" 'x <= 50'
    row "7. journey lateness max during the flood (ms)" "$(fig "$ln" lateness_max_ms)" "$(fig "$lo" lateness_max_ms)" 'x <= 50'
    row "7. journey slots missed during the flood (= 0)" "$(fig "$ln" missed)" "$(fig "$lo" missed)" 'x == 0'
    row "7. correct scrape p99 during the flood (ms, ≤ 100; $(fig "$n" good_count) scrapes, $(fig "$n" good_errors) failed)" "$(fig "$n" good_p99_ms)" "$(fig "$o" good_p99_ms)" 'x <= 100'
    row "7. correct scrape max during the flood (ms)" "$(fig "$n" good_max_ms)" "$(fig "$o" good_max_ms)" 'x <= 100'
    note_row "7. flood length (s; wrong answered 401 / 429)" "$(fig "$n" flood_s) ($(fig0 "$n" wrong_status_401) / $(fig0 "$n" wrong_status_429))" "$(fig "$o" flood_s) ($(fig0 "$o" wrong_status_401) / $(fig0 "$o" wrong_status_429))" "measured"
fi

stop_pid "$SERVER_PID"

# ------------------------------------------------------------- report --

mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
mkdir -p "$(dirname "$OUT")"
{
    echo "# casewatch benchmarks (sections $ONLY)"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')$([[ $QUICK == 1 ]] && echo ' (BENCH_QUICK: short smoke run, rough figures)')"
    echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $mem RAM, Linux $(uname -r); shared with other work, so treat small differences as noise"
    echo "- Load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg). Above ~1 the machine was busy with other work and tail figures (p99) of casewatch and peers alike carry scheduling noise."
    echo "- casewatch: $rev + working tree, release build"
    if only 1 || only 2 || only 3; then
        echo "- Peers: $OHA_V; wrk $WRK_V (Debian); prometheus-blackbox-exporter $BB_V (Debian)"
    fi
    if [[ -n $BASE ]] && (only 6 || only 7); then
        echo "- Sections 6 and 7: the peer column is the baseline build \`$BASE\` ($(basename "$BASE")), the same machine and inputs"
    fi
    echo
    echo "Ratio is casewatch ÷ peer (or ÷ the open-loop truth in section 2; ÷ the baseline build in sections 6 and 7). Every figure comes from one run of \`scripts/bench.sh\`."
    echo
    echo "| target | casewatch | peer / reference | ratio | pass/miss |"
    echo "| --- | --- | --- | --- | --- |"
    cat "$ROWS"
    echo
    echo "## Commands"
    echo
    echo "Release binary: \`cargo build --release\`. \`\$W\` is the scratch directory holding the generated configs (they are written by \`scripts/bench.sh\`, which is the authority on their content)."
    cat "$CMDS"
    if [[ -f $ROOT/benches/NOTES.md ]]; then
        echo
        cat "$ROOT/benches/NOTES.md"
    fi
} >"$OUT"
log "wrote $OUT (scratch files in $WORK)"
