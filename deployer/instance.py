"""What a user does to an instance on a host: deploy, status, list, destroy, validate.

The glue between the pure core (template -> specs -> plan) and the Host. Each function
takes a Host and returns data for output.py; none prints.
"""

import getpass
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from . import plugins, template as templates
from .errors import DeployerError
from .plan import KEEP, plan
from .spec import render
from .state import InstanceState, check_instance_name


@dataclass(frozen=True)
class Deployed:
    host: str
    instance: str
    release: int
    actions: tuple
    seconds: float
    applied: bool = True  # False: a dry run, or nothing to change


@dataclass(frozen=True)
class Status:
    host: str
    instance: str
    state: InstanceState | None
    containers: tuple


def validate(template_path):
    """Load and render the template for a throwaway instance: every template error, no host."""
    template = templates.load(template_path)
    render(template, "validate", "/volumes", plugins.installed())
    return template


def deploy(host, template_path, instance, force=False, dry_run=False):
    """Bring the instance to the template: only services that changed are recreated."""
    started = time.monotonic()
    check_instance_name(instance)
    template = templates.load(template_path)
    facts = host.facts(instance, tuple(dict.fromkeys(s.image for s in template.services)))
    specs = render(template, instance, facts.roots.volume_dir, plugins.installed())
    actions = plan(specs, facts.state, facts.containers, facts.images, force)
    previous = facts.state or InstanceState(instance, str(template_path), 0, "", "")
    if dry_run or all(a.kind == KEEP for a in actions):
        return Deployed(host.name, instance, previous.release, actions, time.monotonic() - started, applied=False)
    release = dict(
        template=str(template_path),
        release=previous.release + 1,
        deployed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        deployed_by=f"{getpass.getuser()}@{socket.gethostname()}",
    )
    removed = {a.service for a in actions if a.spec is None}
    final = previous.applied(specs, removed, facts.images, **release)
    done, error = host.apply(instance, actions, final, template.text)
    if error:
        raise _partial(host, instance, previous, actions, done, facts.images, release, error)
    return Deployed(host.name, instance, final.release, actions, time.monotonic() - started)


def _partial(host, instance, previous, actions, done, images, release, error):
    """Record what did change before the failure, so the state still describes what runs."""
    steps = [a for a in actions if a.kind != KEEP]
    failed = next(a for a in steps if a.service not in done)
    if done:
        started = [a.spec for a in steps if a.spec and a.service in done]
        removed = {a.service for a in steps if a.spec is None and a.service in done}
        try:
            host.write_state(instance, previous.applied(started, removed, images, **release))
        except DeployerError:
            pass  # the deploy's own error says more; the labels on containers still tell
    error.message = (
        f"deploy stopped at service {failed.service!r} ({failed.kind}): {error.message}; "
        f"{len(done)} of {len(steps)} changes were made, the other services run as before"
    )
    return error


def status(host, instance):
    check_instance_name(instance)
    facts = host.facts(instance)
    if facts.state is None and not facts.containers:
        raise DeployerError("no such instance on this host", host=host.name, instance=instance)
    return Status(host.name, instance, facts.state, facts.containers)


def destroy(host, instance, volumes=False):
    check_instance_name(instance)
    if not host.destroy(instance, volumes):
        raise DeployerError("no such instance on this host", host=host.name, instance=instance)
