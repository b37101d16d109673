"""Applying a plan: the second turn of a locked deploy, and the script a plan compiles to.

``plan_script`` is pure (actions in, shell lines out: golden-tested like Kamal's command
tests); ``Deploy`` sends it to the script that holds the lock and reads back which steps
were done (``ok SERVICE T0 T1`` marks). Steps run in the plan's order, except that new
services start at once, in waves: each after the services it exposes.
"""

import json
from dataclasses import dataclass, field

from ..engine import Released
from ..model import network, route
from ..model.plan import CREATE, KEEP, RECREATE, REPAIR, split
from ..plugins.route import LABEL_ROUTE
from .framing import elapsed, marked, sections
from .scripts import assign, call, instance, join, q

# The descriptor on which docker reads an env file of secrets (--env-file /dev/fd/5).
SECRETS = 5
SECRETS_FD = f"/dev/fd/{SECRETS}"
WAITED = 'failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ]'  # the jobs in $pids all did well
USES = ("replace", "network", "discovery", "guard", "router")  # the sources a plan's script calls


@dataclass(frozen=True)
class Limits:
    """How a deploy waits for new containers, how many releases its history keeps, and
    where its networks' addresses come from once Docker's pools are used up."""

    health_timeout: int
    min_uptime: float
    history: int  # 0: all
    parallel_starts: int = 8  # new containers starting at once, at most (0: no limit)
    subnets: str = "10.211.0.0/16"  # the setting deployer.subnets
    release_timeout: int = 600  # seconds a release command may run
    batch: int = 1  # replicas of a service replaced at once (the setting deployer.rolling.batch; 0: all)
    retain: int = 3  # replaced releases kept per service (deployer.retain): a swarm's unused secrets


def plan_script(instance_name, actions, boundary, limits, release, deps=None, networks=(), releases=None,
                routing=None):
    """The shell lines creating the ``networks`` missing, then running the changing
    ``actions`` of a plan, in order (new services in waves, ``waves``), each after its
    leftovers are cleared and stopped (``repair``), moving routes as ``routing`` says. A
    service in ``releases`` (service -> release command) first runs that command; a new one,
    right before its wave starts: after the services it exposes run, which a migration
    needs (its database)."""
    steps = [instance(instance_name),
             assign(DPL_HEALTH_TIMEOUT=int(limits.health_timeout), DPL_MIN_UPTIME=float(limits.min_uptime),
                    DPL_SUBNETS=limits.subnets)]
    steps += [call("dpl_network", *network.create_args(name)) + " || exit 1" for name in networks]
    dirs = [d for a in actions if a.spec and a.kind != KEEP for d in a.spec.host_dirs]
    if dirs:
        steps.append(f'mkdir -p {join(dirs)} && chmod 700 "$V" && dpl_within "$V/$I" {join(dirs)} || exit 1')
    batched = batches(actions, limits.batch)
    turns = {unit: batch[at - 1] for batch in batched.values() for at, unit in enumerate(batch) if at}
    routes = routing.lines(actions, turns) if routing else Routed()
    steps += routes.before
    if batched:
        steps.append("dpl_turns || exit 1")
    lines = _Steps(boundary, release, limits.release_timeout, routes, batched, releases or {},
                   waves(actions, deps or {}))
    for a in actions:
        lines.add(a)
    steps += lines.ordered
    for wave in sorted(lines.creates):
        steps += lines.first.get(wave, []) + together(lines.creates[wave], limits.parallel_starts)
    steps += routes.after
    if lines.late and routes.drain:
        steps.append(f"sleep {routes.drain:g}")
    steps += lines.late
    pruned = [name for a in actions for name in a.prune]
    if pruned:
        steps.append(f"dpl_remove {join(pruned)}")
    return steps


