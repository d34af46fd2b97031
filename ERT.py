"""ERT — chat with a local LLM over your own documents (entry page, port 8508)."""

import core  # noqa: F401  (caps CPU threads before torch/transformers load)
from core.chat import DocumentOptions, finish_turn, prepare_turn, stream_answer
from core.conversations import (
    SESSION_PARAM,
    Conversation,
    clear_conversation,
    load_conversation,
    new_session_id,
    save_conversation,
    valid_session_id,
)
from core.hub import ModelUnavailableError
from core.llm.generate import (
    GenerationOptions,
    GenerationStats,
    default_max_new_tokens,
)
from core.llm.loader import first_use_note
from core.phrasing import plural
from core.rag.documents import MAX_DOCUMENT_BYTES
from core.rag.ingest import ingest
from core.rag.store import CollectionError, check_name, list_collections

import threading

import streamlit as st

from ui.common import (
    gpu_toggle,
    llm_registry,
    shared_collection,
    shared_embeddings,
    shared_llm,
    show_model_error,
    thread_info,
)

st.set_page_config(page_title="ERT — local chat", page_icon=":material/chat:", layout="wide")
state = st.session_state
state.setdefault("ingested", set())
PLAIN_CHAT = "No documents: the model alone"  # the collection list's first choice, always there

# The conversation survives a reload: its id rides in the URL, its messages on disk.
session_id = st.query_params.get(SESSION_PARAM)
if not valid_session_id(session_id):  # a first visit, or back from another page (no query)
    session_id = state.get("session_id") or new_session_id()
    st.query_params[SESSION_PARAM] = session_id
if state.get("session_id") != session_id:
    state.session_id = session_id
    saved_conversation = load_conversation(session_id)
    state.messages = saved_conversation.messages
    if saved_conversation.collection:
        state.collection_name = saved_conversation.collection  # checked against the list below


def remember() -> None:
    """Write the conversation and its collection after each change, so a reload finds them."""
    save_conversation(state.session_id,
                      Conversation(state.messages, state.get("collection_name")))


# ---------------------------------------------------------------- sidebar
registry = llm_registry()
st.sidebar.title("ERT")
model_key = st.sidebar.selectbox(
    "Chat model", list(registry.models), index=list(registry.models).index(registry.default),
    format_func=lambda k: registry.models[k].display)
device = gpu_toggle()
with st.sidebar.expander("Generation", expanded=False):
    max_new_tokens = st.number_input(
        "max_new_tokens", 16, 4096, default_max_new_tokens(device), step=16,
        key=f"max_new_tokens_{device}")
    temperature = st.slider("temperature", 0.0, 1.5, 0.3, 0.05)
    top_p = st.slider("top_p", 0.05, 1.0, 0.9, 0.05)
    st.caption(f"For the chat without documents. Document answers are greedy, at most "
               f"{DocumentOptions().max_new_tokens} tokens, checked against the documents.")
thread_info()

st.sidebar.subheader("Documents")


def create_collection() -> None:
    """Create the named collection, switch to it and close the popover."""
    try:
        name = check_name(state.get("new_collection_name", ""))
    except CollectionError as exc:
        state.collection_error = str(exc)
        return
    shared_collection(name).save()
    state.collection_name = name
    state.new_collection_name = ""
    state.new_collection_popover = False
    remember()


def delete_collection(name: str) -> None:
    """Delete a collection (confirmed in its popover) and go back to the plain chat."""
    shared_collection(name).delete()
    state.collection_name = PLAIN_CHAT
    state.delete_collection_popover = False
    remember()


saved = list_collections()
names = saved or ["default"]  # "default" is created by its first upload
if state.get("collection_name") not in [PLAIN_CHAT, *names]:
    state.collection_name = names[0]
collection_name = st.sidebar.selectbox(
    "Collection", [PLAIN_CHAT, *names], key="collection_name", on_change=remember,
    help="The plain chat answers from the model alone; a collection, from its documents.")
collection = None if collection_name == PLAIN_CHAT else shared_collection(collection_name)
with st.sidebar.popover("New collection", key="new_collection_popover", on_change="rerun",
                        width="stretch"):
    st.text_input("Name", key="new_collection_name")
    st.button("Create", key="create_collection", on_click=create_collection)
    if state.get("collection_error"):
        st.error(state.pop("collection_error"))
with st.sidebar.popover("Delete collection", key="delete_collection_popover", on_change="rerun",
                        width="stretch", disabled=collection_name not in saved):
    if collection is not None:
        st.caption(f"Delete “{collection_name}” and its "
                   f"{plural(len(collection.documents()), 'document')}? This cannot be undone.")
    st.button("Delete", key="confirm_delete_collection", type="primary",
              on_click=delete_collection, args=(collection_name,))
if collection is None:
    st.sidebar.caption("The model answers from itself. Choose or create a collection to "
                       "add documents.")
