-- Ids are ASCII by rule (slugs and [A-Za-z0-9._:-]); compare them bytewise. The cluster's
-- locale collation made every unique-index probe and insert of the ledger several times
-- slower for no benefit.
ALTER TABLE sites ALTER COLUMN site_id TYPE TEXT COLLATE "C";
ALTER TABLE api_keys ALTER COLUMN site_id TYPE TEXT COLLATE "C";
ALTER TABLE ledger
    ALTER COLUMN site_id TYPE TEXT COLLATE "C",
    ALTER COLUMN transaction_id TYPE TEXT COLLATE "C",
    ALTER COLUMN refund_of TYPE TEXT COLLATE "C";
ALTER TABLE site_totals ALTER COLUMN site_id TYPE TEXT COLLATE "C";
ALTER TABLE hourly_totals ALTER COLUMN site_id TYPE TEXT COLLATE "C";
