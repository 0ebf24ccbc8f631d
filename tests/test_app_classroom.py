"""Classroom mode through the app (AppTest): several people on one results store, each with their own identity.

Every test sets a teacher password (classroom mode on) and a private LAB_HOME (conftest.py). Students
are AppTest sessions of a browser that joined earlier: AppTest runs no components and sends no cookies,
so a session is given the browser's token the way ui/identity.py keeps it once read from the cookie
(`classroom_browser_token` in the session). The teacher is a session that typed the password. No test trains anything: workers are never started,
and a completed run is stored directly through the store's API with a tiny Keras model.

AppTest runs the router (streamlit_app.py, with the sidebar) on an app's first run only; later runs
run the page file alone, as a fresh server does before its router ran. So the sidebar is read on a
first run, and `reroute` runs the router again where a test needs it.
"""

from __future__ import annotations

import os
import time
from io import StringIO
from pathlib import Path

import keras
import pandas as pd
import pytest
from keras import layers
from streamlit.testing.v1 import AppTest

from lab.classroom import identities
from lab.classroom import teacher as teacher_password
from lab.classroom.limits import Challenge, ClassLimits, load_challenge, load_limits, save_challenge, save_limits
from lab.config import RunConfig, config_for_preset, task_class_names
from lab.data import cifar10 as lab_data
from lab.data.cache import source_identity
from lab.evaluate.metrics import metrics_from_predictions
from lab.jobs import launcher, queue
from lab.store.owners import NotYourRunError, Person
from lab.store.records import Status
from lab.store.runs import Store
from tests.synthetic import random_cifar10_folder
from ui.teacher_views import class_results_csv
from ui.train_form import config_from_state

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PASSWORD = "apples-and-pears"
HISTORY = {"loss": [2.0, 1.6], "accuracy": [0.2, 0.4], "val_loss": [1.9, 1.7], "val_accuracy": [0.25, 0.35]}


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def _classroom(tmp_path, monkeypatch):
    """Classroom mode on, a wrong password answered at once, no worker ever started, no download ever tried."""
    monkeypatch.setenv("LAB_TEACHER_PASSWORD", PASSWORD)
    monkeypatch.setattr(teacher_password, "WRONG_PASSWORD_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: None)

    def refuse():
        raise lab_data.DataUnavailableError("offline in tests: " + lab_data.HOW_TO_GET_IT)

    monkeypatch.setattr(lab_data, "_download_with_keras", refuse)
    (tmp_path / "no_cifar").mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "no_cifar"))


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> str:
    """A synthetic CIFAR-10 folder, so that the Train page's Start button is enabled."""
    folder = str(random_cifar10_folder(tmp_path / "cifar", 100, 20, seed=5))
    monkeypatch.setenv("CIFAR10_DIR", folder)
    return folder


BROWSER_TOKENS: dict[str, str] = {}  # person id -> the token their browser's cookie holds


def student(name: str) -> Person:
    """A student who joined earlier, as the join screen makes one: a person, and a token their browser keeps."""
    joined = identities.join(Store(), name)
    BROWSER_TOKENS[joined.person.id] = joined.browser_token
    return joined.person


TEACHER = Person("teacher", "Teacher", is_teacher=True)


def session(person: Person | None = None) -> AppTest:
    """A browser session: the app opened by `person`'s browser (its cookie read into the session), first run done."""
    at = AppTest.from_file(APP, default_timeout=90)
    if person is not None:
        at.session_state["classroom_browser_token"] = BROWSER_TOKENS[person.id]
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    return at


def reroute(at: AppTest) -> AppTest:
    """Run the router (and with it the sidebar) again, as a browser's next run does."""
    return open_page(at, "streamlit_app.py")


def as_teacher(person: Person | None = None) -> AppTest:
    at = session(person)
    at.text_input(key="classroom_teacher_password").set_value(PASSWORD).run()
    assert at.session_state["classroom_teacher"] is True
    return at