else:
    uploads = st.sidebar.file_uploader(
        "Add .txt, .md or .pdf", type=["txt", "md", "pdf"], accept_multiple_files=True,
        help=f"At most {MAX_DOCUMENT_BYTES // 2**20} MB per file.")
    new = [u for u in uploads or [] if (collection_name, u.file_id) not in state.ingested]
    if new:  # the next file is read while this one is embedded; a bar with chunks/s, time left
        state.ingested.update((collection_name, u.file_id) for u in new)
        bar = st.sidebar.progress(0.0, text=f"Indexing {plural(len(new), 'file')}…")
        result = ingest(collection, [(u.name, u.getvalue, u.size) for u in new],
                        shared_embeddings(),
                        on_progress=lambda p: bar.progress(p.fraction, text=p.describe()))
        bar.empty()
        if result.added:
            st.sidebar.success(f"{plural(result.chunks, 'chunk')} indexed from "
                               f"{plural(len(result.added), 'file')} in {result.seconds:.0f} s")
        for error in result.errors:
            st.sidebar.error(error)
    docs = collection.documents()
    if docs:
        for name, count in docs.items():
            cols = st.sidebar.columns([4, 1])
            cols[0].caption(f"{name} · {plural(count, 'chunk')}")
            if cols[1].button("✕", key=f"del_{collection_name}_{name}", help=f"Remove {name}"):
                collection.remove_document(name)
                collection.save()
                st.rerun()
    else:
        st.sidebar.caption("No documents yet: the chat answers from the model alone.")
if st.sidebar.button("Clear conversation",
                     help="Also forgets it on disk: a reload then starts afresh."):
    state.messages = []
    clear_conversation(state.session_id)
    st.rerun()

# ---------------------------------------------------------------- chat
st.title("Chat with your documents")
st.caption(f"{registry.models[model_key].display} · {device.upper()} · " + (
    "no documents" if collection is None
    else f"collection “{collection_name}” ({plural(len(collection), 'chunk')})"))


def show_evidence(evidence: list[dict], label: str = "Evidence") -> None:
    """The supporting sentences, verbatim and as plain text, above the answer."""
    if not evidence:
        return
    with st.expander(f"{label} ({len(evidence)})", expanded=True):
        for item in evidence:
            st.caption(f"{item['file']} · chunk {item['chunk']} · score {item['score']:.2f}")
            st.text(item["sentence"])


def show_sources(sources: list[dict]) -> None:
    if not sources:
        return
    with st.expander(f"Sources ({len(sources)})"):
        for src in sources:
            st.caption(f"{src['file']} · chunk {src['chunk']} · score {src['score']:.2f}")
            st.text(src["excerpt"])


def show_message(message: dict) -> None:
    if message.get("note"):
        st.caption(message["note"])
    if message.get("searched_as"):
        st.caption(f"Searched as: {message['searched_as']}")
    show_evidence(message.get("evidence", []))
    st.markdown(message["content"])
    if message.get("draft"):
        st.caption(f"The model answered “{message['draft']}”, which the documents do not "
                   f"support ({message.get('grounding') or 'not found in them'}).")
    show_sources(message.get("sources", []))
    if message.get("meta"):
        st.caption(message["meta"])


# A stop click reruns the script mid-stream; keep what was already written.
if state.get("partial") is not None:
    partial = state.pop("partial")
    state.messages.append({"role": "assistant", "content": partial["text"] + " …(stopped)",
                           "evidence": partial["evidence"], "note": partial.get("note")})
    remember()
    if state.get("stop_event") is not None:
        state.stop_event.set()

for message in state.messages:
    with st.chat_message(message["role"]):
        show_message(message)

question = st.chat_input("Ask the model…" if collection is None
                         else "Ask a question about your documents…")
if question:
    history = [{"role": m["role"], "content": m["content"]} for m in state.messages]
    state.messages.append({"role": "user", "content": question})
    remember()
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        embedder = shared_embeddings() if collection is not None and len(collection) else None
        options = GenerationOptions(max_new_tokens=int(max_new_tokens),
                                    temperature=float(temperature), top_p=float(top_p))
        turn = prepare_turn(question, collection, embedder, history, chat_options=options)
        if turn.note:
            st.caption(turn.note)
        searched_as = turn.standalone if turn.standalone != question else None
        if searched_as:
            st.caption(f"Searched as: {searched_as}")
        evidence = [e.as_dict() for e in turn.evidence]
        show_evidence(evidence, "Evidence read by the model")
        try:
            with st.spinner(first_use_note(registry.models[model_key], device)
                            or "Loading the model…"):
                llm = shared_llm(model_key, device)
        except ModelUnavailableError as exc:
            show_model_error(exc)
            state.messages.append({"role": "assistant", "content": f"⚠ {exc}"})
            remember()
            st.stop()
        stop_event = threading.Event()
        state.stop_event = stop_event
        st.button("Stop", icon=":material/stop:", key="stop_generation")
        stats = GenerationStats()
        state.partial = {"text": "", "evidence": evidence, "note": turn.note}

        def pieces():
            for piece in stream_answer(llm, turn, stop=stop_event, stats=stats):
                state.partial["text"] += piece
                yield piece

        try:
            streamed = st.write_stream(pieces())
        except RuntimeError as exc:
            state.pop("partial", None)
            st.error(str(exc))
            st.stop()
        state.pop("partial", None)
        answer = finish_turn(turn, streamed if isinstance(streamed, str)
                             else "".join(map(str, streamed)), embedder)
    meta = (f"{plural(stats.new_tokens, 'token')} · {stats.tokens_per_second:.1f} tok/s"
            + (f" · stopped: {answer.stop_reason}" if answer.stop_reason else "")
            + (f" · waited {stats.waited_seconds:.1f} s for another session"
               if stats.waited_seconds > 0.5 else ""))
    state.messages.append({
        "role": "assistant", "content": answer.answer, "note": turn.note, "meta": meta,
        "searched_as": searched_as,
        "evidence": [e.as_dict() for e in answer.evidence],
        "sources": [{**s.as_dict(), "excerpt": s.excerpt} for s in answer.sources],
        "draft": answer.draft, "grounding": answer.grounding})
    remember()
    st.rerun()
