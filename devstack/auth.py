"""JWTs for the local stack: a local RSA signing key, token minting, and the authorizer's checks.

API Gateway's JWT authorizer checks the signature (RS256, keys from the issuer's JWKS), `exp`,
`nbf`, `iss` and `aud`, and answers 401 otherwise; the tenant claim is the functions' business.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .template import ROOT

KEY_FILE = ROOT / ".devstack" / "jwt-signing-key.pem"
ISSUER = "http://127.0.0.1/local-issuer"
AUDIENCE = "sms-connector-local"


def signing_key(path: Path = KEY_FILE) -> rsa.RSAPrivateKey:
    """The local key, made on first use and kept (git-ignored) so minted tokens survive restarts."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key


def mint(
    tenant: str | None,
    *,
    key: rsa.RSAPrivateKey | None = None,
    claim: str = "tenant_id",
    ttl_seconds: int = 12 * 3600,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    **extra: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": f"user-of-{tenant or 'nobody'}",
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl_seconds,
    } | extra
    if tenant is not None:
        claims[claim] = tenant
    return jwt.encode(claims, key or signing_key(), algorithm="RS256", headers={"kid": "local"})


class Authorizer:
    def __init__(self, key: rsa.RSAPrivateKey, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.public_key = key.public_key()
        self.issuer = issuer
        self.audience = audience

    def claims(self, authorization: str | None) -> dict[str, Any] | None:
        """The token's claims, or None when API Gateway would answer 401."""
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        try:
            return jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
