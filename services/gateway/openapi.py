"""The committed OpenAPI document: `python -m services.gateway.openapi` writes
contracts/openapi.json from the app itself; a unit test fails while the two differ."""

import json
import sys
from pathlib import Path
from typing import Any

from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "contracts" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    # Settings do not change the document; fixed ones keep the environment out of it.
    app = build_app(GatewaySettings(_env_file=None, gateway_api_keys={}))
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    OPENAPI_PATH.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
