#!/usr/bin/env python3
"""Browser journey costs: Chromium memory per concurrent context, CPU per
browser step, and whether a given number of browser journeys keeps its
timetable on this host.

Runs `casewatch sim` (quiet profile) and `casewatch run` with browser
journeys, sampling every process of the agent's Chromium (found by its
throwaway profile folder, `casewatch-chromium-*`) from /proc every 100 ms:
RSS and PSS (shared pages split between processes, so the sum is honest),
and CPU time (utime + stime) per process, whose last value is kept when a
process exits (a renderer goes with its context). CPU spent in a process's
last 100 ms is missed, so CPU figures are slight underestimates. Steps and
missed slots come from the agent's /metrics.

usage: scripts/bench-browser.py BIN OUT.md
  BENCH_CONCURRENCY="1 2 4"   contexts busy at once, one measurement each
  BENCH_SECONDS=60            length of each measurement
  BENCH_LOAD="8 30 90"        journeys, interval (s), seconds: the timetable check
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def chromium_pids():
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"casewatch-chromium-" in cmd:
            pids.append(int(name))
    return pids


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return None


def memory_kib(pid):
    """(rss, pss) in KiB."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def metric_sum(text, name, want=None):
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        labels = m.group(2) or ""
        if want and not all(f'{k}="{v}"' in labels for k, v in want.items()):
            continue
        total += float(m.group(3))
    return total


STEPS = """
        - name: search
          fill: { selector: '#search input[name="q"]', value: 'Smith' }
        - name: search_submit
          click: '#search button[type="submit"]'
          assert: { selector: ['#results a.case-link'] }
        - name: open_case
          click: 'a.case-link'
          assert: { url: '/cases/', selector: ['#note-form'] }
        - name: write_note
          fill: { selector: '#note-form textarea', value: 'Bench note ${run_id}' }
        - name: save_note
          click: '#note-form button[type="submit"]'
          assert: { selector: ['p.saved'] }
"""


def config(sim, journeys, interval, contexts):
    text = f"""site: bench
agent:
  max_sessions: 64
browser:
  max_contexts: {contexts}
targets:
  - name: ics
    base_url: http://{sim}/
    connect_timeout: 2s
    credentials:
      username: {{ value: sw.bench }}
      password: {{ env: CASEWATCH_PASSWORD }}
    defaults: {{ slow_after: 3s, freeze_after: 10s, give_up_after: 30s }}
    session_rules:
      redirect_to: '/login\\?expired=1'
      cookie: ICSSESSION
    browser:
      login:
        - {{ name: sign_in_page, goto: /login, assert: {{ selector: ['form#login'] }} }}
        - {{ name: user_name, fill: {{ selector: 'input[name="username"]', value: '${{username}}' }} }}
        - {{ name: password, fill: {{ selector: 'input[name="password"]', value: '${{password}}' }} }}
        - {{ name: sign_in, click: '#login button[type="submit"]', assert: {{ text: ['Signed in as'] }} }}
      logout:
        - {{ name: sign_out, click: 'a[href="/logout"]' }}
journeys:
"""
    for j in range(journeys):
        text += f"""  - name: browser_{j}
    target: ics
    schedule: {{ interval: {interval}s, jitter: {max(1, interval // 10)}s }}
    browser:
      steps:{STEPS}"""
    return text


