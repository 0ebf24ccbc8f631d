"""The text alternatives the app builds: pictures' alt texts (ui/pictures.py) and charts' summaries and tables (ui/charts.py)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lab.report.charts import history_frame
from ui.charts import confusion_summary, confusion_table, curves_summary, curves_table
from ui.pictures import pictures_html


def test_each_picture_gets_its_alt_text_and_caption_and_its_own_pixels():
    pictures = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    pictures[1, :, :, 0] = 255  # the second one red
    html = pictures_html(pictures, ['A cat, "fluffy" <3', "A red square"], ["#1", "#2"], width=96)
    assert re.findall(r'alt="([^"]*)"', html) == ["A cat, &quot;fluffy&quot; &lt;3", "A red square"]  # escaped, never raw HTML
    assert re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", html) == ["#1", "#2"]
    second = re.findall(r'src="data:image/png;base64,([^"]+)"', html)[1]
    image = Image.open(io.BytesIO(base64.b64decode(second)))
    assert image.size == (32, 32) and image.getpixel((5, 5)) == (255, 0, 0)  # the small original: the browser enlarges it
    assert "image-rendering:pixelated" in html and "flex-wrap:wrap" in html  # sharp pixels; rows wrap on a phone


def test_a_picture_without_an_alt_text_is_refused():
    with pytest.raises(ValueError, match="alt texts"):
        pictures_html(np.zeros((3, 8, 8, 3), dtype=np.uint8), ["one", "two"])


def test_the_confusion_matrix_in_words_and_as_a_table():
    matrix = [[8, 2, 0], [5, 4, 1], [0, 0, 10]]
    words = confusion_summary(matrix, ["cat", "dog", "ship"])
    assert "22 of 30 test images on the diagonal" in words
    assert "5 dog images called cat" in words  # the commonest mistake
    table = confusion_table(matrix, ["cat", "dog", "ship"])
    assert table.iloc[:, 0].tolist() == ["cat", "dog", "ship"] and table["cat"].tolist() == [8, 5, 0]


def test_learning_curves_in_words_and_as_a_table():
    frame = history_frame({"accuracy": [0.2, 0.5], "val_accuracy": [0.25, 0.45], "loss": [2.0, 1.2], "val_loss": [1.9, 1.4]})
    words = curves_summary(frame, "accuracy")
    assert "train: 20% at epoch 1, 50% at epoch 2" in words and "validation: 25% at epoch 1, 45% at epoch 2" in words
    table = curves_table(frame, "loss")
    assert table["epoch"].tolist() == [1, 2] and table["validation"].tolist() == [1.9, 1.4]
    assert curves_summary(frame.iloc[0:0], "loss") == "No loss recorded yet."


def test_no_page_draws_a_picture_without_its_text_alternative():
    """st.image cannot carry alt text (docs/DECISIONS.md): every picture goes through ui/pictures.py instead."""
    root = Path(__file__).resolve().parent.parent
    sources = [root / "streamlit_app.py", *sorted((root / "ui").glob("*.py")), *sorted((root / "pages").glob("*.py"))]
    assert any("show_picture" in path.read_text() for path in sources)  # precondition: the pictures are drawn somewhere here
    with_st_image = [path.name for path in sources if re.search(r"\bst\.image\(|\.image\(", path.read_text())]
    assert with_st_image == [], f"draw pictures with ui.pictures.show_pictures (it carries alt text), not st.image: {with_st_image}"
