"""The 10-hosts row: nine more Docker engines on this machine (harness/engines.py), one sshd
in front of each, and the first deploy of the five services to 1 host and to all at once,
deployer's against the floor's."""

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HarnessError, engines, processes, sshd
from harness.engines import IMAGE

from bench.scenarios import SSHD_OPTIONS
from bench.tools import (DEPLOY_TIMEOUT, PEERS, ToolFailed, labelled_networks_remove, last_line, one_line, run,
                         template_text)

HOSTS = 10  # the "10 hosts deployed in parallel cost at most 1.5x one host"
MIN_HOSTS = 4  # with fewer hosts up than this, the row is not measured
HOSTS_INSTANCE = "benchhosts"
# Ten engines on one machine cannot all publish 127.0.0.1:18080: web gets a free host port
# from its engine instead, on 1 host as on 10, so the two figures deploy the same thing.
HOSTS_PORT = "127.0.0.1::8080"
BRIDGES = "br-bn"  # the names of this bench's bridges start so, and no others'
ENGINE_ROOTS = "/tmp/bnb"  # short: containerd's socket paths under it are limited in length
ENGINE_MARK = "deployer-bench-engines"  # a file in the bench's engine roots, and in no other dir
ENGINE_TIMEOUT = 120  # seconds for the extra engines to answer `docker info`


def sweep_engines():
    """Stop what an earlier bench, killed before its cleanup, left: its engines (their dockerd
    runs in its own session, so it outlives the bench), mounts, bridges and roots."""
    for root in Path(ENGINE_ROOTS).parent.glob(Path(ENGINE_ROOTS).name + "*"):
        if not (root / ENGINE_MARK).is_file():
            continue
        for pid_file in list(root.glob("e*/pid")) + list(root.glob("e*/x/containerd/containerd.pid")):
            processes.stop_pid(pid_file, str(root), timeout=30)
        engines.unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for bridge in re.findall(rf"^\d+: ({BRIDGES}[^:@\s]*)", links, re.M):
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


