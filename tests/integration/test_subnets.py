"""Past Docker's address pools (README, "Address space"): on an engine whose pools hold one
bridge network, the next networks of deployer's still come, each on a /24 of
``deployer.subnets`` no other network has, and the instance works on them."""

import subprocess

import pytest
from harness import HarnessError, engines, sshd
from support import GET
from test_isolation import SHOP  # db and admin register endpoints, app exposes db's

SUBNETS = "10.212.0.0/16"  # apart from the range the main engine's networks may take


@pytest.fixture(scope="module")
def small_pools(tmp_path_factory, busybox_image):
    """An SSH host whose engine's address pools hold a single /24."""
    tmp = tmp_path_factory.mktemp("pools")
    try:
        with engines.extra_engine(busybox_image, args=["--default-address-pool", "base=10.213.0.0/24,size=24"]) as engine:
            with sshd.running(tmp / "sshd", {"DOCKER_HOST": engine.url}) as host:
                yield engine, host
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


def test_networks_past_the_engines_pools_take_free_subnets_of_the_setting(small_pools, cli_on, tmp_path):
    engine, host = small_pools
    docker = lambda *args: subprocess.run(["docker", *args], env=engine.env, capture_output=True, text=True, timeout=60)
    (tmp_path / "shop.yaml").write_text(SHOP)
    for instance in ("sa", "sb"):
        cli_on(host)("deploy", tmp_path / "shop.yaml", "--instance", instance, check=True,
                     env={"FABRIC_DEPLOYER_SUBNETS": SUBNETS})

    names = docker("network", "ls", "--filter", "label=deployer.instance", "--format", "{{.Name}}").stdout.split()
    subnets = {name: docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                            name).stdout.strip() for name in names}
    assert sorted(names) == [f"deployer-{i}{s}" for i in ("sa", "sb") for s in ("", ".admin", ".db")]
    assert sorted(subnets.values()) == [f"10.212.{n}.0/24" for n in range(5)] + ["10.213.0.0/24"], subnets
    for instance in ("sa", "sb"):
        got = docker("exec", f"{instance}.app", "sh", "-c", GET, "get", f"db.{instance}:8080", "2")
        assert got.stdout == f"db of {instance}\n", got.stderr
