"""The docs against the code. docs/quickstart.md runs as a newcomer runs it: its ```sh blocks
in order, with bash and curl, against a real `crm serve` (the base URL the page defines is the
only thing replaced), and then the state it promises is checked through HTTP: the lead
converted, the CSV's rows created, none of it visible to another org. The entity reference
(docs/entities.md) names exactly the fields, filters and ordering fields of each entity's spec."""

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from crm.app import ENTITIES
from crm.records.query import ALWAYS_ORDERABLE
from crm.records.schemas import schemas_of
from tests.conftest import PASSWORD, TEST_REDIS_URL, unique_email
from tests.openapi_check import sync_hooks
from tests.servers import crm_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves, as the page says
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(page: Path, info: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(page.read_text()) if m["info"].strip() == info]


def run_quickstart(base_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The page's commands in one bash, stopping at the first that fails: `set -e` and
    pipefail for the shell, and curl's `--fail-with-body` (from a .curlrc, so that the
    commands are the page's own) for an HTTP error answer."""
    runnable = blocks(DOCS / "quickstart.md", "sh")
    script = "\n".join(
        f"echo '--- block {number}' >&2\n{block}" for number, block in enumerate(runnable, 1)
    )
    # Every command reaches the server through the $CRM the page defines once.
    assert script.count(BASE_URL) == 1 and f"CRM={BASE_URL}\n" in script
    shutil.copytree(DOCS / "examples", workdir / "docs" / "examples")
    (workdir / ".curlrc").write_text("fail-with-body\n")
    env = {**os.environ, "CURL_HOME": str(workdir)}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(BASE_URL, base_url)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def get(http: httpx.Client, path: str, token: str, **params: Any) -> Any:
    response = http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_quickstart_runs_as_written(database_url: str, tmp_path: Path) -> None:
    # The block a reader runs first, in a terminal of its own: `make run`, serving BASE_URL.
    assert blocks(DOCS / "quickstart.md", "sh server") == ["make run\n"]
    run = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert "crm serve --host 127.0.0.1 --port 8000" in run.stdout

    settings = {"redis_url": TEST_REDIS_URL} if TEST_REDIS_URL else {}
    with crm_server(database_url, **settings) as base_url:
        result = run_quickstart(base_url, tmp_path)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"

        # The session the page registered, as it saved it.
        token = json.loads((tmp_path / "session.json").read_text())["access_token"]
        with httpx.Client(base_url=base_url, event_hooks=sync_hooks()) as http:
            # The lead of the page, converted: linked to the account, contact and opportunity.
            converted = get(http, "/api/leads/", token, status="converted")["results"]
            assert [lead["email"] for lead in converted] == ["jane@acme.com"]
            lead = converted[0]
            account = get(http, f"/api/accounts/{lead['converted_account']}/", token)
            assert account["name"] == "Acme Corp"
            contact = get(http, f"/api/contacts/{lead['converted_contact']}/", token)
            assert (contact["email"], contact["account"]) == ("jane@acme.com", account["id"])
            opportunity = get(http, f"/api/opportunities/{lead['converted_opportunity']}/", token)
            assert (opportunity["name"], opportunity["amount"]) == ("Acme — Annual 2026", 24000)

            # Every row of the example file is a lead, once, as the file says.
            with (DOCS / "examples" / "leads.csv").open(newline="") as file:
                rows = list(csv.DictReader(file))
            assert rows
            leads = get(http, "/api/leads/", token, page_size=100)["results"]
            by_email = {lead["email"]: lead for lead in leads}
            assert len(leads) == len(rows) + 1
            for row in rows:
                uploaded = by_email[row["Email"]]
                assert uploaded["title"] == row["Title"]
                assert uploaded["tags"] == [tag.strip() for tag in row["Tags"].split(";")]
                industry = {"industry": row["cf_industry"]} if row["cf_industry"] else {}
                assert uploaded["custom_fields"] == industry

            # Another org sees none of it.
            other = http.post(
                "/api/auth/register/",
                json={"org_name": "Globex", "email": unique_email(), "password": PASSWORD},
            )
            assert other.status_code == 201, other.text
            other_token = other.json()["access_token"]
            assert get(http, "/api/leads/", other_token)["count"] == 0
            hidden = http.get(
                f"/api/leads/{lead['id']}/", headers={"Authorization": f"Bearer {other_token}"}
            )
            assert hidden.status_code == 404, hidden.text


def reference_section(entity: str) -> str:
    """The part of docs/entities.md about one entity: from its heading to the next."""
    text = (DOCS / "entities.md").read_text()
    match = re.search(rf"^## {entity}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/entities.md has no section '## {entity}'"
    return match[1]


def listed(section: str, label: str) -> set[str]:
    """The `names` in the paragraph of a section that starts with `label`."""
    paragraph = next(p for p in section.split("\n\n") if p.startswith(label))
    return set(re.findall(r"`([a-z_]+)`", paragraph))


def test_the_entity_reference_names_every_field_filter_and_ordering() -> None:
    for spec in ENTITIES:
        section = reference_section(spec.name)
        # The first cell of each row of the field table.
        documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
        assert documented == set(schemas_of(spec).record.model_fields), spec.name
        assert listed(section, "Filters:") == set(spec.filters), spec.name
        assert listed(section, "Search:") == set(spec.search), spec.name
        ordering = set(spec.ordering) | set(ALWAYS_ORDERABLE)
        assert listed(section, "Ordering:") == ordering, spec.name
