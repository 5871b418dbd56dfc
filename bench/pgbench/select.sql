-- point select by primary key (pgbench custom script)
\set aid random(1, :rows)
SELECT abalance FROM accounts WHERE aid = :aid;
