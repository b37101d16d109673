"""Host: the only place that talks to a machine, over SSH or locally.

Every operation is ONE shell script run by ``sh -s`` on the host, whatever the number of
services: a Fabric ``run()`` per docker command costs 0.1 s each. A deploy is one
script too, in two turns of a conversation (session.py): it takes the instance's lock,
reports the facts, then runs the plan the client sends back, all in one process that
holds the lock. Scripts go over stdin, not argv, so a large template meets no argument
limit, and the body is one ``{ ...; }`` group, parsed before it runs, with stdin closed,
so no command can swallow the rest of the script (the conversation reads fd 3).
Scripts report back in sections between boundary lines chosen at random per call, so
no content can forge one. Every value is quoted with ``shlex.quote``.

While a script runs, the Host's listener hears its marks and notes as they arrive
(session.py's Watch): a service's step done (``ok SERVICE T0 T1``), a wait for another
deploy's lock (``waiting SECONDS INSTANCE HOLDER``) or for a container to turn healthy
(``health NAME SECONDS``), the script's end (``end EXIT``). The Host adds what only the
client knows: the secrets to mask (``secrets VALUE...``), a deploy's plan as it is sent
(``apply ACTIONS``) and the steps done once it ran (``applied SERVICE...``).

With ``deployer.verbose`` (-v) a script also defines ``docker`` as a function that
notes each docker command (``run docker ARG...``) before running it, and ``put`` notes
each file it writes by name and size (``put FILE BYTES``), never its content. Secrets
reach ``docker run`` in an env file (Deploy._run), except one holding a line break, an
argument: the listener (output.py) masks them in the raw arguments, which the client
gets exactly, before quoting them for display. Without -v the host runs nothing more than before: marks are shell builtins.

Where state lives is decided on the host, in the script: ``DEPLOYER_STATE_DIR`` /
``DEPLOYER_VOLUME_DIR`` in the host's environment, else the ``deployer.state_dir`` /
``deployer.volume_dir`` settings, else ``/var/lib/deployer`` and ``/srv/deployer/volumes``
for root and ``$XDG_STATE_HOME/deployer[/volumes]`` for anyone else.
"""

import json
import secrets
import shlex
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import DeployerError
from ..model.etcd import Etcd, read_registry
from ..model.plan import CREATE, KEEP
from .session import LocalRunner, SSHRunner, Watch, elapsed, flag
from ..model.discovery import bridge_address, listening
from ..model.state import Container, InstanceState, image_ids

# The descriptor on which docker reads an env file of secrets (--env-file /dev/fd/5).
SECRETS = 5
SECRETS_FD = f"/dev/fd/{SECRETS}"

