"""The Fabric tasks: parse arguments, call the use cases (ops/), print through cli/output.

Run them with ``fab -H web1 deploy:app.yaml,instance=customer1`` or ``fab -H web1 deploy
app.yaml --instance customer1`` (this repo's fabfile), the ``deployer`` command, or import
them into your own fabfile::

    from deployer.tasks import *          # deploy, list, status, destroy, validate

Importing this module has plain ``fab`` read the classic form and the words after ``--``
(deployer/classic.py).

Without ``-H`` a task gets a plain invoke Context and works on the local Docker engine.
Settings are read with fallbacks, so tasks imported flat (without this module's
collection and its defaults) still work.
"""

import shlex
import sys
from contextlib import contextmanager

from invoke import Collection, Exit, task

from . import classic
from .cli import live, output
from .engine import connect
from .errors import EXIT_USAGE, DeployerError
from .model import route
from .model.variables import assignments, load_vars_file, secrets_source
from .ops import deploy as deploying, hooks, instance as instances
from .remote.host import logs_options
from .remote.piped import piped
from .settings import Settings, declared

__all__ = [
    "deploy", "redeploy", "scale", "rollback", "history", "endpoints", "logs", "run_once", "exec_in", "stop", "start", "restart",
    "prune", "list_instances", "status", "destroy", "validate", "import_compose", "routes", "router",
]


@contextmanager
def user_errors(c=None):
    """Turn a DeployerError into one line on stderr and its exit code, no traceback; and
    with ``deployer.quiet`` (-q) print nothing else."""
    try:
        settings = Settings.of(c.config) if c is not None else Settings()
        if settings.quiet:
            output.QUIET.set()
        yield settings
    except DeployerError as e:
        lines = [f"error: {e}", *(f"  | {line}" for line in e.details)]
        raise Exit(output.masked("\n".join(lines)), code=e.exit_code) from None


INSTANCE_HELP = "the instance's name, e.g. staging"
SERVICE_HELP = "the service's name in the template; a replica: web.2 (web alone: its first)"
INPUT_HELP = {
    "var": "a variable of the instance, NAME=VALUE (repeatable); kept in its state",
    "vars": "a YAML file of variables",
    "secrets": "a dotenv file of secrets (NAME=value), over the environment's",
}
JSON_HELP = "print one JSON document (README.rst documents its keys)"
DEPLOY_HELP = {
    "json": JSON_HELP,
    "force": "recreate every service, changed or not",
    "dry-run": "print the plan (what would change and why), change nothing",
    "pull": "pull the images first; services whose image changed are recreated",
    "lock-wait": "seconds to wait for another deploy of the instance to finish (default 60)",
    "no-hooks": "run none of the hooks (template's Hooks, deployer.hooks.*)",
}
DIRTY_HELP = "git services: deploy the work tree as it is (uncommitted and untracked files too), not the commit"


@task(
    auto_shortflags=False,
    iterable=["var"],
    help={
        "template": "the template file (YAML)",
        "instance": INSTANCE_HELP,
        "dirty": DIRTY_HELP,
        **DEPLOY_HELP,
        **INPUT_HELP,
    },
)
def deploy(c, template, instance=None, force=False, dry_run=False, pull=False, lock_wait=None,
           var=None, vars=None, secrets=None, json=False, dirty=False, no_hooks=False):
    """Deploy a template to the host as an instance; only services that changed are recreated."""
    if not instance:
        raise Exit("error: deploy needs the instance's name: --instance NAME", code=EXIT_USAGE)
    with user_errors(c) as settings:
        options = deploying.Options(force, dry_run, pull, _seconds(lock_wait), dirty, output.build_progress(),
                                    not no_hooks)
        host = _host(c, settings, rows=not json)
        return _shown(deploying.deploy(host, template, instance, options, _inputs(var, vars, secrets)), dry_run, json,
                      host)


