"""The Fabric tasks: parse arguments, call deployer.instance, print through output.

Run them with ``fab -H web1 deploy app.yaml --instance customer1`` (this repo's
fabfile), the ``deployer`` command, or import them into your own fabfile::

    from deployer.tasks import *          # deploy, list, status, destroy, validate

Without ``-H`` a task gets a plain invoke Context and works on the local Docker engine.
Settings are read with fallbacks, so tasks imported flat (without this module's
collection and its defaults) still work.
"""

from contextlib import contextmanager

from invoke import Collection, Exit, task

from . import instance as instances
from . import output
from .errors import EXIT_USAGE, DeployerError
from .host import Host

__all__ = ["deploy", "redeploy", "rollback", "history", "prune", "list_instances", "status", "destroy", "validate"]


@contextmanager
def user_errors():
    """Turn a DeployerError into one line on stderr and its exit code, no traceback."""
    try:
        yield
    except DeployerError as e:
        raise Exit("\n".join([f"error: {e}", *(f"  | {line}" for line in e.details)]), code=e.exit_code) from None


DEPLOY_HELP = {
    "force": "recreate every service, changed or not",
    "dry-run": "print the plan (what would change and why), change nothing",
    "lock-wait": "seconds to wait for another deploy of the instance to finish (default 60)",
}


@task(
    auto_shortflags=False,
    help={"template": "the template file (YAML)", "instance": "the instance's name, e.g. staging", **DEPLOY_HELP},
)
def deploy(c, template, instance=None, force=False, dry_run=False, lock_wait=None):
    """Deploy a template to the host as an instance; only services that changed are recreated."""
    if not instance:
        raise Exit("error: deploy needs the instance's name: --instance NAME", code=EXIT_USAGE)
    with user_errors():
        result = instances.deploy(Host.for_context(c), template, instance, force, dry_run, _seconds(lock_wait))
        output.deployed(result, dry_run=dry_run)


@task(auto_shortflags=False, help=DEPLOY_HELP)
def redeploy(c, instance, force=False, dry_run=False, lock_wait=None):
    """Apply again the template the host holds for the instance (no local YAML needed)."""
    with user_errors():
        result = instances.redeploy(Host.for_context(c), instance, force, dry_run, _seconds(lock_wait))
        output.deployed(result, dry_run=dry_run)


@task(
    auto_shortflags=False,
    help={"to": "the release to go back to (default: the previous one)", "dry-run": DEPLOY_HELP["dry-run"],
          "lock-wait": DEPLOY_HELP["lock-wait"]},
)
def rollback(c, instance, to=None, dry_run=False, lock_wait=None):
    """Go back to the previous release (or --to N): env, images and all."""
    with user_errors():
        result = instances.rollback(Host.for_context(c), instance, _number("--to", to), dry_run, _seconds(lock_wait))
        output.deployed(result, dry_run=dry_run)


@task(auto_shortflags=False)
def history(c, instance):
    """List the instance's releases: number, time, who, what changed."""
    with user_errors():
        output.history(instances.history(Host.for_context(c), instance))


@task(auto_shortflags=False, help={"lock-wait": DEPLOY_HELP["lock-wait"]})
def prune(c, instance, lock_wait=None):
    """Remove the instance's retained (replaced, stopped) containers; other instances are untouched."""
    with user_errors():
        host = Host.for_context(c)
        output.pruned(host.name, instance, instances.prune(host, instance, _seconds(lock_wait)))


def _number(flag, value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise Exit(f"error: {flag} expects a whole number, got {value!r}", code=EXIT_USAGE) from None


def _seconds(value):
    return _number("--lock-wait", value)


@task(name="list")
def list_instances(c):
    """List the instances on the host, from its state files alone."""
    with user_errors():
        host = Host.for_context(c)
        output.instances(host.name, host.instances())


@task(auto_shortflags=False)
def status(c, instance):
    """Show an instance's services: containers, running or not, ports, volumes."""
    with user_errors():
        output.status(instances.status(Host.for_context(c), instance))


@task(
    auto_shortflags=False,
    help={"volumes": "also delete the instance's volume directories", "lock-wait": DEPLOY_HELP["lock-wait"]},
)
def destroy(c, instance, volumes=False, lock_wait=None):
    """Remove an instance's containers and state; its volumes are kept unless --volumes."""
    with user_errors():
        host = Host.for_context(c)
        instances.destroy(host, instance, volumes, _seconds(lock_wait))
        output.destroyed(host.name, instance, volumes)


@task
def validate(c, template):
    """Check a template without any host (for CI): exits 2 with the first error."""
    with user_errors():
        output.valid(instances.validate(template))


ns = Collection(deploy, redeploy, rollback, history, prune, list_instances, status, destroy, validate)
ns.configure({"deployer": {"state_dir": None, "volume_dir": None, "retain": None, "lock_wait": None}})
