"""Errors the CLI reports in one line, with an exit code, instead of a traceback."""

from services.runtime.uri_redaction import redact_uri_credentials


class CliError(Exception):
    exit_code = 1


class BrokerUnreachable(CliError):
    exit_code = 2

    def __init__(self, bootstrap_servers: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach Kafka at {redact_uri_credentials(bootstrap_servers)} "
            f"({type(cause).__name__}); "
            "is it running? `make infra-up` starts a local one, "
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS points elsewhere"
        )


class DatabaseUnreachable(CliError):
    exit_code = 2

    def __init__(self, uri: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach MongoDB at {redact_uri_credentials(uri)} ({type(cause).__name__}); "
            "is it running? "
            "`make infra-up` starts a local one, AGENT_RUNTIME_MONGODB_URI points elsewhere"
        )
