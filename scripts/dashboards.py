#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/ from the panel lists below.

    python3 scripts/dashboards.py           # rewrite dashboards/*.json
    python3 scripts/dashboards.py --check   # exit 1 if a file is stale

One source for the four boards keeps them alike: a templated Prometheus
datasource, a single-select `site` on each board about one site (never
"All": at 40 sites that is 160 tiles and queries no browser waits for; the
Fleet board shows every site at once from one series per site), change
annotations, a unit and a description on every panel. scripts/check-rules.sh checks the structure and
the test suite runs every query against a real Prometheus.

The board reads only the recording rules of the `casewatch_fleet_5m` group
(config/alerts/casewatch.rules.yml), never raw series, so its 30-day panels
hold at fleet scale; benches/fleet-queries.md has the timings.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'site=~"$site",target=~"$target",journey=~"$journey"'
SITE_TARGET = 'site=~"$site",target=~"$target"'
TJ = 'target=~"$target",journey=~"$journey"'
WEEK = 604800


def query(expr, legend="", instant=False, fmt=None, interval=None, ref="A"):
    q = {
        "refId": ref,
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "editorMode": "code",
    }
    if fmt:
        q["format"] = fmt
    if interval:
        q["interval"] = interval
    return q


def refs(queries):
    for i, q in enumerate(queries):
        q["refId"] = chr(ord("A") + i)
    return queries


def timeseries(title, desc, unit, queries, bars=False, w=12, h=8, decimals=None,
               minimum=None, maximum=None, stack=False, overrides=None):
    custom = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
    }
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    defaults = {"unit": unit, "custom": custom}
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "timeseries", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "legend": {"showLegend": True, "displayMode": "table", "placement": "bottom",
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": refs(queries),
    }


def stat(title, desc, unit, queries, w=12, h=5, thresholds=None, mappings=None,
         decimals=None, text="value_and_name", color="background"):
    defaults = {"unit": unit}
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    if mappings:
        defaults["mappings"] = mappings
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": color, "graphMode": "none", "justifyMode": "auto",
            "textMode": text, "orientation": "auto",
        },
        "targets": refs(queries),
    }


def barchart(title, desc, unit, expr, x, value_name, decimals=None, w=12, h=8):
    defaults = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "barchart", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "xField": x, "orientation": "vertical", "showValue": "auto", "stacking": "none",
            "groupWidth": 0.7, "barWidth": 0.9, "xTickLabelRotation": 0,
            "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "single"},
        },
        "targets": [query(expr, "{{%s}}" % x, instant=True, fmt="table")],
        "transformations": [
            {"id": "organize", "options": {"excludeByName": {"Time": True},
                                           "renameByName": {"Value": value_name}}},
            {"id": "sortBy", "options": {"sort": [{"field": x}]}},
        ],
    }


def bargauge(title, desc, unit, expr, legend, w=12, h=8):
    return {
        "type": "bargauge", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
        },
        "targets": [query(expr, legend, instant=True, fmt="heatmap")],
    }


def heatmap(title, desc, expr, w=12, h=8):
    return {
        "type": "heatmap", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": {"unit": "s", "custom": {
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "scaleDistribution": {"type": "linear"}}}, "overrides": []},
        "options": {
            "calculate": False,
            "yAxis": {"unit": "s", "axisPlacement": "left", "reverse": False},
            "rowsFrame": {"layout": "auto"}, "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange",
                      "scale": "exponential", "exponent": 0.5, "steps": 64, "reverse": False},
            "filterValues": {"le": 1e-09},
            "tooltip": {"show": True, "yHistogram": True}, "legend": {"show": True},
        },
        "targets": [query(expr, "{{le}}", fmt="heatmap")],
    }


def table(title, desc, expr, w=12, h=5, hide=("Time", "Value", "__name__")):
    return {
        "type": "table", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
        "options": {"showHeader": True},
        "targets": [query(expr, instant=True, fmt="table")],
        "transformations": [{"id": "organize", "options": {
            "excludeByName": {k: True for k in hide}}}],
    }


def row(title, repeat=None):
    r = {"type": "row", "title": title, "collapsed": False, "panels": [], "w": 24, "h": 1}
    if repeat:
        r["repeat"] = repeat
    return r


def layout(panels):
    """Places panels left to right, top to bottom, in a 24-wide grid."""
    x = y = 0
    line = 0
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("w"), p.pop("h")
        if x + w > 24:
            x, y = 0, y + line
            line = 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        line = max(line, h)
        if p["type"] == "row":
            x, y, line = 0, y + h, 0
    return panels


def variable(name, label, query_text, multi=True, include_all=True, hide=0):
    v = {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": query_text, "query": query_text,
        "multi": multi, "includeAll": include_all, "hide": hide,
        "options": [], "refresh": 2, "regex": "", "sort": 1,
    }
    if include_all:
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        # No stored choice: Grafana selects the first site.
        v["current"] = {}
    return v


DATASOURCE = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus", "current": {"selected": False, "text": "Prometheus",
                                                 "value": "prometheus"},
              "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
              "regex": ""}


