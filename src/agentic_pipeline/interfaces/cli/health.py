"""Health commands: ``health``, ``stuck``, ``serve`` (thin skins over agentic_pipeline.health)."""

from __future__ import annotations

import click

from agentic_pipeline import errors
from agentic_pipeline.interfaces.cli.context import ID, actor_option, console, emit, json_option, lit

EXIT_CODES = {"healthy": 0, "warning": 1, "critical": 2}
#: the database is unreachable or its schema is behind: health cannot be known
EXIT_UNKNOWN = 3


@click.command("health")
@json_option
@click.option("--watch", is_flag=True, help="Redraw the report live until Ctrl-C (figures at most --interval old).")
@click.option("--fresh", is_flag=True, help="Recompute now instead of using the stored report.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between redraws with --watch (at least 0.2).")
@click.pass_context
def health_cmd(ctx, as_json: bool, watch: bool, fresh: bool, interval: float) -> None:
    """Show pipeline health: counts, finished books (24 h and total), stuck books, queue, workers, alerts.

    
    Exit codes (for cron, CI and monitoring):
      0  healthy
      1  warning (an alert of severity warning)
      2  critical (an alert of severity critical)
      3  unknown: the database is unreachable or its schema is behind
    The report comes from the one the maintenance worker stores while it is fresh (the header
    says how old it is); --fresh recomputes it. --watch recomputes whenever the stored one is
    older than --interval. With --watch --json, one JSON report per line every --interval seconds.
    """
    from agentic_pipeline.health import monitor

    try:
        app = ctx.obj.app()
        if not watch:
            report = monitor.get_health(app, fresh=fresh)
    except errors.StoreError as exc:  # unreachable, or schema behind (SchemaBehind): health is unknown
        click.echo(f"health unknown: {exc}", err=True)
        ctx.exit(EXIT_UNKNOWN)
    if watch and as_json:
        report = _watch_json(app, fresh, interval)
    elif watch:
        report = _watch(app, fresh, interval)
    else:
        emit(report, as_json, lambda r: console().print(render_report(r)))
    ctx.exit(EXIT_CODES.get(report["status"], 2) if report else 0)


def _watch_json(app, fresh: bool, interval: float):
    """One JSON report per line every ``interval`` seconds until Ctrl-C (for a log or a pipe); returns the last."""
    import json
    import time

    from agentic_pipeline.health import monitor

    report = None
    try:
        while True:
            report = monitor.get_health(app, fresh=fresh, max_age=interval)
            click.echo(json.dumps(report, default=str, ensure_ascii=False))
            time.sleep(interval)
    except (KeyboardInterrupt, BrokenPipeError):
        return report


def _watch(app, fresh: bool, interval: float):
    """Redraw the report every ``interval`` seconds until Ctrl-C; returns the last one."""
    import time

    from rich.live import Live
    from rich.text import Text

    from agentic_pipeline.health import monitor

    report = monitor.get_health(app, fresh=fresh, max_age=interval)
    try:
        with Live(render_report(report), console=console(), auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval)
                try:
                    report = monitor.get_health(app, fresh=fresh, max_age=interval)
                    live.update(render_report(report), refresh=True)
                except errors.StoreError as exc:  # keep watching through a database restart
                    live.update(Text(f"health unknown: {exc} (retrying every {interval:g}s)"), refresh=True)
    except KeyboardInterrupt:
        return report


