"""Converging: plan what an instance should run against the engine's facts, under the
instance's lock, and apply it; record what really runs when a step fails.

Settings (``retain``, ``lock_wait``, ...) come from the engine's Settings; arguments
(``--lock-wait``) beat them. Returns data for output.py; nothing prints.
"""

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import DeployerError, plural
from ..engine import Released
from ..model import route
from ..model.plan import KEEP, REPAIR, plan, releasing
from ..model.state import InstanceState
from .instance import waiting, who


@dataclass(frozen=True)
class Deployed:
    host: str
    instance: str
    release: int
    actions: tuple
    seconds: float
    applied: bool = True  # False: a dry run, or nothing to change
    notes: tuple = ()  # warnings for the user (e.g. uncommitted changes left out of a build)
    step_seconds: dict = dataclasses.field(default_factory=dict)  # service -> seconds its step took
    releases: tuple = ()  # engine.Released: the release commands run (in a dry run: that would run)
    hooks: tuple = ()  # hooks.Ran: the hooks run around it (ops/hooks.py)
    routes: tuple = ()  # the route changes, in route.Moves.said's words


@dataclass(frozen=True)
class Desired:
    """What an instance should run: specs, the image id each reference should be, and
    where that came from (a template file, or a release from the history)."""

    specs: tuple
    images: dict
    template_text: str
    source: str
    variables: dict
    secrets: dict
    endpoints: dict = dataclasses.field(default_factory=dict)  # "svc:ep" -> Endpoint.to_dict()
    deps: dict = dataclasses.field(default_factory=dict)  # service -> services it exposes
    networks: tuple = ()  # the instance's networks to create before its containers
    releases: dict = dataclasses.field(default_factory=dict)  # service -> its release command (template)
    routes: dict = dataclasses.field(default_factory=dict)  # service -> its route (domains, port, health)
    scale: dict = dataclasses.field(default_factory=dict)  # service -> replicas, as `scale` set it


def converge(host, instance, images, desire, options, note, discovery_used=False, built=(), networks=(),
             routed=False, post=None):
    """Plan ``desire(facts)`` against the host under the instance's lock and apply it;
    ``built`` are images deployer builds itself (never pulled); ``networks`` those the
    facts say exist or not; ``routed``: the instance has routes (the router's lock).

    ``post(ok, changed, release)`` (the post hook, ops/hooks.py) is called once the plan
    has run, or the deploy failed, while the host still holds the lock; not when nothing
    changed. (A dry run takes no lock: it is called when something would change.) It may
    be called twice (a failed apply, then its error): the hook runs once. Without it (no
    post hook) the host releases the lock as soon as the plan has run."""
    started = time.monotonic()
    if options.dry_run:
        return _dry_run(host, instance, images, desire, options, discovery_used, networks, post, started)
    lock_wait = waiting(host, options.lock_wait)
    pull = tuple(image for image in images if image not in built) if options.pull else ()
    with host.deploying(instance, images, who(), lock_wait, pull, discovery_used, networks, routed) as session:
        try:
            return _locked(host, instance, session, desire(session.facts), options, note, post, started)
        except DeployerError:
            if post:
                post(False, (), session.facts.state.release if session.facts.state else "")
            raise


def _dry_run(host, instance, images, desire, options, discovery_used, networks, post, started):
    """The plan, the route changes and the release commands that would run; nothing
    locked, nothing changed."""
    facts = host.facts(instance, images, discovery_used, networks, routes=True)
    want = host.sealed(instance, desire(facts))
    actions = plan(want.specs, facts.state, facts.containers, want.images, options.force, host.settings.retain)
    release = facts.state.release if facts.state else 0
    moves = _moves(host, instance, facts, want, actions, release + 1)
    would = releasing(actions, want.releases, facts.state, want.images, options.force)
    if post and (changed := [a.service for a in actions if a.kind != KEEP]):
        post(True, changed, release)
    return Deployed(host.name, instance, release, actions, time.monotonic() - started, applied=False,
                    releases=tuple(Released(service, command=tuple(argv)) for service, argv in would.items()),
                    routes=tuple(moves.said()))


