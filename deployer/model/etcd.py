"""Service discovery across hosts, the ``etcd`` backend: its keys, requests and answers.

With ``deployer.discovery: etcd``, each host registers its instances' endpoints in an
etcd v3 cluster, under ``<prefix>/<instance>/<host id>/<service>:<endpoint>``, the value
being the endpoint as JSON with the host's reachable address; a replicated service's lists
every replica's host port (``host_ports``, in replica order) in its one key, so a consumer
reads the whole set at once, and a reader that knows only ``host_port`` finds the first.
An ``expose`` that no service of the template registers is looked up there: ``db:web``
(the same instance, registered on another host) or ``shop/db:web`` (another instance, any
host).

The host id is a random id the host keeps in its state directory: one per deployer host,
so that one instance deployed to two hosts keeps two sets of keys, and destroying it on one
host removes only that host's. etcd is reached from the host (through its JSON gateway,
with curl), not from the deploying machine: hosts often see etcd on a private network the
laptop cannot reach. Everything here is pure: the engine (remote/) sends the requests built here.
"""

import base64
import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from .discovery import Endpoint
from ..errors import TemplateError

BACKENDS = ("state", "etcd")


@dataclass(frozen=True)
class Etcd:
    urls: tuple  # tried in order, from the host
    prefix: str

    @classmethod
    def of(cls, urls, prefix):
        """The backend of settings ``deployer.etcd.endpoints`` and ``.prefix``, checked."""
        if not urls:
            raise TemplateError("setting deployer.etcd.endpoints: the etcd backend needs at least one URL "
                                "(e.g. http://10.0.0.5:2379), as the hosts reach it")
        for url in urls:
            parts = urlsplit(str(url))
            if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
                raise TemplateError(f"setting deployer.etcd.endpoints: expected http(s)://HOST:PORT, got {url!r}")
        return cls(tuple(urls), str(prefix or "/deployer").rstrip("/"))

    @property
    def route_target(self):
        """The address whose route tells a host its reachable address: etcd's own, unless
        it is a name or on loopback (then the default route's)."""
        host = urlsplit(self.urls[0]).hostname
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return "1.1.1.1"
        return "1.1.1.1" if address.is_loopback or address.version != 4 else host

    def own(self, instance, host_id):
        """The key prefix of one instance's registrations by one host."""
        return f"{self.prefix}/{instance}/{host_id}/"

    def range_request(self):
        """Every registration under the prefix (one request, however many hosts)."""
        start = self.prefix + "/"
        return _request(key=start, range_end=_successor(start))

    def delete_request(self, instance, host_id):
        own = self.own(instance, host_id)
        return _request(key=own, range_end=_successor(own))

    def registrations(self, endpoints, instance, host_id, hostname):
        """``{key: value}`` registering an instance's endpoints (``{"svc:ep": Endpoint.to_dict()}``)."""
        return {
            self.own(instance, host_id) + ref: json.dumps({**endpoint, "host": hostname}, sort_keys=True)
            for ref, endpoint in endpoints.items()
        }

    def endpoints(self, registry, instance, host_id):
        """What expose may name from the registry: ``inst/svc:ep`` for every instance, and
        ``svc:ep`` for this instance's endpoints registered by other hosts; and the
        references registered by several hosts (ambiguous: ``{ref: hosts}``)."""
        found, hosts = {}, {}
        for key, value in registry.items():
            name, registrant, ref = key[len(self.prefix) + 1:].split("/", 2)
            refs = [f"{name}/{ref}"] + ([ref] if name == instance and registrant != host_id else [])
            for r in refs:
                found[r] = Endpoint(value["address"], value["host_port"], value["port"], value.get("wan", False),
                                    host_ports=tuple(value.get("host_ports", ())))
                hosts.setdefault(r, []).append(value.get("host", registrant))
        ambiguous = {r: sorted(h) for r, h in hosts.items() if len(h) > 1}
        return {r: e for r, e in found.items() if r not in ambiguous}, ambiguous

    def update(self, endpoints, instance, facts, hostname):
        """The transaction registering the instance's endpoints as this host's, from an
        engine's Facts (None: etcd holds them already)."""
        wanted = self.registrations(endpoints, instance, facts.host_id, hostname)
        return self.changes(wanted, facts.registry, instance, facts.host_id)

    def changes(self, registrations, registry, instance, host_id):
        """The transaction bringing this host's keys for the instance to ``registrations``
        (None when etcd holds them already)."""
        own = self.own(instance, host_id)
        current = {k: json.dumps(v, sort_keys=True) for k, v in registry.items() if k.startswith(own)}
        puts = {k: v for k, v in registrations.items() if current.get(k) != v}
        deletes = sorted(k for k in current if k not in registrations)
        if not puts and not deletes:
            return None
        return json.dumps({"success": [{"requestPut": {"key": _b64(k), "value": _b64(v)}} for k, v in puts.items()]
                           + [{"requestDeleteRange": {"key": _b64(k)}} for k in deletes]})


def read_registry(text, prefix):
    """``{key: endpoint dict}`` from an etcd range answer; keys outside the layout are skipped.
    Raises ValueError naming what is wrong (the host layer says which host asked)."""
    try:
        kvs = json.loads(text).get("kvs", [])
        entries = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode() for kv in kvs}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"cannot read etcd's answer: {e}") from None
    registry = {}
    for key, value in entries.items():
        if key[len(prefix) + 1:].count("/") != 2:
            continue
        try:
            endpoint = json.loads(value)
        except ValueError:
            endpoint = None
        if not _is_endpoint(endpoint):
            raise ValueError(f"etcd key {key} does not hold an endpoint: {value[:80]!r}")
        registry[key] = endpoint
    return registry


def _is_endpoint(value):
    """Whether a key's value is an endpoint: its fields there, a replicated one's host ports a
    list of numbers (what a consumer puts in its env)."""
    if not isinstance(value, dict) or not {"address", "host_port", "port"} <= value.keys():
        return False
    ports = value.get("host_ports", [])
    return isinstance(ports, list) and all(isinstance(port, int) for port in ports)


def _request(**keys):
    return json.dumps({name: _b64(value) for name, value in keys.items()})


def _successor(prefix):
    """The end of the key range that holds exactly the keys starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _b64(text):
    return base64.b64encode(text.encode()).decode()