# Shell functions every script may use. $B is the boundary, $S and $V the roots.
LIBRARY = r"""
mark() { printf '%s %s\n' "$B" "$*"; }
# note KIND FIELD...: a record for the client on fd 4, the script's own stderr whatever a
# function redirected: a header with each field's length, then the fields, each ending
# with NUL, so any value arrives intact, or is seen to be cut by other output (session.py)
note() { _k=$1; shift; _h="$B $_k $#"; for _a; do _h="$_h ${#_a}"; done; printf '%s\0' "$_h" "$@" >&4; }
trace() { :; }  # -v: note (VERBOSE)
# at_exit COMMAND: run COMMAND when the script ends, however it ends (and those given before)
_at_exit=
at_exit() { _at_exit="$_at_exit
$1"; trap 'eval "$_at_exit"' EXIT; }
if [ "$(id -u)" = 0 ]; then S=/var/lib/deployer V=/srv/deployer/volumes
else S=${XDG_STATE_HOME:-$HOME/.local/state}/deployer V=${XDG_STATE_HOME:-$HOME/.local/state}/deployer/volumes; fi
S=${DEPLOYER_STATE_DIR:-${cfg_state_dir:-$S}} V=${DEPLOYER_VOLUME_DIR:-${cfg_volume_dir:-$V}}
# put FILE CONTENT: atomic write (temp, fsync, rename), mode 0600, the previous file kept as FILE.prev
put() {
  trace put "$1" "${#2}"
  tmp="$1.tmp.$$"
  if (umask 077 && printf '%s' "$2" >"$tmp") && { sync "$tmp" 2>/dev/null || sync; }; then
    if [ -f "$1" ]; then ln -f "$1" "$1.prev"; fi
    mv -f "$tmp" "$1" && return 0
  fi
  rm -f "$tmp"; echo "deployer: could not write $1" >&2; return 1
}
# lock DIR WAIT WHO: hold DIR/lock (flock, fd 9) until this script's process ends,
# however it ends; a second deployer waits up to WAIT seconds, then names the holder.
# While waiting it writes a line a second: once its client is gone, that write kills it
# (SIGPIPE), so a killed client never leaves a waiter behind to take the lock later.
lock() {
  mkdir -p "$1" && chmod 700 "$1" && exec 9>>"$1/lock" || return 1
  n=0
  while ! flock -n 9; do
    if [ "$n" -ge "$2" ]; then
      echo "deployer: locked by $(cat "$1/lock.info" 2>/dev/null || echo '?') (waited $2 s; --lock-wait waits longer)" >&2
      return 1
    fi
    read -r held 2>/dev/null <"$1/lock.info" || held='?'
    mark waiting "$n" "${1##*/}" "$held"
    if flock -w 1 9; then break; fi
    n=$((n + 1))
  done
  printf '%s since %s\n' "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$1/lock.info"
}
# inspect INSTANCE REF...: ONE docker call describing the instance's containers and the
# given images (those on the host), as one JSON array
inspect() {
  i=$1; shift
  ids=$(docker ps -aq --no-trunc --filter "label=deployer.instance=$i") || return 1
  if [ -z "$ids" ] && [ $# -eq 0 ]; then echo '[]'; return 0; fi
  out=$(docker inspect $ids "$@" 2>/dev/null)  # exits 1 when an image is missing: still JSON
  printf '%s\n' "${out:-[]}"
}
# inside DIR...: each volume directory really is inside the instance's volume directory
# (a symlink planted on the host could lead a bind mount anywhere, /etc included)
inside() {
  top=$(realpath "$V/$I") || return 1
  for d; do
    case "$(realpath "$d")" in
      "$top"/*) ;;
      *) echo "deployer: volume directory $d leads outside $V/$I (a symlink?): refused" >&2; return 1 ;;
    esac
  done
}
# started NAME: the container still runs, never restarted, $U seconds after it started
# (a command that cannot run fails within a fraction of that), and, if it has a
# healthcheck, turns healthy within $H seconds (polled every half second)
started() {
  sleep "$U"
  n=0
  while state=$(docker container inspect --format '{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"); do
    case "$state" in
      "running 0 "|"running 0 healthy") return 0 ;;
      "running 0 starting") [ "$n" -lt $((H * 2)) ] || { echo "deployer: $1 was not healthy after $H s" >&2; return 1; }
        if [ "$n" -ge 4 ] && [ $((n % 2)) = 0 ]; then mark health "$1" $((n / 2)); fi ;;
      *) return 1 ;;
    esac
    sleep 0.5; n=$((n + 1))
  done
  return 1
}
# retire NAME KEEP: the current container NAME is stopped and kept as KEEP, now $old (no
# KEEP: there is no current container); away renames it, one docker call unless KEEP is
# taken already
retire() { away "$1" "$2" && { [ -z "$old" ] || docker stop "$old" >/dev/null; }; }
away() {
  old=$2
  [ -n "$old" ] || return 0
  if ! docker rename "$1" "$old" 2>/dev/null; then
    docker rm -f "$old" >/dev/null 2>&1
    if ! docker rename "$1" "$old" 2>/dev/null; then
      if docker container inspect "$1" >/dev/null 2>&1; then return 1; fi
      old=; return 0  # removed by hand meanwhile: nothing to retire
    fi
  fi
}
# restore NAME: the retired container runs as NAME again (after a failed replacement)
restore() { if [ -n "$old" ]; then docker rename "$old" "$1" && docker start "$1" >/dev/null; fi; }
failed() {
  { echo "deployer: the new container of $1 did not start well ($(docker container inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}{{if .RestartCount}}, restarted {{.RestartCount}} times{{end}}{{if .State.Health}}, {{.State.Health.Status}}{{end}}' "$2" 2>&1))"
    docker logs --tail 10 "$2" 2>&1 | sed 's/^/log: /'; } >&2
}
# up SERVICE NAME KEEP RUN-ARGS...: stop-first: the current NAME is stopped and kept as
# KEEP, then the new one runs; if it does not start well, the current one comes back
up() {
  t0=$(date +%s.%N)
  svc=$1 name=$2 keep=$3; shift 3
  retire "$name" "$keep" || return 1
  if docker run "$@" >/dev/null; then
    if started "$name"; then mark ok "$svc" "$t0" "$(date +%s.%N)"; return 0; fi
    failed "$svc" "$name"
  fi
  docker rm -f "$name" >/dev/null 2>&1; restore "$name"; return 1
}
# switch NEW: the end of a start-first step ($svc $name $keep $t0): once NEW, running, has
# started well, the current $name is stopped (kept as $keep) and NEW becomes $name; else the
# current one runs on as $name, and NEW is the caller's to remove
# (the current one stops while NEW takes its name: both are needed before the step is done)
switch() {
  if ! started "$1"; then failed "$svc" "$1"; return 1; fi
  away "$name" "$keep" || return 1
  stopping=
  if [ -n "$old" ]; then docker stop "$old" >/dev/null & stopping=$!; fi
  docker rename "$1" "$name"; renamed=$?
  if { [ -z "$stopping" ] || wait "$stopping"; } && [ "$renamed" = 0 ]; then mark ok "$svc" "$t0" "$(date +%s.%N)"; return 0; fi
  if [ "$renamed" = 0 ]; then docker rename "$name" "$1"; fi
  restore "$name"; return 1
}
# first SERVICE NAME KEEP RUN-ARGS...: start-first: the new container runs as NAME.next
# and must start well before the current NAME is stopped (kept as KEEP)
first() {
  t0=$(date +%s.%N)
  svc=$1 name=$2 keep=$3; shift 3
  if docker run "$@" >/dev/null && switch "$name.next"; then return 0; fi
  docker rm -f "$name.next" >/dev/null 2>&1; return 1
}
# again SERVICE NAME KEEP RETAINED: start-first rollback: the retained container runs again,
# under its own name, and must start well before the current NAME is stopped (kept as KEEP);
# if it does not, it is stopped again, still retained
again() {
  t0=$(date +%s.%N)
  svc=$1 name=$2 keep=$3
  if docker start "$4" >/dev/null && switch "$4"; then return 0; fi
  docker stop "$4" >/dev/null 2>&1; return 1
}
# back SERVICE NAME KEEP RETAINED: stop-first rollback: a retained container runs as NAME again
back() {
  t0=$(date +%s.%N)
  svc=$1 name=$2 from=$4
  retire "$name" "$3" || return 1
  if docker rename "$from" "$name" && docker start "$name" >/dev/null && started "$name"; then mark ok "$svc" "$t0" "$(date +%s.%N)"; return 0; fi
  failed "$svc" "$name"; docker stop "$name" >/dev/null 2>&1; docker rename "$name" "$from"; restore "$name"; return 1
}
# etcd PATH BODY: an etcd v3 JSON request from this host (the first of the URLs in $E that
# answers), its answer on stdout
etcd() {
  command -v curl >/dev/null || { echo "deployer: the etcd backend needs curl on this host, to reach etcd" >&2; return 1; }
  for u in $E; do
    if answer=$(curl -sS --fail --max-time 10 -X POST "$u/v3/kv/$1" -d "$2" 2>&1); then printf '%s\n' "$answer"; return 0; fi
  done
  echo "deployer: etcd is not reachable from this host at $E ($answer)" >&2; return 1
}
# address TARGET: where other hosts reach this one: $DEPLOYER_ADDRESS, else the source
# address of this host's route toward TARGET (etcd, or the default route)
address() {
  a=${DEPLOYER_ADDRESS:-$(ip -o -4 route get "$1" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
  [ -n "$a" ] || { echo "deployer: cannot tell this host's address for etcd: set DEPLOYER_ADDRESS in its environment" >&2; return 1; }
  echo "$a"
}
# built: the images deployer built for instance $I (labelled so, in its repository: an
# image built FROM one of them inherits the label, not the name)
built() { docker images --filter "label=deployer.instance=$I" --format '{{.Repository}}:{{.Tag}}' | grep '^deployer/'; }
# down SERVICE INSTANCE: remove every container of one service of an instance
down() {
  t0=$(date +%s.%N)
  ids=$(docker ps -aq --filter "label=deployer.instance=$2" --filter "label=deployer.service=$1") || return 1
  if [ -n "$ids" ]; then docker rm -f $ids >/dev/null || return 1; fi
  mark ok "$1" "$t0" "$(date +%s.%N)"
}
"""

