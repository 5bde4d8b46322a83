"""The emulator's notification signing keys: RS256, published as a JWKS (reference §6)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

try:
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
except ImportError as exc:
    # Every way to the emulator (graphcomms.testing, the pytest fixtures, the command
    # line) comes through here: name the extra, not just the missing module.
    raise ModuleNotFoundError(
        f"the Graph emulator signs its notifications with PyJWT and cryptography ({exc}): "
        'pip install "graphcomms[testing]"',
        name=exc.name,
    ) from exc

from graphcomms.testing._emulator_wire import JSON

# Long enough for any test run or a demo left serving for a while; nothing checks it.
_CERTIFICATE_DAYS = 365


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class _Key(NamedTuple):
    kid: str
    private: rsa.RSAPrivateKey
    certificate: bytes  # DER


def _self_signed(key: rsa.RSAPrivateKey, kid: str) -> bytes:
    """A self-signed X.509 certificate for ``key``, DER-encoded.

    The platform publishes its signing keys as certificates (``x5c``); a validator
    that reads the key from the certificate must meet one here too.
    """
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphcomms emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"notification signing key {kid}"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=_CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


class SigningKeys:
    """The current RSA key and the one before it, so a rotation overlaps like a real one.

    Key material comes from the OS (cryptography), not from the seed: it never shows in
    a delivery log, and the kid is derived from the public key so it is stable per key.
    Each key comes with its own self-signed certificate.
    """

    def __init__(self) -> None:
        self._keys: list[_Key] = []
        self.rotate()

    @property
    def kid(self) -> str:
        return self._keys[-1].kid

    def rotate(self) -> str:
        """Make a new signing key; the previous one stays published until the next rotation."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        modulus = _b64url_uint(key.public_key().public_numbers().n)
        kid = hashlib.sha256(modulus.encode("ascii")).hexdigest()[:32]
        self._keys = [*self._keys[-1:], _Key(kid, key, _self_signed(key, kid))]
        return kid

    def jwks(self) -> JSON:
        """The published keys: RSA ``n``/``e`` and the certificate (``x5c``, ``x5t``).

        ``x5c`` is standard base64 of the DER (RFC 7517 §4.7), ``x5t`` the base64url
        SHA-1 thumbprint (§4.8). ``use: sig`` alone: RFC 7517 §4.3 advises against
        ``key_ops`` beside it.
        """
        keys = []
        for kid, key, certificate in self._keys:
            numbers = key.public_key().public_numbers()
            keys.append(
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": kid,
                    # SHA-1 is what RFC 7517 defines x5t as: a name, not a security check.
                    "x5t": _b64url(hashlib.sha1(certificate, usedforsecurity=False).digest()),
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                    "x5c": [base64.b64encode(certificate).decode("ascii")],
                }
            )
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
            self._keys[-1].private if key is None else key,
            algorithm="RS256",
            headers={"kid": self.kid if kid is None else kid},
        )
