"""Schemathesis (its command line, `st run`) against a real `crm serve`: every operation of
both dialects, as the admin of an org (tests/schemathesis_hooks.py), with the checks that no
answer is a 5xx and that every answer's status, content type and body are the documented
ones. The test suite runs it small (tests/test_schemathesis.py); `make fuzz` at length
(bench/fuzz.py)."""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import CRM

ROOT = Path(__file__).resolve().parent.parent
ST = CRM.with_name("st")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
ALL_PHASES = "examples,coverage,fuzzing,stateful"


@dataclass(frozen=True)
class Outcome:
    report: dict[str, Any]  # schemathesis' JSON report
    output: str  # what it printed

    @property
    def operations(self) -> int:
        return int(self.report["operations"]["tested"])

    @property
    def cases(self) -> int:
        return int(self.report["test_cases"]["generated"])

    @property
    def failures(self) -> int:
        return int(self.report["test_cases"]["unique_failures"]) + len(self.report["errors"])


def run(
    base_url: str,
    workdir: Path,
    *,
    max_examples: int,
    phases: str,
    seed: int | None = None,
    timeout: float = 7200,
) -> Outcome:
    """Runs `st run` to its end (or `timeout` seconds: a hung server fails, never blocks)."""
    report = workdir / "schemathesis.json"
    command = [
        str(ST),
        "run",
        f"{base_url}/openapi.json",
        *("--checks", ",".join(CHECKS)),
        *("--phases", phases),
        *("--max-examples", str(max_examples)),
        *("--workers", "1"),
        *("--request-timeout", "60"),
        *("--report", "json", "--report-json-path", str(report)),
        "--no-color",
        # A seed for a repeatable run; without, a random one and no example database.
        *(
            ("--seed", str(seed), "--generation-deterministic")
            if seed is not None
            else ("--generation-database", "none")
        ),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"}
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    output = completed.stdout + completed.stderr
    assert report.exists(), output
    return Outcome(json.loads(report.read_text()), output)
