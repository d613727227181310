"""``make admin`` (``python -m services.gateway.create_admin``): the first province admin account.

Asks for the user name and the password (twice, not echoed) when they are not given; ``--password`` exists for
scripts and tests, but a password on a command line is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from services.gateway.adapters.mongo import AccountStore
from services.gateway.adapters.mongo import indexes as account_indexes
from services.gateway.domain.accounts import NewAccount
from services.gateway.domain.errors import GatewayError
from services.gateway.settings import GatewaySettings
from shared.storage import mongo_client


async def create_admin(settings: GatewaySettings, username: str, password: str, display_name: str | None) -> str:
    client = mongo_client(settings.mongo_url, app_name="stvs-gateway-admin")
    try:
        db = client[settings.database("gateway")]
        await account_indexes().create(db)
        account, _ = await AccountStore(db).create(
            NewAccount(username=username, password=password, role="province_admin", display_name=display_name),
            created_by=None,
        )
        return account.id
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create a province admin account of the gateway.")
    parser.add_argument("--username", help="asked for when not given")
    parser.add_argument("--password", help="asked for (not echoed) when not given; at least 8 characters")
    parser.add_argument("--display-name", default="省级管理员")
    args = parser.parse_args(argv)
    username = args.username or input("username of the province admin: ").strip()
    password = args.password
    if password is None:
        password = getpass.getpass("password (at least 8 characters): ")
        if getpass.getpass("the same password again: ") != password:
            print("error: the two passwords differ; nothing created", file=sys.stderr)
            return 2
    settings = GatewaySettings()
    try:
        account_id = asyncio.run(create_admin(settings, username, password, args.display_name))
    except GatewayError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    except ValueError as exc:  # pydantic validation of username / password
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"province admin {username} created (id {account_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
