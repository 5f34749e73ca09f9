-- 0004: the audit trail. One row per mutating call of the API or the dashboard (pause,
-- resume, manual action, approval): who made it (the token's id, never the token, and the
-- client's address), through what (api|ui), on what, why, and what came of it.
CREATE TABLE audit (
	id     TEXT PRIMARY KEY,
	at_ns  BIGINT NOT NULL,
	who    TEXT NOT NULL,
	remote TEXT NOT NULL,
	via    TEXT NOT NULL,
	op     TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL,
	why    TEXT NOT NULL,
	result TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ns);
