"""Connections (psycopg 3), the migration runner and the embedded Postgres."""
