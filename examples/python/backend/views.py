from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Orders(APIView):
    """The user's orders. TesseraAuthentication (settings.py) has verified
    the token: request.user.id is its user_id, with no database query; no
    token, or a refused one, never gets here (401 with Tessera's body)."""

    def get(self, request: Request) -> Response:
        user_id = request.user.id
        # Stands in for Order.objects.filter(user_id=user_id).
        orders = [
            {"id": user_id * 100 + 1, "item": "Coffee beans, 1 kg", "quantity": 2},
            {"id": user_id * 100 + 2, "item": "Ceramic mug", "quantity": 1},
        ]
        return Response({"user_id": user_id, "orders": orders})
