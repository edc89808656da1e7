from django.urls import path

from . import views

urlpatterns = [path("api/dashboard/", views.Dashboard.as_view())]
