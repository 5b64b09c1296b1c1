"""Schema-driven fuzzing of the ASGI application as production serves it: every operation of the
served schema, through the order fast path (``apps/orders/placement/fastpath.py``) in front of
Django, so ``POST /api/v1/orders`` is fuzzed on the paths that answer it in production — its event
loop (``eventloop.py``: refusals once the token and the listing are in this process's caches,
which the first examples fill) and its worker thread — not only through the WSGI stack
(``test_schema_fuzz.py``). No response may be a 5xx or break the schema.

The application runs its own threads (the fast path's pool, Django's sync thread), so the test
uses a real, committed database (``transaction=True``) and examples build on each other's state,
as requests do in production.

Examples per operation: ``FUZZ_EXAMPLES`` (default 30 here, 20 through WSGI: the fast path is the
production route of the hot endpoint); raise it for a deeper search.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from ..factories import make_listing

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asgi_schema(merchant, token):  # type: ignore[no-untyped-def]
    from livecommerce.asgi import application

    make_listing(merchant, quota=50, on_hand=100, limit=5)
    config = SchemathesisConfig.from_dict(
        {
            # Declared as the schema's security scheme (not a plain header), so the auth checks
            # know these credentials are real and probe without them and with invalid ones.
            "auth": {"openapi": {"MerchantToken": {"bearer": token}}},
            "generation": {"max-examples": int(os.environ.get("FUZZ_EXAMPLES", "24"))},  # see test_schema_fuzz.py
            "checks": {
                # As in test_schema_fuzz.py: leniency and database-dependent validity are not 5xx.
                "negative_data_rejection": {"enabled": False},
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )
    return schemathesis.openapi.from_asgi("/api/schema/", application, config=config)


schema = schemathesis.pytest.from_fixture("asgi_schema")


@schema.parametrize()
@settings(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_asgi_application_answers_every_generated_request_without_5xx_and_within_the_schema(case):  # type: ignore[no-untyped-def]
    case.call_and_validate()