# -v: each docker command is noted before it runs. Records of jobs running at once (new
# services start together) are written one at a time: a long one is several writes.
VERBOSE = r"""
_trace=$(mktemp) && at_exit 'rm -f "$_trace"'
trace() { { flock 7; note "$@"; } 7<"$_trace"; }
docker() { trace run docker "$@"; command docker "$@"; }
"""

# The second turn of a deploy: run the plan the client sends, unless the client sent
# nothing or went away before its last line arrived. From here on the script finishes
# even if the connection drops, so state always ends up describing what runs.
CONVERSE = r"""
body=$(cat <&3)
case "$body" in *"$B end") ;; *) exit 0 ;; esac
trap '' HUP PIPE
eval "$body"
"""


@dataclass(frozen=True)
class Roots:
    state_dir: str
    volume_dir: str


@dataclass(frozen=True)
class Limits:
    """How a deploy waits for new containers, and how many releases its history keeps."""

    health_timeout: int
    min_uptime: float
    history: int  # 0: all


@dataclass(frozen=True)
class Facts:
    """What one round trip learns about an instance before a deploy or a status."""

    roots: Roots
    state: InstanceState | None
    containers: tuple[Container, ...]
    images: dict  # image reference -> id, for the references present on the host
    bridge: str = ""  # the Docker bridge's address (asked for with discovery=True)
    others: tuple = ()  # the other instances' states (discovery)
    listening: frozenset = frozenset()  # TCP ports listening on the host (discovery)
    host_id: str = ""  # with etcd: this host's id, its reachable address, the registry
    address: str = ""
    registry: dict = field(default_factory=dict)


