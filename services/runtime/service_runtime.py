"""One object per service process: the FastStream app with the runtime wired in.

    runtime = ServiceRuntime("session-commands", settings)
    topics = settings.topics     # the deployment's TopicCatalogue

    @runtime.consumer(*topics.names((TopicName.COMMANDS, TopicName.TURNS)),
                      group_id="session-commands", co_partitioned=True)
    async def handle(record: Record) -> None:
        decoded = decode(record.value, record.headers)   # DecodeError → dead letter
        ...                                              # durable effects first
        await runtime.publish(topics.name(TopicName.SESSION_EVENTS), encode(event, ...))

    runtime.add_readiness_check("mongo", mongo_ping)
    # faststream run --factory services.session_commands.app:create_app

Each consumer is a real FastStream subscriber (so it appears in the AsyncAPI document) with
`AckPolicy.MANUAL` and `batch=True`: its FastStream handler only hands each fetched batch
(`getmany()`) to a `KeyOrderedConsumer`, which does ordering, commits, backpressure, rebalance
drain, retries and dead letters. One FastStream call per fetch, not per record: FastStream's
consume path and fast_depends' call cost 5-10% of a service's CPU per record (issue 15). No
FastStream telemetry or Prometheus middleware: the runtime makes the record's span itself
(record_span.py), writes `traceparent` on what it publishes and keeps its own metrics, and the
middlewares' per-record spans and counters cost about a fifth of a service's CPU (issue 15,
docs/performance.md). See docs/runtime.md.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import uvloop
from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import GroupAuthorizationFailedError
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from contracts.codec import EncodedRecord
from contracts.topics import TopicName
from services.runtime import header_names
from services.runtime.assignment_summary import holdings
from services.runtime.dead_letter import DeadLetterPublisher
from services.runtime.fetch_loop import fetch_without_idle_sleep
from services.runtime.health import HealthServer, ReadinessCheck
from services.runtime.kafka_access import KafkaAccessRefused, check_kafka_access, principal
from services.runtime.kafka_security import faststream_security
from services.runtime.keyed_consumer import (
    Accepts,
    ConsumerOptions,
    Handler,
    KeyOrderedConsumer,
)
from services.runtime.periodic import PeriodicJob
from services.runtime.publishing import publish_failures_classified
from services.runtime.raw_parser import parse_batch_keeping_original
from services.runtime.rebalance import DrainingRebalanceListener
from services.runtime.record import PartitionId, Record
from services.runtime.record_producer import Headers, RecordProducer
from services.runtime.retry import Backoff
from services.runtime.settings import RuntimeSettings
from services.runtime.startup_heap import freeze_startup_heap
from services.runtime.telemetry.broker_outage_log import BrokerOutageSummary
from services.runtime.telemetry.log_context import configure_logging
from services.runtime.telemetry.metrics import RuntimeMetrics
from services.runtime.telemetry.record_span import traced
from services.runtime.telemetry.tracing import (
    configure_tracing,
    current_baggage,
    current_traceparent,
    records_spans,
)
from services.runtime.uri_redaction import redact_uri_credentials

log = logging.getLogger(__name__)
_VERSION = "0.1.0"
_READY_POLL_S = 0.25


def _no_correlation_header() -> str:
    # FastStream writes a random `correlation_id` header on every record unless the id is
    # empty. The pipeline's correlation is the CloudEvent `ce_correlationid`; a second, random
    # one on every topic only confused readers of the records (issue 16).
    return ""


def _to_kafka(partition: PartitionId) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


async def _as_records(message: StreamMessage[Any]) -> list[Record]:
    # FastStream must not parse the bodies: a malformed one would fail inside FastStream,
    # before the runtime could dead-letter it. Decoding is the handler's job (contracts.codec).
    # Handing over the whole records as "the body" also spares a `Context("message")`
    # parameter, which fast_depends resolves in a worker thread for every call.
    return [Record.from_consumer_record(raw) for raw in message.raw_message]


class TopicsMissing(RuntimeError):
    """A topic the service consumes does not exist at start: nothing creates it on the fly
    (that would give it one partition and none of the catalogue's configs)."""


@dataclass(frozen=True, slots=True)
class ConsumerBinding:
    group_id: str
    topics: tuple[str, ...]
    engine: KeyOrderedConsumer


class ServiceRuntime:
    def __init__(
        self,
        service: str,
        settings: RuntimeSettings,
        *,
        registry: CollectorRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
        configure_logs: bool = True,
    ) -> None:
        self.service = service
        self.settings = settings
        # Before any consumer fetches: a header name that is not UTF-8 must not wedge the
        # fetch (header_names.py).
        header_names.install()
        self._broker_outages: BrokerOutageSummary | None = None
        if configure_logs:
            self._broker_outages = configure_logging(
                service, log_format=settings.log_format, level=settings.log_level
            )
        # Writes "broker reachable again" even when nothing else logs after an outage.
        self._broker_recovery_check = PeriodicJob(
            "broker recovery check", self._check_broker_recovery, interval_s=1.0
        )
        self.registry = registry or CollectorRegistry()
        self.tracer_provider = tracer_provider or configure_tracing(
            service, otlp_endpoint=settings.otlp_endpoint, console=settings.console_telemetry
        )
        self.tracer = self.tracer_provider.get_tracer("agent_runtime")
        # One metrics path: Prometheus (/metrics). OpenTelemetry carries traces only.
        self.metrics = RuntimeMetrics(service, self.registry)
        # A logger without handlers of its own: FastStream's lines go through the root
        # handler (JSON with the record's context) instead of FastStream's coloured console.
        faststream_logger = logging.getLogger(f"agent_runtime.faststream.{service}")
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            # Every producer and consumer of the service shows up under this name in the
            # broker's logs, metrics and quotas (FastStream's default names only its version).
            client_id=settings.client_id(service),
            security=faststream_security(settings),
            # FastStream would otherwise create a missing topic at subscribe time with one
            # partition and no configs, whatever the broker's `auto.create.topics.enable`: a
            # service started before `topics create` would break the partition count the
            # catalogue needs (and `topics create` would then refuse the topic).
            allow_auto_create_topics=False,
            # A publish is a durable effect only once every in-sync replica has it.
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.producer_linger_ms,
            max_batch_size=settings.producer_max_batch_bytes,
            id_generator=_no_correlation_header,
            request_timeout_ms=settings.kafka_request_timeout_ms,
            graceful_timeout=settings.drain_timeout_s,
            # Per-record "Received"/"Processed" lines would dominate the logs and the CPU.
            log_level=logging.DEBUG,
            logger=faststream_logger,
        )
        # What the services publish goes through their own producer, not `broker.publish`
        # (record_producer.py: FastStream's publish path cost 30-40 µs per record).
        self.producer = RecordProducer(settings, settings.client_id(service))
        self.health = HealthServer(self.registry, settings.health_host, settings.health_port)
        self.health.add_check("kafka_assignment", self._holds_assignment)
        self.health.on_first_ready(self._log_ready)
        self.app = FastStream(
            self.broker,
            logger=faststream_logger,
            specification=AsyncAPI(title=service, version=_VERSION),
            on_startup=[self._check_kafka_access],
            after_startup=[self._after_startup],
            on_shutdown=[self._on_shutdown],
            after_shutdown=[self._after_shutdown],
        )
        self.consumers: list[ConsumerBinding] = []
        self._ready_announcement: asyncio.Task[None] | None = None
        self._ready_logged = False

    # ------------------------------------------------------------- registration

    def consumer(
        self,
        *topics: str,
        group_id: str,
        co_partitioned: bool = False,
        title: str | None = None,
        description: str | None = None,
        accepts: Accepts | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a key-ordered consumer of `topics` (full names) in consumer group `group_id`.

        `co_partitioned=True` uses range assignment so one instance owns partition *p* of every
        topic (same partition counts required), e.g. session-commands on commands + turns.
        `accepts`: records it says False to are done at once, never handed to the handler (for
        a consumer that acts on a few record types of a busy topic).
        """
        if not topics:
            raise ValueError("a consumer needs at least one topic")

        def register(handler: Handler) -> Handler:
            self._register(handler, topics, group_id, co_partitioned, title, description, accepts)
            return handler

        return register

    def _register(
        self,
        handler: Handler,
        topics: Sequence[str],
        group_id: str,
        co_partitioned: bool,
        title: str | None,
        description: str | None,
        accepts: Accepts | None,
    ) -> None:
        s = self.settings
        subscriber_ref: list[Any] = []

        def kafka_consumer() -> Any:
            return subscriber_ref[0].consumer if subscriber_ref else None

        engine = KeyOrderedConsumer(
            traced(
                handler,
                self.tracer,
                consumer_group=group_id,
                records_spans=records_spans(self.tracer_provider),
            ),
            consumer=kafka_consumer,
            to_kafka_partition=_to_kafka,
            dead_letters=DeadLetterPublisher(
                topic=s.topics.name(TopicName.DEAD_LETTERS),
                consumer_group=group_id,
                source_service=self.service,
                publish=self.publish,
            ),
            options=ConsumerOptions(
                max_in_flight=s.max_in_flight,
                resume_ratio=s.resume_ratio,
                commit_interval_s=s.commit_interval_s,
                drain_timeout_s=s.drain_timeout_s,
                rebalance_drain_timeout_s=s.rebalance_drain_timeout_s,
                backpressure_block_s=s.backpressure_block_s,
                max_queued_per_key=s.max_queued_per_key,
                backoff=Backoff(
                    s.retry_initial_backoff_s, s.retry_max_backoff_s, s.retry_max_attempts
                ),
            ),
            metrics=self.metrics.for_consumer(group_id),
            name=f"{self.service}/{group_id}",
            accepts=accepts,
        )
        subscriber = self.broker.subscriber(
            *topics,
            group_id=group_id,
            # Never ACK_FIRST (auto-commit, at-most-once); MANUAL: FastStream commits nothing,
            # the engine commits exact offsets per partition.
            ack_policy=AckPolicy.MANUAL,
            batch=True,
            max_records=s.fetch_max_records,
            # getmany() returns as soon as records are there; this is only how long an idle
            # fetch waits (the runtime's fetch replaces FastStream's, below).
            batch_timeout_ms=s.fetch_wait_ms,
            listener=DrainingRebalanceListener(
                engine, lambda held: self._log_rebalanced(group_id, held)
            ),
            partition_assignment_strategy=(
                (RangePartitionAssignor,) if co_partitioned else (RoundRobinPartitionAssignor,)
            ),
            auto_offset_reset=s.auto_offset_reset,
            # Records of a transaction their producer aborted never reach a handler (an
            # upstream that writes commands in transactions); read_uncommitted applied them.
            # The services' own producers use no transactions: nothing else changes.
            isolation_level="read_committed",
            group_instance_id=s.group_instance_id,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            title=title,
            description=description or handler.__doc__,
        )
        # FastStream's batch fetch sleeps after every empty poll: the runtime's waits in
        # getmany() only (fetch_loop.py).
        subscriber.get_msg = fetch_without_idle_sleep(  # type: ignore[method-assign,assignment]
            s.fetch_max_records, s.fetch_wait_ms, engine.fetch_watch
        )
        subscriber_ref.append(subscriber)

        async def dispatch(records: Any) -> None:
            await engine.dispatch_batch(records)

        # The AsyncAPI operation is named after the service's handler, not this shim.
        dispatch.__name__ = getattr(handler, "__name__", "handle")
        dispatch.__doc__ = handler.__doc__
        subscriber(parser=parse_batch_keeping_original, decoder=_as_records)(dispatch)
        self.consumers.append(ConsumerBinding(group_id, tuple(topics), engine))

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """`check` answers True when the dependency is usable (e.g. a MongoDB ping)."""
        self.health.add_check(name, check)

    # ---------------------------------------------------------------- publishing

    async def publish(self, topic: str, record: EncodedRecord) -> None:
        """Publish and wait for the broker's ack (acks=all): a durable effect when it returns.

        Runs under the handler's span: a record encoded without a `traceparent` gets the
        handler span's, so the trace continues, and the handled record's W3C `baggage`.
        Raises `RetryableError` when the broker is unavailable and `UnpublishableRecord` when
        it refuses the record itself (publishing.py): handlers need not catch driver errors.
        """
        headers = self._headers(topic, record)
        async with publish_failures_classified(topic):
            await (await self.producer.send(topic, record.key, record.value, headers))

    def _headers(self, topic: str, record: EncodedRecord) -> Headers:
        headers = list(record.headers)
        if not any(name == "traceparent" for name, _ in headers):
            traceparent = current_traceparent()
            if traceparent is None:  # outside any handler span (dead letters, jobs): a new trace
                with self.tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER):
                    traceparent = current_traceparent()
            if traceparent is not None:
                headers.append(("traceparent", traceparent.encode()))
        if not any(name == "baggage" for name, _ in headers):
            baggage = current_baggage()  # the handled record's, carried on with its trace
            if baggage is not None:
                headers.append(("baggage", baggage.encode()))
        return headers

    async def publish_many(self, topic: str, records: Sequence[EncodedRecord]) -> None:
        """Publish `records` in this order and wait for every ack, as `publish` does for one.

        They are handed to the producer one after another without waiting in between and
        acknowledged together, so they share produce requests instead of paying a round trip
        each. Order holds: one session's records have one key, hence one partition, and the
        idempotent producer keeps a partition's batches in order. Failures are classified as
        for `publish`.
        """
        async with publish_failures_classified(topic):
            sent = [
                await self.producer.send(
                    topic, record.key, record.value, self._headers(topic, record)
                )
                for record in records
            ]
            await asyncio.gather(*sent)

    # ----------------------------------------------------------------- lifecycle

    def run(self) -> None:
        """Run until SIGTERM / SIGINT (draining first). A Kafka login the broker refuses was
        said in one log line at start; the process then exits 2 without a traceback. Any
        other error that ends the process (MongoDB unreachable at start, a bug) is one
        CRITICAL log line, its traceback in the line's `exception` field, then exit 1.

        This owns the process, so the heap built so far (imports, models, the app) is frozen
        out of the collector's full passes first (startup_heap.py)."""
        freeze_startup_heap()
        refused = crashed = False
        try:
            if self.settings.event_loop == "uvloop":
                uvloop.run(self._run_app())
            else:
                asyncio.run(self._run_app())
        except* KafkaAccessRefused:
            refused = True
        except* GroupAuthorizationFailedError as errors:
            # Joining its group at start: as a refused login, one line and exit 2, for the
            # ACLs to be fixed (the group is the exception's only argument).
            groups = ", ".join(str(e.args[0]) if e.args else "?" for e in errors.exceptions)
            log.critical(
                "Kafka does not let %s read consumer group %s: its ACLs grant it no access "
                "(docs/security.md; python -m services.admin.acls --print lists each principal's)",
                principal(self.settings),
                groups,
            )
            refused = True
        except* Exception as errors:
            crashed = True
            cause = errors.exceptions[0] if len(errors.exceptions) == 1 else errors
            log.critical(
                "%s stopped: %s: %s",
                self.service,
                type(cause).__name__,
                redact_uri_credentials(str(cause))[:500],
                exc_info=cause,
            )
        if refused:
            raise SystemExit(2)
        if crashed:
            raise SystemExit(1)

    async def _run_app(self) -> None:
        try:
            await self.app.run()
        except Exception:
            # A start-up hook failed (FastStream runs no shutdown hooks then): the producer
            # `_check_kafka_access` started is closed here, not left to the garbage collector.
            with contextlib.suppress(Exception):
                await self.producer.stop()
            raise

    async def _holds_assignment(self) -> bool:
        return bool(self.consumers) and all(c.engine.has_assignment for c in self.consumers)

    async def _check_kafka_access(self) -> None:
        # Before the broker's clients start: they would retry a wrong password forever.
        try:
            await check_kafka_access(self.settings)
        except KafkaAccessRefused as refused:
            log.critical("%s", refused)
            raise
        # Before the subscribers start: their handlers publish.
        await self.producer.start()
        # Before the subscribers start too: a consumer of a missing topic waits without an
        # assignment (and aiokafka logs an error about it ten times a second); the operator
        # needs the one line that says which topics to create.
        wanted = {topic for binding in self.consumers for topic in binding.topics}
        if missing := await self.producer.missing_topics(wanted):
            if hidden := await self.producer.unauthorized_topics(missing):
                # Not "create the topics": they may well exist, this principal may not read them.
                message = (
                    f"Kafka does not let {principal(self.settings)} read topics "
                    f"{', '.join(hidden)}: its ACLs grant it no access (docs/security.md; "
                    "python -m services.admin.acls --print lists each principal's)"
                )
                log.critical("%s", message)
                raise KafkaAccessRefused(message)
            raise TopicsMissing(
                f"topics {', '.join(missing)} do not exist: create the catalogue's topics "
                "first (python -m services.admin.topics, or agent-runtime topics create)"
            )

    async def _after_startup(self) -> None:
        for binding in self.consumers:
            binding.engine.start()
        await self.health.start()
        if self._broker_outages is not None:
            await self._broker_recovery_check.start()
        self._ready_announcement = asyncio.create_task(
            self._announce_ready(), name=f"{self.service} ready announcement"
        )

    async def _announce_ready(self) -> None:
        """Asks the readiness checks until they first pass, when no probe does it sooner: the
        health server then writes the ready line (`_log_ready`)."""
        # Polled: readiness is the health checks' answer (MongoDB pings too), not an event.
        while not all((await self.health.readiness()).values()):  # noqa: ASYNC110
            await asyncio.sleep(_READY_POLL_S)

    def _log_ready(self) -> None:
        """One INFO line, the first time the service is ready: what it holds. It stands for
        the libraries' join/assignment lines, which are DEBUG (library_chatter.py)."""
        held = {
            binding.group_id: holdings(binding.engine.assigned_partitions, self.settings.topics)
            for binding in self.consumers
        }
        log.info(
            "%s ready: %s",
            self.service,
            "; ".join(held.values()),
            extra={"ready": True, "assignment": held},
        )
        self._ready_logged = True

    def _log_rebalanced(self, group_id: str, held: Sequence[PartitionId]) -> None:
        """One INFO line per rebalance of a group after the ready line: what this instance holds
        now. Before it (a hot spare that starts with nothing and is then given partitions), the
        ready line is the one that says what it holds."""
        if not self._ready_logged:
            return
        now = holdings(held, self.settings.topics)
        log.info(
            "%s rebalanced (%s): %s",
            self.service,
            group_id,
            now,
            extra={"rebalanced": True, "group": group_id, "assignment": {group_id: now}},
        )

    async def _on_shutdown(self) -> None:
        if self._ready_announcement is not None:
            self._ready_announcement.cancel()
        # Before FastStream stops the Kafka consumers: stop fetching, drain, commit.
        await asyncio.gather(*(c.engine.stop() for c in self.consumers))

    async def _check_broker_recovery(self) -> None:
        if self._broker_outages is not None:
            self._broker_outages.check_recovery()

    async def _after_shutdown(self) -> None:
        # After the drain (on_shutdown) and FastStream's consumers: nothing publishes any more.
        await self.producer.stop()
        await self._broker_recovery_check.stop()
        await self.health.stop()
        self.tracer_provider.force_flush()
