#!/usr/bin/env python3
"""Fills a VictoriaMetrics store with what a fleet of casewatch agents would
have pushed over remote_write: every series the central report reads
(`casewatch report --prometheus URL`), for `--sites` sites over `--days`
days, one sample every `--every` seconds, through VictoriaMetrics' JSON
line import (`/api/v1/import`), so the report's read time can be measured
at fleet scale (benches/CENTRAL-REPORT.md; scripts/central-report-bench.sh
drives it).

    python3 scripts/store-backfill.py --template metrics.txt --url http://127.0.0.1:8428 \
        [--sites 40] [--days 90] [--every 300] [--end UNIX] [--worse site-07]

Needs numpy and prometheus-client (`pip install numpy prometheus-client`).

**Series.** The label sets come from `--template`, a `/metrics` page of a
real agent (the demo's, taken after a minute): its journeys, steps, info
series and histogram bounds. The demo's minute-long age bands become the
shipped 1h/2h/3h/4h bands and its calendar scale 1, as a real site has.
Every series carries `job="casewatch"`, `instance` and `site`, as the
agent's remote_write sends them. Families the report never reads (HTTP
phase histograms, lateness, relogin) are not written: the report selects
by metric name, so they would only fill the disk.

**Values.** Plausible, seeded and self-consistent (cumulative buckets,
counters that only climb except at the agent's restarts, where they start
again from zero): each journey runs once per sample interval; log-normal
step latencies (report steps slower), a site named in `--worse` 1.5 times
slower with 6 times the freezes and server restarts; freeze episodes
(0.3 a day a target, exponential lengths, mean 90 s) freeze the runs they
cover; server restarts (0.15 a day) force the kept sessions out, by age
band; the agent's own process restarts about once a month (its counters
start again). What is measured is how long the report takes to read and
build from this many series and samples, not what it concludes.
"""

import argparse
import json
import math
import time
import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

DAY = 86400.0
BANDS_SECONDS = [3600, 7200, 10800, 14400]
BANDS = ["0-1h", "1h-2h", "2h-3h", "3h-4h", "4h+"]
CAUSES = ["redirect", "status", "cookie_cleared", "login_page"]
FREEZES_PER_DAY = 0.3
SERVER_RESTARTS_PER_DAY = 0.15
AGENT_RESTARTS_PER_DAY = 1 / 30
MEAN_FREEZE = 90.0
KEPT = 3
MAX_AGE = 8 * 3600.0
WORSE = 6.0


def template(path):
    """Label sets of the families the report reads, from a /metrics page."""
    found = {}
    with open(path) as f:
        text = f.read()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append(dict(s.labels))
    return found


