"""FastAPI's stateless refresh, as the tutorials build it: bench/run.sh's peer in (f).

``POST /api/token/refresh/`` with ``{"refresh": T}``: T is decoded by PyJWT
(HS256 only, ``exp`` required) and must say ``token_type: "refresh"``; the
answer is 200 ``{"access": A}``, A a new access token signed by PyJWT, or 401.
No database: a refresh token is good until it expires, however often it is
presented (no rotation, no blacklist), which is the work Tessera's (f) does
more of. Served by uvicorn as ``fastapi run`` serves it (uvloop, httptools,
access log on); the HS256 secret comes from PEER_SECRET.

``python fastapi_refresh.py SUBJECT`` prints a refresh token for SUBJECT, as
the tutorial's login would answer it (bench/run.sh posts that one token).
"""

import os
import sys
import uuid
from datetime import datetime, timedelta, timezone

import jwt
from fastapi import FastAPI, HTTPException, status
from pydantic import BaseModel

SECRET_KEY = os.environ["PEER_SECRET"]
ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = 15
REFRESH_TOKEN_EXPIRE_DAYS = 1

app = FastAPI()


class RefreshRequest(BaseModel):
    refresh: str


class AccessToken(BaseModel):
    access: str


def create_token(data: dict, token_type: str, expires_delta: timedelta) -> str:
    to_encode = data.copy()
    now = datetime.now(timezone.utc)
    to_encode.update(
        {"token_type": token_type, "exp": now + expires_delta, "iat": now, "jti": uuid.uuid4().hex}
    )
    return jwt.encode(to_encode, SECRET_KEY, algorithm=ALGORITHM)


@app.post("/api/token/refresh/")
async def refresh_access_token(body: RefreshRequest) -> AccessToken:
    credentials_exception = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )
    try:
        payload = jwt.decode(
            body.refresh, SECRET_KEY, algorithms=[ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.InvalidTokenError:
        raise credentials_exception
    if payload.get("token_type") != "refresh":
        raise credentials_exception
    access = create_token(
        {"sub": payload.get("sub"), "user_id": payload.get("user_id")},
        "access",
        timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    )
    return AccessToken(access=access)


if __name__ == "__main__":
    print(
        create_token(
            {"sub": sys.argv[1], "user_id": 1},
            "refresh",
            timedelta(days=REFRESH_TOKEN_EXPIRE_DAYS),
        )
    )
