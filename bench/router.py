"""The router's benchmark (issue 14): what the router costs, and what its swaps cost.

    bench/setup                     # once: ApacheBench (apache2-utils) among the rest
    bench/run-router                # 20000 requests each way, 10 swaps (about a minute)
    bench/run-router --quick        # 500 requests, 2 swaps: a smoke test

Everything runs on this machine, as the tests do: a throwaway sshd on 127.0.0.1 in front
of the local Docker engine (tests/harness), deployer deploying one routed service (busybox
httpd serving a small page) with the router image local/caddy (.ci/router-image), TLS off
(plain HTTP on both sides: the proxy's cost alone), on free ports.

1. Overhead, side by side in one run: ApacheBench (a bounded load, 8 at a time, a new
   connection per request) straight to the container (its address on the instance's
   network) and through the router (by its domain): requests/s, p50 and p99 in ms.
2. Swaps: one client sending requests without pause through the router (a new connection
   each) while N consecutive deploys each recreate the service (its env changes): the
   failed requests (connection errors, 5xx) and the p99 during the swaps against the p99
   of the same client idle. Goal: 0 failed, p99 during swaps under 3x the idle p99.

3. Replicas: a service burning CPU on each request (a CGI counting to 20000 in busybox sh),
   each container limited to one CPU (``cpus: 1``, as a single-threaded app is), through
   the router with 1 replica, then ``scale`` to 3: requests/s of each and their ratio. The
   ratio follows the CPUs the replicas can use: at most the machine's CPU count (printed
   with the row; 2 on the machine this was written on), not the replica count.

Run it on a quiet machine: other work on the CPUs moves the figures. Everything started
here is removed at the end.
"""

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import REPO_ROOT, engines, sshd
from harness.poll import free_port, wait_for

INSTANCE = "rtbench"
DOMAIN = "rtbench.bench.test"
TEMPLATE = f"""\
Vars: {{version: "0"}}
web:
  image: {engines.IMAGE}
  cmd: [sh, -c, 'mkdir -p /www && echo "version $VERSION" > /www/index.html && exec httpd -f -p 8080 -h /www']
  env: {{VERSION: "{{version}}"}}
  route: {{domains: [{DOMAIN}], port: 8080, health: /}}
"""


BURN = "rtburn"
BURN_DOMAIN = "rtburn.bench.test"
BURN_TEMPLATE = f"""\
web:
  image: {engines.IMAGE}
  cpus: 1
  cmd:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin && cat > /www/cgi-bin/burn <<'END'
      #!/bin/sh
      i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done
      printf 'Content-Type: text/plain\\r\\n\\r\\nburnt\\n'
      END
      chmod +x /www/cgi-bin/burn && exec httpd -f -p 8080 -h /www
  route: {{domains: [{BURN_DOMAIN}], port: 8080, health: /cgi-bin/burn}}
"""


def parse_args():
    parser = argparse.ArgumentParser(prog="bench/run-router", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests each way (default 20000)")
    parser.add_argument("--swaps", type=int, default=10, help="consecutive deploys that recreate the service")
    parser.add_argument("--burn", type=int, default=600, help="CPU-burning requests per replica count (default 600)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 500 requests, 2 swaps, 60 burning")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.swaps, args.burn = 500, 2, 60
    return args


def main():
    args = parse_args()
    if not shutil.which("ab"):
        print("bench/run-router: ApacheBench (ab) is missing: run bench/setup", file=sys.stderr)
        return 2
    engines.busybox_image()
    engines.ci_images("router-image")
    port = free_port()
    settings = {"FABRIC_DEPLOYER_ROUTER_IMAGE": "local/caddy:latest", "FABRIC_DEPLOYER_ROUTER_TLS": "off",
                "FABRIC_DEPLOYER_ROUTER_HTTP_PORT": str(port), "FABRIC_DEPLOYER_ROUTER_DRAIN": "1"}
    with tempfile.TemporaryDirectory(prefix="deployer-router-bench") as tmp, sshd.running(Path(tmp)) as host:
        template = Path(tmp) / "bench.yaml"
        template.write_text(TEMPLATE)
        deployer = cli(host, settings)
        try:
            deployer("deploy", template, "--instance", INSTANCE)
            client = Client(port)
            wait_for(lambda: client.get() == 200, "the route", timeout=30)
            overhead(port, args.requests)
            swaps(client, lambda n: deployer("deploy", template, "--instance", INSTANCE, "--var", f"version={n}"),
                  args.swaps)
            burning = Path(tmp) / "burn.yaml"
            burning.write_text(BURN_TEMPLATE)
            replicas(deployer, burning, port, args.burn)
        finally:
            deployer("destroy", INSTANCE, "--yes", check=False)
            deployer("destroy", BURN, "--yes", check=False)
            subprocess.run(["docker", "rm", "-f", "deployer-router"], capture_output=True, timeout=60)
            subprocess.run(["docker", "network", "rm", "deployer-router"], capture_output=True, timeout=60)
    return 0


def cli(host, settings):
    """run(*words, check=True): ``deployer -H HOST WORDS`` with the router's settings; a
    failure (with check) ends the benchmark with deployer's error."""
    env = dict(os.environ, FABRIC_DEPLOYER_KNOWN_HOSTS=str(host.known_hosts), DEPLOYER_DAEMON="0",
               PYTHONPATH=str(REPO_ROOT), **settings)

    def run(*words, check=True):
        argv = [sys.executable, "-m", "deployer", "-H", host.target, "-i", str(host.key), *map(str, words)]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=REPO_ROOT)
        if check and done.returncode:
            raise SystemExit(f"bench/run-router: deployer {' '.join(map(str, words))} failed:\n{done.stderr}")

    return run