def templating(extra=(), per_site=True):
    if not per_site:
        return {"list": [DATASOURCE, *extra]}
    return {"list": [
        DATASOURCE,
        # One site at a time: the board's fleet panels show every site
        # together, and "Agents up" lists them all.
        variable("site", "Site", "label_values(casewatch_build_info, site)",
                 multi=False, include_all=False),
        variable("target", "Target",
                 'label_values(casewatch_journey_runs_total{site=~"$site"}, target)'),
        variable("journey", "Journey",
                 'label_values(casewatch_journey_runs_total{site=~"$site",target=~"$target"}, journey)'),
        *extra,
    ]}


def dashboard(uid, title, desc, time_from, refresh, panels, extra_vars=(), per_site=True):
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["casewatch"],
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "refresh": refresh, "time": {"from": time_from, "to": "now"},
        "timezone": "browser", "timepicker": {}, "fiscalYearStartMonth": 0,
        "liveNow": False, "id": None,
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
             "name": "Annotations & Alerts", "type": "dashboard"},
            {"name": "Changes", "datasource": DS, "enable": True, "hide": False,
             "iconColor": "orange",
             "expr": "max by (change) (casewatch_change_timestamp_seconds) * 1000",
             "step": "60s", "useValueForTime": True, "titleFormat": "{{change}}",
             "textFormat": "Configured change: {{change}}", "tagKeys": "change"},
        ]},
        "links": [{"title": "casewatch dashboards", "type": "dashboards",
                   "tags": ["casewatch"], "asDropdown": True, "includeVars": True,
                   "keepTime": True}],
        "templating": templating(extra_vars, per_site),
        "panels": layout(panels),
    }


PCT = [{"color": "red", "value": None}, {"color": "orange", "value": 0.99},
       {"color": "green", "value": 0.995}]


# ---------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------

VERDICT = (
    'max by (target) (casewatch_freeze_in_progress{site=~"$site",target=~"$target"})\n'
    '* on (target) (1 + (target:casewatch_freeze_in_progress:share_of_sites{target=~"$target"} > bool 0.5))'
)


