"""The Flask app's models, as the real site has them: users with Werkzeug password hashes, directory
entries with photos awaiting approval, families and their members, and scores."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


def create_app(database_path: str) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database_path}"
    db.init_app(app)
    return app


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), unique=True, nullable=False)
    email = db.Column(db.String(120), nullable=False)
    password_hash = db.Column(db.String(255))
    active = db.Column(db.Integer, default=1)  # SQLite has no booleans: 0/1
    is_admin = db.Column(db.Integer, default=0)
    created_at = db.Column(db.DateTime, default=datetime.utcnow)  # naive, in UTC
    updated_at = db.Column(db.DateTime, default=datetime.utcnow, onupdate=datetime.utcnow)


class Entry(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "entry"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)
    phone = db.Column(db.String(40), nullable=False)
    email = db.Column(db.String(120))
    photo = db.Column(db.String(255))  # path under static/photos
    approved = db.Column(db.Integer, default=0)
    owner_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, default=datetime.utcnow)
    updated_at = db.Column(db.DateTime, default=datetime.utcnow, onupdate=datetime.utcnow)


class Family(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "family"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)


class FamilyMember(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "family_member"
    id = db.Column(db.Integer, primary_key=True)
    family_id = db.Column(db.Integer, db.ForeignKey("family.id"), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    relation = db.Column(db.String(40), nullable=False)


class Score(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "score"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    points = db.Column(db.Integer, nullable=False)
    reason = db.Column(db.String(120))
    created_at = db.Column(db.DateTime, default=datetime.utcnow)
