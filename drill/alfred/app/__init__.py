"""Alfred, the LLM gateway of the drill: a Python port of drill/src (roles api, worker, proxy).

The working directory of every role is the folder above this package (``/app`` in the containers), so
``alfred -c src/backend/config/alembic.ini …`` and ``python -c "from app.wallet_reset import …"`` work
as the playbooks write them.
"""
