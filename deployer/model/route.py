"""Routes: which domain the host's router sends to which instance's service, and the
router's whole configuration, rendered from that table. Pure: the host keeps the table
(``routes.json`` in its state directory) and the config rendered from it
(``caddy.json``), and runs the router (remote/sh/router.sh).

A route's **upstream** is the address the router dials, on the instance's network (the
router joins it): never a host port. A service replaced start-first is dialled by an
alias of its container alone (``r<release>.<service>.<instance>``), so the route moves to
the new container only once deployer has checked it (Caddy 2.6 would count it healthy
before any check), and requests begun on the old one finish there (the drain). A service
replaced stop-first (a volume, a fixed host port) is dialled by its service alias: the new
container takes over that name, and requests wait for it (``try_duration``). The router
starts on a network of its own: only a container created on a user-defined network asks
Docker's embedded DNS, which knows those aliases (on the default bridge it would ask the
host's resolver).
"""

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass

from ..errors import DeployerError, TemplateError
from . import network
from .plan import CREATE, KEEP, REPAIR, split
from .spec import container_name

FORMAT = 2  # 2: a route dials a list of upstreams (replicas); 1 (read too) one
CONTAINER = "deployer-router"  # the router's container on every host, and its own network (module docstring)
LABEL = "deployer.router"  # its label: the hash of how it runs (another one is recreated)
CONFIG = "/deployer/caddy.json"  # where the router reads the config rendered from the table
NOT_FOUND = "no site is served at this address\n"  # an unknown domain's answer: it names nothing
# Caddy (2.6 on Linux) opens a new listening socket on every reload (SO_REUSEPORT) and
# closes the old one: the kernel resets connections queued on the old one, not yet
# accepted (6 to 13 requests in 100 reloads under two steady clients, seen here), unless
# it may move them to the new socket (Linux 5.14+; the host leaves it out on older kernels)
SYSCTLS = ("net.ipv4.tcp_migrate_req=1",)


@dataclass(frozen=True)
class Router:
    """How the host's router runs: its settings (deployer.router.*) and how long a request
    waits for an upstream."""

    image: str
    http_port: int
    https_port: int
    tls: str  # acme, internal or off
    email: str
    drain: float
    wait: int  # seconds a request waits for an upstream (deployer.health_timeout)

    def run_args(self):
        """``docker run`` arguments of the router, after the sysctls it asks for
        (``--dpl-sysctl NAME=VALUE``: the host gives those its kernel has), but the mount of
        the host's router directory at /deployer (the host adds it: only the host knows
        where it is)."""
        sysctls = [a for s in SYSCTLS for a in ("--dpl-sysctl", s)]
        return [*sysctls, "-d", "--name", CONTAINER, "--label", f"{LABEL}={self.digest}", *self._args]

    @property
    def digest(self):
        """How the router runs, in short: a router labelled otherwise is replaced."""
        return hashlib.sha256(json.dumps([*SYSCTLS, *self._args]).encode()).hexdigest()[:16]

    @property
    def _args(self):
        ports = [self.http_port] + ([self.https_port] if self.tls != "off" else [])
        return ["--restart", "unless-stopped", "--network", CONTAINER, *(a for p in ports for a in ("-p", f"{p}:{p}")),
                "-e", "XDG_DATA_HOME=/deployer/data", "-e", "XDG_CONFIG_HOME=/deployer/config",
                self.image, "caddy", "run", "--config", CONFIG]


@dataclass(frozen=True, order=True)
class Route:
    """One domain of the table."""

    domain: str
    instance: str
    service: str
    port: str
    health: str  # "" : a TCP connect
    upstreams: tuple[str, ...]  # ``alias:port`` on the instance's network: one a replica, in replica order

    @property
    def containers(self):
        """The containers its upstreams dial, by name."""
        return tuple(container_name(self.instance, unit_of(d, self.instance, self.service)) for d in self.upstreams)


def upstream(instance, unit, port, release, start_first):
    """The address the router dials to reach a container of the service, or of one of its
    replicas (``unit``: ``web.2``), as the module docstring says."""
    return f"{f'r{release}.' if start_first else ''}{network.alias(instance, unit)}:{port}"


def unit_of(dial, instance, service):
    """The unit (``service``, or a replica of it: ``web.2``) an upstream dials:
    ``r7.web.2.shop:80`` -> ``web.2``. The service is given, because the dial alone is
    ambiguous: ``r2.web.shop`` is service ``web`` of release 2 started first, or service
    ``r2.web`` stopped first; ``r2.3.shop`` is replica 3 of a service ``r2``. Read as the
    unit itself first, else as ``r<release>.`` and a unit: a service name never ends in
    ``.N`` (schema.service_name), so no name reads both ways."""
    host = dial.rpartition(":")[0].removesuffix(f".{instance}")
    return host if split(host)[0] == service else host.partition(".")[2]


def aliases(spec, release):
    """The aliases a routed container carries for its upstream besides its own (a replica's:
    spec.run_args): its release's, when it is replaced start-first (module docstring)."""
    return [f"r{release}.{network.alias(spec.instance, spec.unit)}"] if spec.start_first else []


