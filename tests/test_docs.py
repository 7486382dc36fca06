"""The docs against the code. docs/quickstart.md runs as a newcomer runs it: its ```sh blocks
in order, with bash and curl, against a real `crm serve` (the base URL the page defines is the
only thing replaced), and then the state it promises is checked through HTTP: the lead
converted, the CSV's rows created, none of it visible to another org. The entity reference
(docs/entities.md) names exactly the fields, filters and ordering fields of each entity's spec."""

import csv
import itertools
import json
import os
import re
import shutil
import subprocess
from argparse import _SubParsersAction
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from crm.app import ENTITIES
from crm.cli import command_line
from crm.config import Settings
from crm.records.query import ALWAYS_ORDERABLE
from crm.records.schemas import schemas_of
from tests.conftest import PASSWORD, TEST_REDIS_URL, World, count_statements, unique_email
from tests.openapi_check import sync_hooks
from tests.servers import crm_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
QUICKSTART = DOCS / "quickstart.md"
BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves, as the page says
MARK = "--- output of block "  # on standard output before each block's own
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(page: Path, info: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(page.read_text()) if m["info"].strip() == info]


def run_quickstart(base_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The page's commands in one bash, stopping at the first that fails: `set -e` and
    pipefail for the shell, and curl's `--fail-with-body` (from a .curlrc, so that the
    commands are the page's own) for an HTTP error answer."""
    runnable = blocks(DOCS / "quickstart.md", "sh")
    script = "\n".join(
        f"echo '--- block {number}' >&2\necho '{MARK}{number}'\n{block}"
        for number, block in enumerate(runnable, 1)
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


def check_shown_outputs(stdout: str) -> None:
    """Each ```json block after a ```sh block shows, line by line, what its commands print:
    the same keys at every level (a level with `…` may leave some out), whatever the values."""
    outputs = {
        int(number): text.strip().splitlines()
        for number, text in re.findall(rf"^{MARK}(\d+)\n(.*?)(?=^{MARK}|\Z)", stdout, re.M | re.S)
    }
    fences = [(m["info"].strip(), m["body"]) for m in FENCE.finditer(QUICKSTART.read_text())]
    number, checked = 0, 0
    for (info, _), (next_info, shown) in itertools.pairwise(fences):
        number += info == "sh"
        if info != "sh" or next_info != "json":
            continue
        printed = [line for line in outputs[number] if line.startswith(("{", "["))]
        lines = shown.strip().splitlines()
        assert len(printed) == len(lines), (number, printed)
        for line, actual in zip(lines, printed, strict=True):
            same_keys(elided(line), json.loads(actual), f"block {number}")
            checked += 1
    assert checked >= 5


ELIDED = "\u2026"


def elided(line: str) -> Any:
    """A shown JSON line with `…` for what is left out: a bare `…` in an object stands for
    keys left out, in a list for items; inside a string for part of the value."""
    out, stack, in_string = [], [], False
    for index, char in enumerate(line):
        if in_string:
            in_string = not (char == '"' and line[index - 1] != "\\")
            out.append(char)
        elif char == '"':
            in_string = True
            out.append(char)
        elif char == ELIDED:
            out.append(f'"{ELIDED}": null' if stack and stack[-1] == "{" else f'"{ELIDED}"')
        else:
            if char in "{[":
                stack.append(char)
            elif char in "}]":
                stack.pop()
            out.append(char)
    return json.loads("".join(out))


def same_keys(shown: Any, actual: Any, where: str) -> None:
    if isinstance(shown, dict):
        assert isinstance(actual, dict), (where, actual)
        keys = set(shown) - {ELIDED}
        if ELIDED in shown:
            assert keys <= set(actual), (where, keys - set(actual))
        else:
            assert keys == set(actual), (where, keys ^ set(actual))
        for key in keys:
            same_keys(shown[key], actual[key], f"{where}: {key}")
    elif isinstance(shown, list):
        items = [item for item in shown if item != ELIDED]
        if items and isinstance(items[0], dict):
            assert actual, (where, actual)
            same_keys(items[0], actual[0], f"{where}[0]")


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
        check_shown_outputs(result.stdout)

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


def test_every_crm_command_is_documented_with_its_flags() -> None:
    """docs/commands.md's table of `crm` names exactly the commands of the parser, each with
    exactly its flags."""
    documented = {}
    for cell in re.findall(r"^\| `(crm [^`]+)` \|", (DOCS / "commands.md").read_text(), re.M):
        documented[cell.split()[1]] = set(re.findall(r"--[a-z][a-z-]*", cell))
    subcommands = next(
        action for action in command_line()._actions if isinstance(action, _SubParsersAction)
    )
    actual = {
        name: {
            flag
            for action in parser._actions
            for flag in action.option_strings
            if flag.startswith("--") and flag != "--help"
        }
        for name, parser in subcommands.choices.items()
    }
    assert documented == actual


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    settings = {f"CRM_{name.upper()}" for name in Settings.model_fields}
    documented = set(re.findall(r"CRM_[A-Z_]+[A-Z]", (DOCS / "settings.md").read_text()))
    assert documented == settings


NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4}


async def test_a_list_costs_the_statements_the_page_says(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    said = re.search(r"A page costs (\w+) SQL statements? whatever its size", lists_page())
    assert said, "docs/lists.md no longer says what a page costs"
    for size in (1, 30):
        for _ in range(size):
            created = await api.post(
                "/api/leads/", json={"title": "Costed"}, headers=world.admin.headers
            )
            assert created.status_code == 201, created.text
        with count_statements(app) as counter:
            listed = await api.get(
                "/api/leads/", params={"page_size": 100}, headers=world.admin.headers
            )
        assert listed.status_code == 200
        # The bearer token's lookup, which the page says is one more, then the list.
        assert counter.count == NUMBERS[said[1]] + 1, counter.statements
    hidden = await api.get("/api/leads/", headers=world.other.headers)
    assert hidden.json()["count"] == 0


def lists_page() -> str:
    return " ".join((DOCS / "lists.md").read_text().split())  # one line: sentences wrap
