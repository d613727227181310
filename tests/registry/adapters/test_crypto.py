"""ID-card numbers at rest: encryption round trip, keyed hash, masking, and the settings that hold the keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from services.registry.adapters.crypto import IdNumberCipher
from services.registry.settings import RegistrySettings

ID = "130102198506151230"


def cipher(**overrides: Any) -> IdNumberCipher:
    return IdNumberCipher.from_settings(RegistrySettings(**overrides))


def test_encrypt_round_trip_and_no_plaintext() -> None:
    c = cipher()
    token = c.encrypt(ID)
    assert ID not in token
    assert c.decrypt(token) == ID
    assert c.encrypt(ID) != token  # fresh nonce each time


def test_tampered_or_foreign_ciphertext_is_refused() -> None:
    token = cipher().encrypt(ID)
    other = cipher(id_encryption_key=base64.urlsafe_b64encode(b"x" * 32).decode())
    with pytest.raises(ValueError, match="authenticate"):
        other.decrypt(token)
    with pytest.raises(ValueError, match="version"):
        cipher().decrypt("v0:abc")


def test_keyed_hash_is_stable_and_depends_on_the_key() -> None:
    assert cipher().hash(ID) == cipher().hash(ID)
    assert cipher().hash(ID) != cipher(id_hash_key="another-key-of-enough-length").hash(ID)
    assert ID not in cipher().hash(ID)


def test_mask_and_repr_hide_the_number() -> None:
    assert cipher().mask(ID) == "13****************"
    assert "key" in repr(cipher()) and ID not in repr(cipher())


def test_settings_refuse_bad_keys_and_dev_keys_in_production() -> None:
    with pytest.raises(ValidationError):
        RegistrySettings(id_encryption_key="c2hvcnQ=")
    with pytest.raises(ValidationError):
        RegistrySettings(id_hash_key="short")
    with pytest.raises(ValueError, match="ID_ENCRYPTION_KEY"):
        RegistrySettings(production=True, internal_token="Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d").check_production()
    good = RegistrySettings(
        production=True,
        internal_token="Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d",
        id_encryption_key=base64.urlsafe_b64encode(bytes(range(32))).decode(),
        id_hash_key="Pw3_kE8vN1-tX6qB9mF2aL5yC7rJ4hD0",
    )
    good.check_production()
    assert good.campaign_year == 2026
