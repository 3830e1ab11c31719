"""SQL storage: tables, the async engine, migrations and repository functions."""
