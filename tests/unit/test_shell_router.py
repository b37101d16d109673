"""The router's shell (``sh/router.sh``) and a routed step of the replacement state
machine, run for real against the stub docker and a stub ``curl`` (what the health
check gets, a call each: ``CODE TIME_CONNECT`` as ``curl -w`` prints them)."""

import pytest

from deployer.model import route
from deployer.remote.scripts import call, join

WEB, NEXT = "c1.web", "c1.web.next"
USES = ("replace", "network", "router")


@pytest.fixture
def curl(shell):
    """curl(*answers): each call prints the next answer (the last for ever) and is logged."""
    bin_ = shell.docker.bin

    def answers(*lines):
        (bin_ / "curl.answers").write_text("".join(f"{line}\n" for line in lines))
        (bin_ / "curl").write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >>"{bin_}/curl.calls"
n=$(wc -l <"{bin_}/curl.calls")
total=$(wc -l <"{bin_}/curl.answers")
[ "$n" -le "$total" ] || n=$total
sed -n "${{n}}p" "{bin_}/curl.answers"
""")
        (bin_ / "curl").chmod(0o755)
        return lambda: (bin_ / "curl.calls").read_text().splitlines() if (bin_ / "curl.calls").exists() else []

    return answers


def check(health="/up"):
    return call("dpl_route_check", NEXT, "deployer-c1", "8080", health)


@pytest.fixture
def docker(shell):
    """The stub, saying the new container's address on its instance's network."""
    shell.docker.answer("container inspect --format {{with index .NetworkSettings.Networks*", "10.0.0.7\n")
    return shell.docker


@pytest.fixture
def started(docker):
    docker.container(NEXT)
    return docker


@pytest.mark.parametrize("answers", [["200 0.000113"], ["000 0.000000", "503 0.0001", "302 0.0001"]])
def test_a_health_check_passes_once_its_path_answers_2xx_or_3xx(shell, started, curl, answers):
    calls = curl(*answers)

    assert shell.run(check(), USES).exited == 0
    assert calls()[-1].endswith("http://10.0.0.7:8080/up") and len(calls()) == len(answers)


def test_a_failed_health_check_says_its_last_answer_and_the_containers_last_lines(shell, started, curl):
    curl("404 0.0001")
    started.logs(NEXT, "GET /up 404\n")

    ran = shell.run(check(), USES)

    assert ran.exited == 1
    assert ran.error.message == (f"{NEXT} failed its route's health check for 3 s (GET /up: HTTP 404); "
                                 "the route did not move")
    assert ran.error.details == ["GET /up 404"]


@pytest.mark.parametrize("answer, passes", [("000 0.000121", True), ("000 0.000000", False), ("400 0.0001", True)])
def test_without_a_path_the_check_is_a_tcp_connect(shell, started, curl, answer, passes):
    curl(answer)

    ran = shell.run(check(""), USES)

    assert (ran.exited == 0) == passes
    if not passes:
        assert "(no connection to port 8080)" in ran.error.message


def test_a_hostile_health_path_reaches_curl_as_it_is(shell, started, curl, tmp_path):
    calls = curl("200 0.0001")

    assert shell.run(check("/$(touch pwned);`touch pwned2`"), USES).exited == 0
    assert calls()[-1].endswith("http://10.0.0.7:8080/$(touch pwned);`touch pwned2`")
    assert not list(tmp_path.rglob("pwned*"))


def route_function(name="dpl_route_1"):
    """A plan's route function: check, then move to a table (drain 0)."""
    return f'{name}() {{ dpl_route_move "$1" {join(["deployer-c1", "8080", "/up", "0", "TABLE", "{}"])}; }}\n'


def test_a_start_first_step_whose_check_fails_never_moves_the_route_and_the_current_one_runs_on(shell, docker, curl):
    docker.container(WEB, id="current")
    curl("500 0.0001")
    body = route_function() + call("dpl_first", "--dpl-route", "dpl_route_1", "web", WEB, "c1.web.r1", "-d",
                                   "--name", NEXT, "team/app")

    ran = shell.run(body, USES)

    assert ran.exited == 1 and ran.done == []
    assert not (shell.state_dir / "router" / "routes.json").exists()
    assert shell.docker.containers() == {WEB: "current running"}
    assert not any(c[:1] == ("exec",) for c in shell.docker.calls())  # the router was never asked to load


