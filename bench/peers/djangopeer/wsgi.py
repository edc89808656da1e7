"""WSGI entry point of the Django + simplejwt peer (gunicorn djangopeer.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangopeer.settings")

application = get_wsgi_application()
