"""Host: the only place that talks to a machine, over SSH or locally.

Every operation is ONE shell script sent to ``sh -s`` on the host (one SSH round trip),
whatever the number of services: a Fabric ``run()`` per docker command costs 0.1 s each.
The script goes over stdin, not argv, so a large template meets no argument limit, and
the whole body is one ``{ ...; }`` group, parsed before it runs, with stdin closed, so no
command can swallow the rest of the script. Scripts report back in sections between
boundary lines chosen at random per call, so no content can forge one.

Where state lives is decided on the host, in the script: ``DEPLOYER_STATE_DIR`` /
``DEPLOYER_VOLUME_DIR`` in the host's environment, else the ``deployer.state_dir`` /
``deployer.volume_dir`` settings, else ``/var/lib/deployer`` and ``/srv/deployer/volumes``
for root and ``$XDG_STATE_HOME/deployer[/volumes]`` for anyone else.
"""

import json
import secrets
import shlex
import socket
import subprocess
import threading
from dataclasses import dataclass

import paramiko

from .errors import DeployerError
from .plan import KEEP
from .state import Container, InstanceState

# Shell functions every script may use. $B is the boundary, $S and $V the roots.
LIBRARY = r"""
mark() { printf '%s %s\n' "$B" "$*"; }
if [ "$(id -u)" = 0 ]; then S=/var/lib/deployer V=/srv/deployer/volumes
else S=${XDG_STATE_HOME:-$HOME/.local/state}/deployer V=${XDG_STATE_HOME:-$HOME/.local/state}/deployer/volumes; fi
S=${DEPLOYER_STATE_DIR:-${cfg_state_dir:-$S}} V=${DEPLOYER_VOLUME_DIR:-${cfg_volume_dir:-$V}}
# put FILE CONTENT: atomic write (temp, fsync, rename), mode 0600, the previous file kept as FILE.prev
put() {
  tmp="$1.tmp.$$"
  if (umask 077 && printf '%s' "$2" >"$tmp") && { sync "$tmp" 2>/dev/null || sync; }; then
    if [ -f "$1" ]; then ln -f "$1" "$1.prev"; fi
    mv -f "$tmp" "$1" && return 0
  fi
  rm -f "$tmp"; echo "deployer: could not write $1" >&2; return 1
}
# inspect INSTANCE: the instance's containers as one JSON array (empty when none)
inspect() {
  ids=$(docker ps -aq --no-trunc --filter "label=deployer.instance=$1") || return 1
  if [ -n "$ids" ]; then docker inspect $ids; else echo '[]'; fi
}
# image_ids REF...: each reference's image id, one per line, "-" where it is not on the
# host; one docker call unless one is missing
image_ids() {
  if ids=$(docker image inspect --format '{{.Id}}' "$@" 2>/dev/null); then echo "$ids"; return 0; fi
  for ref; do docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || echo -; done
}
# up SERVICE NAME RUN-ARGS...: start NAME; a container of that name is stopped first
# and brought back if the new one does not start.
up() {
  svc=$1 name=$2; shift 2; old=
  if docker container inspect "$name" >/dev/null 2>&1; then
    old="$name.replaced"
    docker rm -f "$old" >/dev/null 2>&1
    docker rename "$name" "$old" && docker stop "$old" >/dev/null || return 1
  fi
  if docker run "$@" >/dev/null; then
    if [ -n "$old" ]; then docker rm -f "$old" >/dev/null; fi
    mark ok "$svc"; return 0
  fi
  docker rm -f "$name" >/dev/null 2>&1
  if [ -n "$old" ]; then docker rename "$old" "$name" && docker start "$name" >/dev/null; fi
  return 1
}
# down SERVICE INSTANCE: remove every container of one service of an instance
down() {
  ids=$(docker ps -aq --filter "label=deployer.instance=$2" --filter "label=deployer.service=$1") || return 1
  if [ -n "$ids" ]; then docker rm -f $ids >/dev/null || return 1; fi
  mark ok "$1"
}
"""


