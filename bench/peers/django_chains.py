"""Users and refresh-token chains for the Django + simplejwt peer (bench/run.sh).

Usage: python django_chains.py USERS PASSWORD FILE...
Creates USERS users (bench0 .. bench{USERS-1}; bench0 with PASSWORD, for
one login through /api/token/, the others without a usable password) and
writes into each FILE one refresh token per user, a line each, as simplejwt's
login makes them (RefreshToken.for_user, recorded as outstanding): each line
starts a chain for bench/refresh.lua. Run after migrate, with the peer's
settings (DJANGO_SETTINGS_MODULE=djangopeer.settings).
"""

import sys

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402


def main() -> None:
    count, password, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    model = get_user_model()
    users = [
        model.objects.create_user(f"bench{i}", password=password if i == 0 else None)
        for i in range(count)
    ]
    for path in paths:
        with open(path, "w") as out:
            for user in users:
                out.write(f"{RefreshToken.for_user(user)}\n")


if __name__ == "__main__":
    main()