def sidebar_text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.sidebar.markdown)


def texts(at: AppTest) -> str:
    parts = [at.markdown, at.caption, at.info, at.error, at.warning, at.success, at.subheader, at.title]
    return "\n".join(str(element.value) for elements in parts for element in elements)


def button_keys(at: AppTest) -> set[str]:
    return {button.key for button in at.button if button.key}


def queued_run(owner: Person, **overrides) -> str:
    """A run `owner` asked for, waiting in the queue (no worker takes it in these tests)."""
    config = config_for_preset("quick-demo", subset=500, **overrides)
    return queue.ask_for_run(config, owner=owner, store=Store(), classroom=True).run_id


def completed_run(owner: Person, config: RunConfig, *, accuracy: float, params: int, seconds: float, data_dir: str | None = None) -> str:
    """A completed run of `owner`, as training would leave it, with a tiny untrained model and chosen figures."""
    store = Store()
    names = task_class_names(config.task)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(len(names), activation="softmax")]
    )
    key = queue.settings_key(config, source_identity(data_dir))
    run_id = store.create_run(config, status="running", owner=owner, settings_key=key)
    metrics = metrics_from_predictions([0, 1, 1, 0], [0, 1, 0, 0], names)
    metrics |= {"accuracy": accuracy, "total_params": params, "trainable_params": params, "class_names": list(names)}
    metrics["epochs_completed"] = config.epochs  # with n_train below, what duration estimates read
    n_train = round((config.subset or 50_000) * (1 - config.val_fraction))
    store.complete_run(
        run_id, metrics=metrics, history=HISTORY, model=model, environment={"device": "CPU"},
        fingerprint={"source": "synthetic", "n_test": metrics["n_test"], "n_train": n_train}, train_seconds=seconds,
    )  # fmt: skip
    return run_id


# ---------------------------------------------------------------- the mode and who you are


@pytest.mark.slow
def test_without_a_teacher_password_nothing_is_asked(monkeypatch):
    monkeypatch.delenv("LAB_TEACHER_PASSWORD")
    at = session()
    assert "Single-user mode" in sidebar_text(at)
    assert not [field for field in at.text_input if field.label in ("Your name", "Teacher password")]
    assert at.title[0].value == "Explore CIFAR-10"
    compare = open_page(at, "pages/compare.py")
    assert compare.title[0].value == "Compare runs" and "owner" not in compare.dataframe[0].value.columns


@pytest.mark.slow
def test_a_student_joins_once_is_shown_a_secret_and_keeps_out_of_the_address():
    at = session()
    assert "Classroom mode" in sidebar_text(at)
    assert [title.value for title in at.title] == ["Welcome to the class"]  # no page before a name
    at.text_input(key="classroom_your_name").set_value("  Ana <b>M.</b>  ").run()
    assert not at.exception
    person_id, token = at.session_state["classroom_person_id"], at.session_state["classroom_browser_token"]
    assert person_id.startswith("p-") and Store().person_name(person_id) == "Ana bM.b"  # no markup survives in a name
    assert identities.person_for_browser(Store(), token).id == person_id
    assert "id" not in at.query_params and person_id not in str(at.query_params) and token not in str(at.query_params)
    assert at.title[0].value == "Explore CIFAR-10"
    secret = at.session_state["classroom_new_secret"]
    assert f"Your secret: {secret}" in texts(reroute(at))  # shown once, to write down
    at.button(key="classroom_secret_done").click().run()
    assert "classroom_new_secret" not in at.session_state and "Your secret" not in texts(at)
    open_page(at, "pages/train.py")
    assert at.session_state["classroom_person_id"] == person_id and "id" not in at.query_params  # a page switch keeps it

    BROWSER_TOKENS[person_id] = token
    again = session(Person(person_id, "?"))  # a refresh, or the browser tomorrow: the cookie, in a new session
    assert "you are Ana bM.b" in sidebar_text(again)
    assert not [field for field in again.text_input if field.label == "Your name"]


