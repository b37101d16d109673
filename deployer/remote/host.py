"""Host: the Docker engine of one machine, reached over SSH or locally.

Every operation is ONE shell script run by ``sh -s`` on the host, whatever the number of
services: a Fabric ``run()`` per docker command costs 0.1 s each. A deploy is one
script too, in two turns of a conversation (session.py): it takes the instance's lock,
reports the facts (facts.py), then runs the plan the client sends back (apply.py), all in
one process that holds the lock, until the client is done (its post hook, converse.sh). Scripts are put together from ``sh/*.sh`` (scripts.py)
and report back in sections between boundary lines chosen at random per script
(framing.py).

While a script runs, the Host's listener hears its marks and notes as they arrive: a
service's step done (``ok SERVICE T0 T1``), a wait for another deploy's lock (``waiting
SECONDS INSTANCE HOLDER``) or for a container to turn healthy (``health NAME SECONDS``),
the script's end (``end EXIT``). The Host adds what only the client knows: the secrets to
mask (``secrets VALUE...``), a deploy's plan as it is sent (``apply ACTIONS``) and the
steps done once it ran (``applied SERVICE...``).

With ``deployer.verbose`` (-v) a script also defines ``docker`` as a function that notes
each docker command (``run docker ARG...``) before running it, and ``dpl_put`` notes each
file it writes by name and size (``put FILE BYTES``), never its content. Secrets reach
``docker run`` in an env file (apply.py), except one holding a line break, an argument:
the listener (cli/live.py) masks them in the raw arguments, which the client gets exactly,
before quoting them for display. Without -v the host runs nothing more: marks are shell
builtins.

Where state lives is decided on the host, in the script: ``DEPLOYER_STATE_DIR`` /
``DEPLOYER_VOLUME_DIR`` in the host's environment, else the ``deployer.state_dir`` /
``deployer.volume_dir`` settings, else ``/var/lib/deployer`` and ``/srv/deployer/volumes``
for root and ``$XDG_STATE_HOME/deployer[/volumes]`` for anyone else.
"""

import json
import posixpath
import secrets
import shlex
import socket
from contextlib import contextmanager

from ..errors import DeployerError
from ..settings import Settings
from ..model import route
from ..model.state import InstanceState
from . import apply, builds, facts as facts_
from .apply import SECRETS, SECRETS_FD, Deploy, env_file
from .framing import Watch, boundary as new_boundary, sections
from .piped import piping
from .scripts import assign, call, instance as about, join, q, script, source
from .session import LocalRunner, SSHRunner


