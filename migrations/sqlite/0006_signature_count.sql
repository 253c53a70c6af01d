-- Signature counts come from the audit log; keeping a counter in the directory
-- cost the projector one unmergeable UPDATE per signature.
ALTER TABLE wallet_directory DROP COLUMN signatures;