@pytest.mark.slow
def test_an_address_never_makes_its_opener_someone():
    ana = student("Ana")
    assert identities.person_for_browser(Store(), BROWSER_TOKENS[ana.id]) == ana  # her browser's token is real
    Store().remember_person("teacher", "Someone")  # even ids someone holds in the store
    Store().remember_person("local", "Someone")
    for address in (ana.id, BROWSER_TOKENS[ana.id], "teacher", "local", "x" * 40):
        at = AppTest.from_file(APP, default_timeout=90)
        at.query_params["id"] = address  # a copied, bookmarked or hand-made address
        at.run()
        assert [title.value for title in at.title] == ["Welcome to the class"], address
    at.text_input(key="classroom_your_name").set_value("Ben").run()  # joining there makes a new person, always
    assert at.session_state["classroom_person_id"] not in (ana.id, "x" * 40) and "you are Ben" in sidebar_text(reroute(at))


def test_a_made_up_browser_token_is_no_one():
    student("Ana")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["classroom_browser_token"] = "a-token-this-browser-was-never-given-000000"
    at.run()
    assert [title.value for title in at.title] == ["Welcome to the class"]
    assert "classroom_browser_token" not in at.session_state  # forgotten, not kept


@pytest.mark.parametrize(("name", "refusal"), [("ana", 'already called "ana"'), ("Ｔｅａｃｈｅｒ", "kept for the teacher")])
def test_a_taken_name_or_the_teacher_s_is_refused_on_the_join_screen(name, refusal):
    student("Ana")
    at = session()
    reroute(at.text_input(key="classroom_your_name").set_value(name).run())
    assert [title.value for title in at.title] == ["Welcome to the class"] and "classroom_person_id" not in at.session_state
    assert any(refusal in error.value for error in at.error), [error.value for error in at.error]
    assert [person["name"] for person in Store().people()] == ["Ana"]


@pytest.mark.slow
def test_the_teacher_sees_identities_whose_names_read_the_same():
    ana = student("Ana")
    at = open_page(as_teacher(), "pages/teacher.py")
    assert "Names that read the same" not in texts(at)  # nothing to show while every name is told apart
    Store().remember_person("p-joined-before-names-were-compared", "\u0410NA")  # a Cyrillic А, stored without a key
    at = open_page(as_teacher(), "pages/teacher.py")
    assert "Names that read the same" in texts(at)
    table = next(frame.value for frame in at.dataframe if "identity" in frame.value.columns and "name" in frame.value.columns)
    assert list(table["name"]) == ["Ana", "\u0410NA"] and list(table["identity"]) == [ana.id, "p-joined-before-names-were-compared"]


@pytest.mark.slow
def test_a_student_rejoins_with_name_and_secret_and_leaves_on_one_browser():
    joined = identities.join(Store(), "Ana")
    at = session()  # another computer
    at.text_input(key="classroom_rejoin_name").set_value("Ana")
    at.text_input(key="classroom_rejoin_secret").set_value("WRONG-SECRET")
    reroute(at.button(key="FormSubmitter:classroom_rejoin_form-Rejoin").click().run())
    assert any("do not match anyone" in error.value for error in at.error) and "classroom_person_id" not in at.session_state
    assert at.text_input(key="classroom_rejoin_secret").value == ""  # the typed secret is not kept
    at.text_input(key="classroom_rejoin_name").set_value("ana")
    at.text_input(key="classroom_rejoin_secret").set_value(identities.show_secret(joined.secret))
    at.button(key="FormSubmitter:classroom_rejoin_form-Rejoin").click().run()  # the router's page now: it runs again
    assert at.session_state["classroom_person_id"] == joined.person.id and "you are Ana" in sidebar_text(at)
    assert Store().browser_token_count(joined.person.id) == 2

    at.button(key="classroom_leave").click().run()
    assert [title.value for title in at.title] == ["Welcome to the class"] and "Leave" not in sidebar_text(at)
    assert Store().browser_token_count(joined.person.id) == 1  # the first computer keeps her
    assert identities.person_for_browser(Store(), joined.browser_token) == joined.person


