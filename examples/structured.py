"""Structured output: the answer is JSON that validates against a pydantic model's schema."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from pasture.client import Client

MODEL = os.environ.get("PASTURE_EXAMPLE_MODEL", "smollm2:135m")


class Country(BaseModel):
    # Bounds keep a small model from rambling inside a string until it runs out of tokens.
    name: str = Field(max_length=40)
    capital: str = Field(max_length=40)
    population_millions: int = Field(ge=0, le=2000)


reply = Client().chat(MODEL, messages=[{"role": "user", "content": "Tell me about Canada."}],
                      format=Country.model_json_schema(),
                      options={"temperature": 0, "num_predict": 200})
country = Country.model_validate_json(reply.message.content)
print(country)
