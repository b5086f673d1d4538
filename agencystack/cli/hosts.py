"""``agencystack hosts``: the Docker hosts and swarms clients are placed on (add, list, drain, undrain, remove); see
agencystack.fleet and agencystack.placement."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply

hosts_app = typer.Typer(help="Docker hosts clients are placed on (the local engine is the default).",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hosts_app, name="hosts")


def _fleet(ctx: typer.Context, json_output: bool = False):
    from agencystack.cli.session import Session

    session = Session.of(ctx, json_output)
    return session, session.global_settings.fleet()


@hosts_app.command("add")
def add(ctx: typer.Context, name: str = typer.Argument(..., help="A short name: 1-16 of a-z 0-9 -."),
        docker_host: str = typer.Option(..., "--docker-host", help="ssh://user@host, tcp://host:2376 or "
                                        "unix:///path/docker.sock (SSH: your agent and keys; TLS: --tls-cert-path)."),
        tls_cert_path: str | None = typer.Option(None, "--tls-cert-path", help="Directory with ca.pem, cert.pem, "
                                                 "key.pem (read where it is, never copied)."),
        no_tls_verify: bool = typer.Option(False, "--no-tls-verify", help="Do not verify the engine's certificate."),
        swarm: bool | None = typer.Option(None, "--swarm/--no-swarm", help="The address is a Swarm manager's: "
                                          "Swarm schedules the clients' services across its nodes (default: "
                                          "asked of the engine; --no-swarm: place on this engine alone)."),
        json_output: options.Json = False) -> Reply:
    """Register a Docker host (checked for reachability; registered even if it does not answer yet)."""
    from agencystack.cli.output import say, warn
    from agencystack.placement import room

    session, fleet = _fleet(ctx, json_output)
    asked: list = []  # the engine asked once: for detection (before anything is written), then for the report

    def detect(candidate) -> bool:
        asked.append(room(candidate))
        return asked[-1].swarm_manager

    host = fleet.add(name, docker_host, tls_cert_path=tls_cert_path, tls_verify=not no_tls_verify, swarm=bool(swarm),
                     detect=detect if swarm is None else None)  # --no-swarm: not asked
    found = asked[0] if asked and not host.swarm else room(host)  # a swarm's room lists its nodes

    def text() -> None:
        say(f"host {host.name}: added ({host.docker_host})" + (
            "; a Swarm manager: Swarm schedules its clients (--no-swarm: this engine alone)"
            if host.swarm and swarm is None else ""))
        if found.reachable:
            say(f"  engine {found.version}, {found.memory / 1024**3:.1f} GB, {found.cpus} CPUs")
        else:
            warn(f"host {host.name} does not answer yet: {session.redact(found.error)}")

    return Reply(_row(found, []), text)


@hosts_app.command("list")
def list_(ctx: typer.Context, json_output: options.Json = False) -> Reply:
    """Every host with its reachability, engine version, RAM/CPUs, placed clients and free capacity (all hosts
    asked in parallel)."""
    from agencystack import placement

    session, fleet = _fleet(ctx, json_output)
    found = placement.rooms(fleet.hosts())
    placed = placement.clients_on(session.global_settings.state_root)
    rows = [_row(r, placed.get(r.host.name, [])) for r in found]
    return Reply(rows, lambda: _hosts_table(rows))


def _hosts_table(rows: list) -> None:
    from agencystack.cli.output import colours, paint, table

    def gb(value) -> str:
        return "" if value is None else f"{value / 1024**3:.1f} GB"

    table(["HOST", "ADDRESS", "STATE", "ENGINE", "MEMORY", "CPUS", "COMMITTED", "FREE", "CLIENTS"],
          [[row["name"], row["docker_host"],
            ("reachable", "green") if row["reachable"] else f"{paint('unreachable', 'red', colours())} {row['error']}",
            row["engine_version"] or "", gb(row["memory"]), "" if row["cpus"] is None else str(row["cpus"]),
            gb(row["committed_memory"]), gb(row["free_memory"]), ", ".join(row["clients"])] for row in rows])
    nodes = [[row["name"], n["hostname"], n["state"], n["availability"], n["manager"] or n["role"],
              n["engine_version"], gb(n["memory"]), str(n["cpus"])] for row in rows for n in row["nodes"]]
    if nodes:
        table(["SWARM", "NODE", "STATE", "AVAILABILITY", "MANAGER", "ENGINE", "MEMORY", "CPUS"], nodes)


def _row(found, clients) -> dict:
    ok = found.reachable
    return {"name": found.host.name, "docker_host": found.host.docker_host, "reachable": ok,
            "error": found.error or None, "engine_version": found.version or None,
            "memory": found.memory if ok else None, "cpus": found.cpus if ok else None,
            "committed_memory": found.committed if ok else None, "free_memory": found.free if ok else None,
            "unlimited_services": found.unlimited if ok else None, "clients": sorted(clients),
            "tls_cert_path": str(found.host.tls_cert_path) if found.host.tls_cert_path else None,
            "swarm": found.host.swarm, "nodes": [_node(n) for n in found.nodes]}


def _node(node) -> dict:
    return {"id": node.id, "hostname": node.hostname, "state": node.state, "availability": node.availability,
            "role": node.role, "manager": node.manager or None, "engine_version": node.engine_version,
            "memory": node.memory, "cpus": node.cpus}


def _availability(ctx: typer.Context, swarm: str, node: str, availability: str, json_output: bool) -> Reply:
    from agencystack import placement
    from agencystack.cli.output import say

    _, fleet = _fleet(ctx, json_output)
    found = placement.set_availability(fleet.get(swarm), node, availability)
    return Reply(_node(found), lambda: say(f"swarm {swarm}: node {found.hostname} is {found.availability}"))


@hosts_app.command("drain")
def drain(ctx: typer.Context, swarm: str = typer.Argument(..., help="The swarm's host name."),
          node: str = typer.Argument(..., help="The node (hostname or id)."),
          json_output: options.Json = False) -> Reply:
    """Drain a swarm node: Swarm moves its stateless tasks to other nodes; services pinned to its volumes wait."""
    return _availability(ctx, swarm, node, "drain", json_output)


@hosts_app.command("undrain")
def undrain(ctx: typer.Context, swarm: str = typer.Argument(..., help="The swarm's host name."),
            node: str = typer.Argument(..., help="The node (hostname or id)."),
            json_output: options.Json = False) -> Reply:
    """Make a drained swarm node active again (the services pinned to its volumes run there again)."""
    return _availability(ctx, swarm, node, "active", json_output)


@hosts_app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="The host's name."),
           json_output: options.Json = False) -> Reply:
    """Unregister a host; refused while clients are placed there (move or purge them first)."""
    from agencystack import placement
    from agencystack.cli.output import say

    _, fleet = _fleet(ctx, json_output)
    host = placement.remove_host(fleet, name)
    return Reply({"name": host.name, "removed": True}, lambda: say(f"host {host.name}: removed"))
