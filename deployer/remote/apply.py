"""Applying a plan: the second turn of a locked deploy, and the script a plan compiles to.

``plan_script`` is pure (actions in, shell lines out: golden-tested like Kamal's command
tests); ``Deploy`` sends it to the script that holds the lock and reads back which steps
were done (``ok SERVICE T0 T1`` marks). Steps run in the plan's order, except that new
services start at once, in waves: each after the services it exposes.
"""

import json
from dataclasses import dataclass

from ..model import network
from ..model.plan import CREATE, KEEP, REPAIR
from .framing import elapsed, sections
from .scripts import assign, call, instance, join, q

# The descriptor on which docker reads an env file of secrets (--env-file /dev/fd/5).
SECRETS = 5
SECRETS_FD = f"/dev/fd/{SECRETS}"
USES = ("replace", "network", "discovery", "guard")  # the sources a plan's script calls


@dataclass(frozen=True)
class Limits:
    """How a deploy waits for new containers, how many releases its history keeps, and
    where its networks' addresses come from once Docker's pools are used up."""

    health_timeout: int
    min_uptime: float
    history: int  # 0: all
    parallel_starts: int = 8  # new containers starting at once, at most (0: no limit)
    subnets: str = "10.211.0.0/16"  # the setting deployer.subnets


def plan_script(instance_name, actions, boundary, limits, release, deps=None, networks=()):
    """The shell lines creating the ``networks`` missing, then running the changing
    ``actions`` of a plan, in order (new services in waves, ``waves``), each after its
    leftovers are cleared and stopped (``repair``)."""
    steps = [instance(instance_name),
             assign(DPL_HEALTH_TIMEOUT=int(limits.health_timeout), DPL_MIN_UPTIME=float(limits.min_uptime),
                    DPL_SUBNETS=limits.subnets)]
    steps += [call("dpl_network", *network.create_args(name)) + " || exit 1" for name in networks]
    dirs = [d for a in actions if a.spec and a.kind != KEEP for d in a.spec.host_dirs]
    if dirs:
        steps.append(f'mkdir -p {join(dirs)} && chmod 700 "$V" && dpl_within "$V/$I" {join(dirs)} || exit 1')
    labels = ["--label", f"deployer.release={release}"]
    creates = {}  # wave -> commands: new services start at once, after those they expose
    number = waves(actions, deps or {})
    for a in actions:
        if a.kind == KEEP:
            continue
        if a.kind == REPAIR:
            steps += ["t0=$(dpl_now)", *repair(a), call("dpl_mark", "ok", a.service) + ' "$t0" "$(dpl_now)"']
            continue
        steps += repair(a)
        if a.spec is None:
            steps.append(call("dpl_down", a.service) + " || exit 1")
        elif a.reuse:
            function = "dpl_again" if a.spec.start_first else "dpl_back"
            steps.append(call(function, a.service, a.spec.name, a.retire, a.reuse) + " || exit 1")
        elif a.kind == CREATE:
            run = _run("dpl_up", a.spec, [a.service, a.spec.name, "", *labels], a.spec.name, boundary, '& pids="$pids $!"')
            creates.setdefault(number[a.service], []).append(run)
        elif a.spec.start_first:
            steps.append(_run("dpl_first", a.spec, [a.service, a.spec.name, a.retire, *labels], a.spec.name + ".next", boundary))
        else:
            steps.append(_run("dpl_up", a.spec, [a.service, a.spec.name, a.retire, *labels], a.spec.name, boundary))
    size = limits.parallel_starts or None
    for wave in sorted(creates):
        for at in range(0, len(creates[wave]), size or len(creates[wave])):
            batch = creates[wave][at : at + size] if size else creates[wave]
            steps += ["pids=", *batch, 'failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1']
    pruned = [name for a in actions for name in a.prune]
    if pruned:
        steps.append(f"dpl_remove {join(pruned)}")
    return steps


def repair(action):
    """Lines clearing and stopping the leftovers a step must not run beside (plan.Leftovers)."""
    lines = [f"docker rm -f {join(action.clear)} >/dev/null || exit 1"] if action.clear else []
    if action.stop:
        lines.append(f"docker stop {join(action.stop)} >/dev/null || exit 1")
    return lines


def waves(actions, deps):
    """Service -> the wave its creation starts in: 0 for a new service exposing no other new
    one, else one more than the latest of those it exposes."""
    new = {a.service for a in actions if a.kind == CREATE}

    def wave(service):
        return 1 + max((wave(d) for d in deps.get(service, ()) if d in new), default=-1)

    return {service: wave(service) for service in new}