@dataclass
class _Steps:
    """The lines of a plan's actions, added in the plan's order: those that run in that
    order (``ordered``), new services' by wave (``creates``: wave -> lines, each wave after
    the release commands of its services, ``first``), removals once the rest serve
    (``late``, plan.py); ``rolled``: service -> the lines putting back, newest first, the
    replicas its roll replaced so far (run if a later one fails)."""

    boundary: str
    release: int
    release_timeout: int
    routes: "Routed"
    batched: dict  # replica -> its batch (batches())
    releases: dict  # service -> its release command
    number: dict  # new service -> its wave (waves())
    ordered: list = field(default_factory=list)
    creates: dict = field(default_factory=dict)
    first: dict = field(default_factory=dict)
    late: list = field(default_factory=list)
    rolled: dict = field(default_factory=dict)

    def add(self, a):
        """The lines of one action (its release command first, if it has one)."""
        if a.service in self.releases:
            line = _release(a.spec, self.releases[a.service], self.release_timeout, self.boundary)
            (self.first.setdefault(self.number[a.service], []) if a.kind == CREATE else self.ordered).append(line)
        if a.kind == KEEP:
            return
        if a.kind == REPAIR:
            self.ordered += ["t0=$(dpl_now)", *repair(a), call("dpl_mark", "ok", a.service) + ' "$t0" "$(dpl_now)"']
            return
        self.ordered += repair(a)
        if a.spec is None:
            (self.late if a.late else self.ordered).append(_down(a.service))
        else:
            self._start(a)

    def _start(self, a):
        """A container started: created, reused, or replacing the current one (alone, or as
        one of a batch of replicas started at once)."""
        hook = self.routes.hooks.get(a.service, "")
        labels = ["--label", f"deployer.release={self.release}"]
        if dict(a.spec.labels).get(LABEL_ROUTE):  # the route dials this container alone (route.py)
            labels += [arg for alias in route.aliases(a.spec, self.release) for arg in ("--network-alias", alias)]
        failing = _unrolling(self.rolled.get(a.spec.service, []))
        back = "dpl_again" if a.spec.start_first else "dpl_back"
        batch = self.batched.get(a.service)
        if a.spec.replica and a.kind != CREATE and a.retire:
            self._undoable(a, back, batch)
        if batch:  # one of a batch: in the background, its end said to the next (dpl_turned)
            then = f'; {call("dpl_turned", a.service)} "$?" ) & pids="$pids $!"'
            head = "pids=\n" if batch[0] == a.service else ""
            self.ordered.append(head + "( " + _replace(a, hook, labels, self.boundary, then))
            if batch[-1] == a.service:
                self.ordered.append(f"{WAITED} {_unrolling(self.rolled[a.spec.service])}")
        elif a.reuse:
            self.ordered.append(call(back + hook, a.service, a.spec.name, a.retire, a.reuse) + f" {failing}")
        elif a.kind == CREATE:
            run = _run("dpl_up" + hook, a.spec, [a.service, a.spec.name, "", *labels], a.spec.name, self.boundary,
                       '& pids="$pids $!"')
            self.creates.setdefault(self.number[a.service], []).append(run)
        else:
            self.ordered.append(_replace(a, hook, labels, self.boundary, failing))

    def _undoable(self, a, back, batch):
        """Keep the line putting a replica back on its previous container, should a later
        replica of its service fail (in a batch: only once its own turn came)."""
        undo = self.routes.undo.get(a.service, "")
        line = call(back + undo, a.service, a.spec.name, a.reuse or f"{a.spec.name}.r{self.release}", a.retire)
        line = f"{line} && {call('dpl_undone', a.service)}"
        self.rolled.setdefault(a.spec.service, []).insert(0, f"{{ ! {call('dpl_turn', a.service)} || {{ {line}; }}; }}"
                                                          if batch else line)


def _replace(action, hook, labels, boundary, then):
    """The line replacing the action's container: start-first (``dpl_first``, the new one
    named ``NAME.next`` until it takes over) where its spec allows, else stop-first (``dpl_up``)."""
    spec = action.spec
    function, name = ("dpl_first", spec.name + ".next") if spec.start_first else ("dpl_up", spec.name)
    return _run(function + hook, spec, [action.service, spec.name, action.retire, *labels], name, boundary, then)


def batches(actions, size):
    """Replica -> the batch it is replaced in (``deployer.rolling.batch``: ``size`` replicas
    of a service at once, 0: all of them), for batches of more than one: consecutive
    replacements (not reuses) of one service's replicas, in order. Their containers start
    and are checked at once; their routes move one after the other (``turns``)."""
    runs, out = [], {}
    for a in actions:
        member = a.kind == RECREATE and a.spec.replica and not a.reuse
        if member and runs and runs[-1][0].spec.service == a.spec.service:
            runs[-1].append(a)
        else:
            runs.append([a] if member else [])
    for run in runs:
        step = size or len(run) or 1
        for at in range(0, len(run), step):
            batch = tuple(a.service for a in run[at : at + step])
            out.update({unit: batch for unit in batch if len(batch) > 1})
    return out


