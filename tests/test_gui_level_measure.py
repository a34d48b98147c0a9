"""Measuring levels from the window takes turns with answers on the engine thread (real engine, real
models): a measurement waits for an answer being written, and an answer asked for during a measurement
runs before the next level, never after all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models.level_measurer import CANCELLED, LevelMeasurer
from app.models.quant_list import MEASURED_PICK, QuantList
from tests.fakehub import FakeHub
from tests.gui_app import GuiApp, make_catalog, start_app

WAIT_MS = 20_000
MEASURE_MS = 600_000  # seconds when the machine is idle; minutes when other jobs share its cores


@pytest.fixture
def app(hub_home: Path, tmp_path: Path, hub: FakeHub, qtbot) -> GuiApp:
    a = start_app(hub_home, make_catalog(tmp_path / "catalog.json", hub.commit))
    for level in ("Q8_0", "Q4_K_M"):  # both installed, Q4_K_M in use
        with qtbot.waitSignal(a.switcher.switched, timeout=WAIT_MS):
            a.switcher.choose("tiny", level)
        qtbot.waitUntil(lambda level=level: a.ready and a.loaded_quant() == level, timeout=WAIT_MS)
    yield a
    a.shutdown()


@pytest.fixture
def measurer(app: GuiApp) -> tuple[LevelMeasurer, list[str]]:
    """The window's measurer, and everything it and the chat said, in the order it was said."""
    m = LevelMeasurer(app.engine, app.switcher)
    events: list[str] = []
    m.progress.connect(lambda text, _f: events.append(text))
    m.ended.connect(lambda sentence: events.append(f"ended: {sentence}"))
    app.session.controller.generationFinished.connect(lambda *_: events.append("answer finished"))
    return m, events


def level(app: GuiApp, name: str):
    return next(m for m in app.switcher.manager.installed() if m.level == name)


def test_a_measurement_asked_for_while_an_answer_is_written_starts_after_it(app, measurer, qtbot):
    m, events = measurer
    app.session.new_chat()
    assert app.session.send("Tell me about tomatoes")
    m.measure([level(app, "Q4_K_M")])
    assert events[-1].startswith("Waiting for the model to be free")
    with qtbot.waitSignal(m.ended, timeout=MEASURE_MS):
        pass
    first_measuring = next(i for i, e in enumerate(events) if e.startswith("Measuring"))
    assert events.index("answer finished") < first_measuring
    assert events[-1] == "ended: Measured 1 level on this computer."
    assert set(m.figures()) == {level(app, "Q4_K_M").id}


def test_an_answer_asked_for_during_a_measurement_runs_before_the_next_level(app, measurer, qtbot):
    m, events = measurer
    m.measure([level(app, "Q4_K_M"), level(app, "Q8_0")])
    qtbot.waitUntil(lambda: any(e.startswith("Measuring") for e in events), timeout=MEASURE_MS)
    app.session.new_chat()
    assert app.session.send("And beans?")
    with qtbot.waitSignal(m.ended, timeout=MEASURE_MS):
        pass
    second_level = next(i for i, e in enumerate(events) if e.endswith("(2 of 2)"))
    assert events.index("answer finished") < second_level
    assert events[-1] == "ended: Measured 2 levels on this computer."
    assert m.advice().level in ("Q4_K_M", "Q8_0")


def test_once_levels_are_measured_the_level_table_stars_the_one_measured_best_here(app, measurer, qtbot):
    m, _ = measurer
    table = QuantList(app.switcher, figures=m.figures, advice=m.advice)
    starred = [r for r in rows(table) if r.endswith(" ★")]
    assert starred == ["Q4_K_M ★"]  # nothing measured: the catalog's recommended level
    assert tooltip(table, "Q4_K_M ★") == "Recommended"
    m.measure([level(app, "Q4_K_M"), level(app, "Q8_0")])
    with qtbot.waitSignal(m.ended, timeout=MEASURE_MS):
        pass
    table.refresh()
    pick = m.advice().level
    assert pick is not None
    assert [r for r in rows(table) if r.endswith(" ★")] == [f"{pick} ★"]
    assert tooltip(table, f"{pick} ★") == MEASURED_PICK


def rows(table: QuantList) -> list[str]:
    return [table.tree.topLevelItem(i).text(0) for i in range(table.tree.topLevelItemCount())]


def tooltip(table: QuantList, row: str) -> str:
    item = next(table.tree.topLevelItem(i) for i in range(table.tree.topLevelItemCount())
                if table.tree.topLevelItem(i).text(0) == row)
    return item.toolTip(0)


def test_cancel_stops_the_measurement_and_keeps_what_was_measured_before(app, measurer, qtbot):
    m, events = measurer
    m.measure([level(app, "Q4_K_M"), level(app, "Q8_0")])
    with qtbot.waitSignal(m.measured, timeout=MEASURE_MS):
        pass
    with qtbot.waitSignal(m.ended, timeout=MEASURE_MS):
        m.cancel()
    assert events[-1] == f"ended: {CANCELLED}"
    assert not m.busy
    assert set(m.figures()) == {level(app, "Q4_K_M").id}
