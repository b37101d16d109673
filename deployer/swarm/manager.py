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
``stop``/``start``/``restart`` act on services under the lock (``controlled``: a stopped
service keeps its count in a label, facts.py says it is stopped, a deploy starts it), and
``exec`` enters a task's container on the manager, the one node its docker reaches.
"""

import dataclasses

from ..errors import DeployerError, plural
from ..model import route
from ..model.plan import CREATE, KEEP, RECREATE, REMOVE, REPAIR, split
from ..model.spec import ContainerSpec
from ..remote.apply import Deploy, together, waves
from ..remote.framing import marked
from ..remote.host import Host, exec_args
from ..remote.scripts import assign, call, instance as about, source
from . import releases, router, service as services
from .facts import ServiceFacts, images_of, pinned, stopped_services

SOURCE = "deployer.swarm:swarm"  # sh/swarm.sh
JOB = "deployer.swarm:job"  # sh/job.sh: one-offs (release commands, run) and the waits of every step
ROUTER = "deployer.swarm:router"  # sh/router.sh


def plan_script(instance_name, actions, recorded, limits, release, networks=(), images=None, deps=None,
                commands=None, values=None, stopped=(), releases=None):
    """The shell lines creating the missing ``networks`` (the instance's own, network.missing:
    its overlay network, its registering services' networks) as the swarm names them
    (service.overlay), asking which nodes lack the
    images used by name that services start from anew (``dpl_swarm_probe``: a warning,
    not a failure, beside the first new services when there are some: ``_beside``),
    making sure the image of each changing service with secrets has the /bin/sh that
    reads them (``dpl_swarm_shell``: else an error before anything changes),
    then running the plan's changing services in order (``services_of``: a service's
    replicas are one step), each waiting for Swarm's verdict, new services last, at once in
    waves as on one host (each after the services it exposes, ``deps``; ``parallel_starts``
    at a time); ``recorded``: the state's services (their specs, which an update starts
    from); ``images``: the references pinned by digest (facts.pinned); ``commands``: the
    images' own entrypoint and cmd (facts.commands), which a service with secrets runs
    (service.py); ``values``: the secrets' values this deploy was given, by their seals
    (``_secrets``); ``stopped``: the services ``stop`` stopped (facts.stopped_services), which start
    again at the deploy's spec and count; ``releases``: the release command of each service (of its first unit)
    that runs one, right before its step (``_release``): a new one's before its wave, as on
    one host, so that the services it exposes run (a migration needs its database)."""
    images, commands = images or {}, commands or {}
    steps = [about(instance_name)]
    steps += [call("dpl_swarm_network", services.overlay(name), *services.network_args(name)) + " || exit 1"
              for name in networks]
    changing = [a for a in actions if a.kind not in (KEEP, REPAIR)]  # no retained containers on a swarm
    unpinned = [a.spec.image for a in changing if a.spec and a.spec.image not in images
                and (a.service not in recorded or recorded[a.service].image != a.spec.image)]
    probe = [call("dpl_swarm_probe", int(limits.health_timeout), *dict.fromkeys(unpinned))] if unpinned else []
    shells = {}  # image -> the first changing service with secrets it runs: asked once an image
    for a in changing:
        if a.spec and services.secrets(a.spec):
            shells.setdefault(images.get(a.spec.image, a.spec.image), a.spec.service)
    steps += [call("dpl_swarm_shell", service, image) + " || exit 1" for image, service in shells.items()]
    steps += _secrets(changing, values or {})
    creates, first, number, changes = {}, {}, waves(changing, deps or {}), []
    for service, units in services_of(actions).items():
        lines = _step(instance_name, service, units, recorded, limits, release, images, commands, service in stopped)
        before = [line + " || exit 1" for line in _release(instance_name, units, releases or {}, limits, images,
                                                             commands)]
        if all(a.kind == CREATE for a in units):
            first.setdefault(number[units[0].service], []).extend(before)
            creates.setdefault(number[units[0].service], []).extend(line + ' & pids="$pids $!"' for line in lines)
        else:
            changes += before + [line + " || exit 1" for line in lines]
    steps += ([] if creates else probe) + changes
    for wave in sorted(creates):
        steps += first[wave] + _beside(together(creates[wave], limits.parallel_starts),
                                       probe if wave == min(creates) else [])
    return steps + _unused(changing, recorded, limits.retain)


def _beside(lines, jobs):
    """``together``'s ``lines`` with ``jobs`` (lines) started with their first batch, and
    waited for with it, taking no place of a batch: the probe, which waits a second or so
    for its tasks to end and only warns, runs while the first new services start instead
    of before them."""
    return [lines[0], *(job + ' & pids="$pids $!"' for job in jobs), *lines[1:]]


def services_of(actions):
    """The plan's actions by the service they are a unit of (its one container, or a
    replica: ``web.2``), in the plan's order, for the services that change: a swarm runs a
    service's replicas as one service, changed in one step. Its replicas must be the same
    service (service.whole): volumes not shared, or a ``wan`` endpoint (a host port a
    replica), are refused (service.refused), also when ``scale`` made them replicas."""
    grouped = {}
    for a in actions:
        grouped.setdefault(split(a.service)[0], []).append(a)
    for service, units in grouped.items():
        specs = [a.spec for a in units if a.spec]
        if len({services.whole(spec).config_hash for spec in specs}) > 1:
            if len({spec.ports for spec in specs}) > 1:
                raise DeployerError(f"service {service}: {services.WAN_REPLICAS}")
            raise DeployerError(f"service {service}: its replicas would differ (volumes not shared), and a swarm runs "
                                "them as one service: mark its volumes shared (/data:shared), or run one replica")
    return {service: units for service, units in grouped.items() if any(a.kind not in (KEEP, REPAIR) for a in units)}


def _step(instance_name, service, units, recorded, limits, release, images, commands, stopped=False):
    """The calls of one changing service (``units``: its actions, one a unit): removed,
    created with as many tasks as it has units, made anew when the state has none of its
    units, started at its spec and new count when ``stop`` ``stopped`` it (its tasks were
    removed: one update makes them anew, waited for as a new service's), updated from the
    spec the state recorded when its spec changed or a unit is not as it should be, else
    only scaled to its new count (Swarm starts or stops tasks, and no other restarts)."""
    name, specs = services.name(instance_name, service), [a.spec for a in units if a.spec]
    known = [unit for unit in recorded if split(unit)[0] == service]
    lines = [call("dpl_swarm_down", service, name)] if not specs or (not known and any(a.kind != CREATE for a in units)) else []
    if not specs:
        return lines
    spec, count, image, command = specs[0], len(specs), images.get(specs[0].image), commands.get(specs[0].image)
    limit = waited(spec, count, limits.batch, limits.health_timeout)
    if not known:
        return lines + [call("dpl_swarm_create", service, name, limit, services.monitor(spec),
                             *services.create_args(spec, release, image, command, count, limits.batch))]
    old = recorded[known[0]].spec
    if stopped:
        return [call("dpl_swarm_start", service, name, limit, services.monitor(spec), count,
                     *services.update_args(old, spec, release, image, command, count, limits.batch))]
    before = sum(a.kind != CREATE for a in units)  # the units it runs now (kept, recreated or scaled away)
    resized = any(a.kind in (CREATE, REMOVE) for a in units)
    if any(a.kind == RECREATE for a in units) or services.whole(ContainerSpec.from_dict(old)).config_hash != \
            services.whole(spec).config_hash:
        return [call("dpl_swarm_update", service, name, limit,
                     *services.update_args(old, spec, release, image, command, count, limits.batch, resized))]
    return [call("dpl_swarm_scale", service, name, limit, before, count)]


def controlled(instance, verb, specs, settings):
    """The lines stopping, starting or restarting the specs' services (a service once,
    whichever of its replicas are given), each waiting for Swarm's verdict: ``stop`` scales
    it to 0 tasks, keeping its count in a label (dpl_swarm_stop), which ``start`` runs again
    (dpl_swarm_start); ``restart`` replaces every task as a rolling update does
    (dpl_swarm_restart: start-first where the service allows it)."""
    first, lines = {}, []
    for spec in specs:
        first.setdefault(spec.service, spec)
    for service, spec in first.items():
        count = sum(s.service == service for s in specs)
        if verb == "stop":
            args = [int(settings.health_timeout) + services.grace(spec)]
        else:
            args = [waited(spec, count, settings.rolling_batch, settings.health_timeout), services.monitor(spec)]
        lines.append(call(f"dpl_swarm_{verb}", service, services.name(instance, service), *args) + " || exit 1")
    return lines


def waited(spec, count, batch, health_timeout):
    """Seconds a step of ``count`` tasks of the spec's service may take: Swarm's update of
    ``batch`` tasks at a time (0: all), and its rollback, each task given ``health_timeout``
    to start and two monitor periods."""
    rounds = -(-count // (batch or count))
    return rounds * (int(health_timeout) + 2 * services.monitor(spec))


def _release(instance_name, units, releases, limits, images, commands):
    """The line running the release command of a service's step (``units``) if it has one: a
    job of the service's new spec (service.job_args, its image pinned as its step's),
    stopped after deployer.release_timeout (sh/swarm.sh, dpl_swarm_release)."""
    command = next((releases[a.service] for a in units if a.service in releases), None)
    if command is None:
        return []
    spec = next(a.spec for a in units if a.spec)
    return [call("dpl_swarm_release", spec.service, services.job_name(instance_name, spec.service, "release"),
                 int(limits.release_timeout),
                 *services.job_args(spec, command, images.get(spec.image), commands.get(spec.image)))]


def _secrets(changing, values):
    """The lines creating the Swarm secrets the changing services use, where missing: the
    value of each seal (``values``) in the script's body, a shell function's argument,
    never a command's; a seal without its value (a redeploy or rollback not given it) names
    a secret that must still be there."""
    wanted = {name: seal for a in changing if a.spec for name, seal in services.secret_values(a.spec).items()}
    return [call("dpl_swarm_secret", name, *([values[seal]] if seal in values else [])) + " || exit 1"
            for name, seal in wanted.items()]


def _unused(changing, recorded, retain):
    """The line removing the instance's secrets no service uses any more, once the changing
    services that had or have secrets are done: all but the newest ``retain`` of each
    variable (deployer.retain), which a rollback may run again."""
    had = [recorded[a.service].spec for a in changing if a.service in recorded]
    if any(spec.get("secrets") for spec in had) or any(a.spec and a.spec.secrets for a in changing):
        return [call("dpl_swarm_unused", int(retain))]
    return []


class Rollout(Deploy):
    """A deploy's second turn on a swarm: the plan as service commands, the release kept
    by the cluster; its notes say which nodes lack an image used by name."""

    def __init__(self, *args):
        super().__init__(*args)
        self.units = {}  # service -> the units (its container, or its replicas) its step is done for (plan)

    def _done(self, stdout):
        lacking = {}
        for image, node in marked(stdout, self.boundary, "lacks"):
            lacking.setdefault(image, []).append(node)
        self.notes = tuple(f"image {image} has no registry digest, so it is used by name, and "
                           f"{plural(len(nodes), 'node')} lack{'s' * (len(nodes) == 1)} it: {', '.join(sorted(nodes))} "
                           "(a task placed there fails; load or pull it there)" for image, nodes in lacking.items())
        done = super()._done(stdout)  # the services whose step ended well: each is done for all its units
        self.seconds = {unit: took for service, took in self.seconds.items() for unit in self.units.get(service, [service])}
        return {unit for service in done for unit in self.units.get(service, [service])}

    def recording(self, state, entry, template_text, history, released=False):
        return [releases.record(state, entry, history, released)]

    def plan(self, actions, limits, release, deps, networks, releases_=None, routing=None):
        """The plan's lines, moving routes as ``routing`` says (router.py), each service's
        release command in ``releases_`` before its step; a spec no service can be is an
        error naming the manager. Its steps are services: each marks the units of its
        service done (``units``)."""
        recorded = self.facts.state.services if self.facts.state else {}
        try:
            self.units = {service: [a.service for a in units] for service, units in services_of(actions).items()}
            steps = plan_script(self.instance, actions, recorded, limits, release, networks, self.facts.images, deps,
                                self.facts.commands, self.host.values, stopped_services(self.facts.containers),
                                releases_)
        except DeployerError as e:
            raise e.where(host=self.host.name, instance=self.instance) from None
        before, after = router.lines(routing.moves, routing.router, limits.health_timeout) if routing else ([], [])
        return [*before, *steps, *after]


class Manager(Host):
    """A swarm, through one of its managers."""

    FACTS = (SOURCE, JOB, ROUTER)
    APPLY = ()
    Applying = Rollout
    names_replicas = False  # a task has no name of its own: its service's resolves to them all (dnsrr)

    def __init__(self, runner, settings, context=None, listener=None):
        super().__init__(runner, settings, context, listener)
        if self.etcd:
            raise DeployerError("deployer.discovery etcd has no meaning with deployer.engine swarm: services find "
                                "each other by name on their instance's overlay network", host=self.name)

    values = {}  # seal -> the secret's value, of what this deploy was given (``sealed``)

    def sealed(self, instance, desired):
        """A swarm's specs and state hold secrets sealed (service.seal), the values kept
        here for the plan, which creates the Swarm secrets that hold them."""
        given = {value for value in desired.secrets.values() if not value.startswith(services.SEALED)}
        self.values = {**self.values, **{services.seal(instance, value): value for value in given}}
        return dataclasses.replace(desired, specs=tuple(services.sealed(spec) for spec in desired.specs),
                                   secrets={name: services.seal(instance, v) for name, v in desired.secrets.items()})

    def check(self, template):
        """Every key of a template means something to a swarm; what one cannot run is
        refused here, naming file and key (service.refused)."""
        services.refused(template, self.registry)
        return ()

    def _fact(self, instance, images, discovery, networks, routes=False):
        return ServiceFacts(instance, tuple(networks), tuple(images), discovery)

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
        uses = tuple(dict.fromkeys((SOURCE, JOB, *uses)))
        return super()._start(boundary, f"dpl_swarm_manager || exit 1\n{body}", uses, text)

    def destroy(self, instance, volumes, who, lock_wait, routes=()):
        """Refused, changing nothing, while services of other instances expose its
        endpoints (``dpl_swarm_consumed``: they join its service networks; one host
        disconnects them, but a swarm would update another instance's services under no
        lock of theirs, and leave their recorded specs saying they are joined). Else
        remove the instance's ``routes`` first (the table's text as read, and the table
        without them: every node's router stops serving them), then its services,
        networks, configs, secrets and state, and with ``volumes`` its volumes the
        manager's engine has; False, having changed nothing but routes, when the swarm has
        none of them. The router stays, even with no route left. A manager's engine
        reaches no other node's volumes (Swarm has no call removing one, and a task given
        its node's docker socket is more power than a destroy should hand out): those of
        the nodes its tasks ran on are named in an error, once all else is gone."""
        body = [about(instance), assign(DPL_HEALTH_TIMEOUT=int(self.settings.health_timeout)),
                "dpl_swarm_consumed || exit 1"]
        if routes:
            where = f"{self.name}: the swarm's route table"
            body.append(router.load(route.read(routes[0], where), route.read(routes[1], where), self.settings.router,
                                    self.settings.health_timeout))
        body.append(f"{call('dpl_swarm_destroy', int(bool(volumes)), int(lock_wait), who)} || exit 1")
        out = self._script("\n".join(body), instance, self.FACTS)
        kept = {}
        for node, volume in (mark.split()[1:] for mark in out if mark.startswith("kept ")):
            kept.setdefault(node, []).append(volume)
        if kept:
            raise DeployerError("destroyed, but its volumes on other nodes are kept (a manager removes its own node's "
                                "alone): " + "; ".join(f"on {node}: {', '.join(sorted(names))}"
                                                       for node, names in sorted(kept.items())) +
                                " (docker volume rm them there)", host=self.name, instance=instance)
        return "missing" not in out

    # -- routes: the cluster's table, every node's router (router.py) ----------------------

    def routes(self):
        """The swarm's route table, and its text as read."""
        text = self._script("dpl_swarm_routes || exit 1", uses=self.FACTS).get("routes", "")
        return route.read(text, f"{self.name}: the swarm's route table"), text

    def served(self):
        """The swarm's route table as its routers serve it, and each routed service's state."""
        out = self._script("dpl_swarm_routes || exit 1\ndpl_swarm_routed || exit 1", uses=self.FACTS)
        rows = router.table(route.read(out.get("routes", ""), f"{self.name}: the swarm's route table"))
        return rows, router.states(rows, out["states"], services.name)

    def router(self, verb, lock_wait=0, seen="", table=()):
        """``restart``: the router service as the settings say, and every node's router
        loads the table again (a node that joined since serves it); ``status`` and ``ca``
        are a node's, refused with where to look."""
        settings = self.settings
        if verb == "restart":
            limit = settings.health_timeout
            self._script(f"{router.up(table, settings.router, limit)}\n{router.push(table, settings.router, limit)}",
                         uses=self.FACTS)
            return None
        raise DeployerError(router.REFUSED[verb], host=self.name)

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
        pushed = pinned(images_of(self._built(tag, source, instance, progress, push=True)["pushed"]), (tag,))
        if tag not in pushed:
            raise DeployerError(f"the push of {source.service} ({source.version}) to deployer.registry "
                                f"{source.registry} gave {tag} no registry digest", host=self.name, instance=instance)
        return pushed[tag]

    def prune(self, instance, who, lock_wait):
        """Nothing is retained on a swarm (Swarm keeps a service's previous spec itself)."""
        return [], []

    def control(self, instance, verb, specs, who, lock_wait):
        """Stop, start or restart the specs' services, holding the instance's lock, each
        waited for as a deploy's step is (controlled). A replica alone cannot be: a
        service's tasks are stopped, started and restarted together."""
        replicas = [spec for spec in specs if spec.replica]
        if len(replicas) == 1:
            service = replicas[0].service
            raise DeployerError(f"{verb} of one replica ({replicas[0].unit}) is not done on a swarm, which "
                                f"{verb}s a service's tasks together: name the service ({service})",
                                host=self.name, instance=instance)
        lines = controlled(instance, verb, specs, self.settings)
        self._script("\n".join([about(instance), *self._locking(lock_wait, who, False), *lines]), instance, self.FACTS)

    def logs(self, instance, specs, follow=False, tail=None):
        """The log lines of the specs' services, from every node (services.logs_command)."""
        return self.attach(services.logs_command(instance, specs, follow, tail), tty=False, reads_stdin=False)

    def exec(self, instance, spec, words, tty, stdin=None):
        """``docker exec`` into a container of a task of the spec's service (whichever of its
        replicas was named) running on the manager, found by one script first
        (dpl_swarm_task), then attached as on one host. The manager's docker reaches the
        containers of its own node alone: when no task runs there, an error naming the
        nodes its tasks run on, where ``docker exec`` reaches them."""
        name = services.name(instance, spec.service)
        out = self._script(f"{about(instance)}\n{call('dpl_swarm_task', name)} || exit 1", instance, self.FACTS)
        if "container" in out:
            return self.attach(exec_args(tty, stdin, out["container"].strip(), words), tty, instance=instance,
                               stdin=stdin)
        nodes = out.get("nodes", "").split()
        if not nodes:
            raise DeployerError(f"exec {spec.service}: no task of {name} runs (status says why; a stopped service "
                                "runs again with start)", host=self.name, instance=instance)
        raise DeployerError(f"exec {spec.service}: no task of {name} runs on this manager, whose docker reaches its "
                            f"own node's containers alone; its tasks run on {', '.join(nodes)}: run docker exec there "
                            f"(docker ps --filter label=com.docker.swarm.service.name={name} names the container)",
                            host=self.name, instance=instance)

    def one_off(self, instance, spec, words, tty, stdin=None):
        """``run`` on a swarm: a job of one task of the service's spec (service.job_args)
        running ``words`` (else its cmd), its image pinned as the state records the
        service's; its output printed as its task's node logged it, stdout on stdout and
        stderr on stderr, line by line (bytes that are no text do not survive a log), its
        exit code ours; the job removed once it ended, or when the client goes or is
        interrupted (sh/job.sh, dpl_swarm_run, which the command carries). A job's task
        cannot be attached, so a terminal or piped input is refused, saying what to do
        instead. Two round trips: the facts (the pinned image, the image's own command
        that a service with secrets runs behind them), then the job."""
        if tty or stdin is not None:
            given = "a terminal" if tty else "input"
            raise DeployerError(f"run on a swarm is a job, whose task cannot be given {given}: run the command with no "
                                "input (< /dev/null), and its output is printed and its exit code passed on",
                                host=self.name, instance=instance)
        facts = self.facts(instance, (spec.image,))
        recorded = facts.state.services.get(spec.unit) if facts.state else None
        try:
            args = services.job_args(spec, words, recorded.image_id if recorded else None,
                                     facts.commands.get(spec.image))
        except DeployerError as e:
            raise e.where(host=self.name, instance=instance) from None
        name = services.job_name(instance, spec.service, "run")
        return super().attach(["sh", "-c", f'{source(JOB)}dpl_swarm_run "$@"', "dpl_swarm_run", name, *args],
                              tty=False, reads_stdin=False)
