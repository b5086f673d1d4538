"""PostHog's files from upstream: fetched at the pinned commit through real git (GitHub itself is unreachable here,
so the remote is a local repository over git's own file:// transport), verified, cached; and the GeoIP database,
downloaded brotli-compressed over real HTTP from a local server standing in for PostHog's CDN, and checked."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import brotli
import pytest

from agencystack import ComponentError, StateRoot, UsageError
from agencystack_posthog import geoip, upstream
from components.posthog.tests.helpers import checkout, fake_upstream, geoip_db, git, serve


class _S:  # the settings fields the two materialize functions read
    def __init__(self, ref="a" * 40, upstream_dir="", upstream_git="", geoip_url=""):
        self.upstream_ref, self.upstream_dir, self.upstream_git = ref, upstream_dir, upstream_git
        self.geoip_url = geoip_url


@pytest.fixture
def remote(tmp_path):
    """A bare repository served like GitHub serves PostHog's: two commits, the first one pinned."""
    work = checkout(tmp_path / "work")
    pinned = git(work, "rev-parse", "HEAD")
    (work / "docker/kafka/topics.txt").write_text("a_topic_added_later\n")
    git(work, "commit", "-qam", "a later commit")
    return serve(work, tmp_path / "posthog.git"), pinned


def test_fetch_at_the_pinned_commit_through_git(remote, tmp_path):
    url, pinned = remote
    said = []
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(ref=pinned, upstream_git=url), state, lambda s, m: said.append(m))
    assert target == tmp_path / "root/cache/posthog-upstream" / pinned
    # the pinned commit's content, not the branch head's
    assert (target / "docker/kafka/topics.txt").read_text().startswith("# topics")
    assert (target / "docker/clickhouse/docker-entrypoint-initdb.d/init-db.sh").is_file()
    assert not (target / "frontend").exists() and not (target / "share").exists()  # only what the stack mounts
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no work trees left behind
    assert any(pinned[:12] in m and url in m for m in said)
    sums = upstream.parse_sums((target / upstream.SUMS).read_text())
    assert set(sums) == set(upstream.required_paths(target))
    assert (target / upstream.EXECUTABLE).read_text().split() == [FUNNEL]
    # the verified cache serves later runs, with the remote gone
    shutil.rmtree(url.removeprefix("file://"))
    assert upstream.materialize(_S(ref=pinned, upstream_git=url), state) == target


def test_a_commit_the_remote_does_not_have_fails_in_one_line_and_leaves_nothing(remote, tmp_path):
    url, _ = remote
    state = StateRoot(tmp_path / "root")
    with pytest.raises(ComponentError) as caught:
        upstream.materialize(_S(ref="b" * 40, upstream_git=url), state)
    message = str(caught.value)
    assert "\n" not in message and "cannot fetch PostHog bbbbbbbbbbbb" in message and "POSTHOG_UPSTREAM_DIR" in message
    assert not list((tmp_path / "root/cache/posthog-upstream").iterdir())


def test_a_tampered_cache_is_rebuilt(remote, tmp_path):
    url, pinned = remote
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(ref=pinned, upstream_git=url), state)
    good = (target / "docker/clickhouse/users.xml").read_text()
    (target / "docker/clickhouse/users.xml").write_text("<tampered/>")
    assert upstream.materialize(_S(ref=pinned, upstream_git=url), state) == target
    assert (target / "docker/clickhouse/users.xml").read_text() == good


def test_without_git_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    state = StateRoot(tmp_path / "root")
    with pytest.raises(UsageError, match="git is needed.*POSTHOG_UPSTREAM_DIR"):
        upstream.materialize(_S(ref="c" * 40, upstream_git="https://example.invalid/x.git"), state)


def test_a_plain_directory_is_copied_as_given(tmp_path):
    source = fake_upstream(tmp_path / "copy")
    said = []
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(upstream_dir=str(source)), state, lambda s, m: said.append(m))
    assert (target / "docker/kafka/topics.txt").read_text() == (source / "docker/kafka/topics.txt").read_text()
    assert any("not a git checkout, taken as given" in m for m in said)
    (source / "docker/kafka/topics.txt").unlink()  # a broken source fails loudly and leaves no half cache
    shutil.rmtree(target)
    with pytest.raises(UsageError, match="topics.txt is missing"):
        upstream.materialize(_S(upstream_dir=str(source)), state)
    assert not list(target.parent.iterdir())


