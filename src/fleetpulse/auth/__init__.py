"""Authentication and limits: API keys, device tokens, the route policy and rate limits.

docs/security.md describes the deployment side: scopes, key management, TLS and binding.
"""

from fleetpulse.auth.bind import check_bind, is_loopback
from fleetpulse.auth.devices import IngestGuard
from fleetpulse.auth.keyfile import KeyFileError, KeyStore, key_file_path
from fleetpulse.auth.middleware import SCOPE_CREDENTIAL, AuthMiddleware, auth_middleware
from fleetpulse.auth.policy import ROUTE_POLICY, Access, access_for
from fleetpulse.auth.tokens import Credential

__all__ = [
    "ROUTE_POLICY",
    "SCOPE_CREDENTIAL",
    "Access",
    "AuthMiddleware",
    "Credential",
    "IngestGuard",
    "KeyFileError",
    "KeyStore",
    "access_for",
    "auth_middleware",
    "check_bind",
    "is_loopback",
    "key_file_path",
]
