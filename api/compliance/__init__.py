"""HTTP routes for compliance: framework catalogues, framework reports, risk-acceptance exceptions."""
