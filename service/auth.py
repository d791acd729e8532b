"""Bearer authentication: HS256 JWTs signed with the router's secret, or static API keys."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import yaml
from pydantic import BaseModel, ConfigDict, Field

ADMIN = "admin"
"""Reads its own tenant's audit trail."""
OPERATOR = "operator"
"""Changes shared infrastructure: node status (drain, offline, telemetry)."""
GLOBAL_ADMIN = "global-admin"
"""Reads every tenant's audit trail, and may do what an operator does."""
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    user: str
    tenant: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return bool({ADMIN, GLOBAL_ADMIN} & self.roles)

    @property
    def is_operator(self) -> bool:
        return bool({OPERATOR, GLOBAL_ADMIN} & self.roles)


class AuthError(Exception):
    """Missing, malformed, expired or unknown credentials (401)."""


class ApiKeyEntry(BaseModel):
    """One static API key: the key itself or its SHA-256, and whom it stands for."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, min_length=16)
    """The key in clear (prefer key_sha256)."""
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Hex SHA-256 of the key."""
    user: str = Field(min_length=1)
    tenant: str = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)

    def digest(self) -> str:
        if self.key_sha256:
            return self.key_sha256
        if self.key:
            return hashlib.sha256(self.key.encode()).hexdigest()
        raise ValueError(f"API key for {self.user}: give key or key_sha256")


def load_api_keys(path: Path) -> dict[str, Principal]:
    """SHA-256 digest -> principal, from a YAML list of ApiKeyEntry; ValueError names the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        entries = [ApiKeyEntry.model_validate(item) for item in raw]
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"api_keys_file {path}: {exc}") from None
    return {e.digest(): Principal(e.user, e.tenant, frozenset(e.roles)) for e in entries}


def issue_token(
    secret: str,
    *,
    user: str,
    tenant: str,
    roles: list[str] | None = None,
    ttl_s: int = 3600,
    now: float | None = None,
) -> str:
    """A signed HS256 JWT with sub, tenant, roles, iat and exp."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "tenant": tenant,
        "roles": sorted(roles or []),
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class Authenticator:
    """Checks a bearer credential against the JWT secret and the static keys."""

    def __init__(self, secret: str | None, api_keys: dict[str, Principal]) -> None:
        if not secret and not api_keys:
            raise ValueError(
                "no credentials configured: set ROUTER_JWT_SECRET or ROUTER_API_KEYS_FILE "
                "(or start with --dev for an ephemeral secret)"
            )
        self._secret = secret
        self._api_keys = api_keys

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an `Authorization` header value; AuthError otherwise."""
        if not authorization:
            raise AuthError("missing Authorization header")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise AuthError("Authorization must be 'Bearer <token>'")
        credential = credential.strip()
        digest = hashlib.sha256(credential.encode()).hexdigest()
        for known, principal in self._api_keys.items():
            if hmac.compare_digest(known, digest):
                return principal
        if not self._secret:
            raise AuthError("unknown API key")
        try:
            claims = jwt.decode(
                credential,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "tenant", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("invalid token: signature verification failed") from None
        except jwt.DecodeError:
            # PyJWT's own words here are its decoder's (codecs, padding), no help to a caller.
            raise AuthError("invalid token: not a well-formed JWT") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        roles = claims.get("roles") or []
        if not isinstance(roles, list):
            raise AuthError("invalid token: roles must be a list")
        return Principal(str(claims["sub"]), str(claims["tenant"]), frozenset(map(str, roles)))
