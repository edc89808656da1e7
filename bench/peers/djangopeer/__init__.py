"""Django + simplejwt with rotation and blacklist: bench/run.sh's peer in (f).

A minimal project: the stock TokenObtainPairView at /api/token/ and
TokenRefreshView at /api/token/refresh/, ROTATE_REFRESH_TOKENS and
BLACKLIST_AFTER_ROTATION on, on a SQLite database, served by gunicorn.
"""