def _unrolling(undo):
    """What a step's line does when it fails: exit, after putting back (``undo``: lines,
    newest first) the replicas of its service this roll replaced before it."""
    return f"|| {{ {' && '.join(undo)}; exit 1; }}" if undo else "|| exit 1"


@dataclass(frozen=True)
class Routed:
    """The lines of a plan that move its routes: ``before`` its steps (the router up, the
    routes that go), ``hooks`` (service -> `` --dpl-route FUNCTION`` for its step), ``after``;
    ``drain``: how long before a routed unit that goes is removed."""

    before: tuple = ()
    hooks: dict = field(default_factory=dict)
    after: tuple = ()
    undo: dict = field(default_factory=dict)  # replica -> the route hook putting its route back (a later one failed)
    drain: float = 0  # seconds requests begun on a unit of a routed service that goes have (deployer.router.drain)


@dataclass(frozen=True)
class Routing:
    """A deploy's route.Moves, and the router (route.Router) that serves them."""

    moves: route.Moves
    router: route.Router
    instance: str

    def lines(self, actions, turns=None):
        """The lines of the plan's ``actions``; a replica in ``turns`` (replica -> the one
        before it in its batch) moves its route once that one's step ended well (dpl_turn)."""
        moves, router = self.moves, self.router
        joins = [arg for name in route.networks(moves.before, moves.final) for arg in ("--dpl-join", name)]
        before = [call("dpl_router_up", route.rendered(moves.before, router), router.digest, *joins, *router.run_args())
                  + " || exit 1"]
        written = moves.before
        if moves.early != written:
            before.append(self._set(moves.early))
            written = moves.early
        hooks, undo = {}, {}
        steps = [a for a in actions if a.spec is not None and a.kind not in (KEEP, REPAIR)]
        for at, a in enumerate(steps):
            if not dict(a.spec.labels).get(LABEL_ROUTE):
                continue
            name = f"dpl_route_{len(hooks) + 1}"
            given = next(r for r in moves.final if r.instance == self.instance and r.service == a.spec.service)
            args = [network.of_instance(self.instance), given.port, given.health]
            drain = router.drain if a.spec.start_first else 0
            if a.service in moves.at:
                if a.spec.replica and any(b.spec.service == a.spec.service for b in steps[at + 1:]):
                    # the table before its step, should a later replica of its service fail
                    undo[a.service] = f" --dpl-route {name}_back"
                    before.append(self._hook(f"{name}_back", [*args, drain, route.dump(written),
                                                              route.rendered(written, router)]))
                written = moves.at[a.service]
                args += [drain, route.dump(written), route.rendered(written, router)]
            before.append(self._hook(name, args, (turns or {}).get(a.service)))
            hooks[a.service] = f" --dpl-route {name}"
        after = [self._set(moves.final)] if moves.final != written else []
        routed = {r.service for r in moves.before if r.instance == self.instance}
        going = any(a.spec is None and split(a.service)[0] in routed for a in actions)
        return Routed(tuple(before), hooks, tuple(after), undo, router.drain if going else 0)

    @staticmethod
    def _hook(name, args, after=None):
        """A route hook of the plan: ``dpl_route_move`` with the route's arguments (replace.sh);
        ``after`` a replica of its batch: its check first, then its turn (dpl_turn)."""
        wait = f'dpl_route_check "$1" {join(args[:3])} && {call("dpl_turn", after)} && ' if after else ""
        return f'{name}() {{ {wait}dpl_route_move "$1" {join(args)}; }}'


    def _set(self, table):
        return call("dpl_router_set", route.dump(table), route.rendered(table, self.router)) + " || exit 1"


def _down(unit):
    """The line removing a unit: a service, or one replica (``web.3``)."""
    service, replica = split(unit)
    return call("dpl_down", service, *([replica] if replica else [])) + " || exit 1"


def repair(action):
    """Lines clearing and stopping the leftovers a step must not run beside (plan.Leftovers)."""
    lines = [f"docker rm -f {join(action.clear)} >/dev/null || exit 1"] if action.clear else []
    if action.stop:
        lines.append(f"docker stop {join(action.stop)} >/dev/null || exit 1")
    return lines


