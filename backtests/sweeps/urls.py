"""The sweeps' routes (mounted at the site's root by backtests/urls.py)."""

from django.urls import path, re_path

from backtests.catalog.views import not_found
from backtests.sweeps import views

SWEEP_ID = r"(?P<sweep_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})"

urlpatterns = [
    path("sweeps", views.sweeps, name="sweeps"),
    re_path(rf"^sweeps/{SWEEP_ID}$", views.sweep_view, name="sweep"),
    re_path(rf"^sweeps/{SWEEP_ID}/results$", views.results, name="sweep-results"),
    re_path(rf"^sweeps/{SWEEP_ID}/heatmap$", views.heatmap, name="sweep-heatmap"),
    re_path(rf"^sweeps/{SWEEP_ID}/events$", views.events, name="sweep-events"),
    re_path(rf"^sweeps/{SWEEP_ID}/cancel$", views.cancel, name="sweep-cancel"),
    re_path(rf"^sweeps/{SWEEP_ID}/promote$", views.promote, name="sweep-promote"),
    re_path(r"^sweeps/(?P<rest>.*)$", not_found, name="sweeps-not-found"),
]