class Host:
    """A machine with Docker, reached through a runner (SSH or local).

    Another engine driving the same kind of script (swarm/: services through a manager)
    overrides what a deploy reads and runs: ``_fact``, its lock (``_locking``), the sources
    its scripts use (``FACTS``, ``APPLY``) and the second turn's class (``Applying``)."""

    FACTS = facts_.USES
    APPLY = apply.USES
    Applying = Deploy
    registry = ""  # an image built here runs here: pushed nowhere (deployer.registry is a swarm's)
    names_replicas = True  # each replica its alias (<service>.<n>.<instance>): expose gives them all

    def __init__(self, runner, settings=Settings(), context=None, listener=None):
        self.runner = runner
        self.name = runner.name
        self.settings = settings
        self.context = context
        self.listener = listener  # listener(kind, *fields): what scripts report as they run
        self.verbose = settings.verbose
        self.etcd = settings.etcd  # None: the state backend

    @classmethod
    def for_context(cls, c, settings):
        """A Fabric Connection means SSH; a plain invoke Context (no ``-H``) the local engine."""
        return cls(SSHRunner(c, settings) if hasattr(c, "host") else LocalRunner(), settings, c)

    def report(self, kind, *fields):
        if self.listener is not None:
            self.listener(kind, *fields)

    def conceal(self, values):
        """Values no output may show (secrets): the listener masks them."""
        self.report("secrets", *values)

    @property
    def hostname(self):
        """The host as the user named it (``{host}`` in templates); the machine's name locally."""
        return getattr(self.context, "host", None) or socket.gethostname()

    def logs(self, instance, specs, follow=False, tail=None):
        """Print the containers' log lines (``logs_command``); the exit code."""
        return self.attach(logs_command(specs, follow, tail), tty=False, reads_stdin=False)

    def attach(self, argv, tty, hidden=None, instance=None, volumes=(), reads_stdin=True, stdin=None, created=()):
        """Run one command with the user's terminal attached (logs, run, exec); its exit code
        (conceal() its secrets first: -v shows the command).

        Through Fabric's own run(), which handles the pty and a terminal's stdin. Without a
        terminal, ``stdin`` (a pipe or a file, piped.py) is handed to the command as it
        comes, and its end ends the command's input; with none, the command gets no input
        (CI's stdin is none to wait on). ``hidden``: env vars the command
        reads as an env file on SECRETS_FD: a script (on stdin, like every script) writes
        them to a 0600 file in the instance's directory first, and the command opens it
        and removes it before it runs, so no secret is in any process's arguments.
        ``volumes``: the host directories the command mounts, checked first (guard.sh).
        ``created``: dpl_created's arguments (network.sh) of the container the command starts,
        created and joined to its networks first.
        Without a terminal, on a remote host, the command ends with its client (tied.sh;
        ``reads_stdin``: it reads the client's stdin, so only the client's end can tell).
        Locally it is in the client's process group, which a terminal's signals reach.
        """
        tied = not tty and not isinstance(self.runner, LocalRunner)
        command = f"dpl_tied {'parent' if reads_stdin else 'stdin'} {join(argv)}" if tied else join(argv)
        command = f"{'exec ' if tty else ''}{command}"
        if created:
            command = f"{call('dpl_created', *created)} >/dev/null && {command}"
        if hidden:
            body = (f'{about(instance)}; F="$D/run.{secrets.token_hex(8)}.env"\n'
                    f'dpl_put "$F" {q(env_file(hidden))} || exit 1\ndpl_mark file; printf \'%s\\n\' "$F"')
            path = q(self._script(body, instance)["file"].strip())
            command = f"exec {SECRETS}<{path} && rm -f {path} && {command}"
        if volumes:
            command = f"{_guarded(volumes)} || exit 1\n{command}"
        command = source("guard") + (source("tied") if tied else "") + (source("network") if created else "") + command
        self.report("run", *argv)  # -v shows it, as the commands scripts note
        if tty or stdin is None:
            return self.context.run(command, pty=tty, warn=True, in_stream=None if tty else False).exited
        with piping(self.context):
            return self.context.run(command, warn=True, in_stream=stdin).exited

    def exec(self, instance, spec, words, tty, stdin=None):
        """``docker exec`` of ``words`` (none: ``sh``) in the spec's container, with the user's
        terminal or the piped ``stdin`` (attach); its exit code."""
        return self.attach(exec_args(tty, stdin, spec.name, words), tty, instance=instance, stdin=stdin)

    def one_off(self, instance, spec, words, tty, stdin=None):
        """Run a one-off container of the service's ``spec`` (run) running ``words`` (else its
        cmd), attached (``attach``: the user's terminal, else ``stdin``); its exit code. Its
        secrets reach it on SECRETS_FD, the volumes it mounts are checked first. ``docker
        run``; or, when it joins networks besides its instance's (another instance's service
        it exposes), created under a name of its own, joined to them, then ``docker
        start``-ed attached: it never runs without them."""
        flags = attached(tty, stdin)
        args = [*flags, *spec.one_off_args(words, SECRETS_FD)]
        argv, created = ["docker", "run", *args], ()
        if spec.one_off_joins:
            name = f"{spec.name}.run-{secrets.token_hex(3)}"
            argv, created = ["docker", "start", "-a", *(["-i"] if flags else []), name], [*spec.one_off_joins,
                                                                                          "--name", name, *args]
        return self.attach(argv, tty, spec.hidden_env(), instance, spec.host_dirs, stdin=stdin, created=created)

    def check(self, template):
        """A placement has no meaning to one Docker engine: said, not refused, so that one
        template deploys to a host and to a swarm."""
        return template.unheeded(("placement",), "one Docker engine (deployer.engine docker)")

    def sealed(self, instance, desired):
        """One host keeps secrets' values in its 0600 state (for redeploy and rollback)."""
        return desired

    # -- operations, each one round trip ------------------------------------------------

    def facts(self, instance, images=(), discovery=False, networks=(), routes=False):
        """State, containers, the ids the given image references have on the host, which
        of the given networks exist (and, with ``discovery``, what allocating endpoints
        needs; with ``routes``, the route table)."""
        fact = self._fact(instance, images, discovery, networks, routes)
        out = self._script(f"{about(instance)}\n{fact.script()}", instance, self.FACTS)
        return fact.read(out, self.name)

    def _locking(self, lock_wait, who, discovery, routed=False):
        """The lines of a deploy taking the instance's lock (and with ``discovery`` the
        host's endpoints lock: endpoints are allocated host-wide, one such deploy at a time;
        then the router's lock, taken when ``routed`` or the instance has routes)."""
        endpoints = [f'exec 8>>"$S/endpoints.lock" && flock -w {int(lock_wait)} 8 || exit 1'] if discovery else []
        return [_locked(lock_wait, who), *endpoints, call("dpl_router_lock", int(lock_wait), int(routed)) + " || exit 1"]

    def _fact(self, instance, images, discovery, networks, routes=False):
        """The facts of an instance: the lines reporting them and their parser."""
        return facts_.InstanceFacts(instance, tuple(images), discovery, self.etcd, tuple(networks), routes)

    @contextmanager
    def deploying(self, instance, images, who, lock_wait, pull=(), discovery=False, networks=(), routed=False):
        """Hold the instance's lock and yield a Deploy whose facts were read under it
        (after pulling the images in ``pull``; with ``discovery`` also the host's
        endpoints lock, so two instances never allocate the same port; when ``routed``, or
        the instance has routes, the router's lock, so two never claim one domain).

        Leaving the block without ``apply`` changes nothing and releases the lock.
        """
        fact = self._fact(instance, images, discovery, networks)
        boundary = new_boundary()
        body = [about(instance), *self._locking(lock_wait, who, discovery, routed)]
        body += [call("dpl_pull", image) + " || exit 1" for image in pull]
        body += [fact.script(), "dpl_mark facts-end", source("converse")]
        session = self._start(boundary, "\n".join(body), self.FACTS + self.APPLY)
        head = session.read_until(f"{boundary} facts-end")
        if head is None:
            raise self.error(session.finish(), instance)
        deploy = self.Applying(self, session, boundary, instance, fact.read(sections(head, boundary), self.name))
        try:
            yield deploy
        finally:
            if not deploy.finished:
                deploy.finish()

    def build(self, tag, source, instance, progress=None):
        """Stream the source's ``git archive`` into a build on the host; the image id."""
        return self._built(tag, source, instance, progress)["image"].strip()

    def _built(self, tag, source, instance, progress=None, push=False):
        """The build's script and what it reported (``image``; with ``push``, the image
        then pushed to the registry its tag names: ``pushed``, builds.py).

        The script first says it is ready (so ``sh`` has read all of it), then reads the
        tar from its stdin (fd 3), 64 KiB at a time from the client, never through a file.
        The build's output (and the push's) goes to stderr, each line to
        ``progress(service, line)`` as it comes. A failed push names the registry.
        """
        boundary = new_boundary()

        def shown(line):
            if progress is not None and not line.startswith("deployer: "):
                progress(source.service, line)

        body = builds.build_script(instance, tag, source, self.settings.subnets, push)
        session = self._start(boundary, body, builds.USES, shown)
        archive = None
        if session.read_until(f"{boundary} ready") is not None:
            archive = source.archive()
            try:
                for chunk in iter(lambda: archive.stdout.read(65536), b""):
                    session.send(chunk)
            except DeployerError:
                pass  # the build stopped reading its input: how it ended says why
            archive.stdout.close()
            archive.wait()
        result = session.finish()
        out = sections(result.stdout, boundary)
        wanted = "pushed" if push else "image"
        if result.exited != 0 or archive is None or archive.returncode != 0 or wanted not in out:
            error = self.error(result, instance)
            said = [line[10:] for line in result.stderr.splitlines() if line.startswith("deployer: ")]
            if push and "image" in out and said:  # built, not pushed: the push's reason, not the build's last lines
                error.message = f"push of {source.service} ({source.version}) to deployer.registry {source.registry} " \
                                f"failed: {said[-1]}"
            else:
                error.message = f"build of {source.service} ({source.version}) failed: {error.message}"
            raise error
        return out

    def write_state(self, instance, state, entry, history=0):
        """Record a partly applied deploy (its containers really run); with no ``state``,
        only the history ``entry`` (a first deploy that changed nothing)."""
        directory = 'mkdir -p "$D" && chmod 700 "$D" || exit 1'  # a failed first deploy's lock took it along
        self._script(f"{about(instance)}\n{directory}\n{apply.record(state, entry, history)}", instance)

    def instances(self):
        """The state of every instance on the host, from its files alone."""
        out = self._script("dpl_instances || exit 1", uses=("instance",))
        return [
            InstanceState.from_json(text, f"{self.name}:{key[5:]}") for key, text in out.items() if key.startswith("file ")
        ]

    def history(self, instance):
        """The instance's releases, oldest first, from its history.jsonl."""
        out = self._script(f"{about(instance)}\ndpl_history || exit 1", instance, ("instance",))
        path = f"{self.name}:{out['roots'].strip()}/instances/{instance}/history.jsonl"
        templates = {key[9:-5]: text for key, text in out.items() if key.startswith("template ")}
        releases = []
        for number, line in enumerate(out["history"].splitlines(), 1):
            try:
                release = json.loads(line)
            except ValueError:
                raise DeployerError(f"line {number} is not JSON; nothing was changed", file=path) from None
            if "template_text" not in release and release.get("template_sha256") in templates:
                release["template_text"] = templates[release["template_sha256"]]  # kept once (apply.record)
            releases.append(release)
        return releases

    def stored(self, instance):
        """The template the instance was last deployed from, its source name, and the state."""
        out = self._script(f"{about(instance)}\ndpl_stored || exit 1", instance, ("instance",))
        if "missing" in out or "state" not in out:
            raise DeployerError("no such instance on this host (no stored template)", host=self.name, instance=instance)
        path = f"{self.name}:{out['roots'].strip()}/instances/{instance}"
        return out["template"], f"{path}/template.yaml", InstanceState.from_json(out["state"], f"{path}/state.json")

    def prune(self, instance, who, lock_wait):
        """Remove the instance's retained containers (any not named ``<instance>.<service>``),
        then the images built for it (git services) that no container of it uses now."""
        out = self._script(f"{about(instance)}\n{_locked(lock_wait, who)}\ndpl_prune || exit 1", instance, ("instance",))
        return out["pruned"].split(), out["images"].split()

    def control(self, instance, verb, specs, who, lock_wait):
        """``docker stop|start|restart`` of the specs' containers, holding the instance's lock
        (a start first checks the volume directories they mount, guard.sh)."""
        names, volumes = [spec.name for spec in specs], [d for spec in specs for d in spec.host_dirs]
        guard = f"{_guarded(volumes)} || exit 1\n" if volumes and verb != "stop" else ""
        body = f"{about(instance)}\n{_locked(lock_wait, who)}\n{guard}docker {q(verb)} {join(names)} >/dev/null || exit 1"
        self._script(body, instance, ("guard",))

    def destroy(self, instance, volumes, who, lock_wait, routes=()):
        """Remove the instance's containers, networks and state (and its volumes when
        asked), after its endpoints' keys in etcd, when it registered any, and its
        ``routes`` (the table's text as read, the table without them and its config).

        Returns False, having changed nothing, when the host knows no such instance (with
        ``volumes``: nor any volumes of it, so volumes kept by an earlier destroy can go).
        """
        body = f"{about(instance)}\n{call('dpl_destroy', int(bool(volumes)), int(lock_wait), who, *routes)} || exit 1"
        return "missing" not in self._script(body, instance, ("instance", "network", "discovery", "router"))

    def routes(self):
        """The host's route table, and its text as read (route.read)."""
        text = self._script("dpl_router_table || exit 1", uses=("router",)).get("routes", "")
        return route.read(text, f"{self.name}:routes.json"), text

    def served(self):
        """The host's route table, and the state of each routed container, by name:
        ``running``, ``running (healthy)``, ``exited``... (as Container.condition says it)."""
        out = self._script("dpl_router_table || exit 1\ndpl_routed_states || exit 1", uses=("router",))
        states = {}
        for line in out["states"].splitlines():
            name, state, status = (line.split(" ", 2) + ["", ""])[:3]
            health = next((h for h in ("healthy", "unhealthy", "starting") if f"({h})" in status), "")
            states[name] = f"{state} ({health})" if health and state == "running" else state
        return route.read(out.get("routes", ""), f"{self.name}:routes.json"), states

    def router(self, verb, lock_wait=0, seen="", table=()):
        """The router: ``status`` (docker inspect's description, None: no router), ``ca``
        (its root certificate), ``restart`` (replaced, serving ``table``, which must still
        be the one read as ``seen``)."""
        if verb == "restart":
            router = self.settings.router
            config = route.rendered(table, router)
            joins = [arg for name in route.networks(table) for arg in ("--dpl-join", name)]
            self._script("\n".join([
                assign(DPL_SUBNETS=self.settings.subnets),  # the router's own network, past Docker's pools
                call("dpl_router_swap", int(lock_wait), seen, route.dump(table), config) + " || exit 1",
                "docker rm -f deployer-router >/dev/null 2>&1",
                call("dpl_router_up", config, router.digest, *joins, *router.run_args()) + " || exit 1",
            ]), uses=("router", "network", "replace"))
            return None
        out = self._script(f"dpl_router_{verb} || exit 1", uses=("router",))
        if verb == "ca":
            return out["ca"]
        found = json.loads(out["router"] or "[]")
        return found[0] if found else None

    # -- plumbing -----------------------------------------------------------------------

    def _script(self, body, instance=None, uses=()):
        boundary = new_boundary()
        result = self._start(boundary, body, uses).finish()
        if result.exited != 0:
            raise self.error(result, instance)
        return sections(result.stdout, boundary)

    def _start(self, boundary, body, uses=(), text=None):
        """Run a script on the host; what it reports goes to the listener as it arrives
        (and ``text(line)``, if given, hears each line of its other stderr)."""
        settings = self.settings
        whole = script(boundary, body, uses, settings.state_dir, settings.volume_dir, self.verbose, settings.docker_timeout)
        return self.runner.start(whole, Watch(boundary, self.report, text))

    def error(self, result, instance):
        """The DeployerError a failed script means: its last ``deployer:`` lines (and a new
        container's last log lines, ``log: ``, as details)."""
        lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("Run 'docker")]
        message = [l.removeprefix("deployer: ") for l in lines if not l.startswith("log: ")]
        error = DeployerError(
            " | ".join(message[-3:]) or f"exit status {result.exited}", host=self.name, instance=instance
        )
        error.details = [l[5:] for l in lines if l.startswith("log: ")]
        return error


