"""Routes on a swarm: the router is a global Swarm service (a Caddy task on every node,
its ports published in host mode), and the route table is the cluster's. Pure: the
arguments and shell lines; sh/router.sh runs them.

Why it looks as it does:

- A route dials its service by name, through Caddy's dynamic upstreams (the name's A
  records, asked again every ``REFRESH``): a service runs with ``--endpoint-mode dnsrr``,
  so its alias (``<service>.<instance>``, the one ``expose`` gives) resolves to its
  running tasks. Swarm's own rolling update (start-first, health-gated) moves the route:
  a rollout changes nothing the router serves. Swarm takes a task that goes out of the
  name's answers 2 s before it stops it (the agent's gossip delay), so with a refresh
  below that Caddy never dials a task that stopped: measured under a steady client a
  node, a refresh of 60 s failed 2 to 3 requests of 50 on a rollout (with or without
  retries: the stale answer is retried), 1 s none; a service replaced stop-first (a
  fixed host port, a volume) lost none either (70 requests; 1 of 38 with 60 s). A
  request that finds no task waits and is tried again for up to ``try_duration``, as on
  one host (no request needed it in these measurements).
- The router's tasks cannot join an instance's overlay network without an update of the
  router service, which restarts them (with host-mode ports, stop-first: a gap), so a
  routed service joins one network shared with the router, ``deployer-router``, under the
  same alias: every routed service of every instance is on it (weaker isolation than on
  one host, where the router joins each instance's network). A service's own network
  stays its instance's alone.
- The table is the cluster's, a config per change of domains or ports (``deployer-routes-N``,
  ``table``'s rows; the facts give the core an instance's rows as it names them, ``moved``):
  a deploy writes ``N+1`` only when the newest is still the one it read (a name only one
  can create, so of two deploys changing routes at once the second fails, changing no
  route: run it again).
- A change of the table reaches every node's router before the deploy goes on: a global
  job, one task a node, tells the node's router to load the config (``caddy reload`` on
  its admin API, a unix socket in the router's volume on that node, never on a
  network); the deploy waits until every node's task completed. Each router saves what
  it loaded in that volume and resumes it when it starts again; a node that joins later
  serves no domain (404) until the next change, or ``router restart``.
- Certificates (``tls: internal``) come from each node's router's own CA.
"""

import dataclasses
import hashlib
import json

from ..model import network, route
from ..model.spec import ContainerSpec
from ..plugins.route import LABEL_ROUTE
from ..remote.scripts import call

NAME = "deployer-router"  # the router's service, its network and its volume on every node
SOCKET = "/deployer/admin.sock"  # its admin API, in its volume
BASE = "/deployer-base.json"  # the config a router task starts with, when it has none saved
REFRESH = "1s"  # how often a route's name is resolved again
REFUSED = {  # the router verbs a swarm answers otherwise, and where to look instead
    "status": "router status is a node's on a swarm: the router is the global service deployer-router "
              "(docker service ps deployer-router, on a manager)",
    "ca": "router ca is a node's on a swarm: each node's router has its own CA, in that node's volume "
          "deployer-router (data/caddy/pki/authorities/local/root.crt)",
}


def table(rows):
    """The table as a swarm keeps and serves it: a route dials its service's name (module
    docstring), whichever container the core's table names (``r7.web.shop``: one release's,
    on one host), so that it changes with domains and ports, not with each rollout."""
    return tuple(sorted(dataclasses.replace(r, upstreams=(route.upstream(r.instance, r.service, r.port, 0, False),))
                        for r in rows))


def moved(rows, instance, state, containers):
    """The kept table as the core moves it: the instance's rows dial what the core says the
    running units of a service (its one task, or each replica in order) of their release
    are dialled by (route.upstream: a start-first one's by its release), so that an
    unchanged instance moves no route."""
    specs = state.services if state else {}
    units = {}  # service -> [(unit, release)], in replica order
    for c in sorted(containers, key=lambda c: c.replica):
        units.setdefault(c.service, []).append((c.unit, c.release))

    def dial(r, unit, release):
        first = unit in specs and ContainerSpec.from_dict(specs[unit].spec).start_first
        return route.upstream(instance, unit, r.port, release, first)

    return tuple(dataclasses.replace(r, upstreams=tuple(dial(r, *u) for u in units.get(r.service, [(r.service, 0)])))
                 if r.instance == instance else r for r in rows)


