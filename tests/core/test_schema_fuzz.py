"""Schema-driven fuzzing: schemathesis against the served OpenAPI schema, in process.

Every operation of ``/api/schema/`` is called with generated (valid and invalid) input by a
token of a merchant that owns a product, a SKU, a show and an open listing; then the stateful
phase chains operations through the links schemathesis infers (create -> read/patch/actions).
No response may be a 5xx or break the schema.

Examples per operation: ``FUZZ_EXAMPLES`` (default 20, which keeps CI's two suites inside their
time budget; raise it for a deeper search, e.g. ``FUZZ_EXAMPLES=200 ./test tests/core/test_schema_fuzz.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from apps.core.redis import get_client

from ..factories import make_listing

# Examples per operation (derandomized: the same every run). Raise FUZZ_EXAMPLES for a deeper run;
# the defaults keep the whole CI (the suite twice) under its 45 minutes.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "16"))
STATEFUL_SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "60")),
    stateful_step_count=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def _keep_test_connection() -> Iterator[None]:
    """Serve requests on the test's own database connection, as Django's test client does.

    A plain WSGIHandler closes "old" connections at the start and end of each request, which
    would close the connection holding the test transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, merchant, token, _keep_test_connection):  # type: ignore[no-untyped-def]
    make_listing(merchant, quota=50, on_hand=100, limit=5)
    config = SchemathesisConfig.from_dict(
        {
            # Declared as the schema's security scheme (not a plain header), so the auth checks
            # know these credentials are real and probe without them and with invalid ones. The
            # scheme is HTTP bearer: schemathesis sends "Bearer <token>", as Swagger UI does.
            "auth": {"openapi": {"MerchantToken": {"bearer": token}}},
            "generation": {"max-examples": MAX_EXAMPLES},
            "checks": {
                # The API is lenient where it is harmless (DRF coerces 0 -> "0", "5" -> 5, ignores a bad
                # page_size): "schema-violating request accepted" would demand a stricter API, not a safer one.
                "negative_data_rejection": {"enabled": False},
                # A schema cannot say "this id must exist" or "quota within stock": such requests are
                # schema-valid and rightly answered 400 (tests/catalog assert those answers one by one).
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )
    return schemathesis.openapi.from_wsgi(
        "/api/schema/", WSGIHandler(), config=config, headers={"Accept": "application/json"}
    )


@contextmanager
def isolated() -> Iterator[None]:
    """Undo one example's writes (database and Redis), so every example starts from the same
    state and a failure replays (and shrinks) the same way."""
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)
        get_client().flushdb()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_without_5xx_and_within_the_schema(case):  # type: ignore[no-untyped-def]
    with isolated():
        case.call_and_validate()


def test_stateful_sequences_through_links_find_no_5xx_and_no_schema_violation(api_schema):  # type: ignore[no-untyped-def]
    class Scenarios(api_schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self._undo = isolated()
            self._undo.__enter__()

        def teardown(self) -> None:
            self._undo.__exit__(None, None, None)

    assert api_schema.statistic.transitions.total > 0, "no links inferred: the stateful phase would test nothing"
    Scenarios.run(settings=STATEFUL_SETTINGS)
