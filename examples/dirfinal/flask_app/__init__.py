"""The old application: a Flask phone-directory site (Flask-SQLAlchemy on SQLite)."""
