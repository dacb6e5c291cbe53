#!/usr/bin/env python3
"""Writes OpenMetrics files holding what a fleet of casewatch agents and the
shipped rules leave in Prometheus for the board dashboard to read: the
`casewatch_fleet_5m` recording rules of config/alerts/casewatch.rules.yml
(one sample every 5 minutes, as that group is evaluated), with the names and
labels those rules produce, and the raw series the board's variables and
annotations read (`casewatch_build_info`, `casewatch_change_timestamp_seconds`,
`casewatch_journey_runs_total`).

    python3 scripts/fleet-backfill.py OUT_DIR [--sites 40] [--days 37] [--files 10]

Each file covers an equal stretch of time, for
`promtool tsdb create-blocks-from openmetrics` one file at a time (promtool
holds a whole input file in memory); with --promtool and --data each file
becomes blocks as soon as it is written and is deleted, so the disk never
holds more than one. scripts/fleet-bench.sh drives it.

The fleet is the shipped config/casewatch.yaml at every site: an ICS
(case_note every 5 minutes, caseload_report every 15) and a CSS report
every 15 minutes, each journey logging in and out; kept sessions on both
targets. Values are plausible (latencies drawn from log-normal laws, a few
failures, freezes and forced logouts), not derived from one another: what
the benchmark measures is how long the board's queries take over this many
series and samples, and every query must return data.
"""

import argparse
import math
import random
import subprocess
import time
from pathlib import Path

STEP = 300  # the casewatch_fleet_5m group's interval

# From src/metrics.rs: base buckets plus the config's slow_after/freeze_after.
STEP_LE = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0, 20.0,
           30.0, 60.0, 120.0, 300.0, "+Inf"]
JOURNEY_LE = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
              60.0, 120.0, 300.0, "+Inf"]
FREEZE_LE = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
             7200.0, "+Inf"]
AGE_LE = [10.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 5400.0, 7200.0, 9000.0, 10800.0,
          14400.0, 21600.0, 28800.0, 43200.0, "+Inf"]
CAUSES = ["redirect", "status", "expired_page", "cookie_cleared", "login_page"]
BANDS = ["0-1h", "1h-2h", "2h-3h", "3h-4h", "4h+"]
OUTCOMES = ["ok", "slow", "frozen", "logged_out", "http_error", "assertion_failed",
            "connect_error", "error"]
LOGIN = ["login_page", "login_submit"]
JOURNEYS = [
    # target, journey, steps, runs every N 5-minute slots, typical step seconds
    ("ics", "case_note", LOGIN + ["search", "open_record", "save_note", "logout"], 1, 0.4),
    ("ics", "caseload_report", LOGIN + ["run_report", "logout"], 3, 0.5),
    ("css", "css_caseload_report", LOGIN + ["run_report", "logout"], 3, 0.5),
]
TARGETS = ["ics", "css"]
CHANGES = [("extra_server_capacity", 20), ("reporting_moved_to_css", 8)]  # days before the end


def le_text(le):
    return le if isinstance(le, str) else repr(float(le))