@task(auto_shortflags=False, iterable=["var"], help={"instance": INSTANCE_HELP, **DEPLOY_HELP, **INPUT_HELP})
def redeploy(c, instance, force=False, dry_run=False, pull=False, lock_wait=None, var=None, vars=None, secrets=None,
             json=False, no_hooks=False):
    """Apply again the template the host holds for the instance, with its variables (no local YAML needed)."""
    with user_errors(c) as settings:
        options = deploying.Options(force, dry_run, pull, _seconds(lock_wait), progress=output.build_progress(),
                                    hooks=not no_hooks)
        host = _host(c, settings, rows=not json)
        return _shown(deploying.redeploy(host, instance, options, _inputs(var, vars, secrets)), dry_run, json, host)


@classic.gathers("counts")
@task(auto_shortflags=False, help={"instance": INSTANCE_HELP, "counts": "SERVICE=N words after the instance (web=5 worker=1)",
                                   **{k: DEPLOY_HELP[k] for k in ("dry-run", "lock-wait", "json", "no-hooks")}})
def scale(c, instance, counts=None, dry_run=False, lock_wait=None, json=False, no_hooks=False):
    """Run N replicas of services (web=5 worker=1): kept in the state, a release rollback undoes."""
    with user_errors(c) as settings:
        wanted = _counts(counts)
        options = deploying.Options(dry_run=dry_run, lock_wait=_seconds(lock_wait), progress=output.build_progress(),
                                    hooks=not no_hooks)
        host = _host(c, settings, rows=not json)
        return _shown(deploying.scale(host, instance, wanted, options), dry_run, json, host)


def _counts(words):
    """``web=5 worker=1`` -> ``{"web": 5, "worker": 1}``; anything else is a usage error."""
    counts = {}
    for word in (words or "").split():
        service, _, count = word.partition("=")
        if not service or not count.isdigit() or int(count) < 1:
            raise Exit(f"error: scale: {word!r}: expected SERVICE=N, N a whole number from 1", code=EXIT_USAGE)
        counts[service] = int(count)
    if not counts:
        raise Exit("error: scale: give SERVICE=N for each service to scale (web=5 worker=1)", code=EXIT_USAGE)
    return counts


def _shown(result, dry_run, as_json, host):
    """A deploy's result printed; then a post hook's failure is the task's (exit 1)."""
    output.deployed(result, dry_run, as_json, host.listener)
    hooks.check(result)
    return result


def _host(c, settings, rows=False):
    """The task's host, what its scripts report shown as it arrives (waits, -v's commands,
    and with ``rows`` a deploy's rows as its steps are done)."""
    host = connect(c, settings)
    host.listener = live.Live(host.name, host.verbose, rows)
    return host


def _inputs(var, vars_file, secrets_file):
    """Variables (a --vars file, then each --var over it) and the secrets' source."""
    variables = {**(load_vars_file(vars_file) if vars_file else {}), **assignments(var)}
    return deploying.Inputs(variables, secrets_source(secrets_file))


@task(
    auto_shortflags=False,
    help={"instance": INSTANCE_HELP, "to": "the release to go back to (default: the previous one)",
          "dry-run": DEPLOY_HELP["dry-run"], "no-hooks": DEPLOY_HELP["no-hooks"],
          "lock-wait": DEPLOY_HELP["lock-wait"], "json": JSON_HELP},
)
def rollback(c, instance, to=None, dry_run=False, lock_wait=None, json=False, no_hooks=False):
    """Go back to the previous release (or --to N): env, images and all."""
    with user_errors(c) as settings:
        options = deploying.Options(dry_run=dry_run, lock_wait=_seconds(lock_wait), progress=output.build_progress(),
                                    hooks=not no_hooks)
        host = _host(c, settings, rows=not json)
        return _shown(deploying.rollback(host, instance, _number("--to", to), options), dry_run, json, host)


@task(auto_shortflags=False, help={"instance": INSTANCE_HELP, "json": JSON_HELP})
def endpoints(c, instance, json=False):
    """List the instance's registered endpoints and their addresses."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        output.endpoints(host.name, instance, instances.endpoints(host, instance), json, bool(host.etcd))


@task(auto_shortflags=False, help={"instance": INSTANCE_HELP, "json": JSON_HELP})
def history(c, instance, json=False):
    """List the instance's releases: number, time, who, what changed."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        releases = instances.history(host, instance)
        host.conceal(value for release in releases for value in release.get("secrets", {}).values())
        output.history(host.name, instance, releases, json)


