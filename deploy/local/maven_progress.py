"""Maven's own progress, one line per downloaded jar, for a first `make infra-up`.

Resolving Kafka's classpath the first time downloads about a hundred artifacts and takes a
minute; Maven's batch output says "Downloaded from central: <url> (<size> at <rate>)" for
each. The poms and metadata around them are left out: a jar is a step a reader can count.
"""

from __future__ import annotations

import re

_DOWNLOADED = re.compile(
    r"Downloaded from [^:]+: (?P<url>\S+\.jar) \((?P<size>[^)]*?)(?: at [^)]*)?\)"
)


def progress_line(maven_line: str) -> str | None:
    """`  downloaded kafka-clients-4.3.1.jar (18 MB)` for a jar download, else None."""
    match = _DOWNLOADED.search(maven_line)
    if match is None:
        return None
    return f"  downloaded {match['url'].rsplit('/', 1)[-1]} ({match['size'].strip()})"
