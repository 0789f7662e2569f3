"""A small local Azure Functions host for this project's Python (v2 model) function app.

Azure Functions Core Tools cannot be installed here, so ``devhost`` hosts the app itself: it
indexes ``function_app.py`` like the Python worker does, serves HTTP triggers with aiohttp, runs
queue triggers against Azurite with the Storage Queues extension's algorithm, fires timers and
issues development tokens.

    python -m devhost --azurite            # Azurite in memory + the app on http://127.0.0.1:7071
    python -m devhost token --scopes S     # a token the app accepts (JWKS at /.devhost/keys)

From Python: ``async with DevHost(port=0) as host: ... host.base_url ...``.
"""
