"""Prometheus text for ``GET /metrics``: a fresh ``CollectorRegistry`` per scrape, built from the report.

Gauges come from the health report (cached while fresh); counters are totals of history
(``entered`` tallies of the stats plus the rows since their watermark); histograms of state
durations are the stats sketches re-bucketed onto fixed boundaries (each sample is counted at its
log bucket's middle, so boundaries are accurate to about 2.5 %).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Mapping

from agentic_pipeline.db import health_store as hs
from agentic_pipeline.health import stats, stats_refresh
from agentic_pipeline.audit import actions
from agentic_pipeline.db import audit_store
from agentic_pipeline.health import monitor
from prometheus_client.core import GaugeMetricFamily
from agentic_pipeline.health import alerts as alert_rules

PREFIX = "agentic_pipeline"
HISTOGRAM_BOUNDS = (1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
#: counter name -> the state whose entries it counts
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
COUNTED = {"completed": "complete", "failed": "failed", "retried": "needs_retry"}


class ReportCollector:
    """Yields every metric family from one report and one read of the stats."""

    def __init__(self, report: Mapping[str, Any], totals: Mapping[str, int], sketches: Mapping[str, stats.Sketch]):
        self.report, self.totals, self.sketches = report, totals, sketches

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # lazy: prometheus_client only for GET /metrics

        r = self.report
        by_state = GaugeMetricFamily(f"{PREFIX}_pipelines", "Pipelines per state.", labels=["state"])
        for state, n in sorted(r["counts_by_state"].items()):
            by_state.add_metric([state], n)
        yield by_state
        by_priority = GaugeMetricFamily(f"{PREFIX}_queued_by_priority", "Queued (DETECTED) books per priority.",
                                        labels=["priority"])
        for priority, n in sorted(r["queue_by_priority"].items(), key=lambda kv: int(kv[0])):
            by_priority.add_metric([str(priority)], n)
        yield by_priority
        finished = GaugeMetricFamily(f"{PREFIX}_finished_last_24h",
                                     "Books that entered each finishing state in the last 24 hours "
                                     "(totals: agentic_pipeline_pipelines).", labels=["state"])
        for state, figures in sorted((r.get("finished") or {}).items()):
            finished.add_metric([state], figures.get("last_24h", 0))
        yield finished
        oldest = (r["waiting"].get("detected") or {}).get("oldest_age_seconds")
        for name, doc, value in (
            ("stuck", "Stuck books (orphans included).", len(r["stuck"])),
            ("orphaned", "Working books whose worker's lease expired.", r.get("orphaned", 0)),
            ("active", "Books being processed now (live lease).", r["active"]),
            ("workers", "Live workers.", len(r["workers"])),
            ("oldest_queued_age_seconds", "Age of the oldest queued book.", oldest or 0.0),
            ("health_status", "0 healthy, 1 warning, 2 critical.", {"healthy": 0, "warning": 1}.get(r["status"], 2)),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)
        yield from self._alerts()
        for name, total in sorted(self.totals.items()):
            yield CounterMetricFamily(f"{PREFIX}_{name}", f"Books {name} since the database was created.", value=total)
        yield from self._histograms()

    def _alerts(self) -> Iterator[Any]:
        """``agentic_pipeline_alerts{code}``: how many alerts of each code hold now (0 for the quiet ones), so
        Prometheus rules (deploy/prometheus-rules.yml) can alert on exactly what the report does."""
        family = GaugeMetricFamily(f"{PREFIX}_alerts", "Alerts of each code in the health report now.",
                                   labels=["code", "severity"])
        counts: dict[tuple[str, str], int] = {}
        for a in self.report.get("alerts", []):
            counts[(a["code"], a["severity"])] = counts.get((a["code"], a["severity"]), 0) + 1
        for code, severity in alert_rules.CODES.items():
            counts.setdefault((code, severity), 0)
        for (code, severity), n in sorted(counts.items()):
            family.add_metric([code, severity], n)
        yield family

    def _histograms(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily  # lazy: prometheus_client only for GET /metrics

        family = HistogramMetricFamily(f"{PREFIX}_state_duration_seconds",
                                       "Time spent in a state before leaving it normally.", labels=["state"])
        for state, sketch in sorted(self.sketches.items()):
            if not sketch.samples:
                continue
            buckets, total = histogram_buckets(sketch)
            family.add_metric([state], buckets, total)
        yield family


def histogram_buckets(sketch: stats.Sketch) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs and the approximate sum of a sketch."""
    values = [(stats.bucket_value(i), n) for i, n in sorted(sketch.buckets.items())]
    out = [(str(float(b)), float(sum(n for v, n in values if v <= b))) for b in HISTOGRAM_BOUNDS]
    out.append(("+Inf", float(sketch.samples)))
    return out, sum(v * n for v, n in values)


def totals(app, conn, sketches: Mapping[str, stats.Sketch], watermark: int | None) -> dict[str, int]:
    """completed / failed / retried / recovered totals, derived from history (and the audit trail)."""
    out = {}
    if watermark is None:
        for name, state in COUNTED.items():
            out[f"{name}_total"] = hs.entered_since(conn, state, _EPOCH)
    else:
        entered = {state: (sketches[state].entered if state in sketches else 0) for state in COUNTED.values()}
        for _src, dst, n in hs.history_delta(conn, watermark):
            if dst in entered:
                entered[dst] += n
        out = {f"{name}_total": entered[state] for name, state in COUNTED.items()}
    out["recovered_total"] = (hs.count_audit(conn, actions.Action.STUCK_RECOVERED.value)
                              + _pruned(conn, actions.Action.STUCK_RECOVERED.value))
    return out


def _pruned(conn, action: str) -> int:
    """How many ``action`` entries retention removed, from its RETENTION_PRUNED records (kept forever).

    A counter must never go down (Prometheus reads a drop as a restart): entries removed by
    retention still count. Each record of a multi-part prune carries the whole prune's counts,
    so only part 1 is added.
    """
    total = 0
    for _id, doc in audit_store.pruned_records(conn):
        if isinstance(doc, dict) and doc.get("part", 1) == 1 and isinstance(doc.get("by_action"), dict):
            value = doc["by_action"].get(action, 0)
            total += value if isinstance(value, int) else 0
    return total


def render(app) -> tuple[bytes, str]:
    """The Prometheus exposition of the current health: (body, content type)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # lazy: prometheus_client only for GET /metrics


    report = monitor.get_health(app, save=False)
    with app.db.read() as conn:
        _, sketches, watermark = stats_refresh.load(app, conn)
        counted = totals(app, conn, sketches, watermark)
    registry = CollectorRegistry()
    registry.register(ReportCollector(report, counted, sketches))
    return generate_latest(registry), CONTENT_TYPE_LATEST

