"""The chat in a real browser against a real server, as a user would use it."""

import pytest

from tests.browser import chromium_page, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_browser_chat_answers_paris_and_upload_is_cited(artifacts_dir, tmp_path):
    doc = tmp_path / "lab-notes.md"
    doc.write_text("# Lab notes\n\nThe ERT test lab is in Grenoble. Its director is Amandine Roux.")
    home = tmp_path / "home"  # its own collections: the uploaded file must not leak into others
    with streamlit_server(env={"ERT_HOME": str(home)}, log=artifacts_dir / "server-chat.log") \
            as url, chromium_page() as page:
        page.goto(url)
        page.get_by_text("Chat with your documents").wait_for(timeout=60_000)
        page.get_by_test_id("stChatInputTextArea").fill("What is the capital of France?")
        page.keyboard.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        answer.get_by_text("tok/s").wait_for(timeout=240_000)
        assert "Paris" in answer.inner_text()
        page.screenshot(path=str(artifacts_dir / "chat.png"), full_page=True)

        page.locator("input[type=file]").set_input_files(str(doc))
        page.get_by_text("lab-notes.md · 1 chunk").wait_for(timeout=120_000)  # heading + text
        page.get_by_test_id("stChatInputTextArea").fill("Who is the director of the ERT test lab?")
        page.keyboard.press("Enter")
        second = page.get_by_test_id("stChatMessage").nth(3)
        second.get_by_text("tok/s").wait_for(timeout=240_000)
        assert second.inner_text().count("Amandine Roux") >= 2  # the evidence and the answer
        evidence = second.get_by_test_id("stExpander").filter(has_text="Evidence (")
        assert "Its director is Amandine Roux." in evidence.inner_text()
        second.get_by_text("Sources (").click()
        assert "lab-notes.md" in second.inner_text()
        # excerpts are plain text: the markdown heading is not drawn as a title
        assert second.locator("h1").count() == 0
        page.screenshot(path=str(artifacts_dir / "chat-rag.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0