class Host:
    """A machine with Docker, reached through a runner (SSH or local)."""

    def __init__(self, runner, settings=None, context=None, listener=None):
        self.runner = runner
        self.name = runner.name
        self.settings = settings or {}
        self.context = context
        self.listener = listener  # listener(kind, *fields): what scripts report as they run
        self.verbose = flag(self.settings, "verbose")
        self.etcd = Etcd.from_settings(self.settings)  # None: the state backend

    @classmethod
    def for_context(cls, c):
        """A Fabric Connection means SSH; a plain invoke Context (no ``-H``) the local engine."""
        settings = c.config.get("deployer", {}) or {}
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

    def attach(self, argv, tty, hidden=None, instance=None):
        """Run one command with the user's terminal attached (logs, run, exec); its exit code
        (conceal() its secrets first: -v shows the command).

        Through Fabric's own run(), which handles the pty and stdin; without a terminal
        stdin is not mirrored (it would fail under CI). ``hidden``: env vars the command
        reads as an env file on SECRETS_FD: a script (on stdin, like every script) writes
        them to a 0600 file in the instance's directory first, and the command opens it
        and removes it before it runs, so no secret is in any process's arguments.
        """
        command = join(argv)
        if hidden:
            out = self._script(
                f'F="$S/instances/"{q(instance)}/run.{secrets.token_hex(8)}.env\n'
                f'put "$F" {q(_env_file(hidden))} || exit 1\nmark file; printf \'%s\\n\' "$F"',
                instance,
            )
            path = q(out["file"].strip())
            command = f"exec {SECRETS}<{path} && rm -f {path} && exec {command}"
        self.report("run", *argv)  # -v shows it, as the commands scripts note
        result = self.context.run(command, pty=tty, warn=True, in_stream=None if tty else False)
        return result.exited

    # -- operations, each one round trip ------------------------------------------------

    def facts(self, instance, images=(), discovery=False):
        """State, containers and the ids the given image references have on the host (and,
        with ``discovery``, what allocating endpoints needs)."""
        out = self._script(self._facts_body(instance, images, discovery), instance)
        return self._facts(out, instance, images)

    @contextmanager
    def deploying(self, instance, images, who, lock_wait, pull=(), discovery=False):
        """Hold the instance's lock and yield a Deploy whose facts were read under it
        (after pulling the images in ``pull``; with ``discovery`` also the host's
        endpoints lock, so two instances never allocate the same port).

        Leaving the block without ``apply`` changes nothing and releases the lock.
        """
        boundary = _boundary()
        body = f"lock \"$S/instances/\"{q(instance)} {int(lock_wait)} {q(who)} || exit 1\n"
        if discovery:  # endpoints are allocated host-wide: one such deploy at a time per host
            body += f'exec 8>>"$S/endpoints.lock" && flock -w {int(lock_wait)} 8 || exit 1\n'
        body += "".join(
            f"mark pulling {q(image)}\n"
            f"err=$(docker pull -q {q(image)} 2>&1 >/dev/null) || "
            f"{{ echo 'deployer: cannot pull '{q(image)}\": $err\" >&2; exit 1; }}\n"
            for image in pull
        )
        session = self._start(
            boundary, body + self._facts_body(instance, images, discovery) + "\nmark facts-end\n" + CONVERSE
        )
        head = session.read_until(f"{boundary} facts-end")
        if head is None:
            raise self._error(session.finish(), instance)
        deploy = Deploy(self, session, boundary, instance, self._facts(_sections(head, boundary), instance, images))
        try:
            yield deploy
        finally:
            if not deploy.finished:
                deploy.finish("")

    def build(self, tag, source, instance, progress=None):
        """Stream the source's ``git archive`` into a build on the host; the image id.

        The script first says it is ready (so ``sh`` has read all of it), then reads the
        tar from its stdin (fd 3), 64 KiB at a time from the client, never through a file.
        The build's output goes to stderr, each line to ``progress(service, line)`` as it
        comes. A Dockerfile app goes into ``docker build``; a slug app into the slug
        builder, and its slug into an image FROM the runner (_SLUG_BUILD).
        """
        boundary = _boundary()
        body = (_slug_build if source.slug else _docker_build)(instance, tag, source)

        def shown(line):
            if progress is not None and not line.startswith("deployer: "):
                progress(source.service, line)

        session = self._start(boundary, body, shown)
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
        out = _sections(result.stdout, boundary)
        if result.exited != 0 or archive is None or archive.returncode != 0 or "image" not in out:
            error = self._error(result, instance)
            error.message = f"build of {source.service} ({source.version}) failed: {error.message}"
            raise error
        return out["image"].strip()

    def write_state(self, instance, state, record, history=0):
        """Record a partly applied deploy (its containers really run)."""
        self._script(f'D="$S/instances/"{q(instance)}\n{_record(state, record, history)}', instance)

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
            InstanceState.from_json(text, f"{self.name}:{key[5:]}") for key, text in out.items() if key.startswith("file ")
        ]

    def history(self, instance):
        """The instance's releases, oldest first, from its history.jsonl."""
        out = self._script(
            f'mark roots; echo "$S"\nmark history; F="$S/instances/"{q(instance)}/history.jsonl\n'
            'if [ -f "$F" ]; then cat "$F" || exit 1; fi',
            instance,
        )
        path = f"{self.name}:{out['roots'].strip()}/instances/{instance}/history.jsonl"
        releases = []
        for number, line in enumerate(out["history"].splitlines(), 1):
            try:
                releases.append(json.loads(line))
            except ValueError:
                raise DeployerError(f"line {number} is not JSON; nothing was changed", file=path) from None
        return releases

    def stored(self, instance):
        """The template the instance was last deployed from, its source name, and the state."""
        out = self._script(
            f'D="$S/instances/"{q(instance)}\nmark roots; echo "$S"\n'
            'mark template; if [ -f "$D/template.yaml" ]; then cat "$D/template.yaml" || exit 1; else mark missing; fi\n'
            'if [ -f "$D/state.json" ]; then mark state; cat "$D/state.json" || exit 1; fi',
            instance,
        )
        if "missing" in out or "state" not in out:
            raise DeployerError("no such instance on this host (no stored template)", host=self.name, instance=instance)
        path = f"{self.name}:{out['roots'].strip()}/instances/{instance}"
        return out["template"], f"{path}/template.yaml", InstanceState.from_json(out["state"], f"{path}/state.json")

    def prune(self, instance, who, lock_wait):
        """Remove the instance's retained containers (any not named ``<instance>.<service>``),
        then the images built for it (git services) that no container of it uses now."""
        out = self._script(
            f"""
I={q(instance)}
lock "$S/instances/$I" {int(lock_wait)} {q(who)} || exit 1
names=$(docker ps -a --filter "label=deployer.instance=$I" --format '{{{{.Names}}}}|{{{{.Label "deployer.service"}}}}') || exit 1
old=
for entry in $names; do
  if [ "${{entry%%|*}}" != "$I.${{entry#*|}}" ]; then old="$old ${{entry%%|*}}"; fi
done
if [ -n "$old" ]; then docker rm -f $old >/dev/null || exit 1; fi
mark pruned; for n in $old; do echo "$n"; done
mark images; for image in $(built); do docker rmi "$image" >/dev/null 2>&1 && echo "$image"; done; :
""",
            instance,
        )
        return out["pruned"].split(), out["images"].split()

    def control(self, instance, verb, names, who, lock_wait):
        """``docker stop|start|restart`` of the named containers, holding the instance's lock."""
        self._script(
            f'lock "$S/instances/"{q(instance)} {int(lock_wait)} {q(who)} || exit 1\n'
            f"docker {q(verb)} {join(names)} >/dev/null || exit 1",
            instance,
        )

    def destroy(self, instance, volumes, who, lock_wait):
        """Remove the instance's containers and state (and its volumes when asked), after
its endpoints' keys in etcd, when it registered any.

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
lock "$S/instances/$I" {int(lock_wait)} {q(who)} || exit 1
if [ -f "$S/instances/$I/etcd" ]; then  # its endpoints go first: nothing is removed if etcd is away
  {{ read -r E; read -r forget; }} <"$S/instances/$I/etcd" && etcd deleterange "$forget" >/dev/null || exit 1
fi
ids=$(docker ps -aq --filter "label=deployer.instance=$I") || exit 1
if [ -n "$ids" ]; then docker rm -f $ids >/dev/null || exit 1; fi
images=$(built) && docker rmi $images >/dev/null 2>&1  # one still in use (a one-off container's) stays
rm -rf -- "$S/instances/$I" || exit 1
{rm_volumes}
""",
            instance,
        )
        return "missing" not in out

    # -- plumbing -----------------------------------------------------------------------

    def _script(self, body, instance=None):
        boundary = _boundary()
        result = self._start(boundary, body).finish()
        if result.exited != 0:
            raise self._error(result, instance)
        return _sections(result.stdout, boundary)

    def _start(self, boundary, body, text=None):
        """Run a script on the host; what it reports goes to the listener as it arrives
        (and ``text(line)``, if given, hears each line of its other stderr)."""
        return self.runner.start(self._wrap(boundary, body), Watch(boundary, self.report, text))

    def _wrap(self, boundary, body):
        return (
            "exec 3<&0 4>&2\n{\n"
            f"B={boundary}\n"
            f"cfg_state_dir={q(self.settings.get('state_dir') or '')}\n"
            f"cfg_volume_dir={q(self.settings.get('volume_dir') or '')}\n"
            f"{LIBRARY}\n{VERBOSE * self.verbose}{body}\n"
            "} </dev/null\n"
        )

    def _facts_body(self, instance, images, discovery):
        """The script lines reporting an instance's facts (see Facts)."""
        body = f"""
I={q(instance)}
mark roots; printf '%s\\n%s\\n' "$S" "$V"
F="$S/instances/$I/state.json"
if [ -f "$F" ]; then mark state; cat "$F" || exit 1; fi
mark docker; inspect "$I" {join(images)} || exit 1
"""
        if discovery:
            body += _DISCOVERY_FACTS
        if discovery and self.etcd:
            body += (
                f"E={q(' '.join(self.etcd.urls))}\n"
                '[ -s "$S/id" ] || { mkdir -p "$S" && cat /proc/sys/kernel/random/uuid >"$S/id.$$" && mv -n "$S/id.$$" "$S/id"; } || exit 1\n'
                'mark host-id; cat "$S/id" || exit 1\n'
                f"mark address; address {q(self.etcd.route_target)} || exit 1\n"
                f"mark registry; etcd range {q(self.etcd.range_request())} || exit 1\n"
            )
        elif discovery:
            body += "mark bridge; docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}' || exit 1\n"
        return body

    def _facts(self, out, instance, images):
        roots = Roots(*out["roots"].splitlines())
        path = f"{self.name}:{roots.state_dir}/instances/{instance}/state.json"
        state = InstanceState.from_json(out["state"], path) if "state" in out else None  # blank: corrupt
        try:
            objects = json.loads(out["docker"] or "[]")
            containers = tuple(Container.from_inspect(o) for o in objects if "State" in o)
            ids = image_ids([o for o in objects if "RepoTags" in o], images)
        except (ValueError, KeyError, TypeError) as e:
            raise DeployerError(f"cannot read docker inspect output: {e}", host=self.name) from None
        others = tuple(
            InstanceState.from_json(text, f"{self.name}:{key[6:]}") for key, text in out.items() if key.startswith("other ")
        )
        registry = {}
        if "registry" in out:
            try:
                registry = read_registry(out["registry"], self.etcd.prefix)
            except ValueError as e:
                raise DeployerError(str(e), host=self.name) from None
        return Facts(roots, state, containers, ids, bridge_address(out.get("bridge", "")), others,
                     frozenset(listening(out.get("listening", ""))), out.get("host-id", "").strip(),
                     out.get("address", "").strip(), registry)

    def _error(self, result, instance):
        lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("Run 'docker")]
        message = [l.removeprefix("deployer: ") for l in lines if not l.startswith("log: ")]
        error = DeployerError(
            " | ".join(message[-3:]) or f"exit status {result.exited}", host=self.name, instance=instance
        )
        error.details = [l[5:] for l in lines if l.startswith("log: ")]
        return error


