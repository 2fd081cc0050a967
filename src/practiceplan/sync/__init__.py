"""Sync with a Mirubato-compatible server: the HTTP client (``client.py``, the only module that imports httpx)
and the token store (``credentials.py``). The engine that decides what to push and pull builds on them."""
