"""The registry's rules, one module per aggregate (no I/O, no framework): units, leaders, volunteers, memberships,
the contact person, the field validators, the caller's scope, the spreadsheet import plans, and the refusals."""