def render_report(r):
    """The report as Rich renderables: status, counts, stuck books, timings, queue, workers, alerts."""
    from rich.console import Group
    from rich.text import Text

    colour = {"healthy": "green", "warning": "yellow", "critical": "red"}.get(r["status"], "red")
    age = r.get("age_seconds")
    lines = [Text.from_markup(f"[bold]Pipeline health:[/] [bold {colour}]{r['status'].upper()}[/]  "
                              f"[dim](figures from {r['generated_at'][11:19]} UTC, "
                              f"{'just computed' if not age else f'{age:.0f}s old'}; {r['backend']})[/]")]
    lines.append(Text(f"  Active: {r['active']:,}   Queued: {r['queued']:,}   Pending approval: "
                      f"{r['pending_approval']:,}   Retrying: {r['failed']:,}"))
    finished = r.get("finished") or {}
    if finished:
        names = {"complete": "completed", "rejected": "rejected", "duplicate": "duplicates", "failed": "failed"}
        for label, key in (("Last 24h:", "last_24h"), ("Total:", "total")):
            lines.append(Text(f"  {label:<10}" + "   ".join(f"{names.get(k, k)} {v[key]:,}" for k, v in finished.items())))
    else:  # a report stored by an older version
        lines.append(Text(f"  Completed (24h): {r['completed_24h']}   Failed permanently: {r['failed_permanently']}"))
    lines.append(Text(f"  Stuck: {len(r['stuck'])}" + ("" if not r["stuck"] else "  " + ", ".join(
        f"#{s['id']} {s['state']} {s['minutes_in_state']:.0f} min (expected {s['expected_minutes']:.0f})"
        + (" orphaned" if s["reason"] == "orphaned" else "") for s in r["stuck"][:5])
        + (f" … and {len(r['stuck']) - 5} more" if len(r["stuck"]) > 5 else ""))))
    avg = r["avg_processing_seconds"]
    wait = r["estimated_queue_minutes"]
    lines.append(Text(f"  Avg processing time: {_minutes(avg)}   Estimated queue wait: "
                      f"{'no workers' if wait is None else f'{wait:.0f} min'}"))
    oldest = (r["waiting"].get("detected") or {}).get("oldest_age_seconds")
    lines.append(Text("  Queue by priority: " + " ".join(f"{p}:{n}" for p, n in r["queue_by_priority"].items())
                      + (f"   oldest waiting {_minutes(oldest)}" if oldest else "")))
    workers = ", ".join(f"{w['id']}" + (f" on #{w['current_pipeline_id']}" if w.get("current_pipeline_id") else "")
                        for w in r["workers"][:4]) + (f", ... {len(r['workers']) - 4} more" if len(r["workers"]) > 4 else "")
    lines.append(Text(f"  Workers: {len(r['workers'])}" + (f" ({workers})" if workers else "")))
    from agentic_pipeline.escaping import printable

    for a in r["alerts"][:10]:
        style = {"critical": "bold red", "warning": "yellow"}.get(a["severity"], "cyan")
        lines.append(Text.from_markup(f"  [{style}]{a['severity']}[/] {a['code']}: ") + Text(printable(a["message"])))
    if len(r["alerts"]) > 10:
        lines.append(Text(f"  ... {len(r['alerts']) - 10} more alerts (use --json)"))
    return Group(*lines)


def _minutes(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


@click.command("stuck")
@json_option
@click.option("--recover", is_flag=True, help="Apply the recovery rules to every stuck book.")
@click.option("--reset", "reset_id", type=ID, metavar="ID", help="Recover this one book by hand.")
@click.option("--action", type=click.Choice(["retry", "reject", "reset"]), default="retry", show_default=True,
              help="With --reset: retry (NEEDS_RETRY now), reject, or reset (back to DETECTED).")
@click.option("--reason", help="With --reset: why (required for --action reject and reset; kept in the audit trail).")
@click.option("--force", is_flag=True,
              help="With --reset: recover even a book that is not stuck and whose worker still holds a live lease.")
@actor_option
@click.pass_obj
def stuck_cmd(obj, as_json: bool, recover: bool, reset_id: int | None, action: str, reason: str | None, force: bool,
              actor: str) -> None:
    """List stuck books; recover them by the rules (--recover) or one by one (--reset ID).

    A book recovered by hand must be stuck, or have no live lease: a book a worker is on, on time,
    is refused unless --force.
    """
    from agentic_pipeline.health import monitor, recovery

    if reset_id is None and (action != "retry" or reason or force):
        raise click.UsageError("--action, --reason and --force go with --reset ID (recover one book by hand)")
    app = obj.app()
    if reset_id is not None:
        data = recovery.recover_one(app, reset_id, action, actor=actor, reason=reason, force=force)
        emit(data, as_json, lambda d: click.echo(f"Pipeline {d['id']}: {d['from']} -> {d['to']} ({d['action']}, "
                                                  f"stuck {d['stuck_minutes']:.0f} min) by {d['actor']}"))
    elif recover:
        data = recovery.recover_stuck(app, actor=actor)
        emit(data, as_json, _render_recovery)
    else:
        found = monitor.find_stuck(app)
        data = {"generated_at": found["generated_at"], "stuck": [s.to_dict() for s in found["stuck"]],
                "decisions": [recovery.decide(s, app.settings).__dict__ for s in found["stuck"]]}
        emit(data, as_json, _render_stuck)


def _render_stuck(d) -> None:
    from agentic_pipeline.interfaces.cli import render

    if not d["stuck"]:
        click.echo("No stuck books.")
        return
    room = render.screen_rows(reserved=4)
    click.echo(f"{len(d['stuck']):,} stuck book{'s' if len(d['stuck']) != 1 else ''} (minutes in state / expected)")
    render.table([render.Column("id", justify="right"), render.Column("state"), render.Column("min", justify="right"),
                  render.Column("expected", justify="right"), render.Column("why"), render.Column("lease"),
                  render.Column("rule says", flex=True)],
                 [[s["id"], s["state"], f"{s['minutes_in_state']:.0f}", f"{s['expected_minutes']:.0f}", s["reason"],
                   s["lease_owner"] or "", f"{dec['action']}: {dec['reason']}"]
                  for s, dec in list(zip(d["stuck"], d["decisions"]))[:room]],
                 more=len(d["stuck"]) - room)


def _render_recovery(d) -> None:
    click.echo(f"{d['stuck']} stuck; recovered {len(d['recovered'])}, alert only {len(d['alerted'])}, "
               f"changed meanwhile {len(d['conflicts'])}")
    for r in d["recovered"]:
        click.echo(f"  #{r['id']} {r['from']} -> {r['to']} after {r['stuck_minutes']:.0f} min: {r['reason']}")
    for a in d["alerted"]:
        click.echo(f"  #{a['id']} {a['state']}: alert only ({a['reason']})")


@click.command("serve")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1: loopback only). On any other "
              "address write actions need the dashboard token.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8765; 0 picks a free one).")
