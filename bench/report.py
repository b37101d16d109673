"""The benchmark's report: the tables of times and of SSH round trips, the issue's targets as
ratios of this run's medians, whether every tool deployed the same containers, failures."""

import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

from harness.engines import IMAGE

from bench.hosts import HOSTS, HOSTS_PORT
from bench.scenarios import HEADINGS, SCENARIOS
from bench.tools import ANSIBLE, COMPOSE, FLOOR, ToolFailed, compose_binary


def seconds(samples):
    """'median s (min-max)' of one scenario's runs."""
    return seconds_of([s.seconds for s in samples])


def seconds_of(values):
    """'median s (min-max)' of some timings."""
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.3f} s"
    return f"{median:.3f} s ({min(values):.2f}-{max(values):.2f})"


def sessions(samples):
    """'sessions/connections' per run of one scenario; a range when the runs differ."""
    def span(values):
        lo, hi = min(values), max(values)
        return str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{span([s.sessions for s in samples])}/{span([s.connections for s in samples])}"


def table(rows, cell):
    """A markdown table like the issue's: a row per tool, a column per scenario."""
    lines = ["| tool | " + " | ".join(HEADINGS[s] for s in SCENARIOS) + " |",
             "|---|" + "---|" * len(SCENARIOS)]
    for name, results in rows:
        cells = [cell(results[s]) if s in results else "" for s in SCENARIOS]
        if "error" in results:
            cells = [c for c in cells if c] + ["failed (see below)"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_of(results, scenario):
    samples = (results or {}).get(scenario)
    return statistics.median(s.seconds for s in samples) if samples else None


def target(label, value, bound, upper=True):
    """One line: this run's ratio against the issue's bound (upper or lower)."""
    sign = "<=" if upper else ">="
    if value is None:
        return f"  {label:<56} {'n/a':>7}  target {sign} {bound}x: not measured"
    met = value <= bound if upper else value >= bound
    return f"  {label:<56} {value:>6.2f}x  target {sign} {bound}x: {'met' if met else 'NOT met'}"


def ratio(a, b):
    return a / b if a is not None and b is not None else None


def target_lines(rows):
    """The issue's speed targets, each as a ratio of this run's medians."""
    r = dict(rows)
    mine = r.get("deployer")
    lines = []
    for scenario, floor_bound, compose_bound in (("noop", 1.3, 1.0), ("change", 1.1, 1.0), ("first", 1.1, 0.7)):
        d = median_of(mine, scenario)
        lines.append(target(f"{HEADINGS[scenario]}: deployer / floor", ratio(d, median_of(r.get(FLOOR), scenario)),
                            floor_bound))
        lines.append(target(f"{HEADINGS[scenario]}: deployer / compose",
                            ratio(d, median_of(r.get(COMPOSE), scenario)), compose_bound))
    for scenario in SCENARIOS:
        lines.append(target(f"{HEADINGS[scenario]}: Ansible defaults / deployer",
                            ratio(median_of(r.get(ANSIBLE), scenario), median_of(mine, scenario)), 5, upper=False))
    return lines


def hosts_lines(parallel):
    """The 10-hosts target: deployer's median first deploy to all hosts at once over its
    median to 1 host; then the floor's, which is what this one machine allows."""
    label = f"{HOSTS} hosts in parallel / 1 host"
    if isinstance(parallel, str):
        return [f"  {label}, target <= 1.5x: {parallel}"]
    hosts = parallel["hosts"]
    if hosts != parallel["wanted"]:
        label = f"{hosts} hosts (of {parallel['wanted']}) in parallel / 1 host"
    lines = []
    for name in ("deployer", "floor"):
        one, every = parallel[name]["one"], parallel[name]["all"]
        factor = statistics.median(every) / statistics.median(one)
        if name == "deployer":
            lines.append(target(label, factor, 1.5))
        lines.append(f"    {name}: first deploy, 1 host {seconds_of(one)}, {hosts} hosts at once {seconds_of(every)}"
                     + (f": {factor:.2f}x" if name == "floor" else ""))
    lines += [f"    (5 services, web on {HOSTS_PORT}; host 1 is the local engine, hosts 2-{hosts} a dockerd each,",
              f"    all on these {os.cpu_count()} CPUs; the floor is one ssh per host running its 5 `docker run`, "
              "all at once)"]
    lines += [f"    did not start: {problem}" for problem in parallel["problems"]]
    return lines


def round_trip_lines(round_trips):
    """SSH round trips per deploy of deployer, by template size: the target is that they
    do not grow with the number of services."""
    lines = ["  deployer's SSH round trips per deploy (exec sessions/connections), by services:"]
    for count, results in round_trips:
        cells = [f"{HEADINGS[s]} {sessions(results[s])}" for s in SCENARIOS if s in results]
        if "error" in results:
            cells.append("failed (see below)")
        lines.append(f"    {count:>3} services: " + ", ".join(cells))
    per_size = [[sessions(results[s]) for s in SCENARIOS if s in results] for _, results in round_trips]
    complete = all(len(cells) == len(SCENARIOS) for cells in per_size)
    same = complete and all(cells == per_size[0] for cells in per_size)
    lines.append(f"    the same for {' and '.join(str(c) for c, _ in round_trips)} services: "
                 f"{'met' if same else 'not measured' if not complete else 'NOT met'}")
    return lines


def counter_check(rows):
    """The floors are one ssh running one script: anything but 1/1 means the counter is off."""
    floor = dict(rows).get(FLOOR, {})
    samples = [s for scenario in SCENARIOS for s in floor.get(scenario, ())]
    if samples and all(s.sessions == 1 and s.connections == 1 for s in samples):
        return f"  counter check: all {len(samples)} floor runs counted exactly 1 session on 1 connection"
    return "  WARNING: a floor run did not count as 1 session on 1 connection: the counts are suspect"


def same_containers(rows):
    """Lines naming every service whose container differs from deployer's in what it runs."""
    results = dict(rows)
    reference = results.get("deployer", {}).get("containers")
    if not reference:
        return ["  not checked: deployer's first deploy did not complete"]
    out = []
    for name, result in rows:
        theirs = result.get("containers")
        if name == "deployer" or not theirs:
            continue
        for service, facts in theirs.items():
            diff = [k for k in facts if facts[k] != reference.get(service, {}).get(k)]
            if diff:
                out.append(f"  {name}: {service}: " + ", ".join(
                    f"{k} {facts[k]!r} (deployer: {reference.get(service, {}).get(k)!r})" for k in diff))
    checked = [name for name, result in rows if result.get("containers") and name != "deployer"]
    return out or [f"  yes: {', '.join(checked)} run the same cmd, env, init, restart policy, published "
                   "ports and mount targets as deployer, all running"]


def print_report(args, rows, round_trips, ssh_true, startup, planning, parallel, started):
    runs = f"median of {args.runs} run(s){' after 1 warm-up' if args.warmup else ''}, (min-max)"
    load = f"at the start {args.load[0]:.2f}, "
    if hasattr(args, "load_hosts"):  # the 10 hosts load the machine themselves
        load += f"before the {HOSTS} hosts {args.load_hosts[0]:.2f}, "
    load += f"at the end {os.getloadavg()[0]:.2f}"
    print(f"""
# deployer speed benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC{' (--quick)' if args.quick else ''}
# {os.cpu_count()} CPUs; {versions()}
# loopback sshd in front of the local engine; the same 5 services ({IMAGE}) for every tool
# {runs}
# one bare `ssh host true`: {ssh_true:.3f} s; `python -m deployer --version` (start-up, no SSH): {startup[0]:.3f} s
#   through deployer's daemon, {startup[1]:.3f} s without (DEPLOYER_DAEMON=0: Python starts and imports all)
# load average (1 min) {load}: other work skews the figures

{table(rows, seconds)}

SSH per deploy, from sshd's log: exec sessions/connections
{table(rows, sessions)}
{counter_check(rows)}

Targets, as ratios of this run's medians""")
    for line in target_lines(rows) + round_trip_lines(round_trips):
        print(line)
    for line in hosts_lines(parallel):
        print(line)
    if isinstance(planning, str):
        print(f"  planning 200 services (parse + render + plan, no I/O): failed: {planning}")
    else:
        median, lo, hi = planning
        print(f"  planning 200 services (parse + render + plan, no I/O): {median * 1000:.1f} ms "
              f"({lo * 1000:.1f}-{hi * 1000:.1f}), target < 50 ms: {'met' if median < 0.05 else 'NOT met'}")
    print("\nSame containers from every tool?")
    print("\n".join(same_containers(rows)))
    failures = [(name, r["error"]) for name, r in rows + [(f"deployer ({n} services)", r) for n, r in round_trips[1:]]
                if "error" in r]
    if failures:
        print("\nFailures")
        for name, error in failures:
            print(f"  {name}: {error}")
    print(f"\nbench: finished in {time.monotonic() - started:.0f} s")


def versions():
    """The versions that matter for the figures, for the header."""
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except OSError:
            return None
        lines = (out.stdout or out.stderr).strip().splitlines()
        return lines[0] if out.returncode == 0 and lines else None

    parts = [f"Docker {first_line(['docker', 'version', '--format', '{{.Server.Version}}'])}",
             (first_line(["ssh", "-V"]) or "ssh ?").split(",")[0],
             f"Python {platform.python_version()}"]
    try:
        parts.append(f"compose {first_line([compose_binary(), 'version', '--short'])}")
    except ToolFailed:
        pass
    ansible = first_line([sys.executable, "-c", "import ansible.release as r; print(r.__version__)"])
    if ansible:
        parts.append(f"ansible-core {ansible}")
    return ", ".join(parts)
