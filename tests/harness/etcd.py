"""An etcd v3 server (Debian's etcd-server) on free loopback ports, with its data in a
directory of its own: the store of the etcd discovery backend's tests."""

import contextlib
import shutil
import subprocess
from pathlib import Path

from . import HarnessError, poll, processes


@contextlib.contextmanager
def running(root, timeout=30):
    """etcd for the block, its data under root: its client URL."""
    etcd = shutil.which("etcd")
    if not etcd:
        raise HarnessError("etcd missing (Debian package etcd-server); run .ci/setup")
    root = Path(root)
    client, peer = f"http://127.0.0.1:{poll.free_port()}", f"http://127.0.0.1:{poll.free_port()}"
    log = root / "etcd.log"
    with open(log, "w") as out:
        process = subprocess.Popen([etcd, "--name", "test", "--data-dir", str(root / "data"),
                                    "--listen-client-urls", client, "--advertise-client-urls", client,
                                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                    "--initial-cluster", f"test={peer}"], stdout=out, stderr=subprocess.STDOUT)
    try:
        poll.until_up(process, lambda: poll.answers(client + "/version"), "etcd", log, timeout, interval=0.2)
        yield client
    finally:
        processes.stop(process)