def test_a_login_is_the_identity_when_streamlit_authentication_is_configured():
    at = AppTest.from_file(APP, default_timeout=90)
    at.user = {"is_logged_in": False}  # what st.user holds with [auth] configured, before logging in
    at.run()
    assert [title.value for title in at.title] == ["Welcome to the class"] and "classroom_login" in button_keys(at)
    at = AppTest.from_file(APP, default_timeout=90)
    at.user = {"is_logged_in": True, "email": "ana@school.example", "name": "Ana Lopez"}
    at.run()
    assert "you are Ana Lopez" in sidebar_text(at) and "id" not in at.query_params


# ---------------------------------------------------------------- the teacher


@pytest.mark.slow
def test_a_wrong_teacher_password_is_refused_without_detail(monkeypatch):
    monkeypatch.setattr(teacher_password, "WRONG_PASSWORD_DELAY_SECONDS", 0.3)  # lab's pause, shortened
    ana = student("Ana")
    at = session(ana)
    started = time.monotonic()
    at.text_input(key="classroom_teacher_password").set_value("pears-and-apples").run()
    assert time.monotonic() - started >= 0.3  # the answer waited for lab's pause
    assert at.session_state["classroom_teacher"] is False
    assert at.session_state["classroom_teacher_password"] == ""  # the guess is kept nowhere
    reroute(at)
    assert [error.value for error in at.sidebar.error] == ["Not accepted."]
    assert "Teacher" not in sidebar_text(at) and "you are Ana" in sidebar_text(at)
    assert PASSWORD not in str(at.query_params) and "pears" not in str(at.query_params)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/teacher.py")  # not in the navigation
    alone = AppTest.from_file(str(Path(APP).parent / "pages" / "teacher.py"), default_timeout=90)  # the page run on its own
    alone.session_state["router_ran"] = True
    alone.session_state["classroom_browser_token"] = BROWSER_TOKENS[ana.id]
    alone.run()
    assert "This page is for the teacher" in texts(alone) and not alone.get("download_button")


@pytest.mark.slow
def test_the_right_password_makes_the_session_the_teacher():
    at = reroute(as_teacher())
    assert "Classroom mode:** Teacher" in sidebar_text(at)
    assert at.session_state["classroom_teacher_password"] == ""
    open_page(at, "pages/teacher.py")
    assert [title.value for title in at.title] == ["Teacher"]


# ---------------------------------------------------------------- two students, one run


@pytest.mark.slow
def test_b_neither_sees_nor_stops_a_s_run_and_the_teacher_can(tiny_data):
    ana, ben = student("Ana"), student("Ben")
    run_id = queued_run(ana)
    Store().claim_next_queued(os.getpid())  # this test process plays the worker that started it

    a_train = open_page(session(ana), "pages/train.py")
    assert run_id in texts(a_train) and {"trainbtn_cancel", "trainbtn_stop_keep"} <= button_keys(a_train)

    b_train = open_page(session(ben), "pages/train.py")
    assert b_train.session_state["train_tab"] == "Settings"  # the page opens on the settings: Ben has no run of his own
    b_train.session_state["train_tab"] = "Current run"
    b_train.run()
    assert run_id not in texts(b_train) and "No run yet" in texts(b_train)
    assert not {"trainbtn_cancel", "trainbtn_stop_keep"} & button_keys(b_train)

    with pytest.raises(NotYourRunError, match="belongs to Ana"):
        queue.cancel(run_id, Store(), by=ben)
    with pytest.raises(NotYourRunError, match="belongs to Ana"):
        queue.cancel(run_id, Store(), keep_model=True, by=ben)
    assert not Store().get_run(run_id).cancel_requested

    b_compare = open_page(session(ben), "pages/compare.py")
    b_compare.segmented_control(key="compare_view").set_value("runs").run()
    assert not [box for box in b_compare.selectbox if box.key == "compare_delete_run"]  # nothing of Ben's to delete

    queue.cancel(run_id, Store(), by=TEACHER)  # the teacher may
    assert Store().get_run(run_id).cancel_requested
    Store().set_status(run_id, "cancelled")
    with pytest.raises(NotYourRunError, match="only its owner or the teacher can delete it"):
        queue.delete(run_id, Store(), by=ben)
    assert queue.delete(run_id, Store(), by=TEACHER) and Store().get_run(run_id) is None


