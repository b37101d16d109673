"""deployer import, end to end: a web + redis-like compose file becomes a template that
deploys over SSH, and the web service reaches the redis-like one through the endpoint the
import made of ``redis://redis:6379/0``: no compose network, the name the endpoint gives on
the instance's private network."""

import time

from support import docker, env_of

# A redis-like service: each connection to 6379 answers "+PONG <the line it was sent>".
# The web service asks it once a second, at the address its REDIS_URL holds, and keeps
# the answer in /tmp/reply. "$$" is compose's literal "$". busybox-static's nc cannot
# resolve names (static glibc has no NSS), its nslookup can: the name is looked up first.
COMPOSE = r"""
services:
  redis:
    image: local/busybox:latest
    command:
      - sh
      - -c
      - printf '#!/bin/sh\nread line\necho "+PONG $$line"\n' > /pong && chmod +x /pong && exec nc -ll -p 6379 -e /pong
    expose: ["6379"]
  web:
    image: local/busybox:latest
    command:
      - sh
      - -c
      - >-
        while true; do a=$${REDIS_URL#redis://}; a=$${a%%/*};
        h=$$(nslookup $${a%:*} 2>/dev/null | sed -n 's/^Address: *\([0-9.]*\)$$/\1/p' | tail -n 1);
        echo PING | nc -w 2 $$h $${a#*:} > /tmp/reply.new && mv /tmp/reply.new /tmp/reply; sleep 1; done
    environment:
      REDIS_URL: redis://redis:6379/0
    depends_on: [redis]
"""


def reply(container, timeout=30):
    """What the web service last heard from redis (waits for a first answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = docker("exec", container, "cat", "/tmp/reply")
        if result.returncode == 0 and result.stdout:
            return result.stdout
        time.sleep(0.5)
    raise AssertionError(f"{container} never heard from redis: {docker('logs', container).stderr}")


def test_an_imported_compose_file_deploys_and_web_reaches_redis_through_its_endpoint(
        deployer_cli, tmp_path, unique_instance):
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    imported = deployer_cli("import", "compose.yaml", host=False, cwd=tmp_path, check=True)
    (tmp_path / "shop.yaml").write_text(imported.stdout)

    checked = deployer_cli("import", "compose.yaml", "--check", host=False, cwd=tmp_path)
    deployer_cli("validate", "shop.yaml", host=False, cwd=tmp_path, check=True)
    deployed = deployer_cli("deploy", "shop.yaml", "--instance", unique_instance, cwd=tmp_path, check=True)
    try:
        assert checked.returncode == 0 and checked.stderr == ""
        assert "redis://{host}:{port}/0" in imported.stdout
        assert deployed.stdout.index("create  redis") < deployed.stdout.index("create  web")
        url = env_of(f"{unique_instance}.web")["REDIS_URL"]
        assert url == f"redis://redis.{unique_instance}:6379/0"  # on the instance's network, no host port
        assert reply(f"{unique_instance}.web") == "+PONG PING\n"
    finally:
        deployer_cli("destroy", unique_instance, "--volumes", check=True)
