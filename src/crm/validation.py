"""What every request body and parameter is held to, whatever the endpoint."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# Neither PostgreSQL text nor JSONB can hold a NUL character: a value with one is refused.
NUL_REASON = "May not contain a NUL character."


def contains_nul(value: Any) -> bool:
    """Whether a JSON value (or a query value) holds a NUL character anywhere."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    return False


class InputModel(BaseModel):
    """A request body: a field it does not have is refused, and so is a NUL character."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def refuse_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError(NUL_REASON)
        return value
