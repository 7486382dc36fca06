"""What an operator meets at the command line: the version and licence, one clear line instead
of a traceback, no migration chatter, the defaults in the help, `make run` on another port,
the orgs and members that --org takes, an --org that names no org, and `scripts/services`
leaving a running pair alone."""

import os
import re
import subprocess
import tempfile
from importlib.metadata import metadata
from pathlib import Path

import httpx

from crm import VERSION
from crm.migrations import head_revision
from tests.conftest import World
from tests.servers import CRM, crm_server, free_port

ROOT = Path(__file__).resolve().parents[1]
NO_ORG = "00000000-0000-4000-8000-000000000000"


def crm(
    database_url: str, *argv: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, with no terminal: standard input is a pipe (empty unless given)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env["CRM_DATABASE_URL"] = database_url
    return subprocess.run(
        [str(CRM), *argv],
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no controlling terminal either
    )


def test_the_version_is_the_package_s_and_the_licence_apache_2() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert declared and declared[1] == VERSION
    result = subprocess.run([str(CRM), "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, f"crm {VERSION}")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{VERSION}]" in changelog or "## [Unreleased]" in changelog
    licence = (ROOT / "LICENSE").read_text()
    assert licence.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in licence
    assert metadata("crm")["License-Expression"] == "Apache-2.0"
    assert "Apache License 2.0" in (ROOT / "README.md").read_text()


def test_the_start_up_line_names_the_version(database_url: str) -> None:
    from tests.servers import server_log

    with crm_server(database_url) as base_url:
        assert f"crm {VERSION}: database" in server_log(base_url)


def test_create_org_without_a_terminal_says_so_in_one_line(database_url: str) -> None:
    result = crm(database_url, "create-org", "--name", "Nobody", "--admin-email", "x@example.com")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "crm: no terminal to type the password at: use --password-stdin"
    ]
    listed = crm(database_url, "orgs")
    assert "Nobody" not in listed.stdout  # nothing was made


def test_migrate_says_what_it_applied_in_one_line_and_nothing_else(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    first = crm(url, "migrate")
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [
        f"crm: migrated the database at {url} from empty to {head_revision()}"
    ]
    again = crm(url, "migrate")
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines() == [
        f"crm: the database at {url} is at {head_revision()}: nothing to apply"
    ]
    # Other commands that migrate first print nothing of it.
    orgs = crm(url, "orgs")
    assert (orgs.returncode, orgs.stderr) == (0, "")
    assert "alembic" not in orgs.stdout


def test_serve_help_shows_the_defaults() -> None:
    result = subprocess.run(
        [str(CRM), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for default in ("(default: 127.0.0.1)", "(default: 8000)", "(default: 1)"):
        assert default in result.stdout, result.stdout


def test_make_run_takes_another_host_and_port() -> None:
    result = subprocess.run(
        ["make", "-n", "run", "HOST=127.0.0.2", "PORT=8001"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "crm serve --host 127.0.0.2 --port 8001" in result.stdout
    default = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "crm serve --host 127.0.0.1 --port 8000" in default.stdout


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


def test_orgs_and_members_list_what_org_takes(database_url: str, world: World) -> None:
    orgs = crm(database_url, "orgs")
    assert orgs.returncode == 0, orgs.stderr
    header, *listed = rows(orgs.stdout)
    assert header == ["ID", "NAME", "MEMBERS", "CREATED"]
    by_id = {row[0]: row for row in listed}
    assert by_id[world.admin.org_id][1:3] == ["Acme", "2"]
    assert by_id[world.other.org_id][1:3] == ["Globex", "1"]

    members = crm(database_url, "members", "--org", world.admin.org_id)
    assert members.returncode == 0, members.stderr
    header, *listed = rows(members.stdout)
    assert header == ["PROFILE", "EMAIL", "ROLE", "STATUS", "JOINED"]
    assert [row[:4] for row in listed] == [
        [world.admin.profile_id, world.admin.email, "admin", "active"],
        [world.user.profile_id, world.user.email, "user", "active"],
    ]
    assert world.other.email not in members.stdout  # another org's member is not listed

    for org, reason in ((NO_ORG, f"no org {NO_ORG}"), ("acme", "not an org id: acme")):
        missing = crm(database_url, "members", "--org", org)
        assert missing.returncode == 1
        assert missing.stderr.strip().splitlines() == [f"crm: --org: {reason}"]


def test_an_org_that_does_not_exist_is_named_so(
    database_url: str, world: World, tmp_path: Path
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("title\nA lead\n")
    imported = crm(database_url, "import", "--org", NO_ORG, "--as", world.admin.email, str(leads))
    assert imported.returncode == 2
    assert imported.stdout.strip() == f"crm import: --org: no org {NO_ORG}"
    exported = crm(database_url, "export", "leads", "--org", NO_ORG)
    assert exported.returncode == 2
    assert exported.stderr.strip() == f"crm export: --org: no org {NO_ORG}"
    # An org that exists, with someone who is not its member, is still named for that.
    stranger = crm(
        database_url, "import", "--org", world.admin.org_id, "--as", world.other.email, str(leads)
    )
    assert stranger.returncode == 2
    assert "is no active member" in stranger.stdout


def test_services_start_leaves_a_running_pair_alone() -> None:
    # A pair of its own, in /tmp itself (the cluster's owner must reach it), on free ports:
    # the shared pair is never touched.
    directory = tempfile.mkdtemp(prefix="crm-services-")
    env = {
        **os.environ,
        "CRM_SERVICES_DIR": directory,
        "CRM_PG_PORT": str(free_port()),
        "CRM_REDIS_PORT": str(free_port()),
    }

    def services(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "services"), action],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    started = services("start")
    assert started.returncode == 0, started.stderr
    try:
        postmaster = (Path(directory) / "pg" / "postmaster.pid").read_text().split()[0]
        again = services("start")
        assert again.returncode == 0, again.stderr
        assert again.stdout == started.stdout  # the same URLs
        assert "reusing" in again.stderr
        # The same cluster, still running: nothing was stopped.
        assert (Path(directory) / "pg" / "postmaster.pid").read_text().split()[0] == postmaster
        urls = dict(line.split("=", 1) for line in again.stdout.split())
        assert urls["CRM_TEST_DATABASE_URL"].endswith(f":{env['CRM_PG_PORT']}/crm")
        ping = subprocess.run(
            ["redis-cli", "-p", env["CRM_REDIS_PORT"], "ping"], capture_output=True, text=True
        )
        assert ping.stdout.strip() == "PONG"
    finally:
        assert services("stop").returncode == 0
    assert not Path(directory).exists()


def test_docs_load_nothing_from_another_host(database_url: str) -> None:
    with crm_server(database_url) as base_url, httpx.Client(base_url=base_url) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert "://" not in page.text  # no other host, no CDN
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets += re.findall(r"url: '([^']+)'", page.text)
        assert {asset.rsplit(".", 1)[-1] for asset in assets} >= {"js", "css", "json"}
        for asset in assets:
            response = http.get(asset)
            assert response.status_code == 200, asset
            assert response.content, asset
            assert "ratelimit-limit" not in response.headers, asset  # never limited, as /docs
