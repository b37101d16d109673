"""The harness deployer's tests and its benchmark share: the throwaway pieces of a deploy
target, all on this one machine, each started, waited for and stopped in one place.

- ``sshd``: an OpenSSH server on a free loopback port with keys of its own (a "host")
- ``engines``: the local Docker engine, the test image, extra Docker engines (other hosts)
- ``swarm``: a Docker Swarm of two such engines, each in a network namespace of its own
- ``registry``: a Docker registry the swarm's nodes pull from (its images have digests)
- ``etcd``: an etcd v3 server (service discovery)
- ``poll``: the one polling loop, free ports, whether a server answers
- ``processes``: the machine's processes from /proc, and stopping what was started

It is no part of the deployer package and imports nothing of it. pytest puts ``tests/`` on
``sys.path`` (see tests/conftest.py); bench/run puts it there itself. A piece that cannot
start raises HarnessError, whose message says why and, where it helps, to run .ci/setup.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class HarnessError(Exception):
    """A piece of the harness did not start or did not answer; the message says which and why."""
