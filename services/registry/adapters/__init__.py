"""The registry's adapters: MongoDB storage (the use cases' port), the 附件2 import journal, the ID-lookup ledger,
the ID-number cipher, search filters and the spreadsheets."""
