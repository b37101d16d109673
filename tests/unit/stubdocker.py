"""The host scripts, run for real in milliseconds: a stub ``docker`` and a runner.

``StubDocker`` puts ``stubdocker.sh`` on PATH as ``docker``: it records each call, keeps
containers by name as docker does (run, rename, start, stop, rm, container inspect),
and fails or answers on demand (``fail``, ``answer``). A test prepares what the host has
(``container``, ``states``, ``logs``) and asserts on what happened (``log``,
``containers``, ``env_file``). ``sleep`` is a stub too (it returns at once), so a
health check polled every half second costs nothing.

``Shell.run`` puts a script together exactly as a Host does (``scripts.script``: the
library, the sources it uses, the body) and runs it with ``LocalRunner`` (``sh -s``), so
marks, notes and errors travel as they do from a real host. No sshd, no dockerd.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from deployer.remote.framing import Watch
from deployer.remote.host import Host
from deployer.remote.scripts import assign, instance, script
from deployer.remote.session import LocalRunner
from deployer.settings import Settings

HERE = Path(__file__).parent
BOUNDARY = "@@deployer-0123456789abcdef"


class StubDocker:
    """A ``docker`` (and ``sleep``) in ``top/bin``, put first on PATH by ``install``."""

    def __init__(self, top):
        self.top = Path(top)
        self.bin = self.top / "bin"
        for folder in (self.bin, self.top / "containers", self.top / "states", self.top / "logs",
                       self.top / "env", self.top / "out", self.top / "err", self.top / "stdin"):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "stubdocker.sh", self.bin / "docker")
        (self.bin / "docker").chmod(0o755)
        self.tool("sleep")
        self._rules = 0

    def install(self, monkeypatch):
        """This stub first on PATH, and the host's roots the scripts' own (not
        DEPLOYER_STATE_DIR / DEPLOYER_VOLUME_DIR from the environment), until the test ends."""
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ['PATH']}")
        for name in ("DEPLOYER_STATE_DIR", "DEPLOYER_VOLUME_DIR"):
            monkeypatch.delenv(name, raising=False)

    def tool(self, name, exit=0):
        """Another command stubbed: ``name`` exits ``exit`` at once, doing nothing."""
        (self.bin / name).write_text(f"#!/bin/sh\nexit {int(exit)}\n")
        (self.bin / name).chmod(0o755)

    # -- what the host has ---------------------------------------------------------------

    def container(self, name, id=None, status="running"):
        """A container docker has, named ``name`` (its id is the name unless given)."""
        (self.top / "containers" / name).write_text(f"{id or name} {status}\n")

    def states(self, name, *answers):
        """What ``container inspect --format`` answers about ``name``, a call each, the last
        for ever: ``"running 0 "``, ``"running 0 starting"``, ``"exited 1 "``..."""
        (self.top / "states" / name).write_text("".join(f"{a}\n" for a in answers))

    def logs(self, name, text):
        (self.top / "logs" / name).write_text(text)

    def fail(self, pattern, exit=1, nth=0, stderr="Error response from daemon: stub failure\n"):
        """A call matching ``pattern`` (a glob over its arguments joined by spaces) fails
        (only its ``nth`` match, if given), doing nothing."""
        self.answer(pattern, exit=exit, nth=nth, stderr=stderr)

    def answer(self, pattern, stdout="", exit=0, nth=0, stderr=""):
        """A call matching ``pattern`` prints ``stdout`` and exits ``exit``, doing nothing else.
        A later rule goes before those given earlier, so a test can override a default."""
        self._rules += 1
        for folder, text in (("out", stdout), ("err", stderr)):
            if text:
                (self.top / folder / str(self._rules)).write_text(text)
        rules = self.top / "rules"
        earlier = rules.read_text() if rules.exists() else ""
        rules.write_text(f"{self._rules}\t{int(nth)}\t{int(exit)}\t{pattern}\n{earlier}")

    # -- what happened -------------------------------------------------------------------

    def calls(self):
        """Every call's arguments, in the order docker received them."""
        path = self.top / "calls"
        fields = path.read_bytes().decode().split("\0")[:-1] if path.exists() else []
        calls = []
        while fields:
            count = int(fields.pop(0))
            calls.append(tuple(fields[:count]))
            del fields[:count]
        return calls

    def log(self, skip=("container inspect", "logs")):
        """The calls in short: ``run NAME`` for a ``docker run`` (``run one-off WORD``
        for a one-off: its command's last word; ``create`` likewise), ``container inspect NAME``
        whatever the format, the others as they were; without those starting with ``skip``
        (the questions a script asks)."""
        short = [_short(call) for call in self.calls()]
        return [line for line in short if not line.startswith(tuple(skip))]

    def containers(self):
        """``{name: "ID STATUS"}``: the containers docker has now."""
        return {p.name: p.read_text().strip() for p in sorted((self.top / "containers").iterdir())}

    def stdin(self, kind, name):
        """What ``docker KIND create NAME -`` read from its stdin (None: no such call)."""
        path = self.top / "stdin" / f"{kind}-{name}"
        return path.read_text() if path.exists() else None

    def env_file(self, id):
        """The env file ``docker run`` read for container ``id`` (None: it was given none)."""
        path = self.top / "env" / id
        return path.read_text() if path.exists() else None


