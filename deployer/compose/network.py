"""Ports, and how services reach each other: compose's network -> deployer's endpoints.

Compose puts a project's containers on one network where each service's name (and its
links' aliases, network aliases and container_name) resolves. deployer's containers share
no such network: a service ``register``s a container port as an endpoint, and another
``expose``s it as an env var holding its address. So, in each service's env:

- a value that is exactly ``host:port`` with ``host`` a service (``db:5432``) becomes
  ``expose: {"db:5432": NAME}`` on this service and ``register: {5432: "5432"}`` on db;
- a URL whose host is a service (``redis://redis:6379/0``, ``postgres://u:p@db/app``: the
  scheme's usual port when none is given) becomes an expose with a format that keeps the
  rest of the URL (``redis://{host}:{port}/0``);
- anything else naming a service (``DB_HOST: db``, ``--broker redis:6379`` in a command) is
  left as it is and listed, since nothing would resolve it.

``depends_on`` and ``links`` order the start: deployer starts a service after the
endpoints it exposes, so a dependency the env does not already expose is exposed as
``<SERVICE>_ADDR`` where a port of it is known (its ``expose`` or ``ports``); with no port
known, the order is dropped with why. An expose that would make two services expose
each other (a cycle deployer refuses) is left out and listed instead.
"""

import re

from voluptuous import Invalid

from ..model import schema
from . import unsupported
from .interpolate import has_variables
from .service import why_invalid

