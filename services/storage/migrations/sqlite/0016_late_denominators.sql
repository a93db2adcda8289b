-- The late figures' denominators (issue 28): see the PostgreSQL migration.
ALTER TABLE late_totals
    ADD COLUMN sale_count INTEGER NOT NULL DEFAULT 0 CHECK (sale_count >= 0);
ALTER TABLE late_totals
    ADD COLUMN gross_minor TEXT NOT NULL DEFAULT '0' CHECK (gross_minor GLOB '[0-9]*');
ALTER TABLE late_totals
    ADD COLUMN round_count INTEGER NOT NULL DEFAULT 0 CHECK (round_count >= 0);
DELETE FROM late_windows;