def test_a_local_checkout_must_be_at_the_pinned_commit_and_unmodified(tmp_path):
    source = checkout(tmp_path / "checkout")
    head = git(source, "rev-parse", "HEAD")
    state = StateRoot(tmp_path / "root")
    with pytest.raises(UsageError, match=f"checked out at {head[:12]}, not at POSTHOG_UPSTREAM_REF aaaaaaaaaaaa"):
        upstream.materialize(_S(upstream_dir=str(source)), state)
    (source / "docker/clickhouse/users.xml").write_text("<edited/>")
    with pytest.raises(UsageError, match="has local changes: docker/clickhouse/users.xml"):
        upstream.materialize(_S(ref=head, upstream_dir=str(source)), state)
    git(source, "checkout", "-q", "--", ".")
    assert (upstream.materialize(_S(ref=head, upstream_dir=str(source)), state) / "posthog/idl").is_dir()


FUNNEL = "posthog/user_scripts/aggregate_funnel"  # upstream's funnel UDF wrapper: git mode 100755


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def _runs(path: Path) -> str:
    """Execute ``path`` as ClickHouse does with a user-defined function (a program, not a file it reads)."""
    return subprocess.run([str(path)], capture_output=True, text=True, timeout=10).stdout


def _executable_fixture(root: Path) -> Path:
    """The fake upstream tree, with a funnel wrapper that really runs (its _<arch> program prints a marker)."""
    fake_upstream(root)
    machine = os.uname().machine
    (root / f"{FUNNEL}_{machine}").write_text("#!/bin/sh\necho funnel ran\n")
    (root / f"{FUNNEL}_{machine}").chmod(0o755)
    return root


def test_executable_bits_come_from_git_tree_modes(tmp_path):
    work = _executable_fixture(tmp_path / "work")
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "upstream")
    assert "100755" in git(work, "ls-tree", "HEAD", FUNNEL)
    pinned = git(work, "rev-parse", "HEAD")
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(ref=pinned, upstream_git=serve(work, tmp_path / "p.git")), state)
    assert _mode(target / FUNNEL) == "0o755" and _runs(target / FUNNEL) == "funnel ran\n"
    assert _mode(target / "docker/clickhouse/users.xml") == "0o644"  # data stays data
    # a local checkout at the ref: the tree entry decides, whatever the work tree's own bits
    (work / FUNNEL).chmod(0o644)
    git(work, "config", "core.fileMode", "false")
    other_state = StateRoot(tmp_path / "other")
    local = upstream.materialize(_S(ref=pinned, upstream_dir=str(work)), other_state)
    assert _mode(local / FUNNEL) == "0o755"


def test_executable_bits_come_from_a_plain_source_directory(tmp_path):
    source = _executable_fixture(tmp_path / "copy")
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(upstream_dir=str(source)), state)
    assert _mode(target / FUNNEL) == "0o755" and _runs(target / FUNNEL) == "funnel ran\n"
    assert _mode(target / "docker/kafka/topics.txt") == "0o644"


def test_a_cache_that_lost_its_executable_bits_is_rebuilt(tmp_path):
    source = _executable_fixture(tmp_path / "copy")
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(upstream_dir=str(source)), state)
    (target / FUNNEL).chmod(0o644)  # what the old cache (copyfile, then 0644) left on every host
    assert _mode(upstream.materialize(_S(upstream_dir=str(source)), state) / FUNNEL) == "0o755"
    (target / upstream.EXECUTABLE).unlink()  # a cache written before modes were recorded
    assert (upstream.materialize(_S(upstream_dir=str(source)), state) / upstream.EXECUTABLE).is_file()


def test_no_postgres_init_scripts_are_fetched(remote, tmp_path):
    """Upstream's hobby deployment runs none (see the deviation table): the cache does not carry them."""
    url, pinned = remote
    assert not any(entry.startswith("docker/postgres-init-scripts") for entry in upstream.REQUIRED)
    state = StateRoot(tmp_path / "root")
    target = upstream.materialize(_S(ref=pinned, upstream_git=url), state)
    assert not (target / "docker/postgres-init-scripts").exists()