def rows(instance, service, given, dials):
    """The table's rows of one service's route (``given``: the template's route), dialling
    ``dials`` (none: no rows, the domains answer 404 until a container serves them)."""
    return tuple(Route(d, instance, service, given["port"], given.get("health", ""), tuple(dials))
                 for d in given["domains"] if dials)


def wanted(template):
    """The template's routes by service; a domain two services give is an error naming both."""
    out, seen = {}, {}
    for service in template.services:
        given = service.options.get("route")
        for domain in given["domains"] if given else ():
            if domain in seen:
                raise TemplateError(f"domain {domain} is also {seen[domain]}'s: a domain is served by one service",
                                    file=template.path, key=f"{service.key}.route.domains")
            seen[domain] = service.name
        if given:
            out[service.name] = given
    return out


def given(table, instance):
    """An instance's routes by service, as the template gives them, from the table's rows."""
    out = {}
    for r in sorted(table):
        if r.instance == instance:
            out.setdefault(r.service, {"domains": [], "port": r.port, **({"health": r.health} if r.health else {})})
            out[r.service]["domains"].append(r.domain)
    return out


def read(text, path):
    """The table in routes.json (none: empty); a corrupt one is an error naming the file."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
        if data.get("format", FORMAT) > FORMAT:
            raise DeployerError(f"written by a newer deployer (format {data['format']}): upgrade deployer; "
                                "nothing was changed", file=path)
        return tuple(sorted(_route(**r) for r in data["routes"]))
    except DeployerError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DeployerError(f"corrupt route table ({type(e).__name__}: {e}); nothing was changed", file=path) from None


def _route(upstream=None, upstreams=(), **fields):
    """A row as routes.json holds it (one written before replicas has one ``upstream``)."""
    return Route(**fields, upstreams=tuple(upstreams) or (upstream,))


def dump(table):
    """routes.json: a route a line, so that a person (or grep) reads it."""
    lines = ",\n".join(f"  {json.dumps(asdict(r), sort_keys=True)}" for r in sorted(table))
    return f'{{"format": {FORMAT}, "routes": [\n{lines}\n]}}\n'


def check(table, instance, wanted):
    """Refuse a domain another instance holds, naming it (before anything changes)."""
    held = {r.domain: r for r in table if r.instance != instance}
    for service, given in sorted(wanted.items()):
        for domain in given["domains"]:
            if domain in held:
                raise DeployerError(f"{service}: domain {domain} is served by instance {held[domain].instance!r} "
                                    f"(its service {held[domain].service}): destroy it, or remove the route there "
                                    "first", instance=instance)


def replaced(table, instance, service, new=()):
    """The table with one service's rows replaced by ``new`` (none: removed)."""
    return tuple(sorted([r for r in table if (r.instance, r.service) != (instance, service)] + list(new)))


def without(table, instance):
    """The table without an instance's routes (destroy)."""
    return tuple(r for r in table if r.instance != instance)


def networks(*tables):
    """The networks the router joins to reach the tables' upstreams."""
    return tuple(sorted({network.of_instance(r.instance) for table in tables for r in table}))


def config(table, router):
    """Caddy's whole JSON config for the table: HTTPS for every domain (HTTP redirects to
    it), or with ``tls: off`` plain HTTP; a domain not in the table gets 404 on HTTP (on
    HTTPS it has no certificate: no answer at all). The admin API listens on the router's
    own loopback only."""
    proxy = [_proxy(group, router) for group in _groups(table)]
    missing = {"handle": [{"handler": "static_response", "status_code": 404, "body": NOT_FOUND}]}
    http = {"listen": [f":{router.http_port}"]}
    apps = {}
    if router.tls == "off":
        servers = {"http": {**http, "routes": [*proxy, missing], "automatic_https": {"disable": True}}}
    else:
        port = "" if router.https_port == 443 else f":{router.https_port}"
        hosts = [r.domain for r in _ordered(table)]
        to_https = {"handler": "static_response", "status_code": 308,
                    "headers": {"Location": [f"https://{{http.request.host}}{port}{{http.request.uri}}"]}}
        redirect = [{"match": [{"host": hosts}], "handle": [to_https]}] if hosts else []
        servers = {"https": {"listen": [f":{router.https_port}"], "routes": proxy, "protocols": ["h1", "h2"],
                             "automatic_https": {"disable_redirects": True}},  # no HTTP/3: the router publishes TCP
                   "http": {**http, "routes": [*redirect, missing]}}
        issuer = {"module": "internal"} if router.tls == "internal" else {
            "module": "acme", **({"email": router.email} if router.email else {})}
        apps["tls"] = {"automation": {"policies": [{"issuers": [issuer]}]}}
        apps["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    apps["http"] = {"http_port": router.http_port, "https_port": router.https_port,
                    "grace_period": f"{router.drain:g}s", "servers": servers}
    return {"admin": {"listen": "localhost:2019"}, "apps": apps}


def rendered(table, router):
    return json.dumps(config(table, router), sort_keys=True, separators=(",", ":")) + "\n"