def together(lines, size):
    """The lines running ``lines`` (each ending ``& pids="$pids $!"``) at once, ``size`` at
    a time (0: all), each batch waited for; any that failed fails the script after its batch."""
    size = size or len(lines)
    groups = (lines[at : at + size] for at in range(0, len(lines), size))
    return [line for group in groups for line in ["pids=", *group, f"{WAITED} || exit 1"]]


def waves(actions, deps):
    """Service (or replica) -> the wave its creation starts in: 0 for a new service exposing
    no other new one, else one more than the latest of those it exposes."""
    new = {a.service: a.spec.service for a in actions if a.kind == CREATE}
    services = set(new.values())

    def wave(service):
        return 1 + max((wave(d) for d in deps.get(service, ()) if d in services), default=-1)

    return {step: wave(service) for step, service in new.items()}


def _run(function, spec, head, name, boundary, then="|| exit 1"):
    """The line calling ``dpl_up``/``dpl_first`` with the spec's ``docker run`` arguments;
    its secrets go in an env file (``_secreted``), not in the arguments, which the host's
    process list shows."""
    hidden = spec.hidden_env()
    run = spec.run_args(name=name, env_file=SECRETS_FD if hidden else None)
    if spec.joins:  # dpl_run: the networks to join first, then "-d", which it drops for docker create
        run = [*(arg for net, alias in spec.joins for arg in ("--dpl-join", f"{net}={alias}")), run[0], *head[3:], *run[1:]]
        head = head[:3]
    return _secreted(f"{function} {join([*head, *run])}", hidden, boundary, then)


def _release(spec, command, seconds, boundary):
    """The line running a service's release command: a one-off container of its new spec,
    as ``run`` starts one (its secrets in an env file, as ``_run`` gives them)."""
    args = spec.one_off_args(command, SECRETS_FD if spec.hidden_env() else None)
    line = call("dpl_release", spec.service, int(seconds), *spec.one_off_joins, *args)
    return _secreted(line, spec.hidden_env(), boundary)


def _secreted(line, hidden, boundary, then="|| exit 1"):
    """A function's call line, given the ``hidden`` env vars as an env file on fd 5 (a
    here-document ending at the boundary, which no value can hold)."""
    if not hidden:
        return f"{line} {then}"
    return f"{line} {SECRETS}<<'{boundary}' {then}\n{env_file(hidden)}{boundary}"


def env_file(env):
    """An env file docker reads with --env-file: a line per variable (no line breaks in values)."""
    return "".join(f"{key}={value}\n" for key, value in env.items())


def record(state, entry, history=0, released=False):
    """Shell lines writing state.json (unless ``state`` is None) and appending the release
    ``entry`` to history.jsonl (in $D), which keeps the newest ``history`` releases (0: all).
    The entry's template text is kept once per distinct template (``templates/SHA.yaml``),
    not in every line: a large template deployed a hundred times is stored once. With
    ``released``, the entry's ``releases`` are what the script's release commands reported
    (dpl_released): only the host knows their exit codes when it writes the line."""
    line = json.dumps({k: v for k, v in entry.items() if k != "template_text"}, sort_keys=True, separators=(",", ":"))
    word = f'"{{\\"releases\\":[$dpl_released],"{q(line[1:])}' if released else q(line)
    lines = (
        (f'dpl_put "$D/state.json" {q(state.to_json())} || exit 1\n' if state is not None else "")
        + f'{call("dpl_keep_template", entry["template_sha256"], entry["template_text"])} || exit 1\n'
        f'dpl_line={word}\n'
        'dpl_trace append "$D/history.jsonl" $((${#dpl_line} + 1))\n'
        '(umask 077 && printf "%s\\n" "$dpl_line" >>"$D/history.jsonl") || exit 1'
    )
    if history:
        lines += f"\n{call('dpl_trim_history', int(history))} || exit 1"
    return lines


