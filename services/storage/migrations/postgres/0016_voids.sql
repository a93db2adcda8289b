-- Organizers' adjustments (issue 28: AdjustTransactions). An approved adjustment appends a void
-- to the ledger for each transaction it voids (never editing or deleting a row): kind 3 voids a
-- sale, kind 4 a refund. A void copies its target's content and receive time, names it in
-- `refund_of`, and has the id 'void/' || the target's id (outside a retailer's charset), so the
-- unique (site_id, transaction_id) index lets each row be voided once.
-- NOT VALID: the rows already stored satisfy the narrower check; no scan of the ledger.
ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check CHECK (kind IN (1, 2, 3, 4)) NOT VALID;

-- An adjustment is an action like a hold: proposed, then applied by a second organizer. It
-- names the transactions to void (comma-separated: ',' is outside the id charset), the flag
-- it answers (may be empty), and once applied, how many voids it appended (a sale's refunds
-- are voided with it) and the ledger position of the last.
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_kind_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_kind_check
    CHECK (kind IN ('hold', 'release', 'adjust'));
ALTER TABLE admin_actions
    ADD COLUMN transaction_ids TEXT NOT NULL DEFAULT '',
    ADD COLUMN flag_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN voided_rows BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN through_position BIGINT NOT NULL DEFAULT 0;
