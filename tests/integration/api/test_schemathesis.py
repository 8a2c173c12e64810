"""Property-based tests from the OpenAPI schema: whatever the input, no server error (5xx) and every
response documented by the schema. Bounded to a few examples per operation (well under a minute).

Schemathesis' pytest plugin does not run under pytest 9 yet, so the operations are driven with
hypothesis directly.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

FUZZ = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _fuzz(app, headers_list, checks) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case):
            for headers in headers_list:
                response = case.call(headers=headers)
                case.validate_response(response, checks=checks)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    return failures


def test_every_operation_as_admin(app, admin):
    failures = _fuzz(
        app,
        [admin.headers],
        [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    assert not failures, "\n\n".join(failures)


def test_every_operation_as_user_and_without_key(app, alice):
    failures = _fuzz(app, [alice.headers, {}], [not_a_server_error, status_code_conformance])
    assert not failures, "\n\n".join(failures)
