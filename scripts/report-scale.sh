#!/usr/bin/env bash
# The report's time and peak memory as the journal grows: one site over 1,
# 30, 90 and 365 days at production rates (with the agent's per-minute
# HdrHistogram rows), the same year compacted, and a fleet of 40 sites over
# a year. Writes the table to benches/REPORT-SCALE.md.
#
#   scripts/report-scale.sh [folder of the release binaries] [work folder]
#
# The fleet's journals are written without the per-minute HdrHistogram rows,
# which no report reads (about 11 GB for 40 sites; FLEET_SITES=0 skips it).
set -euo pipefail
dir=${1:-target/release}
work=${2:-$(mktemp -d)}
bin=$dir/casewatch
bench=$dir/casewatch-bench
out=benches/REPORT-SCALE.md
fleet_sites=${FLEET_SITES:-40}
end=2026-11-30T00:00:00Z
mkdir -p "$work"

measure() { # label, command...
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/err.txt" || {
    cat "$work/err.txt" >&2
    return 1
  }
  read -r secs kib <"$work/time.txt"
  printf '| %s | %s | %.1f | %.0f |\n' "$label" "$*" "$secs" "$((kib / 1024))"
}

rows=()
for days in 1 30 90 365; do
  j="$work/site-$days"
  [ -f "$j/site-01.db" ] || "$bench" journals --sites 1 --days "$days" --out "$j" --end "$end" --seed 1 >/dev/null
  size=$(du -m "$j/site-01.db" | cut -f1)
  for format in html json; do
    rows+=("$(measure "1 site x $days days ($size MB), $format" "$bin" report --journal "$j/site-01.db" --format "$format")")
  done
done
# `--older-than` counts back from now; the journals end at $end.
since_end=$((($(date +%s) - $(date -d "$end" +%s)) / 86400))
compacted="$work/site-365-compacted.db"
cp "$work/site-365/site-01.db" "$compacted"
"$bin" journal compact "$compacted" --older-than "$((since_end + 37))d" >/dev/null 2>&1
size=$(du -m "$compacted" | cut -f1)
rows+=("$(measure "1 site x 365 days, compacted after 37 days ($size MB), json" "$bin" report --journal "$compacted" --format json)")
if [ "$fleet_sites" -gt 0 ]; then
  f="$work/fleet"
  [ -d "$f" ] || "$bench" journals --sites "$fleet_sites" --days 365 --out "$f" --end "$end" --seed 1 --no-histograms >/dev/null
  size=$(du -sm "$f" | cut -f1)
  rows+=("$(measure "$fleet_sites sites x 365 days ($size MB, no per-minute histograms), fleet json" "$bin" report --journal "$f" --format json)")
  # As the agent keeps them: raw for keep_successes (90 days), older hours
  # folded into rollups.
  for db in "$f"/*.db; do
    "$bin" journal compact "$db" --older-than "$((since_end + 90))d" >/dev/null 2>&1
  done
  size=$(du -sm "$f" | cut -f1)
  rows+=("$(measure "$fleet_sites sites x 365 days, raw for the last 90 days as the agent keeps them ($size MB), fleet json" "$bin" report --journal "$f" --format json)")
fi

{
  echo "# The report at the size the board reads"
  echo
  echo "Release build on this 2-core machine; journals from \`casewatch-bench journals\` at production rates (three journeys every 5 minutes, three kept sessions, per-minute HdrHistogram rows), ending $end. Peak resident memory and wall time from GNU time. Made by \`scripts/report-scale.sh\` ($(uptime | sed 's/.*load average/load average/'))."
  echo
  echo "| journal | command | seconds | peak RSS (MiB) |"
  echo "|---|---|---:|---:|"
  printf '%s\n' "${rows[@]}"
} >"$out"
cat "$out"
