#!/usr/bin/env python3
"""Writes config/alerts/tests/scenarios.test.yml: promtool unit tests of the
shipped alert rules at production rates.

Each scenario is what an agent with the shipped config/casewatch.yaml would
export: a 5-minute case_note journey, a 15-minute report journey, kept
sessions checked 90 times an hour, 40 office sites; scraped every 15 s and
evaluated every 15 s, as config/prometheus.yml does. Counters step at the
moment a run ends, as the agent's do.

    python3 scripts/alert-scenarios.py           # rewrite the file
    python3 scripts/alert-scenarios.py --check   # exit 1 if it is stale

Run the tests with `promtool test rules config/alerts/tests/*.yml` (or
scripts/check-rules.sh; the test suite runs both).
"""

import random
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "config/alerts/tests"

# Seconds between samples and between rule evaluations: 15 s as
# config/prometheus.yml scrapes and evaluates; the scenarios that span days
# use 1 minute, which promtool can run in the time a test suite has (it
# evaluates every group at every step, whatever the group's own interval).
SCRAPE = 15
# The runbook's address is the operator's: the rules read it from
# Prometheus's external label casewatch_runbook_url. The tests set this one.
RUNBOOK_BASE = "https://runbooks.council.test/casewatch/RUNBOOK.md"
RUNBOOK = RUNBOOK_BASE + "#alert-"
OUTCOMES = ["ok", "slow", "frozen", "logged_out", "http_error",
            "assertion_failed", "connect_error", "error"]
INSTANCE = '127.0.0.1:9898'


