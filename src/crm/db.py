"""Engine, declarative Base and the request-scoped session: the one place that commits."""

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends
from sqlalchemy import FetchedValue, MetaData, String, Table, Text, collate, event, func, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.sql.expression import ColumnClause
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
    root locale, SQLite with Python's str.lower (see create_engine). A column that has a
    stored folded copy (folded_copy) reads as that copy, which its index serves."""

    type = String()
    name = "folded"
    inherit_cache = True


FOLDED_SUFFIX = "_folded"


def folded_copy() -> Any:
    """The column `<name>_folded` of a table whose column `<name>` is unique whatever its
    case: `<name>` folded, stored and indexed, so that its unique index holds in the data
    itself rather than in a function only the app has (SQLite's stock tools would check and
    rebuild an index on lower(<name>) with their own ASCII lower()). The database writes it,
    whatever writes the row (migration 0010): a generated column on PostgreSQL, triggers on
    SQLite, which fold with the app's lower() (see create_engine)."""
    return mapped_column(
        Text().with_variant(Text(collation=ICU_ROOT), "postgresql"),
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
    )


def stored_fold(expression: Any) -> Any:
    """The folded copy of `expression` when it is a column that has one, else None."""
    if not isinstance(expression, ColumnClause) or expression.table is None:
        return None
    return expression.table.c.get(expression.name + FOLDED_SUFFIX)


@compiles(folded)
def _folded(element: folded, compiler: Any, **kw: Any) -> str:
    (expression,) = element.clauses
    stored = stored_fold(expression)
    if stored is not None:
        return str(compiler.process(stored, **kw))
    return str(compiler.process(func.lower(expression), **kw))


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: Any, **kw: Any) -> str:
    (expression,) = element.clauses
    stored = stored_fold(expression)
    if stored is not None:
        return str(compiler.process(stored, **kw))
    return str(compiler.process(func.lower(collate(expression, ICU_ROOT)), **kw))


def refused_by(error: IntegrityError, table: Table, name: str) -> bool:
    """Whether the unique index `name` of `table` refused the write: PostgreSQL names the
    index, SQLite an index on an expression too, and an index on columns by its columns
    (`table.column, …`)."""
    message = str(error.orig)
    (index,) = (index for index in table.indexes if index.name == name)
    columns = ", ".join(f"{table.name}.{column.name}" for column in index.columns)
    return name in message or (bool(index.columns) and columns in message)


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


class DatabaseUnavailable(ConnectionError):
    """No connection to the database could be made: refused, timed out, shutting down."""


# SQLSTATE classes that say the connection or the server went away: connection exceptions,
# and operator intervention (an administrator's shutdown, a crash, a server starting up).
GONE_SQLSTATES = ("08", "57P")


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout


