"""Service discovery: endpoints, their allocation, and the order services start in.

``register`` names a service's container ports (endpoints). On one host an endpoint is
reached over the instance's private network (network.py), by the service's stable alias
and its container port: no host port at all. An endpoint needs a host port only where
something off the host's networks reaches it: with etcd (other hosts; published on the
host's reachable address) or with ``wan`` (every interface). Such a port is allocated once
per (instance, service, endpoint), kept in the instance's state and reused on every later
deploy, so an endpoint's address survives its service being recreated. A replicated
service's endpoint gets a host port a replica, in replica order: a replica keeps its port
across deploys, scaling up adds ports and scaling down drops the last ones. ``expose`` hands
an endpoint to a container as an env var holding ``ADDRESS:PORT``: of this instance
(``db:driver``: ``db.shop:5432``) or of another instance on the same host
(``shared/db:driver``: the consumer joins that service's network).

With the default ``state`` backend the registry is the host's instance states (one host);
etcd.py holds the ``etcd`` backend (across hosts). deployer registers on the container's
behalf: no helper binary runs inside images.
Everything here is pure: the host's facts (its reachable address, ports in use, other
instances' endpoints) come in as data.
"""

from dataclasses import dataclass

from ..errors import TemplateError
from . import network
from .schema import ENDPOINT_REF, unit

PORTS = range(30000, 32768)  # where endpoints are published; below Linux's ephemeral range


@dataclass(frozen=True)
class Endpoint:
    address: str  # where it is published: the host's reachable address (etcd); "" when it is not
    host_port: int  # 0: not published (reached over the networks alone)
    port: int  # the container's port
    wan: bool = False
    name: str = ""  # its DNS name on the networks of this host ("" : registered on another host)
    network: str = ""  # the network another instance's consumer joins to reach it
    replicas: tuple = ()  # a replicated service's: each replica's DNS name, in replica order
    host_ports: tuple = ()  # a replicated service's published: each replica's host port, in replica order

    @property
    def bind(self):
        return "0.0.0.0" if self.wan else self.address

    @property
    def reached(self):
        """``(host, port)`` as a container reaches it: over the networks when it runs on
        this host, else at its published address."""
        return (self.name, self.port) if self.name else (self.address, self.host_port)

    @property
    def addresses(self):
        """Every ``(host, port)`` a container reaches it at: each replica's, in replica order
        (over the networks, or at its published port on another host), or its one address."""
        if self.name:
            return [(name, self.port) for name in self.replicas] or [self.reached]
        return [(self.address, port) for port in self.host_ports] or [self.reached]

    def published(self, replica):
        """The host port of one replica (0: the service's one container); 0: not published."""
        return self.host_ports[replica - 1] if self.host_ports else self.host_port

    def to_dict(self):
        """As the state and etcd record it: ``host_port`` is the first replica's, and
        ``host_ports`` (every replica's) is there only for a replicated service published,
        so one container's record is what it always was."""
        ports = {"host_ports": list(self.host_ports)} if self.host_ports else {}
        return {"address": self.address, "host_port": self.host_port, "port": self.port, "wan": self.wan, **ports}


def host_ports(recorded):
    """The host ports of an endpoint as the state or etcd records it (``to_dict``), in
    replica order: none when it is not published."""
    return [port for port in recorded.get("host_ports") or [recorded["host_port"]] if port]


def registered(template):
    """``{"svc:endpoint": (container port, wan)}`` for every endpoint the template registers."""
    return {
        f"{service.name}:{reg['name']}": (int(port), reg["wan"])
        for service in template.services
        for port, reg in service.options.get("register", {}).items()
    }


def resolve(template, instance, facts, etcd=None, named=True):
    """This instance's endpoints (allocated, or kept from its state), those registered
    elsewhere (the host's other instances; with ``etcd``, every host's), and the services'
    dependencies (checked: unknown references, cycles), from an engine's Facts; ``named``:
    whether the engine names each replica (``allocate``)."""
    recorded = {k: host_ports(e) for k, e in (facts.state.endpoints if facts.state else {}).items()}
    local = of_other_instances(facts.others)
    taken = facts.listening | _published(facts.others)
    others, ambiguous = etcd.endpoints(facts.registry, instance, facts.host_id) if etcd else (local, {})
    endpoints = allocate(template, recorded, taken, facts.address, instance, publish=bool(etcd), named=named)
    try:
        deps = dependencies(template, others, ambiguous)
    except TemplateError as e:
        raise e.where(file=template.path)
    return endpoints, others, deps