def _guarded(volumes):
    """The call checking volume directories (``<volume_dir>/<instance>/<service>/<id>``)
    lead nowhere outside their instance's directory."""
    top = posixpath.dirname(posixpath.dirname(volumes[0]))
    return call("dpl_within", top, *volumes)


def _locked(lock_wait, who):
    """The line taking the instance's lock (in a script that set D)."""
    return f'dpl_lock "$D" {int(lock_wait)} {q(who)} || exit 1'


def attached(tty, stdin):
    """docker's flags attaching the user's terminal (``tty``), else the piped ``stdin``, if any."""
    return ["-it"] if tty else ["-i"] if stdin else []


def exec_args(tty, stdin, container, words):
    """``docker exec`` of ``words`` (none: ``sh``) in ``container`` (a name or an id),
    attached (``attached``)."""
    return ["docker", "exec", *attached(tty, stdin), container, *(words or ["sh"])]


def logs_options(follow, tail):
    """``docker logs`` options (``docker service logs`` takes the same): --follow, --tail N."""
    return [*(["--follow"] if follow else []), *(["--tail", str(tail)] if tail is not None else [])]


def logs_command(specs, follow, tail):
    """One shell command printing every container's log lines, each prefixed with its
    service (a replica's with its unit: ``web.2 | ...``)."""
    options = logs_options(follow, tail)
    parts = [
        f"docker logs {shlex.join(options + [spec.name])} 2>&1 | sed -u {shlex.quote(f's/^/{spec.unit} | /')} &"
        for spec in specs
    ]
    return ["sh", "-c", " ".join(parts) + " wait"]
