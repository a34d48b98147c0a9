"""Journey: measuring the installed levels on this computer from Settings ▸ Model — start a measurement,
cancel it, measure again, and see the level's figures in the table, the chart and a recommendation."""

from __future__ import annotations

from tests.journey import Home, JourneyApp

# A measurement loads the level and reads a few thousand tokens: seconds on an idle machine, much
# longer when other jobs share the cores.
MEASURE_TIMEOUT_S = 300.0


def test_a_level_measured_in_settings_shows_its_figures_and_a_recommendation_after_a_cancelled_try(
        desktop, hub, tmp_path):
    home = Home.create(tmp_path / "home", hub)
    home.install("Q4_K_M", "Q8_0")
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: "Q4_K_M" in app.status(), "the model to load")
        app.menu("Model", "Settings…")
        settings = app.dialog("Settings")
        table = app.one(None, "Quantization levels", within=settings)
        assert len(app.find("table cell", "Not measured yet", within=table)) == 2
        app.one(None, "Measure the installed levels on this computer to get a recommendation.", within=settings)

        app.press("push button", "Measure all installed levels on this computer", within=settings)
        app.one("progress bar", "Measurement progress", within=settings)
        app.press("push button", "Cancel measuring", within=settings)
        app.one("label", "Measurement cancelled. Levels measured before it are kept.", within=settings)
        assert not app.find("progress bar", "Measurement progress", within=settings)
        assert len(app.find("table cell", "Not measured yet", within=table)) == 2

        app.press("push button", "Measure Q4_K_M on this computer", within=settings)
        app.wait(lambda: app.find("label", "Measured 1 level on this computer.", within=settings),
                 "the measurement of Q4_K_M to end", MEASURE_TIMEOUT_S)

        figures = app.one("table cell", within=table, name_contains="tokens/s")
        assert "% same next word as Q8_0" in figures.name
        assert len(app.find("table cell", "Not measured yet", within=table)) == 1
        advice = app.one("label", within=settings, name_contains="Use Q4_K_M")
        assert "tokens/s" in advice.name and "Q8_0" in advice.name
        chart = app.one(None, "Speed and quality of the measured levels", within=settings)
        assert chart.description.startswith("Q4_K_M: ") and "(recommended)" in chart.description
