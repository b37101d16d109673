"""Manager: the Swarm engine. A template's services run as Swarm services, created and
updated through the docker CLI of one manager, reached as a host is (over SSH, or locally).

It is a Host (remote/host.py) whose scripts read services instead of containers
(facts.py) and whose plans compile to service commands (``plan_script``), with the same
conversation: one script takes the instance's lock, reports the facts, runs the plan the
client sends back and records the release. Releases are Swarm configs (releases.py), so
any manager reads the same state and history, and the lock is a config too
(``dpl_swarm_lock``), which only one manager can create. Each step waits until Swarm says how it
ended (sh/swarm.sh): the service's task runs, its update completed, or it was rolled
back, which fails the deploy naming why. A ``git`` service's image is built on the
manager as on one host and pushed to deployer.registry in the same script (``build``).
"""

from ..errors import DeployerError, plural
from ..model import network
from ..model.plan import CREATE, KEEP, REPAIR
from ..remote.apply import Deploy, together, waves
from ..remote.framing import marked
from ..remote.host import Host
from ..remote.scripts import assign, call, instance as about
from . import releases, service as services
from .facts import ServiceFacts, pinned

SOURCE = "deployer.swarm:swarm"  # sh/swarm.sh


def plan_script(instance_name, actions, recorded, limits, release, networks=(), images=None, deps=None):
    """The shell lines creating the instance's overlay network if it is among the missing
    ``networks`` (the only one its services join: service.py), asking which nodes lack the
    images used by name that services start from anew (``dpl_swarm_probe``: a warning,
    not a failure), then running the plan's changing actions in order, each waiting for
    Swarm's verdict, new services last, at once in waves as on one host (each after the
    services it exposes, ``deps``; ``parallel_starts`` at a time); ``recorded``: the
    state's services (their specs, which an update starts from); ``images``: the
    references pinned by digest (facts.pinned)."""
    images = images or {}
    steps = [about(instance_name)]
    steps += [call("dpl_swarm_network", name, *network.create_args(name)) + " || exit 1"
              for name in networks if name == network.of_instance(instance_name)]
    changing = [a for a in actions if a.kind not in (KEEP, REPAIR)]  # no retained containers on a swarm
    unpinned = [a.spec.image for a in changing if a.spec and a.spec.image not in images
                and (a.service not in recorded or recorded[a.service].image != a.spec.image)]
    if unpinned:
        steps.append(call("dpl_swarm_probe", int(limits.health_timeout), *dict.fromkeys(unpinned)))
    creates, number = {}, waves(changing, deps or {})
    for a in changing:
        lines = _step(instance_name, a, recorded, limits, release, images)
        if a.kind == CREATE:
            creates.setdefault(number[a.service], []).extend(line + ' & pids="$pids $!"' for line in lines)
        else:
            steps += [line + " || exit 1" for line in lines]
    for wave in sorted(creates):
        steps += together(creates[wave], limits.parallel_starts)
    return steps


def _step(instance_name, action, recorded, limits, release, images):
    """The calls of one changing action: a service removed, created, or updated from the
    spec the state recorded (made anew when the state has none)."""
    name, spec = services.name(instance_name, action.service), action.spec
    anew = action.kind == CREATE or action.service not in recorded
    lines = [call("dpl_swarm_down", action.service, name)] if spec is None or (anew and action.kind != CREATE) else []
    if spec is None:
        return lines
    limit = int(limits.health_timeout) + 2 * services.monitor(spec)  # an update, and its rollback
    image = images.get(spec.image)
    if anew:
        return lines + [call("dpl_swarm_create", action.service, name, limit, services.monitor(spec),
                             *services.create_args(spec, release, image))]
    return [call("dpl_swarm_update", action.service, name, limit,
                 *services.update_args(recorded[action.service].spec, spec, release, image))]


class Rollout(Deploy):
    """A deploy's second turn on a swarm: the plan as service commands, the release kept
    by the cluster; its notes say which nodes lack an image used by name."""

    def _done(self, stdout):
        lacking = {}
        for image, node in marked(stdout, self.boundary, "lacks"):
            lacking.setdefault(image, []).append(node)
        self.notes = tuple(f"image {image} has no registry digest, so it is used by name, and "
                           f"{plural(len(nodes), 'node')} lack{'s' * (len(nodes) == 1)} it: {', '.join(sorted(nodes))} "
                           "(a task placed there fails; load or pull it there)" for image, nodes in lacking.items())
        return super()._done(stdout)

    def recording(self, state, entry, template_text, history, released=False):
        return [releases.record(state, entry, history)]

    def plan(self, actions, limits, release, deps, networks, releases_=None, routing=None):
        """The plan's lines; a spec no service can be is an error naming the manager (as are
        a release command, a route and replicas: not done on a swarm yet)."""
        if releases_ or routing:
            raise self.host._unsupported("a release command" if releases_ else "a route", self.instance)
        replicated = sorted({a.spec.service for a in actions if a.spec is not None and a.spec.replica})
        if replicated:  # (one spec a replica: a swarm service would take them for one another)
            raise self.host._unsupported(f"replicas ({', '.join(replicated)})", self.instance)
        recorded = self.facts.state.services if self.facts.state else {}
        try:
            return plan_script(self.instance, actions, recorded, limits, release, networks, self.facts.images, deps)
        except DeployerError as e:
            raise e.where(host=self.host.name, instance=self.instance) from None


