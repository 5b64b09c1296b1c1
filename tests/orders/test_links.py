"""The status link's token is exactly Django's ``TimestampSigner`` signature, built faster."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.core import signing
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apps.orders.placement import links


def _django_token(public_id: str) -> str:
    return signing.TimestampSigner(salt=links.STATUS_SALT).sign(public_id).split(":", 1)[1]


@hsettings(max_examples=50, deadline=None)
# Public ids are "o" and hex; any text without the separator signs the same way.
@given(
    public_id=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=":"), min_size=1, max_size=40
    )
)
def test_the_token_is_the_one_djangos_signer_makes(public_id: str) -> None:
    with mock.patch("time.time", return_value=1_796_000_000 + len(public_id)):  # one second for both signers
        assert links.status_token(public_id) == _django_token(public_id)
    assert links.check_status_token(public_id, links.status_token(public_id))


def test_a_new_secret_key_makes_new_tokens_and_old_ones_fail(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(time, "time", lambda: 1_796_000_000)
    token = links.status_token("oabc")
    settings.SECRET_KEY = "another secret key, long enough to be taken for a real one " * 2
    assert links.status_token("oabc") == _django_token("oabc") != token
    assert not links.check_status_token("oabc", token)
    assert links.check_status_token("oabc", links.status_token("oabc"))


@pytest.mark.parametrize("token", ["", "x", "abc:def", "1234567:" + "A" * 43])
def test_a_forged_token_is_refused(token: str) -> None:
    assert not links.check_status_token("oabc", token)
