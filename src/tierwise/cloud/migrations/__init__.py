"""Alembic's script directory for the cloud database: `env.py` and one file per revision.

Run by `tierwise.cloud.migrate`, never by the `alembic` command line (there is no
alembic.ini): the service migrates at start, under a lock, on the connection it opened.
"""
