"""``agencystack dashboard serve``: the client's page and JSON API from the host process (no engine needed for a
component without containers: its health is unknown, never shown as healthy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from agencystack.testing import free_port


def test_dashboard_serve_shows_the_clients_components(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    port = free_port()
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "agencystack"), "dashboard", "serve",
                                "-c", "acme", "--listen", f"127.0.0.1:{port}", "--interval", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/dashboard.json", timeout=2) as answer:
                    data = json.loads(answer.read())
                break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "dashboard serve did not answer within 20 s"
                time.sleep(0.2)
        [hello] = data["components"]
        assert hello["name"] == "hello" and hello["live"]["state"] == "unknown"
        credentials = agencystack_env / "dashboards-private" / "acme" / "credentials.json"
        assert oct(credentials.stat().st_mode & 0o777) == "0o600" and "HELLO_TOKEN" in credentials.read_text()
        while True:  # the card's usage request is made with its secret (hello has no URL to send it to: an error)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/dashboard.json", timeout=2) as answer:
                figures = json.loads(answer.read())["components"][0]["entries"][0]["figures"]
            if figures["state"] != "unknown" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert figures["state"] == "failed" and "installed dashboard only" not in figures["error"], figures
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
            page = answer.read().decode()
        assert 'data-component="hello"' in page and "Hello: hi" in page
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert agencystack_run("dashboard", "serve", "--listen", "nope").exit_code == 2
