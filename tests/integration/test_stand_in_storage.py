"""The local MongoDB stand-in's storage (deploy/local/MongoLauncher.java, deploy/README.md).

Documents are stored as BSON and unique-index keys compared by value (not H2's Java
serialization): every type the services write survives a kill -9 and a restart unchanged,
unique indexes still refuse duplicates after it, and a data file of the earlier layout is
refused at start with what to do, not misread.

Each test starts a stand-in of its own, as `make infra-up` does, on a free port and a state
directory of its own (tests/chaos/dedicated_mongo.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from tests.chaos.dedicated_mongo import DedicatedMongo
from tests.e2e.conftest import free_ports

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
Document = dict[str, Any]


def _mongo_libs() -> Path:
    spec = importlib.util.spec_from_file_location(
        "local_infra_settings", REPO_ROOT / "deploy" / "local" / "settings.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    libs: Path = module.load_settings().mongo_libs
    return libs


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "mongo-infra"


@pytest.fixture
def stand_in(mongodb_uri: str, state_dir: Path) -> Iterator[DedicatedMongo]:
    """Not started yet; `mongodb_uri` makes sure the jars were resolved (`make infra-up`)."""
    (port,) = free_ports(1)
    mongo = DedicatedMongo(state_dir, port)
    try:
        yield mongo
    finally:
        mongo.stop()


def _client(mongo: DedicatedMongo) -> MongoClient[Document]:
    return MongoClient(mongo.uri)


def _every_type() -> Document:
    return {
        "_id": "session-1",
        "version": 1,
        "text": "naïve 🚀 “quoted”",
        "int32": 7,
        "int64": 2**40,
        "double": 1.5,
        "decimal": Decimal128("12.34"),
        "flag": True,
        "nothing": None,
        "when": datetime(2026, 11, 29, 12, 30, 15, 123000, tzinfo=UTC),
        "raw": b"\x00\x01\xff",
        "oid": ObjectId("6b0c8990f2cd1fe59fc96cac"),
        "nested": {"list": [1, "two", {"three": [3.0, None]}], "empty": {}, "empties": []},
        "outbox": [{"key": b"session-1", "headers": [["ce_id", b"event-1"]]}],
    }


def test_documents_survive_a_kill_and_a_restart_with_their_types_and_unique_indexes(
    stand_in: DedicatedMongo,
) -> None:
    stand_in.start()
    with _client(stand_in) as client:
        database = client["storage"]
        sessions, messages = database["sessions"], database["messages"]
        sessions.create_index([("_id", ASCENDING), ("version", ASCENDING)], unique=True)
        messages.create_index([("session_id", ASCENDING), ("seq", ASCENDING)], unique=True)
        sessions.insert_one(_every_type())
        messages.insert_many([{"session_id": "session-1", "seq": seq} for seq in range(1, 51)])
        after = sessions.find_one_and_update(
            {"_id": "session-1", "version": 1},
            {"$set": {"version": 2}, "$inc": {"int32": 1}},
            return_document=ReturnDocument.AFTER,
        )
        assert after is not None
        written = sessions.find_one({"_id": "session-1"})
    assert written is not None
    assert written == {**_every_type(), "version": 2, "int32": 8, "when": written["when"]}
    assert written["when"] == datetime(2026, 11, 29, 12, 30, 15, 123000)  # naive UTC, as ever

    stand_in.kill()  # kill -9: only what was committed before each acknowledgement is there
    stand_in.start()
    with _client(stand_in) as client:
        database = client["storage"]
        sessions, messages = database["sessions"], database["messages"]
        assert sessions.find_one({"_id": "session-1"}) == written
        assert [m["seq"] for m in messages.find({"session_id": "session-1"}).sort("seq")] == list(
            range(1, 51)
        )
        with pytest.raises(DuplicateKeyError):
            messages.insert_one({"session_id": "session-1", "seq": 25})
        # The compare-and-set's filter is served by the (_id, version) index: the old version
        # no longer matches, the current one does.
        assert sessions.find_one({"_id": "session-1", "version": 1}) is None
        moved = sessions.update_one({"_id": "session-1", "version": 2}, {"$set": {"version": 3}})
        assert moved.modified_count == 1
        messages.insert_one({"session_id": "session-1", "seq": 51})
        assert messages.count_documents({}) == 51


def test_a_data_file_of_the_earlier_layout_is_refused_with_what_to_do(
    stand_in: DedicatedMongo, state_dir: Path, tmp_path: Path
) -> None:
    data_file = state_dir / "mongo" / "data.mv"  # where infra.py keeps it
    data_file.parent.mkdir(parents=True)
    # What the launcher before this layout left: H2's default map types (Java serialization).
    writer = tmp_path / "EarlierLayout.java"
    writer.write_text(
        "import org.h2.mvstore.MVStore;\n"
        "public class EarlierLayout {\n"
        "    public static void main(String[] args) {\n"
        "        MVStore store = MVStore.open(args[0]);\n"
        '        store.openMap("databases.app.sessions").put("s-1", "a document");\n'
        "        store.close();\n"
        "    }\n"
        "}\n"
    )
    libs = _mongo_libs()
    subprocess.run(
        ["java", "-cp", f"{libs}/*", str(writer), str(data_file)], check=True, timeout=120
    )

    with pytest.raises(RuntimeError) as refused:
        stand_in.start()  # what `make infra-up` runs
    assert "written by an earlier launcher" in str(refused.value)
    assert "make infra-reset" in str(refused.value)
