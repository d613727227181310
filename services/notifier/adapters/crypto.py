"""Webhook subscribers' signing secrets at rest: AES-256-GCM, bound to the subscription id.

The plain secret is shown once when a subscription is created, lives in memory only while a delivery is signed,
and is never logged. A subscription stored before encryption (a plain ``secret`` field) keeps working: it is read
as it is, and :func:`encrypt_plain_secrets` (run when the notifier starts) encrypts it in place.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.usecases.ports import SECRET_FIELD
from shared.storage import Doc

log = logging.getLogger("stvs.notifier.crypto")

PLAIN_FIELD = "secret"  # subscriptions stored before secrets were encrypted
_AAD = b"stvs-notifier-webhook-secret-v1:"
_NONCE_BYTES = 12
_PREFIX = "v1:"


class SecretCipher:
    """Encrypts and decrypts subscribers' secrets; the subscription id is authenticated with each one, so a
    ciphertext copied onto another subscription does not decrypt."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the webhook secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretCipher(<key hidden>)"

    def encrypt(self, secret: str, subscription_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), _AAD + subscription_id.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, subscription_id: str) -> str:
        if not token.startswith(_PREFIX):
            raise ValueError("unknown ciphertext version")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD + subscription_id.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise ValueError("webhook secret does not decrypt (wrong key or tampered)") from None

    def reveal(self, subscription: Mapping[str, Any]) -> str:
        """The signing secret of a stored subscription (encrypted, or plain when stored before encryption)."""
        token = subscription.get(SECRET_FIELD)
        if isinstance(token, str):
            return self.decrypt(token, str(subscription["_id"]))
        plain = subscription.get(PLAIN_FIELD)
        if isinstance(plain, str):
            return plain
        raise ValueError("subscription has no signing secret")


async def encrypt_plain_secrets(db: AsyncDatabase[Doc], collection: str, cipher: SecretCipher) -> int:
    """Encrypt every secret still stored in plain text; returns how many. Safe to run on several replicas at once:
    each subscription is rewritten from its own plain secret, so the result is the same whoever wins."""
    col = db[collection]
    done = 0
    async for doc in col.find({PLAIN_FIELD: {"$exists": True}}, {PLAIN_FIELD: 1}):
        plain = doc.get(PLAIN_FIELD)
        if not isinstance(plain, str):
            continue
        # Conditional on the plain secret still being there: a replica that encrypted it meanwhile wins.
        result = await col.update_one(
            {"_id": doc["_id"], PLAIN_FIELD: plain},
            {"$set": {SECRET_FIELD: cipher.encrypt(plain, str(doc["_id"]))}, "$unset": {PLAIN_FIELD: ""}},
        )
        done += result.modified_count
    if done:
        log.info("encrypted %d webhook secrets stored in plain text", done)
    return done