class Site:
    def __init__(self, name, index, spec, tpl, rng):
        self.name, self.spec, self.tpl, self.rng = name, spec, tpl, rng
        self.t = spec.start + spec.every * np.arange(spec.n, dtype=np.float64)
        worse = WORSE if name in spec.worse else 1.0
        self.slower = 1.5 if name in spec.worse else 1.0
        self.freezes = {}
        for target in self.targets():
            starts = self.events(FREEZES_PER_DAY * worse)
            lengths = rng.exponential(MEAN_FREEZE, len(starts))
            self.freezes[target] = (starts, lengths)
        self.server_restarts = {t: self.events(SERVER_RESTARTS_PER_DAY * worse) for t in self.targets()}
        self.agent_restarts = np.sort(rng.choice(spec.n, size=rng.poisson(spec.days * AGENT_RESTARTS_PER_DAY),
                                                 replace=False))
        # The agent's process start time at each sample.
        starts = np.full(spec.n, spec.start - 3600.0 * (index + 1))
        for i in self.agent_restarts:
            starts[i:] = self.t[i] - spec.every / 2
        self.process_start = starts
        self.day_factor = np.exp(rng.normal(0, 0.05, int(spec.days) + 2))

    def targets(self):
        return sorted({l["target"] for l in self.tpl.get("casewatch_journey_info", [])})

    def events(self, per_day):
        count = self.rng.poisson(self.spec.days * per_day)
        return np.sort(self.rng.uniform(self.spec.start, self.spec.end, count))

    def counter(self, increments):
        """Cumulative values of per-sample increments, from zero again at
        each of the agent's restarts."""
        total = np.cumsum(increments)
        if len(self.agent_restarts):
            base = np.zeros_like(total)
            for i in self.agent_restarts:
                base[i:] = total[i - 1] if i > 0 else 0
            total = total - base
        return total

    def frozen_for(self, target):
        """Per sample: how long a run started then stays frozen (0 if not)."""
        starts, lengths = self.freezes[target]
        out = np.zeros(self.spec.n)
        for s, length in zip(starts, lengths):
            i = np.searchsorted(self.t, s)
            j = np.searchsorted(self.t, s + length)
            out[i:j] = s + length - self.t[i:j]
        return out

    def series(self):
        """Yields (labels, values) for every series of the site."""
        spec, rng, tpl, n = self.spec, self.rng, self.tpl, self.spec.n
        day = ((self.t - spec.start) // DAY).astype(int)
        factor = self.day_factor[day] * self.slower
        frozen = {t: self.frozen_for(t) for t in self.targets()}
        yield {"__name__": "casewatch_build_info", "version": spec.version}, np.ones(n)
        yield {"__name__": "process_start_time_seconds"}, self.process_start
        for name in ["casewatch_journey_info", "casewatch_step_info", "casewatch_change_info"]:
            for labels in tpl.get(name, []):
                labels = dict(labels, __name__=name)
                if name == "casewatch_change_info":
                    labels["at"] = str(int(spec.change_at.pop(0) if spec.change_at else spec.end))
                yield labels, np.ones(n)
        for labels in tpl.get("casewatch_report_meta_info", []):
            labels = dict(labels, __name__="casewatch_report_meta_info", calendar_scale="1",
                          age_band_edges_seconds=json.dumps(BANDS_SECONDS))
            yield labels, np.ones(n)

        runs_by_journey = {}
        step_bounds = sorted({float(l["le"]) for l in tpl["casewatch_step_duration_seconds_bucket"]})
        journey_bounds = sorted({float(l["le"]) for l in tpl["casewatch_journey_duration_seconds_bucket"]})
        steps = {}
        for l in tpl.get("casewatch_step_info", []):
            steps.setdefault((l["target"], l["journey"]), []).append((l["step"], l["kind"]))
        for j in tpl.get("casewatch_journey_info", []):
            target, journey = j["target"], j["journey"]
            key = (target, journey)
            error = rng.random(n) < 0.004
            hold = frozen.get(target, np.zeros(n))
            give_up = 40.0 if target == "css" else 30.0
            total = np.zeros(n)
            over = np.zeros(n)
            given_up_any = np.zeros(n)
            for i, (step, kind) in enumerate(steps.get(key, [])):
                median = 1.5 if kind == "report" else 0.3
                lat = rng.lognormal(math.log(median), 0.5, n) * factor
                if i == 0:
                    lat = np.where(hold > 0, np.minimum(np.maximum(hold, lat), give_up), lat)
                given_up = (lat >= give_up) & (i == 0)
                given_up_any += given_up
                total += lat
                over += np.maximum(lat - (5.0 if target == "css" else 1.0), 0)
                labels = {"target": target, "journey": journey, "step": step}
                for le in step_bounds:
                    yield (dict(labels, __name__="casewatch_step_duration_seconds_bucket", le=le_text(le)),
                           self.counter(lat <= le))
                yield dict(labels, __name__="casewatch_steps_given_up_total"), self.counter(given_up)
            labels = {"target": target, "journey": journey}
            for le in journey_bounds:
                yield (dict(labels, __name__="casewatch_journey_duration_seconds_bucket", le=le_text(le)),
                       self.counter(total <= le))
            is_frozen = hold > 0
            outcomes = {
                "ok": ~is_frozen & ~error,
                "frozen": is_frozen,
                "http_error": ~is_frozen & error,
            }
            for outcome, which in outcomes.items():
                yield (dict(labels, __name__="casewatch_journey_runs_total", outcome=outcome),
                       self.counter(which))
            yield dict(labels, __name__="casewatch_step_over_acceptable_seconds_total"), self.counter(over)
            yield dict(labels, __name__="casewatch_journey_runs_agent_stalled_total"), self.counter(np.zeros(n))
            yield dict(labels, __name__="casewatch_journey_in_flight"), np.zeros(n)
            runs_by_journey[key] = n

        for target in self.targets():
            starts, lengths = self.freezes[target]
            began = np.histogram(starts, bins=np.append(self.t - spec.every, self.t[-1]))[0]
            ended = np.searchsorted(self.t, starts + lengths)
            labels = {"target": target}
            yield dict(labels, __name__="casewatch_freeze_episodes_total"), self.counter(began)
            yield (dict(labels, __name__="casewatch_freeze_in_progress"),
                   (frozen[target] > 0).astype(float))
            for le in [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, math.inf]:
                inc = np.zeros(n)
                for e, length in zip(ended, lengths):
                    if e < n and length <= le:
                        inc[e] += 1
                yield (dict(labels, __name__="casewatch_freeze_duration_seconds_bucket", le=le_text(le)),
                       self.counter(inc))
            inc = np.zeros(n)
            for e, length in zip(ended, lengths):
                if e < n:
                    inc[e] += length
            yield dict(labels, __name__="casewatch_freeze_duration_seconds_sum"), self.counter(inc)
            yield from self.kept_sessions(target)
        yield {"__name__": "casewatch_agent_stall_duration_seconds_count"}, self.counter(np.zeros(n))
        yield {"__name__": "casewatch_agent_stall_duration_seconds_sum"}, self.counter(np.zeros(n))

    def kept_sessions(self, target):
        """Exposure by age band, forced logouts by cause and band, checks,
        logins and ends of `KEPT` sessions that live `MAX_AGE` unless a
        server restart forces them out."""
        spec, n = self.spec, self.spec.n
        exposure = {b: np.zeros(n) for b in BANDS}
        forced = {(c, b): np.zeros(n) for c in CAUSES for b in BANDS}
        logins, forced_out, aged_out = np.zeros(n), np.zeros(n), np.zeros(n)
        checks = np.full(n, KEPT * spec.every / 5.0)
        restarts = set(np.searchsorted(self.t, self.server_restarts[target]).tolist())
        born = [spec.start - k * 600.0 for k in range(KEPT)]
        for i in range(n):
            for k in range(KEPT):
                age = self.t[i] - born[k]
                band = BANDS[sum(age >= e for e in BANDS_SECONDS)]
                exposure[band][i] += spec.every
                if i in restarts or age >= MAX_AGE:
                    if i in restarts:
                        forced[(CAUSES[(i + k) % len(CAUSES)], band)][i] += 1
                        forced_out[i] += 1
                    else:
                        aged_out[i] += 1
                    logins[i] += 1
                    born[k] = self.t[i]
        labels = {"target": target}
        for b in BANDS:
            yield (dict(labels, __name__="casewatch_session_exposure_seconds_total", age_band=b),
                   self.counter(exposure[b]))
        for (c, b), inc in forced.items():
            yield (dict(labels, __name__="casewatch_forced_logouts_total", cause=c, age_band=b),
                   self.counter(inc))
        for end, inc in [("forced", forced_out), ("max_age", aged_out)]:
            yield dict(labels, __name__="casewatch_kept_sessions_ended_total", end=end), self.counter(inc)
        yield dict(labels, __name__="casewatch_kept_session_logins_total", outcome="ok"), self.counter(logins)
        yield dict(labels, __name__="casewatch_keepalive_checks_total", outcome="ok"), self.counter(checks)


def le_text(le):
    return "+Inf" if math.isinf(le) else repr(float(le))


class Spec:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", required=True, help="a /metrics page of a real agent")
    ap.add_argument("--url", required=True, help="VictoriaMetrics, e.g. http://127.0.0.1:8428")
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--days", type=float, default=90)
    ap.add_argument("--every", type=int, default=300, help="seconds between samples")
    ap.add_argument("--end", type=int, default=None, help="unix time of the last sample")
    ap.add_argument("--worse", action="append", default=[], help="a site made worse (site-07)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tpl = template(args.template)
    spec = Spec()
    spec.every, spec.days, spec.worse = args.every, args.days, set(args.worse)
    spec.end = (args.end or int(time.time())) // args.every * args.every
    spec.start = spec.end - int(args.days * DAY)
    spec.n = (spec.end - spec.start) // args.every + 1
    spec.version = "bench"
    timestamps = ",".join(str(int(x) * 1000) for x in range(spec.start, spec.end + 1, args.every))
    began = time.monotonic()
    series = samples = 0
    for index in range(args.sites):
        name = f"site-{index + 1:02d}"
        # Two declared changes, 60 and 20 days before the end (within the window).
        spec.change_at = [spec.end - 60 * DAY, spec.end - 20 * DAY]
        site = Site(name, index, spec, tpl, np.random.default_rng(args.seed * 1000 + index))
        batch = []
        for labels, values in site.series():
            labels = dict(labels, job="casewatch", instance=name, site=name)
            values = np.asarray(values, dtype=float)
            text = ",".join(f"{v:.10g}" for v in values.tolist())
            batch.append('{"metric":%s,"values":[%s],"timestamps":[%s]}\n'
                         % (json.dumps(labels), text, timestamps))
            series += 1
            samples += spec.n
            if len(batch) >= 50:
                post(args.url, batch)
                batch = []
        post(args.url, batch)
        print(f"{name}: {series} series, {samples} samples so far, {time.monotonic() - began:.0f} s",
              flush=True)
    print(f"backfill: {args.sites} sites, {args.days:g} days, every {args.every} s, {series} series, "
          f"{samples} samples, {spec.start}..{spec.end}, {time.monotonic() - began:.0f} s")


def post(url, lines):
    if not lines:
        return
    body = "".join(lines).encode()
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/import", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()


if __name__ == "__main__":
    main()