class Deploy:
    """The second turn of a locked deploy: send the plan, learn what was done."""

    def __init__(self, host, session, boundary, instance, facts):
        self.host, self.session, self.boundary, self.instance, self.facts = host, session, boundary, instance, facts
        self.finished = False
        self.seconds = {}  # service -> seconds its step took on the host

    def apply(self, actions, final_state, record, template_text, limits, deps=None, registry=None):
        """Run the changing actions in order, then write template, state and history (and
        the ``registry`` transaction to etcd, if any).

        Returns the services whose action succeeded and the error that stopped the rest
        (None when all succeeded), so the caller can record what really runs.
        """
        steps = [f"I={q(self.instance)}; D=\"$S/instances/$I\"; H={int(limits.health_timeout)}; U={float(limits.min_uptime)}"]
        dirs = [d for a in actions if a.spec and a.kind != KEEP for d in a.spec.host_dirs]
        if dirs:
            steps.append(f"mkdir -p {join(dirs)} && inside {join(dirs)} || exit 1")
        release = ["--label", f"deployer.release={final_state.release}"]
        names = {c.name for c in self.facts.containers}
        creates = {}  # wave -> commands: new services start at once, after those they expose
        deps = deps or {}
        new = {a.service for a in actions if a.kind == CREATE}

        def wave(service):
            return 1 + max((wave(d) for d in deps.get(service, ()) if d in new), default=-1)

        for a in actions:
            if a.kind == KEEP:
                continue
            if a.spec is None:
                steps.append(f'down {q(a.service)} "$I" || exit 1')
            elif a.reuse:
                function = "again" if a.spec.start_first else "back"
                steps.append(f"{function} {join([a.service, a.spec.name, a.retire, a.reuse])} || exit 1")
            elif a.kind == CREATE:
                run = self._run("up", a.spec, [a.service, a.spec.name, "", *release], a.spec.name, '& pids="$pids $!"')
                creates.setdefault(wave(a.service), []).append(run)
            elif a.spec.start_first:
                if f"{a.spec.name}.next" in names:  # left by a deploy that was cut off
                    steps.append(f"docker rm -f {q(a.spec.name + '.next')} >/dev/null")
                steps.append(self._run("first", a.spec, [a.service, a.spec.name, a.retire, *release], a.spec.name + ".next"))
            else:
                steps.append(self._run("up", a.spec, [a.service, a.spec.name, a.retire, *release], a.spec.name))
        for number in sorted(creates):
            steps += ["pids=", *creates[number], 'failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1']
        pruned = [name for a in actions for name in a.prune]
        if pruned:
            steps.append(f"docker rm -f {join(pruned)} >/dev/null")
        steps += [f'put "$D/template.yaml" {q(template_text)} || exit 1', _record(final_state, record, limits.history)]
        if registry:
            steps.append(self._registry(registry))
        self.host.report("apply", actions)
        result = self.finish("\n".join(steps))
        marks = [mark.split() for mark in _sections(result.stdout, self.boundary)["_marks"]]
        self.seconds = {m[0]: elapsed(*m[1:]) for m in marks}
        done = {m[0] for m in marks}
        self.host.report("applied", *done)
        return done, None if result.exited == 0 else self.host._error(result, self.instance)

    def _run(self, function, spec, head, name, then="|| exit 1"):
        """The line calling ``up``/``first`` with the spec's ``docker run`` arguments; its
        secrets go in an env file on fd 5 (a here-document ending at the boundary, which no
        value can hold), not in the arguments, which the host's process list shows."""
        hidden = spec.hidden_env()
        args = join([*head, *spec.run_args(name=name, env_file=SECRETS_FD if hidden else None)])
        if not hidden:
            return f"{function} {args} {then}"
        return f"{function} {args} {SECRETS}<<'{self.boundary}' {then}\n{_env_file(hidden)}{self.boundary}"

    def register(self, registry):
        """Bring etcd up to date, when nothing else changed (etcd lost or missed keys)."""
        result = self.finish(f'I={q(self.instance)}; D="$S/instances/$I"\n{self._registry(registry)}')
        if result.exited != 0:
            raise self.host._error(result, self.instance)

    def _registry(self, transaction):
        """Lines running the etcd transaction, after keeping in the instance's directory what
        destroy needs to remove its keys (even if the destroying side has no etcd settings)."""
        etcd = self.host.etcd
        urls = " ".join(etcd.urls)
        forget = f"{urls}\n{etcd.delete_request(self.instance, self.facts.host_id)}\n"
        return f'E={q(urls)}\nput "$D/etcd" {q(forget)} || exit 1\netcd txn {q(transaction)} >/dev/null || exit 1'

    def finish(self, body):
        self.finished = True
        if body:
            self.session.send(f"{body}\n# {self.boundary} end\n")
        return self.session.finish()