def config(rows, router):
    """Caddy's whole config for the table (route.config's; ``rows`` as ``table`` keeps
    them), each route dialling its service's name, and the admin API on the socket in the
    router's volume."""
    whole = route.config(rows, router)
    whole["admin"] = {"listen": f"unix/{SOCKET}"}
    for server in whole["apps"]["http"]["servers"].values():
        for handler in (h for r in server["routes"] for h in r["handle"] if h["handler"] == "reverse_proxy"):
            host, _, port = handler.pop("upstreams")[0]["dial"].rpartition(":")
            handler["dynamic_upstreams"] = {"source": "a", "name": host, "port": port, "refresh": REFRESH}
    return json.dumps(whole, sort_keys=True, separators=(",", ":"))


def digest(router):
    """How the router service runs, in short: one labelled otherwise is made anew."""
    return hashlib.sha256(json.dumps([config((), router), *_args(router)]).encode()).hexdigest()[:16]


def _args(router):
    ports = [router.http_port] + ([router.https_port] if router.tls != "off" else [])
    return ["--mode", "global", "--network", NAME, "--update-order", "stop-first",
            *(a for p in ports for a in ("--publish", f"mode=host,target={p},published={p},protocol=tcp")),
            "--mount", f"type=volume,source={NAME},target=/deployer",
            "--env", "XDG_DATA_HOME=/deployer/data", "--env", "XDG_CONFIG_HOME=/deployer/config",
            router.image, "caddy", "run", "--resume", "--config", BASE]


def up(rows, router, limit):
    """The line making sure the router service runs as the settings say; one made anew
    (settings changed: a moment without router on every node) loads the table ``rows``,
    since its tasks would resume what an earlier router saved on their node (sh:
    dpl_swarm_router_up)."""
    return call("dpl_swarm_router_up", digest(router), config((), router), int(limit), config(rows, router),
                *_args(router)) + " || exit 1"


def load(seen, rows, router, limit):
    """The line making ``rows`` the cluster's table, loaded by every node's router, if the
    table is still ``seen`` (both as ``table`` keeps them) (sh: dpl_swarm_router_load)."""
    return call("dpl_swarm_router_load", int(limit), route.dump(seen), route.dump(rows), config(rows, router),
                router.image) + " || exit 1"


def lines(moves, router, limit):
    """A deploy's router lines: ``before`` its steps (the router up; the routes that go
    leave, so they answer 404 at once) and ``after`` them (the routes that come, once their
    services run); none that changes a table for a rollout alone."""
    before, early, final = table(moves.before), table(moves.early), table(moves.final)
    first = [up(before, router, limit)] + ([load(before, early, router, limit)] if early != before else [])
    return first, [load(early, final, router, limit)] if final != early else []


def push(rows, router, limit):
    """The line making every node's router load the table ``rows`` again (sh: dpl_swarm_router_push)."""
    return call("dpl_swarm_router_push", int(limit), config(rows, router), router.image) + " || exit 1"


def joins(spec):
    """The router's network for a routed service, as spec.networks gives networks
    (``(network, alias)``): under the alias it has on its instance's network."""
    return [(NAME, network.alias(spec.instance, spec.service))] if LABEL_ROUTE in dict(spec.labels) else []


def states(rows, listed, name):
    """``{container name: state}`` of the routed services, from ``docker service ls`` lines
    of ``NAME REPLICAS`` (``name(instance, service)``: a service's name): running when
    every task wanted runs, else ``running 0/1``."""
    replicas = dict(line.split(" ", 1) for line in listed.splitlines() if " " in line)
    out = {}
    for r in rows:
        (container,) = r.containers
        count = replicas.get(name(r.instance, r.service))
        if count is not None:
            done, _, wanted = count.partition("/")
            out[container] = "running" if done == wanted != "0" else f"running {count}"
    return out
