"""Admin command: register CPs and drivers in CENTRAL's database (until the Registry does it over HTTPS).

Usage:
  python EV_Central_Server/admin.py [--db host:port] load <network.json>
  python EV_Central_Server/admin.py add-cp <id> --address A --city C [--country ES] --price P --power KW [--zone Z]
  python EV_Central_Server/admin.py add-driver <id> [--password-stdin]
  python EV_Central_Server/admin.py set-password <id>          (reads the new password from stdin)
  python EV_Central_Server/admin.py remove-cp <id>
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import passwords  # noqa: E402
from common.config import load_env  # noqa: E402
from common.db import Database, dsn_from, migrate  # noqa: E402
from common.domain import validate_cp  # noqa: E402
from EV_Central_Server.central.repository import PostgresRepository  # noqa: E402



def checked_cp(cp: dict) -> dict:
    """A CP record validated by the one domain rule; raises ValueError with the reason."""
    record, problem = validate_cp(cp)
    if problem:
        raise ValueError(f"{cp.get('cp_id', '?')}: {problem}")
    return record


def read_password() -> str:
    """A password from stdin (never from the command line, where `ps` would show it)."""
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < passwords.MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {passwords.MIN_PASSWORD_LENGTH} characters")
    return password


def main(argv=None) -> int:
    """Run one admin command against the database."""
    load_env()
    ap = argparse.ArgumentParser(prog="admin", description="Register CPs and drivers")
    ap.add_argument("--db", default=None, help="PostgreSQL host:port")
    sub = ap.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load")
    load.add_argument("file")
    add = sub.add_parser("add-cp")
    add.add_argument("cp_id")
    add.add_argument("--address", required=True)
    add.add_argument("--city", required=True)
    add.add_argument("--country", default="ES")
    add.add_argument("--price", required=True, dest="price_eur_kwh")
    add.add_argument("--power", required=True, dest="power_kw")
    add.add_argument("--zone", default="default")
    drv = sub.add_parser("add-driver")
    drv.add_argument("driver_id")
    drv.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    pwd = sub.add_parser("set-password")
    pwd.add_argument("driver_id")
    rm = sub.add_parser("remove-cp")
    rm.add_argument("cp_id")
    args = ap.parse_args(argv)

    db = Database.connect(dsn_from(args.db), attempts=30)
    migrate(db)
    repo = PostgresRepository(db)
    try:
        if args.command == "load":
            data = json.loads(Path(args.file).read_text(encoding="utf-8"))
            for cp in data.get("charging_points", []):
                repo.upsert_cp(checked_cp(cp))
            for driver_id in data.get("drivers", []):
                repo.add_driver(driver_id)
            print(f"registered {len(data.get('charging_points', []))} CPs and {len(data.get('drivers', []))} drivers")
        elif args.command == "add-cp":
            repo.upsert_cp(checked_cp(vars(args)))
            print(f"registered CP {args.cp_id}")
        elif args.command == "add-driver":
            password = read_password() if args.password_stdin else None
            created = repo.add_driver(args.driver_id, passwords.hash_secret(password) if password else None)
            print(f"registered driver {args.driver_id}" if created else f"driver {args.driver_id} already exists")
        elif args.command == "set-password":
            if not repo.set_driver_password(args.driver_id, passwords.hash_secret(read_password())):
                raise ValueError(f"driver {args.driver_id} does not exist")
            print(f"password of {args.driver_id} set")
        elif args.command == "remove-cp":
            if repo.list_supplies("active", args.cp_id, None, 1):
                raise ValueError(f"CP {args.cp_id} has a supply in progress; stop it first")
            print("removed" if repo.delete_cp(args.cp_id) else f"CP {args.cp_id} does not exist")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
