"""SQL for invoices (each ERP invoice's way onto Allegro), in the open."""

# The invoice's row, created on the first attempt: ``allegro_invoice_id``, ``uploaded_at``.
START = """
INSERT INTO invoices (checkout_form_id, invoice_number, account_id, file_name)
VALUES ($1, $2, $3, $4)
ON CONFLICT (checkout_form_id, invoice_number)
    DO UPDATE SET file_name = invoices.file_name  -- no change; returns the row
RETURNING allegro_invoice_id, uploaded_at
"""
# Allegro created the invoice under ``$3``.
SET_ALLEGRO_ID = """
UPDATE invoices SET allegro_invoice_id = $3 WHERE checkout_form_id = $1 AND invoice_number = $2
"""
# The file is on Allegro (the first time kept; size ``$3`` and hash ``$4`` when known).
MARK_UPLOADED = """
UPDATE invoices
   SET uploaded_at = coalesce(uploaded_at, now()),
       size_bytes = coalesce($3, size_bytes), sha256 = coalesce($4, sha256)
 WHERE checkout_form_id = $1 AND invoice_number = $2
"""
