#!/usr/bin/env python3
"""Times every query of a dashboard (the board by default) against a
Prometheus, over a time range, as Grafana would send them; prints a Markdown
table.

    python3 scripts/fleet-queries.py --url http://127.0.0.1:19090 --end UNIX_TIME [--range 30d] [--runs 5] [--dashboard dashboards/casewatch-board.json]

Panels, annotations and variables are read from the dashboard's JSON.
Timeseries panels are range queries at the step Grafana would use (the
query's minimum interval, else range / 1000 points); stats, bar charts and
bar gauges are instant queries with `$__range` the whole range; the change
annotation is a range query at its 60 s step; `label_values(...)` is the
label-values API with its `match[]` over the range, `query_result(...)` an
instant query. `$site` is the first site, `$target` and `$journey` All, and
each change row is asked once per change. Each query runs once cold and
`--runs` more times; Prometheus's own `stats=all` gives the samples it read.
Exits 1 if a query fails or returns no data.
"""

import argparse
import json
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(text):
    return int(text[:-1]) * UNITS[text[-1]]


def get(url, path, params):
    query = urllib.parse.urlencode(params, doseq=True)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}{path}?{query}", timeout=300) as response:
            body = json.load(response)
    except urllib.error.HTTPError as e:
        body = {"status": "error", "error": e.read().decode(errors="replace")}
    return time.perf_counter() - started, body


def panels(dashboard):
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        if panel.get("type") != "row":
            yield panel


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--range", default="30d")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--end", type=float, required=True, help="unix time the board is looked at")
    ap.add_argument("--dashboard", default="dashboards/casewatch-board.json")
    args = ap.parse_args()
    board = json.loads((ROOT / args.dashboard).read_text())
    span = seconds(args.range)
    end = args.end
    start = end - span
    _, sites = get(args.url, "/api/v1/label/site/values",
                   {"match[]": "casewatch_build_info", "start": start, "end": end})
    # A board without $site (the Fleet board) needs none.
    site = min(sites["data"] or [""])
    _, changes = get(args.url, "/api/v1/query",
                     {"query": "max by (change) (casewatch_change_timestamp_seconds)", "time": end})
    changes = {r["metric"]["change"]: float(r["value"][1]) for r in changes["data"]["result"]}
    default_step = max(60, span // 1000)
    # Grafana widens a step that would ask for more than Prometheus's
    # 11,000 points a series.
    def widen(step):
        return max(step, -(-span // 11000))

    def fill(expr, step, change_at=None):
        expr = (expr.replace("$__range", f"{span}s").replace("$__interval", f"{step}s")
                .replace("$site", site))
        if change_at is not None:
            expr = expr.replace("$change", f"{change_at:.0f}")
        return re.sub(r"\$\{?(target|journey)\}?", ".*", expr)

    asks = []  # (what, kind, path, params)
    for panel in panels(board):
        in_change_row = "$change" in json.dumps(panel["targets"])
        for target in panel["targets"]:
            step = seconds(target["interval"]) if target.get("interval") else default_step
            for change, at in (changes.items() if in_change_row else [(None, None)]):
                what = panel["title"] + (f" [{target['legendFormat']}]" if target.get("legendFormat") else "")
                if change:
                    what += f" ({change})"
                expr = fill(target["expr"], step, at)
                if target.get("instant"):
                    asks.append((what, "instant", "/api/v1/query", {"query": expr, "time": end}))
                else:
                    asks.append((what, f"range, step {widen(step)}s", "/api/v1/query_range",
                                 {"query": expr, "start": start, "end": end, "step": widen(step)}))
    for annotation in board["annotations"]["list"]:
        if annotation.get("expr"):
            step = widen(seconds(annotation.get("step", "60s")))
            asks.append((f"annotation {annotation['name']}", f"range, step {step}s",
                         "/api/v1/query_range",
                         {"query": fill(annotation["expr"], step), "start": start, "end": end,
                          "step": step}))
    for var in board["templating"]["list"]:
        text = var.get("query") if isinstance(var.get("query"), str) else None
        if not text or var.get("type") != "query":
            continue
        text = fill(text, default_step)
        if m := re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text.strip()):
            asks.append((f"variable {var['name']}", "label values",
                         f"/api/v1/label/{m[2]}/values",
                         {"match[]": m[1], "start": start, "end": end}))
        elif m := re.fullmatch(r"query_result\((.+)\)", text.strip()):
            asks.append((f"variable {var['name']}", "instant", "/api/v1/query",
                         {"query": m[1], "time": end}))

    rows, every, failures = [], [], []
    for what, kind, path, params in asks:
        params = dict(params)
        if "query" in params:
            params["stats"] = "all"
        cold, body = get(args.url, path, params)
        if body.get("status") != "success":
            failures.append(f"{what}: {body}")
            continue
        data = body["data"]
        empty = not (data if isinstance(data, list) else data.get("result"))
        if empty:
            failures.append(f"{what}: no data")
        samples = (data.get("stats", {}) or {}).get("samples", {}).get("totalQueryableSamples") \
            if isinstance(data, dict) else None
        warm = []
        for _ in range(args.runs):
            took, _ = get(args.url, path, params)
            warm.append(took)
        every.extend(warm)
        rows.append((what, kind, cold, percentile(warm, 0.5), max(warm), samples))

    print(f"| query | kind | cold s | median s | max of {args.runs} s | samples read |")
    print("|---|---|---:|---:|---:|---:|")
    for what, kind, cold, median, worst, samples in rows:
        shown = f"{samples:,}" if isinstance(samples, int) else "-"
        print(f"| {what} | {kind} | {cold:.3f} | {median:.3f} | {worst:.3f} | {shown} |")
    print()
    print(f"{len(rows)} queries, {len(every)} timed runs over {args.range}: "
          f"p50 {percentile(every, 0.5):.3f} s, p95 {percentile(every, 0.95):.3f} s, "
          f"max {max(every):.3f} s; slowest cold run {max(r[2] for r in rows):.3f} s.")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
