"""Waiting, done one way: poll a predicate until it holds; give up at a deadline, or at once
when what is waited on is gone (a server whose process exited never comes up). Also the
network facts a server is waited on by: a free port, an SSH banner, an HTTP answer."""

import socket
import time
import urllib.request

from . import HarnessError


class TimedOut(HarnessError, AssertionError):
    """Time ran out: a harness error to the bench, a failed assertion to a test."""


def wait_for(predicate, what="the condition", timeout=30, interval=0.05, gone=None):
    """predicate()'s first truthy value, polled every `interval` s. TimedOut after `timeout` s;
    HarnessError at once when gone() returns a reason (a message) to stop waiting."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        reason = gone() if gone else None
        if reason:
            raise HarnessError(reason)
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def until_up(process, ready, name, log, timeout, interval=0.1):
    """Wait for the server `process` (called `name`) to be ready(); on failure the error ends
    with the end of its log file, which is where a server says why it did not start."""
    def exited():
        code = process.poll()
        return None if code is None else f"{name} exited with {code}"

    try:
        return wait_for(ready, f"{name} to answer", timeout, interval, gone=exited)
    except HarnessError as e:
        raise type(e)(f"{e}; the end of its log ({log}):\n{tail(log)}") from None


def tail(path, size=3000):
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def free_port():
    """A TCP port nothing listens on at this moment (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_banner(port):
    """Whether an SSH server greets on 127.0.0.1:port (it accepts connections only then)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def answers(url):
    """Whether an HTTP GET of url succeeds."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
