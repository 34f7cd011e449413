"""Embeddings: rank sentences by similarity to a query (vectors are unit length)."""

from __future__ import annotations

import os

from pasture.client import Client

MODEL = os.environ.get("PASTURE_EXAMPLE_MODEL", "smollm2:135m")

sentences = ["The cat sat on the mat.", "Stocks fell sharply today.", "A kitten was napping."]
client = Client()
vectors = client.embed(MODEL, input=sentences).embeddings
query = client.embed(MODEL, input="Where is the cat sleeping?").embeddings[0]
scores = [sum(q * v for q, v in zip(query, vector, strict=True)) for vector in vectors]
for score, sentence in sorted(zip(scores, sentences, strict=True), reverse=True):
    print(f"{score:.3f}  {sentence}")
