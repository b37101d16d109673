"""The facts of an instance on a swarm: the script lines that report them (``sh/swarm.sh``,
``dpl_swarm_facts``) next to the parser that reads them back.

Each of the instance's services is told to the core as one Container, named as the spec
names its container (``<instance>.<service>``), so the plan compares specs with services
as it compares them with containers on one host: same config hash and running, kept;
anything else, updated. Its status says how many tasks run of how many are wanted, and
on which nodes.

Images are pinned by digest, so that every node runs the same image: the facts give each
image reference the manager holds with a registry digest as ``<reference>@<digest>``
(a reference naming a digest is pinned already), and each service's image as Swarm runs
it, so a tag that moved updates the service as a new image id recreates a container. An
image with no registry digest (built or loaded on the nodes, or not on the manager:
``--pull`` pulls it there first) is not pinned: used by name.
"""

import json
from collections import defaultdict
from dataclasses import dataclass

from ..engine import Facts, Roots
from ..errors import DeployerError
from ..model import route
from ..model.spec import LABEL_CONFIG_HASH, LABEL_SERVICE, container_name
from ..model.state import Container, normal_ref
from ..remote.scripts import call
from . import releases, router


@dataclass(frozen=True)
class ServiceFacts:
    """The facts of one instance's services (and the cluster's route table); ``networks``:
    those asked about (which exist).
    Run in a script that set I and D (scripts.instance)."""

    instance: str
    networks: tuple = ()
    images: tuple = ()

    def script(self):
        return call("dpl_swarm_facts", *self.images) + " || exit 1\ndpl_swarm_routes || exit 1\n"

    def read(self, out, host):
        """Facts from the script's sections (``out``), on the manager ``host``."""
        roots = Roots(*out["roots"].splitlines())
        where = f"{host}: the release config of {self.instance}"
        state = releases.state(out["stated"], where) if "stated" in out else None
        try:
            services = json.loads(out["services"] or "[]")
            running = _tasks(out.get("tasks", ""))
            containers = tuple(self._container(s, running.get(s["Spec"]["Name"], [])) for s in services)
            images = pinned(out.get("images", ""), self.images)
        except (ValueError, KeyError, TypeError) as e:
            raise DeployerError(f"cannot read docker service inspect output: {e}", host=host) from None
        present = frozenset(name for name in out["networks"].split() if name in self.networks)
        table = router.moved(routes(out, host), self.instance, state, containers)
        return Facts(roots, state, containers, images, networks=present, routes=table)

    def _container(self, service, nodes):
        """A service as the plan and status see a container: running when every task wanted runs."""
        spec = service["Spec"]
        labels = spec.get("Labels") or {}
        wanted = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", len(nodes))
        where = f" on {', '.join(sorted(set(nodes)))}" if nodes else ""
        update = (service.get("UpdateStatus") or {}).get("State", "")
        status = f"{len(nodes)}/{wanted} running{where}" + ("" if update in ("", "completed") else f", update {update}")
        ports = tuple(f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}"
                      for p in (spec.get("EndpointSpec") or {}).get("Ports") or () if p.get("PublishedPort"))
        return Container(
            name=container_name(self.instance, labels.get(LABEL_SERVICE, "")),
            service=labels.get(LABEL_SERVICE, ""),
            running=len(nodes) == wanted and update in ("", "completed", "rollback_completed"),
            status=status,
            image=spec["TaskTemplate"]["ContainerSpec"]["Image"],
            image_id=normal_ref(spec["TaskTemplate"]["ContainerSpec"]["Image"]),  # as pinned, or the name
            config_hash=labels.get(LABEL_CONFIG_HASH, ""),
            created=service.get("CreatedAt", ""),
            release=int(labels.get("deployer.release", 0) or 0),
            ports=ports,
        )


def routes(out, host):
    """The cluster's route table as it is kept (sh/router.sh: dpl_swarm_routes; router.table)."""
    return route.read(out.get("routes", ""), f"{host}: the swarm's route table")


def pinned(text, refs):
    """``{reference: reference@digest}`` of the ``refs`` pinned by digest, from ``docker image
    inspect`` lines of ``REPO_TAGS REPO_DIGESTS`` (JSON lists): by the digest of the
    reference's repository (a reference naming a digest is pinned already). Written as
    docker lists a service's image (state.normal_ref: ``redis`` is ``redis:latest``), so
    that a service running it compares equal."""
    found = [tuple(json.loads(part) or [] for part in line.split(" ", 1)) for line in text.splitlines() if line]
    out = {}
    for ref in refs:
        want = normal_ref(ref)
        if "@" in want:
            out[ref] = want
            continue
        repository = want.rsplit(":", 1)[0]
        digests = [d for tags, ds in found if want in map(normal_ref, tags) for d in ds]
        digest = next((d.split("@", 1)[1] for d in digests if normal_ref(d).split("@")[0] == repository), None)
        if digest:
            out[ref] = f"{want}@{digest}"
    return out


def _tasks(text):
    """``{service name: [node of each running task]}`` from ``NAME.SLOT NODE STATE...`` lines."""
    nodes = defaultdict(list)
    for line in text.splitlines():
        task, node, state = (line.split(maxsplit=2) + ["", ""])[:3]
        if state.startswith("Running"):
            nodes[task.rsplit(".", 1)[0]].append(node)
    return nodes
