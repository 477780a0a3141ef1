"""SQL for offer_renewals and renewal_candidates (ended offers to renew), in the open."""

# Candidates are taken by one replica at a time (SKIP LOCKED) and removed in the same
# transaction that acts on them.
CLAIM_CANDIDATES = """
DELETE FROM renewal_candidates
 WHERE offer_id IN (SELECT offer_id FROM renewal_candidates ORDER BY queued_at
                     LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING offer_id
"""
# An ending's renewal was asked for (the offer's earlier renewal, if any, is replaced).
REQUESTED = """
INSERT INTO offer_renewals (offer_id, account_id, ended_at, state)
VALUES ($1, $2, $3, 'requested')
ON CONFLICT (offer_id) DO UPDATE
   SET ended_at = EXCLUDED.ended_at, state = 'requested', requested_at = now(), renewed_at = NULL
"""
# The offer is active again.
RENEWED = """
UPDATE offer_renewals SET state = 'renewed', renewed_at = now()
 WHERE offer_id = $1 AND state = 'requested'
"""
