"""Docker engines: the local one, the test image in it, and extra engines on this same
machine that stand for other hosts (FABRIC-NOTES.md: a second dockerd works with a bridge,
data, exec root, pid file and socket of its own), so their containers never meet the local
engine's. The tests start one extra engine, the bench's 10-hosts row nine."""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import REPO_ROOT, HarnessError, poll, processes

IMAGE = "local/busybox:latest"  # built offline by .ci/busybox-image
ROOTS = "/tmp/de"  # short: containerd's socket paths under an engine's root are limited in length


def local_engine():
    """The local engine's version; HarnessError if it does not answer."""
    try:
        res = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HarnessError(f"docker engine unusable ({e}); run .ci/setup") from None
    if res.returncode != 0:
        raise HarnessError(f"`docker info` failed; run .ci/setup\n{res.stderr}")
    return res.stdout.strip()


def ci_images(script):
    """Run .ci/<script>, which builds test images in the local engine unless they exist."""
    res = subprocess.run([str(REPO_ROOT / ".ci" / script)], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise HarnessError(f".ci/{script} failed:\n{res.stdout}\n{res.stderr}")


def busybox_image():
    """The ~2 MB test image (sh, httpd, nc, sleep...), built from the host's static busybox."""
    ci_images("busybox-image")
    return IMAGE


class Engine:
    """An extra dockerd with its own bridge (on a 172.31.N.0/24 no other interface has),
    data, exec root and socket under root. iptables=False leaves no rules behind for a
    bridge that is gone (docker-proxy still serves published ports on 127.0.0.1);
    own_session=True keeps a Ctrl-C meant for the caller from reaching it. netns: the
    name of a network namespace to run in (a node with an address of its own, swarm.py):
    its docker0 is then the engine's own, in there, so no bridge is made on the host; its
    hostname is the namespace's name (nodes of a swarm are told apart by it). Only the
    network and hostname are its own (nsenter, unshare): ``ip netns exec`` would also
    remount /sys, hiding the cgroups dockerd needs."""

    def __init__(self, root, bridge_prefix="br-de", iptables=True, own_session=False, args=(), netns=None):
        self.root, self.bridge_prefix, self.args = Path(root), bridge_prefix, list(args)
        self.iptables, self.own_session, self.netns = iptables, own_session, netns
        self.bridge = self.process = None
        self.terminated = False

    @property
    def url(self):
        return f"unix://{self.root}/docker.sock"

    @property
    def env(self):
        """The environment of a docker client of this engine."""
        return dict(os.environ, DOCKER_HOST=self.url)

    def start(self):
        """Make the bridge and start dockerd (wait() for it to answer)."""
        self.root.mkdir(parents=True, exist_ok=True)
        argv = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "x"),
                "--pidfile", str(self.root / "pid"), "-H", self.url, *self.args]
        if self.netns:
            argv = ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--uts", "sh", "-c",
                    'hostname "$0" && exec "$@"', self.netns, *argv]
        else:
            self._make_bridge()
            argv += ["--bridge", self.bridge]
        with open(self.root / "dockerd.log", "wb") as log:
            self.process = subprocess.Popen(argv + ([] if self.iptables else ["--iptables=false"]),
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=self.own_session)

    def _make_bridge(self):
        used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
        number = next(n for n in range(200, 250) if f"172.31.{n}." not in used)
        self.bridge = f"{self.bridge_prefix}{os.getpid() % 100000}-{number}"[:15]
        for cmd in (["ip", "link", "add", self.bridge, "type", "bridge"],
                    ["ip", "addr", "add", f"172.31.{number}.1/24", "dev", self.bridge],
                    ["ip", "link", "set", self.bridge, "up"]):
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                raise HarnessError(f"{' '.join(cmd)}: {res.stderr.strip()}")

    def answers(self):
        return subprocess.run(["docker", "info"], env=self.env, capture_output=True, timeout=30).returncode == 0

    def wait(self, timeout=60):
        """Until the engine answers; HarnessError with the end of its log if it does not."""
        poll.until_up(self.process, self.answers, f"dockerd in {self.root}", self.root / "dockerd.log",
                      timeout, interval=0.2)

    def load(self, tar):
        """Start loading an image saved to the file tar (`docker save -o`): a Popen."""
        return subprocess.Popen(["docker", "load", "-q", "-i", str(tar)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def remove_containers(self):
        """Start removing every container of this engine (all are the harness's): a Popen or None."""
        if not self.process or self.process.poll() is not None:
            return None
        ids = subprocess.run(["docker", "ps", "-aq"], env=self.env, capture_output=True, text=True,
                             timeout=60).stdout.split()
        return subprocess.Popen(["docker", "rm", "-f", *ids], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) if ids else None

    def remove_networks(self):
        """Remove the networks its containers used (deployer's per instance): a stopped
        dockerd leaves their bridges on the machine, each holding an address range the
        local engine then cannot give a network of its own."""
        subprocess.run(["docker", "network", "prune", "-f"], env=self.env, capture_output=True, timeout=60)

    def terminate(self):
        """Ask dockerd to stop, once (a third signal makes it quit without cleaning up)."""
        if self.process and self.process.poll() is None and not self.terminated:
            self.process.terminate()
        self.terminated = True

    def restart(self, timeout=60):
        """Stop dockerd and start it again on the same data, as `systemctl restart docker`
        does: the containers' restart policies say which run again."""
        self.halt()
        self.resume(timeout)

    def halt(self):
        """Stop dockerd, keeping its data for resume() (a host whose engine stopped)."""
        self.terminate()
        self.process.wait(60)
        self.terminated = False
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def resume(self, timeout=60):
        """Start dockerd again on its data, and wait for it to answer."""
        self.start()
        self.wait(timeout)

    def stop(self):
        """Stop dockerd (and the containerd it started), unmount what it left, remove its bridge."""
        if self.process:
            self.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        pid_file = self.root / "x" / "containerd" / "containerd.pid"  # left only if dockerd was killed
        processes.stop_pid(pid_file, str(self.root))
        unmount_under(self.root)
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def load_image(engines, image, tar):
    """Copy image from the local engine into engines, all at once, through the file tar:
    {engine: why it failed} for those where it did not."""
    save = subprocess.run(["docker", "save", "-o", str(tar), image], capture_output=True, text=True, timeout=300)
    if save.returncode:
        raise HarnessError(f"docker save {image}: {save.stderr.strip()}")
    loads = [(engine, engine.load(tar)) for engine in engines]
    errors = {}
    for engine, load in loads:
        with load.stderr:
            if load.wait(300):
                errors[engine] = "docker load: " + load.stderr.read().decode(errors="replace").strip()
    return errors


@contextlib.contextmanager
def extra_engine(image, timeout=60, args=()):
    """One more engine holding image, for the block (an Engine; ``args``: dockerd's own
    options). All of it goes at the end."""
    engine = Engine(tempfile.mkdtemp(prefix=ROOTS), args=args)
    try:
        engine.start()
        engine.wait(timeout)
        errors = load_image([engine], image, engine.root / "image.tar")
        if errors:
            raise HarnessError(errors[engine])
        yield engine
    finally:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            removing = engine.remove_containers()
            if removing:
                removing.wait()
            engine.remove_networks()
        engine.stop()
        shutil.rmtree(engine.root, ignore_errors=True)


def unmount_under(root):
    """Lazily unmount whatever is still mounted under root, deepest first."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for point in sorted((m for m in mounts if m == str(root) or m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
