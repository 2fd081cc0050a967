"""``practiceplan serve``: a self-hostable sync server speaking the Mirubato diff format, with practiceplan's
extensions (incremental pull with tombstones, conditional push, idempotency that fails closed, roles).

Layers: ``protocol`` (pure wire rules), ``db`` (SQLAlchemy Core tables, engines, migrations, transactions),
``users`` (accounts and tokens), ``service`` (the endpoints' logic), ``app`` (Starlette: auth, limits, logs),
``run`` (uvicorn) and ``backup``. Nothing here imports typer, rich or the client's services; the CLI
(``practiceplan.cli.server``) imports this package lazily, so ``practiceplan today`` never loads SQLAlchemy.
"""