@dataclass(frozen=True)
class Roots:
    state_dir: str
    volume_dir: str


@dataclass(frozen=True)
class Facts:
    """What one round trip learns about an instance before a deploy or a status."""

    roots: Roots
    state: InstanceState | None
    containers: tuple[Container, ...]
    images: dict  # image reference -> id, for the references present on the host


@dataclass(frozen=True)
class Result:
    exited: int
    stdout: str
    stderr: str


class Host:
    """A machine with Docker, reached through a runner (SSH or local)."""

    def __init__(self, runner, name, settings=None):
        self.runner = runner
        self.name = name
        self.settings = settings or {}

    @classmethod
    def for_context(cls, c):
        """A Fabric Connection means SSH; a plain invoke Context (no ``-H``) the local engine."""
        settings = c.config.get("deployer", {}) or {}
        if hasattr(c, "host"):
            return cls(SSHRunner(c), f"{c.user}@{c.host}:{c.port}", settings)
        return cls(LocalRunner(), "local", settings)

    # -- operations, each one round trip ------------------------------------------------

    def facts(self, instance, images=()):
        """State, containers and the ids the given image references have on the host."""
        out = self._script(
            f"""
I={q(instance)}
mark roots; printf '%s\\n%s\\n' "$S" "$V"
mark state; F="$S/instances/$I/state.json"
if [ -f "$F" ]; then cat "$F" || exit 1; fi
mark containers; inspect "$I" || exit 1
mark images; {"image_ids " + join(images) if images else ""}
""",
            instance=instance,
        )
        roots = Roots(*out["roots"].splitlines())
        path = f"{roots.state_dir}/instances/{instance}/state.json"
        state = InstanceState.from_json(out["state"], f"{self.name}:{path}") if out["state"].strip() else None
        ids = {ref: id for ref, id in zip(images, out["images"].split()) if id != "-"}
        return Facts(roots, state, self._containers(out["containers"]), ids)

    def apply(self, instance, actions, final_state, template_text):
        """Run the actions in order and, if all succeed, write state and template.

        Returns the services whose action succeeded and the error that stopped the rest
        (None when all succeeded), so the caller can record what really runs.
        """
        steps = [f"I={q(instance)}; D=\"$S/instances/$I\"", 'mkdir -p "$D" || exit 1', 'chmod 700 "$D"']
        dirs = [d for a in actions if a.spec for d in a.spec.host_dirs]
        if dirs:
            steps.append(f"mkdir -p {join(dirs)} || exit 1")
        for action in actions:
            if action.kind == KEEP:
                continue
            if action.spec is None:
                steps.append(f"down {q(action.service)} \"$I\" || exit 1")
            else:
                steps.append(f"up {q(action.service)} {q(action.spec.name)} {join(action.spec.run_args())} || exit 1")
        steps += [
            f'put "$D/template.yaml" {q(template_text)} || exit 1',
            f'put "$D/state.json" {q(final_state.to_json())} || exit 1',
        ]
        result, sections = self._run("\n".join(steps), instance)
        done = set(sections["_marks"])
        error = None if result.exited == 0 else self._error(result, instance)
        return done, error

    def write_state(self, instance, state):
        self._script(
            f'D="$S/instances/"{q(instance)}; mkdir -p "$D" && put "$D/state.json" {q(state.to_json())} || exit 1',
            instance=instance,
        )

    def instances(self):
        """The state of every instance on the host, from its files alone."""
        out = self._script(
            """
for F in "$S"/instances/*/state.json; do
  if [ -f "$F" ]; then mark "file $F"; cat "$F" || exit 1; fi
done
"""
        )
        return [
            InstanceState.from_json(text, f"{self.name}:{key[5:]}")
            for key, text in out.items()
            if key.startswith("file ")
        ]

    def destroy(self, instance, volumes):
        """Remove the instance's containers and state (and its volumes when asked).

        Returns False, having changed nothing, when the host knows no such instance (with
        ``volumes``: nor any volumes of it, so volumes kept by an earlier destroy can go).
        """
        rm_volumes = 'rm -rf -- "$V/$I" || exit 1' if volumes else ""
        kept_volumes = '&& [ ! -d "$V/$I" ]' if volumes else ""
        out = self._script(
            f"""
I={q(instance)}
ids=$(docker ps -aq --filter "label=deployer.instance=$I") || exit 1
if [ -z "$ids" ] && [ ! -d "$S/instances/$I" ] {kept_volumes}; then mark missing; exit 0; fi
if [ -n "$ids" ]; then docker rm -f $ids >/dev/null || exit 1; fi
rm -rf -- "$S/instances/$I" || exit 1
{rm_volumes}
""",
            instance=instance,
        )
        return "missing" not in out

    # -- plumbing -----------------------------------------------------------------------

    def _script(self, body, instance=None):
        result, sections = self._run(body, instance)
        if result.exited != 0:
            raise self._error(result, instance)
        return sections

    def _run(self, body, instance):
        boundary = "@@deployer-" + secrets.token_hex(8)
        script = (
            "{\n"
            f"B={boundary}\n"
            f"cfg_state_dir={q(self.settings.get('state_dir') or '')}\n"
            f"cfg_volume_dir={q(self.settings.get('volume_dir') or '')}\n"
            f"{LIBRARY}\n{body}\n"
            "} </dev/null\n"
        )
        result = self.runner.run(script)
        return result, _sections(result.stdout, boundary)

    def _error(self, result, instance):
        lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("Run 'docker")]
        detail = " | ".join(lines[-3:]) or f"exit status {result.exited}"
        return DeployerError(detail, host=self.name, instance=instance)

    def _containers(self, text):
        try:
            return tuple(Container.from_inspect(item) for item in json.loads(text or "[]"))
        except (ValueError, KeyError, TypeError) as e:
            raise DeployerError(f"cannot read docker inspect output: {e}", host=self.name) from None


