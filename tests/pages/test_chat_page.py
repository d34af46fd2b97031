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


LAB_NOTES = (b"# Lab notes\n\nThe ERT test lab is in Grenoble. Its director is Amandine Roux. "
             b"The lab has four rooms.")


def _expander(at: AppTest, prefix: str):
    found = [e for e in at.expander if e.label.startswith(prefix)]
    assert found, f"no {prefix!r} box; boxes: {[e.label for e in at.expander]}"
    return found[-1]


def test_upload_then_answer_quotes_the_evidence_and_cites_the_file():
    at = _app()
    at.selectbox(key="collection_name").set_value("default")
    at.file_uploader[0].set_value(("lab-notes.md", LAB_NOTES, "text/markdown")).run()
    assert not at.exception, at.exception
    assert any("lab-notes.md" in c.value for c in at.sidebar.caption)
    at.chat_input[0].set_value("Who is the director of the ERT test lab?").run()
    assert not at.exception, at.exception
    assert "Amandine Roux" in _assistant_text(at)
    evidence = _expander(at, "Evidence")
    assert "Its director is Amandine Roux." in [t.value for t in evidence.text]
    assert "lab-notes.md · chunk 0 · score" in evidence.caption[0].value
    sources = _expander(at, "Sources")
    assert "lab-notes.md" in sources.caption[0].value
    excerpt = sources.text[0].value  # plain text: the heading is a line, not a big title
    assert excerpt.startswith("Lab notes\nThe ERT test lab is in Grenoble.")
    assert not any(m.value.lstrip().startswith("#") for m in sources.markdown)

    at.chat_input[0].set_value("And where is it?").run()  # a follow-up, made standalone
    assert not at.exception, at.exception
    assert any("Searched as: Where is the ERT test lab?" in c.value for c in at.caption)
    assert "Grenoble" in at.chat_message[-1].markdown[-1].value + _assistant_text(at)

    at.chat_input[0].set_value("What is the Wi-Fi password of the lab?").run()
    assert not at.exception, at.exception
    last = at.chat_message[-1]
    assert any(m.value == "The documents do not say." for m in last.markdown)

    at.button(key="del_default_lab-notes.md").click().run()  # leaves the collection empty
    assert any("No documents yet" in c.value for c in at.sidebar.caption)


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
