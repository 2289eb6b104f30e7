"""The bearer token that mutating requests carry."""

from __future__ import annotations

import hmac
from typing import Final

from pydantic import SecretStr

from streams.web.errors import ApiError

CHALLENGE: Final = 'Bearer realm="retrainer"'


def check_bearer(token: SecretStr | None, authorization: str) -> None:
    """Refuse (401 with a `WWW-Authenticate` challenge) unless `authorization` carries `token`.

    The configured token is never blank (settings read a blank one as unset), and the comparison
    takes the same time wherever the given token first differs.
    """
    if token is None:
        raise ApiError(
            401,
            "mutations_disabled",
            "mutations are disabled until RETRAINER_API_TOKEN is set",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    scheme, _, given = authorization.strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401,
            "missing_token",
            "send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    # Header text arrives surrogate-escaped when it is not UTF-8: compare its bytes as sent.
    sent = given.encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(sent, token.get_secret_value().encode("utf-8")):
        raise ApiError(
            401,
            "invalid_token",
            "the bearer token is not the one this worker was given",
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
        )