@pytest.mark.slow
def test_a_student_deletes_only_their_own_runs_on_compare():
    ana, ben = student("Ana"), student("Ben")
    anas = completed_run(ana, config_for_preset("quick-demo", seed=1), accuracy=0.6, params=1000, seconds=30)
    bens = completed_run(ben, config_for_preset("quick-demo", seed=2), accuracy=0.7, params=1000, seconds=30)
    at = open_page(session(ben), "pages/compare.py")
    at.segmented_control(key="compare_view").set_value("runs").run()
    assert at.selectbox(key="compare_delete_run").options == [bens]
    table = at.dataframe[0].value
    assert {"Ana", "Ben"} <= set(table["owner"])  # everyone sees every run, with its owner
    at.checkbox(key="compare_delete_confirm").check().run()
    at.button(key="compare_delete").click().run()
    assert Store().get_run(bens) is None and Store().get_run(anas) is not None


@pytest.mark.slow
def test_a_follower_watches_the_same_run_without_its_buttons(tiny_data):
    ana, ben = student("Ana"), student("Ben")
    a_train = open_page(session(ana), "pages/train.py")
    a_train.button(key="trainbtn_start").click().run()
    run_id = a_train.session_state["train_run_id"]
    assert Store().get_run(run_id).owner_id == ana.id

    b_train = open_page(session(ben), "pages/train.py")
    b_train.number_input(key="train_seed").set_value(a_train.session_state["train_seed"]).run()  # Ana's seed: her very settings
    b_train.toggle(key="train_reuse").set_value(True).run()  # and Ben chooses her run instead of training his own
    b_train.button(key="trainbtn_start").click().run()  # the same settings on the same data
    assert len(Store().list_runs()) == 1  # no copy queued
    assert b_train.session_state["train_run_id"] == run_id
    assert "started by Ana" in texts(b_train) and "Started by Ana; it counts as yours too" in texts(b_train)
    assert not {"trainbtn_cancel", "trainbtn_stop_keep"} & button_keys(b_train)
    assert "trainbtn_cancel" in button_keys(a_train.run())


# ---------------------------------------------------------------- the queue


def test_a_queued_run_shows_its_fair_place_and_when_it_should_start(tiny_data):
    ana, ben = student("Ana"), student("Ben")
    completed_run(ana, config_for_preset("quick-demo", subset=500, seed=9), accuracy=0.5, params=1000, seconds=40)  # the pace
    first, second = queued_run(ana), queued_run(ana, seed=1)
    bens = queued_run(ben, seed=2)
    # Round robin: Ben has had no run yet, so his goes first; then Ana's, one at a time.
    assert [queue.queue_position(run_id, Store()) for run_id in (bens, first, second)] == [1, 2, 3]
    at = open_page(session(ana), "pages/train.py")
    assert at.session_state["train_run_id"] == second  # her newest run is her current one
    waiting = next(info.value for info in at.info if "in the queue" in info.value)
    # Two runs of this network go first: the estimate comes from the pace of Ana's finished run.
    assert "number 3 in the queue" in waiting and "It should start in about" in waiting


