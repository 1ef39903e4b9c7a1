"""Recovery time: p99 turn latency while one instance is killed -9 every 5 s, two per service.

Runs the same load twice on fresh pipelines: "before" is the runtime as it was (dynamic
membership, heartbeat 3 s; the session timeout the e2e suite always used, 10 s, shorter than
the old 30 s default, so the baseline is if anything flattered): every death and every restart
rebalances the whole group, eagerly. "after" is the runtime's defaults (static membership with
`group_instance_id` = the instance name, heartbeat 1 s, session timeout 20 s). Prints both side
by side, with the slowest turns next to the kills before them and the number of rebalances
(`make chaos` shows it), and holds "after" to the mechanism (no rebalance at all) and to the
target: p99 <= 10 s, no turn failed, refused or lost. A reference run without kills comes
first: restarts are CPU-bound, so on a machine that cannot keep up even without kills the
target is out of reach whatever the protocol, and the failure message shows it.
"""

from dataclasses import replace
from pathlib import Path

import pytest

from services.cli.stack import SERVICES, replicated
from tests.chaos.turn_latency import TABLE_HEADER, ChaosLoad, LatencyReport, measure_turn_latency
from tests.e2e.conftest import running_pipeline

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]

TARGET_P99_S = 10.0
BEFORE = {
    "AGENT_RUNTIME_STATIC_MEMBERSHIP": "false",
    "AGENT_RUNTIME_HEARTBEAT_INTERVAL_MS": "3000",
}
# The e2e suite's 10 s session timeout removed: the runtime's default applies.
AFTER: dict[str, str | None] = {"AGENT_RUNTIME_SESSION_TIMEOUT_MS": None}


@pytest.mark.timeout(1500)
async def test_p99_turn_latency_under_kill_9_every_5_s(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load = ChaosLoad()
    runs = (
        # The same load without kills: what the machine manages at the time (it is shared).
        ("no kills (reference)", "calm", AFTER, replace(load, kill_every_s=None)),
        ("before: dynamic membership", "before", BEFORE, load),
        ("after: static membership", "after", AFTER, load),
    )
    reports: list[LatencyReport] = []
    for label, name, env, run_load in runs:
        run = f"{name}-{unique_suffix}"
        async with running_pipeline(
            kafka_bootstrap_servers,
            mongodb_uri,
            mongo_database_name,
            run,
            tmp_path / run,
            services=replicated(SERVICES, 2),
            extra_env=dict(env),
        ) as pipeline:
            reports.append(await measure_turn_latency(pipeline, label, run, run_load))
    with capsys.disabled():
        print(
            f"\nturn latency, accepted -> completed; 2 instances per service, kill -9 + restart "
            f"of one instance every {load.kill_every_s:.0f} s for {load.duration_s:.0f} s, "
            f"{load.sessions} sessions x 1 turn / {load.interval_s:.0f} s",
            TABLE_HEADER,
            *(report.row() for report in reports),
            *(report.slowest_turns() for report in reports[1:]),
            sep="\n",
        )
    reference, before, after = reports
    # The mechanism, whatever the machine's load: no group rebalanced while instances died and
    # came back (before: each death and each restart did).
    assert after.rebalances == 0, after.row()
    assert before.rebalances > 0, before.row()
    assert after.failed + after.rejected == 0, after.outcomes
    # The target. On a machine too busy to keep up (see the reference row) restarts alone
    # take longer than this; the message says so.
    assert after.percentile(99) <= TARGET_P99_S, (
        f"{after.row()}; without kills at the same time: {reference.row()}"
    )
