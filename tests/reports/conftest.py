"""Fixtures of the report tests."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture
def history(merchant):  # type: ignore[no-untyped-def]
    call_command("generate_history", "--merchant", merchant.slug, "--orders", "9000", "--shows", "36", "--seed",
                 "11", "--weeks", "16", "-v", "0")  # fmt: skip
    return merchant
