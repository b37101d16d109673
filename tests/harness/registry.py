"""A Docker registry (Debian's ``docker-registry``, distribution's ``registry serve``) on
this machine, for the block: images pushed to it get the registry digests a swarm deploy
pins (tests/harness/swarm.py: the nodes reach it at the host's address on their switch,
and take it as an insecure registry: plain HTTP). Its storage is a directory of its own,
removed at the end with the process."""

import contextlib
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt

from . import HarnessError, poll
from .processes import stop

BINARY = "docker-registry"


@contextlib.contextmanager
def running(address, timeout=30, login=None):
    """``HOST:PORT`` of a registry listening on ``address`` (an address of this machine);
    with a ``login`` (user, password) it answers only those who give it (htpasswd)."""
    if not shutil.which(BINARY):
        raise HarnessError(f"{BINARY} is missing: run .ci/setup (the docker-registry package)")
    root = Path(tempfile.mkdtemp(prefix="deployer-registry-"))
    port = poll.free_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
                      f"http:\n  addr: {address}:{port}\n")
    if login:  # bcrypt, the one hash the registry takes (paramiko's dependency, so deployer's)
        user, password = login
        (root / "htpasswd").write_bytes(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt()))
        with open(config, "a") as out:
            out.write(f"auth:\n  htpasswd:\n    realm: deployer-tests\n    path: {root / 'htpasswd'}\n")
    log = root / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([BINARY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        poll.until_up(process, lambda: _answers(f"http://{address}:{port}/v2/"), BINARY, log, timeout)
        yield f"{address}:{port}"
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _answers(url):
    """Whether the registry answers a GET of ``url``, be it to ask for a login."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as e:
        return e.code == 401
    except OSError:
        return False
