"""What the integration tests share: a two-service template, docker helpers, and waiting
for a deployer run in the background."""

import json
import subprocess

APP = """\
Env: {TZ: UTC}
web:
  image: local/busybox
  cmd: [httpd, -f, -p, "8080", -h, /www]
  volumes: [/www]
  ports: ["127.0.0.1::8080"]
  env: {GREETING: hello}
worker:
  image: local/busybox
  cmd: sh -c 'while true; do sleep 3600; done'
"""


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def inspect(name, fmt):
    result = docker("inspect", "--format", fmt, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def env_of(container):
    return dict(line.split("=", 1) for line in json.loads(inspect(container, "{{json .Config.Env}}")))


def containers_of(instance):
    """The names of every container Docker has for an instance, retained ones included."""
    result = docker("ps", "-a", "--filter", f"label=deployer.instance={instance}", "--format", "{{.Names}}")
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def finish(proc, timeout=120):
    """Wait for a background CLI; (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the CLI did not end within {timeout}s\n--- stdout\n{out}\n--- stderr\n{err}")
    return proc.returncode, out, err
