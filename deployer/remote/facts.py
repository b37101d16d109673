"""Facts: what one round trip learns about an instance before a deploy or a status.

Each fact is the script lines that report it next to the parser that reads them back
(``InstanceFacts.script`` / ``InstanceFacts.read``), joined by the section names the
script marks (``sh/facts.sh``, ``sh/discovery.sh``).
"""

import json
from dataclasses import dataclass

from ..engine import Facts, Roots
from ..errors import DeployerError
from ..model import route
from ..model.discovery import listening
from ..model.etcd import read_registry
from ..model.state import Container, InstanceState, image_ids
from .scripts import assign, call

USES = ("facts", "discovery", "router")  # the sources the facts' script needs


@dataclass(frozen=True)
class InstanceFacts:
    """The facts of one instance: its state and containers, the ids of the given image
    references and of the given networks (which of them exist: in the same docker
    inspect, no extra command), and with ``discovery`` what allocating endpoints needs
    (with ``etcd``, the registry across hosts). Run in a script that set I and D
    (scripts.instance)."""

    instance: str
    images: tuple = ()
    discovery: bool = False
    etcd: object = None  # model.etcd.Etcd, or None: the state backend
    networks: tuple = ()
    routes: bool = False  # also the host's route table (a deploy reads it under the router's lock instead)

    def script(self):
        lines = [call("dpl_facts", *self.images, *self.networks) + " || exit 1"]
        if self.routes:
            lines.append("dpl_router_table || exit 1")
        if self.discovery:
            lines.append("dpl_discovery_facts || exit 1")
            if self.etcd:
                lines.append(assign(E=" ".join(self.etcd.urls)))
                lines.append(call("dpl_etcd_facts", self.etcd.route_target, self.etcd.range_request()) + " || exit 1")
        return "\n".join(lines) + "\n"

    def read(self, out, host):
        """Facts from the script's sections (``out``) on host ``host``."""
        roots = Roots(*out["roots"].splitlines())
        path = f"{host}:{roots.state_dir}/instances/{self.instance}/state.json"
        state = InstanceState.from_json(out["state"], path) if "state" in out else None  # blank: corrupt
        try:
            objects = json.loads(out["docker"] or "[]")
            containers = tuple(Container.from_inspect(o) for o in objects if "State" in o)
            ids = image_ids([o for o in objects if "RepoTags" in o], self.images)
            networks = frozenset(o["Name"] for o in objects if "IPAM" in o and o.get("Name") in self.networks)
        except (ValueError, KeyError, TypeError) as e:
            raise DeployerError(f"cannot read docker inspect output: {e}", host=host) from None
        others = tuple(
            InstanceState.from_json(text, f"{host}:{key[6:]}") for key, text in out.items() if key.startswith("other ")
        )
        registry = {}
        if "registry" in out:
            try:
                registry = read_registry(out["registry"], self.etcd.prefix)
            except ValueError as e:
                raise DeployerError(str(e), host=host) from None
        table = route.read(out.get("routes", ""), f"{host}:{roots.state_dir}/router/routes.json")
        return Facts(roots, state, containers, ids, others, frozenset(listening(out.get("listening", ""))),
                     out.get("host-id", "").strip(), out.get("address", "").strip(), registry, networks, table)
