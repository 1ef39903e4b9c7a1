"""Errors the CLI reports in one line, with an exit code, instead of a traceback.

The exit codes are part of the CLI's interface (docs/operations.md#exit-codes): a script tells
"the broker is down" from "no such session" from "some replays failed" without parsing text.
"""

from enum import IntEnum

from services.runtime.uri_redaction import redact_uri_credentials


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    """Anything else that went wrong (a refused replay, a refused Kafka login, …)."""
    USAGE = 2
    """A wrong option, argument or setting: what click (and argparse) exit with."""
    UNREACHABLE = 3
    """Kafka or MongoDB did not answer."""
    NOT_FOUND = 4
    """The session, dead letter, consumer group or topic asked for does not exist."""
    PARTIAL_FAILURE = 5
    """A batch (`dlq replay`) where some items failed and others did not."""
    LAG_ABOVE_LIMIT = 6
    """`groups lag --max-lag N`: some partition's lag is above N."""


class CliError(Exception):
    exit_code: ExitCode = ExitCode.FAILURE


class UsageProblem(CliError):
    exit_code = ExitCode.USAGE


class NotFound(CliError):
    exit_code = ExitCode.NOT_FOUND


class NotAuthorized(CliError):
    """Kafka's ACLs do not let this principal at a topic (exit 1, as a refused login)."""


class BrokerUnreachable(CliError):
    exit_code = ExitCode.UNREACHABLE

    def __init__(self, bootstrap_servers: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach Kafka at {redact_uri_credentials(bootstrap_servers)} "
            f"({type(cause).__name__}); "
            "is it running? `make infra-up` starts a local one, "
            "-b/--bootstrap-server or AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS points elsewhere"
        )


class DatabaseUnreachable(CliError):
    exit_code = ExitCode.UNREACHABLE

    def __init__(self, uri: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach MongoDB at {redact_uri_credentials(uri)} ({type(cause).__name__}); "
            "is it running? "
            "`make infra-up` starts a local one, AGENT_RUNTIME_MONGODB_URI points elsewhere"
        )
