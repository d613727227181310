"""ID-card numbers at rest: AES-256-GCM ciphertext, found through an HMAC-SHA256 keyed hash, shown masked.

The plain number lives only in memory while a request or an import is handled; it is never logged and never
put in an event (DESIGN.md §5).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.registry.domain.fields import mask_id_number
from services.registry.settings import RegistrySettings
from shared.settings import decode_key

_AAD = b"stvs-registry-id-number-v1"
_NONCE_BYTES = 12
_PREFIX = "v1:"


class IdNumberCipher:
    """Encrypts, decrypts, hashes and masks ID-card numbers."""

    def __init__(self, encryption_key: bytes, hash_key: bytes) -> None:
        if len(encryption_key) != 32:
            raise ValueError("the encryption key must be 32 bytes")
        self._aead = AESGCM(encryption_key)
        self._hash_key = hash_key

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> IdNumberCipher:
        return cls(
            decode_key(settings.id_encryption_key.get_secret_value()),
            settings.id_hash_key.get_secret_value().encode(),
        )

    def __repr__(self) -> str:
        return "IdNumberCipher(<keys hidden>)"

    def encrypt(self, number: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, number.encode(), _AAD)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            raise ValueError("unknown ciphertext version")
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode()
        except InvalidTag:
            raise ValueError("ciphertext does not authenticate (wrong key or tampered)") from None

    def hash(self, number: str) -> str:
        """The keyed hash (hex) under which a number is looked up; equal numbers give equal hashes."""
        return hmac.new(self._hash_key, number.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def mask(number: str) -> str:
        return mask_id_number(number)