@task(auto_shortflags=False, help={"instance": INSTANCE_HELP, "lock-wait": DEPLOY_HELP["lock-wait"]})
def prune(c, instance, lock_wait=None):
    """Remove the instance's retained (stopped, replaced) containers and its unused built images.

    Built images are those of its git services that no container of it uses any more;
    other instances are untouched."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        output.pruned(host.name, instance, *instances.prune(host, instance, _seconds(lock_wait)))


@task(auto_shortflags=False, help={"instance": INSTANCE_HELP, "service": "only this service (default: all)",
                                   "follow": "keep printing new lines", "tail": "only the last N lines"})
def logs(c, instance, service=None, follow=False, tail=None):
    """Print the logs of an instance's containers (each line prefixed with its service)."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        specs = instances.service_specs(host, instance, service)
        tail = _number("--tail", tail)
        _exit(host.logs(instance, specs, follow, tail))


@classic.after_dashes("command")
@task(name="run", auto_shortflags=False, help={"instance": INSTANCE_HELP, "service": SERVICE_HELP,
                                               "command": "the command, as one string, or after --"})
def run_once(c, instance, service, command=None):
    """Run a one-off container of a service (its image, env, volumes); exit code passes through."""
    _attached(c, instance, service, command, one_off=True)


@classic.after_dashes("command")
@task(name="exec", auto_shortflags=False, help={"instance": INSTANCE_HELP, "service": SERVICE_HELP,
                                                "command": "the command, as one string, or after -- (default: sh)"})
def exec_in(c, instance, service, command=None):
    """Run a command inside the service's running container (default: a shell)."""
    _attached(c, instance, service, command)


def _attached(c, instance, service, command, one_off=False):
    """Run the command for one service with the user's terminal, or with the pipe or file
    given as stdin (``psql < dump.sql``); its exit code is ours. ``one_off``: in a one-off of
    the service (the engine's ``one_off``: a container on one host, a job on a swarm), else
    inside its running container (the engine's ``exec``)."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        spec = instances.service_specs(host, instance, service)[0]  # a replicated service: its first replica
        tty = sys.stdin.isatty() and sys.stdout.isatty()
        stdin = sys.stdin if not tty and piped(sys.stdin) else None  # the command reads it, as with docker -i
        host.conceal(value for name, value in spec.env if name in spec.secrets)
        words = shlex.split(command or "")  # given after ``--``: as the user quoted it (classic.py)
        run = host.one_off if one_off else host.exec
        _exit(run(instance, spec, words, tty, stdin))


def _control(verb, doc):
    @task(name=verb, auto_shortflags=False, help={"instance": INSTANCE_HELP, "lock-wait": DEPLOY_HELP["lock-wait"],
                                                 "service": "only this service (default: all)"})
    def control(c, instance, service=None, lock_wait=None):
        with user_errors(c) as settings:
            host = _host(c, settings)
            names = instances.control(host, instance, verb, service, _seconds(lock_wait))
            output.controlled(host.name, verb, names)

    control.__doc__ = control.body.__doc__ = doc
    return control


stop = _control("stop", "Stop an instance's containers (or one service's); deploy or start brings them back.")
start = _control("start", "Start an instance's stopped containers (or one service's).")
restart = _control("restart", "Restart an instance's containers (or one service's).")


def _exit(code):
    """Exit as the command did; one killed by a signal (a local one's code is minus its
    number) as a shell says it: 128 + the number, 130 for Ctrl-C."""
    if code:
        raise Exit(code=128 - code if code < 0 else code)


def _number(flag, value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise Exit(f"error: {flag} expects a whole number, got {value!r}", code=EXIT_USAGE) from None


def _seconds(value):
    return _number("--lock-wait", value)


@task(name="list", help={"json": JSON_HELP})
def list_instances(c, json=False):
    """List the instances on the host, from its state files alone."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        output.instances(host.name, host.instances(), json)


