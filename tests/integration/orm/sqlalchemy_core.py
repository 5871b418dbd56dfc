"""SQLAlchemy 1.4 Core against ha's PostgreSQL wire (psycopg2): create_all, insert with
RETURNING of generated ids, select, reflection. Prints one JSON line with what it saw."""
import datetime
import json
import sys

from sqlalchemy import (Boolean, Column, DateTime, ForeignKey, Integer, MetaData, String, Table,
                        create_engine, func, inspect, select, text)

url = sys.argv[1]
engine = create_engine(url, future=True)
meta = MetaData()
users = Table(
    "sa_users", meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
    Column("active", Boolean, server_default=text("true")),
    Column("created", DateTime, server_default=func.now()),
)
posts = Table(
    "sa_posts", meta,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("sa_users.id"), index=True),
    Column("title", String(200)),
)
meta.create_all(engine)
meta.create_all(engine)  # second time: every table exists, nothing to do

out = {}
with engine.begin() as conn:
    r = conn.execute(users.insert().returning(users.c.id), [{"name": "ann"}])
    ann = r.scalar_one()
    r = conn.execute(users.insert().values(name="bob", active=False))
    bob = r.inserted_primary_key[0]
    conn.execute(posts.insert(), [{"user_id": ann, "title": "hello"}, {"user_id": bob, "title": "x"}])
    out["ids"] = [ann, bob]
with engine.connect() as conn:
    rows = conn.execute(
        select(users.c.name, users.c.active, users.c.created, posts.c.title)
        .join(posts, posts.c.user_id == users.c.id).order_by(users.c.name)).all()
    out["rows"] = [[r[0], r[1], isinstance(r[2], (datetime.datetime, str)), r[3]] for r in rows]

insp = inspect(engine)
out["tables"] = sorted(insp.get_table_names())
out["views"] = insp.get_view_names()
out["columns"] = [[c["name"], str(c["type"]), c["nullable"]] for c in insp.get_columns("sa_users")]
out["pk"] = insp.get_pk_constraint("sa_users")["constrained_columns"]
out["fks"] = [[f["constrained_columns"], f["referred_table"], f["referred_columns"]]
              for f in insp.get_foreign_keys("sa_posts")]
out["indexes"] = [[i["name"], i["column_names"], bool(i["unique"])] for i in insp.get_indexes("sa_posts")]
reflected = MetaData()
reflected.reflect(engine, only=["sa_users", "sa_posts"])
out["reflected"] = sorted(reflected.tables)
meta.drop_all(engine)
out["after_drop"] = sorted(inspect(engine).get_table_names())
print(json.dumps(out, default=str))
