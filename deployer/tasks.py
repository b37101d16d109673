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

__all__ = ["deploy", "list_instances", "status", "destroy", "validate"]


@contextmanager
def user_errors():
    """Turn a DeployerError into one line on stderr and its exit code, no traceback."""
    try:
        yield
    except DeployerError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None


@task(
    auto_shortflags=False,
    help={
        "template": "the template file (YAML)",
        "instance": "the instance's name, e.g. staging",
        "force": "recreate every service, changed or not",
        "dry-run": "print the plan (what would change and why), change nothing",
    },
)
def deploy(c, template, instance=None, force=False, dry_run=False):
    """Deploy a template to the host as an instance; only services that changed are recreated."""
    if not instance:
        raise Exit("error: deploy needs the instance's name: --instance NAME", code=EXIT_USAGE)
    with user_errors():
        result = instances.deploy(Host.for_context(c), template, instance, force=force, dry_run=dry_run)
        output.deployed(result, dry_run=dry_run)


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


@task(auto_shortflags=False, help={"volumes": "also delete the instance's volume directories"})
def destroy(c, instance, volumes=False):
    """Remove an instance's containers and state; its volumes are kept unless --volumes."""
    with user_errors():
        host = Host.for_context(c)
        instances.destroy(host, instance, volumes)
        output.destroyed(host.name, instance, volumes)


@task
def validate(c, template):
    """Check a template without any host (for CI): exits 2 with the first error."""
    with user_errors():
        output.valid(instances.validate(template))


ns = Collection(deploy, list_instances, status, destroy, validate)
ns.configure({"deployer": {"state_dir": None, "volume_dir": None}})
