"""`crm import`: the upload's importer from the command line, against CRM_DATABASE_URL."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from crm import importcli
from crm.cli import command_line
from tests.conftest import World


@dataclass
class Outcome:
    returncode: int
    stdout: str


async def run(capsys: pytest.CaptureFixture[str], database_url: str, *args: str) -> Outcome:
    """`crm import ARGS` in a thread of this process (a process of its own would spend
    seconds importing the app)."""
    parsed = command_line().parse_args(["import", *args])
    code = await asyncio.to_thread(importcli.main, database_url, parsed)
    return Outcome(code, capsys.readouterr().out)


async def test_import_command_reports_and_writes_like_the_upload(
    api: httpx.AsyncClient,
    world: World,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "First Name,Email\nAnn,ann@example.com\nBob,not-an-email\nAnn,ANN@example.com\n"
    )
    who = ["--org", world.admin.org_id, "--as", world.admin.email.upper()]

    dry = await run(capsys, database_url, *who, "--entity", "contacts", "--dry-run", str(path))
    assert dry.returncode == 1, dry.stdout
    assert "1 created, 1 updated, 1 errors (dry run: nothing was written)" in dry.stdout
    assert "row 3: email:" in dry.stdout
    listed = await api.get("/api/contacts/", headers=world.admin.headers)
    assert listed.json()["count"] == 0

    done = await run(capsys, database_url, *who, "--entity", "contacts", str(path))
    assert done.returncode == 1, done.stdout
    assert done.stdout.startswith("1 created, 1 updated, 1 errors\n")
    listed = await api.get("/api/contacts/", headers=world.admin.headers)
    assert [contact["email"] for contact in listed.json()["results"]] == ["ANN@example.com"]
    theirs = await api.get("/api/contacts/", headers=world.other.headers)
    assert theirs.json()["count"] == 0

    # Again: a row without an email that the first import created is skipped, not copied.
    keyless = tmp_path / "keyless.csv"
    keyless.write_text("First Name\nCid\n")
    await run(capsys, database_url, *who, "--entity", "contacts", str(keyless))
    again = await run(capsys, database_url, *who, "--entity", "contacts", str(keyless))
    assert again.stdout.startswith("0 created, 0 updated, 0 errors, 1 skipped (created before)\n")
    listed = await api.get("/api/contacts/", headers=world.admin.headers)
    assert listed.json()["count"] == 2

    # Leads by default: the contacts file lacks their required column; nothing is written.
    refused = await run(capsys, database_url, *who, str(path))
    assert refused.returncode == 1
    assert "refused, nothing was written: title: This column is required." in refused.stdout
    listed = await api.get("/api/leads/", headers=world.admin.headers)
    assert listed.json()["count"] == 0


async def test_broken_quoting_refuses_the_whole_file(
    api: httpx.AsyncClient,
    world: World,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        "title,email,description\n"
        "Good,g@x.test,fine\n"
        'Broken "quote,b@x.test,"unterminated\n'
        "Another,a@x.test,x\n"
    )
    who = ["--org", world.admin.org_id, "--as", world.admin.email]
    refused = await run(capsys, database_url, *who, str(path))
    assert refused.returncode == 1, refused.stdout
    assert "refused, nothing was written: file: The file is not valid CSV" in refused.stdout
    assert "line 3" in refused.stdout
    listed = await api.get("/api/leads/", headers=world.admin.headers)
    assert listed.json()["count"] == 0
