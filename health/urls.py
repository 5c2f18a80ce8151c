from django.urls import path

from health import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