def _sections(stdout, boundary):
    """Split script output at boundary lines: ``{name: text}``, plus ``ok`` marks in order."""
    sections, marks, name, lines = {}, [], None, []
    for line in stdout.splitlines(keepends=True):
        if line.startswith(boundary + " "):
            if name is not None:
                sections[name] = "".join(lines)
            name, lines = line[len(boundary) + 1 :].rstrip("\n"), []
            if name.startswith("ok "):
                marks.append(name[3:])
                name = None
        elif name is not None:
            lines.append(line)
    if name is not None:
        sections[name] = "".join(lines)
    sections["_marks"] = marks
    return sections


def q(value):
    return shlex.quote(str(value))


def join(args):
    return " ".join(q(a) for a in args)


class LocalRunner:
    """Runs scripts with the local ``sh``: the no ``-H`` mode, the local Docker engine."""

    def run(self, script):
        proc = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True)
        return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


class SSHRunner:
    """Runs scripts over a Fabric Connection's own SSH transport.

    The script goes in through a raw paramiko channel (invoke's in_stream reads byte by
    byte); stderr is drained on a thread so a chatty command cannot stall the channel.
    """

    def __init__(self, connection):
        self.connection = connection

    def run(self, script):
        channel = self._open().open_session()
        try:
            channel.exec_command("sh -s")
            channel.sendall(script.encode())
            channel.shutdown_write()
            stderr = []
            drain = threading.Thread(target=lambda: stderr.append(channel.makefile_stderr("rb").read()))
            drain.start()
            stdout = channel.makefile("rb").read()
            drain.join()
            exited = channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as e:
            raise DeployerError(f"SSH connection failed: {e}", host=self._name()) from None
        finally:
            channel.close()
        return Result(exited, stdout.decode(errors="replace"), b"".join(stderr).decode(errors="replace"))

    def _open(self):
        c = self.connection
        try:
            c.open()
        except (paramiko.SSHException, socket.error, EOFError) as e:
            raise DeployerError(f"cannot connect: {e or type(e).__name__}", host=self._name()) from None
        return c.client.get_transport()

    def _name(self):
        c = self.connection
        return f"{c.user}@{c.host}:{c.port}"