# what allocating endpoints needs: ports in use, other instances (and where endpoints are
# published: the bridge's address, or with etcd the host's own, see _facts_body)
_DISCOVERY_FACTS = r"""
for F in "$S"/instances/*/state.json; do
  if [ -f "$F" ] && [ "$F" != "$S/instances/$I/state.json" ]; then mark "other $F"; cat "$F" || exit 1; fi
done
mark listening; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
"""


def _docker_build(instance, tag, source):
    """The script building a Dockerfile app from the tar on fd 3."""
    args = ["--force-rm", "--label", f"deployer.instance={instance}", "-t", tag, "-f", source.dockerfile]
    args += [arg for key, value in source.build_args for arg in ("--build-arg", f"{key}={value}")]
    return f"T={q(tag)}\nmark ready\ndocker build {join(args)} - <&3 >&2 || exit 1\n" + _BUILT


def _slug_build(instance, tag, source):
    """The script building a slug app from the tar on fd 3 (_SLUG_BUILD)."""
    values = {"I": instance, "N": source.service, "T": tag, "BUILDER": source.slug.builder,
              "RUNNER": source.slug.runner}
    return "".join(f"{name}={q(value)}\n" for name, value in values.items()) + _SLUG_BUILD + _BUILT


# A slug build: the app's tar goes straight into the builder (its cache directory is the
# instance's, kept across builds, removed with the instance); the slug it writes is baked
# into an image FROM the runner, which starts it from SLUG_URL: a container of that image
# fetches nothing. The slug and the Dockerfile wait in a work directory that is removed
# however the script ends (and before the next build, should the script have been killed).
_SLUG_BUILD = r"""
need() {
  docker image inspect "$2" >/dev/null 2>&1 && return 0
  echo "deployer: the slug $1 image $2 is not on the host (setting deployer.slug.$1_image; pull or build it there)" >&2
  exit 1
}
need builder "$BUILDER"; need runner "$RUNNER"
D="$S/instances/$I" W="$S/instances/$I/build.$N"
mkdir -p "$D/cache/$N" && rm -rf "$W" && mkdir "$W" || exit 1
at_exit 'rm -rf "$W"'
trap 'exit 1' HUP INT TERM PIPE
mark ready
docker run --rm -i -a stdin -a stdout -a stderr -v "$D/cache/$N:/tmp/cache" "$BUILDER" - <&3 >"$W/slug.tgz" || exit 1
if [ ! -s "$W/slug.tgz" ]; then
  echo "deployer: the slug builder image $BUILDER wrote no slug to its stdout (given -, it should)" >&2
  exit 1
fi
printf '%s\n' "FROM $RUNNER" 'COPY slug.tgz /slug.tgz' 'ENV SLUG_URL=file:///slug.tgz' >"$W/Dockerfile"
docker build --force-rm --label "deployer.instance=$I" -t "$T" "$W" >&2 || exit 1
"""

