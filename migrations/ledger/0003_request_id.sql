-- The client-facing request id (x-litellm-call-id) of the call an entry
-- bills: what /spend/logs shows as request_id and filters on, and what ties
-- an entry to the response the client saw. The reservation id used to be
-- the same string; with admission leases (ADR 2) it names a lease part.
-- Rows written before this migration have ''.
ALTER TABLE ledger_entries ADD COLUMN request_id text NOT NULL DEFAULT '';
