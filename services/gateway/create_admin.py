"""``python -m services.gateway.create_admin --username … --password …``: the first province admin account."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.gateway.accounts import AccountStore, NewAccount
from services.gateway.accounts import indexes as account_indexes
from services.gateway.settings import GatewaySettings
from shared.problems import Problem
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
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True, help="at least 8 characters")
    parser.add_argument("--display-name", default="省级管理员")
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    try:
        account_id = asyncio.run(create_admin(settings, args.username, args.password, args.display_name))
    except Problem as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    except ValueError as exc:  # pydantic validation of username / password
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"province admin {args.username} created (id {account_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