def _run(function, spec, head, name, boundary, then="|| exit 1"):
    """The line calling ``dpl_up``/``dpl_first`` with the spec's ``docker run`` arguments;
    its secrets go in an env file on fd 5 (a here-document ending at the boundary, which no
    value can hold), not in the arguments, which the host's process list shows."""
    hidden = spec.hidden_env()
    run = spec.run_args(name=name, env_file=SECRETS_FD if hidden else None)
    if spec.joins:  # dpl_run: the networks to join first, then "-d", which it drops for docker create
        run = [*(arg for net, alias in spec.joins for arg in ("--dpl-join", f"{net}={alias}")), run[0], *head[3:], *run[1:]]
        head = head[:3]
    args = join([*head, *run])
    if not hidden:
        return f"{function} {args} {then}"
    return f"{function} {args} {SECRETS}<<'{boundary}' {then}\n{env_file(hidden)}{boundary}"


def env_file(env):
    """An env file docker reads with --env-file: a line per variable (no line breaks in values)."""
    return "".join(f"{key}={value}\n" for key, value in env.items())


def record(state, entry, history=0):
    """Shell lines writing state.json (unless ``state`` is None) and appending the release
    ``entry`` to history.jsonl (in $D), which keeps the newest ``history`` releases (0: all).
    The entry's template text is kept once per distinct template (``templates/SHA.yaml``),
    not in every line: a large template deployed a hundred times is stored once."""
    line = json.dumps({k: v for k, v in entry.items() if k != "template_text"}, sort_keys=True, separators=(",", ":"))
    lines = (
        (f'dpl_put "$D/state.json" {q(state.to_json())} || exit 1\n' if state is not None else "")
        + f'{call("dpl_keep_template", entry["template_sha256"], entry["template_text"])} || exit 1\n'
        f'dpl_trace append "$D/history.jsonl" {len(line.encode()) + 1}\n'
        f'(umask 077 && printf "%s\\n" {q(line)} >>"$D/history.jsonl") || exit 1'
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

    def apply(self, actions, final_state=None, entry=None, template_text="", deps=None, registry=None, networks=()):
        """Create the missing ``networks``, run the changing actions in order, then write
        template, state and history (and
        the ``registry`` transaction to etcd, if any). Without ``final_state`` nothing is
        recorded: only leftovers were repaired, and the state describes what runs.

        Returns the services whose action succeeded and the error that stopped the rest
        (None when all succeeded), so the caller can record what really runs.
        """
        settings = self.host.settings
        limits = Limits(settings.health_timeout, settings.min_uptime, settings.history, settings.parallel_starts,
                        settings.subnets)
        release = final_state.release if final_state else 0
        steps = self.plan(actions, limits, release, deps, networks)
        if final_state:
            steps += self.recording(final_state, entry, template_text, limits.history)
        if registry:
            steps.append(self._registry(registry))
        self.host.report("apply", actions)
        result = self.finish("\n".join(steps))
        marks = [mark.split() for mark in sections(result.stdout, self.boundary)["_marks"]]
        self.seconds = {m[0]: elapsed(*m[1:]) for m in marks}
        done = {m[0] for m in marks}
        self.host.report("applied", *done)
        return done, None if result.exited == 0 else self.host.error(result, self.instance)

    def plan(self, actions, limits, release, deps, networks):
        """The shell lines of the plan (a hook: the swarm engine's are services')."""
        return plan_script(self.instance, actions, self.boundary, limits, release, deps, networks)

    def recording(self, state, entry, template_text, history):
        """The lines recording the release (a hook: a swarm's cluster keeps it)."""
        return [f'dpl_put "$D/template.yaml" {q(template_text)} || exit 1', record(state, entry, history)]

    def register(self, registry):
        """Bring etcd up to date, when nothing else changed (etcd lost or missed keys)."""
        result = self.finish(f"{instance(self.instance)}\n{self._registry(registry)}")
        if result.exited != 0:
            raise self.host.error(result, self.instance)

    def _registry(self, transaction):
        """Lines running the etcd transaction, after keeping in the instance's directory what
        destroy needs to remove its keys (even if the destroying side has no etcd settings)."""
        etcd = self.host.etcd
        urls = " ".join(etcd.urls)
        forget = f"{urls}\n{etcd.delete_request(self.instance, self.facts.host_id)}\n"
        return f"{assign(E=urls)}\n{call('dpl_register', forget, transaction)} || exit 1"

    def finish(self, body):
        self.finished = True
        if body:
            self.session.send(f"{body}\n# {self.boundary} end\n")
        return self.session.finish()
