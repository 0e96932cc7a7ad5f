"""The audit's short response: the redacted start of an answer, read from a prefix of a large page
rather than by running the secret patterns over all of it, and never less safe than the whole."""

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.systems.audit import (
    REDACTED,
    RESPONSE_CHARS,
    redact_text,
    redacted_excerpt,
)

SECRET = "shpat_0123456789abcdef"
KEYS = ["token", "cart_token", "access_token", "client_secret", "note", "id", "password", "x"]
VALUES = st.one_of(
    st.text(alphabet="ab =&\"'", max_size=40),
    st.just(SECRET * 30),  # a value longer than the excerpt window's slack
    st.integers(),
)


def test_a_secret_cut_by_the_prefix_is_masked_as_the_whole_text_masks_it():
    # The first secret is masked (the text shrinks by ~3,000 chars), so the second one, which the
    # 4,096-char prefix cuts in two, would start inside the excerpt if it were not masked whole.
    body = orjson.dumps(
        [{"token": SECRET * 136}, {"token": SECRET * 100}, {"note": "n" * 5000}]
    ).decode()
    excerpt = redacted_excerpt(body)
    assert excerpt == redact_text(body)[:RESPONSE_CHARS]
    assert SECRET[:4] not in excerpt
    assert excerpt.startswith(f'[{{"token":"{REDACTED}"}},{{"token":"{REDACTED}"}},{{"note":"nnn')


def test_masking_that_shrinks_the_prefix_reads_further():
    body = orjson.dumps([{"token": SECRET * 400}, {"note": "after"}] * 20).decode()
    excerpt = redacted_excerpt(body)
    assert len(excerpt) == RESPONSE_CHARS
    assert excerpt == redact_text(body)[:RESPONSE_CHARS]
    assert SECRET[:4] not in excerpt


def test_a_form_value_cut_by_the_prefix_is_masked():
    body = "x" * 4090 + "&access_token=" + SECRET * 20 + "&b=1"
    assert redacted_excerpt(body, 4200) == redact_text(body)[:4200]
    assert SECRET[:4] not in redacted_excerpt(body, 4200)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=9000),
)
def test_the_excerpt_is_the_start_of_the_whole_texts_redaction(pairs, limit):
    body = json.dumps({"orders": [{key: value} for key, value in pairs]})
    assert redacted_excerpt(body, limit) == redact_text(body)[:limit]