class Fleet:
    """The hosts of the 10-hosts row: the bench's own host (the local engine), then one sshd
    per extra engine, whose SetEnv gives deployer that engine (DOCKER_HOST) and its own state
    and volume dirs. All let in the bench's client key. stop() undoes whatever start() got
    to, whenever it was stopped."""

    def __init__(self, host, tmp):
        self.tmp = tmp
        self.members = [(host, dict(os.environ))]  # (SSHHost, env of its engine) per host that is up
        self.engines, self.sshds, self.root = [], [], None
        self.problems = []  # what did not start, for the report

    def start(self, count):
        print(f"bench: starting {count - 1} more Docker engines and sshds, for {count} hosts", flush=True)
        started = time.monotonic()
        sweep_engines()
        self.root = Path(tempfile.mkdtemp(prefix=ENGINE_ROOTS))
        (self.root / ENGINE_MARK).touch()
        failed = {}  # engine -> why it is not up
        for n in range(1, count):
            # its own session: Ctrl-C reaches the bench only, whose cleanup stops the engine in order
            engine = engines.Engine(self.root / f"e{n}", BRIDGES, iptables=False, own_session=True)
            self.engines.append(engine)  # first, so that stop() undoes a half-made one
            try:
                engine.start()
            except (HarnessError, OSError) as e:
                failed[engine] = str(e)
        deadline = time.monotonic() + ENGINE_TIMEOUT  # they start at once; one deadline for all
        for engine in self.engines:
            if engine not in failed:
                try:
                    engine.wait(max(0.0, deadline - time.monotonic()))
                except HarnessError as e:
                    failed[engine] = one_line(e)
        ready = [e for e in self.engines if e not in failed]
        if ready:
            loaded = engines.load_image(ready, IMAGE, self.root / "image.tar")
            failed.update((engine, one_line(why)) for engine, why in loaded.items())
        key = self.members[0][0].key
        for n, engine in enumerate(self.engines, 1):
            if engine in failed:
                self.problems.append(f"engine {n}: {failed[engine]}")
                continue
            try:
                host = sshd.start(self.tmp / f"host{n}", {"DOCKER_HOST": engine.url}, key, SSHD_OPTIONS)
            except HarnessError as e:
                self.problems.append(f"sshd for engine {n}: {one_line(e)}")
                continue
            self.sshds.append(host)
            self.members.append((host, engine.env))
        print(f"bench: {len(self.members)} hosts up in {time.monotonic() - started:.1f} s", flush=True)

    def remove(self, instance):
        """Untimed: the instance's containers and the floor's on every engine (at once), its
        networks, the instance's state and volumes."""
        removing = []
        for host, env in self.members:
            ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=deployer.instance={instance}"],
                                 env=env, capture_output=True, text=True).stdout.split()
            ids += subprocess.run(["docker", "ps", "-aq", "--filter", "name=^raw_"],
                                  env=env, capture_output=True, text=True).stdout.split()
            if ids:
                removing.append(subprocess.Popen(["docker", "rm", "-f", *ids], env=env,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for process in removing:
            process.wait()
        for host, env in self.members:
            labelled_networks_remove(f"deployer.instance={instance}", env)
            shutil.rmtree(host.state_dir / "instances" / instance, ignore_errors=True)
            shutil.rmtree(host.volume_dir / instance, ignore_errors=True)

    def stop(self):
        for host in self.sshds:
            sshd.stop(host)
        self.remove(HOSTS_INSTANCE)  # the local engine's share: it stays up
        removing = []
        for engine in self.engines:
            try:
                removing.append(engine.remove_containers())
            except (OSError, subprocess.TimeoutExpired):
                pass
        for process in filter(None, removing):
            process.wait()
        for engine in self.engines:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                engine.remove_networks()
        for engine in self.engines:  # dockerd stops in seconds; all at once
            engine.terminate()
        for engine in self.engines:
            engine.stop()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
        self.engines, self.sshds = [], []


def measure_hosts(fleet, src, runs, warmup, count=HOSTS):
    """The first deploy of the 5 services (web on HOSTS_PORT) to 1 host and to `count` hosts
    at once: deployer in one `python -m deployer -H h1,...,hN` (its default --parallel is 10);
    and, for what this machine allows, the floor: one ssh per host running the floor's 5
    `docker run`, all hosts at once. Alternating, each after removing everything (untimed);
    after every deploy, every host's engine must run the 5 containers.
    {"deployer": {"one": [s], "all": [s]}, "floor": {...}, "hosts": N, ...} or a string:
    why it was not measured."""
    try:
        fleet.start(count)
    except (ToolFailed, HarnessError) as e:
        return f"failed: starting the hosts: {one_line(e)}"
    hosts = len(fleet.members)
    if hosts < MIN_HOSTS:
        return f"not measured: only {hosts} of {count} hosts started ({'; '.join(fleet.problems)})"
    template = fleet.tmp / "deployer-hosts.yaml"
    template.write_text(template_text(5, 0, port=HOSTS_PORT))
    key = fleet.members[0][0].key
    env = dict(os.environ, PYTHONPATH=str(src), FABRIC_DEPLOYER_ACCEPT_NEW_HOSTS="1")
    data_dir = fleet.tmp / "data"
    data_dir.mkdir(exist_ok=True)
    floor_script = f"BENCH_IMAGE={IMAGE}\nBENCH_DATA={shlex.quote(str(data_dir))}\nWORKER_GEN=0\n"
    floor_script += (PEERS / "floor-first-deploy.sh").read_text().replace("127.0.0.1:18080:8080", HOSTS_PORT)
    assert HOSTS_PORT in floor_script

    def deployer(members):
        run([sys.executable, "-m", "deployer", "-H", ",".join(h.target for h, _ in members), "-i", str(key),
             "deploy", str(template), "--instance", HOSTS_INSTANCE], env=env, cwd=src)

    def floor(members):
        clients = [subprocess.Popen(h.ssh("sh -s"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE) for h, _ in members]
        for client in clients:
            client.stdin.write(floor_script.encode())
            client.stdin.close()
        errors = [client.stderr.read().decode(errors="replace") for client in clients]
        for client, error in zip(clients, errors):
            if client.wait(DEPLOY_TIMEOUT):
                raise ToolFailed(f"floor on several hosts: exit {client.returncode}: {last_line(error)}")

    def check(members, filters):
        for host, docker_env in members:
            running = subprocess.run(["docker", "ps", "-q", "--filter", "status=running", *filters],
                                     env=docker_env, capture_output=True, text=True).stdout.split()
            if len(running) != 5:
                raise ToolFailed(f"after a deploy, {host.target} runs {len(running)} of the 5 containers")

    ways = (("deployer", deployer, ["--filter", f"label=deployer.instance={HOSTS_INSTANCE}"]),
            ("floor", floor, ["--filter", "name=^raw_"]))
    samples = {name: {"one": [], "all": []} for name, _, _ in ways}
    try:
        for i in range(warmup + runs):
            for name, deploy, filters in ways:
                for which, members in (("one", fleet.members[:1]), ("all", fleet.members)):
                    print(f"bench: {name}: first deploy to {len(members)} host(s), run {i + 1} of {warmup + runs}",
                          flush=True)
                    fleet.remove(HOSTS_INSTANCE)
                    started = time.perf_counter()
                    deploy(members)
                    seconds = time.perf_counter() - started
                    check(members, filters)
                    if i >= warmup:
                        samples[name][which].append(seconds)
    except ToolFailed as e:
        print(f"bench: several hosts failed: {e}", flush=True)
        return f"failed: {e}"
    finally:
        fleet.remove(HOSTS_INSTANCE)
    return dict(samples, hosts=hosts, wanted=count, problems=fleet.problems)
