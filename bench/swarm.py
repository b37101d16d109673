"""The swarm's row (issue 16): a first deploy and a no-op re-deploy of the reference
services to a Docker Swarm, deployer (``--engine swarm``) against ``docker stack deploy``
of the equivalent compose file, in one run, with their ratios.

    bench/run-swarm                 # 3 timed runs of each (a few minutes: every first deploy waits)
    bench/run-swarm --runs 1        # a smoke test

The swarm is the tests' (tests/harness/swarm.py): two dockerds of their own, a manager and a
worker, each in a network namespace; a throwaway sshd on 127.0.0.1 whose sessions reach the
manager. Both tools go through SSH: deployer as a user runs it (a new process a deploy, no
daemon), ``docker stack deploy`` with ``DOCKER_HOST=ssh://`` (the system ssh, through a
wrapper handing it the sshd's config). The services are bench/peers' five, as a swarm runs
them: names resolve to tasks (dnsrr), the web port is published in host mode (no address),
and the service with a volume is pinned to the manager (a named volume there).

deployer waits for each service's task to run through its monitor period (5 s without a
healthcheck); ``docker stack deploy`` returns once it has sent its services (docker 28's CLI
against this docker 20.10 engine does not wait), so it has two rows: as it returns, and then polling
``docker stack services`` over the same SSH until every task runs (what deployer's wait
stands for). Neither asks a registry for digests (there is none here: ``--resolve-image
never``; deployer reads the manager's own). A node tries to pull a tag before it runs a
task from it, and fails here (no network): every task start pays that, for both tools.
Every run of a first deploy starts from nothing (untimed teardown); everything started is
removed at the end.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from harness import REPO_ROOT, engines, sshd, swarm as swarm_harness
from harness.poll import wait_for

from bench.tools import services

INSTANCE, STACK = "swbench", "swstack"
ROWS = ("deployer --engine swarm", "docker stack deploy", "docker stack deploy, then waiting")
SCENARIOS = {"first": "first deploy", "noop": "no-op re-deploy"}


def parse_args():
    parser = argparse.ArgumentParser(prog="bench/run-swarm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each scenario (default 3)")
    return parser.parse_args()


def template(manager):
    """bench/peers' five services as a swarm runs them (the module's docstring)."""
    out = services(5, 0, port="18080:8080")
    out["files"]["placement"] = {"constraints": [f"node.hostname == {manager}"]}
    return out


def stack_file(services_):
    """The same services as a compose file for ``docker stack deploy``."""
    out = {}
    for name, spec in services_.items():
        service = {"image": spec["image"], "init": spec["init"], "command": list(spec["cmd"]),
                   "environment": spec.get("env", {}), "deploy": {"endpoint_mode": "dnsrr"}}
        if "ports" in spec:
            host, target = spec["ports"][0].split(":")
            service["ports"] = [{"target": int(target), "published": int(host), "mode": "host"}]
        if "volumes" in spec:
            service["volumes"] = [f"{name}_data:{spec['volumes'][0]}"]
            service["deploy"]["placement"] = spec["placement"]
        out[name] = service
    volumes = {f"{name}_data": {} for name, spec in services_.items() if "volumes" in spec}
    return {"version": "3.8", "services": out, "volumes": volumes}


def main():
    args = parse_args()
    engines.busybox_image()
    with tempfile.TemporaryDirectory(prefix="deployer-swarm-bench") as tmp, \
            swarm_harness.running([engines.IMAGE]) as cluster, \
            sshd.running(Path(tmp) / "sshd", {"DOCKER_HOST": cluster.manager.engine.url}) as host:
        tmp = Path(tmp)
        wanted = template(cluster.manager.name)
        (tmp / "swarm.yaml").write_text(yaml.safe_dump(wanted, sort_keys=False))
        (tmp / "stack.yml").write_text(yaml.safe_dump(stack_file(wanted), sort_keys=False))
        stack, teardown = stack_tool(host, tmp, cluster)
        tools = {ROWS[0]: deployer_tool(host, tmp / "swarm.yaml", cluster), ROWS[1]: (stack, teardown),
                 ROWS[2]: (lambda: stack(wait=True), teardown)}
        timings = {row: {scenario: [] for scenario in SCENARIOS} for row in ROWS}
        try:
            for row, (deploy, teardown) in tools.items():
                print(f"bench: {row}", flush=True)
                for _ in range(args.runs):
                    teardown()
                    timings[row]["first"].append(timed(deploy))
                    timings[row]["noop"].append(timed(deploy))
                teardown()
        finally:
            for _, remove in tools.values():
                remove()
    report(timings, args.runs)
    return 0


def timed(deploy):
    started = time.perf_counter()
    deploy()
    return time.perf_counter() - started


def run(argv, env):
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    if done.returncode:
        raise SystemExit(f"bench/run-swarm: {shlex.join(map(str, argv[:6]))}... failed:\n{done.stdout}{done.stderr}")


def deployer_tool(host, path, cluster):
    """deploy(), teardown() of deployer through the sshd (its destroy: untimed)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), DEPLOYER_DAEMON="0",
               FABRIC_DEPLOYER_KNOWN_HOSTS=str(host.known_hosts))
    base = [sys.executable, "-m", "deployer", "-H", host.target, "-i", str(host.key), "--engine", "swarm"]

    def teardown():
        subprocess.run([*base, "destroy", INSTANCE, "--yes"], env=env, capture_output=True, timeout=600, cwd=REPO_ROOT)
        gone(cluster, f"label=deployer.instance={INSTANCE}")

    return (lambda: run([*base, "deploy", str(path), "--instance", INSTANCE], env)), teardown


