"""The API section of README.md shows real answers: the examples block is what the API answers
today (`make readme` writes it), like openapi.json is what the code documents."""

from __future__ import annotations

from scripts.api_examples import README, render


def test_the_readme_api_examples_are_the_real_answers() -> None:
    text = README.read_text()
    assert text == render(text), "README.md's API examples are stale: run `make readme` and commit it"
