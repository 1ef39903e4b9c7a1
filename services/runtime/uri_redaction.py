"""Credentials out of every message that names a URI: `mongodb://admin:S3cret@db:27017` is
shown as `mongodb://admin:***@db:27017`.

The one rule for the CLI's one-line errors, the services' log lines (every line goes through
it, see `telemetry.log_context`) and the provider's repr. The user stays visible — an operator
needs to see which account was tried — the password never is.
"""

import re
from typing import Final

# scheme://user:password@ — the password runs to the last `@` of the authority, so an
# unescaped `@` inside it is still hidden whole.
_USERINFO: Final = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?P<password>[^/?#\s]*)@"
)
MASK: Final = "***"


def redact_uri_credentials(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` in it replaced by ***."""
    if "://" not in text:
        return text
    return _USERINFO.sub(lambda match: f"{match['head']}:{MASK}@", text)