def _locked(host, instance, session, want, options, note, post, started):
    """Plan and apply under the lock (a new release, unless only leftovers are repaired or
    routes put back)."""
    facts = session.facts
    host.conceal([*want.secrets.values(), *(facts.state.secrets.values() if facts.state else ())])
    want = host.sealed(instance, want)
    actions = plan(want.specs, facts.state, facts.containers, want.images, options.force, host.settings.retain)
    previous = facts.state or InstanceState(instance, want.source, 0, "", "")
    registry = host.etcd and host.etcd.update(want.endpoints, instance, facts, host.hostname)
    moves = _moves(host, instance, facts, want, actions, previous.release + 1)
    if all(a.kind in (KEEP, REPAIR) for a in actions) and _recorded(facts.state, want.specs) and not moves.changed:
        if any(a.kind == REPAIR for a in actions) or moves:  # the state describes what runs: no new release
            held = post and (lambda ok, done: post(ok, _in_order(actions, done), previous.release))
            error = session.apply(actions, deps=want.deps, registry=registry, networks=want.networks, held=held,
                                  moves=moves or None)[1]
            if error:
                raise error.where(instance=instance)
        elif registry:
            session.register(registry)
        return Deployed(host.name, instance, previous.release, actions, time.monotonic() - started, applied=False,
                        step_seconds=session.seconds)
    release = dict(
        template=want.source,
        release=previous.release + 1,
        deployed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        deployed_by=who(),
        variables=want.variables,
        secrets=want.secrets,
        endpoints=want.endpoints,
        routes=want.routes,
        scale=want.scale,
    )
    removed = {a.service for a in actions if a.spec is None}
    final = previous.applied(want.specs, removed, want.images, **release)
    record = final.record(actions, want.template_text, note)
    releases = releasing(actions, want.releases, facts.state, want.images, options.force)

    def held(ok, done):  # a failed deploy that changed something is recorded as a release too (_partial)
        post(ok, _in_order(actions, done), final.release if ok or done else previous.release)

    done, error = session.apply(actions, final, record, want.template_text, want.deps, registry, want.networks,
                                releases, held if post else None, moves or None)
    if error:
        complete = all(a.service in done for a in actions if a.kind != KEEP)
        release["routes"] = route.given(moves.held(done, complete), instance)  # what the router serves of it now
        raise _partial(host, instance, previous, actions, done, want, release, note, error, session.released,
                       session.back)
    return Deployed(host.name, instance, final.release, actions, time.monotonic() - started, notes=session.notes,
                    step_seconds=session.seconds, releases=session.released, routes=tuple(moves.said()))


def _in_order(actions, done):
    """The services done, in the plan's order (the post hook's DEPLOYER_CHANGED)."""
    return [a.service for a in actions if a.service in done]


def _moves(host, instance, facts, want, actions, release):
    """How the deploy moves the host's route table (route.moves); a domain another instance
    holds is an error naming the host too."""
    try:
        return route.moves(facts.routes, instance, want.routes, actions, facts.containers, release)
    except DeployerError as e:
        raise e.where(host=host.name, instance=instance) from None


def _recorded(state, specs):
    """Whether the state describes these specs (it may not, when writing it failed before:
    the containers match, yet the state must still be written)."""
    return state is not None and {n: s.config_hash for n, s in state.services.items()} == {
        s.unit: s.config_hash for s in specs
    }


def _partial(host, instance, previous, actions, done, want, release, note, error, released=(), back=()):
    """Record what did change before the failure, so the state still describes what runs.
    A first deploy that changed nothing leaves no state, but its history says what
    happened: an attempt, release 0, which no rollback goes back to; so does a deploy that
    changed nothing but ran a release command (a migration that failed halfway did change
    something: the history keeps its exit code)."""
    steps = [a for a in actions if a.kind != KEEP]
    failed = next((a for a in steps if a.service not in done and a.service not in back), None)  # back: put back
    if done or not previous.release or released:
        started = [a.spec for a in steps if a.spec and a.service in done]
        removed = {a.service for a in steps if a.spec is None and a.service in done}
        state = previous.applied(started, removed, want.images, **release)
        if not done:
            state, note = dataclasses.replace(state, release=0), error.message
        record = state.record(steps, want.template_text, note, failed=failed.service if failed else "recording")
        record["releases"] = [r.to_dict() for r in released]
        try:
            host.write_state(instance, state if done else None, record, host.settings.history)
        except DeployerError:
            pass  # the deploy's own error says more; the labels on containers still tell
    if failed is None:
        made = plural(len(steps), "change")
        error.message = f"every change was made ({made}), but recording them failed: {error.message}"
    else:
        error.message = (
            f"deploy stopped at service {failed.service!r} ({failed.kind}): {error.message}; "
            f"{len(done)} of {plural(len(steps), 'change')} made, the other services run as before"
        )
    return error
