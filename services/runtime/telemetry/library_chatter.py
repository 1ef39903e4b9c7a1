"""Client libraries' lifecycle chatter, logged at INFO by them, written at DEBUG by us.

aiokafka logs every group join, sync and assignment at INFO (an assignment is one line holding
every `TopicPartition(...)` of the member: hundreds in a terminal at start), FastStream its
app's starting/started lines and the same assignment again, uvicorn its startup steps. Each
service says instead, once, that it is ready and what it holds (service_runtime.py); with
`AGENT_RUNTIME_LOG_LEVEL=DEBUG` the libraries' own lines are written again, marked DEBUG.
Warnings and errors of these libraries are never touched, but for one: FastStream's reminder at
every subscriber start that it creates no topics, which the runtime turns off on purpose.
"""

import logging
from typing import Final

# Loggers whose INFO lines are lifecycle chatter. FastStream logs through the logger the runtime
# hands it (`agent_runtime.faststream.<service>`, service_runtime.py).
CHATTY_LOGGERS: Final = ("aiokafka", "agent_runtime.faststream.", "uvicorn.error")


# Warnings that say nothing an operator can act on: FastStream's topic creation is off by the
# runtime's choice (service_runtime.py), which checks the topics itself and names missing ones.
CHATTY_WARNINGS: Final = frozenset({"Auto create topics is disabled. Make sure the topics exist."})


def is_chatter(record: logging.LogRecord) -> bool:
    chatty_level = record.levelno == logging.INFO or (
        record.levelno == logging.WARNING and record.getMessage() in CHATTY_WARNINGS
    )
    return chatty_level and any(
        record.name == name or record.name.startswith(name if name.endswith(".") else name + ".")
        for name in CHATTY_LOGGERS
    )


class LibraryChatterFilter(logging.Filter):
    """Demotes the chatter to DEBUG; drops it unless the root logger writes DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_chatter(record):
            return True
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return logging.getLogger().isEnabledFor(logging.DEBUG)
