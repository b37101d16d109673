"""The facts of an instance on a swarm: the script lines that report them (``sh/swarm.sh``,
``dpl_swarm_facts``) next to the parser that reads them back.

Each of the instance's services is told to the core as one Container, named as the spec
names its container (``<instance>.<service>``), so the plan compares specs with services
as it compares them with containers on one host: same config hash and running, kept;
anything else, updated. Its status says how many tasks run of how many are wanted, and
on which nodes. A service of several tasks (``replicas: N``) is told as its replicas
(``<instance>.<service>.<n>``, n from 1: its tasks in slot order, as Swarm numbers slots
with gaps once it scaled down), each running where its task runs, with the config hash the
core gives that replica of the service's recorded spec (service.replica) when the service
runs that spec: a replica is kept, made or scaled away as on one host.

Images are pinned by digest, so that every node runs the same image: the facts give each
image reference the manager holds with a registry digest as ``<reference>@<digest>``
(a reference naming a digest is pinned already), and each service's image as Swarm runs
it, so a tag that moved updates the service as a new image id recreates a container. An
image with no registry digest (built or loaded on the nodes, or not on the manager:
``--pull`` pulls it there first) is not pinned: used by name. The same lines give each
image's own entrypoint and cmd (``commands``), which a service with secrets runs behind the
entrypoint that reads them (service.py).

A deploy that uses discovery also learns the other instances' states (``others``): each
one's newest release that says what runs, as one host reads its other instances' state
files, in the same round trip (one ``docker config inspect`` of those configs), so that
``expose`` of ``shop/db:sql`` finds shop's endpoint, and a ``wan`` endpoint's host port is
none another instance publishes (model/discovery.py).
"""

import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass

from ..engine import Facts, Roots
from ..errors import DeployerError, plural
from ..model import route
from ..model.plan import split
from ..model.schema import unit
from ..model.spec import LABEL_CONFIG_HASH, LABEL_SERVICE, ContainerSpec, container_name
from ..model.state import Container, normal_ref
from ..remote.scripts import call
from . import releases, router, service as services

SETTLED = ("", "completed", "rollback_completed")  # update states in which a service's running tasks are its own
STOPPED = "stopped"  # the status of a service ``stop`` stopped (and of its replicas)
LABEL_STOPPED = "deployer.stopped"  # its label: the count of tasks it ran (sh/swarm.sh: dpl_swarm_stop)


def stopped_services(containers):
    """The services of the ``containers`` (facts) that ``stop`` stopped: a deploy starts them."""
    return {c.service for c in containers if c.status.startswith(STOPPED)}


@dataclass(frozen=True)
class ServiceFacts:
    """The facts of one instance's services (and the cluster's route table); ``networks``:
    those asked about (which exist, as the swarm names them: service.overlay); with
    ``discovery``, the other instances' states, whose endpoints it may expose (``others``).
    Run in a script that set I and D (scripts.instance)."""

    instance: str
    networks: tuple = ()
    images: tuple = ()
    discovery: bool = False

    def script(self):
        others = "dpl_swarm_others || exit 1\n" if self.discovery else ""
        return call("dpl_swarm_facts", *self.images) + f" || exit 1\n{others}dpl_swarm_routes || exit 1\n"

    def read(self, out, host):
        """Facts from the script's sections (``out``), on the manager ``host``."""
        roots = Roots(*out["roots"].splitlines())
        where = f"{host}: the release config of {self.instance}"
        state = releases.state(out["stated"], where) if "stated" in out else None
        try:
            inspected = json.loads(out["services"] or "[]")
            tasks = _tasks(out.get("tasks", ""))
            recorded = state.services if state else {}
            containers = tuple(c for s in inspected if LABEL_SERVICE in (s["Spec"].get("Labels") or {})  # no one-off
                               for c in self._containers(s, tasks.get(s["Spec"]["Name"], []), recorded))
            found = images_of(out.get("images", ""))
            images, own = pinned(found, self.images), commands(found, self.images)
        except (ValueError, KeyError, TypeError) as e:
            raise DeployerError(f"cannot read docker service inspect output: {e}", host=host) from None
        listed = set(out["networks"].split())
        present = frozenset(name for name in self.networks if services.overlay(name) in listed)
        table = router.moved(routes(out, host), self.instance, state, containers)
        return Facts(roots, state, containers, images, others(out, host), networks=present, commands=own,
                     routes=table)

    def _containers(self, service, tasks, recorded):
        """A service as the plan and status see its containers: one, or a replica a task
        (``tasks``: ``(slot, node, state)`` of those meant to run). A service ``stop`` stopped
        is as many containers as it ran, each stopped (``STOPPED``), none running: a deploy
        starts it again, as it recreates a stopped container on one host."""
        spec = service["Spec"]
        nodes = [node for _, node, state in tasks if state.startswith("Running")]
        stopped = int((spec.get("Labels") or {}).get(LABEL_STOPPED) or 0)
        wanted = stopped or ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", len(nodes))
        whole = self._container(service, nodes, wanted, stopped)
        if wanted <= 1:
            return [whole]
        update = _update(service)
        known = [ContainerSpec.from_dict(s.spec) for unit, s in recorded.items() if split(unit)[0] == whole.service]
        runs = next((spec for spec in known if services.whole(spec).config_hash == whole.config_hash), None)
        ordered = sorted(tasks, key=lambda task: int(task[0]) if task[0].isdigit() else 0)[:wanted]
        if stopped:
            ordered = [("", "", STOPPED)] * wanted
        return [dataclasses.replace(
            whole, name=container_name(self.instance, unit(whole.service, n)), replica=n,
            running=state.startswith("Running") and update in SETTLED,
            status=" on ".join(filter(None, [state.split(" ", 1)[0].lower(), node])) + _said(update),
            config_hash=services.replica(runs, n).config_hash if runs else whole.config_hash,
        ) for n, (_, node, state) in enumerate(ordered, 1)]

    def _container(self, service, nodes, wanted, stopped=0):
        """A service as the plan and status see a container: running when every task wanted
        runs; ``stopped``: the count of tasks ``stop`` kept (0: not stopped)."""
        spec = service["Spec"]
        labels = spec.get("Labels") or {}
        where = f" on {', '.join(sorted(set(nodes)))}" if nodes else ""
        update = _update(service)
        status = f"{len(nodes)}/{wanted} running{where}" + _said(update)
        if stopped:
            status = f"{STOPPED} ({plural(stopped, 'task')} when started)"
        ports = tuple(f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}"
                      for p in (spec.get("EndpointSpec") or {}).get("Ports") or () if p.get("PublishedPort"))
        return Container(
            name=container_name(self.instance, labels.get(LABEL_SERVICE, "")),
            service=labels.get(LABEL_SERVICE, ""),
            running=len(nodes) == wanted and update in SETTLED and not stopped,
            status=status,
            image=spec["TaskTemplate"]["ContainerSpec"]["Image"],
            image_id=normal_ref(spec["TaskTemplate"]["ContainerSpec"]["Image"]),  # as pinned, or the name
            config_hash=labels.get(LABEL_CONFIG_HASH, ""),
            created=service.get("CreatedAt", ""),
            release=int(labels.get("deployer.release", 0) or 0),
            ports=ports,
        )


