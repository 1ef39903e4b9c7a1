"""LLM prices per model, read from a TOML file, for the estimated cost metric.

The file (default: llm_prices.toml beside this module; an operator's copy through
`AGENT_RUNTIME_LLM_PRICES_PATH`) lists USD per million input and output tokens by the model
name the provider reports. It is validated at start: a bad file stops audit with the file's
name and the field, like a bad agent catalogue stops orchestration.
"""

import tomllib
from importlib import resources
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.runtime.settings_errors import ConfigFileError
from services.runtime.toml_text import parse_toml

DEFAULT_PRICES_RESOURCE: Final = "llm_prices.toml"
_PER_MILLION: Final = 1_000_000


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A price is a finite TOML number: `inf` would make every cost (and its rate) infinite,
    # and a quoted "0.15" or `true` read as a number is a typo the file's reader should see.
    input_per_million_usd: float = Field(ge=0, allow_inf_nan=False, strict=True)
    output_per_million_usd: float = Field(ge=0, allow_inf_nan=False, strict=True)


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPrice] = Field(default_factory=dict)


class PriceFileError(ConfigFileError):
    """The price file cannot be read or does not have the documented shape."""


class LLMPrices:
    def __init__(self, prices: dict[str, ModelPrice]) -> None:
        self._prices = dict(prices)

    def cost_usd(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated cost of one call; None when the model has no price."""
        price = self._prices.get(model)
        if price is None:
            return None
        return (
            input_tokens * price.input_per_million_usd
            + output_tokens * price.output_per_million_usd
        ) / _PER_MILLION

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)


def load_prices(path: Path | None = None) -> LLMPrices:
    """The operator's file at `path`, else the packaged default."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_PRICES_RESOURCE).read_text("utf-8")
        return parse_prices(text, DEFAULT_PRICES_RESOURCE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"LLM prices file {path}: cannot be read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; a traceback would not name the file
        raise PriceFileError(f"LLM prices file {path}: not UTF-8 text (byte {exc.start})") from exc
    return parse_prices(text, str(path))


def parse_prices(text: str, source: str) -> LLMPrices:
    try:
        parsed = _PriceFile.model_validate(parse_toml(text))
    except tomllib.TOMLDecodeError as exc:
        raise PriceFileError(f"LLM prices file {source}: not valid TOML ({exc})") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PriceFileError(f"LLM prices file {source}: {problems}") from exc
    return LLMPrices(parsed.models)
