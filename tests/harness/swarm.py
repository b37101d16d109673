"""A real Docker Swarm on this one machine: two nodes, each a dockerd (engines.Engine) in a
network namespace of its own with an address of its own, the first the manager, the
second a worker joined to it.

Why not the machine's main engine as the manager: other engineers' tests use it at the
same time, and swarm mode changes an engine for everyone (an ingress network, a
docker_gwbridge, `docker network create` meaning something else to a manager, a leave
that removes what others rely on). A manager of its own is started, joined and torn down
with the test, and nothing of it is left to surprise the next one.

The wiring: a third namespace, the switch, holds a bridge; a veth pair links each node to
it, and one more the host (``.1``), all on one /24 no host interface has, so the host
reaches each node at its address. The bridge is in a namespace of its own because the
host's bridges pass through its iptables FORWARD chain (br_netfilter), whose policy
Docker sets to DROP: a bridge on the host would drop the nodes' traffic to each other; a
fresh namespace has no such rule, and leaves no rule behind on the host. Deleting the
namespaces removes every link. The engines' sockets are files, so the host's docker
client reaches each node by ``DOCKER_HOST`` without any of that network.

This kernel has no IPVS, which Swarm's virtual IPs and ingress routing mesh need: a
service's name resolves to its tasks (``--endpoint-mode dnsrr``), and ports are published
in host mode.
"""

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile

from . import HarnessError, poll
from .engines import ROOTS, Engine, load_image


@dataclasses.dataclass
class Node:
    name: str  # also its network namespace's name
    address: str
    engine: Engine

    def docker(self, *args, timeout=60):
        """docker ARGS against this node's engine: a CompletedProcess (text)."""
        return subprocess.run(["docker", *args], env=self.engine.env, capture_output=True, text=True,
                              timeout=timeout)


@dataclasses.dataclass
class Swarm:
    manager: Node
    worker: Node
    host: str  # this machine's address on the nodes' switch: a registry here (registry.py) listens on it

    @property
    def nodes(self):
        return (self.manager, self.worker)


def _ip(*args):
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if res.returncode:
        raise HarnessError(f"ip {' '.join(args)}: {res.stderr.strip()}")


def _subnet():
    """A 10.231.N.0/24 on no interface of the host (the host gets .1, the nodes .2, .3),
    looked for from a place of this process's own, so that two swarms started at once
    (two test runs) do not both take the first free one."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    numbers = [(os.getpid() + i) % 249 + 1 for i in range(249)]
    return next(f"10.231.{n}" for n in numbers if f"10.231.{n}." not in used)


class Wiring:
    """The namespaces and links of one swarm, named ``sw<pid>...`` (15 characters at most:
    interface names), so that remove() takes away exactly these."""

    def __init__(self):
        self.tag = f"sw{os.getpid() % 100000}"
        self.switch = f"{self.tag}s"
        self.made = []  # the namespaces made so far

    def namespace(self, name):
        _ip("netns", "add", name)
        self.made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def link(self, end, inside, address):
        """A veth from the switch's bridge to ``inside`` (a namespace, or None: the host),
        named ``end`` there, with ``address`` (a /24)."""
        _ip("link", "add", end, "type", "veth", "peer", "name", f"{end}p")
        _ip("link", "set", f"{end}p", "netns", self.switch)
        _ip("-n", self.switch, "link", "set", f"{end}p", "master", "br0", "up")
        where = ["-n", inside] if inside else []
        if inside:
            _ip("link", "set", end, "netns", inside)
        _ip(*where, "addr", "add", f"{address}/24", "dev", end)
        _ip(*where, "link", "set", end, "up")

    def make(self, names):
        """The switch, the host linked to it (``.1``), and each of ``names`` a namespace
        linked to it: the host's address, and {name: address}."""
        net = _subnet()
        self.namespace(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        self.link(f"{self.tag}h", None, f"{net}.1")
        addresses = {}
        for number, name in enumerate(names, 2):
            self.namespace(name)
            addresses[name] = f"{net}.{number}"
            self.link(f"{self.tag}n{number}", name, addresses[name])
        return f"{net}.1", addresses

    def remove(self):
        """Every namespace made (and with them every link: a veth goes with either end)."""
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def _join(swarm):
    """Make the manager a swarm's manager and join the worker to it."""
    manager, worker = swarm.nodes
    res = manager.docker("swarm", "init", "--advertise-addr", manager.address)
    if res.returncode:
        raise HarnessError(f"docker swarm init on {manager.name}: {res.stderr.strip()}")
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    res = worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.address,
                        f"{manager.address}:2377", timeout=120)
    if res.returncode:
        raise HarnessError(f"docker swarm join on {worker.name}: {res.stderr.strip()}")
    _ready(swarm)


def _ready(swarm, timeout=60):
    poll.wait_for(lambda: ready_nodes(swarm.manager) == len(swarm.nodes), "every node ready", timeout, interval=0.5)


@contextlib.contextmanager
def stopped(swarm, node):
    """The node's engine stopped for the block (a node lost: Swarm moves its tasks once it
    sees it down), started again after it, and the block left once every node is ready."""
    node.engine.halt()
    try:
        yield
    finally:
        node.engine.resume()
        _ready(swarm)


def ready_nodes(manager):
    """How many nodes the manager sees ready."""
    listed = manager.docker("node", "ls", "--format", "{{.Status}}")
    return listed.stdout.split().count("Ready")


@contextlib.contextmanager
def running(images=(), timeout=60):
    """A two-node swarm for the block, with ``images`` (in the local engine) loaded on both
    nodes; each engine takes a registry at the host's address on their switch over plain
    HTTP (an insecure registry). All of it goes at the end, however the block ends:
    engines, namespaces, links, their files under /tmp."""
    wiring = Wiring()
    root = tempfile.mkdtemp(prefix=ROOTS)
    names = (f"{wiring.tag}m", f"{wiring.tag}w")
    engines = {}
    try:
        host, addresses = wiring.make(names)
        insecure = ["--insecure-registry", f"{host}/32"]
        engines = {name: Engine(os.path.join(root, name[-1]), netns=name, args=insecure) for name in names}
        for engine in engines.values():
            engine.start()
        for engine in engines.values():
            engine.wait(timeout)
        swarm = Swarm(*(Node(name, addresses[name], engines[name]) for name in names), host)
        _join(swarm)
        for image in images:
            errors = load_image(engines.values(), image, os.path.join(root, "image.tar"))
            if errors:
                raise HarnessError("; ".join(errors.values()))
        yield swarm
    finally:
        for engine in engines.values():
            engine.stop()
        wiring.remove()
        shutil.rmtree(root, ignore_errors=True)
