"""`python -m services.runtime.probe [URL]`: exit 0 when a health endpoint answers 2xx.

For the image's Docker HEALTHCHECK (the slim image has no curl). Without a URL it asks this
process's own settings for the health port: http://127.0.0.1:<AGENT_RUNTIME_HEALTH_PORT>/health/live.
"""

import sys
import urllib.error
import urllib.request

from services.runtime.settings import RuntimeSettings

_TIMEOUT_S = 3.0


def main(argv: list[str]) -> int:
    url = argv[0] if argv else f"http://127.0.0.1:{RuntimeSettings().health_port}/health/live"
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"probe: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
