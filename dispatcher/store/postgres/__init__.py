"""The PostgreSQL backend: `PostgresStore`, its queries and its migrations."""
