"""The state store's schema migrations (alembic; version table ``ds_alembic_version``).

``env.py`` runs the revisions in ``versions/`` over the connection ``sync_assets.state`` hands it
(``_migrate``); there is no ``alembic.ini``. A package, like ``versions``, so that the scripts ship
in the wheel with the code that reads them.
"""