def test_the_ref_must_be_a_full_commit_id(agencystack_run):
    result = agencystack_run("plan", "posthog", "--set", "POSTHOG_UPSTREAM_REF=master")
    assert result.exit_code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "POSTHOG_UPSTREAM_REF" in result.stderr


# -- GeoIP -------------------------------------------------------------------------------------------------------
class _CDN:
    """A local HTTP server standing in for mmdbcdn.posthog.net: serves ``body`` at /, counts requests."""

    def __init__(self):
        self.body, self.status, self.hits = b"", 200, 0
        cdn = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                cdn.hits += 1
                self.send_response(cdn.status)
                self.send_header("Content-Length", str(len(cdn.body)))
                self.end_headers()
                self.wfile.write(cdn.body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def cdn():
    server = _CDN()
    yield server
    server.server.shutdown()


def test_geoip_downloaded_brotli_compressed_checked_and_kept(cdn, tmp_path, monkeypatch):
    monkeypatch.setattr(geoip, "ATTEMPTS", 1)
    db = geoip_db(tmp_path / "served.mmdb")
    cdn.body = brotli.compress(db.read_bytes())
    state = StateRoot(tmp_path / "root")
    share = geoip.materialize(_S(geoip_url=cdn.url), state)
    assert share == tmp_path / "root/cache/posthog-share"
    assert (share / geoip.NAME).read_bytes() == db.read_bytes()
    assert oct((share / geoip.NAME).stat().st_mode & 0o777) == "0o644"  # read by the services' own users
    assert json.loads((share / "GeoLite2-City.json").read_text())["source"] == cdn.url
    geoip.materialize(_S(geoip_url=cdn.url), state)
    assert cdn.hits == 1  # fresh: not downloaded again on every install


def test_geoip_refused_unless_it_is_a_city_database(cdn, tmp_path, monkeypatch):
    monkeypatch.setattr(geoip, "ATTEMPTS", 1)
    state = StateRoot(tmp_path / "root")
    for body, why in ((b"<html>captive portal</html>", "not a MaxMind database"),
                      (brotli.compress(geoip_db(tmp_path / "asn.mmdb", "GeoLite2-ASN").read_bytes()), "not a City"),
                      (brotli.compress(geoip_db(tmp_path / "c.mmdb").read_bytes())[:-40], "truncated or corrupt")):
        cdn.body = body
        with pytest.raises(ComponentError, match=why) as caught:
            geoip.materialize(_S(geoip_url=cdn.url), state)
        assert "POSTHOG_GEOIP_URL" in str(caught.value) and "\n" not in str(caught.value)
        assert not (tmp_path / "root/cache/posthog-share" / geoip.NAME).exists()
        assert [p.name for p in (tmp_path / "root/cache/posthog-share").iterdir()] == []


def test_a_failed_refresh_keeps_the_stale_database(cdn, tmp_path, monkeypatch):
    monkeypatch.setattr(geoip, "ATTEMPTS", 1)
    cdn.body = brotli.compress(geoip_db(tmp_path / "served.mmdb").read_bytes())
    state = StateRoot(tmp_path / "root")
    share = geoip.materialize(_S(geoip_url=cdn.url), state)
    old = time.time() - (geoip.MAX_AGE_DAYS + 1) * 86400
    os.utime(share / geoip.NAME, (old, old))
    cdn.status, cdn.body = 503, b"down"
    warnings = []
    geoip.materialize(_S(geoip_url=cdn.url), state, warn=warnings.append)
    assert cdn.hits == 2 and (share / geoip.NAME).is_file()
    assert len(warnings) == 1 and "keeping the database" in warnings[0]


def test_geoip_from_the_offline_directory_or_turned_off(tmp_path):
    source = fake_upstream(tmp_path / "copy")
    state = StateRoot(tmp_path / "root")
    share = geoip.materialize(_S(upstream_dir=str(source), geoip_url="http://127.0.0.1:9/"), state)
    assert (share / geoip.NAME).read_bytes() == (source / "share" / geoip.NAME).read_bytes()
    other_state = StateRoot(tmp_path / "other")
    off = geoip.materialize(_S(geoip_url=""), other_state)
    assert off.is_dir() and not (off / geoip.NAME).exists()
