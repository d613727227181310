"""The registry's use cases: each loads through the storage port (:mod:`.ports`), decides in the domain and saves
with its events; no web framework, no database driver. Units, volunteers and memberships, the spreadsheet imports."""
