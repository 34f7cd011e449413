"""The one generation pipeline every inference route runs, in the order it runs.

A route translates its API family's request into a `Turn` (`turn.py`); `Generation.open`
(`generation.py`) resolves the model once, off the event loop (`model.py`), and checks the
request; `Generation.events` then leases a runner, builds the prompt once (`prompt.py`,
images in `images.py`), plans how the answer is read and constrained (`reply.py`), and
yields typed `Piece`s and one `Finish` for the route to translate back. Embeddings take
the same model resolution (`embedding.py`).
"""
