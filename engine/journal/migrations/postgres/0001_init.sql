-- 0001: the journal's tables. Times are Unix nanoseconds (0 = not yet), so that both backends
-- round-trip them exactly; booleans are BOOLEAN.

-- Facts documents, gzip-compressed JSON, stored once per content hash (sha256 of the document
-- without its tick number and time, which the referencing tick row holds).
CREATE TABLE facts (
	hash TEXT PRIMARY KEY,
	gz   BYTEA NOT NULL,
	size BIGINT NOT NULL -- uncompressed bytes
);

-- One row per tick. run_id tells apart the runs of ARES: tick numbers restart at 1 each run.
CREATE TABLE ticks (
	run_id      TEXT NOT NULL,
	tick        BIGINT NOT NULL,
	at_ns       BIGINT NOT NULL,
	triggered_by TEXT NOT NULL,
	dry_run     BOOLEAN NOT NULL,
	policy_rev  TEXT NOT NULL,
	facts_hash  TEXT NOT NULL,
	rejected    TEXT NOT NULL, -- JSON array of engine.RejectedDecision
	error       TEXT NOT NULL,
	duration_ns BIGINT NOT NULL,
	PRIMARY KEY (run_id, tick)
);
CREATE INDEX ticks_at ON ticks (at_ns);

-- The decision log: OPA's decision-log fields (decision_id, path, input as a facts reference,
-- result, timestamp, revision) extended with the governor's verdict and the outcome.
CREATE TABLE decisions (
	decision_id         TEXT PRIMARY KEY,
	run_id              TEXT NOT NULL,
	tick                BIGINT NOT NULL,
	ts_ns               BIGINT NOT NULL,
	path                TEXT NOT NULL,
	revision            TEXT NOT NULL,
	input               TEXT NOT NULL, -- facts.hash
	result              TEXT NOT NULL, -- the decision as JSON
	service             TEXT NOT NULL,
	replica             TEXT NOT NULL,
	action              TEXT NOT NULL,
	reason              TEXT NOT NULL,
	verdict             TEXT NOT NULL,
	why                 TEXT NOT NULL,
	intent_id           TEXT NOT NULL,
	outcome_result      TEXT NOT NULL,
	outcome_error       TEXT NOT NULL,
	outcome_detail      TEXT NOT NULL,
	outcome_duration_ns BIGINT NOT NULL
);
CREATE INDEX decisions_ts ON decisions (ts_ns);
CREATE INDEX decisions_tick ON decisions (run_id, tick);
CREATE INDEX decisions_intent ON decisions (intent_id);

-- Each admitted action's intent, written before the actuator runs; the outcome columns are
-- filled after it (done_ns > 0). An intent with done_ns = 0 at start-up was interrupted.
CREATE TABLE intents (
	id                  TEXT PRIMARY KEY,
	run_id              TEXT NOT NULL,
	tick                BIGINT NOT NULL,
	at_ns               BIGINT NOT NULL,
	service             TEXT NOT NULL,
	replica             TEXT NOT NULL,
	action              TEXT NOT NULL,
	reason              TEXT NOT NULL,
	verdict             TEXT NOT NULL,
	sensed_id           TEXT NOT NULL,
	sensed_state        TEXT NOT NULL,
	done_ns             BIGINT NOT NULL,
	outcome_result      TEXT NOT NULL,
	outcome_error       TEXT NOT NULL,
	outcome_detail      TEXT NOT NULL,
	outcome_duration_ns BIGINT NOT NULL,
	reconciled          BOOLEAN NOT NULL
);
CREATE INDEX intents_done ON intents (done_ns);
CREATE INDEX intents_at ON intents (at_ns);

CREATE TABLE incidents (
	id                TEXT PRIMARY KEY,
	service           TEXT NOT NULL,
	status            TEXT NOT NULL, -- open|resolved
	opened_ns         BIGINT NOT NULL,
	first_bad_ns      BIGINT NOT NULL,
	first_decision_ns BIGINT NOT NULL,
	resolved_ns       BIGINT NOT NULL,
	actions           BIGINT NOT NULL,
	last_action       TEXT NOT NULL,
	reason            TEXT NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened_ns);
CREATE INDEX incidents_status ON incidents (status);

CREATE TABLE policy_revisions (
	id       TEXT PRIMARY KEY,
	at_ns    BIGINT NOT NULL,
	revision TEXT NOT NULL,
	files    TEXT NOT NULL, -- JSON array
	error    TEXT NOT NULL  -- non-empty: a reload that failed (the old revision stayed live)
);
CREATE INDEX policy_revisions_at ON policy_revisions (at_ns);
