"""Service discovery: endpoints, their allocation, and the order services start in.

``register`` names a service's container ports (endpoints); each is published on a host
port allocated once per (instance, service, endpoint), kept in the instance's state and
reused on every later deploy, so an endpoint's address survives its service being
recreated. The port is bound to the Docker bridge's address (reachable from containers,
not from outside; with etcd, the host's reachable address) unless the endpoint asks for ``wan``. ``expose`` hands another
service's endpoint to a container as an env var holding ``ADDRESS:PORT``: of this
instance (``db:driver``) or of another instance on the same host (``shared/db:driver``).

With the default ``state`` backend the registry is the host's instance states (one host);
etcd.py holds the ``etcd`` backend (across hosts). deployer registers on the container's
behalf: no helper binary runs inside images.
Everything here is pure: the host's facts (the bridge address, ports in use, other
instances' endpoints) come in as data.
"""

import ipaddress
from dataclasses import dataclass

from ..errors import TemplateError
from .schema import ENDPOINT_REF

PORTS = range(30000, 32768)  # where endpoints are published; below Linux's ephemeral range


@dataclass(frozen=True)
class Endpoint:
    address: str  # where containers reach it: the Docker bridge's address
    host_port: int
    port: int  # the container's port
    wan: bool = False

    @property
    def bind(self):
        return "0.0.0.0" if self.wan else self.address

    def to_dict(self):
        return {"address": self.address, "host_port": self.host_port, "port": self.port, "wan": self.wan}


def registered(template):
    """``{"svc:endpoint": (container port, wan)}`` for every endpoint the template registers."""
    return {
        f"{service.name}:{reg['name']}": (int(port), reg["wan"])
        for service in template.services
        for port, reg in service.options.get("register", {}).items()
    }


def resolve(template, instance, facts, etcd=None):
    """This instance's endpoints (allocated, or kept from its state), those registered
    elsewhere (the host's other instances; with ``etcd``, every host's), and the services'
    dependencies (checked: unknown references, cycles), from an engine's Facts."""
    recorded = {k: e["host_port"] for k, e in (facts.state.endpoints if facts.state else {}).items()}
    local = of_other_instances(facts.others, facts.bridge)
    taken = facts.listening | {e.host_port for e in local.values()}
    others, ambiguous = etcd.endpoints(facts.registry, instance, facts.host_id) if etcd else (local, {})
    endpoints = allocate(template, recorded, taken, facts.address or facts.bridge)
    try:
        deps = dependencies(template, others, ambiguous)
    except TemplateError as e:
        raise e.where(file=template.path)
    return endpoints, others, deps


def allocate(template, recorded, taken, address):
    """Every registered endpoint with its host port: the recorded one if it has one, else
    the lowest free port (not listening on the host, not another instance's)."""
    endpoints, used = {}, set(taken) | set(recorded.values())
    free = (port for port in PORTS if port not in used)
    for key, (port, wan) in registered(template).items():
        host_port = recorded.get(key) or next(free, None)
        if host_port is None:
            raise TemplateError(f"no free host port left for endpoint {key} ({PORTS.start}-{PORTS.stop - 1})")
        endpoints[key] = Endpoint(address, host_port, port, wan)
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


def of_other_instances(states, address):
    """``{"inst/svc:ep": Endpoint}`` of the host's other instances, from their states."""
    return {
        f"{state.instance}/{key}": Endpoint(address, e["host_port"], e["port"], e["wan"])
        for state in states
        for key, e in state.endpoints.items()
    }


def bridge_address(subnet_and_gateway):
    """The Docker bridge's own address: its gateway, or (when Docker records none, as for
    the default bridge) the first address of its subnet, which the bridge then holds."""
    subnet, _, gateway = subnet_and_gateway.strip().partition(" ")
    if gateway:
        return gateway
    return str(next(ipaddress.ip_network(subnet, strict=False).hosts())) if subnet else ""


def listening(proc_net_tcp):
    """The TCP ports listening on the host, from /proc/net/tcp and tcp6."""
    ports = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
