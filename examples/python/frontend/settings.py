"""The frontend's settings: Tessera verifies the tokens, nothing is stored.

Environment: TESSERA_URL (Tessera's base URL), TESSERA_CLIENT_ID and
TESSERA_CLIENT_SECRET (this service's client, from
`tessera clients add frontend --scope revocations`), BACKEND_URL.
"""

import os

TESSERA_URL = os.environ.get("TESSERA_URL", "http://127.0.0.1:8000")
BACKEND_URL = os.environ.get("BACKEND_URL", "http://127.0.0.1:9001")

TESSERA = {
    "JWKS_URL": f"{TESSERA_URL}/.well-known/jwks.json",
    # Follows Tessera's revocation feed: a logged-out user's token is
    # refused within a second, with no request to Tessera per token.
    "REVOCATIONS": {
        "url": TESSERA_URL,
        "client_id": os.environ["TESSERA_CLIENT_ID"],
        "client_secret": os.environ["TESSERA_CLIENT_SECRET"],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tessera_verify.django.TesseraAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

# No database: request.user is read from the token (a TesseraUser), and
# users, passwords and sessions live in Tessera.
DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "frontend.urls"
WSGI_APPLICATION = "frontend.wsgi.application"
# Nothing here signs with it (no sessions, no CSRF, no admin), but Django
# wants one.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "unused-by-this-service")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
USE_TZ = True
TIME_ZONE = "UTC"
