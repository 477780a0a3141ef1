"""File exports (design.md C5): the customer list as CSV and as XML, streamed."""
