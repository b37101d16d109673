"""A first deploy starts its new containers at once, at most deployer.parallel_starts at a time."""

import pytest

from deployer.model.plan import plan
from deployer.remote.apply import Limits, plan_script


def starts(render, services, parallel_starts):
    """The services each batch of a new instance's script starts, batch by batch."""
    specs = tuple(render("".join(f"s{n}: {{image: busybox}}\n" for n in range(services))).values())
    lines = plan_script("c1", plan(specs, None, [], {}), "@@b", Limits(60, 0.1, 100, parallel_starts), 1)
    batches, batch = [], None
    for line in lines:
        if line == "pids=":
            batch = []
        elif line.startswith("dpl_up "):
            batch.append(line.split()[1])
        elif line.startswith("failed=0") and batch is not None:
            batches.append(batch)
    return batches


@pytest.mark.parametrize(
    "services, limit, sizes", [(10, 4, [4, 4, 2]), (3, 8, [3]), (10, 0, [10]), (8, 8, [8])]
)
def test_new_containers_start_in_batches_of_at_most_the_setting(render, services, limit, sizes):
    batches = starts(render, services, limit)

    assert [len(b) for b in batches] == sizes
    assert [s for b in batches for s in b] == [f"s{n}" for n in range(services)]
