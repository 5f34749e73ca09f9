-- 0002: an incident the governor escalated to a person (budget spent, back-off at its cap, or
-- the escalation ladder's last rung) is marked needs_human until it is resolved.
ALTER TABLE incidents ADD COLUMN needs_human INTEGER NOT NULL DEFAULT 0;