def test_a_start_first_step_moves_the_route_once_the_check_passes_then_stops_the_current_one(shell, docker, curl):
    docker.container(WEB, id="current")
    curl("200 0.0001")
    (shell.state_dir / "router").mkdir(parents=True)
    body = route_function() + call("dpl_first", "--dpl-route", "dpl_route_1", "web", WEB, "c1.web.r1", "-d",
                                   "--name", NEXT, "team/app")

    ran = shell.run(body, USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert (shell.state_dir / "router" / "routes.json").read_text() == "TABLE"
    log = shell.docker.log()
    assert log.index("exec deployer-router caddy reload --config /deployer/caddy.json --force") < log.index(
        "rename c1.web c1.web.r1")
    assert shell.docker.containers() == {WEB: "new1 running", "c1.web.r1": "current exited"}


def test_the_router_is_started_on_its_own_network_when_there_is_none_and_joins_the_instances(shell, curl):
    body = call("dpl_router_up", "{}", "abc", "--dpl-join", "deployer-c1", "--dpl-join", "deployer-c2", "-d", "--name",
                "deployer-router", "--label", "deployer.router=abc", "local/caddy")

    ran = shell.run(body, USES)

    assert ran.exited == 0
    log = shell.docker.log()
    assert "network create --label deployer.router=network deployer-router" in log
    run = next(c for c in shell.docker.calls() if c[:1] == ("run",))
    assert run[1:3] == ("-v", f"{shell.state_dir}/router:/deployer")
    assert [line for line in log if line.startswith("network connect")] == [
        "network connect deployer-c1 deployer-router", "network connect deployer-c2 deployer-router"]
    assert (shell.state_dir / "router" / "caddy.json").read_text() == "{}"


def test_the_router_gets_the_sysctls_this_kernel_has_and_not_the_others(shell, curl):
    body = call("dpl_router_up", "{}", "abc", "--dpl-sysctl", "net.ipv4.ip_forward=1", "--dpl-sysctl",
                "net.ipv4.no_such_knob=1", "-d", "--name", "deployer-router", "local/caddy")

    assert shell.run(body, USES).exited == 0
    run = next(c for c in shell.docker.calls() if c[:1] == ("run",))
    assert run[3:] == ("--sysctl", "net.ipv4.ip_forward=1", "-d", "--name", "deployer-router", "local/caddy")


def test_a_router_running_as_it_should_is_kept_and_joins_only_the_networks_it_lacks(shell, curl):
    shell.docker.container("deployer-router")
    shell.docker.answer("container inspect --format {{index .Config.Labels*",
                        f"abc true {shell.state_dir}/router\n")
    shell.docker.answer("container inspect --format {{range $name*", " deployer-router deployer-c1 \n")
    body = call("dpl_router_up", "{}", "abc", "--dpl-join", "deployer-c1", "--dpl-join", "deployer-c2", "-d", "--name",
                "deployer-router", "local/caddy")

    (shell.state_dir / "router").mkdir(parents=True)
    (shell.state_dir / "router" / "caddy.json").write_text("{}")

    assert shell.run(body, USES).exited == 0
    log = shell.docker.log()
    assert not any(line.startswith(("run", "rm", "exec")) for line in log)  # nor told to load what it has
    joined = [line for line in log if line.startswith("network connect")]
    assert joined == ["network connect deployer-c2 deployer-router"]


def test_a_step_that_fails_after_its_route_moved_moves_it_back(shell, docker, curl):
    docker.container(WEB, id="current")
    docker.fail(f"rename {NEXT} {WEB}")
    curl("200 0.0001")
    (shell.state_dir / "router").mkdir(parents=True)
    (shell.state_dir / "router" / "routes.json").write_text("BEFORE")
    body = route_function() + call("dpl_first", "--dpl-route", "dpl_route_1", "web", WEB, "c1.web.r1", "-d",
                                   "--name", NEXT, "team/app")

    ran = shell.run(body, USES)

    assert ran.exited == 1 and ran.done == []
    assert (shell.state_dir / "router" / "routes.json").read_text() == "BEFORE"
    assert [c for c in shell.docker.calls() if c[:1] == ("exec",)] == [
        ("exec", "deployer-router", "caddy", "reload", "--config", "/deployer/caddy.json", "--force")] * 2
    assert shell.docker.containers() == {WEB: "current running"}


def test_the_check_is_made_in_the_routers_network_namespace_where_it_may_be_entered(shell, started, curl):
    calls = curl("200 0.0001")
    started.answer("container inspect --format {{.State.Pid}} deployer-router", "4242\n")
    nsenter = started.bin / "nsenter"
    nsenter.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{started.bin}/nsenter.calls"\nshift 3\nexec "$@"\n')
    nsenter.chmod(0o755)

    assert shell.run(check(), USES).exited == 0
    entered = (started.bin / "nsenter.calls").read_text().splitlines()
    assert entered[0] == "-t 4242 -n true" and entered[1].startswith("-t 4242 -n curl ")
    assert calls() == [entered[1].split(" ", 4)[4]]  # curl, as it was given


def test_the_routes_task_reads_the_table_and_each_routed_containers_state_in_one_script(shell):
    shell.docker.answer("ps -a --filter label=deployer.route *",
                        "shop.web running Up 3 minutes (healthy)\nshop.api exited Exited (1) 2 minutes ago\n")
    (shell.state_dir / "router").mkdir(parents=True)
    held = (route.Route("shop.example", "shop", "web", "8080", "/up", ("r1.web.shop:8080",)),)
    (shell.state_dir / "router" / "routes.json").write_text(route.dump(held))

    assert shell.host().served() == (held, {"shop.web": "running (healthy)", "shop.api": "exited"})
