-- 0069_meta_send_proofs_dropped.sql - 0045's meta_send_proofs dropped
-- (issue 53; the contract step 0058 set out and 0066 prepared).
--
-- 0066 (v0.47.0) copied the table's proofs into meta_message_proofs, where
-- meta-sender reads them, and no service of v0.47.0 names the table: its
-- last reader, v0.46.0's meta-sender, stopped with that release. So this
-- release drops it (docs/decisions/0008, rule 1), with its index and
-- grants. A restore to a moment before this migration brings the table
-- back with the rest of that moment's schema; the migrator drops it again.

DROP TABLE meta_send_proofs;