@task(auto_shortflags=False, help={"instance": INSTANCE_HELP, "json": JSON_HELP})
def status(c, instance, json=False):
    """Show an instance's services: containers, running or not, drift, ports, volumes."""
    with user_errors(c) as settings:
        output.status(instances.status(_host(c, settings), instance), json)


@task(
    auto_shortflags=False,
    help={"instance": INSTANCE_HELP, "volumes": "also delete the instance's volume directories",
          "lock-wait": DEPLOY_HELP["lock-wait"], "yes": "do not ask first (a terminal is asked; anything else never is)"},
)
def destroy(c, instance, volumes=False, lock_wait=None, yes=False):
    """Remove an instance's containers and state; its volumes are kept unless --volumes."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        if not yes and sys.stdin.isatty():  # a person is there to answer; a script or CI never is
            doomed = instances.status(host, instance, missing_ok=volumes)  # volumes may be all that is left
            if not output.confirmed(output.destroy_question(doomed, volumes)):
                raise DeployerError("not destroyed: the answer was not yes (--yes does not ask)",
                                    host=host.name, instance=instance)
        instances.destroy(host, instance, volumes, _seconds(lock_wait))
        output.destroyed(host.name, instance, volumes)


@task(help={"json": JSON_HELP})
def routes(c, json=False):
    """List the host's routes: each domain's instance, service, container (its state) and check."""
    with user_errors(c) as settings:
        host = _host(c, settings)
        output.routes(host.name, *host.served(), json)


ROUTER_ACTIONS = ("status", "restart", "logs", "ca")


@task(auto_shortflags=False, help={"action": "status, restart (replaced, serving the host's routes), logs or ca "
                                             "(the root certificate of its own CA, tls internal)",
                                   "json": JSON_HELP + " (status)", "follow": "logs: keep printing new lines",
                                   "tail": "logs: only the last N lines", "lock-wait": DEPLOY_HELP["lock-wait"]})
def router(c, action, json=False, follow=False, tail=None, lock_wait=None):
    """The host's router (Caddy): status, restart, logs, ca."""
    if action not in ROUTER_ACTIONS:
        raise Exit(f"error: router: expected one of {', '.join(ROUTER_ACTIONS)}, got {action!r}", code=EXIT_USAGE)
    with user_errors(c) as settings:
        host = _host(c, settings)
        if action == "logs":
            argv = ["docker", "logs", *logs_options(follow, _number("--tail", tail)), route.CONTAINER]
            _exit(host.attach(argv, tty=False, reads_stdin=False))
        elif action == "ca":
            output.text(host.router("ca"))
        elif action == "restart":
            output.router_restarted(host.name, instances.restart_router(host, _seconds(lock_wait)))
        else:
            output.router_status(host.name, host.router("status"), host.routes()[0], json)


@task(iterable=["var"], help={"template": "the template file (YAML)", "json": JSON_HELP,
                              "var": INPUT_HELP["var"], "vars": INPUT_HELP["vars"]})
def validate(c, template, var=None, vars=None, json=False):
    """Check a template without any host (for CI): exits 2 with the first error."""
    with user_errors(c):
        output.valid(deploying.validate(template, _inputs(var, vars, None).variables), json)


@task(name="import", auto_shortflags=False,
      help={"file": "the compose file (docker-compose.yml)", "json": JSON_HELP,
            "check": "print only what was not carried; exit 1 if anything was dropped"})
def import_compose(c, file, check=False, json=False):
    """Turn a docker-compose.yml into a template, on stdout; say on stderr what it could not carry."""
    from .compose import imported, report  # only this task reads compose files

    with user_errors(c):
        result = imported(file)
        report.show(result, json, check)
    if check and not result.complete:
        raise Exit(code=1)


ns = Collection(
    deploy, redeploy, scale, rollback, history, endpoints, logs, run_once, exec_in, stop, start, restart, prune,
    list_instances, status, destroy, validate, import_compose, routes, router,
)
ns.configure({"deployer": declared()})
classic.attach_to_fab()
