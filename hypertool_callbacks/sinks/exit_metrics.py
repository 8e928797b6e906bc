"""Metrics of short-lived processes: a textfile and/or a Pushgateway push when the tracker
shuts down (at exit, for start-up activation and ``instrument()``).

A script or batch job often ends before Prometheus scrapes it, and its metrics die with it.
Prometheus' two conventions for that: write the exposition to a ``.prom`` file that the node
exporter's textfile collector serves (``metrics_textfile``), or push it to a Pushgateway
(``pushgateway_url``, ``pushgateway_job``). What is written or pushed is what ``/metrics``
serves (:func:`~hypertool_callbacks.exposition.exposed`): in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) the merged view of every process.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, push_to_gateway, write_to_textfile

from hypertool_callbacks.config import Config
from hypertool_callbacks.context.sink import Sink, never_needs_run
from hypertool_callbacks.exposition import exposed

_log = logging.getLogger(__name__)


class ExitMetricsSink(Sink):
    """Writes and/or pushes the metrics once, when the tracker shuts down.

    Example::

        sinks = [PrometheusSink(registry),
                 ExitMetricsSink(textfile="/var/lib/node_exporter/textfile/job.prom",
                                 registry=registry)]
        Tracker(config, sinks).shutdown(1.0)     # writes job.prom (atomically)

    The push replaces the job's metrics on the Pushgateway (HTTP PUT), the convention for a
    batch job: the gateway then holds the last run's. A failure is one warning, never an
    exception; the push is bounded by the shutdown's timeout.
    """

    name = "exit_metrics"

    needs_run = never_needs_run  # acts at shutdown only

    def __init__(
        self,
        *,
        textfile: str | None = None,
        pushgateway_url: str | None = None,
        job: str = "hypertool",
        registry: CollectorRegistry | None = None,
        created_series: bool = False,
    ) -> None:
        self.textfile = textfile
        self.pushgateway_url = pushgateway_url
        self.job = job
        self.registry = registry
        self.created_series = created_series
        self._done = False

    def shutdown(self, timeout: float = 5.0) -> None:
        if self._done:  # the exit hook after an explicit shutdown: written already
            return
        self._done = True
        collector = exposed(self.registry, self.created_series)
        if self.textfile:
            try:
                write_to_textfile(self.textfile, collector)  # a temp file, then a rename
            except Exception as exc:
                _log.warning("hypertool: cannot write the metrics to %s: %r", self.textfile, exc)
        if self.pushgateway_url:
            try:
                push_to_gateway(self.pushgateway_url, job=self.job, registry=collector,
                                timeout=max(0.1, timeout))
            except Exception as exc:
                _log.warning("hypertool: cannot push the metrics to %s: %s; this run's "
                             "metrics are not pushed", self.pushgateway_url, exc)


def default_sinks(config: Config, registry: CollectorRegistry | None = None) -> list[Sink]:
    """[ExitMetricsSink] when ``metrics_textfile`` or ``pushgateway_url`` is set, else []."""
    if not config.metrics_textfile and not config.pushgateway_url:
        return []
    return [ExitMetricsSink(textfile=config.metrics_textfile,
                            pushgateway_url=config.pushgateway_url, job=config.pushgateway_job,
                            registry=registry, created_series=config.metrics_created_series)]
