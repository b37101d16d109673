"""Every deploy converges, from any interruption (issue 22): a seeded chaos test.

Deploys of a three-service template (start-first, stop-first with a volume, a worker),
each changing every service, are disturbed at a random moment in one of three ways:
the client SIGKILLed; one docker subcommand failing once (a ``docker`` wrapper first on
the host's PATH); the engine restarted (its own dockerd, so nothing else is touched).
After each, one follow-up deploy must leave the instance whole: state and history parse
and agree, each service runs exactly one container, named as deployer names it, with the
state's config hash, nothing else of it runs, at most ``retain`` are retained, no lock is
held, and a deploy right after changes nothing. The test prints the count of violations.

DEPLOYER_CHAOS_SEED picks another sequence of disturbances (the seed is printed).
"""

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import pytest
from harness import HarnessError, REPO_ROOT
from harness import engines, sshd

SEED = int(os.environ.get("DEPLOYER_CHAOS_SEED", "22"))
ROUNDS = 15  # per mode: 45 disturbed deploys and their follow-ups, under 5 minutes on a quiet 2-CPU machine
RETAIN = 3
INSTANCE = "chaos"
TEMPLATE = """\
web: {image: local/busybox, cmd: [httpd, -f, -p, "8080", -h, /], env: {ROUND: "{round}"}}
db: {image: local/busybox, cmd: sleep 3600, volumes: [/data], env: {ROUND: "{round}"}}
worker: {image: local/busybox, cmd: sleep 3600, env: {ROUND: "{round}"}}
"""
SUBCOMMANDS = ("run", "rename", "stop", "start", "rm", "container", "inspect", "ps")

# The host's docker: fails the Nth call of a subcommand once, when the file `rule` says
# "SUBCOMMAND N"; otherwise the real docker.
WRAPPER = """\
#!/bin/sh
dir=$(dirname "$0")
if [ -f "$dir/rule" ]; then
  exec 8>>"$dir/lock"
  flock 8
  if read -r sub n <"$dir/rule" && [ "$1" = "$sub" ]; then
    count=$(($(cat "$dir/count" 2>/dev/null || echo 0) + 1))
    echo "$count" >"$dir/count"
    if [ "$count" -ge "$n" ]; then
      rm -f "$dir/rule" "$dir/count"
      echo "chaos: docker $1 failed once" >&2
      exit 1
    fi
  fi
  exec 8>&-
fi
exec {docker} "$@"
"""


