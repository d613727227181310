"""``python -m infra.keys`` (``make keys``): fresh secrets for docker compose or any deployment, written to ``.env``.

Every secret the platform refuses to run in production without, each from the OS's CSPRNG. Keys already in the file
are kept (a rotated ID-encryption key would make the stored ID-card numbers unreadable); ``--force`` replaces them.
The file is created readable by its owner only and is ignored by git.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _token() -> str:
    return secrets.token_urlsafe(48)


def _aes_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


SECRETS: dict[str, tuple[Callable[[], str], str]] = {
    "STVS_INTERNAL_TOKEN": (_token, "signs the caller's identity from the gateway to the services"),
    "STVS_JWT_SECRET": (_token, "signs access tokens (HS256)"),
    "STVS_ID_ENCRYPTION_KEY": (_aes_key, "AES-256-GCM key of ID-card numbers at rest: rotate only by re-encrypting"),
    "STVS_ID_HASH_KEY": (_token, "HMAC key that finds an ID-card number without decrypting it: never rotate"),
    "STVS_CHECKIN_SECRET": (_token, "signs activity check-in codes (changing it invalidates printed QR codes)"),
    "STVS_CERTIFICATE_SECRET": (_token, "signs certificate numbers (changing it invalidates issued certificates)"),
    "STVS_WEBHOOK_SECRET_KEY": (_aes_key, "AES-256-GCM key of webhook subscribers' signing secrets at rest"),
}


def read_env(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                found[name.strip()] = value.strip()
    return found


def write_keys(path: Path, *, force: bool = False) -> list[str]:
    """Add the missing secrets to ``path`` (all of them with ``force``); returns the names written."""
    existing = read_env(path)
    lines = path.read_text().splitlines() if path.is_file() else []
    written: list[str] = []
    for name, (make, why) in SECRETS.items():
        if name in existing and existing[name] and not force:
            continue
        lines = [line for line in lines if not line.startswith(f"{name}=")]
        lines += [f"# {why}", f"{name}={make()}"]
        written.append(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    path.chmod(0o600)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.keys", description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / ".env", help="file to write (default: .env)")
    parser.add_argument("--force", action="store_true", help="replace secrets already in the file")
    args = parser.parse_args(argv)
    written = write_keys(args.env_file, force=args.force)
    kept = len(SECRETS) - len(written)
    print(f"{args.env_file}: {len(written)} secret(s) written, {kept} kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