def test_a_full_queue_refuses_one_more_and_lists_the_waiting_runs(tiny_data):
    save_limits(Store(), ClassLimits(max_queued_per_student=1), by=TEACHER)
    ana = student("Ana")
    waiting = queued_run(ana, seed=7)
    at = open_page(session(ana), "pages/train.py")
    at.session_state["train_tab"] = "Settings"  # it opens on Ana's waiting run
    at.run()
    at.button(key="trainbtn_start").click().run()
    assert len(Store().list_runs()) == 1
    refusal = next(error.value for error in at.error if error.value.startswith("Class limit"))
    assert "you already have 1 run waiting" in refusal and waiting in refusal and "the class allows 1 at a time" in refusal


@pytest.mark.parametrize(
    ("limits", "widget", "value", "message"),
    [
        (ClassLimits(max_epochs=3), ("number_input", "train_epochs"), 4, "the class allows at most 3 epochs (you asked for 4)"),
        (
            ClassLimits(max_train_images=10_000),
            ("number_input", "train_subset"),
            12_000,
            "at most 10,000 training images (you asked for 12,000)",
        ),
        (ClassLimits(max_train_images=10_000), ("number_input", "train_subset"), 0, "(you asked for 50,000)"),
        (ClassLimits(max_input_size=32), ("selectbox", "train_input_size"), 64, "an input size of at most 32 pixels (you asked for 64)"),
        (
            ClassLimits(allowed_presets=("quick-demo",)),
            ("selectbox", "train_model"),
            "seed-cnn",
            "only these models: quick-demo (you chose seed-cnn)",
        ),
    ],
)
def test_each_class_limit_refuses_with_its_message(tiny_data, limits, widget, value, message):
    save_limits(Store(), limits, by=TEACHER)
    at = open_page(session(student("Ana")), "pages/train.py")
    assert not at.button(key="trainbtn_start").disabled  # the preset as it is fits every limit here
    kind, key = widget
    getattr(at, kind)(key=key).set_value(value).run()
    assert not at.exception
    assert any(error.value.startswith("Class limit: ") and message in error.value for error in at.error), [e.value for e in at.error]
    assert at.button(key="trainbtn_start").disabled


# ---------------------------------------------------------------- no duplicate training, the leaderboard


@pytest.mark.slow
def test_a_run_trained_before_is_not_trained_again(tiny_data):
    ana, ben = student("Ana"), student("Ben")
    at = open_page(session(ben), "pages/train.py")
    config = config_from_state(at.session_state)  # what Ben is about to ask for
    anas = completed_run(ana, config, accuracy=0.805, params=356_810, seconds=95, data_dir=tiny_data)
    at.toggle(key="train_reuse").set_value(True).run()  # Ben chooses Ana's run instead of training his own (a copy)
    at.button(key="trainbtn_start").click().run()
    assert not at.exception
    assert [run.run_id for run in Store().list_runs()] == [anas]  # no new row
    said = [success.value for success in at.success]
    assert said and said[0].startswith("Already trained") and "by Ana: 80.5%" in said[0]
    assert "Test accuracy" in [metric.label for metric in at.metric]  # the result, at once
    assert [(run.run_id, run.followed) for run in Store().runs_of(ben.id)] == [(anas, True)]

    changed = open_page(session(ben), "pages/train.py")
    changed.number_input(key="train_seed").set_value(1).run()
    changed.button(key="trainbtn_start").click().run()
    assert len(Store().list_runs()) == 2  # changing anything, even the seed, trains anew