def _short(call):
    if call[:1] in (("run",), ("create",)) and "--name" not in call:
        return f"{call[0]} one-off {call[-1]}"
    if call[:1] in (("run",), ("create",)):
        return f"{call[0]} {call[call.index('--name') + 1]}"
    if call[:2] == ("container", "inspect"):
        return f"container inspect {call[-1]}"
    return " ".join(call)


@dataclass
class Ran:
    """How a script ended, what it printed, and what it reported while it ran."""

    exited: int
    stdout: str
    stderr: str
    heard: list = field(default_factory=list)  # (kind, *fields): marks and notes as they came

    @property
    def done(self):
        """The services whose step was marked done (``ok SERVICE T0 T1``), in order."""
        return [fields[0] for kind, *fields in self.heard if kind == "ok"]

    def marks(self, kind):
        return [tuple(fields) for k, *fields in self.heard if k == kind]

    @property
    def error(self):
        """The DeployerError a Host makes of this failed script (its message and details)."""
        return Host(LocalRunner()).error(self, "c1")


class Shell:
    """Runs scripts as a Host puts them together, about instance ``c1`` (I and D set, as in
    a deploy's script), with the state
    and volume roots under ``top`` and the stub docker on PATH (set by the fixture)."""

    def __init__(self, top, docker):
        self.top = Path(top)
        self.docker = docker
        self.state_dir = self.top / "state"
        self.volume_dir = self.top / "volumes"
        self.instance_dir = self.state_dir / "instances" / "c1"

    def host(self, runner=None, verbose=False):
        """A Host reaching this machine (``runner``: a LocalRunner unless given) with these
        roots, and the limits of plans.LIMITS."""
        settings = Settings(state_dir=str(self.state_dir), volume_dir=str(self.volume_dir), verbose=verbose,
                            health_timeout=60, min_uptime=1.0, history=5)
        return Host(runner or LocalRunner(), settings)

    def start(self, body, uses=("replace", "network"), verbose=False):
        """The script running (a Session): to talk to it, or to hold what it holds. Its
        new containers must run a second (a stub sleep: no time) and turn healthy
        within 3 s (6 polls)."""
        head = f"{instance('c1')}\n{assign(DPL_HEALTH_TIMEOUT=3, DPL_MIN_UPTIME=1)}\n"
        text = script(BOUNDARY, head + body, uses, str(self.state_dir), str(self.volume_dir), verbose)
        heard = []
        session = LocalRunner().start(text, Watch(BOUNDARY, lambda *fields: heard.append(fields)))
        session.heard = heard
        return session

    def run(self, body, uses=("replace", "network"), verbose=False):
        """Run the script to its end."""
        session = self.start(body, uses, verbose)
        result = session.finish()
        return Ran(result.exited, result.stdout, result.stderr, session.heard)
