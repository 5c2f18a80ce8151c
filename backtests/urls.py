from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from backtests.catalog import dataset_views, run_results, views
from backtests.pages import sweeps as sweep_pages
from backtests.pages import views as pages
from backtests.playback import history, page, sse

RUN_ID = r"(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})"
SWEEP_ID = r"(?P<sweep_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})"

urlpatterns = [
    path("", pages.run_list, name="run-list"),
    path("runs/new", pages.run_new, name="run-new"),
    path("runs/compare", pages.run_compare, name="run-compare"),
    # Before run-page, whose pattern "sweeps" would match too.
    path("runs/sweeps", sweep_pages.sweep_list, name="sweep-list"),
    path("runs/sweeps/new", sweep_pages.sweep_new, name="sweep-new"),
    re_path(rf"^runs/sweeps/{SWEEP_ID}$", sweep_pages.sweep_page, name="sweep-page"),
    re_path(rf"^runs/sweeps/{SWEEP_ID}/promote$", sweep_pages.promote, name="sweep-page-promote"),
    re_path(rf"^runs/{RUN_ID}$", pages.run_page, name="run-page"),
    path("favicon.ico", RedirectView.as_view(url=static("pages/favicon.svg")), name="favicon"),
    path("backtests", views.runs, name="runs"),
    path("strategies", views.strategies, name="strategies"),
    path("datasets", dataset_views.datasets, name="datasets"),
    re_path(
        r"^datasets/(?P<dataset_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})$",
        dataset_views.dataset,
        name="dataset",
    ),
    re_path(r"^datasets/(?P<rest>.*)$", views.not_found, name="datasets-not-found"),
    re_path(r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})$", views.run, name="run"),
    re_path(
        r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/play$",
        page.play,
        name="run-play",
    ),
    re_path(
        r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/stream$",
        sse.stream,
        name="run-stream",
    ),
    re_path(
        r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/cancel$",
        views.cancel_run,
        name="run-cancel",
    ),
    re_path(
        r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/trades$",
        run_results.trades,
        name="run-trades",
    ),
    re_path(
        r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/equity$",
        run_results.equity,
        name="run-equity",
    ),
    re_path(
        r"^backtests/(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/bars$",
        history.bars,
        name="run-bars",
    ),
    re_path(r"^backtests/(?P<rest>.*)$", views.not_found, name="api-not-found"),
    path("", include("backtests.sweeps.urls")),
]
