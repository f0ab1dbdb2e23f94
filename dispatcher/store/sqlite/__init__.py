"""The SQLite backend: `SQLiteStore`, its queries and its migrations."""
