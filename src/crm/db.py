"""Engine, declarative Base and the request-scoped session: the one place that commits."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends
from sqlalchemy import MetaData, String, collate, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute
from sqlalchemy.sql.functions import FunctionElement
from starlette.requests import Request

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


URL_FORMS = "use sqlite:///path/to/file or postgresql://user:password@host:port/database"


class DatabaseUrlError(ValueError):
    """A database URL the app cannot use; the message says why, in one line."""


def check_database_url(url: str) -> URL:
    """The parsed URL, or DatabaseUrlError: only SQLite and PostgreSQL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not echoed: it may hold a password.
        raise DatabaseUrlError(f"not a database URL; {URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend in ("sqlite", "postgresql", "postgres"):
        return parsed
    raise DatabaseUrlError(f"unsupported database {parsed.drivername!r}; {URL_FORMS}")


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver the app uses for it."""
    parsed = check_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# The root locale of ICU: Unicode's own case mapping, whatever the server's locale.
ICU_ROOT = "und-x-icu"


class folded(FunctionElement[str]):
    """`expression` (a column, an SQL expression or a Python string) in the one case folding
    of every case-insensitive comparison, unique index and search: Unicode's full lowercase
    mapping (Python's str.lower: `İ` is `i̇`, `ẞ` is `ß`, a final `Σ` is `ς`), the same on
    both databases and independent of PostgreSQL's locale: PostgreSQL lowers with ICU's
    root locale, SQLite with Python's str.lower (see create_engine)."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded(element: folded, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(func.lower(*element.clauses), **kw))


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: Any, **kw: Any) -> str:
    (expression,) = element.clauses
    return str(compiler.process(func.lower(collate(expression, ICU_ROOT)), **kw))


class by_code_point(FunctionElement[str]):
    """`expression` sorted by code point, as SQLite sorts text, rather than by PostgreSQL's
    collation (the server's locale, or ICU's for a folded value)."""

    type = String()
    name = "by_code_point"
    inherit_cache = True


@compiles(by_code_point)
def _by_code_point(element: by_code_point, compiler: Any, **kw: Any) -> str:
    (expression,) = element.clauses
    return str(compiler.process(expression, **kw))


@compiles(by_code_point, "postgresql")
def _by_code_point_postgresql(element: by_code_point, compiler: Any, **kw: Any) -> str:
    (expression,) = element.clauses
    return str(compiler.process(collate(expression, "C"), **kw))


def json_text(value: Any) -> str:
    """A JSON column's value as text, by orjson: several times faster than the standard
    library's encoder, which costs much of a bulk upload's time otherwise."""
    return orjson.dumps(value).decode()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    engine = create_async_engine(async_url(url), json_serializer=json_text, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # SQLite's own lower() folds ASCII only; Python's folds every letter as
            # PostgreSQL's ICU lower does (see folded), so both databases agree.
            dbapi_conn.run_async(
                lambda conn: conn.create_function("lower", 1, unicode_lower, deterministic=True)
            )
            # Transactions are begun below, not by the driver (which would begin them only
            # at the first write, after the reads that the write depends on).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A write transaction takes SQLite's single write lock up front, so that what it
            # read (max + 1 ids, uniqueness checks) is still true when it writes, and
            # concurrent writers queue on busy_timeout instead of failing.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


WRITE_OPTION = "crm_write_transaction"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """The engine and session factory of one app instance."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # On SQLite a request that writes begins its transaction with the write lock (see
        # _sqlite_begin), at its first statement.
        writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self.write_sessionmaker = (
            async_sessionmaker(writer, expire_on_commit=False)
            if self.dialect == "sqlite"
            else self.sessionmaker
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session. Services flush; this commits once the endpoint returned, and
    rolls everything back when it raised."""
    database: Database = request.app.state.db
    makes = database.sessionmaker if request.method in READ_METHODS else database.write_sessionmaker
    async with makes() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def next_numbers(
    session: AsyncSession, column: InstrumentedAttribute[int], sequence: str, count: int = 1
) -> list[int]:
    """Integer ids for columns that are not a lone primary key (so SQLite cannot
    autoincrement them): a sequence on PostgreSQL, max + 1 on SQLite, whose single writer
    and the column's unique index keep two transactions from taking the same number."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        rows = await session.execute(
            text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"), {"n": count}
        )
        return [row[0] for row in rows]
    current = await session.scalar(select(func.coalesce(func.max(column), 0)))
    start = int(current or 0) + 1
    return list(range(start, start + count))


# "function" scope: the commit happens before the response is sent, so a client never sees
# success for a write that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
