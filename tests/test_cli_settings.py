"""A setting `crm` cannot use ends the command with one line on stderr and a non-zero exit,
before anything is created."""

import asyncio
import io
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm import cli
from crm.config import get_settings
from crm.migrations import head_revision, upgrade
from tests.apps import client_of, fresh_app
from tests.conftest import PASSWORD, unique_email
from tests.servers import CRM, free_port

# Nothing listens on a port just found free.
UNREACHABLE = f"postgresql://crm:s3cret@127.0.0.1:{free_port()}/crm"
MISSING_DIRECTORY = "no/such/dir"
# The real command, each run started at once (each costs an interpreter): (command, URL).
RUNS = {
    "migrate-missing-directory": ("migrate", f"sqlite:///{MISSING_DIRECTORY}/crm.sqlite3"),
    "serve-missing-directory": ("serve", f"sqlite:///{MISSING_DIRECTORY}/crm.sqlite3"),
    "serve-unreachable-postgresql": ("serve", UNREACHABLE),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str]]:
    """Each run's working directory (no .env there), exit code and stderr."""
    started = {}
    for name, (command, url) in RUNS.items():
        cwd = tmp_path_factory.mktemp(name)
        env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
        env["CRM_DATABASE_URL"] = url
        arguments = ["--port", str(free_port())] if command == "serve" else []
        process = subprocess.Popen(
            [str(CRM), command, *arguments],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (cwd, process)
    results = {}
    for name, (cwd, process) in started.items():
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # serving when it should have stopped
            process.kill()
            _, stderr = process.communicate()
        results[name] = (cwd, process.returncode, stderr)
    return results


class Terminal(io.StringIO):
    """Standard input as a terminal, where the password prompt may ask."""

    def isatty(self) -> bool:
        return True


def assert_one_clear_line(code: int, stderr: str, *words: str) -> None:
    assert code != 0, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("crm: ")
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("name", ["migrate-missing-directory", "serve-missing-directory"])
def test_sqlite_file_in_a_missing_directory(
    runs: dict[str, tuple[Path, int, str]], name: str
) -> None:
    cwd, code, stderr = runs[name]
    assert_one_clear_line(code, stderr, "CRM_DATABASE_URL", MISSING_DIRECTORY, "does not exist")
    assert not (cwd / "no").exists()


def test_unreachable_postgresql(runs: dict[str, tuple[Path, int, str]]) -> None:
    _, code, stderr = runs["serve-unreachable-postgresql"]
    assert_one_clear_line(code, stderr, "cannot use the database at postgresql://crm:***@127.0.0.1")
    assert "s3cret" not in stderr


# The same checks in process, for the other bad values.


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for key in os.environ:
        if key.startswith("CRM_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("command", "settings", "words"),
    [
        ("serve", {"DATABASE_URL": "mysql://x"}, ("CRM_DATABASE_URL", "unsupported database")),
        ("migrate", {"DATABASE_URL": "mysql://x"}, ("CRM_DATABASE_URL", "unsupported database")),
        ("migrate", {"DATABASE_URL": "nonsense"}, ("CRM_DATABASE_URL", "not a database URL")),
        (
            "migrate",
            {"DATABASE_URL": "postgresql://crm:s3cret@db:port/crm"},
            ("CRM_DATABASE_URL", "not a database URL"),
        ),
        (
            "migrate",
            {"DATABASE_URL": "sqlite:///crm.sqlite3", "PUBLIC_URL": "ftp://x"},
            ("CRM_PUBLIC_URL", "http:// or https://"),
        ),
        ("serve", {"RATE_LIMIT": "lots"}, ("CRM_RATE_LIMIT", "100/10seconds")),
        ("serve", {"RATE_LIMIT": "0/minute"}, ("CRM_RATE_LIMIT", "or off")),
        ("serve", {"AUTH_FAILURE_LIMIT": "lots"}, ("CRM_AUTH_FAILURE_LIMIT", "1000/minute")),
        ("serve", {"LOG_FORMAT": "xml"}, ("CRM_LOG_FORMAT", "text")),
        ("serve", {"LOG_LEVEL": "loud"}, ("CRM_LOG_LEVEL", "INFO")),
        ("serve", {"METRICS": "lots"}, ("CRM_METRICS", "Must be true or false.")),
    ],
)
def test_bad_setting(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    settings: dict[str, str],
    words: tuple[str, ...],
) -> None:
    for key, value in settings.items():
        environment.setenv(f"CRM_{key}", value)
    with pytest.raises(SystemExit) as stopped:
        cli.main([command])
    stderr = capsys.readouterr().err
    assert_one_clear_line(int(stopped.value.code or 0), stderr, *words)
    assert "s3cret" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_check_passes_on_a_database_at_head(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    environment.setenv("CRM_DATABASE_URL", database_url)
    cli.main(["check"])  # returns: exit 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("crm: settings valid")
    assert head_revision() in out[0]


def test_check_changes_nothing_and_names_what_is_wrong(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    database = tmp_path / "crm.sqlite3"
    environment.setenv("CRM_DATABASE_URL", f"sqlite:///{database}")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["check"])
    assert_one_clear_line(int(stopped.value.code or 0), capsys.readouterr().err, "does not exist")
    assert not database.exists()  # a check makes no database

    upgrade(f"sqlite:///{database}")
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0004'")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["check"])
    err = capsys.readouterr().err
    assert_one_clear_line(int(stopped.value.code or 0), err, "at migration 0004", "crm migrate")
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]


def test_create_org_and_create_user_make_members_who_can_log_in(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    environment.setenv("CRM_DATABASE_URL", database_url)
    admin, member = unique_email("boss"), unique_email("peter")

    def crm(*argv: str) -> tuple[int, str, str]:
        environment.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
        with pytest.raises(SystemExit) as stopped:
            cli.main([*argv, "--password-stdin"])
        out, err = capsys.readouterr()
        return int(stopped.value.code or 0), out, err

    code, out, _ = crm("create-org", "--name", "Initech", "--admin-email", admin)
    assert code == 0 and out.startswith("crm: created org ")
    org_id = out.split()[3]
    code, out, _ = crm("create-user", "--org", org_id, "--email", member, "--role", "user")
    assert code == 0 and member in out
    code, _, err = crm("create-user", "--org", org_id, "--email", member, "--role", "user")
    assert_one_clear_line(code, err, "email", "already a member")
    code, _, err = crm("create-org", "--name", "Again", "--admin-email", admin)
    assert_one_clear_line(code, err, "email", "already exists")

    async def log_in() -> None:
        async with client_of(fresh_app(database_url)) as client:
            for email, role in ((admin, "admin"), (member, "user")):
                login = await client.post(
                    "/api/auth/login/", json={"email": email, "password": PASSWORD}
                )
                assert login.status_code == 200, login.text
                assert (login.json()["org"]["id"], login.json()["profile"]["role"]) == (
                    org_id,
                    role,
                )

    asyncio.run(log_in())

    # The admin of another org invites that member: no password is asked (standard input is
    # left unread), the user keeps its own, and joins by accepting the invitation.
    code, out, _ = crm("create-org", "--name", "Globex", "--admin-email", unique_email("hank"))
    other_org = out.split()[3]
    environment.setattr("sys.stdin", io.StringIO("never-read\n"))
    with pytest.raises(SystemExit) as stopped:
        cli.main(["create-user", "--org", other_org, "--email", member.upper(), "--role", "admin"])
    out = capsys.readouterr().out
    assert (stopped.value.code or 0, out.split()[:3]) == (0, ["crm:", "created", "invitation"])
    assert sys.stdin.read() == "never-read\n"

    async def accept() -> None:
        async with client_of(fresh_app(database_url)) as client:
            login = await client.post(
                "/api/auth/login/", json={"email": member, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text  # still one org to log in to
            assert login.json()["org"]["id"] == org_id
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            invited = await client.get("/api/auth/invitations/", headers=headers)
            [invitation] = invited.json()["results"]
            assert invitation["org"]["id"] == other_org, invitation
            accepted = await client.post(
                f"/api/auth/invitations/{invitation['id']}/accept/", headers=headers
            )
            assert accepted.status_code == 200, accepted.text
            again = await client.post(
                "/api/auth/login/",
                json={"email": member, "password": PASSWORD, "org_id": other_org},
            )
            assert (again.status_code, again.json()["profile"]["role"]) == (200, "admin")

    asyncio.run(accept())


def test_reset_password_sets_a_new_one_and_stops_every_token_of_the_user(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    environment.setenv("CRM_DATABASE_URL", database_url)
    admin = unique_email("forgetful")

    def crm(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            environment.setattr("sys.stdin", io.StringIO(stdin))
            argv = (*argv, "--password-stdin")
        with pytest.raises(SystemExit) as stopped:
            cli.main(list(argv))
        out, err = capsys.readouterr()
        return int(stopped.value.code or 0), out, err

    code, out, _ = crm("create-org", "--name", "Forgetful", "--admin-email", admin, stdin=PASSWORD)
    assert code == 0, out
    other = unique_email("bystander")
    assert crm("create-org", "--name", "Bystander", "--admin-email", other, stdin=PASSWORD)[0] == 0

    async def tokens_of(email: str, password: str) -> list[str]:
        async with client_of(fresh_app(database_url)) as client:
            login = await client.post(
                "/api/auth/login/", json={"email": email, "password": password}
            )
            assert login.status_code == 200, login.text
            access = login.json()["access_token"]
            personal = await client.post(
                "/api/auth/tokens/",
                json={"name": "ci"},
                headers={"Authorization": f"Bearer {access}"},
            )
            return [access, personal.json()["token"]]

    async def statuses(tokens: list[str], email: str, passwords: list[str]) -> list[int]:
        async with client_of(fresh_app(database_url)) as client:
            answers = [
                await client.get("/api/auth/me/", headers={"Authorization": f"Bearer {t}"})
                for t in tokens
            ]
            answers += [
                await client.post("/api/auth/login/", json={"email": email, "password": p})
                for p in passwords
            ]
            return [answer.status_code for answer in answers]

    tokens = asyncio.run(tokens_of(admin, PASSWORD))
    bystander = asyncio.run(tokens_of(other, PASSWORD))
    code, out, _ = crm("reset-password", "--email", admin.upper(), stdin="brand-new-password\n")
    assert code == 0 and admin in out
    assert asyncio.run(statuses(tokens, admin, [PASSWORD, "brand-new-password"])) == [
        401,
        401,
        401,
        200,
    ]
    assert asyncio.run(statuses(bystander, other, [PASSWORD])) == [200, 200, 200]

    # At a prompt, typed twice; refused when the two differ, or for no such user, or too short.
    typed = iter(["typed-at-a-prompt", "typed-at-a-prompt", "one-password", "another-one"])
    environment.setattr("getpass.getpass", lambda prompt="": next(typed))
    environment.setattr("sys.stdin", Terminal())
    assert crm("reset-password", "--email", admin)[0] == 0
    code, _, err = crm("reset-password", "--email", admin)
    assert_one_clear_line(code, err, "differ")
    code, _, err = crm("reset-password", "--email", unique_email("nobody"), stdin="long-enough\n")
    assert_one_clear_line(code, err, "--email", "no user")
    code, _, err = crm("reset-password", "--email", admin, stdin="short\n")
    assert_one_clear_line(code, err, "new_password", "8")
    assert asyncio.run(statuses([], admin, ["typed-at-a-prompt"])) == [200]
