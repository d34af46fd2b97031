"""ERT.py driven through Streamlit's AppTest: the real page, model and index."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _app() -> AppTest:
    at = AppTest.from_file(str(REPO / "ERT.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="max_new_tokens_cpu").set_value(40)
    at.slider[0].set_value(0.0)  # temperature: greedy, reproducible
    return at.run()


def _assistant_text(at: AppTest) -> str:
    return "\n".join(m.markdown[0].value for m in at.chat_message if m.name == "assistant"
                     and len(m.markdown))


def test_chat_round_trip_answers_paris():
    at = _app()
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert "Paris" in _assistant_text(at)
    assert any("No document context" in c.value for c in at.caption)


def test_upload_then_answer_cites_the_uploaded_file():
    at = _app()
    at.selectbox(key="collection_name").set_value("default")
    at.file_uploader[0].set_value(
        ("lab-notes.md", b"The ERT test lab is in Grenoble. Its director is Amandine Roux.",
         "text/markdown")).run()
    assert not at.exception, at.exception
    assert any("lab-notes.md" in c.value for c in at.sidebar.caption)
    at.chat_input[0].set_value("Who is the director of the ERT test lab?").run()
    assert not at.exception, at.exception
    sources = [e for e in at.expander if e.label.startswith("Sources")]
    assert sources, "the answer shows no sources"
    assert "lab-notes.md" in sources[-1].markdown[0].value


def test_bad_upload_gets_a_clear_message_and_breaks_nothing():
    at = _app()
    at.file_uploader[0].set_value(("fake.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
                                   "application/pdf")).run()
    assert not at.exception, at.exception
    assert any("not a PDF" in e.value for e in at.sidebar.error)
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert "Paris" in _assistant_text(at)


def test_gpu_toggle_is_disabled_without_cuda():
    at = _app()
    toggle = at.toggle(key="gpu_toggle_widget")
    assert toggle.disabled
    assert toggle.value is False
    assert any("GPU mode off" in c.value for c in at.sidebar.caption)
