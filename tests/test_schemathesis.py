"""Schemathesis against a real server on the test database, small enough for every run:
every operation of both dialects, no 5xx, every answer as documented. `make fuzz` runs it at
length, with the coverage phase (boundary values of every schema) too."""

from pathlib import Path

from tests.openapi_check import document
from tests.schemathesis_run import run
from tests.servers import crm_server

EXAMPLES = 10
PHASES = "examples,fuzzing,stateful"
SEED = 12


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    database_url: str, tmp_path: Path
) -> None:
    with crm_server(database_url, rate_limit="off") as base_url:
        outcome = run(
            base_url, tmp_path, max_examples=EXAMPLES, phases=PHASES, seed=SEED, timeout=900
        )
    report = outcome.report
    where = outcome.output[-6000:]
    assert report["failures"] == [] and report["errors"] == [], where
    assert report["exit_code"] == 0, where
    operations = sum(len(item) for item in document()["paths"].values())
    assert report["operations"] == {
        "total": operations,
        "selected": operations,
        "tested": operations,
        "errored": 0,
        "skipped": 0,
        "skip_reasons": [],
    }, where
    # Each operation got cases of its own, beyond its documented examples.
    assert outcome.cases >= 3 * operations, where