def operations():
    return dashboard(
        "casewatch-operations", "casewatch / Operations",
        "Live view for IT operations, one site at a time: availability, freezes, forced "
        "logouts, where the time went (this office's network or the system), step latency, "
        "sessions and the agents themselves.",
        "now-3h", "30s", [
            stat("Agents up", "Every site's agent as Prometheus scrapes it now (up, with the "
                 "site label from the file_sd list): 1 up, 0 down. A site that is down stays "
                 "listed however long it has been down, because its target stays in the list.",
                 "none", [query('max by (site) (up{job="casewatch"})', "{{site}}", instant=True)],
                 w=8, mappings=[{"type": "value", "options": {
                     "0": {"text": "DOWN", "color": "red"}, "1": {"text": "up", "color": "green"}}}],
                 thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]),
            stat("Network or system?", "For each target: is the trouble seen from this site "
                 "this office's network or the system itself? A freeze seen from this site "
                 "while at most half of the sites see one reads as this office's network (a "
                 "freeze seen from one office only is that office's); a freeze seen from more "
                 "than half of the sites reads as the system. Below, the phase timings say where "
                 "the time goes when nothing is frozen.",
                 "none", [query(VERDICT, "{{target}}", instant=True)], w=8,
                 mappings=[{"type": "value", "options": {
                     "0": {"text": "all normal", "color": "green"},
                     "1": {"text": "this office's network", "color": "orange"},
                     "2": {"text": "the system", "color": "red"}}}],
                 thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1},
                             {"color": "red", "value": 2}]),
            stat("Freeze in progress by target", "1 while a freeze episode is open on the "
                 "target as seen from this site: it has stopped answering.", "none",
                 [query(f'max by (target) (casewatch_freeze_in_progress{{{SITE_TARGET}}})',
                        "{{target}}", instant=True)], w=8,
                 thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}]),
            stat("Availability now (5m) by journey", "Share of journey runs that ended ok or "
                 "slow over the last 5 minutes at this site, per target and journey (user "
                 "journeys only: kept sessions are not journeys). Objective 99.5%. Blank when "
                 "no run ended in the window.", "percentunit",
                 [query(f"site_target_journey:casewatch_journey_availability:ratio_rate5m{{{SEL}}}",
                        "{{target}}/{{journey}}", instant=True)],
                 w=24, thresholds=PCT, decimals=2),
            timeseries("Availability (5m) by journey", "Share of runs ok or slow over a sliding "
                       "5-minute window, per target and journey.", "percentunit",
                       [query(f"site_target_journey:casewatch_journey_availability:ratio_rate5m{{{SEL}}}",
                              "{{target}}/{{journey}}")], decimals=2, minimum=0, maximum=1),
            timeseries("Oldest in-flight request by target", "Age of the oldest request this "
                       "site's agent is still waiting for, per target. A line that climbs "
                       "steadily is a freeze in progress.", "s",
                       [query(f"max by (target) (casewatch_inflight_oldest_seconds{{{SITE_TARGET}}})",
                              "{{target}}")]),
            timeseries("Where the time went: this site against the median of all sites (p95)",
                       "p95 of each phase of the HTTP exchanges over 5 minutes: DNS, TCP connect, "
                       "TLS handshake, first byte (the system's own time plus one round trip) and "
                       "transfer. Solid: this site; dashed: the median of every site's p95. Connect "
                       "and TLS high here only: this office's network. First byte high everywhere: "
                       "the system. A reused connection has no DNS, connect or TLS.", "s",
                       [query('site_target_phase:casewatch_http_phase_seconds:p95_rate5m'
                              '{site=~"$site",target=~"$target"}', "{{target}} {{phase}} here"),
                        query('target_phase:casewatch_http_phase_seconds_p95:median_of_sites_rate5m'
                              '{target=~"$target"}', "{{target}} {{phase}} all sites")],
                       w=24, overrides=[{"matcher": {"id": "byRegexp", "options": ".* all sites"},
                                         "properties": [{"id": "custom.lineStyle", "value": {
                                             "fill": "dash", "dash": [10, 10]}}]}]),
            heatmap("Step latency heatmap", "Distribution of step durations at this site (selected "
                    "targets and journeys) from the casewatch_step_duration_seconds buckets: "
                    "steps finished per bucket per second.",
                    f"sum by (le) (rate(casewatch_step_duration_seconds_bucket{{{SEL}}}[$__rate_interval]))"),
            timeseries("p95 step latency by step", "95th percentile of step duration over the "
                       "panel's interval, per target, journey and step, at this site.", "s",
                       [query("histogram_quantile(0.95, sum by (target, journey, step, le) "
                              f"(rate(casewatch_step_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                              "{{target}}/{{journey}}/{{step}}")]),
            timeseries("Step outcomes other than ok (per interval)", "Steps ending slow, frozen, "
                       "logged_out, http_error, assertion_failed, connect_error or error in each "
                       "interval of the panel (non-overlapping counts, stacked); outcomes that "
                       "did not happen are not drawn.", "short",
                       [query("sum by (target, journey, step, outcome) (increase(casewatch_step_outcomes_total"
                              f'{{{SEL},outcome!="ok"}}[$__interval])) > 0',
                              "{{target}}/{{journey}}/{{step}} {{outcome}}", interval="1m")],
                       bars=True, stack=True),
            timeseries("Forced logouts by cause (per interval)", "Sessions this site's agent lost "
                       "to the server in each interval of the panel, per target and cause "
                       "(non-overlapping counts, stacked).", "short",
                       [query("sum by (target, cause) (increase(casewatch_forced_logouts_total"
                              f"{{{SITE_TARGET}}}[$__interval])) > 0", "{{target}} {{cause}}",
                              interval="1m")], bars=True, stack=True),
            timeseries("Sessions active", "Logged-in sessions this site's agent holds and knows "
                       "to be alive, per target.", "short",
                       [query(f"sum by (target) (casewatch_sessions_active{{{SITE_TARGET}}})",
                              "{{target}}")], w=8),
            timeseries("Oldest session age", "Age of the oldest logged-in session held, per "
                       "target.", "s",
                       [query(f"max by (target) (casewatch_session_oldest_age_seconds{{{SITE_TARGET}}})",
                              "{{target}}")], w=8),
            timeseries("Re-login time (p95)", "95th percentile of the time to log back in after "
                       "a forced logout, over 30 minutes.", "s",
                       [query("histogram_quantile(0.95, sum by (target, le) (rate("
                              f"casewatch_relogin_duration_seconds_bucket{{{SITE_TARGET}}}[30m])))",
                              "{{target}}")], w=8),
            timeseries("Kept sessions: keep-alive checks by outcome (per interval)", "Checks "
                       "that a kept session is still logged in, in each interval of the panel "
                       "(non-overlapping counts, stacked), per target and outcome. Kept "
                       "sessions are not journeys: these never count in availability or the "
                       "burn-rate alerts.", "short",
                       [query("sum by (target, outcome) (increase(casewatch_keepalive_checks_total"
                              f"{{{SITE_TARGET}}}[$__interval])) > 0", "{{target}} {{outcome}}",
                              interval="1m")], bars=True, stack=True, w=8),
            timeseries("Kept sessions ended, by how (per interval)", "Kept sessions' lives "
                       "ended in each interval of the panel: forced (the server ended it), lost "
                       "(checks failed with no sign of a logout), max_age or agent_stop.",
                       "short",
                       [query("sum by (target, end) (increase(casewatch_kept_sessions_ended_total"
                              f"{{{SITE_TARGET}}}[$__interval])) > 0", "{{target}} {{end}}",
                              interval="1m")], bars=True, stack=True, w=8),
            timeseries("Kept sessions: keep-alive check time (p95) and logins", "95th "
                       "percentile of a keep-alive check's time over 30 minutes, per target; "
                       "below it, kept-session logins per interval by outcome.", "s",
                       [query("histogram_quantile(0.95, sum by (target, le) (rate("
                              f"casewatch_keepalive_duration_seconds_bucket{{{SITE_TARGET}}}[30m])))",
                              "p95 {{target}}"),
                        query("sum by (target, outcome) (increase(casewatch_kept_session_logins_total"
                              f"{{{SITE_TARGET}}}[$__interval]))", "logins {{target}} {{outcome}}",
                              interval="1m")], w=8,
                       overrides=[{"matcher": {"id": "byRegexp", "options": "logins .*"},
                                   "properties": [{"id": "unit", "value": "short"},
                                                  {"id": "custom.axisPlacement", "value": "right"}]}]),
            timeseries("Missed schedule slots (per interval)", "Timetable slots skipped in each "
                       "interval of the panel because the previous run was still going.", "short",
                       [query("sum by (target, journey) (increase(casewatch_schedule_missed_total"
                              f"{{{SEL}}}[$__interval])) > 0", "{{target}}/{{journey}}",
                              interval="1m")], bars=True, stack=True, w=8),
            timeseries("Schedule lateness (p95)", "95th percentile of actual minus intended run "
                       "start. High with no slow steps means the agent host is overloaded.", "s",
                       [query("histogram_quantile(0.95, sum by (target, journey, le) (rate("
                              f"casewatch_schedule_lateness_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                              "{{target}}/{{journey}}")], w=8),
            timeseries("Agent stalls", "Share of time the agent itself could not run (its "
                       "process paused, its host swapping or starved of CPU): no freeze is taken "
                       "from that time and the runs it spoiled are set apart, not counted against "
                       "the target. Right axis: the agent's current scheduling delay.",
                       "percentunit",
                       [query('max by (instance) (rate(casewatch_agent_stall_seconds_total'
                              '{site=~"$site"}[$__rate_interval]))', "stalled {{instance}}"),
                        query('max by (instance) (casewatch_agent_scheduling_delay_seconds'
                              '{site=~"$site"})', "delay {{instance}}")], w=8,
                       overrides=[{"matcher": {"id": "byRegexp", "options": "delay .*"},
                                   "properties": [{"id": "unit", "value": "s"},
                                                  {"id": "custom.axisPlacement", "value": "right"}]}]),
            timeseries("Agent journal: queue depth, write errors and dropped records", "Records "
                       "waiting for the journal writer, and per interval of the panel the writes "
                       "that failed and the records dropped (queue full or writer stopped).",
                       "short",
                       [query('max (casewatch_journal_queue_depth{site=~"$site"})', "queue"),
                        query('sum (increase(casewatch_journal_write_errors_total{site=~"$site"}[$__interval]))',
                              "write errors", interval="1m"),
                        query('sum (increase(casewatch_journal_dropped_total{site=~"$site"}[$__interval]))',
                              "dropped", interval="1m")], w=8),
            stat("Configuration last reload", "1 if this site's agent's last configuration load "
                 "succeeded; 0 means it runs on its previous configuration.", "none",
                 [query('max by (instance) (casewatch_config_last_reload_successful{site=~"$site"})',
                        "{{instance}}", instant=True)],
                 thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]),
            table("Agent versions", "The casewatch version each site's agent runs "
                  "(casewatch_build_info).", "casewatch_build_info"),
        ])


# ---------------------------------------------------------------------------
# Project board
# ---------------------------------------------------------------------------

def window(side):
    """The subquery steps in the 7 days before (or after) the change whose
    time is the `change` variable's value."""
    if side == "before":
        return f"on () ((vector($change) - time()) >= 0 < {WEEK})"
    return f"on () ((time() - vector($change)) > 0 <= {WEEK})"


def in_window(series, side):
    return f"({series} and {window(side)})[37d:5m]"


def before_after(title, desc, unit, make, decimals=None, thresholds=None):
    return stat(title, desc, unit,
                [query(make("before"), "before", instant=True),
                 query(make("after"), "after", instant=True)],
                w=6, h=5, decimals=decimals, thresholds=thresholds, color="value")


# Time lost per practitioner (the casewatch_time_lost recording group): for
# each cause, the recorded seconds lost and what they are divided by.
LOST = {
    "freezes": ("site:casewatch_time_lost_frozen_seconds:increase5m",
                "site:casewatch_practitioner_working_seconds:increase5m", None),
    "slowness": ("site:casewatch_time_lost_slow_seconds:increase5m",
                 "site:casewatch_practitioner_working_seconds:increase5m", None),
    "forced logouts": ("site:casewatch_forced_logouts_in_working_time:increase5m",
                       "site:casewatch_session_exposure_in_working_time_seconds:increase5m",
                       "site:casewatch_forced_logout_cost_seconds:mean1d"),
}


def lost_minutes(cause, site_sel):
    """Minutes lost per practitioner per working day over the panel's time
    range, per site: the recorded seconds lost over what they are divided
    by, times the cost of each (forced logouts), times the working day."""
    lost, per, cost = LOST[cause]
    over = lambda s: f"sum by (site) (sum_over_time({s}{{{site_sel}}}[$__range]))"
    expr = f"{over(lost)} / ({over(per)} > 0)"
    if cost:
        expr += f" * on (site) avg_over_time({cost}{{{site_sel}}}[$__range])"
    day = f"last_over_time(site:casewatch_practitioners_working_day_seconds:max{{{site_sel}}}[$__range])"
    return f"{expr} * on (site) {day} / 60"


def fleet_lost_minutes(cause):
    """Per practitioner across the fleet: each site's minutes weighted by its
    headcount."""
    heads = 'last_over_time(site:casewatch_practitioners_headcount:max[$__range])'
    return (f"sum(({lost_minutes(cause, '')}) * on (site) {heads}) / "
            f"sum({heads} and on (site) ({lost_minutes(cause, '')}))")


def staff_hours_per_month():
    """Staff-hours lost a month across the fleet: every site's minutes per
    practitioner per day, all causes, times headcount and working days."""
    per_site = " or ".join(
        f'label_replace({lost_minutes(cause, "")}, "cause", "{cause}", "", "")' for cause in LOST)
    heads = 'last_over_time(site:casewatch_practitioners_headcount:max[$__range])'
    days = 'last_over_time(site:casewatch_practitioners_workdays_per_month:max[$__range])'
    return (f"sum(sum by (site) ({per_site}) * on (site) {heads} * on (site) {days}) / 60")


def board():
    runs = "site_target_journey:casewatch_journey_runs:increase5m"
    failed = "site_target_journey:casewatch_journey_failed_runs:increase5m"
    logouts_band = "site_target_age_band:casewatch_forced_logouts:increase5m"
    exposure_band = "site_target_age_band:casewatch_session_exposure_seconds:increase5m"
    change_var = {
        "name": "change", "label": "Change", "type": "query", "datasource": DS,
        "definition": "query_result(max by (change) (casewatch_change_timestamp_seconds))",
        "query": "query_result(max by (change) (casewatch_change_timestamp_seconds))",
        # Text the change's name, value its unix time, for the windows below.
        "regex": '/change="(?<text>[^"]+)".*\\}\\s+(?<value>[0-9.e+]+)/',
        "multi": True, "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0, "options": [], "refresh": 2, "sort": 3,
    }
    fleet = f"sum_over_time(%s{{{TJ}}}[$__range])"
    site = f"sum_over_time(%s{{{SEL}}}[$__range])"
    panels = [
        row("All sites"),
        timeseries("Weekly availability by journey, all sites", "Share of runs ok or slow over "
                   "the 7 days up to each point, every site together, per target and journey "
                   "(user journeys only). Objective 99.5%.", "percentunit",
                   [query(f"target_journey:casewatch_journey_availability:ratio1w{{{TJ}}}",
                          "{{target}}/{{journey}}", interval="1h")], decimals=2, maximum=1),
        stat("Availability over the selected time range, all sites", "Share of runs ok or slow "
             "over the whole time range, every site together, per target and journey.",
             "percentunit",
             [query(f"1 - sum by (target, journey) ({fleet % failed}) / "
                    f"sum by (target, journey) ({fleet % runs})", "{{target}}/{{journey}}",
                    instant=True)], h=8, thresholds=PCT, decimals=2),
        timeseries("p95 step latency, all sites (daily)", "95th percentile of step duration over "
                   "the day up to each point, every site together, per target, journey and step. "
                   "Exact percentiles with intervals are in the evidence report.", "s",
                   [query(f"target_journey_step:casewatch_step_duration_seconds:p95_1d{{{TJ}}}",
                          "{{target}}/{{journey}}/{{step}}", interval="1h")]),
        timeseries("p95 journey duration, all sites (daily)", "95th percentile of run duration "
                   "(from the intended start) over the day up to each point, every site "
                   "together.", "s",
                   [query(f"target_journey:casewatch_journey_duration_seconds:p95_1d{{{TJ}}}",
                          "{{target}}/{{journey}}", interval="1h")]),
        timeseries("Forced-logout hazard by session age, all sites (daily)", "Forced logouts "
                   "per session-hour in each age band over the day up to each point, every site "
                   "together. If 'log out every two hours' were right, the bands after 2h would "
                   "stand above the others.", "short",
                   [query("age_band:casewatch_forced_logouts_per_session_hour:ratio1d",
                          "{{age_band}}", interval="1h")], decimals=3),
        barchart("Forced-logout hazard by session age over the selected time range",
                 "Forced logouts per hour of logged-in session time in each age band over the "
                 "time range, every site and the selected targets together. A band with no "
                 "exposure yet shows no bar; the next panel says how much evidence each bar has.",
                 "short",
                 f"sum by (age_band) (sum_over_time({logouts_band}{{target=~\"$target\"}}[$__range]))"
                 f" / sum by (age_band) (sum_over_time({exposure_band}{{target=~\"$target\"}}[$__range])) * 3600",
                 "age_band", "drops per session-hour", decimals=3, w=12),
        stat("Minutes lost per practitioner per working day, all sites", "Working time a "
             "practitioner lost each day over the selected time range, by cause, every site "
             "together (each site weighted by its headcount): waiting on freezes (weighted by "
             "how much of their work is on the frozen system), logging back in and redoing "
             "work after forced logouts, and steps slower than acceptable. The assumptions are "
             "each site's practitioners block; the evidence report gives the same split with "
             "95% intervals.", "m",
             [query(fleet_lost_minutes(cause), cause, instant=True) for cause in LOST],
             w=16, h=5, decimals=1, color="value"),
        stat("Staff-hours lost per month, all sites", "The minutes above, all causes, times "
             "each site's headcount and working days a month.", "h",
             [query(staff_hours_per_month(), "staff-hours a month", instant=True)],
             w=8, h=5, decimals=0, color="value"),
        barchart("Session-hours observed per age band", "Logged-in session time spent in each "
                 "age band over the time range, every site together: the evidence behind each "
                 "hazard bar.", "h",
                 f"sum by (age_band) (sum_over_time({exposure_band}{{target=~\"$target\"}}[$__range])) / 3600",
                 "age_band", "session-hours", decimals=1, w=12),
        row("Site $site"),
        timeseries("Minutes lost per practitioner per working day at $site (daily)", "Working "
                   "time a practitioner at this site lost over the day up to each point, by "
                   "cause (freezes, slowness, forced logouts), from the site's practitioners "
                   "block.", "m",
                   [query('site_cause:casewatch_time_lost_minutes_per_working_day:ratio1d'
                          '{site=~"$site"}', "{{cause}}", interval="1h")], decimals=1),
        stat("Minutes lost per practitioner per working day at $site over the selected time "
             "range", "The same split over the whole time range at this site.", "m",
             [query(lost_minutes(cause, 'site=~"$site"'), cause, instant=True) for cause in LOST],
             decimals=1, color="value", h=8),
        timeseries("Daily and weekly availability by journey at $site", "Share of runs ok or "
                   "slow over the day and over the 7 days up to each point at this site.",
                   "percentunit",
                   [query(f"site_target_journey:casewatch_journey_availability:ratio1d{{{SEL}}}",
                          "{{target}}/{{journey}} day", interval="1h"),
                    query(f"site_target_journey:casewatch_journey_availability:ratio1w{{{SEL}}}",
                          "{{target}}/{{journey}} week", interval="1h")], decimals=2, maximum=1),
        stat("Availability over the selected time range at $site", "Share of runs ok or slow "
             "over the whole time range at this site.", "percentunit",
             [query(f"1 - sum by (target, journey) ({site % failed}) / "
                    f"sum by (target, journey) ({site % runs})", "{{target}}/{{journey}}",
                    instant=True)], h=8, thresholds=PCT, decimals=2),
        timeseries("p95 step latency at $site (daily)", "95th percentile of step duration over "
                   "the day up to each point at this site.", "s",
                   [query(f"site_target_journey_step:casewatch_step_duration_seconds:p95_1d{{{SEL}}}",
                          "{{target}}/{{journey}}/{{step}}", interval="1h")]),
        timeseries("p95 journey duration at $site (daily)", "95th percentile of run duration "
                   "(from the intended start) over the day up to each point at this site.", "s",
                   [query(f"site_target_journey:casewatch_journey_duration_seconds:p95_1d{{{SEL}}}",
                          "{{target}}/{{journey}}", interval="1h")]),
        timeseries("Freeze episodes per day at $site", "Freeze episodes begun on each day "
                   "(one bar a day, non-overlapping), per target.", "short",
                   [query("sum by (target) (sum_over_time(site_target:casewatch_freeze_episodes:increase5m"
                          f"{{{SITE_TARGET}}}[$__interval]))", "{{target}}", interval="1d")],
                   bars=True, decimals=0),
        timeseries("Freeze episode duration at $site (median and p95, daily)", "Median and 95th "
                   "percentile of the length of ended freeze episodes over the day up to each "
                   "point.", "s",
                   [query(f"site_target:casewatch_freeze_duration_seconds:p50_1d{{{SITE_TARGET}}}",
                          "median {{target}}", interval="1h"),
                    query(f"site_target:casewatch_freeze_duration_seconds:p95_1d{{{SITE_TARGET}}}",
                          "p95 {{target}}", interval="1h")]),
        stat("Time frozen over the selected time range at $site", "Total length of the ended "
             "freeze episodes over the time range, per target.", "s",
             [query("sum by (target) (sum_over_time(site_target:casewatch_freeze_duration_seconds_sum:increase5m"
                    f"{{{SITE_TARGET}}}[$__range]))", "{{target}}", instant=True)], h=8),
        timeseries("Forced logouts per day by cause at $site", "Sessions this site lost to the "
                   "server on each day (one bar a day, non-overlapping), per cause.", "short",
                   [query("sum by (cause) (sum_over_time(site_target_cause:casewatch_forced_logouts:increase5m"
                          f"{{{SITE_TARGET}}}[$__interval]))", "{{cause}}", interval="1d")],
                   bars=True, stack=True, decimals=0),
        bargauge("Session age at forced logout at $site", "How old sessions were when the server "
                 "ended them over the time range: forced logouts per session-age bucket "
                 "(cumulative, le = at most that age).", "short",
                 "sum by (le) (sum_over_time(site_target_le:casewatch_session_age_at_logout_seconds_bucket:increase5m"
                 f"{{{SITE_TARGET}}}[$__range]))", "{{le}}"),
        row("Before and after ${change:text}", repeat="change"),
        before_after(
            "Availability before and after", "Share of user-journey runs ok or slow, every site "
            "together, in the 7 days before the change and the 7 days after it (or up to now).",
            "percentunit",
            lambda side: f"1 - sum_over_time({in_window('casewatch_journey_failed_runs:increase5m', side)})"
                         f" / sum_over_time({in_window('casewatch_journey_runs:increase5m', side)})",
            decimals=2, thresholds=PCT),
        before_after(
            "p95 step latency before and after", "95th percentile of every step's duration, every "
            "site together, in the 7 days before the change and the 7 days after it.", "s",
            lambda side: "histogram_quantile(0.95, sum by (le) (sum_over_time("
                         f"{in_window('le:casewatch_step_duration_seconds_bucket:increase5m', side)})))",
            decimals=2),
        before_after(
            "Freeze episodes per day before and after", "Freeze episodes begun per day, every "
            "site together, in the 7 days before the change and the 7 days after it.", "short",
            lambda side: f"sum_over_time({in_window('casewatch_freeze_episodes:increase5m', side)})"
                         f" / (count_over_time({in_window('casewatch_freeze_episodes:increase5m', side)}) * 300 / 86400)",
            decimals=1),
        before_after(
            "Forced logouts per session-hour before and after", "Forced logouts per hour of "
            "logged-in session time, every site together, in the 7 days before the change and "
            "the 7 days after it.", "short",
            lambda side: f"sum_over_time({in_window('casewatch_forced_logouts:increase5m', side)})"
                         f" / sum_over_time({in_window('casewatch_session_exposure_seconds:increase5m', side)}) * 3600",
            decimals=3),
    ]
    return dashboard(
        "casewatch-board", "casewatch / Project board",
        "For the project board: weekly availability, p95 latency, freezes and forced logouts, "
        "the forced-logout hazard by session age, and each change's before and after, over "
        "30 days. Reads only the 5-minute recording rules, so it opens at fleet scale.",
        "now-30d", "1h", panels, extra_vars=[change_var])


# ---------------------------------------------------------------------------
# Reporting load
# ---------------------------------------------------------------------------

def reporting():
    report_var = {
        "name": "report_journey", "label": "Report journeys (regex)", "type": "textbox",
        "query": ".*report.*",
        "current": {"selected": False, "text": ".*report.*", "value": ".*report.*"},
        "hide": 0, "options": [{"selected": True, "text": ".*report.*", "value": ".*report.*"}],
    }
    rep = 'site=~"$site",journey=~"$report_journey"'
    inter = 'site=~"$site",target=~"$target",journey!~"$report_journey"'
    return dashboard(
        "casewatch-reporting", "casewatch / Reporting load",
        "Where management reports run (ICS or CSS) and what they do to interactive work, at "
        "one site: report run times per system, and interactive latency alongside the number "
        "of reports running.",
        "now-24h", "30s", [
            timeseries("Report run time p95 by target (ICS vs CSS)", "95th percentile of report "
                       "journey duration over 30 minutes, per target.", "s",
                       [query("histogram_quantile(0.95, sum by (target, journey, le) (rate("
                              f"casewatch_journey_duration_seconds_bucket{{{rep}}}[30m])))",
                              "{{target}}/{{journey}}")]),
            timeseries("Report run time mean by target", "Mean report journey duration over 30 "
                       "minutes, per target.", "s",
                       [query(f"sum by (target, journey) (rate(casewatch_journey_duration_seconds_sum{{{rep}}}[30m]))"
                              f" / sum by (target, journey) (rate(casewatch_journey_duration_seconds_count{{{rep}}}[30m]))",
                              "{{target}}/{{journey}}")]),
            timeseries("Interactive step latency (p95) alongside reports running",
                       "p95 of interactive (non-report) steps per target, and the mean number of "
                       "report runs in progress: report run time per second of clock time (the "
                       "rate of the duration sum), which counts every run however short.", "s",
                       [query("histogram_quantile(0.95, sum by (target, le) (rate("
                              f"casewatch_step_duration_seconds_bucket{{{inter}}}[$__rate_interval])))",
                              "p95 interactive steps {{target}}"),
                        query(f"sum by (target) (rate(casewatch_journey_duration_seconds_sum{{{rep}}}[$__rate_interval]))",
                              "reports running on {{target}}")], w=24, h=9,
                       overrides=[{"matcher": {"id": "byRegexp", "options": "reports running.*"},
                                   "properties": [{"id": "unit", "value": "short"},
                                                  {"id": "custom.axisPlacement", "value": "right"}]}]),
            timeseries("Reports running", "Mean number of report runs in progress over each "
                       "interval: report run time per second (rate of the duration sum), per "
                       "target and journey.", "short",
                       [query("sum by (target, journey) (rate(casewatch_journey_duration_seconds_sum"
                              f"{{{rep}}}[$__rate_interval]))", "{{target}}/{{journey}}")],
                       decimals=2),
            timeseries("Interactive p95 by step", "95th percentile of each interactive step's "
                       "duration per target and journey.", "s",
                       [query("histogram_quantile(0.95, sum by (target, journey, step, le) (rate("
                              f"casewatch_step_duration_seconds_bucket{{{inter}}}[$__rate_interval])))",
                              "{{target}}/{{journey}}/{{step}}")]),
            timeseries("Report runs by outcome (per interval)", "Report runs ended in each "
                       "interval of the panel, per target and outcome (non-overlapping, "
                       "stacked); outcomes that did not happen are not drawn.", "short",
                       [query("sum by (target, journey, outcome) (increase(casewatch_journey_runs_total"
                              f"{{{rep}}}[$__interval])) > 0", "{{target}}/{{journey}} {{outcome}}",
                              interval="5m")], bars=True, stack=True),
            stat("Median report run time over the selected time range", "Median report journey "
                 "duration over the time range, per target.", "s",
                 [query("histogram_quantile(0.5, sum by (target, journey, le) (increase("
                        f"casewatch_journey_duration_seconds_bucket{{{rep}}}[$__range])))",
                        "{{target}}/{{journey}}", instant=True)], h=8),
            stat("Interactive availability over the selected time range", "Share of interactive "
                 "journey runs ok or slow over the time range, per target.", "percentunit",
                 [query(f'sum by (target) (increase(casewatch_journey_runs_total{{{inter},outcome=~"ok|slow"}}[$__range]))'
                        f" / sum by (target) (increase(casewatch_journey_runs_total{{{inter}}}[$__range]))",
                        "{{target}}", instant=True)], h=8, thresholds=PCT, decimals=2),
        ], extra_vars=[report_var])


# ---------------------------------------------------------------------------
# Fleet: which of the offices is red right now
# ---------------------------------------------------------------------------

# site:casewatch_alert_state:max (config/alerts/casewatch.rules.yml): the
# most severe casewatch alert firing for the site.
STATE = [{"type": "value", "options": {
    "0": {"text": "OK", "color": "green", "index": 0},
    "1": {"text": "ticket", "color": "orange", "index": 1},
    "2": {"text": "PAGE", "color": "red", "index": 2},
}}]
STATE_THRESHOLDS = [{"color": "green", "value": None}, {"color": "orange", "value": 1},
                    {"color": "red", "value": 2}]
OPERATIONS_LINK = [{
    "title": "Operations at ${__field.labels.site}",
    "url": "/d/casewatch-operations/casewatch-operations?var-site=${__field.labels.site}&${__url_time_range}",
}]


def state_timeline(title, desc, queries, w=24, h=14):
    return {
        "type": "state-timeline", "title": title, "description": desc, "datasource": DS,
        "w": w, "h": h,
        "fieldConfig": {"defaults": {
            "unit": "none", "mappings": STATE, "color": {"mode": "thresholds"},
            "thresholds": {"mode": "absolute", "steps": STATE_THRESHOLDS},
            "custom": {"fillOpacity": 80, "lineWidth": 0}, "links": OPERATIONS_LINK,
        }, "overrides": []},
        "options": {"mergeValues": True, "showValue": "never", "alignValue": "left",
                    "rowHeight": 0.9, "legend": {"showLegend": False},
                    "tooltip": {"mode": "single", "sort": "none"}},
        "targets": refs(queries),
    }


def fleet():
    now = stat(
        "Every site now",
        "One tile per office: PAGE (red) while an alert of severity page fires "
        "for the site (agent down or silent, a freeze in progress, a journey "
        "burning its error budget fast), ticket (orange) while only a ticket "
        "does, OK (green) while nothing fires. Sorted worst first. Click a "
        "tile for that site's Operations dashboard; Prometheus's /alerts page "
        "(or Grafana's alert list) says which alert it is. From the recording "
        "rule site:casewatch_alert_state:max: one series per site.",
        "none",
        [query("sort_desc(max by (site) (site:casewatch_alert_state:max))", "{{site}}",
               instant=True)],
        w=24, h=8, thresholds=STATE_THRESHOLDS, mappings=STATE, text="value_and_name")
    now["fieldConfig"]["defaults"]["links"] = OPERATIONS_LINK
    return dashboard(
        "casewatch-fleet", "casewatch / Fleet",
        "Which of the offices is red right now, and since when: every site's "
        "state from the casewatch alerts firing for it. For IT operations.",
        "now-6h", "30s", [
            now,
            state_timeline(
                "State of every site over time",
                "Each row is a site; each stretch its state: OK (green), a ticket "
                "open (orange), a page firing (red). The right edge is now. Click a "
                "row for that site's Operations dashboard.",
                [query("max by (site) (site:casewatch_alert_state:max)", "{{site}}")]),
        ], per_site=False)


BOARDS = {
    "casewatch-operations.json": operations,
    "casewatch-board.json": board,
    "casewatch-reporting.json": reporting,
    "casewatch-fleet.json": fleet,
}


def main():
    stale = []
    for name, make in BOARDS.items():
        text = json.dumps(make(), indent=2) + "\n"
        path = ROOT / "dashboards" / name
        if "--check" in sys.argv[1:]:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    for path in stale:
        print(f"{path} is stale: run python3 scripts/dashboards.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
