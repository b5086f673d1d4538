"""The edge's failed health wait, on the real engine: one readable error naming the setting that fixes it.

The test image keeps Traefik at /traefik, not on PATH, so the default EDGE_BINARY=traefik makes the health check
fail exactly as an image whose binary lives elsewhere does for an operator. Its own module: the edge is one per
engine, and test_edge_traefik.py holds it for its whole module."""

from __future__ import annotations

import secrets

import pytest

from agencystack.edge import name_health_settings
from agencystack.edge.settings import EdgeSettings
from agencystack.engine.readiness import plain
from agencystack.testing import free_port, run_cli, use_root
from tests.helpers import remove_network, set_args


def test_health_failure_of_traefik_names_edge_binary_and_edge_image():
    settings = EdgeSettings.model_construct(binary="traefik", image="example/traefik:3")
    message = ("service traefik of host_edge did not become healthy within 60s; last health check (exit 127): "
               "exec: traefik: not found; last log lines:\n  level=info msg=started")
    first, _, rest = name_health_settings(message, settings).partition("\n")
    assert "EDGE_BINARY" in first and "EDGE_IMAGE" in first and "example/traefik:3" in first
    assert rest == "  level=info msg=started"
    other = "service web of acme_notes is unhealthy"
    assert name_health_settings(other, settings) == other


def test_container_output_loses_terminal_escapes_but_keeps_its_words():
    assert plain("\x1b[90m2026\x1b[0m \x1b[31mERR\x1b[0m msg\x1b]0;t\x07\r\nnext\tcol") == "2026 ERR msg\nnext\tcol"


@pytest.mark.engine
def test_edge_that_never_becomes_healthy_is_one_plain_error_naming_the_setting(images, engine, tmp_path,
                                                                              monkeypatch):
    network = f"agencystack_edge-hint-{secrets.token_hex(3)}"
    use_root(monkeypatch, tmp_path / "root")
    sets = {"EDGE_IMAGE": images["traefik"], "EDGE_HTTP_PORT": free_port(), "EDGE_HTTPS_PORT": free_port(),
            "EDGE_BIND_ADDRESS": "127.0.0.1", "EDGE_NETWORK": network}  # EDGE_BINARY left at its default
    try:
        code, out = run_cli("install", "edge", *set_args(sets))
        assert code == 1, out
        error = next(line for line in out.splitlines() if line.startswith("error: "))
        assert "service traefik" in error and "EDGE_BINARY" in error and "EDGE_IMAGE" in error, out
        assert "\x1b" not in out, out
    finally:
        run_cli("uninstall", "edge", "--purge", "--yes")
        remove_network(network)
