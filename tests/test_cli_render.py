"""``agencystack render``: the compose file install would write, printed with no engine, no network, nothing written."""

from __future__ import annotations

import yaml

from agencystack.engine import compose
from agencystack.testing import open_context


def _no_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # any engine call would fail (exit 3)


def test_render_prints_what_install_would_write(agencystack_run, agencystack_plugins, agencystack_env, monkeypatch,
                                                tmp_path):
    _no_engine(monkeypatch, tmp_path)
    result = agencystack_run("render", "posthog", "-c", "acme", "--domain", "analytics.acme.com")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    ctx = open_context(agencystack_plugins, "posthog", "install", client="acme", domain="analytics.acme.com")
    assert result.stdout == compose.render(ctx.deployment())  # byte for byte the file install writes
    doc = yaml.safe_load(result.stdout)
    assert doc["name"] == "acme_posthog" and "web" in doc["services"] and "proxy" not in doc["services"]
    assert doc["services"]["web"]["environment"]["SITE_URL"] == "https://analytics.acme.com"
    assert not agencystack_env.exists(), "render writes nothing: no .env, no compose file, no cache"


def test_upstream_files_are_named_by_path_not_fetched(agencystack_run, agencystack_env, monkeypatch, tmp_path):
    _no_engine(monkeypatch, tmp_path)
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "none")  # a fetch would fail loudly
    result = agencystack_run("render", "posthog", "-c", "acme")
    assert result.exit_code == 0, result.stderr
    clickhouse = yaml.safe_load(result.stdout)["services"]["clickhouse"]["volumes"]
    cache = agencystack_env / "cache" / "posthog-upstream"
    assert any(v.startswith(f"{cache}/") and v.endswith(":/etc/clickhouse-server/config.xml:ro") for v in clickhouse)
    assert not cache.exists()


def test_secrets_are_references_never_values(agencystack_run, monkeypatch, tmp_path):
    _no_engine(monkeypatch, tmp_path)
    result = agencystack_run("render", "posthog", "-c", "acme", "--set", "POSTHOG_ANTHROPIC_API_KEY=sk-live-123456")
    assert result.exit_code == 0, result.stderr
    assert "sk-live-123456" not in result.stdout
    web = yaml.safe_load(result.stdout)["services"]["web"]["environment"]
    assert web["SECRET_KEY"] == "${POSTHOG_SECRET}" and web["ANTHROPIC_API_KEY"] == "${POSTHOG_ANTHROPIC_API_KEY}"


def test_set_changes_what_is_rendered(agencystack_run, monkeypatch, tmp_path):
    _no_engine(monkeypatch, tmp_path)
    result = agencystack_run("render", "posthog", "--set", "POSTHOG_RUST_TAG=master",
                             "--set", "POSTHOG_REGISTRY_MIRROR=mirror.internal:5000/")
    assert result.exit_code == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["capture"]["image"] == "mirror.internal:5000/ghcr.io/posthog/posthog/capture:master"


def test_bad_input_is_one_line_exit_2(agencystack_run, agencystack_env, monkeypatch, tmp_path):
    _no_engine(monkeypatch, tmp_path)
    for argv, message in ((["render", "nope"], "unknown component 'nope'"),
                          (["render", "posthog", "--set", "POSTHOG_PORT=0"], "POSTHOG_PORT"),
                          (["render", "posthog", "-c", "../x"], "invalid client id")):
        result = agencystack_run(*argv)
        assert result.exit_code == 2 and result.stdout == "", result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and message in result.stderr
    assert not agencystack_env.exists()
