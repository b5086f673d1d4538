"""The engine driver against a real registry (CNCF distribution on 127.0.0.1): images pulled on apply, asked about
without pulling (``Driver.published``), and the one-line errors when a registry lacks an image or cannot be
reached. Docker Hub is unreachable here; this registry speaks the same protocol to the same engine."""

from __future__ import annotations

import secrets

import pytest

from agencystack.errors import ComponentError
from agencystack.stack import Stack
from tests.engine.helpers import by_service, deployment, svc

pytestmark = pytest.mark.engine


def test_published_asks_the_registry_without_pulling(driver, registry, images, docker_client):
    tag = secrets.token_hex(4)
    ref = registry.push(docker_client, images["busybox"], f"agencystack-test/asked:{tag}")
    assert driver.published(ref) is True
    assert not docker_client.images.list(name=ref.rpartition(":")[0])  # asked, not pulled
    assert driver.published(f"{registry.address}/agencystack-test/asked:missing") is False
    assert driver.published(f"{registry.address}/agencystack-test/no-such-repo:1") is False


def test_an_unreachable_registry_is_one_line(driver):
    with pytest.raises(ComponentError) as caught:
        driver.published("127.0.0.1:1/agencystack-test/x:1")
    message = str(caught.value)
    assert message.startswith("cannot ask the registry about 127.0.0.1:1/agencystack-test/x:1:") and "\n" not in message


def test_apply_pulls_what_the_engine_lacks(driver, registry, images, engine, docker_client):
    ref = registry.push(docker_client, images["busybox"], f"agencystack-test/pulled:{secrets.token_hex(4)}")
    dep = deployment(engine.name("pull"), Stack(services=[svc("app", ref)]))
    said = []
    try:
        driver.apply(dep, driver.plan(dep), lambda service, message: said.append((service, message)))
        (container,) = by_service(docker_client, dep.project)["app"]
        assert container.status == "running" and ref in container.image.tags
        assert ("app", f"pulling {ref}") in said
    finally:
        driver.remove(dep, purge=True)
        docker_client.images.remove(ref)


def test_an_image_the_registry_lacks_fails_before_anything_is_created(driver, registry, engine, docker_client):
    ref = f"{registry.address}/agencystack-test/never-pushed:1"
    dep = deployment(engine.name("nopull"), Stack(services=[svc("app", ref)]))
    with pytest.raises(ComponentError) as caught:
        driver.apply(dep, driver.plan(dep))
    message = str(caught.value)
    assert message.startswith(f"image {ref} for service app is not available locally and could not be pulled (")
    assert "\n" not in message and "not found" in message.lower()
    assert by_service(docker_client, dep.project) == {}