def sample(t):
    """The index of the first scrape at or after t seconds."""
    return -(-t // SCRAPE)


def counter(event_times, duration):
    """Expanding-notation values of a counter that steps by one at each of
    `event_times` (seconds), sampled every SCRAPE seconds for `duration`."""
    n = duration // SCRAPE + 1
    steps = sorted(sample(t) for t in event_times)
    parts = []
    value, index = 0, 0
    for step in steps + [n]:
        step = min(step, n)
        if step > index:
            parts.append(f"{value}+0x{step - index - 1}" if step - index > 1 else f"{value}")
            index = step
        if step < n:
            value += 1
    return " ".join(parts)


def gauge(points, duration):
    """Values of a gauge given as [(from_seconds, value)], sampled every
    SCRAPE seconds for `duration`; `None` is no sample (not yet exported),
    "stale" the end of the series (Prometheus's staleness marker)."""
    n = duration // SCRAPE + 1
    parts = []
    for i, (start, value) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else duration + SCRAPE
        count = min(sample(end), n) - sample(start)
        if count <= 0:
            continue
        if value == "stale":
            parts.append("stale" + (f" _x{count - 1}" if count > 1 else ""))
        elif value is None:
            parts.append(f"_x{count}" if count > 1 else "_")
        else:
            parts.append(f"{value:g}+0x{count - 1}" if count > 1 else f"{value:g}")
    return " ".join(parts)


def labels(**kv):
    kv.setdefault("instance", INSTANCE)
    kv.setdefault("job", "casewatch")
    return ",".join(f'{k}="{v}"' for k, v in kv.items())


def minutes(t):
    """A promtool duration for t seconds."""
    if t % 3600 == 0:
        return f"{t // 3600}h"
    if t % 60 == 0:
        return f"{t // 60}m"
    return f"{t}s"


class Scenario:
    def __init__(self, comment, duration):
        self.comment = comment
        self.duration = duration
        self.series = []
        self.checks = []
        self.nevers = []
        self.sites = set()
        self.agents_added = False

    def add(self, name, label_text, values):
        self.series.append((f"{name}{{{label_text}}}", values))
        if 'site="' in label_text and name != "up":
            self.sites.add(label_text.split('site="')[1].split('"')[0])

    def agents(self):
        """Every site's agent is up and scraped (one instance per site),
        unless the scenario says otherwise."""
        if self.agents_added:
            return
        for site in sorted(self.sites):
            s_up = f'instance="{INSTANCE}",job="casewatch",site="{site}"'
            self.series.append((f"up{{{s_up}}}", gauge([(0, 1)], self.duration)))

    def journey(self, site, target, journey, interval, failures, first=None,
                until=None, outcome="frozen", run_takes=20):
        """A journey run every `interval` seconds whose runs numbered in
        `failures` (0-based) fail with `outcome`; the rest are ok. Exports
        the run counters, the last-success and last-run gauges and the
        interval, as the agent does."""
        first = interval if first is None else first
        until = self.duration if until is None else until
        ends = list(range(first + run_takes, until + 1, interval))
        failed = [t for i, t in enumerate(ends) if i in failures]
        passed = [t for i, t in enumerate(ends) if i not in failures]
        for name in OUTCOMES:
            events = passed if name == "ok" else failed if name == outcome else []
            self.add("casewatch_journey_runs_total",
                     labels(site=site, target=target, journey=journey, outcome=name),
                     counter(events, self.duration))
        last_success = [(0, None)] + [(t, 0 if t in failed else 1) for t in ends]
        last_run = [(0, None)] + [(t, t) for t in ends]
        if until < self.duration:
            last_success.append((until + SCRAPE, last_success[-1][1]))
            last_run.append((until + SCRAPE, last_run[-1][1]))
        self.add("casewatch_journey_last_success",
                 labels(site=site, target=target, journey=journey),
                 gauge(last_success, self.duration))
        self.add("casewatch_journey_last_run_timestamp_seconds",
                 labels(site=site, target=target, journey=journey),
                 gauge(last_run, self.duration))
        self.add("casewatch_journey_interval_seconds",
                 labels(site=site, target=target, journey=journey),
                 gauge([(0, interval)], self.duration))
        return ends

    def silent(self, alert, times):
        for t in times:
            self.checks.append((t, alert, []))

    def fires(self, alert, t, *alerts):
        self.checks.append((t, alert, list(alerts)))

    def never(self, start, end, selector='severity="page"'):
        """No alert matching `selector` is firing at any evaluation in
        (start, end]: promtool keeps the ALERTS series of every step."""
        self.nevers.append((start, end, selector))

    def render(self):
        self.agents()
        out = [f"  # {line}" for line in self.comment.strip().splitlines()]
        out.append(f"  - interval: {SCRAPE}s")
        out.append("    external_labels:")
        out.append(f"      casewatch_runbook_url: {RUNBOOK_BASE}")
        out.append("    input_series:")
        for series, values in self.series:
            out.append(f"      - series: '{series}'")
            out.append(f"        values: '{values}'")
        if self.nevers:
            out.append("    promql_expr_test:")
        for start, end, selector in self.nevers:
            out.append(f"      - expr: 'count_over_time(ALERTS{{{selector},alertstate=\"firing\"}}[{minutes(end - start)}])'")
            out.append(f"        eval_time: {minutes(end)}")
            out.append("        exp_samples: []")
        if not self.checks:
            return "\n".join(out)
        out.append("    alert_rule_test:")
        for t, alert, expected in sorted(self.checks, key=lambda c: (c[0], c[1])):
            out.append(f"      - eval_time: {minutes(t)}")
            out.append(f"        alertname: {alert}")
            if not expected:
                out.append("        exp_alerts: []")
                continue
            out.append("        exp_alerts:")
            for lab, ann in expected:
                out.append("          - exp_labels:")
                for k, v in lab.items():
                    out.append(f"              {k}: '{v}'")
                out.append("            exp_annotations:")
                for k, v in ann.items():
                    out.append(f"              {k}: '{v}'")
        return "\n".join(out)


M = 60
H = 3600
D = 86400

PAGES = ["CasewatchJourneyErrorBudgetFastBurn", "CasewatchForcedLogoutsMultipleSites",
         "CasewatchFreezeInProgress", "CasewatchAgentDown", "CasewatchSiteSilent"]


def fast_burn(site, target, journey):
    return (
        {"severity": "page", "site": site, "target": target, "journey": journey},
        {
            "summary": f"Journey {journey} on {target} is burning its error budget fast (seen from {site})",
            "description": f"Journey {journey} on {target}, run from site {site}, is failing often enough to spend the 30-day error budget of its 99.5% availability objective within days: at least 3 failed runs at burn rate 14.4 over 1h and 5m or 6 over 6h and 30m, or, for a journey run every 10 minutes or less often, 3 failed runs in a row.",
            "runbook_url": RUNBOOK + "casewatchjourneyerrorbudgetfastburn",
        },
    )


def slow_burn(site, target, journey):
    return (
        {"severity": "ticket", "site": site, "target": target, "journey": journey},
        {
            "summary": f"Journey {journey} on {target} is slowly burning its error budget (seen from {site})",
            "description": f"Journey {journey} on {target}, run from site {site}, has failed more than 0.5% of runs over both the last 3 days and the last 6 hours, with at least 3 failed runs in those 6 hours: at this rate it misses its 99.5% availability objective.",
            "runbook_url": RUNBOOK + "casewatchjourneyerrorbudgetslowburn",
        },
    )


def multiple_sites(target, count):
    return (
        {"severity": "page", "target": target},
        {
            "summary": f"Forced logouts from {target} at {count} sites within 2 minutes",
            "description": f"The agents at {count} different sites were logged out of {target} by the server within 2 minutes of each other, more than the last hour''s background of drops explains. This points at the system (a restart, a session store or load balancer fault), not at one office.",
            "runbook_url": RUNBOOK + "casewatchforcedlogoutsmultiplesites",
        },
    )


def forced_logout(site, target, cause):
    return (
        {"severity": "ticket", "site": site, "target": target, "cause": cause},
        {
            "summary": f"Forced logout ({cause}) from {target} seen from {site}",
            "description": f"The agent at site {site} was logged out of {target} by the server (cause: {cause}) in the last 10 minutes. Users there may be losing sessions too. See the Operations dashboard for the step that was hit and the age of the session.",
            "runbook_url": RUNBOOK + "casewatchforcedlogout",
        },
    )


def every(start, stop, step):
    return list(range(start, stop + 1, step))


def one_failure_five_minute():
    s = Scenario("""
One frozen run of the 5-minute case_note journey after 3 hours of clean runs
(1 failure in 12 runs an hour is 8.3%, above 7.2%): pages nobody at any
moment, tickets nobody.
""", 4 * H + 30 * M)
    ends = s.journey("north-office", "ics", "case_note", 5 * M, failures={35})
    s.never(0, s.duration)
    s.never(0, s.duration, 'alertname="CasewatchJourneyErrorBudgetSlowBurn"')
    s.silent("CasewatchJourneyErrorBudgetFastBurn", [ends[35] + 3 * M, ends[35] + 25 * M])
    return s


def three_consecutive_five_minute():
    s = Scenario("""
Three consecutive failed runs of the 5-minute case_note journey after 3 hours
of clean runs: no page after two, a page once the third has stood 2 minutes.
""", 3 * H + 30 * M)
    ends = s.journey("north-office", "ics", "case_note", 5 * M, failures={35, 36, 37},
                     outcome="connect_error")
    s.never(0, ends[37])
    s.fires("CasewatchJourneyErrorBudgetFastBurn", ends[37] + 3 * M,
            fast_burn("north-office", "ics", "case_note"))
    return s


def one_failure_report():
    s = Scenario("""
One failed run of the 15-minute caseload_report journey after 2 hours of
clean runs: pages nobody, then or 25 minutes later. Three failed runs in a
row do page (a journey this rare alerts on consecutive failures).
""", 5 * H)
    ends = s.journey("north-office", "ics", "caseload_report", 15 * M,
                     failures={7, 15, 16, 17}, outcome="frozen", run_takes=90)
    s.silent("CasewatchJourneyErrorBudgetFastBurn", [ends[7] + 3 * M, ends[7] + 25 * M])
    s.never(0, ends[17])
    s.fires("CasewatchJourneyErrorBudgetFastBurn", ends[17] + 3 * M,
            fast_burn("north-office", "ics", "caseload_report"))
    return s


def volume_guard():
    s = Scenario("""
Volume guard out to 3 days: a journey run 3 times an hour that fails one run
in three, never two in a row. No short window ever holds 3 failed runs and
there are never 3 in a row, so it pages nobody for 3 days; the sustained
33% failure rate is a ticket (3 failures in 6 hours, 0.5% budget burnt).
""", 3 * D)
    s.journey("north-office", "css", "weekly_returns", 20 * M,
              failures=set(range(2, 300, 3)), outcome="http_error")
    s.never(0, s.duration)
    s.silent("CasewatchJourneyErrorBudgetFastBurn", [4 * H, 1 * D, 2 * D, 3 * D])
    s.fires("CasewatchJourneyErrorBudgetSlowBurn", 3 * D,
            slow_burn("north-office", "css", "weekly_returns"))
    return s


SITES = [f"office-{i:02d}" for i in range(1, 41)]


def drops(s, drop_times, target="ics", cause="redirect", band="1h-2h"):
    """Forced-logout counters at every site; `drop_times` maps a site to the
    times its sessions were dropped."""
    for site in SITES:
        s.add("casewatch_forced_logouts_total",
              labels(site=site, target=target, cause=cause, age_band=band),
              counter(drop_times.get(site, []), s.duration))


def independent_drops():
    s = Scenario("""
One drop at each of 2 of 40 sites, 6 minutes apart, with nothing else going
on: nothing links them, so nobody is paged. Each is one ticket for its site.
""", 2 * H)
    drops(s, {"office-07": [60 * M + 10], "office-23": [66 * M + 10]})
    s.never(0, s.duration)
    s.silent("CasewatchForcedLogoutsMultipleSites", [60 * M + 30, 66 * M + 30])
    s.fires("CasewatchForcedLogout", 62 * M, forced_logout("office-07", "ics", "redirect"))
    s.fires("CasewatchForcedLogout", 68 * M, forced_logout("office-07", "ics", "redirect"),
            forced_logout("office-23", "ics", "redirect"))
    return s


def common_cause_drop():
    s = Scenario("""
A common cause: 2 of 40 sites lose their sessions on the ICS within 40
seconds of each other (each site's kept sessions notice at their next
check). That pages at once. Drops in two age bands at one site are one
ticket, not one per band.
""", 2 * H)
    drops(s, {"office-03": [60 * M + 5], "office-31": [60 * M + 45]})
    s.add("casewatch_forced_logouts_total",
          labels(site="office-03", target="ics", cause="redirect", age_band="0-1h"),
          counter([60 * M + 5], s.duration))
    s.never(0, 60 * M + 30)
    s.fires("CasewatchForcedLogoutsMultipleSites", 61 * M + 15, multiple_sites("ics", 2))
    s.silent("CasewatchForcedLogoutsMultipleSites", [64 * M])
    s.fires("CasewatchForcedLogout", 62 * M, forced_logout("office-03", "ics", "redirect"),
            forced_logout("office-31", "ics", "redirect"))
    return s


def keepalive_noise():
    s = Scenario("""
Keep-alive noise: at each of 40 sites, 3 kept sessions are checked every 2
minutes (90 checks an hour) and one of them is dropped by the server once an
hour at a random moment, for half a day; journeys all succeed. Kept sessions
are not journeys, and the multi-site page sees chance, not a common cause:
no page from the first hour on (the background needs an hour of history),
no ticket from the burn-rate alerts.
""", 13 * H)
    rng = random.Random(10)
    found = {}
    for site in SITES:
        checks = every(2 * M, s.duration, 40)
        dropped = []
        for hour in range(13):
            t = hour * H + rng.randrange(0, H)
            # The drop counts when the next check finds it.
            later = [c for c in checks if c >= t]
            if later:
                dropped.append(later[0])
        s.add("casewatch_keepalive_checks_total",
              labels(site=site, target="ics", outcome="ok"),
              counter([c for c in checks if c not in set(dropped)], s.duration))
        s.add("casewatch_keepalive_checks_total",
              labels(site=site, target="ics", outcome="logged_out"),
              counter(dropped, s.duration))
        s.add("casewatch_kept_sessions_ended_total",
              labels(site=site, target="ics", end="forced"),
              counter(dropped, s.duration))
        found[site] = dropped
    drops(s, found)
    for site in SITES[:3]:
        s.journey(site, "ics", "case_note", 5 * M, failures=set())
    s.never(1 * H, s.duration)
    s.never(0, s.duration, 'alertname=~"CasewatchJourneyErrorBudget.*"')
    return s


def dead_man():
    s = Scenario("""
Dead man's switch per site (up carries the site label from file_sd): at
minute 30 north-office stops answering scrapes, and south-office's target is
removed from the file_sd list (its series simply end). Each is paged by
name; east-office is fine.
""", 1 * H)
    s.agents_added = True
    for site in ("north-office", "south-office", "east-office"):
        inst = f"{site}-probe:9898"
        if site == "north-office":
            up = [(0, 1), (30 * M, 0)]
            info = [(0, 1), (30 * M, "stale")]
        elif site == "south-office":
            up = [(0, 1), (30 * M, "stale")]
            info = [(0, 1), (30 * M, "stale")]
        else:
            up = [(0, 1)]
            info = [(0, 1)]
        s.add("up", f'instance="{inst}",job="casewatch",site="{site}"', gauge(up, s.duration))
        s.add("casewatch_build_info",
              f'instance="{inst}",job="casewatch",site="{site}",version="0.1.0"',
              gauge(info, s.duration))
    s.never(0, 34 * M)
    s.fires("CasewatchAgentDown", 36 * M, (
        {"severity": "page", "site": "north-office", "instance": "north-office-probe:9898",
         "job": "casewatch"},
        {"summary": "casewatch agent at north-office (north-office-probe:9898) is down or not scraped",
         "description": "Prometheus has not scraped the casewatch agent at site north-office (instance north-office-probe:9898) for 5 minutes. Nothing is being measured there and no other casewatch alert can fire for it.",
         "runbook_url": RUNBOOK + "casewatchagentdown"}))
    s.fires("CasewatchSiteSilent", 36 * M, (
        {"severity": "page", "site": "south-office"},
        {"summary": "Site south-office has stopped reporting",
         "description": "The casewatch agent at site south-office reported within the last day but Prometheus has no series from it now, and no failing scrape target names it: its target may have been removed from the file_sd list. Nothing is measured there.",
         "runbook_url": RUNBOOK + "casewatchsitesilent"}))
    return s


def journey_not_running():
    s = Scenario("""
A 5-minute journey whose runs stop at 1h while it is due (active since the
start): a ticket once 3 intervals have passed with no run. A 15-minute
journey outside its active hours (no active-since series) stays silent.
""", 2 * H)
    s.add("casewatch_journey_active_since_timestamp_seconds",
          labels(site="north-office", target="ics", journey="case_note"),
          gauge([(0, 0)], s.duration))
    s.journey("north-office", "ics", "caseload_report", 15 * M, failures=set(), until=1 * H)
    ends = s.journey("north-office", "ics", "case_note", 5 * M, failures=set(), until=1 * H)
    quiet = 1 * H + 20 * M - ends[-1]
    s.silent("CasewatchJourneyNotRunning", [1 * H, ends[-1] + 15 * M - SCRAPE])
    s.fires("CasewatchJourneyNotRunning", 1 * H + 20 * M, (
        {"severity": "ticket", "site": "north-office", "target": "ics", "journey": "case_note"},
        {"summary": "Journey case_note on ics has not run for 3 intervals (site north-office)",
         "description": f"The agent at site north-office is up but journey case_note on ics has not finished a run for {quiet // 60}m {quiet % 60}s, more than 3 of its intervals, while it was due to run. Its figures are going stale.",
         "runbook_url": RUNBOOK + "casewatchjourneynotrunning"}))
    return s


FILES = {
    "scenarios.test.yml": (15, "scraped and evaluated every 15 seconds", [
        one_failure_five_minute,
        three_consecutive_five_minute,
        one_failure_report,
        independent_drops,
        common_cause_drop,
        dead_man,
        journey_not_running,
    ]),
    "scenarios-days.test.yml": (60, "scraped and evaluated every minute (they span days)", [
        volume_guard,
        keepalive_noise,
    ]),
}


def render(scrape, how, scenarios):
    global SCRAPE
    SCRAPE = scrape
    head = f"""# Generated by scripts/alert-scenarios.py -- edit that, not this.
#
# promtool unit tests of the shipped rules at production rates: journeys
# every 5 and 15 minutes, kept sessions checked 90 times an hour, 40 sites,
# {how}.
#   promtool test rules config/alerts/tests/*.yml
rule_files:
  - ../casewatch.rules.yml
  - ../casewatch.alerts.yml

evaluation_interval: {scrape}s

# Recording groups first, as the alerts read them (Prometheus runs groups
# side by side, so there an alert may read a recording one interval old).
group_eval_order:
  - casewatch_journey_availability
  - casewatch_forced_logouts
  - casewatch_http_phases
  - casewatch_fleet_5m
  - casewatch_sessions
  - casewatch_freezes
  - casewatch_journey_slo
  - casewatch_agent

tests:
"""
    return head + "\n\n".join(s().render() for s in scenarios) + "\n"


def main():
    stale = []
    for name, (scrape, how, scenarios) in FILES.items():
        text = render(scrape, how, scenarios)
        path = TESTS / name
        if "--check" in sys.argv[1:]:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    for path in stale:
        print(f"{path} is stale: run python3 scripts/alert-scenarios.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
