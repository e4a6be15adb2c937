"""Write a realistic directory into a new SQLite database through the Flask models.

``python -m examples.dirfinal.flask_app.seed PATH [USERS]``: users with pbkdf2 and scrypt hashes
(password "pw-<username>"), entries with photos, families, scores.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta

from werkzeug.security import generate_password_hash

from examples.dirfinal.flask_app.models import Entry, Family, FamilyMember, Score, User, create_app, db

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena"]
LAST = ["Novak", "Okafor", "Petrov", "Quist", "Rossi", "Sato", "Tanaka", "Ulloa", "Varga", "Weiss"]


def seed(path: str, users: int = 40, rng: random.Random | None = None) -> None:
    rng = rng or random.Random(7)
    app = create_app(path)
    start = datetime(2024, 1, 1, 9, 0, 0)
    with app.app_context():
        db.create_all()
        for i in range(1, users + 1):
            name = f"{rng.choice(FIRST).lower()}{i}"
            method = "scrypt" if i % 3 == 0 else "pbkdf2:sha256:1000"
            db.session.add(User(id=i, username=name, email=f"{name}@Example.org", is_admin=int(i == 1),
                                password_hash=generate_password_hash(f"pw-{name}", method=method),
                                active=int(i % 10 != 0), created_at=start + timedelta(days=i),
                                updated_at=start + timedelta(days=i)))
        for i in range(1, users * 2 + 1):
            db.session.add(Entry(id=i, name=f"{rng.choice(FIRST)} {rng.choice(LAST)}", phone=f"+1-555-{1000 + i}",
                                 email=None if i % 4 == 0 else f"entry{i}@example.org",
                                 photo=f"photos/{i}.jpg" if i % 2 else None, approved=int(i % 3 != 0),
                                 owner_id=(i % users) + 1, created_at=start + timedelta(hours=i),
                                 updated_at=start + timedelta(hours=i)))
        for f in range(1, users // 4 + 1):
            db.session.add(Family(id=f, name=f"{rng.choice(LAST)} family"))
        member = 0
        for f in range(1, users // 4 + 1):
            for relation in ("parent", "child"):
                member += 1
                db.session.add(FamilyMember(id=member, family_id=f, user_id=rng.randint(1, users), relation=relation))
        for s in range(1, users * 3 + 1):
            db.session.add(Score(id=s, user_id=rng.randint(1, users), points=rng.randint(1, 50),
                                 reason=rng.choice(["entry approved", "photo", "family tree"]),
                                 created_at=start + timedelta(minutes=s)))
        db.session.commit()


if __name__ == "__main__":
    seed(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40)