def stack_tool(host, tmp, cluster):
    """deploy(), teardown() of ``docker stack deploy`` with DOCKER_HOST=ssh:// (the system
    ssh, given the sshd's config by a wrapper first on PATH)."""
    wrappers = tmp / "ssh-wrapper"
    wrappers.mkdir(exist_ok=True)
    (wrappers / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {shlex.quote(str(host.ssh_config))} "$@"\n')
    (wrappers / "ssh").chmod(0o755)
    env = dict(os.environ, PATH=f"{wrappers}:{os.environ['PATH']}", DOCKER_HOST=f"ssh://{host.target}")

    def teardown():
        subprocess.run(["docker", "stack", "rm", STACK], env=cluster.manager.engine.env, capture_output=True,
                       timeout=120)
        gone(cluster, f"label=com.docker.stack.namespace={STACK}")

    argv = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(tmp / "stack.yml"), STACK]

    def deploy(wait=False):
        run(argv, env)
        if wait:
            wait_for(lambda: converged(env), "the stack's tasks to run", timeout=600, interval=0.2)

    return deploy, teardown


def converged(env):
    """Whether every service of the stack runs all its tasks (``docker stack services``)."""
    listed = subprocess.run(["docker", "stack", "services", "--format", "{{.Replicas}}", STACK], env=env,
                            capture_output=True, text=True, timeout=60).stdout.split()
    return bool(listed) and all(r.split("/")[0] == r.split("/")[1].split()[0] for r in listed)


def gone(cluster, label):
    """Wait until the manager has no service or network of ``label`` left, and the
    volumes of it are removed from every node (their tasks gone first)."""
    def empty():
        manager = cluster.manager
        left = [manager.docker(kind, "ls", "-q", "--filter", label).stdout.split() for kind in ("service", "network")]
        if left[1]:
            manager.docker("network", "rm", *left[1])
        for node in cluster.nodes:
            volumes = node.docker("volume", "ls", "-q", "--filter", label).stdout.split()
            if volumes:
                node.docker("volume", "rm", *volumes)
        return not any(left) and not any(node.docker("volume", "ls", "-q", "--filter", label).stdout.split()
                                         for node in cluster.nodes)

    wait_for(empty, f"nothing of {label} left", timeout=120, interval=1)


def report(timings, runs):
    """The table (median of the runs, min-max) and deployer's time as a ratio of stack's."""
    median = {row: {s: statistics.median(t) for s, t in by.items()} for row, by in timings.items()}
    print(f"\nswarm: 5 services, two nodes, median of {runs} (min-max)")
    print("| tool | " + " | ".join(SCENARIOS.values()) + " |")
    print("|---|" + "---|" * len(SCENARIOS))
    for row in ROWS:
        cells = [f"{median[row][s]:.3f} s ({min(t):.2f}-{max(t):.2f})" for s, t in timings[row].items()]
        print(f"| {row} | " + " | ".join(cells) + " |")
    for scenario, heading in SCENARIOS.items():
        ratios = [f"{median[ROWS[0]][scenario] / median[row][scenario]:.2f}x {row}" for row in ROWS[1:]]
        print(f"{heading}: deployer takes " + ", ".join(ratios))