def measure(binary, sim, journeys, interval, contexts, seconds, work):
    path = os.path.join(work, f"bench-{journeys}-{interval}-{contexts}.yaml")
    with open(path, "w") as f:
        f.write(config(sim, journeys, interval, contexts))
    port = free_port()
    agent = subprocess.Popen(
        [binary, "run", "--config", path, "--listen", f"127.0.0.1:{port}", "--log", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready")
    cpu = {}
    peak_rss = peak_pss = 0
    samples = []
    start = time.time()
    agent_cpu_start = cpu_seconds(agent.pid) or 0.0
    while time.time() - start < seconds:
        rss_total = pss_total = 0
        for pid in chromium_pids():
            c = cpu_seconds(pid)
            if c is not None:
                cpu[pid] = c
            rss, pss = memory_kib(pid)
            rss_total += rss
            pss_total += pss
        if rss_total:
            samples.append((rss_total, pss_total))
        peak_rss = max(peak_rss, rss_total)
        peak_pss = max(peak_pss, pss_total)
        time.sleep(0.1)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    agent_cpu = (cpu_seconds(agent.pid) or 0.0) - agent_cpu_start
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=60)
    steps = sum(
        metric_sum(text, "casewatch_step_outcomes_total", {"outcome": o})
        for o in ["ok", "slow", "frozen", "logged_out", "http_error", "assertion_failed", "connect_error", "error"]
    )
    good_runs = sum(
        metric_sum(text, "casewatch_journey_runs_total", {"outcome": o}) for o in ["ok", "slow"]
    )
    runs = metric_sum(text, "casewatch_journey_runs_total")
    missed = metric_sum(text, "casewatch_schedule_missed_total")
    run_seconds = metric_sum(text, "casewatch_journey_duration_seconds_sum")
    run_count = metric_sum(text, "casewatch_journey_duration_seconds_count")
    return {
        "journeys": journeys,
        "interval": interval,
        "contexts": contexts,
        "seconds": seconds,
        "peak_rss_mib": peak_rss / 1024,
        "peak_pss_mib": peak_pss / 1024,
        "median_pss_mib": sorted(p for _, p in samples)[len(samples) // 2] / 1024 if samples else 0,
        "chromium_cpu": sum(cpu.values()),
        "agent_cpu": agent_cpu,
        "steps": steps,
        "runs": runs,
        "good_runs": good_runs,
        "missed": missed,
        "mean_run_seconds": run_seconds / run_count if run_count else 0,
    }


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    binary, out = sys.argv[1], sys.argv[2]
    concurrency = [int(x) for x in os.environ.get("BENCH_CONCURRENCY", "1 2 4").split()]
    seconds = int(os.environ.get("BENCH_SECONDS", "60"))
    load = [int(x) for x in os.environ.get("BENCH_LOAD", "8 30 90").split()]
    os.environ["CASEWATCH_PASSWORD"] = "bench-password"
    work = tempfile.mkdtemp(prefix="casewatch-bench-browser-")
    with open(os.path.join(work, "quiet.yaml"), "w") as f:
        f.write("users: [sw.bench]\n")
    ics, css = free_port(), free_port()
    sim = subprocess.Popen(
        [binary, "sim", "--profile", os.path.join(work, "quiet.yaml"),
         "--ics-listen", f"127.0.0.1:{ics}", "--css-listen", f"127.0.0.1:{css}", "--log", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim_addr = f"127.0.0.1:{ics}"
    rows = []
    try:
        wait_http(f"http://{sim_addr}/login")
        for k in concurrency:
            # k journeys every 2 s with k contexts: k contexts stay busy.
            print(f"memory and CPU: {k} context(s) busy for {seconds} s", file=sys.stderr)
            rows.append(measure(binary, sim_addr, k, 2, k, seconds, work))
        journeys, interval, length = load
        print(f"timetable: {journeys} journeys every {interval} s for {length} s", file=sys.stderr)
        timetable = measure(binary, sim_addr, journeys, interval, 4, length, work)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)

    lines = [
        "# Browser journeys: resources",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"({open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}), "
        f"{subprocess.run(['chromium', '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"binary `{binary}`.",
        "",
        "Command: `python3 scripts/bench-browser.py " + " ".join(sys.argv[1:]) + "`"
        + f" (BENCH_CONCURRENCY=\"{' '.join(map(str, concurrency))}\" BENCH_SECONDS={seconds}"
        + f" BENCH_LOAD=\"{' '.join(map(str, load))}\").",
        "",
        "Each journey signs in, searches, opens a case, saves a note and signs out in a fresh",
        "context: 10 browser steps a run. Memory is the sum over every process of the agent's",
        "Chromium, sampled every 100 ms; PSS splits shared pages between processes.",
        "",
        "| contexts busy | peak RSS MiB | peak PSS MiB | median PSS MiB | runs ok/all | steps | Chromium CPU s | agent CPU s | CPU ms per step | mean run s |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per_step = 1000 * (r["chromium_cpu"] + r["agent_cpu"]) / r["steps"] if r["steps"] else 0
        lines.append(
            f"| {r['contexts']} | {r['peak_rss_mib']:.0f} | {r['peak_pss_mib']:.0f} | {r['median_pss_mib']:.0f} | "
            f"{r['good_runs']:.0f}/{r['runs']:.0f} | {r['steps']:.0f} | {r['chromium_cpu']:.1f} | {r['agent_cpu']:.1f} | "
            f"{per_step:.0f} | {r['mean_run_seconds']:.1f} |"
        )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        extra = last["contexts"] - first["contexts"]
        lines += [
            "",
            f"PSS per extra concurrent context: ({last['peak_pss_mib']:.0f} - {first['peak_pss_mib']:.0f}) / {extra}"
            f" = **{(last['peak_pss_mib'] - first['peak_pss_mib']) / extra:.0f} MiB** (RSS: "
            f"{(last['peak_rss_mib'] - first['peak_rss_mib']) / extra:.0f} MiB, which counts shared pages once per process).",
        ]
    t = timetable
    cpu_per_run = (t["chromium_cpu"] + t["agent_cpu"]) / t["runs"] if t["runs"] else 0
    lines += [
        "",
        f"Timetable check: {t['journeys']} browser journeys every {t['interval']} s for {t['seconds']} s, "
        f"max_contexts 4: {t['good_runs']:.0f}/{t['runs']:.0f} runs ok or slow, **{t['missed']:.0f} missed slots**, "
        f"mean run {t['mean_run_seconds']:.1f} s, {cpu_per_run:.2f} CPU s per run (Chromium and agent), "
        f"peak PSS {t['peak_pss_mib']:.0f} MiB.",
    ]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