def others(out, host):
    """The other instances' states, each its newest release that says what runs
    (sh/swarm.sh: dpl_swarm_others), as one host reads their state files: their endpoints,
    which this instance may expose (model/discovery.py)."""
    where = f"{host}: the release configs of other instances"
    return tuple(releases.state(data, where) for _, _, data in releases.releases(out.get("others", "[]"), where))


def routes(out, host):
    """The cluster's route table as it is kept (sh/router.sh: dpl_swarm_routes; router.table)."""
    return route.read(out.get("routes", ""), f"{host}: the swarm's route table")


def pinned(found, refs):
    """``{reference: reference@digest}`` of the ``refs`` pinned by digest, from the images
    ``found`` (``images_of``): by the digest of the reference's repository (a reference
    naming a digest is pinned already). Written as docker lists a service's image
    (state.normal_ref: ``redis`` is ``redis:latest``), so that a service running it
    compares equal."""
    out = {}
    for ref in refs:
        want = normal_ref(ref)
        if "@" in want:
            out[ref] = want
            continue
        repository = want.rsplit(":", 1)[0]
        digests = [d for tags, ds, *_ in found if want in map(normal_ref, tags) for d in ds]
        digest = next((d.split("@", 1)[1] for d in digests if normal_ref(d).split("@")[0] == repository), None)
        if digest:
            out[ref] = f"{want}@{digest}"
    return out


def _update(service):
    """The state of the service's newest update ("": none)."""
    return (service.get("UpdateStatus") or {}).get("State", "")


def _said(update):
    return "" if update in ("", "completed") else f", update {update}"


def commands(found, refs):
    """``{reference: (entrypoint, cmd)}`` of the ``refs`` the manager holds (by tag, or by
    digest), as their images' configs give them, from the images ``found`` (``images_of``)."""
    out = {}
    for ref in refs:
        want = normal_ref(ref)
        for tags, digests, entrypoint, cmd in found:
            if want in map(normal_ref, tags) or want in map(normal_ref, digests):
                out[ref] = (tuple(entrypoint), tuple(cmd))
                break
    return out


def images_of(text):
    """``[(tags, digests, entrypoint, cmd)]`` (lists) from ``docker image inspect`` lines of
    four JSON values, each of which may hold blanks (a cmd's words): read one after another."""
    decoder, found = json.JSONDecoder(), []
    for line in filter(None, text.splitlines()):
        values, at = [], 0
        while at < len(line):
            value, at = decoder.raw_decode(line, at)
            values.append(value or [])
            at += len(line[at:]) - len(line[at:].lstrip(" "))
        found.append(tuple(values + [[]] * (4 - len(values))))
    return found


def _tasks(text):
    """``{service name: [(slot, node, state) of each task]}`` from ``NAME.SLOT NODE STATE...``
    lines (a task not placed yet has no node: ``NAME.SLOT  STATE...``)."""
    tasks = defaultdict(list)
    for line in text.splitlines():
        task, node, state = (line.split(" ", 2) + ["", ""])[:3]
        service, _, slot = task.rpartition(".")
        tasks[service].append((slot, node, state.strip()))
    return tasks
