"""Streamlit-side helpers shared by ERT.py and pages/: cached resources and the sidebar.

Only drawing and caching live here; every decision is made in ``core``.
"""