class Deploy:
    """The second turn of a locked deploy: send the plan, learn what was done."""

    def __init__(self, host, session, boundary, instance_name, facts):
        self.host, self.session, self.boundary, self.instance, self.facts = host, session, boundary, instance_name, facts
        self.finished = False
        self.seconds = {}  # service -> seconds its step took on the host
        self.released = ()  # Released: each release command run, in order
        self.back = frozenset()  # replicas put back after a later one of their service failed (dpl_undone)
        self.notes = ()  # warnings the host gave while applying (a swarm's: nodes lacking an image)

    def apply(self, actions, final_state=None, entry=None, template_text="", deps=None, registry=None, networks=(),
              releases=None, held=None, moves=None):
        """Create the missing ``networks``, run the changing actions in order (a service in
        ``releases`` after its release command, moving routes as ``moves`` says), then write
        template, state and history (and
        the ``registry`` transaction to etcd, if any). Without ``final_state`` nothing is
        recorded: only leftovers were repaired, and the state describes what runs.

        ``held(ok, done)``, if given, is called once the plan has run (``ok``: all of it),
        while the host still holds the lock: the script waits for the client's end (see
        converse.sh), so no other deploy can start before ``held`` returns (post hooks).

        Returns the services whose action succeeded and the error that stopped the rest
        (None when all succeeded), so the caller can record what really runs.
        """
        settings = self.host.settings
        limits = Limits(settings.health_timeout, settings.min_uptime, settings.history, settings.parallel_starts,
                        settings.subnets, settings.release_timeout, settings.rolling_batch, settings.retain)
        release = final_state.release if final_state else 0
        routing = Routing(moves, settings.router, self.instance) if moves else None
        steps = self.plan(actions, limits, release, deps, networks, releases, routing)
        if final_state:
            steps += self.recording(final_state, entry, template_text, limits.history, bool(releases))
        if registry:
            steps.append(self._registry(registry))
        self.host.report("apply", actions)
        self._send("\n".join(steps))
        head = ""
        if held is not None:
            ran = self.session.read_mark("ran")
            head = ran[0] if ran else ""
            held(ran is not None and ran[1] == ["0"], self._done(head))
        result = self.finish()
        done = self._done(head + result.stdout)
        self.host.report("applied", *done)
        return done, None if result.exited == 0 else self.host.error(result, self.instance)

    def _done(self, stdout):
        """The services whose step the script marked done (and the release commands it ran)."""
        marks = [mark.split() for mark in sections(stdout, self.boundary)["_marks"]]
        self.seconds = {m[0]: elapsed(*m[1:]) for m in marks}
        self.released = tuple(Released(service, int(code), elapsed(t0, t1))
                              for service, code, t0, t1 in marked(stdout, self.boundary, "released"))
        self.back = frozenset(m[0] for m in marked(stdout, self.boundary, "back"))
        return {m[0] for m in marks} - self.back

    def plan(self, actions, limits, release, deps, networks, releases=None, routing=None):
        """The shell lines of the plan (a hook: the swarm engine's are services')."""
        return plan_script(self.instance, actions, self.boundary, limits, release, deps, networks, releases, routing)

    def recording(self, state, entry, template_text, history, released=False):
        """The lines recording the release (a hook: a swarm's cluster keeps it)."""
        return [f'dpl_put "$D/template.yaml" {q(template_text)} || exit 1', record(state, entry, history, released)]

    def register(self, registry):
        """Bring etcd up to date, when nothing else changed (etcd lost or missed keys)."""
        self._send(f"{instance(self.instance)}\n{self._registry(registry)}")
        result = self.finish()
        if result.exited != 0:
            raise self.host.error(result, self.instance)

    def _registry(self, transaction):
        """Lines running the etcd transaction, after keeping in the instance's directory what
        destroy needs to remove its keys (even if the destroying side has no etcd settings)."""
        etcd = self.host.etcd
        urls = " ".join(etcd.urls)
        forget = f"{urls}\n{etcd.delete_request(self.instance, self.facts.host_id)}\n"
        return f"{assign(E=urls)}\n{call('dpl_register', forget, transaction)} || exit 1"

    def _send(self, body):
        """A turn's script as converse.sh reads it: its size in bytes, a line, then itself,
        ending with the end line (its absence says the client went away while sending)."""
        text = f"{body}\n# {self.boundary} end\n"
        self.session.send(f"{len(text.encode())}\n{text}")

    def finish(self):
        """Close the conversation: the script ends, and with it the lock."""
        self.finished = True
        return self.session.finish()
