"""The pipeline with a slow model (`benchmarks/pipeline.py --model-latency S --sessions N`).

Issue 15's third target: with a model that takes about a second per call and 500+ sessions,
at least 25 times the throughput of one turn in flight per partition. With one turn in flight
per partition, the pipeline could complete at most `partitions / call time` turns per
second (12 partitions and 1 s: 12 turns/s). The key-ordered consumer keeps one turn in flight
per *session*, so many sessions can be waiting for the model at once, up to what the CPU and
the database allow.

The model is the offline provider, paced: its pause between deltas
(`AGENT_RUNTIME_OFFLINE_CHUNK_DELAY_S`) is set so that the benchmark's answers take `S` seconds.
The bound is the issue's: partitions / S. The LLM hop (`llm.requested` → `llm.completed`, from
the records' CreateTime) is printed beside it: the model's S plus llm-invocation's own time
(the claim, the deltas, the kept result) and its queueing.
"""

import statistics
from collections.abc import Mapping, Sequence
from typing import Final

from benchmarks.perf.driver import QUESTIONS
from benchmarks.perf.hops import HOPS, HopTimes, hop_row, percentile
from contracts.agents import AgentType
from services.llm_invocation.providers.offline_provider import offline_answer, text_chunks

DELAY_ENV: Final = "AGENT_RUNTIME_OFFLINE_CHUNK_DELAY_S"
LLM_HOP: Final = HOPS[2]  # "LLM requested → LLM completed"


def chunk_delay_s(call_s: float) -> float:
    """The pause before each delta so that an answer to the benchmark's questions takes `call_s`."""
    chunks = statistics.mean(len(text_chunks(offline_answer(AgentType.ASK, q))) for q in QUESTIONS)
    return call_s / chunks


def report_slow_model(
    turns_per_s: Sequence[float],
    hops: Mapping[str, HopTimes],
    *,
    model_s: float,
    partitions: int,
    sessions: int,
    cpu_ms: Mapping[str, float],
    records: Mapping[str, float],
) -> None:
    bound = partitions / model_s
    print(
        f"\n## A slow model ({model_s:g} s per call): {sessions} sessions with one turn in flight"
        f" each; one turn in flight per partition would allow {partitions} / {model_s:g} s ="
        f" {bound:,.1f} turns/s"
    )
    print(
        "| repetition | turns/s | vs one in flight per partition | LLM hop p50 / p99 ms | turn p50 / p99 ms |"
    )
    print("|---|---|---|---|---|")
    for index, rate in enumerate(turns_per_s):
        times = hops.get(f"saturation {index + 1}") or HopTimes()
        calls, total = times.hops[LLM_HOP], times.total
        print(
            f"| {index + 1} | {rate:,.1f} | **{rate / bound:.1f}x** | {_p50_p99(calls)} "
            f"| {_p50_p99(total)} |"
        )
    print("\nPer hop (p50 / p99 ms): " + " | ".join(HOPS) + " | total")
    for label, times in hops.items():
        print(f"- {label}: {hop_row(times)}")
    own = sum(ms for name, ms in cpu_ms.items() if not name.endswith("(shared)"))
    cells = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(cpu_ms.items()))
    print(f"\nCPU ms per turn (median): own processes {own:.2f} ({cells})")
    topics = ", ".join(f"{topic} {n:.1f}" for topic, n in sorted(records.items()) if n > 0)
    print(f"Records per turn (median): {sum(records.values()):.1f} ({topics})")


def _p50_p99(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):,.0f} / {percentile(values, 0.99):,.0f}"