def test_the_class_leaderboard_ranks_each_students_best_run_and_explains_the_challenge():
    ana, ben, cleo = student("Ana"), student("Ben"), student("Cleo")
    completed_run(ana, config_for_preset("quick-demo", seed=1), accuracy=0.62, params=100_000, seconds=60)
    completed_run(ana, config_for_preset("quick-demo", seed=2), accuracy=0.71, params=100_000, seconds=70)  # Ana's best
    completed_run(ben, config_for_preset("quick-demo", seed=3), accuracy=0.80, params=900_000, seconds=50)
    completed_run(cleo, config_for_preset("quick-demo", seed=4), accuracy=0.66, params=150_000, seconds=40)
    at = open_page(session(ana), "pages/compare.py")
    assert at.title[0].value == "Class leaderboard"
    ranking = at.table[0].value
    assert list(ranking["student"]) == ["Ben", "Ana", "Cleo"] and list(ranking["accuracy"]) == ["80.0%", "71.0%", "66.0%"]
    assert [metric.label for metric in at.metric] == ["1. Ben", "2. Ana", "3. Cleo"]

    save_challenge(Store(), Challenge("cifar10", max_params=200_000), by=TEACHER)
    at = open_page(session(ana), "pages/compare.py")
    assert "at most 200,000 parameters" in texts(at)
    assert list(at.table[0].value["student"]) == ["Ana", "Cleo"]
    others = at.table[1].value
    assert list(others["student"]) == ["Ben"] and "900,000 parameters, over the 200,000 limit" in others["why not ranked"].iloc[0]


# ---------------------------------------------------------------- the teacher's panel


@pytest.mark.slow
def test_the_teacher_panel_shows_the_queue_and_acts_on_any_run(tiny_data):
    ana, ben = student("Ana"), student("Ben")
    anas, bens = queued_run(ana), queued_run(ben, seed=2)
    at = open_page(as_teacher(), "pages/teacher.py")
    table = at.table[0].value
    assert list(table["student"]) == ["Ana", "Ben"] and list(table["place"]) == ["1", "2"]
    assert "Ana (1), Ben (1)" in texts(at)

    at.selectbox(key="teacher_run").set_value(anas).run()
    at.button(key="teacher_cancel").click().run()
    assert Store().get_run(anas).status is Status.CANCELLED
    at.selectbox(key="teacher_run").set_value(anas).run()
    at.button(key="teacher_delete").click().run()
    assert Store().get_run(anas) is None and Store().get_run(bens) is not None


@pytest.mark.slow
def test_the_teacher_sets_limits_and_a_challenge_that_persist():
    at = open_page(as_teacher(), "pages/teacher.py")
    at.number_input(key="teacher_max_epochs").set_value(4)
    at.number_input(key="teacher_max_queued").set_value(3)
    at.multiselect(key="teacher_presets").set_value(["quick-demo", "seed-cnn"])
    at.button(key="FormSubmitter:teacher_limits_form-Save the limits").click().run()
    assert not at.exception
    assert load_limits(Store()) == ClassLimits(max_epochs=4, allowed_presets=("quick-demo", "seed-cnn"), max_queued_per_student=3)

    at.number_input(key="teacher_challenge_seconds").set_value(120)
    at.button(key="FormSubmitter:teacher_challenge_form-Set the challenge").click().run()
    assert load_challenge(Store()) == Challenge("cifar10", max_train_seconds=120.0)
    at.button(key="teacher_challenge_remove").click().run()
    assert load_challenge(Store()) is None


@pytest.mark.slow
def test_the_teacher_downloads_the_class_results_and_clears_the_class():
    ana = student("Ana")
    completed_run(ana, config_for_preset("quick-demo", seed=1), accuracy=0.6, params=1000, seconds=30)
    queued_run(ana)
    at = open_page(as_teacher(), "pages/teacher.py")
    assert [button.proto.label for button in at.get("download_button")] == ["Download the class's results (CSV)"]
    csv = pd.read_csv(StringIO(class_results_csv(Store())))  # what the button hands out
    assert list(csv["owner"]) == ["Ana"] and not csv["reference"].any()  # the class's runs only, not the report's
    at.checkbox(key="teacher_clear_confirm").check().run()
    at.button(key="teacher_clear").click().run()
    assert Store().list_runs() == []
    assert "Deleted 2 run(s)." in texts(at)
