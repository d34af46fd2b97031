"""The chat in a real browser against a real server, as a user would use it."""

import pytest
from playwright.sync_api import expect

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


PLAIN_CHAT = "No documents: the model alone"


def _choose_collection(page, name: str) -> None:
    page.get_by_role("combobox", name="Collection").click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(page.get_by_role("combobox", name="Collection")).to_have_value(name)


def test_plain_chat_stays_beside_collections_and_a_reload_keeps_the_conversation(
        artifacts_dir, tmp_path):
    doc = tmp_path / "lab-notes.md"
    doc.write_text("# Lab notes\n\nThe ERT test lab is in Grenoble. Its director is Amandine Roux.")
    home = tmp_path / "home"
    with streamlit_server(env={"ERT_HOME": str(home)}, log=artifacts_dir / "server-plain.log") \
            as url, chromium_page() as page:
        page.goto(url)
        page.get_by_text("Chat with your documents").wait_for(timeout=60_000)
        page.get_by_role("button", name="New collection").click()
        name = page.get_by_label("Name")
        name.fill("notes")
        name.press("Enter")
        page.get_by_role("button", name="Create", exact=True).click()
        name.wait_for(state="hidden", timeout=30_000)  # the popover closed
        expect(page.get_by_role("combobox", name="Collection")).to_have_value("notes")
        page.locator("input[type=file]").set_input_files(str(doc))
        page.get_by_text("lab-notes.md · 1 chunk").wait_for(timeout=120_000)

        _choose_collection(page, PLAIN_CHAT)  # still there beside "notes"
        page.get_by_text("The model answers from itself").wait_for(timeout=30_000)
        page.get_by_test_id("stChatInputTextArea").fill("What is the capital of Australia?")
        page.keyboard.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        answer.get_by_text("tok/s").wait_for(timeout=240_000)
        assert "documents do not say" not in answer.inner_text()
        assert "No document context" not in answer.inner_text()

        page.reload()
        kept = page.get_by_test_id("stChatMessage")
        kept.nth(1).get_by_text("tok/s").wait_for(timeout=60_000)
        assert "What is the capital of Australia?" in kept.nth(0).inner_text()
        expect(page.get_by_role("combobox", name="Collection")).to_have_value(PLAIN_CHAT)
        page.screenshot(path=str(artifacts_dir / "chat-plain-reloaded.png"), full_page=True)

        _choose_collection(page, "notes")
        page.get_by_role("button", name="Delete collection").click()
        page.get_by_role("button", name="Delete", exact=True).click()
        page.get_by_text("The model answers from itself").wait_for(timeout=30_000)
        expect(page.get_by_role("combobox", name="Collection")).to_have_value(PLAIN_CHAT)
        page.get_by_role("combobox", name="Collection").click()
        options = page.get_by_role("option").all_inner_texts()
        assert PLAIN_CHAT in options and "notes" not in options
        assert not (home / "collections" / "notes").exists()
        assert page.get_by_test_id("stException").count() == 0
