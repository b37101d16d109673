"""The swarm the Swarm engine's tests run on (harness/swarm.py) is a real one: two ready
nodes, tasks spread over both, an overlay network between them, each node's address
reachable from the host, a manager SSH reaches."""

import subprocess

from harness.poll import answers as answers_url, wait_for

# Every address the service's name resolves to, fetched; one line per answer.
FETCH_ALL = """for a in $(nslookup "$1" 2>/dev/null | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p' | grep -v '^127'); do
  timeout 5 wget -qO- "http://$a:8080/" || echo "no answer from $a"
done"""


def test_the_swarm_has_a_manager_and_a_worker_both_ready(swarm):
    listed = swarm.manager.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
    assert sorted(listed.stdout.splitlines()) == [f"{swarm.manager.name} Ready Leader", f"{swarm.worker.name} Ready "]


def test_a_service_s_tasks_land_on_both_nodes_and_reach_each_other(swarm):
    manager = swarm.manager
    net = manager.docker("network", "create", "-d", "overlay", "swharness")
    assert net.returncode == 0, net.stderr
    try:
        made = manager.docker("service", "create", "-d", "--name", "swharness", "--network", "swharness",
                              "--endpoint-mode", "dnsrr", "--replicas", "2", "--replicas-max-per-node", "1",
                              "--publish", "mode=host,target=8080,published=18080",
                              "local/busybox", "sh", "-c", 'echo "$(hostname)" >/index.html; httpd -f -p 8080 -h /')
        assert made.returncode == 0, made.stderr

        def running_on():
            ps = manager.docker("service", "ps", "swharness", "--filter", "desired-state=running",
                                "--format", "{{.Node}} {{.CurrentState}}")
            return sorted(line.split()[0] for line in ps.stdout.splitlines() if " Running " in f" {line} ")

        assert wait_for(lambda: running_on() == sorted(n.name for n in swarm.nodes) and running_on(),
                        "a task on each node", timeout=60, interval=0.5)
        here = manager.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=swharness").stdout.split()
        answers = manager.docker("exec", here[0], "sh", "-c", FETCH_ALL, "fetch", "swharness")
        assert len(set(answers.stdout.split())) == 2, answers.stdout  # its own task and the worker's
        for node in swarm.nodes:  # each node at its own address, from the host
            assert wait_for(lambda: answers_url(f"http://{node.address}:18080/"), f"{node.name}'s port", timeout=20)
    finally:
        manager.docker("service", "rm", "swharness")
        wait_for(lambda: manager.docker("network", "rm", "swharness").returncode == 0, "the network to go", timeout=30)


def test_ssh_sessions_of_the_swarm_host_reach_the_manager(swarm, swarm_host):
    res = subprocess.run(swarm_host.ssh("docker info --format '{{.Swarm.ControlAvailable}} {{.Name}}'"),
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["true", swarm.manager.name], res.stderr