@click.option("--read-only", is_flag=True, help="Serve the dashboard without any write action.")
@click.option("--user", default=None, help="Name written in the audit trail as web:<user> (default: your login).")
@click.option("--alerts/--no-alerts", default=True, show_default=True,
              help="Also refresh the health report and send alert notifications (alert_* settings) while serving, "
                   "so people hear of trouble even when no worker is alive.")
@click.pass_obj
def serve_cmd(obj, host: str | None, port: int | None, read_only: bool, user: str | None, alerts: bool) -> None:
    """Serve the web dashboard, GET /health and GET /metrics over HTTP (127.0.0.1 by default).

    The dashboard (overview, approval inbox and review, batch actions, queue, stuck books, audit, search) acts
    through the same operations as the CLI, audited as web:<user>. Bound to a non-loopback address, write
    actions need a token: AGENTIC_PIPELINE_WEB_TOKEN, or one generated and printed at start.
    """
    import getpass

    from agentic_pipeline.interfaces.web import app as web_app
    from agentic_pipeline.interfaces.web import security, server as web_server

    app = obj.app()
    host = host or app.settings.http_host
    port = app.settings.http_port if port is None else port
    if user is None:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user database (containers)
            user = "unknown"
    options, generated = security.options_for(host, user=user, read_only=read_only,
                                              token=app.settings.web_token or None)
    guard = web_server.Guard(request_timeout=app.settings.web_request_timeout,
                             max_per_client=app.settings.web_max_per_client,
                             max_connections=app.settings.web_max_connections)
    try:
        server = web_server.make_server(web_app.create_app(app, options), host, port, guard=guard)
    except (OSError, OverflowError) as exc:  # unknown host, port taken or out of range, no permission
        reason = getattr(exc, "strerror", None) or str(exc)
        raise errors.ConfigError(f"cannot listen on {host}:{port}: {reason}",
                                 hint="pick another --port (0: any free one) or --host") from None
    bound_host, bound_port = server.address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    import logging

    from agentic_pipeline import logs

    logs.start_line(logging.getLogger("agentic_pipeline.serve"), "serve", app.settings,
                    address=f"http://{shown}:{bound_port}/", read_only=options.read_only)
    mode = "read-only" if options.read_only else f"actions audited as {options.actor}"
    click.echo(f"Serving http://{shown}:{bound_port}/ (dashboard, {mode}), /health and /metrics "
               "(Ctrl-C to stop)", err=True)
    if options.token is not None:
        click.echo(("Write token (generated; set AGENTIC_PIPELINE_WEB_TOKEN to choose one): " + options.token)
                   if generated else "Write actions need the token in AGENTIC_PIPELINE_WEB_TOKEN (log in at /login)",
                   err=True)
    _quiet_uvicorn()
    background = _alert_tasks(app) if alerts else None
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if background is not None:
            background.stop()
        server.sock.close()


def _alert_tasks(app):
    """The health refresh and alert delivery tasks in a background thread (issue 16): a worker runs them too,
    the database elects one runner per task, and this one keeps them going while no worker is alive."""
    import os
    import socket

    from agentic_pipeline.orchestrator import maintenance

    return maintenance.Background(app, f"serve:{socket.gethostname()}:{os.getpid()}").start()


def _quiet_uvicorn() -> None:
    """uvicorn's own logger says what our one-line messages already say; keep its warnings and errors."""
    import logging

    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    # our own lines (disconnects, dropped clients, errors) go through the agentic_pipeline handler (logs.setup)
