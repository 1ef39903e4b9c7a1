"""How the gateway names a caller in a command's `requested_by`, and how to recognise it.

`api-key:<id>`, where the id is the first 12 hex digits of the key's SHA-256 (what the
gateway's key list stores), names a key without being one. Text of the form `api-key: …`
is otherwise what the secret scrubber redacts, so whoever scrubs `requested_by` (audit) keeps
exactly this form and scrubs anything else.
"""

import re
from typing import Final

API_KEY_ACTOR: Final = re.compile(r"api-key:[0-9a-f]{12}")


def is_api_key_actor(text: str) -> bool:
    return API_KEY_ACTOR.fullmatch(text) is not None
