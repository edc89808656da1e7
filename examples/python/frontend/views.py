import requests
from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Dashboard(APIView):
    """Who the user is, and their orders from the backend, asked with the
    user's own token. TesseraAuthentication (settings.py) has verified it
    here first: no token, or a refused one, never gets here (401 with
    Tessera's body) and the backend is not called."""

    def get(self, request: Request) -> Response:
        try:
            answer = requests.get(
                f"{settings.BACKEND_URL}/api/orders/",
                # request.auth is the token exactly as the user sent it.
                headers={"Authorization": f"Bearer {request.auth}"},
                timeout=5,
            )
        except requests.RequestException:
            return Response({"detail": "The backend is out of reach."}, status=502)
        if answer.status_code != 200:
            # This service accepted the token and the backend did not (it may
            # have seen a logout a moment earlier): the backend's failure,
            # not the user's. Retried, the user gets this service's own 401.
            return Response(
                {"detail": f"The backend answered {answer.status_code}."}, status=502
            )
        return Response({"user": request.user.username, "orders": answer.json()})
