"""A secret's value must be text the host can be sent: checked before any host is contacted."""

import os

import pytest

from deployer.errors import TemplateError
from deployer.ops import deploy
from deployer.settings import Settings


class ReachedHost(Exception):
    pass


class NoHost:
    """Answers what a deploy knows without the host; the host itself is never reached."""

    name = hostname = "web1"
    settings = Settings()
    etcd = None
    registry = ""

    def check(self, template):
        return ()

    def deploying(self, *args, **kwargs):
        raise ReachedHost()


def test_a_secret_that_is_not_utf8_is_one_error_before_the_host(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("web: {image: busybox, env: {DB_PASSWORD: {secret: DB_PASSWORD}}}\n")
    value = os.fsdecode(b"hunter2\xff")  # how Python holds an environment's non-UTF-8 bytes

    with pytest.raises(TemplateError) as error:
        deploy.deploy(NoHost(), path, "c1", inputs=deploy.Inputs(secrets={"DB_PASSWORD": value, "OTHER": value}))

    assert str(error.value) == f"{path}: secret DB_PASSWORD: its value is not valid UTF-8 text"
    assert "hunter2" not in str(error.value)


def test_a_secret_the_template_does_not_name_may_hold_anything(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("web: {image: busybox}\n")

    with pytest.raises(ReachedHost):
        deploy.deploy(NoHost(), path, "c1", inputs=deploy.Inputs(secrets={"OTHER": os.fsdecode(b"\xff")}))
