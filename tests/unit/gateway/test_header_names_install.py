"""The gateway's consumers read a header name that is not UTF-8, as the services' do."""

import aiokafka.consumer.fetcher as fetcher
import pytest
from aiokafka.record.memory_records import MemoryRecords

from services.gateway.api_keys import hash_api_key
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.runtime import header_names
from services.runtime.header_names import LenientMemoryRecords

pytestmark = pytest.mark.unit


def test_building_the_gateway_installs_the_lenient_batch_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its event feed and stream replays are plain aiokafka consumers, outside ServiceRuntime:
    # one such record failed the feed's fetch and lost the decisions drained with it.
    monkeypatch.setattr(fetcher, "MemoryRecords", MemoryRecords)
    monkeypatch.setattr(header_names, "_installed", False)
    build_app(GatewaySettings(_env_file=None, gateway_api_keys={hash_api_key("k"): "acme"}))
    assert fetcher.MemoryRecords is LenientMemoryRecords