HOST_PORT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*):([0-9]{1,5})")
URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(?:([^@/?#\s]*)@)?([A-Za-z0-9][A-Za-z0-9._-]*)(?::([0-9]{1,5}))?"
                 r"([/?#][^\s]*)?")
SCHEME_PORTS = {
    "http": 80, "https": 443, "ws": 80, "wss": 443, "redis": 6379, "rediss": 6379, "postgres": 5432,
    "postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mongodb": 27017, "amqp": 5672, "amqps": 5671,
    "nats": 4222, "memcached": 11211, "mqtt": 1883, "ldap": 389, "ftp": 21, "smtp": 25,
}
PORT = re.compile(r"(?:(?P<ip>\[[0-9A-Fa-f:.]+\]|[0-9]+(?:\.[0-9]+){3}):)?(?:(?P<host>[0-9]*(?:-[0-9]+)?):)?"
                  r"(?P<container>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp|sctp))?")
MAX_RANGE = 1000
# env var names whose whole value is a host name: a word of the name says so
HOSTISH = re.compile(r"(?:^|[_.-])(?:HOSTS?|HOSTNAME|ADDR|ADDRESS|SERVERS?|URL|URI|ENDPOINTS?|BROKERS?|PEERS?|"
                     r"UPSTREAM|BACKEND|DSN)(?:[_.-]|$)", re.I)


def connect(ctx, compose_services):
    """Ports, then endpoints from env values, then start order from depends_on/links."""
    exposed_ports = {}
    for name, data in compose_services.items():
        target = ctx.targets[name]
        ports(ctx, target, data.get("ports") or [])
        exposed_ports[name] = expose(ctx, target, data.get("expose"))
    for name, data in compose_services.items():
        if data.get("networks"):
            ctx.drop(ctx.targets[name], "networks", unsupported.NETWORKS)
    hosts = host_names(compose_services)
    links = Links(ctx)
    for name, data in compose_services.items():
        own = {**hosts, **link_aliases(data.get("links"), compose_services)}
        links.from_env(ctx.targets[name], own)
        links.from_commands(ctx.targets[name], own)
    for name, data in compose_services.items():
        links.start_order(ctx.targets[name], data)
    for name, ports_ in exposed_ports.items():
        target = ctx.targets[name]
        unused = [p for p in ports_ if str(p) not in target.keys.get("register", {})]
        if unused:
            ctx.note(target, "expose", f"{', '.join(map(str, unused))}: no service of the file reaches it; another "
                                       f"template would, once registered (register: {{{unused[0]}: NAME}})")


# --- ports ---------------------------------------------------------------------------


def ports(ctx, target, value):
    """compose's ``ports`` as docker run's ``-p`` forms; their TCP container ports are
    those other services may reach."""
    out = []
    for at, item in enumerate(value):
        if isinstance(item, dict):
            for extra in item.keys() - {"target", "published", "host_ip", "protocol"}:
                ctx.drop(target, f"ports[{at}].{extra}", "deployer publishes plain ports "
                                                         "(target, published, host_ip, protocol)")
        try:
            published = _published(item)
        except Invalid as e:
            ctx.drop(target, f"ports[{at}]", why_invalid(item, e))
            continue
        for port in published:
            match = None if has_variables(port) else PORT.fullmatch(port)
            if match and (match["proto"] or "tcp") == "tcp":
                target.ports.append(int(match["container"]))
        out += published
    if out:
        target.keys["ports"] = out


def _published(item):
    """The ``-p`` strings of one compose port (short or long syntax), ranges expanded."""
    if isinstance(item, dict):
        item = _short(item)
    if isinstance(item, int) and not isinstance(item, bool):
        item = str(item)
    if not isinstance(item, str):
        raise Invalid("expected a port such as 8080 or '80:8080'")
    if has_variables(item):
        return [item]
    match = PORT.fullmatch(item)
    if not match:
        return [schema.port(item)]
    return [schema.port(p) for p in _expanded(match)]


def _short(item):
    """The long syntax's port in the short one: ``[IP:][PUBLISHED:]TARGET[/PROTOCOL]``."""
    ip, published, proto = item.get("host_ip"), item.get("published"), item.get("protocol")
    prefix = (f"[{ip}]:" if ":" in str(ip) else f"{ip}:") if ip else ""
    host = f"{published}:" if published not in (None, "") else (":" if prefix else "")
    return f"{prefix}{host}{item.get('target')}" + (f"/{proto}" if proto else "")


def _expanded(match):
    ip = f"{match['ip']}:" if match["ip"] else ""
    proto = f"/{match['proto']}" if match["proto"] else ""
    containers, hosts = _range(match["container"]), _range(match["host"]) if match["host"] else None
    if hosts is not None and len(hosts) != len(containers):
        raise Invalid("a host port range for another number of container ports: deployer publishes fixed ports")
    if hosts is None:
        prefix = f"{ip}:" if ip else ""
        return [f"{prefix}{c}{proto}" for c in containers]
    return [f"{ip}{h}:{c}{proto}" for h, c in zip(hosts, containers)]


def _range(text):
    first, _, last = text.partition("-")
    numbers = list(range(int(first), int(last or first) + 1))
    if not numbers or len(numbers) > MAX_RANGE:
        raise Invalid(f"the range {text} is empty or longer than {MAX_RANGE} ports")
    return numbers


def expose(ctx, target, value):
    """compose's ``expose`` (ports for other services): the container ports they may reach."""
    found = []
    for at, item in enumerate(value or []):
        text = str(item)
        match = re.fullmatch(r"([0-9]+(?:-[0-9]+)?)(?:/(tcp|udp|sctp))?", text)
        if not match:
            ctx.drop(target, f"expose[{at}]", f"{text!r}: expected a port such as 5432 or 3000-3005/tcp")
            continue
        if (match[2] or "tcp") == "tcp":
            try:
                found += [p for p in _range(match[1]) if p not in found]
            except Invalid as e:
                ctx.drop(target, f"expose[{at}]", e.msg)
    target.ports[:0] = [p for p in found if p not in target.ports]
    return found


# --- host names ----------------------------------------------------------------------


def host_names(compose_services):
    """Every name compose resolves to a service on its network: lower case -> service."""
    names = {}
    for name, data in compose_services.items():
        names.setdefault(name.lower(), name)
        if isinstance(data.get("container_name"), str):
            names.setdefault(data["container_name"].lower(), name)
        networks = data.get("networks")
        for network in (networks.values() if isinstance(networks, dict) else []):
            for alias in (network or {}).get("aliases") or []:
                names.setdefault(str(alias).lower(), name)
    return names


def link_aliases(links, compose_services):
    """``links: [db:database]``: the names a service reaches others by, for it alone."""
    out = {}
    for link in links or []:
        service, _, alias = str(link).partition(":")
        if service in compose_services:
            out[(alias or service).lower()] = service
    return out


class Links:
    """Turns what compose resolved by name into endpoints, keeping the graph of who
    exposes whom free of cycles."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.deps = {}  # compose name -> compose names it exposes

    def from_env(self, target, hosts):
        """Each env value that is an address of a service becomes an expose of it."""
        for name, value in list(target.env.items()):
            if not isinstance(value, str):
                continue
            found = _reference(value, hosts)
            if found is None:
                self._listed(target, f"environment.{name}", value, hosts, bare=HOSTISH.search(name) is not None)
                continue
            service, port, form = found
            if has_variables(value):
                self.ctx.drop(target, f"environment.{name}", f"names {service}:{port}, but holds a compose "
                                                             "variable, which an expose format cannot")
            elif self.expose(target, service, port, {"env": name, "format": form} if form else name,
                             f"environment.{name}"):
                del target.env[name]
                target.comment("expose", f"{name} was {value} in compose")
        if not target.env:
            target.keys.pop("env", None)

    def from_commands(self, target, hosts):
        for key in ("cmd", "entrypoint"):
            words = target.keys.get(key)
            for word in [words] if isinstance(words, str) else words or []:
                self._listed(target, "command" if key == "cmd" else key, word, hosts)

    def _listed(self, target, key, value, hosts, bare=False):
        """A value that names a service as a host, left as it is: said, since nothing
        resolves it. A host is a name before ``:port``, after ``//`` or ``@``, or (with
        ``bare``: an env var whose name says host, address, URL...) the whole value."""
        for host, service in hosts.items():
            name = re.escape(host)
            mentioned = re.search(rf"(?:(?<=//)|(?<=@)|(?<![A-Za-z0-9_.@/-])){name}(?=:[0-9])"
                                  rf"|(?<=//){name}(?![A-Za-z0-9_.-])|(?<=@){name}(?![A-Za-z0-9_.-])", value, re.I)
            if mentioned or (bare and re.fullmatch(rf"\s*{name}\s*", value, re.I)):
                self.ctx.drop(target, key, f"names the service {service} as a host, which deployer's containers "
                                           "cannot resolve (no compose network); as host:port or a URL with its "
                                           "port it would have become an endpoint (register/expose)")
                return

    def start_order(self, target, data):
        """depends_on and links: each dependency started first, where a port of it is known."""
        depends = data.get("depends_on") or {}
        depends = {d: {} for d in depends} if isinstance(depends, list) else dict(depends)
        for link in data.get("links") or []:
            depends.setdefault(str(link).partition(":")[0], {})
        for service, condition in depends.items():
            self._depends(target, service, condition or {})

    def _depends(self, target, service, condition):
        key = f"depends_on.{service}"
        if service not in self.ctx.targets:
            self.ctx.drop(target, key, "names no service of this file")
            return
        if service in self.deps.get(target.compose, ()):
            ordered = True
        else:
            ordered = self._expose_some_port(target, service, key)
        kind = condition.get("condition", "service_started")
        if ordered and kind == "service_healthy":
            self.ctx.drop(target, f"{key}.condition", f"deployer starts {service} first, but does not wait for it "
                                                      "to be healthy: the service must retry until it answers")
        elif kind == "service_completed_successfully":
            self.ctx.drop(target, f"{key}.condition", "deployer has no one-shot services: 'deployer run' runs "
                                                      "a one-off command")
        for extra in condition.keys() - {"condition", "required"}:
            self.ctx.drop(target, f"{key}.{extra}", "deployer recreates a service whose endpoint moved, "
                                                    "not on a restart")

    def _expose_some_port(self, target, service, key):
        other = self.ctx.targets[service]
        known = [int(p) for p in other.keys.get("register", {})] + other.ports
        if not known:
            self.ctx.drop(target, key, f"no port of {service} is known (no expose or ports in compose), so deployer "
                                       "cannot start it first: it orders services by the endpoints they expose")
            return False
        env = re.sub(r"[^A-Za-z0-9_]", "_", other.name).upper() + "_ADDR"
        if self.expose(target, service, known[0], env, key):
            target.comment("expose", f"{env}: compose's depends_on {service} (deployer starts {service} first)")
            return True
        return False

    def expose(self, target, service, port, exposure, key):
        """Register ``port`` on ``service`` and expose it to ``target``; False (said why)
        if that would make a cycle, or the endpoint already gives this service a variable."""
        other = self.ctx.targets[service]
        ref = f"{other.name}:{port}"
        if service == target.compose or self._reaches(service, target.compose):
            self.ctx.drop(target, key, f"{ref} would make {target.compose} and {service} expose each other, a "
                                       "cycle deployer cannot start")
            return False
        exposures = target.keys.setdefault("expose", {})
        if ref in exposures:
            self.ctx.drop(target, key, f"the endpoint {ref} already gives this service "
                                       f"{_env_of(exposures[ref])}: deployer exposes an endpoint as one variable")
            return False
        if isinstance(exposure, dict) and "." in target.name:
            self.ctx.drop(target, key, f"a URL needs an expose format, which deployer fills in as variables "
                                       f"in a service named with a '.' ({target.name})")
            return False
        exposures[ref] = exposure
        other.keys.setdefault("register", {})[str(port)] = str(port)
        other.comment("register", f"{port}: reached by {target.name}")
        self.deps.setdefault(target.compose, set()).add(service)
        return True

    def _reaches(self, start, goal):
        seen, todo = set(), [start]
        while todo:
            at = todo.pop()
            if at == goal:
                return True
            if at not in seen:
                seen.add(at)
                todo += self.deps.get(at, ())
        return False


def _env_of(exposure):
    return exposure["env"] if isinstance(exposure, dict) else exposure


def _reference(value, hosts):
    """(service, port, expose format or None) when ``value`` is exactly host:port or a URL
    whose host is a service; else None."""
    match = HOST_PORT.fullmatch(value)
    if match and match[1].lower() in hosts and 0 < int(match[2]) < 65536:
        return hosts[match[1].lower()], int(match[2]), None
    match = URL.fullmatch(value)
    if not match or match[3].lower() not in hosts:
        return None
    port = int(match[4]) if match[4] else SCHEME_PORTS.get(match[1].lower())
    if not port or not 0 < port < 65536:
        return None
    user = f"{_braces(match[2])}@" if match[2] is not None else ""
    form = f"{_braces(match[1])}://{user}{{host}}:{{port}}{_braces(match[5] or '')}"
    return hosts[match[3].lower()], port, Format(form)


class Format(str):
    """An expose format: written as it is (deployer does not fill variables in it)."""


def _braces(text):
    return text.replace("{", "{{").replace("}", "}}")
