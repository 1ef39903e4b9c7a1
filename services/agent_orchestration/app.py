"""Wiring of agent-orchestration: `python -m services.agent_orchestration` or
`faststream run --factory services.agent_orchestration.app:create_app`.

    session-events ─┐                                   ┌─▶ llm-requests (LLMRequested)
                    ├─▶ OrchestrationHandler (decide) ──┤
    llm-results ────┘                                   └─▶ turns (SwitchAgentForTurn,
                                                                  CompleteTurn, FailTurn)

Stateless: no database. One consumer in its own group reads both input topics; the shared
runtime orders each session's records, commits past finished ones, retries broker outages and
dead-letters records that do not decode. The agent catalogue is loaded and validated here,
before anything is consumed, so a bad catalogue stops the service at start-up.
"""

from dataclasses import dataclass

from faststream import FastStream

from contracts.topics import Service, TopicCatalogue
from services.agent_orchestration.catalogue import AgentCatalogue
from services.agent_orchestration.catalogue_file import load_catalogue
from services.agent_orchestration.handler import INPUTS, OrchestrationHandler, concerns
from services.agent_orchestration.settings import OrchestrationSettings
from services.runtime import Record, ServiceRuntime
from services.runtime.settings_errors import built, load_settings


@dataclass(frozen=True, slots=True)
class OrchestrationService:
    settings: OrchestrationSettings
    catalogue: AgentCatalogue
    topics: TopicCatalogue
    runtime: ServiceRuntime
    handler: OrchestrationHandler


def build(
    settings: OrchestrationSettings | None = None, *, configure_logs: bool = True
) -> OrchestrationService:
    settings = settings or OrchestrationSettings()
    catalogue = load_catalogue(settings.agent_catalogue_path)  # CatalogueError: refuse to start
    runtime = ServiceRuntime(
        Service.AGENT_ORCHESTRATION.value, settings, configure_logs=configure_logs
    )
    topics = settings.topics
    handler = OrchestrationHandler(
        topics=topics,
        catalogue=catalogue,
        limits=settings.prompt_limits(),
        publish=runtime.publish,
    )

    @runtime.consumer(
        *topics.names(INPUTS), group_id=settings.orchestration_consumer_group, accepts=concerns
    )
    async def orchestrate(record: Record) -> None:
        """TurnStarted / AgentSwitched → LLMRequested; LLMCompleted / LLMFailed → turn command."""
        await handler(record)

    return OrchestrationService(settings, catalogue, topics, runtime, handler)


def create_app() -> FastStream:
    """The app, built when called (`faststream run --factory`): importing this module (tests,
    the CLI) builds nothing and reads no environment.
    A bad setting or configuration file exits 2 with one line naming it, as under `python -m`
    (FastStream's CLI would print a traceback and exit 1)."""
    settings = load_settings(OrchestrationSettings, "agent-orchestration")
    return built("agent-orchestration", lambda: build(settings)).runtime.app
