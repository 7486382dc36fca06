"""What one statement costs in Python, by layer: the CPU time per call of the token's lookup
(crm.auth.tokens.PRINCIPAL_STATEMENT, one indexed lookup) through the layers a request goes
through, on PostgreSQL.

    .venv/bin/python bench/statement_cost.py postgresql://crm@127.0.0.1:55432/crm_http_bench

The database must be migrated by crm (`make bench` leaves `crm_http_bench` behind). Each
figure is the process CPU time per call, the best of `--rounds` rounds of `-n` calls, one
at a time on uvloop, with no other load on the process: the floor under what a request
spends on each statement.
"""

import argparse
import time
from collections.abc import Awaitable, Callable

import uvloop
from sqlalchemy.ext.asyncio import async_sessionmaker

from crm.auth.tokens import PRINCIPAL_STATEMENT
from crm.db import create_engine

PARAMETERS = {"token_hash": "0" * 64}  # no such token: the lookup finds no row


async def main(url: str, calls: int, rounds: int) -> None:
    engine = create_engine(url, pool_size=2, max_overflow=0)
    reader = engine.execution_options(isolation_level="AUTOCOMMIT")  # as a GET's session
    sessions = async_sessionmaker(reader, expire_on_commit=False)

    async def session_statement_commit() -> None:
        async with sessions() as session:
            (await session.execute(PRINCIPAL_STATEMENT, PARAMETERS)).one_or_none()
            await session.commit()

    async def connection_statement() -> None:
        async with reader.connect() as connection:
            (await connection.execute(PRINCIPAL_STATEMENT, PARAMETERS)).one_or_none()

    async def checkout_only() -> None:
        async with reader.connect():
            pass

    async def session_only() -> None:
        async with sessions():
            pass

    async with reader.connect() as held:
        raw = (await held.get_raw_connection()).driver_connection
        # The same SQL, its one parameter left: the other values written into it.
        literal = PRINCIPAL_STATEMENT.params(PARAMETERS).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        sql = str(literal).replace(f"'{PARAMETERS['token_hash']}'", "$1")

        async def held_statement() -> None:
            (await held.execute(PRINCIPAL_STATEMENT, PARAMETERS)).one_or_none()

        async def asyncpg_statement() -> None:
            await raw.fetchrow(sql, PARAMETERS["token_hash"])

        layers: dict[str, Callable[[], Awaitable[None]]] = {
            "a session, the statement, commit (a GET's)": session_statement_commit,
            "a pooled connection and the statement": connection_statement,
            "the statement on a held connection": held_statement,
            "the statement through asyncpg alone": asyncpg_statement,
            "a pooled connection, nothing sent": checkout_only,
            "a session, nothing sent": session_only,
        }
        best = dict.fromkeys(layers, float("inf"))
        for _ in range(rounds):
            for name, call in layers.items():
                await call()  # prepared, pooled
                began = time.process_time()
                for _ in range(calls):
                    await call()
                best[name] = min(best[name], (time.process_time() - began) / calls)
    await engine.dispose()
    print("| layer | CPU per call |\n| --- | --- |")
    for name, seconds in best.items():
        print(f"| {name} | {seconds * 1e6:.0f} µs |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a PostgreSQL database migrated by crm")
    parser.add_argument("-n", type=int, default=3000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(main(args.url, args.n, args.rounds))