# After a build: the image's id
_BUILT = """mark image; docker image inspect --format '{{.Id}}' "$T" || exit 1\n"""


def _env_file(env):
    """An env file docker reads with --env-file: a line per variable (no line breaks in values)."""
    return "".join(f"{key}={value}\n" for key, value in env.items())


def _record(state, record, history=0):
    """Shell lines writing state.json and appending the release to history.jsonl (in $D),
    which keeps the newest ``history`` releases (0: all)."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":"))
    lines = (
        f'put "$D/state.json" {q(state.to_json())} || exit 1\n'
        f'trace append "$D/history.jsonl" {len(line.encode()) + 1}\n'
        f'(umask 077 && printf "%s\\n" {q(line)} >>"$D/history.jsonl") || exit 1'
    )
    if history:
        lines += (
            f'\nif [ "$(wc -l <"$D/history.jsonl")" -gt {int(history)} ]; then\n'
            f'  (umask 077 && tail -n {int(history)} "$D/history.jsonl" >"$D/history.jsonl.tmp.$$" '
            '&& mv -f "$D/history.jsonl.tmp.$$" "$D/history.jsonl") || exit 1\nfi'
        )
    return lines


def _boundary():
    return "@@deployer-" + secrets.token_hex(8)


def _sections(stdout, boundary):
    """Split script output at boundary lines: ``{name: text}``, plus ``ok`` marks in order.

    A boundary may follow text on its line (a file without a final newline was printed)."""
    sections, marks, name, lines = {}, [], None, []
    for line in stdout.splitlines(keepends=True):
        at = line.find(boundary + " ")
        if at >= 0:
            if name is not None:
                sections[name] = "".join(lines + [line[:at]])
            name, lines = line[at + len(boundary) + 1 :].rstrip("\n"), []
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
