-- The sales page lists the reconciler's reports (audit rows of two actions), newest first.
CREATE INDEX "audit_log_action_id_idx" ON "audit_log"("action", "id" DESC);
