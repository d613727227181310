# The web console (web/): `npm ci` when the lock file changed, `npm run build` when a source is newer than
# web/dist. Included by the Makefile; `make install` depends on `console`. Without npm it says so and goes on
# (the gateway then answers / with a page saying how to build the console).
NPM ?= npm
WEB_SOURCES := $(shell find web/src web/public web/scripts -type f 2>/dev/null) web/index.html web/package.json \
	web/vite.config.ts web/tsconfig.json web/tsconfig.app.json web/openapi.json

# The gateway's merged OpenAPI document, dumped in-process from the services' apps whenever their code changes: the
# build generates the client's types from it and type-checks every page, so an API change that breaks the console
# breaks `make install` (commit the refreshed web/openapi.json with the API change).
web/openapi.json: $(shell find services shared -name '*.py' -not -path '*/__pycache__/*' 2>/dev/null)
	$(UV) run python web/scripts/dump_openapi.py

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && $(NPM) run build
	@touch $@

.PHONY: console openapi-console
console:
	@if command -v $(NPM) >/dev/null 2>&1; then $(MAKE) --no-print-directory web/dist/index.html; \
	else echo "npm not found: the web console is not built (install Node.js 20, then make install)"; fi

openapi-console: web/openapi.json
