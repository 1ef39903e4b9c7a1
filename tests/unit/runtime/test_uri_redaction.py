import logging
import sys

import pytest

from services.runtime.telemetry.log_context import CredentialRedactingFormatter, JsonFormatter
from services.runtime.uri_redaction import redact_uri_credentials

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mongodb://admin:S3cret@db:27017/x", "mongodb://admin:***@db:27017/x"),
        (
            "cannot reach MongoDB at mongodb+srv://app:p%40ss@cluster0.example.net/?tls=true (x)",
            "cannot reach MongoDB at mongodb+srv://app:***@cluster0.example.net/?tls=true (x)",
        ),
        ("mongodb://admin:p@ss@db:27017", "mongodb://admin:***@db:27017"),
        (
            "a https://u:one@a.example and http://v:two@b.example:8080/path",
            "a https://u:***@a.example and http://v:***@b.example:8080/path",
        ),
        (
            "mongodb://h1:27017,h2:27017/?replicaSet=rs",
            "mongodb://h1:27017,h2:27017/?replicaSet=rs",
        ),
        ("mongodb://reader@db:27017", "mongodb://reader@db:27017"),
        ("no uri here: a:b@c", "no uri here: a:b@c"),
    ],
)
def test_only_the_password_is_hidden(text: str, shown: str) -> None:
    assert redact_uri_credentials(text) == shown


def test_every_log_line_has_uri_passwords_hidden() -> None:
    formatter = CredentialRedactingFormatter(JsonFormatter("svc"))
    try:
        raise ConnectionError("no route to mongodb://admin:S3cret@db:27017")
    except ConnectionError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "tried %s",
            ("https://u:Pw0rd@proxy/v1",),
            sys.exc_info(),
        )
    line = formatter.format(record)
    assert "S3cret" not in line
    assert "Pw0rd" not in line
    assert "https://u:***@proxy/v1" in line
    assert "mongodb://admin:***@db:27017" in line
