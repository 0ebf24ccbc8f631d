"""`python -m lab store ...`: the results store itself, from the server (whoever has the shell is trusted).

    python -m lab store where                                  which store this computer uses (never its password)
    python -m lab store copy --to postgresql://user:pw@host/db  copy this store, files and all, into an empty database
    python -m lab store copy --from postgresql://... --to FOLDER  and back, into an empty folder (SQLite)

A copy goes into an empty store only (lab/store/postgres_copy.py), so nothing is ever stored twice.
Addresses are printed without their password.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from lab.store.database import StoreError
from lab.store.postgres import URL_SCHEMES, redact
from lab.store.postgres_copy import copy_store
from lab.store.runs import PostgresStore, SQLiteStore, Store


def cmd_store(args) -> int:
    return {"where": cmd_where, "copy": cmd_copy}[args.store_command](args)


def cmd_where(args) -> int:
    store = Store()
    if isinstance(store, PostgresStore):
        print(f"PostgreSQL: {store.where} (files cached in {store.root})")
    else:
        print(f"SQLite: {store.database} (files in {store.runs_folder})")
    return 0


def cmd_copy(args) -> int:
    with tempfile.TemporaryDirectory(prefix="lab-store-copy-") as scratch:
        source = open_address(args.source, Path(scratch) / "source") if args.source else Store()
        destination = open_address(args.to, Path(scratch) / "destination")
        try:
            summary = copy_store(source, destination)
        except StoreError as error:
            print(f"error: {redact(str(error), args.to)}")
            return 1
    print(f"{summary.sentence()} Into {describe(destination)}.")
    return 0


def open_address(address: str, cache: Path) -> Store:
    """A store for a postgresql:// address (its files cached in `cache`) or a folder (SQLite)."""
    if address.split("://", 1)[0] in URL_SCHEMES:
        return PostgresStore(cache, database_url=address)
    return SQLiteStore(Path(address))


def describe(store: Store) -> str:
    return store.where if isinstance(store, PostgresStore) else str(store.root)
