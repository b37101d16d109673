"""Hooks: the user's own commands around a deploy or a rollback, on the deploying machine.

Order, and why:

- ``pre-deploy`` / ``pre-rollback`` run first, before the host is contacted at all: a
  non-zero exit stops there, so no lock was taken and no file written (a CI check, a
  freeze window). The release number and the services that change are not known yet
  (only the host can say), so ``DEPLOYER_RELEASE`` and ``DEPLOYER_CHANGED`` are empty.
- ``post-deploy`` / ``post-rollback`` run once the plan has run on the host, before the
  host releases the instance's lock: the host's script waits for the client's end
  (remote/sh/converse.sh), so no second deploy slips in between a deploy and its post
  hook (Kamal runs its post-deploy outside its lock: Kamal #1517). They run after a
  deploy that changed something, or failed (``DEPLOYER_RESULT=failed``), never after one
  that changed nothing. Their failure is reported (exit 1) and undoes nothing: the
  deploy is done. (A failed deploy's record of what it did change is written once its
  lock is gone, as before hooks existed.)

A hook is ``sh -c COMMAND`` in the template's directory (a rollback or a redeploy, which
read no template: the current one), stdin ``/dev/null`` (several hosts run theirs at
once; once per host, with ``DEPLOYER_HOST``), each line of its output shown as it comes
(``post-deploy | ...``). Its environment is deployer's, without any variable holding a
secret the template names (by name or by value), plus ``DEPLOYER_INSTANCE``,
``DEPLOYER_HOST``, ``DEPLOYER_RELEASE``, ``DEPLOYER_TEMPLATE`` (its absolute path), ``DEPLOYER_CHANGED``
(services, space-separated), ``DEPLOYER_RESULT`` (``ok``/``failed``, post hooks) and
``DEPLOYER_DRY_RUN`` (``1`` in a dry run, which runs the hooks too: a hook that acts
should look at it). The template's ``Hooks`` win over fabric.yaml's ``deployer.hooks.*``
for the same hook; a rollback's and a redeploy's come from fabric.yaml alone: the template
a host holds is never a source of commands for the deploying machine.
"""

import collections
import dataclasses
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import DeployerError
from ..model.schema import HOOKS


@dataclass(frozen=True)
class Ran:
    """A hook that ran: its exit code (128 + N when signal N ended it) and seconds."""

    name: str
    exit_code: int
    seconds: float
    last: tuple = ()  # its last lines of output, for an error
    where: dict = field(default_factory=dict)  # where it is set: DeployerError's file and key

    def to_dict(self):
        return {"name": self.name, "exit_code": self.exit_code, "seconds": self.seconds}

    def error(self, host, instance, outcome):
        error = DeployerError(f"{self.name} hook failed (exit code {self.exit_code}): {outcome}", host=host,
                              instance=instance, **self.where)
        error.details = list(self.last)
        return error


@dataclass
class Hooks:
    """The hooks of one deploy (``kind`` "deploy") or rollback on one host."""

    kind: str
    host: str  # as errors name it
    commands: dict  # name -> (command, where it is set: DeployerError's file and key)
    directory: str
    variables: dict  # DEPLOYER_INSTANCE, _HOST, _TEMPLATE, _DRY_RUN
    environment: dict  # the rest of a hook's environment (no secret in it)
    progress: Callable | None = None  # progress(name, line)
    skipped: bool = False  # --no-hooks
    ran: list = field(default_factory=list)
    _posted: bool = False

    @property
    def notes(self):
        """``--no-hooks``, said once, naming what it skipped."""
        if self.skipped and self.commands:
            return (f"--no-hooks: {', '.join(name for name in HOOKS if name in self.commands)} not run",)
        return ()

    def pre(self):
        """The pre hook; its failure stops everything, the host untouched."""
        ran = self._run(f"pre-{self.kind}")
        if ran and ran.exit_code:
            raise ran.error(self.host, self.variables["DEPLOYER_INSTANCE"], "nothing was done on the host")

    def post(self, ok, changed=(), release=""):
        """The post hook, once (a failed apply reports its failure, then raises it)."""
        if not self._posted:
            self._posted = True
            self._run(f"post-{self.kind}", DEPLOYER_RESULT="ok" if ok else "failed",
                      DEPLOYER_CHANGED=" ".join(changed), DEPLOYER_RELEASE=str(release))

    def will(self, name):
        """Whether the hook ``name`` runs (without one, the host need not wait for it)."""
        return not self.skipped and name in self.commands

    def _run(self, name, **variables):
        if not self.will(name):
            return None
        env = {**self.environment, "DEPLOYER_RELEASE": "", "DEPLOYER_CHANGED": "", "DEPLOYER_RESULT": "",
               **self.variables, **variables}
        started, last = time.monotonic(), collections.deque(maxlen=10)
        try:
            with subprocess.Popen(["sh", "-c", self.commands[name][0]], cwd=self.directory, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace") as proc:
                for line in proc.stdout:
                    last.append(line.rstrip("\n"))
                    if self.progress:
                        self.progress(name, last[-1])
            code = proc.returncode
        except OSError as e:  # its directory is gone
            code, last = 127, [f"cannot run it in {self.directory}: {e.strerror}"]
        ran = Ran(name, 128 - code if code < 0 else code, round(time.monotonic() - started, 2), tuple(last),
                  self.commands[name][1])
        self.ran.append(ran)
        return ran


def around(hooks, operation):
    """``operation(post)`` between the pre and the post hook, which ``operation`` calls
    while the host holds the lock (``post`` is None when there is no post hook to run); a
    failure before that (the host unreachable, the lock not free) still gets its post
    hook, as ``failed``. The result, with the hooks run."""
    hooks.pre()
    try:
        result = operation(hooks.post if hooks.will(f"post-{hooks.kind}") else None)
    except DeployerError as e:
        hooks.post(False)
        e.details += [f"{ran.name} hook: exit code {ran.exit_code}" for ran in hooks.ran if ran.exit_code]
        raise
    return dataclasses.replace(result, hooks=tuple(hooks.ran), notes=(*result.notes, *hooks.notes))


def check(result):
    """Once the result was shown: a post hook that failed is the task's error (exit 1)."""
    for ran in result.hooks:
        if ran.exit_code:
            done = f"the {ran.name.split('-')[1]} itself is done (release {result.release})"
            raise ran.error(result.host, result.instance, done)


def of(kind, host, instance, options, template=None, secrets=None):
    """The hooks of a deploy (``kind`` "deploy", from ``template`` if given) or a rollback,
    as the settings and the template set them."""
    commands = {name: (command, {"key": key}) for name, (command, key) in host.settings.hooks.items()
                if name.endswith(f"-{kind}")}
    if template is not None:
        commands.update({name: (command, {"file": template.path, "key": f"Hooks.{name}"})
                         for name, command in template.settings.get("Hooks", {}).items()})
    path = os.path.abspath(template.path) if template is not None else ""  # the hook runs in its directory
    variables = {"DEPLOYER_INSTANCE": instance, "DEPLOYER_HOST": host.hostname, "DEPLOYER_TEMPLATE": path,
                 "DEPLOYER_DRY_RUN": "1" if options.dry_run else "0"}
    names = set(template.secret_names if template is not None else ())
    values = {value for value in (secrets or {}).values() if value}
    environment = {k: v for k, v in os.environ.items() if k not in names and v not in values}
    return Hooks(kind, host.name, commands, os.path.dirname(path) or os.getcwd(), variables, environment, options.progress, not options.hooks)