class Manager(Host):
    """A swarm, through one of its managers."""

    FACTS = (SOURCE,)
    APPLY = ()
    Applying = Rollout

    def __init__(self, runner, settings, context=None, listener=None):
        super().__init__(runner, settings, context, listener)
        if self.etcd:
            raise DeployerError("deployer.discovery etcd has no meaning with deployer.engine swarm: services find "
                                "each other by name on their instance's overlay network", host=self.name)

    def check(self, template):
        """Every key of a template means something to a swarm; what one cannot run is
        refused here, naming file and key (service.refused)."""
        services.refused(template, self.registry)
        return ()

    def _fact(self, instance, images, discovery, networks, routes=False):
        return ServiceFacts(instance, tuple(networks), tuple(images))

    def _locking(self, lock_wait, who, discovery, routed=False):
        """The instance's lock across the cluster (no host ports are allocated on a swarm)."""
        return [call("dpl_swarm_lock", int(lock_wait), who) + " || exit 1"]

    # -- releases, held by the cluster (releases.py): any manager answers ----------------

    def write_state(self, instance, state, entry, history=0):
        self._script(f"{about(instance)}\n{releases.record(state, entry, history)}", instance, self.FACTS)

    def history(self, instance):
        return [releases.entry(data, self.name) for _, _, data in self._releases(instance)]

    def stored(self, instance):
        """The template and state of the newest release that went through (else the newest
        that says what runs)."""
        found = [(releases.entry(data, self.name), releases.state(data, self.name))
                 for _, _, data in self._releases(instance)]
        stated = [(entry, state) for entry, state in found if state is not None]
        if not stated:
            raise DeployerError("no such instance on this swarm (no release)", host=self.name, instance=instance)
        entry, state = ([(e, s) for e, s in stated if e["result"] == "ok"] or stated)[-1]
        return entry["template_text"], f"{self.name}:release {entry['release']}", state

    def instances(self):
        """The newest state of every instance the swarm holds releases of."""
        newest = {}
        for _, instance, data in releases.releases(self._script("dpl_swarm_releases dpl_swarm_stated || exit 1",
                                                                   uses=self.FACTS)["releases"], self.name):
            newest[instance] = data
        return [releases.state(data, self.name) for data in newest.values()]

    def _releases(self, instance):
        out = self._script(f"{about(instance)}\ndpl_swarm_releases dpl_swarm_configs || exit 1", instance, self.FACTS)
        return releases.releases(out["releases"], self.name)

    def _start(self, boundary, body, uses=(), text=None):
        """Every script first makes sure the host is a swarm manager: else one clear error."""
        uses = tuple(dict.fromkeys((SOURCE, *uses)))
        return super()._start(boundary, f"dpl_swarm_manager || exit 1\n{body}", uses, text)

    def destroy(self, instance, volumes, who, lock_wait, routes=()):
        """Remove the instance's services, networks, configs, secrets and state; False,
        having changed nothing, when the swarm has none of them. (``routes``: a swarm
        has none yet: a route is refused at deploy.)"""
        body = (f"{about(instance)}\n{assign(DPL_HEALTH_TIMEOUT=int(self.settings.health_timeout))}\n"
                f"{call('dpl_swarm_destroy', int(lock_wait), who)} || exit 1")
        return "missing" not in self._script(body, instance, self.FACTS)

    @property
    def registry(self):
        """Where a ``git`` service's image is pushed (deployer.registry), since its tasks may
        run on any node; without it such a service is refused (service.refused)."""
        return self.settings.registry

    def build(self, tag, source, instance, progress=None):
        """Built on the manager as on one host, then pushed to the registry ``tag`` names
        (Source.tag) in the same script; the reference pinned by the digest the push gave,
        written as facts.pinned writes it, so that every node pulls that very image and a
        later deploy of the same commit, finding it pinned, builds nothing."""
        pushed = pinned(self._built(tag, source, instance, progress, push=True)["pushed"], (tag,))
        if tag not in pushed:
            raise DeployerError(f"the push of {source.service} ({source.version}) to deployer.registry "
                                f"{source.registry} gave {tag} no registry digest", host=self.name, instance=instance)
        return pushed[tag]

    def prune(self, instance, who, lock_wait):
        """Nothing is retained on a swarm (Swarm keeps a service's previous spec itself)."""
        return [], []

    def control(self, instance, verb, names, who, lock_wait, volumes=()):
        raise self._unsupported(verb, instance)

    def attach(self, argv, tty, hidden=None, instance=None, volumes=(), reads_stdin=True, stdin=None):
        raise self._unsupported("attaching to a service's container (logs, run, exec)", instance)

    def _unsupported(self, what, instance):
        return DeployerError(f"{what} is not done on a swarm yet (deployer.engine swarm)", host=self.name,
                             instance=instance)
