"""Schemathesis at length: every operation of both dialects against `crm serve` on SQLite
and on PostgreSQL, all four phases (examples, coverage, fuzzing, stateful), with the checks
of tests/schemathesis_run.py. The figures (operations, cases, failures) are written into
bench/RESULTS.md, replacing the previous ones; the exit status is 1 if anything failed.

    make fuzz                  # FUZZ_EXAMPLES=50 cases per operation and phase by default

PostgreSQL: CRM_TEST_DATABASE_URL's server when set (a database `crm_fuzz` is made there),
otherwise a throwaway cluster started by scripts/services on other ports."""

import asyncio
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.import_bench import SERVICES, machine, postgresql, recreate, write_section  # noqa: E402
from tests.schemathesis_run import ALL_PHASES, CHECKS, Outcome, run  # noqa: E402
from tests.servers import crm_server  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- fuzz -->", "<!-- /fuzz -->"


def fuzz(database_url: str) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp, crm_server(database_url, rate_limit="off") as url:
        outcome = run(url, Path(tmp), max_examples=EXAMPLES, phases=ALL_PHASES)
    print(outcome.output[-3000:], flush=True)
    return outcome


def write_results(outcomes: dict[str, Outcome]) -> None:
    command = "make fuzz" + (f" (FUZZ_EXAMPLES={EXAMPLES})" if EXAMPLES != 50 else "")
    version = next(iter(outcomes.values())).report["schemathesis_version"]
    lines = [
        BEGIN,
        "## Schema fuzzing: schemathesis against crm serve (SQLite and PostgreSQL)",
        "",
        f"Reproduce: `{command}` (written by it, {datetime.date.today().isoformat()}).",
        "",
        f"Machine: {machine()}. Schemathesis {version}, phases {ALL_PHASES.replace(',', ', ')}, "
        f"at most {EXAMPLES} cases per operation in the fuzzing phase, one worker; checks "
        f"{', '.join(f'`{check}`' for check in CHECKS)}. Every case runs as the admin of an "
        "org, registered anew whenever a case logged it out or deactivated it (a 401). "
        "The times are those of a machine shared with other work: no benchmark.",
        "",
        "| database | operations tested | cases | failures | re-authentications | seed | time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, outcome in outcomes.items():
        report = outcome.report
        reauth = (report.get("auth") or {}).get("reauth_count", "")
        lines.append(
            f"| {name} | {outcome.operations} of {report['operations']['total']} | "
            f"{outcome.cases:,} | {outcome.failures} | {reauth} | {report['seed']} | "
            f"{report['running_time']:.0f} s |"
        )
    lines += [
        "",
        "`make test` runs the same against the test database with 10 cases per operation, a "
        "fixed seed and without the coverage phase (tests/test_schemathesis.py). After "
        "this script, `make fuzz` runs tests/test_hostile_input.py with hypothesis' `fuzz` "
        "profile (200 examples a test, 10 in `make test`).",
        "",
        END,
    ]
    write_section(lines)


def main() -> int:
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory() as tmp:
        outcomes["SQLite"] = fuzz(f"sqlite:///{tmp}/fuzz.sqlite3")
    server, services = postgresql()
    try:
        outcomes["PostgreSQL"] = fuzz(asyncio.run(recreate(server, "crm_fuzz")))
    finally:
        if services is not None:
            subprocess.run([*SERVICES, "stop"], env=services, check=False)
    write_results(outcomes)
    for name, outcome in outcomes.items():
        print(
            f"{name}: {outcome.operations} operations, {outcome.cases} cases, "
            f"{outcome.failures} failures"
        )
    return 1 if any(outcome.failures for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
