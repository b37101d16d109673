"""A throwaway OpenSSH server on 127.0.0.1: the "host" the tests and the bench deploy to.

What it took (FABRIC-NOTES.md, "A test sshd that worked"): absolute paths everywhere in the
config, ``-D -e`` to keep it in the foreground with its log on stderr, /run/sshd for
privilege separation, ``StrictModes no`` for keys under /tmp, no PAM. Every session gets
deployer's state and volume dirs (and ``env``: DOCKER_HOST, for a host on another engine)
by ``SetEnv``, on ONE line: sshd keeps the first SetEnv directive and ignores later ones.
"""

import contextlib
import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

from . import HarnessError, poll, processes

SSHD = "/usr/sbin/sshd"
ALIAS = "harness"  # the host's name in its ssh_config, for `ssh -F ssh_config harness`


@dataclasses.dataclass(frozen=True)
class SSHHost:
    """One running sshd and what a client needs to reach it; its files are in one directory."""

    host: str
    port: int
    user: str
    key: Path  # client private key
    state_dir: Path  # DEPLOYER_STATE_DIR in every ssh session (not created in advance)
    volume_dir: Path  # DEPLOYER_VOLUME_DIR in every ssh session (not created in advance)
    known_hosts: Path  # a known_hosts file holding this sshd's host key
    log: Path  # sshd's own log, for debugging (and counting, with LogLevel VERBOSE)
    ssh_config: Path  # for OpenSSH clients: Host ALIAS (and 127.0.0.1), port, user, key, known_hosts
    process: subprocess.Popen = dataclasses.field(compare=False, repr=False)

    @property
    def target(self):
        return f"{self.user}@{self.host}:{self.port}"

    def ssh(self, *command):
        """The argv of the system ssh client running command on this host."""
        return ["ssh", "-F", str(self.ssh_config), ALIAS, *command]

    def log_mark(self):
        """Where the log ends now: count_since(mark) counts what happens after it."""
        return self.log.stat().st_size

    def count_since(self, mark):
        """(connections, sessions) logged since mark; a session is one exec request.
        Needs ``LogLevel VERBOSE`` among the options."""
        with open(self.log, "rb") as f:
            f.seek(mark)
            text = f.read().decode(errors="replace")
        return text.count("Accepted publickey for"), text.count("Starting session:")


def start(tmp, env=None, key=None, options=None):
    """An sshd on a free loopback port, its files in the directory tmp. key: the client key
    it lets in (default: a new one in tmp); options: more sshd_config directives
    {keyword: value}. HarnessError, with nothing left running, if it does not come up."""
    if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
        raise HarnessError(f"{SSHD} or ssh-keygen missing (openssh-server); run .ci/setup")
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    _keygen(tmp / "host_key")
    if key is None:
        key = tmp / "client_key"
        _keygen(key)
    shutil.copy(f"{key}.pub", tmp / "authorized_keys")
    port = poll.free_port()
    state_dir, volume_dir = tmp / "state", tmp / "volumes"
    setenv = {"DEPLOYER_STATE_DIR": state_dir, "DEPLOYER_VOLUME_DIR": volume_dir, **(env or {})}
    config = tmp / "sshd_config"
    config.write_text(_sshd_config(tmp, port, setenv, options or {}))
    kind, blob = (tmp / "host_key.pub").read_text().split()[:2]
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {kind} {blob}\n")
    ssh_config = tmp / "ssh_config"
    ssh_config.write_text(_ssh_config(port, key, known_hosts))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation dir

    log = tmp / "sshd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        poll.until_up(process, lambda: poll.ssh_banner(port), f"sshd on port {port}", log, timeout=20)
    except BaseException:
        processes.stop(process)
        raise
    return SSHHost(host="127.0.0.1", port=port, user="root", key=key, state_dir=state_dir,
                   volume_dir=volume_dir, known_hosts=known_hosts, log=log, ssh_config=ssh_config,
                   process=process)


def stop(host):
    processes.stop(host.process)


@contextlib.contextmanager
def running(tmp, env=None, key=None, options=None):
    """start(...) for the block; stopped at its end."""
    host = start(tmp, env, key, options)
    try:
        yield host
    finally:
        stop(host)


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deployer-harness", "-f", str(path)],
                   check=True, timeout=30)


def _sshd_config(tmp, port, setenv, options):
    extra = "".join(f"{keyword} {value}\n" for keyword, value in options.items())
    return f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {tmp / "host_key"}
PidFile {tmp / "sshd.pid"}
AuthorizedKeysFile {tmp / "authorized_keys"}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
{extra}Subsystem sftp internal-sftp
SetEnv {" ".join(f"{k}={v}" for k, v in setenv.items())}
"""


def _ssh_config(port, key, known_hosts):
    return f"""\
Host {ALIAS} 127.0.0.1
  HostName 127.0.0.1
  Port {port}
  User root
  IdentityFile {key}
  IdentitiesOnly yes
  UserKnownHostsFile {known_hosts}
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
"""
