"""Storage: the schema, migrations, and the repositories (the only place SQL lives)."""
