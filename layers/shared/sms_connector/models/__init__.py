"""The HTTP API's models (pydantic): what a client may send and what it gets back.

One module per part of the API, so that each API function imports and builds only the models
of its own routes (`common` holds what they all share: the strict base and the error bodies).
Every model is built on first use (`defer_build`), not at import.
"""
