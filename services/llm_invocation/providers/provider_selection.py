"""Which provider runs, and the invoker around it, from settings."""

from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.offline_provider import OfflineProvider
from services.llm_invocation.providers.openai_provider import (
    OpenAICompatibleProvider,
    OpenAIProviderConfig,
)
from services.llm_invocation.providers.provider import LLMProvider
from services.llm_invocation.resilience.circuit_breakers import ProviderCircuitBreakers
from services.llm_invocation.resilience.rate_limits import ProviderRateLimiter, RateLimitConfig
from services.llm_invocation.resilience.retry_policy import RetryPolicy
from services.llm_invocation.settings import DEFAULT_OPENAI_BASE_URL, LLMInvocationSettings
from services.runtime.retry import Backoff


def build_provider(settings: LLMInvocationSettings) -> LLMProvider:
    if settings.provider_kind == "offline":
        return OfflineProvider(chunk_delay_s=settings.offline_chunk_delay_s)
    assert settings.llm_model is not None  # checked by the settings validator
    return OpenAICompatibleProvider(
        OpenAIProviderConfig(
            base_url=settings.llm_base_url or DEFAULT_OPENAI_BASE_URL,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            connect_timeout_s=settings.llm_connect_timeout_s,
            read_timeout_s=settings.llm_read_timeout_s,
            write_timeout_s=settings.llm_write_timeout_s,
            pool_timeout_s=settings.llm_pool_timeout_s,
            max_connections=settings.llm_max_connections,
            connection_pools=settings.llm_connection_pools,
            include_usage=settings.llm_include_usage,
        )
    )


def build_invoker(settings: LLMInvocationSettings, provider: LLMProvider | None = None) -> Invoker:
    return Invoker(
        provider or build_provider(settings),
        breakers=ProviderCircuitBreakers(
            threshold=settings.llm_circuit_threshold, ttl_s=settings.llm_circuit_ttl_s
        ),
        limiter=ProviderRateLimiter(
            RateLimitConfig(
                requests_per_minute=settings.llm_requests_per_minute,
                tokens_per_minute=settings.llm_tokens_per_minute,
                burst_seconds=settings.llm_rate_burst_s,
            )
        ),
        retry=RetryPolicy(
            max_attempts=settings.llm_max_attempts,
            backoff=Backoff(
                initial_s=settings.llm_retry_initial_backoff_s,
                max_s=settings.llm_retry_max_backoff_s,
            ),
            max_retry_after_s=settings.llm_max_retry_after_s,
        ),
        deadline_s=settings.llm_invocation_deadline_s,
    )