class Chaos:
    """The disturbed host: its own engine, an sshd whose sessions reach it through the
    wrapper, and the deployer command aimed at it."""

    def __init__(self, engine, host, wrapper, template):
        self.engine, self.host, self.wrapper, self.template = engine, host, wrapper, template

    def start(self, *args):
        cmd = [sys.executable, "-m", "deployer", "-H", self.host.target, "-i", str(self.host.key), *map(str, args)]
        env = dict(os.environ, FABRIC_DEPLOYER_KNOWN_HOSTS=str(self.host.known_hosts), DEPLOYER_DAEMON="0",
                   FABRIC_DEPLOYER_DOCKER_TIMEOUT="30", FABRIC_DEPLOYER_RETAIN=str(RETAIN))
        return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def deploy(self, round_):
        return self.start("deploy", self.template, "--instance", INSTANCE, "--var", f"round={round_}")

    def docker(self, *args):
        return subprocess.run(["docker", *args], env=self.engine.env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory, busybox_image):
    tmp = tmp_path_factory.mktemp("chaos")
    wrapper = tmp / "bin"
    wrapper.mkdir()
    (wrapper / "docker").write_text(WRAPPER.format(docker=shutil.which("docker")))
    (wrapper / "docker").chmod(0o755)
    template = tmp / "chaos.yaml"
    template.write_text(TEMPLATE)
    try:
        with engines.extra_engine(busybox_image) as engine:
            env = {"DOCKER_HOST": engine.url, "PATH": f"{wrapper}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
            with sshd.running(tmp / "sshd", env) as host:
                yield Chaos(engine, host, wrapper, template)
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


def killed(chaos, rng, round_, duration):
    proc = chaos.deploy(round_)
    time.sleep(rng.uniform(0, duration))
    proc.kill()
    proc.communicate()


def failing(chaos, rng, round_, duration):
    (chaos.wrapper / "rule").write_text(f"{rng.choice(SUBCOMMANDS)} {rng.randint(1, 3)}\n")
    proc = chaos.deploy(round_)
    proc.communicate(timeout=120)
    (chaos.wrapper / "rule").unlink(missing_ok=True)  # a rule no call met
    (chaos.wrapper / "count").unlink(missing_ok=True)


def restarted(chaos, rng, round_, duration):
    proc = chaos.deploy(round_)
    time.sleep(rng.uniform(0, duration))
    restart = threading.Thread(target=chaos.engine.restart)
    restart.start()
    proc.communicate(timeout=180)
    restart.join()


MODES = {"client killed": killed, "docker failed once": failing, "engine restarted": restarted}


def violations(chaos, round_):
    """What is wrong with the instance after its follow-up deploy (nothing: an empty list)."""
    wrong = []
    directory = chaos.host.state_dir / "instances" / INSTANCE
    try:
        state = json.loads((directory / "state.json").read_text())
        releases = [json.loads(line)["release"] for line in (directory / "history.jsonl").read_text().splitlines()]
    except (OSError, ValueError) as e:
        return [f"state or history unreadable: {e}"]
    if not releases or releases[-1] != state["release"]:
        wrong.append(f"history ends at {releases[-1:]}, the state is release {state['release']}")
    listed = chaos.docker("ps", "-a", "--filter", f"label=deployer.instance={INSTANCE}", "--format",
                          '{{.Names}} {{.State}} {{.Label "deployer.service"}} {{.Label "deployer.config-hash"}}')
    containers = [line.split() for line in listed.stdout.splitlines()]
    for service, recorded in state["services"].items():
        mine = [c for c in containers if c[2] == service]
        running = [c for c in mine if c[1] == "running"]
        name = f"{INSTANCE}.{service}"
        if [c[0] for c in running] != [name]:
            wrong.append(f"{service}: running {[c[0] for c in running]}, not only {name}")
        elif running[0][3] != recorded["config_hash"]:
            wrong.append(f"{service}: {name} runs config {running[0][3]}, the state says {recorded['config_hash']}")
        if len(mine) - 1 > RETAIN:
            wrong.append(f"{service}: {len(mine) - 1} retained, more than {RETAIN}")
        if f"ROUND={round_}" not in chaos.docker("inspect", "--format", "{{.Config.Env}}", name).stdout:
            wrong.append(f"{service}: {name} does not run round {round_}")
    if subprocess.run(["flock", "-n", str(directory / "lock"), "true"]).returncode != 0:
        wrong.append("the instance's lock is held")
    again = chaos.deploy(round_)
    out, err = again.communicate(timeout=120)
    if again.returncode != 0 or "nothing was changed" not in out:
        wrong.append(f"a deploy right after changed something or failed: {out.strip()} {err.strip()}")
    return wrong


def test_every_deploy_disturbed_at_random_converges_with_one_follow_up(chaos):
    rng = random.Random(SEED)
    first = chaos.deploy(0)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    started = time.monotonic()
    timed = chaos.deploy(1)
    timed.communicate(timeout=120)
    duration = time.monotonic() - started  # a disturbance lands anywhere within a deploy's time
    found, round_ = {}, 1
    for mode, disturb in MODES.items():
        found[mode] = []
        for _ in range(ROUNDS):
            round_ += 1
            disturb(chaos, rng, round_, duration)
            follow_up = chaos.deploy(round_)
            out, err = follow_up.communicate(timeout=120)
            if follow_up.returncode != 0:
                found[mode].append(f"round {round_}: the follow-up deploy failed: {err.strip()}")
                continue
            found[mode] += [f"round {round_}: {v}" for v in violations(chaos, round_)]

    total = sum(len(v) for v in found.values())
    print(f"\nchaos (seed {SEED}, {ROUNDS} deploys per mode): {total} violations")
    for mode, wrong in found.items():
        print(f"  {mode}: {len(wrong)}", *(f"\n    {w}" for w in wrong))
    assert total == 0, found
