"""The teacher's pre-flight: a missing ImageNet weights file hides its presets and refuses their runs, until it is provided.

Every test keeps Keras's folder in a temporary KERAS_HOME, so the machine's own cache is never read or
written. The weights file a test provides is made here: MobileNetV2 built with random weights and saved
in the legacy HDF5 layout under the name Keras looks for (Keras's ImageNet files use that layout).
"""

from __future__ import annotations

import h5py
import keras
import pytest
from keras.src.legacy.saving import legacy_h5_format

from lab.classroom import preflight
from lab.classroom.limits import ClassLimits, load_limits, save_limits
from lab.config import config_for_preset
from lab.jobs import launcher, queue, resume
from lab.models import pretrained
from lab.store.owners import NotTheTeacherError, Person
from lab.store.records import Status
from lab.store.runs import Store
from tests.test_app_classroom import _classroom, as_teacher, open_page, session, student, tiny_data  # noqa: F401 - fixtures

ANA = Person("p-ana", "Ana")
TEACHER = Person("teacher", "Teacher", is_teacher=True)
MOBILENET_FILE = pretrained.imagenet_weights_file("mobilenetv2", 32).file_name  # what Keras looks for at the presets' size


@pytest.fixture(autouse=True)
def keras_folder(tmp_path, monkeypatch):
    """Keras's folder, empty: only what a test puts there exists."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(pretrained, "_cache_folders", lambda: [home / "models"])
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains
    return home / "models"


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory) -> bytes:
    """A MobileNetV2 weights file with the right layers and shapes (random numbers), as the bytes of an upload."""
    path = tmp_path_factory.mktemp("weights") / MOBILENET_FILE
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, backbone)
    return path.read_bytes()


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "lab_home")


def test_a_missing_weights_file_hides_its_presets_and_refuses_their_runs_until_it_is_provided(store, keras_folder, mobilenet_weights):
    limits = load_limits(store)
    assert not (keras_folder / MOBILENET_FILE).exists()  # the precondition: the file is missing
    assert "mobilenetv2-frozen" not in preflight.runnable_presets(limits) and "seed-cnn" in preflight.runnable_presets(limits)
    config = config_for_preset("mobilenetv2-frozen", epochs=1, subset=200)
    for person in (ANA, TEACHER):  # nobody's job may fail for a reason known now, the teacher's neither
        with pytest.raises(preflight.NotReadyError, match=f"the ImageNet weights for mobilenetv2 \\({MOBILENET_FILE}\\) are not on"):
            queue.ask_for_run(config, owner=person, store=store, classroom=True)
    assert store.list_runs() == []

    kept = preflight.install_weights_file("mobilenetv2", MOBILENET_FILE, mobilenet_weights, by=TEACHER)
    assert kept == keras_folder / MOBILENET_FILE and kept.read_bytes() == mobilenet_weights
    assert [path.name for path in keras_folder.iterdir()] == [MOBILENET_FILE]  # no half-written file left beside it
    assert "mobilenetv2-frozen" in preflight.runnable_presets(limits)
    assert queue.ask_for_run(config, owner=ANA, store=store, classroom=True).outcome == "queued"


def test_only_the_file_keras_expects_is_installed_and_only_by_the_teacher(keras_folder, mobilenet_weights, tmp_path):
    with pytest.raises(NotTheTeacherError):
        preflight.install_weights_file("mobilenetv2", MOBILENET_FILE, mobilenet_weights, by=ANA)
    with pytest.raises(preflight.WeightsFileRejected, match=f"in a file named {MOBILENET_FILE}; this one is called 'weights.h5'"):
        preflight.install_weights_file("mobilenetv2", "weights.h5", mobilenet_weights, by=TEACHER)
    with pytest.raises(preflight.WeightsFileRejected, match="is not an HDF5"):
        preflight.install_weights_file("mobilenetv2", MOBILENET_FILE, b"PK\x03\x04 a zip, a pickle, anything", by=TEACHER)
    vgg16_file = pretrained.imagenet_weights_file("vgg16").file_name
    with pytest.raises(preflight.WeightsFileRejected, match="its checksum differs"):  # checked before any network is built
        preflight.install_weights_file("vgg16", vgg16_file, preflight.HDF5_SIGNATURE + b"\0" * 100, by=TEACHER)
    other_network = tmp_path / "other.h5"
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with h5py.File(other_network, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, tiny)
    with pytest.raises(preflight.WeightsFileRejected, match="does not load as mobilenetv2 weights"):
        preflight.install_weights_file("mobilenetv2", MOBILENET_FILE, other_network.read_bytes(), by=TEACHER)
    assert not keras_folder.exists() or list(keras_folder.iterdir()) == []  # nothing refused was kept


def test_the_class_s_switch_to_weights_none_runs_the_preset_from_random_numbers(store):
    with pytest.raises(NotTheTeacherError):
        preflight.switch_weights_none(store, "vgg16", True, by=ANA)
    assert "vgg16-frozen" not in preflight.runnable_presets(load_limits(store))  # the precondition: no vgg16 file here
    preflight.switch_weights_none(store, "vgg16", True, by=TEACHER)
    limits = load_limits(store)
    assert limits.weights_none == ("vgg16",)
    assert {"vgg16-frozen", "vgg16-finetune"} <= set(preflight.runnable_presets(limits))
    request = queue.ask_for_run(config_for_preset("vgg16-frozen", epochs=1, subset=200), owner=ANA, store=store, classroom=True)
    assert store.get_run(request.run_id).config.weights == "none"
    save_limits(store, ClassLimits(max_epochs=3, weights_none=limits.weights_none), by=TEACHER)  # other limits keep the switch
    preflight.switch_weights_none(store, "vgg16", False, by=TEACHER)
    assert load_limits(store) == ClassLimits(max_epochs=3)


@pytest.mark.slow
def test_the_teacher_provides_the_file_through_the_page_and_students_are_offered_the_preset(mobilenet_weights, keras_folder):
    ana = student("Ana")
    train = open_page(session(ana), "pages/train.py")
    assert "mobilenetv2-frozen" not in train.selectbox(key="train_model").options  # the precondition: not offered
    at = open_page(as_teacher(), "pages/teacher.py")
    assert f"Keras looks for the file `{MOBILENET_FILE}`" in "\n".join(caption.value for caption in at.caption)
    at.file_uploader(key="teacher_weights_upload_mobilenetv2").set_value(("weights.h5", mobilenet_weights, "application/x-hdf5")).run()
    at.button(key="teacher_weights_install_mobilenetv2").click().run()
    assert any("in a file named" in error.value for error in at.error)  # the wrong name, said in a sentence
    assert not (keras_folder / MOBILENET_FILE).exists()
    at.file_uploader(key="teacher_weights_upload_mobilenetv2").set_value((MOBILENET_FILE, mobilenet_weights, "application/x-hdf5")).run()
    at.button(key="teacher_weights_install_mobilenetv2").click().run()
    assert not at.exception and (keras_folder / MOBILENET_FILE).is_file()
    assert any(f"ImageNet weights found, `{MOBILENET_FILE}`" in markdown.value for markdown in at.markdown)
    train = open_page(session(ana), "pages/train.py")
    assert "mobilenetv2-frozen" in train.selectbox(key="train_model").options


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_data")  # CIFAR-10 on the server, so that Start can be enabled
def test_the_teacher_switches_a_backbone_to_none_on_the_page():
    at = open_page(as_teacher(), "pages/teacher.py")
    at.toggle(key="teacher_weights_none_resnet50").set_value(True).run()
    assert not at.exception
    assert load_limits(Store()).weights_none == ("resnet50",)
    assert "starts from random numbers" in "\n".join(caption.value for caption in at.caption)
    train = open_page(session(student("Ana")), "pages/train.py")
    assert "resnet50-frozen" in train.selectbox(key="train_model").options
    train.selectbox(key="train_model").set_value("resnet50-frozen").run()
    assert train.selectbox(key="train_weights").value == "none" and not train.button(key="trainbtn_start").disabled


def test_resuming_a_run_whose_weights_file_went_away_is_refused_before_it_is_queued(store):
    import os

    from lab.train import checkpoints
    from tests.test_resume import _checkpoint

    run_id = store.create_run(config_for_preset("mobilenetv2-frozen", epochs=2, subset=200), owner=ANA)
    store.claim_next_queued(os.getpid())
    store.set_status(run_id, "failed", "interrupted")
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    assert resume.can_resume(run_id, store, by=ANA)  # the precondition: resumable, but its ImageNet file is not here
    with pytest.raises(preflight.NotReadyError, match="are not on this server"):
        resume.resume(run_id, store, by=ANA, classroom=True)
    assert store.get_run(run_id).status is Status.FAILED