def allocate(template, recorded, taken, address, instance, publish=False, named=True):
    """Every registered endpoint of ``instance``: its alias and network, and, when it is
    published (``wan``, or ``publish``: etcd), its host ports, one a replica: those
    ``recorded`` (``{"svc:ep": [ports, in replica order]}``) in replica order, then the
    lowest free ones (not listening on the host, not another instance's). A service going
    from one container to replicas, or back, gets new ports: its old container holds its
    own until the new ones serve (plan.py). A replicated service is reached at each
    replica's name where the engine gives each one (``named``: one host); else (a swarm) at
    its service's name, which resolves to all its tasks."""
    endpoints, used = {}, set(taken) | {port for ports in recorded.values() for port in ports}
    free = (port for port in PORTS if port not in used)
    services = {s.name: s for s in template.services}
    for key, (port, wan) in registered(template).items():
        service = key.split(":")[0]
        count = services[service].options.get("replicas", 1)
        kept = recorded.get(key, ())
        if (len(kept) > 1) != (count > 1):  # one container becoming replicas, or back
            kept = ()
        ports = tuple(kept[n] if n < len(kept) else next(free, None) for n in range(count)) if wan or publish else ()
        if None in ports:
            raise TemplateError(f"no free host port left for endpoint {key} ({PORTS.start}-{PORTS.stop - 1})")
        replicas = tuple(network.alias(instance, unit(service, n)) for n in range(1, count + 1)) if count > 1 and named else ()
        endpoints[key] = Endpoint((address or "0.0.0.0") if ports else "", ports[0] if ports else 0, port, wan,
                                  network.alias(instance, service), network.of_service(instance, service), replicas,
                                  ports if count > 1 else ())
    return endpoints


def dependencies(template, others, ambiguous=None):
    """``{service: {services it exposes from this instance}}``, every reference checked:
    an unknown one names the known endpoints, a cycle names its services.

    ``others`` are the endpoints registered elsewhere: other instances' (``inst/svc:ep``)
    and, with etcd, this instance's on other hosts (``svc:ep``); ``ambiguous`` the
    references several hosts registered (``{ref: hosts}``), which name no one endpoint.
    """
    own = registered(template)
    deps = {}
    for service in template.services:
        deps[service.name] = set()
        for ref in service.options.get("expose", {}):
            if ref in (ambiguous or {}):
                hosts = ", ".join(ambiguous[ref])
                raise TemplateError(f"{ref!r} is registered by several hosts ({hosts}): it names no one endpoint",
                                    key=f"{service.key}.expose")
            plain = ENDPOINT_REF.fullmatch(ref)["instance"] is None
            known = {key for key in {*own, *others} if ("/" not in key) == plain}
            if ref not in known:
                names = ", ".join(sorted(known)) or "none"
                raise TemplateError(
                    f"{ref!r} names no registered endpoint (known: {names})", key=f"{service.key}.expose"
                )
            if ref in own:
                deps[service.name].add(ref.split(":")[0])
    _check_cycles(deps)
    return deps


def order(names, deps):
    """The services in an order where each comes after those it exposes (stable)."""
    done, out = set(), []

    def visit(name):
        if name not in done:
            done.add(name)
            for dep in sorted(deps.get(name, ())):
                visit(dep)
            out.append(name)

    for name in names:
        visit(name)
    return out


def ordered(specs, deps):
    """The specs in ``order`` of their services, a service's replicas together, in replica order."""
    by_service = {}
    for spec in specs:
        by_service.setdefault(spec.service, []).append(spec)
    return tuple(spec for name in order(list(by_service), deps) for spec in by_service[name])


def _check_cycles(deps):
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = path[path.index(name):] + [name]
            raise TemplateError(f"services expose each other in a cycle: {' -> '.join(cycle)}")
        state[name] = "open"
        for dep in sorted(deps.get(name, ())):
            visit(dep, path + [name])
        state[name] = "done"

    for name in deps:
        visit(name, [])


def of_other_instances(states):
    """``{"inst/svc:ep": Endpoint}`` of the host's other instances, from their states:
    reached over their services' networks."""
    return {
        f"{state.instance}/{key}": Endpoint(e.get("address", "") if e["host_port"] else "", e["host_port"], e["port"],
                                            e["wan"], network.alias(state.instance, key.split(":")[0]),
                                            network.of_service(state.instance, key.split(":")[0]))
        for state in states
        for key, e in state.endpoints.items()
    }


def _published(states):
    return {port for state in states for e in state.endpoints.values() for port in host_ports(e)}


def listening(proc_net_tcp):
    """The TCP ports listening on the host, from /proc/net/tcp and tcp6."""
    ports = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