def _ordered(table):
    """Exact names before wildcards: Caddy tries routes in order, and ``a.x`` must win
    over ``*.x``."""
    return sorted(table, key=lambda r: (r.domain.startswith("*."), r.domain))


def _groups(table):
    """The table's domains grouped by upstreams (exact names and wildcards apart), in
    ``_ordered`` order."""
    groups = {}
    for r in _ordered(table):
        groups.setdefault((r.domain.startswith("*."), r.upstreams), []).append(r.domain)
    return groups.items()


def _proxy(group, router):
    """Several upstreams (replicas) take requests in turn; a request to one that fails to
    connect tries the others for up to ``try_duration``."""
    (_, dials), domains = group
    balancing = {"try_duration": f"{router.wait}s", "try_interval": "250ms"}
    if len(dials) > 1:
        balancing["selection_policy"] = {"policy": "round_robin"}
    proxy = {"handler": "reverse_proxy", "upstreams": [{"dial": dial} for dial in dials], "load_balancing": balancing}
    return {"match": [{"host": domains}], "handle": [proxy], "terminal": True}


@dataclass(frozen=True)
class Moves:
    """What a deploy does to the host's table: ``before`` it; ``early``, without the routes
    of the units that go before the steps (written before any step, so their domains answer
    404 at once, or go to the other units of their service); after each routed
    service's new container passed its check, the table it moves to (``at``: not for a new
    service, whose route appears with the rest at the end); ``final``, once every step is
    done (which also holds a kept service's new domains)."""

    instance: str
    before: tuple
    early: tuple
    at: dict
    final: tuple

    def __bool__(self):
        """Whether the instance has routes, before or after (else there is nothing to do)."""
        return any(r.instance == self.instance for r in self.before + self.final)

    @property
    def changed(self):
        return self.final != self.before

    def held(self, done, complete):
        """The table the host holds after a deploy that stopped once the steps of the
        services ``done`` were (a step that failed after its route moved moved it back),
        or, ``complete``, after every step (the final table is written then)."""
        if complete:
            return self.final
        return next((self.at[s] for s in reversed(list(self.at)) if s in done), self.early)

    def said(self):
        """The route changes in the plan's words: ``+a.example (web)``, ``-b.example``,
        ``a.example moved (web)``."""
        old = {r.domain: r for r in self.before}
        new = {r.domain: r for r in self.final}
        changed = [d for d in sorted(old.keys() | new.keys()) if old.get(d) != new.get(d)]
        return [f"+{d} ({new[d].service})" if d not in old else f"-{d}" if d not in new
                else f"{d} moved ({new[d].service})" for d in changed]


def moves(table, instance, wanted, actions, containers, release):
    """The Moves of a deploy of ``instance``: ``wanted`` its routes by service, ``actions``
    its plan (a step a unit: a service, or one replica), ``containers`` what the host runs
    of it, ``release`` the new containers'. A replica removed (scaled down) leaves its
    route before any step, unless it is all its service has (its one container becoming
    replicas, or the reverse): then it leaves at the end, when the new ones join, as one
    created does. A service dropped from the template keeps its route to the end too (a
    service the template renamed takes its domain without a gap), unless it is removed
    before the steps (plan.py: it publishes a host port)."""
    check(table, instance, wanted)
    removed = {a.service for a in actions if a.spec is None}
    staying = {split(a.service)[0] for a in actions if a.spec is None and a.late} - set(wanted)
    live = {}  # service -> unit -> dial: what the route dials now, as the steps go
    for r in table:
        if r.instance == instance and (r.service in wanted or r.service in staying):
            dials = {unit_of(d, instance, r.service): d for d in r.upstreams}
            live[r.service] = {u: d for u, d in dials.items() if u not in removed or r.service in staying} or dials
    early = tuple(r if r.instance != instance else dataclasses.replace(r, upstreams=tuple(live[r.service].values()))
                  for r in table if r.instance != instance or live.get(r.service))
    current, at, created = early, {}, {}
    releases = {c.name: c.release for c in containers}
    for a in actions:
        if a.spec is None or a.spec.service not in wanted:
            continue
        service = a.spec.service
        number = releases.get(a.reuse or (a.spec.name if a.kind in (KEEP, REPAIR) else ""), release)
        dial = upstream(instance, a.service, wanted[service]["port"], number, a.spec.start_first)
        (created if a.kind == CREATE else live).setdefault(service, {})[a.service] = dial
        if a.kind not in (KEEP, REPAIR, CREATE):
            current = replaced(current, instance, service, _rows(instance, service, wanted, live))
            at[a.service] = current
    for service in wanted:  # in the specs' (replica) order
        dials = {**live.get(service, {}), **created.get(service, {})}
        order = [a.service for a in actions if a.spec is not None and a.service in dials]
        live[service] = {unit: dials[unit] for unit in order}
        current = replaced(current, instance, service, _rows(instance, service, wanted, live))
    for service in staying:
        current = replaced(current, instance, service)
    return Moves(instance, table, early, at, current)


def _rows(instance, service, wanted, live):
    """The rows of a service's route dialling its ``live`` upstreams (none if it has no
    route any more)."""
    given = wanted.get(service)
    return rows(instance, service, given, live.get(service, {}).values()) if given else ()
