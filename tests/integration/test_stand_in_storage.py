"""The local MongoDB stand-in's storage (deploy/local/MongoLauncher.java, deploy/README.md).

Documents are stored as BSON and unique-index keys compared by value (not H2's Java
serialization): every type the services write survives a kill -9 and a restart unchanged,
unique indexes still refuse duplicates after it, and a data file of the earlier layout is
refused at start with what to do, not misread.

Each test starts its own launcher on a free port and a data file of its own.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = REPO_ROOT / "deploy" / "local" / "MongoLauncher.java"
START_TIMEOUT_S = 90.0
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
def libs(mongodb_uri: str) -> Path:
    """The stand-in's jars, resolved by `make infra-up` (the `mongodb_uri` fixture runs it)."""
    found = _mongo_libs()
    if not any(found.glob("mongo-java-server-core-*.jar")):
        pytest.fail(f"no mongo-java-server jars in {found}: run `make infra-up` first")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StandIn:
    def __init__(self, libs: Path, data_file: Path, log: Path) -> None:
        self.port = _free_port()
        self._command = [
            "java",
            "-Xmx256m",
            "-cp",
            f"{libs}/*",
            str(LAUNCHER),
            "127.0.0.1",
            str(self.port),
            str(data_file),
        ]
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> subprocess.Popen[bytes]:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        return self.process

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the launcher exited ({self.process.returncode}):\n{self.log()}")
            try:
                with self.client(serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return
            except Exception:  # not listening yet
                time.sleep(0.2)
        pytest.fail(f"the launcher did not answer within {START_TIMEOUT_S:.0f}s:\n{self.log()}")

    def client(self, **options: Any) -> MongoClient[Document]:
        return MongoClient(self.uri, **options)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self._log.read_text(errors="replace")[-4000:]


@pytest.fixture
def stand_in(libs: Path, tmp_path: Path) -> Iterator[StandIn]:
    server = StandIn(libs, tmp_path / "data.mv", tmp_path / "server.log")
    try:
        yield server
    finally:
        server.kill()


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
    stand_in: StandIn,
) -> None:
    stand_in.start()
    stand_in.wait_ready()
    with stand_in.client() as client:
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
    stand_in.wait_ready()
    with stand_in.client() as client:
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
    libs: Path, tmp_path: Path
) -> None:
    data_file = tmp_path / "data.mv"
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
    subprocess.run(
        ["java", "-cp", f"{libs}/*", str(writer), str(data_file)], check=True, timeout=120
    )
    server = StandIn(libs, data_file, tmp_path / "server.log")
    process = server.start()
    try:
        code = process.wait(timeout=START_TIMEOUT_S)
    finally:
        server.kill()
    assert code == 3, server.log()
    assert "written by an earlier launcher" in server.log()
    assert "make infra-reset" in server.log()
