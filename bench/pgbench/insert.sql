-- single-row insert (pgbench custom script)
\set aid random(1, :rows)
\set delta random(-5000, 5000)
INSERT INTO history(aid, delta) VALUES (:aid, :delta);
