"""The collective-registration spreadsheets: layouts, the three forms, workbook writing and reading, the xlsx guard."""
