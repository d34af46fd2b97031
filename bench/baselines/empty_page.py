"""The page-open benchmark's floor: a page that only writes a title (bench/page_open.py)."""

import streamlit as st

st.title("Empty page")
