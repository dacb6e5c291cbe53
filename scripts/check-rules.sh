#!/usr/bin/env bash
# Checks the Prometheus configuration, the alert and recording rules, their
# promtool unit tests, and the Grafana dashboards' structure.
#
#   scripts/check-rules.sh
#
# The promtool scenarios take a few minutes (they run days of production
# rates). Needs promtool (Debian: apt-get install -y prometheus) and python3.
# Exits non-zero on any problem.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2

if ! command -v promtool >/dev/null 2>&1; then
    echo "check-rules: promtool not found (apt-get install -y prometheus)" >&2
    exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "check-rules: python3 not found" >&2
    exit 2
fi

failed=0
step() {
    echo "==> $*"
    if ! "$@"; then
        echo "check-rules: FAILED: $*" >&2
        failed=1
    fi
}

# promtool reports linter findings (e.g. duplicate rules) on its output but
# only fails on errors, so also fail on any "WARNING" in its output.
no_warnings() {
    local out
    out=$("$@" 2>&1)
    local rc=$?
    printf '%s\n' "$out"
    if printf '%s\n' "$out" | grep -qi 'warning'; then
        echo "check-rules: warnings from: $*" >&2
        return 1
    fi
    return "$rc"
}

step no_warnings promtool check config config/prometheus.yml
# The shipped file_sd list resolves, and every target in it names its site.
sd_names_sites() {
    local out
    out=$(promtool check service-discovery config/prometheus.yml casewatch 2>/dev/null) || return 1
    printf '%s\n' "$out" | python3 -c 'import json, sys
targets = json.load(sys.stdin)
assert targets and all(t["labels"].get("site") for t in targets), targets
print(f"  SUCCESS: {len(targets)} target(s), each with a site")'
}
step sd_names_sites
step no_warnings promtool check rules config/alerts/*.yml
# The production-rate scenarios and the dashboards are generated: stale
# output fails here before promtool runs it.
step python3 scripts/alert-scenarios.py --check
step python3 scripts/dashboards.py --check
step promtool test rules config/alerts/tests/*.yml

shopt -s nullglob
dashboards=(dashboards/*.json)
if [ "${#dashboards[@]}" -eq 0 ]; then
    echo "check-rules: no dashboards in dashboards/" >&2
    failed=1
fi
for dashboard in "${dashboards[@]}"; do
    step python3 -m json.tool "$dashboard" /dev/null
done

echo "==> dashboard structure"
if ! python3 - "${dashboards[@]}" <<'PY'
import json
import re
import sys

problems = []
uids = {}
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: cannot parse: {e}")
        continue
    for key in ("uid", "title"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            problems.append(f"{path}: missing dashboard {key}")
    uid = d.get("uid")
    if uid in uids:
        problems.append(f"{path}: uid {uid!r} also used by {uids[uid]}")
    uids[uid] = path
    if "casewatch" not in d.get("tags", []):
        problems.append(f"{path}: tags lack 'casewatch'")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    # The Fleet board shows every site at once; the others one site at a time.
    fleet = d.get("uid") == "casewatch-fleet"
    for var in ("datasource",) if fleet else ("datasource", "site", "target", "journey"):
        if var not in variables:
            problems.append(f"{path}: no template variable {var!r}")
    # One site at a time: "All" at 40 sites is 160 tiles.
    site = variables.get("site", {})
    if site.get("multi") or site.get("includeAll"):
        problems.append(f"{path}: variable 'site' must be single-select without All")

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    all_panels = list(panels(d.get("panels", [])))
    if not all_panels:
        problems.append(f"{path}: no panels")
    for p in all_panels:
        name = f"{path}: panel {p.get('id')} ({p.get('title') or 'untitled'})"
        if p.get("type") == "row":
            continue
        if not (p.get("title") or "").strip():
            problems.append(f"{name}: no title")
        if not (p.get("description") or "").strip():
            problems.append(f"{name}: no description")
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not (unit or "").strip():
            problems.append(f"{name}: no fieldConfig.defaults.unit")
        ds = p.get("datasource")
        if ds != {"type": "prometheus", "uid": "${datasource}"}:
            problems.append(f"{name}: datasource is {ds!r}, not the templated one")
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{name}: no queries")
        for t in targets:
            if not (t.get("expr") or "").strip():
                problems.append(f"{name}: query {t.get('refId')} has no expr")
            # The board reads recording rules only: raw series over 30 days
            # at 40 sites are tens of billions of samples.
            if fleet and "$site" in (t.get("expr") or ""):
                problems.append(f"{name}: the Fleet board has no $site")
            if d.get("uid") == "casewatch-board":
                raw = re.findall(r"(?<![:\w])casewatch_[a-z_]+(?![:\w])", t.get("expr") or "")
                if raw:
                    problems.append(f"{name}: reads raw series {sorted(set(raw))}, not recording rules")
for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"  SUCCESS: {len(sys.argv) - 1} dashboards")
PY
then
    echo "check-rules: FAILED: dashboard structure" >&2
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    echo "check-rules: problems found" >&2
    exit 1
fi
echo "check-rules: all good"