def overhead(port, requests):
    """ApacheBench straight to the container and through the router: a row each."""
    where = '{{(index .NetworkSettings.Networks "deployer-%s").IPAddress}}' % INSTANCE
    address = subprocess.run(["docker", "inspect", "--format", where, f"{INSTANCE}.web"],
                             capture_output=True, text=True, check=True).stdout.strip()
    rows = [("straight to the container", ab(f"http://{address}:8080/", requests)),
            ("through the router", ab(f"http://127.0.0.1:{port}/", requests, DOMAIN))]
    print(f"overhead ({requests} requests, 8 at a time, a connection each)")
    print("| path | requests/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|")
    for name, figures in rows:
        print(f"| {name} | {figures['rate']:.0f} | {figures['p50']} | {figures['p99']} | {figures['failed']} |")


def replicas(deployer, template, port, requests):
    """The CPU-burning service through the router with 1 replica, then scaled to 3: a row."""
    deployer("deploy", template, "--instance", BURN)
    url = f"http://127.0.0.1:{port}/cgi-bin/burn"
    one = ab(url, requests, BURN_DOMAIN)
    deployer("scale", BURN, "web=3")
    three = ab(url, requests, BURN_DOMAIN)
    print(f"\nreplicas: a CPU-burning service, one CPU a container ({requests} requests, 8 at a time), "
          f"through the router; this machine has {os.cpu_count()} CPUs")
    print("| replicas | requests/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|")
    for count, figures in ((1, one), (3, three)):
        print(f"| {count} | {figures['rate']:.1f} | {figures['p50']} | {figures['p99']} | {figures['failed']} |")
    print(f"ratio 3/1: {three['rate'] / max(one['rate'], 0.001):.2f} (bounded by the CPUs, {os.cpu_count()} here)")


def ab(url, requests, host=None):
    """ApacheBench's figures for ``url``: rate, p50, p99 (ms), failed (errors and non-2xx)."""
    out = subprocess.run(["ab", "-q", "-n", str(requests), "-c", "8", *(["-H", f"Host: {host}"] if host else []), url],
                         capture_output=True, text=True, timeout=600).stdout

    def number(pattern):
        found = re.search(pattern, out, re.M)
        return float(found.group(1)) if found else 0

    return {"rate": number(r"^Requests per second:\s+([\d.]+)"), "p50": int(number(r"^\s+50%\s+(\d+)")),
            "p99": int(number(r"^\s+99%\s+(\d+)")),
            "failed": int(number(r"^Failed requests:\s+(\d+)") + number(r"^Non-2xx responses:\s+(\d+)"))}


class Client:
    """GET / through the router by its domain, a new connection each time."""

    def __init__(self, port):
        self.port = port

    def get(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request("GET", "/", headers={"Host": DOMAIN})
            answer = connection.getresponse()
            answer.read()
            return answer.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()


def steady(client, seconds=None, until=None):
    """(latencies in ms, failures) of a client sending requests without pause for
    ``seconds``, or until the event ``until`` is set."""
    latencies, failures = [], 0
    end = time.monotonic() + (seconds or 0)
    while (until.is_set() is False) if until else time.monotonic() < end:
        start = time.monotonic()
        status = client.get()
        latencies.append((time.monotonic() - start) * 1000)
        failures += status is None or status >= 500
    return latencies, failures


def swaps(client, deploy, count):
    """The steady client idle, then during ``count`` deploys that each recreate the service."""
    idle, _ = steady(client, seconds=3)
    done, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(zip(("latencies", "failed"), steady(client, until=done))))
    thread.start()
    started = time.monotonic()
    try:
        for n in range(1, count + 1):
            deploy(n)
    finally:
        done.set()
        thread.join()
    took = time.monotonic() - started
    busy = result["latencies"]
    ratio = p99(busy) / max(p99(idle), 0.001)
    print(f"\nswaps: {count} consecutive deploys recreating the routed service ({took:.1f} s)")
    print("| requests | failed | idle p99 ms | p99 ms during swaps | ratio (goal < 3) |")
    print("|---|---|---|---|---|")
    print(f"| {len(busy)} | {result['failed']} | {p99(idle):.1f} | {p99(busy):.1f} | {ratio:.1f} |")


def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