def labels(**kv):
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def write_part(path, families, slots, first):
    """Writes the samples of `slots` (starting at slot index `first`) of
    every series to `path`, one family after another. Returns the count."""
    samples = 0
    with open(path, "w", buffering=1 << 22) as out:
        for name, members in families.items():
            out.write(f"# TYPE {name} gauge\n")
            for label_text, values in members:
                prefix = name + label_text + " "
                chunk = values[first:first + len(slots)]
                out.write("".join(f"{prefix}{v:.10g} {t}\n" for v, t in zip(chunk, slots)))
                samples += len(chunk)
        out.write("# EOF\n")
    return samples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--days", type=int, default=37)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--end", type=int, default=None, help="unix time of the last sample")
    ap.add_argument("--promtool", help="turn each file into TSDB blocks at once, then delete it")
    ap.add_argument("--data", type=Path, help="the TSDB directory for --promtool")
    ap.add_argument("--max-block-duration", default="96h")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    end = (args.end or int(time.time())) // STEP * STEP
    start = end - args.days * 86400
    slots = list(range(start, end + 1, STEP))
    n = len(slots)
    rng = random.Random(40)
    sites = [f"office-{i:02d}" for i in range(1, args.sites + 1)]

    def runs_of(every):
        return [1.0 if i % every == 0 else 0.0 for i in range(n)]

    def smooth(base, spread):
        phase = rng.random() * math.tau
        return [base * (1 + spread * math.sin(phase + i * math.tau / 288)) * rng.uniform(0.9, 1.1)
                for i in range(n)]

    def rare(p):
        return [1.0 if rng.random() < p else 0.0 for _ in range(n)]

    # Families, one at a time (OpenMetrics groups samples by family).
    fam = {}

    def add(name, label_text, values):
        fam.setdefault(name, []).append((label_text, values))

    for site in sites:
        site_runs = {}
        for target, journey, steps, every, typical in JOURNEYS:
            runs = runs_of(every)
            failed = [r if rng.random() < 0.005 else 0.0 for r in runs]
            site_runs[journey] = (runs, failed)
            tj = dict(site=site, target=target, journey=journey)
            add("site_target_journey:casewatch_journey_runs:increase5m", labels(**tj), runs)
            add("site_target_journey:casewatch_journey_failed_runs:increase5m", labels(**tj), failed)
            for rec in ("site_target_journey:casewatch_journey_errors:ratio_rate3d",):
                add(rec, labels(**tj), [rng.uniform(0, 0.01) for _ in range(n)])
            for rec in ("site_target_journey:casewatch_journey_availability:ratio1d",
                        "site_target_journey:casewatch_journey_availability:ratio1w"):
                add(rec, labels(**tj), [1 - rng.uniform(0, 0.01) for _ in range(n)])
            for step in steps:
                scale = 20.0 if step == "run_report" else typical
                latencies = [rng.lognormvariate(math.log(scale), 0.6) for _ in range(n)]
                for le in STEP_LE:
                    bound = math.inf if le == "+Inf" else le
                    add("site_target_journey_step_le:casewatch_step_duration_seconds_bucket:increase5m",
                        labels(**tj, step=step, le=le_text(le)),
                        [r if lat <= bound else 0.0 for r, lat in zip(runs, latencies)])
                add("site_target_journey_step:casewatch_step_duration_seconds:p95_1d",
                    labels(**tj, step=step), smooth(scale * 2.5, 0.1))
            total = typical * len(steps) + (20 if "report" in journey else 0)
            durations = [rng.lognormvariate(math.log(total), 0.4) for _ in range(n)]
            for le in JOURNEY_LE:
                bound = math.inf if le == "+Inf" else le
                add("site_target_journey_le:casewatch_journey_duration_seconds_bucket:increase5m",
                    labels(**tj, le=le_text(le)),
                    [r if d <= bound else 0.0 for r, d in zip(runs, durations)])
            add("site_target_journey:casewatch_journey_duration_seconds:p95_1d", labels(**tj),
                smooth(total * 2, 0.1))
            for outcome in OUTCOMES:
                add("casewatch_journey_runs_total",
                    labels(site=site, target=target, journey=journey, outcome=outcome,
                           instance=f"{site}-probe:9898", job="casewatch"),
                    [float(i // every) if outcome == "ok" else 0.0 for i in range(n)])
        for target in TARGETS:
            st = dict(site=site, target=target)
            episodes = rare(0.002)
            add("site_target:casewatch_freeze_episodes:increase5m", labels(**st), episodes)
            add("site_target:casewatch_freeze_episodes:increase1h", labels(**st),
                [sum(episodes[max(0, i - 11):i + 1]) for i in range(n)])
            lengths = [rng.lognormvariate(math.log(30), 1.0) for _ in range(n)]
            add("site_target:casewatch_freeze_duration_seconds_sum:increase5m", labels(**st),
                [e * l for e, l in zip(episodes, lengths)])
            for le in FREEZE_LE:
                bound = math.inf if le == "+Inf" else le
                add("site_target_le:casewatch_freeze_duration_seconds_bucket:increase5m",
                    labels(**st, le=le_text(le)),
                    [e if l <= bound else 0.0 for e, l in zip(episodes, lengths)])
            add("site_target:casewatch_freeze_duration_seconds:p50_1d", labels(**st), smooth(30, 0.2))
            add("site_target:casewatch_freeze_duration_seconds:p95_1d", labels(**st), smooth(120, 0.2))
            drops = rare(0.01)
            for cause in CAUSES:
                add("site_target_cause:casewatch_forced_logouts:increase5m",
                    labels(**st, cause=cause),
                    [d if cause == "redirect" else 0.0 for d in drops])
            for band in BANDS:
                add("site_target_age_band:casewatch_forced_logouts:increase5m",
                    labels(**st, age_band=band), [d * 0.2 for d in drops])
                add("site_target_age_band:casewatch_session_exposure_seconds:increase5m",
                    labels(**st, age_band=band), [3 * STEP / len(BANDS)] * n)
            for le in AGE_LE:
                bound = math.inf if le == "+Inf" else le
                add("site_target_le:casewatch_session_age_at_logout_seconds_bucket:increase5m",
                    labels(**st, le=le_text(le)),
                    [d if bound >= 3600 else 0.0 for d in drops])
        info = labels(instance=f"{site}-probe:9898", job="casewatch", site=site, version="0.1.0")
        add("casewatch_build_info", info, [1.0] * n)
        for change, days_before in CHANGES:
            add("casewatch_change_timestamp_seconds",
                labels(change=change, instance=f"{site}-probe:9898", job="casewatch", site=site),
                [float(end - days_before * 86400)] * n)

    # Fleet-wide recordings (no site).
    def fleet(name, source):
        series = fam[source]
        add(name, "", [sum(v[i] for _, v in series) for i in range(n)])

    fleet("casewatch_journey_runs:increase5m", "site_target_journey:casewatch_journey_runs:increase5m")
    fleet("casewatch_journey_failed_runs:increase5m",
          "site_target_journey:casewatch_journey_failed_runs:increase5m")
    fleet("casewatch_freeze_episodes:increase5m", "site_target:casewatch_freeze_episodes:increase5m")
    fleet("casewatch_forced_logouts:increase5m",
          "site_target_age_band:casewatch_forced_logouts:increase5m")
    fleet("casewatch_session_exposure_seconds:increase5m",
          "site_target_age_band:casewatch_session_exposure_seconds:increase5m")
    buckets = fam["site_target_journey_step_le:casewatch_step_duration_seconds_bucket:increase5m"]
    for le in STEP_LE:
        key = f'le="{le_text(le)}"'
        chosen = [v for lab, v in buckets if key in lab]
        add("le:casewatch_step_duration_seconds_bucket:increase5m", labels(le=le_text(le)),
            [sum(v[i] for v in chosen) for i in range(n)])
    for target, journey, steps, _, typical in JOURNEYS:
        add("target_journey:casewatch_journey_availability:ratio1w",
            labels(target=target, journey=journey), [1 - rng.uniform(0, 0.005) for _ in range(n)])
        add("target_journey:casewatch_journey_duration_seconds:p95_1d",
            labels(target=target, journey=journey), smooth(typical * len(steps) * 2, 0.1))
        for step in steps:
            add("target_journey_step:casewatch_step_duration_seconds:p95_1d",
                labels(target=target, journey=journey, step=step), smooth(typical * 2.5, 0.1))
    for band in BANDS:
        add("age_band:casewatch_forced_logouts_per_session_hour:ratio1d", labels(age_band=band),
            smooth(0.05, 0.3))

    series = sum(len(members) for members in fam.values())
    per = math.ceil(n / args.files)
    samples = 0
    for k, first in enumerate(range(0, n, per)):
        path = args.out / f"fleet-{k:02d}.om"
        samples += write_part(path, fam, slots[first:first + per], first)
        if args.promtool:
            subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics",
                            f"--max-block-duration={args.max_block_duration}",
                            str(path), str(args.data)],
                           check=True, stdout=subprocess.DEVNULL)
            path.unlink()
        print(f"  part {k}: {len(slots[first:first + per])} slots", flush=True)
    print(f"{series} series, {samples} samples, {args.sites} sites, {args.days} days, "
          f"{start}..{end}")


if __name__ == "__main__":
    main()
