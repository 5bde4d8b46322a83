"""The emulator's notification signing keys: RS256, published as a JWKS (reference §6)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from graphcomms.testing._emulator_wire import JSON


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SigningKeys:
    """The current RSA key and the one before it, so a rotation overlaps like a real one.

    Key material comes from the OS (cryptography), not from the seed: it never shows in
    a delivery log, and the kid is derived from the public key so it is stable per key.
    """

    def __init__(self) -> None:
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.rotate()

    @property
    def kid(self) -> str:
        return self._keys[-1][0]

    def rotate(self) -> str:
        """Make a new signing key; the previous one stays published until the next rotation."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        modulus = _b64url_uint(key.public_key().public_numbers().n)
        kid = hashlib.sha256(modulus.encode("ascii")).hexdigest()[:32]
        self._keys = [*self._keys[-1:], (kid, key)]
        return kid

    def jwks(self) -> JSON:
        keys = []
        for kid, key in self._keys:
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def sign(
        self,
        *,
        issuer: str,
        audience: str,
        tenant_id: str,
        lifetime: float = 3600.0,
        extra: Mapping[str, Any] | None = None,
        key: Any = None,
        kid: str | None = None,
    ) -> str:
        """A bearer token like Graph's callbacks carry: iss, aud, tid, iat, nbf, exp.

        ``key`` signs instead of the current key (a forger's), ``kid`` names another key.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "tid": tenant_id,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
        }
        if extra:
            claims.update(extra)
        # A None in extra removes the claim, so tests can mint a token without, say, tid.
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(
            claims,
            self._keys[-1][1] if key is None else key,
            algorithm="RS256",
            headers={"kid": self.kid if kid is None else kid},
        )