def waited_too_long_for_writers(error: BaseException) -> bool:
    """Whether `error` says a statement waited for another transaction's writes (its rows,
    its keys, SQLite's write lock) past WAIT_FOR_WRITERS_SECONDS: that request is answered
    409, to try again, and the database and its connection are fine."""
    original = error.orig if isinstance(error, DBAPIError) else error
    if getattr(original, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        return True
    return getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is away or too slow, rather than that the request
    was wrong: answered 503, not 500."""
    if isinstance(error, DatabaseUnavailable | PoolTimeout | TimeoutError):
        return True  # TimeoutError: a statement past STATEMENT_SECONDS
    if isinstance(error, DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        return error.connection_invalidated or sqlstate.startswith(GONE_SQLSTATES)
    return False


# How a list's statements are planned. For their own values: a cached generic plan knows
# neither the org (one of ten records or of a million) nor the search term (in one record or
# in all), and for the wrong one walks a million index entries where a custom plan reads a
# hundred. Their joins in the order written: the page is chosen on the record table first,
# then joined to its lookups, and searching every order of a lead's nine tables cost three
# times the read (planning 2.6 ms, 0.9 ms in the written order, execution 0.5 ms).
# Everything else (lookups by id, token or key) keeps PostgreSQL's default, a plan kept per
# connection once it is as good: planning a lead's nine-table read cost ~1.1 ms, four times
# the read itself.
LIST_PLANNING = {"plan_cache_mode": "force_custom_plan", "join_collapse_limit": "1"}


def json_text(value: Any) -> str:
    """A JSON column's value as text, by orjson: several times faster than the standard
    library's encoder, which costs much of a bulk upload's time otherwise."""
    return orjson.dumps(value).decode()


def create_engine(url: str, *, for_lists: bool = False, **kwargs: Any) -> AsyncEngine:
    """`for_lists`: on PostgreSQL, every statement planned as a list's (LIST_PLANNING)."""
    # JSON columns are written and read by orjson (what it writes, it reads back).
    engine = create_async_engine(
        async_url(url), json_serializer=json_text, json_deserializer=orjson.loads, **kwargs
    )

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # The driver's own errors (OSError, TimeoutError, a server shutting down) as one
        # kind, so that a request knows to answer 503.
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            raise DatabaseUnavailable(str(error).strip() or repr(error)) from error

    if engine.dialect.name == "postgresql" and for_lists:

        @event.listens_for(engine.sync_engine, "connect")
        def _plan_as_lists(dbapi_conn: Any, _record: Any) -> None:
            # SET rather than startup parameters, which PgBouncer would refuse or drop.
            settings = "; ".join(f"SET {name} = {value}" for name, value in LIST_PLANNING.items())
            dbapi_conn.run_async(lambda connection: connection.execute(settings))

    if engine.dialect.name == "postgresql":

        @event.listens_for(engine.sync_engine, "checkout")
        def _closed_by_the_server(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            # A pooled connection the server closed (it restarted) is replaced on checkout
            # at no cost, rather than failing the request that would use it; a ping on
            # every checkout would cost three round trips.
            if record.driver_connection.is_closed():
                raise DisconnectionError("the server closed the connection")

    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={WAIT_FOR_WRITERS_SECONDS * 1000}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Statement journals in memory: a row written with a trigger (each record's, which
            # numbers it: migration 0010) needs one, and one in a file for each row made an
            # upload's INSERT of 10,000 rows three times as slow.
            cursor.execute("PRAGMA temp_store=MEMORY")
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
            # read (uniqueness checks, the records it changes) is still true when it writes,
            # and concurrent writers queue on busy_timeout (then a 409) instead of failing.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


WRITE_OPTION = "crm_write_transaction"
DEFAULT_POOL_SIZE = 20
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Bounds on waiting for PostgreSQL: a server that is away or hung costs a request at most
# this long before it is answered 503, instead of hanging.
CONNECT_SECONDS = 5
STATEMENT_SECONDS = 30
# How long a statement waits for another transaction's writes: rows it locks, a unique key
# it has written and not committed yet (PostgreSQL's lock_timeout), SQLite's write lock (its
# busy_timeout). Below STATEMENT_SECONDS, so that PostgreSQL ends the wait itself, its
# connection in order, rather than the client giving up on a statement still running.
WAIT_FOR_WRITERS_SECONDS = 15


class Database:
    """The engines and session factories of one app instance."""

    def __init__(self, url: str, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        options: dict[str, Any] = {}
        if check_database_url(url).get_backend_name() != "sqlite":
            # As many connections as requests at once, all kept: one opened for a burst and
            # closed after it (SQLAlchemy's default overflow) costs a server process and
            # the statements it had prepared.
            options = {
                "pool_size": pool_size,
                "max_overflow": 0,
                "connect_args": {
                    "timeout": CONNECT_SECONDS,
                    "command_timeout": STATEMENT_SECONDS,
                    "server_settings": {"lock_timeout": f"{WAIT_FOR_WRITERS_SECONDS}s"},
                },
            }
        self.engine = create_engine(url, **options)
        self.engines = [self.engine]
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = self.write_sessionmaker = self.sessionmaker
        # Lists read in the request's session, except on PostgreSQL (below).
        self.list_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        if self.dialect == "sqlite":
            # A request that writes begins its transaction with the write lock (see
            # _sqlite_begin), at its first statement.
            writer = self.engine.execution_options(**{WRITE_OPTION: True})
            self.write_sessionmaker = async_sessionmaker(writer, expire_on_commit=False)
        else:
            # A request that only reads sends no BEGIN and no COMMIT, two round trips of a
            # detail's four: at READ COMMITTED each statement sees its own snapshot anyway.
            reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self.read_sessionmaker = async_sessionmaker(reader, expire_on_commit=False)
            # Lists on a pool of their own whose connections plan each statement for its
            # values (LIST_PLANNING), so that the lookups on the other keep their plans.
            lister = create_engine(url, for_lists=True, **options)
            self.engines.append(lister)
            self.list_sessionmaker = async_sessionmaker(
                lister.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
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
        for engine in self.engines:
            await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session. Services write, never commit; this commits once the endpoint
    returned, and rolls everything back when it raised."""
    database: Database = request.app.state.db
    makes = (
        database.read_sessionmaker
        if request.method in READ_METHODS
        else database.write_sessionmaker
    )
    async with makes() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


# The one server-wide allocator of numbers: every record's `number` (taken at insert, by
# the database: migration 0010), lead sources' ids and users' numbers. On PostgreSQL a
# sequence; on SQLite the one row of a table, its last number, taken under SQLite's single
# write lock (a transaction that writes holds it from its start: _sqlite_begin).
NUMBERS = "numbers"


async def next_numbers(session: AsyncSession, count: int = 1) -> list[int]:
    """`count` numbers from the server-wide allocator, never given before."""
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(
            text(f"SELECT nextval('{NUMBERS}') FROM generate_series(1, :n)"), {"n": count}
        )
        return [row[0] for row in rows]
    last = await session.scalar(
        text(f"UPDATE {NUMBERS} SET last = last + :n RETURNING last"), {"n": count}
    )
    return list(range(int(last) - count + 1, int(last) + 1))


# "function" scope: the commit happens before the response is sent, so a client never sees
# success for a write that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_list_session(request: Request, session: SessionDep) -> AsyncIterator[AsyncSession]:
    """The session a list reads in: on PostgreSQL one of the list pool (it only reads, so
    it needs no commit), elsewhere the request's own."""
    makes = request.app.state.db.list_sessionmaker
    if makes is None:
        yield session
        return
    async with makes() as listing:
        yield listing


ListSessionDep = Annotated[AsyncSession, Depends(get_list_session, scope="function")]
