"""The reporting service's adapters: MongoDB (read models, submissions, certificates), the registry's HTTP API,
and the renderers of workbooks, PDF and SVG."""
