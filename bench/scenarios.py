"""What the benchmark measures and how: the three scenarios of every tool (their times and,
from the sshd's log, their SSH connections and sessions), what each tool's containers
really are, and the figures of deployer alone (start-up, planning 200 services)."""

import dataclasses
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

from bench.tools import ToolFailed, run, template_text

SCENARIOS = ("first", "noop", "change")
HEADINGS = {"first": "first deploy", "noop": "no-op re-deploy", "change": "one service's env changed"}
# The bench's sshds: LogLevel VERBOSE logs a line per connection and per session, which
# count_since counts; many connections and sessions at once are let in.
SSHD_OPTIONS = {"LogLevel": "VERBOSE", "MaxStartups": "100", "MaxSessions": "100"}


@dataclasses.dataclass
class Sample:
    seconds: float
    connections: int
    sessions: int


def measure(tool, scenario, host, runs, warmup):
    """Time `runs` deploys of one scenario after `warmup` untimed ones; count SSH per run.

    (a) tears the tool down before each run (untimed); (b) redeploys WORKER_GEN=0, as left
    by (a); (c) flips WORKER_GEN on every run, starting from the 0 that (a) and (b) left,
    so it must come last (measure_tool tears the tool down after it).
    """
    samples = []
    for i in range(warmup + runs):
        gen = (i + 1) % 2 if scenario == "change" else 0
        if scenario == "first":
            tool.teardown()
        mark = host.log_mark()
        started = time.perf_counter()
        tool.deploy(scenario, gen)
        seconds = time.perf_counter() - started
        if i >= warmup:
            samples.append(Sample(seconds, *host.count_since(mark)))
    return samples


def measure_tool(tool, host, runs, warmup, scenarios=SCENARIOS):
    """Every scenario of one tool, then its teardown; {scenario: [Sample]} or a ToolFailed."""
    results = {}
    try:
        for scenario in scenarios:
            print(f"bench: {tool.name}: {HEADINGS[scenario]}", flush=True)
            results[scenario] = measure(tool, scenario, host, runs, warmup)
            if scenario == "first":
                results["containers"] = describe(tool.containers)
    except ToolFailed as e:
        results["error"] = str(e)
        print(f"bench: {tool.name} failed: {e}", flush=True)
    finally:
        tool.teardown()
    return results


def describe(containers):
    """What each service's container really is, in the terms every tool shares: cmd, env,
    init, restart policy, published ports, mount targets. Compared across tools at the end,
    so a faster row cannot come from deploying less."""
    raw = subprocess.run(["docker", "inspect", *containers.values()], capture_output=True, text=True)
    if raw.returncode:
        raise ToolFailed(f"after its first deploy, docker inspect: {raw.stderr.strip()}")
    by_name = {c["Name"].lstrip("/"): c for c in json.loads(raw.stdout)}
    out = {}
    for service, name in containers.items():
        c = by_name[name]
        ports = {p: sorted((b["HostIp"], b["HostPort"]) for b in bindings or ())
                 for p, bindings in (c["HostConfig"].get("PortBindings") or {}).items()}
        out[service] = {
            "running": c["State"]["Running"],
            "cmd": c["Config"]["Cmd"],
            "env": sorted(e for e in c["Config"]["Env"] if not e.startswith("PATH=")),
            "init": bool(c["HostConfig"].get("Init")),
            "restart": c["HostConfig"]["RestartPolicy"]["Name"],
            "ports": ports,
            "mounts": sorted((m["Destination"], m["RW"]) for m in c["Mounts"]),
        }
    return out


def time_ssh_true(host, runs):
    """The reference cost of one bare `ssh host true` on this machine."""
    samples = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        run(host.ssh("true"))
        samples.append(time.perf_counter() - started)
    return statistics.median(samples[1:])


def time_startup(src, runs):
    """deployer's cost before any SSH (`--version`), through its daemon and without (a
    Python start and every import): medians (the first run, which starts the daemon, is
    not counted)."""
    medians = []
    for daemon in ("600", "0"):
        env = dict(os.environ, PYTHONPATH=str(src), DEPLOYER_DAEMON=daemon)
        samples = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            run([sys.executable, "-m", "deployer", "--version"], env=env, cwd=src)
            samples.append(time.perf_counter() - started)
        medians.append(statistics.median(samples[1:]))
    return tuple(medians)


def time_planning(count=200, runs=20):
    """Plan a large template in the pure core, as deployer.instance.deploy chains it, with no
    state on the host: parse (YAML and validation), render the specs, plan. No I/O."""
    from deployer import plugins
    from deployer.model.plan import plan
    from deployer.model.spec import render
    from deployer.model.template import parse

    text = template_text(count, 0)
    # No image ids known either, where plan() takes them (since the smart deploy).
    extra = {"images": {}} if "images" in inspect.signature(plan).parameters else {}
    samples = []
    for _ in range(runs + 1):  # the first loads the plugins and is not counted
        started = time.perf_counter()
        template = parse(text, f"bench-{count}.yaml")
        actions = plan(render(template, "bench", "/srv/deployer/volumes", plugins.installed()), None, (), **extra)
        samples.append(time.perf_counter() - started)
        assert len(actions) == count
    return statistics.median(samples[1:]), min(samples[1:]), max(samples[1:])


def supports_parallel_hosts():
    """None, or why the measured tree cannot deploy hosts in parallel: Fabric's own Executor
    runs the hosts of `-H h1,h2` one after another."""
    import fabric
    from deployer.cli.program import program

    if program.executor_class is fabric.Executor:
        return "not supported yet (deployer deploys the hosts of -H one after another)"
    return None
