// Measures the built console: gzipped JavaScript of the volunteer pages' first load (the entry chunk, its static
// imports and the chunks of /me) against the 250 KB budget, and lists every chunk, so admin pages can be seen split.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'

const BUDGET_KB = 250
const dist = new URL('../dist/', import.meta.url).pathname
const manifest = JSON.parse(readFileSync(join(dist, '.vite/manifest.json'), 'utf8'))
const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length
const kb = (n) => (n / 1024).toFixed(1)

/** The files a page's first load fetches: the chunk and, transitively, its static imports. */
function closure(keys, seen = new Set()) {
  for (const key of keys) {
    const chunk = manifest[key]
    if (!chunk || seen.has(chunk.file)) continue
    seen.add(chunk.file)
    closure(chunk.imports ?? [], seen)
  }
  return seen
}

const entry = Object.keys(manifest).find((k) => manifest[k].isEntry)
const volunteerPages = ['src/pages/SignIn.vue', 'src/layouts/VolunteerLayout.vue', 'src/pages/volunteer/FindActivities.vue', 'src/pages/volunteer/ActivityView.vue', 'src/pages/volunteer/MyHours.vue']
const volunteerFiles = closure([entry, ...volunteerPages])
const volunteerJs = [...volunteerFiles].filter((f) => f.endsWith('.js')).reduce((n, f) => n + gz(f), 0)
const adminFiles = closure([entry, 'src/layouts/AdminLayout.vue', 'src/pages/province/Dashboard.vue'])
const adminJs = [...adminFiles].filter((f) => f.endsWith('.js')).reduce((n, f) => n + gz(f), 0)

console.log('chunk (gzipped KB)')
for (const [key, chunk] of Object.entries(manifest).filter(([, c]) => c.file.endsWith('.js')).sort((a, b) => gz(b[1].file) - gz(a[1].file))) {
  console.log(`  ${kb(gz(chunk.file)).padStart(7)}  ${chunk.file}  ${chunk.isEntry ? '(entry)' : chunk.isDynamicEntry ? `(route: ${key})` : ''}`)
}
const routes = Object.values(manifest).filter((c) => c.isDynamicEntry).length
console.log(`BUDGET volunteer_first_load_js_gz_kb=${kb(volunteerJs)} limit=${BUDGET_KB}`)
console.log(`BUDGET province_dashboard_first_load_js_gz_kb=${kb(adminJs)} route_chunks=${routes}`)
if (volunteerJs / 1024 > BUDGET_KB) {
  console.error(`volunteer pages' first load is ${kb(volunteerJs)} KB of gzipped JavaScript, over the ${BUDGET_KB} KB budget`)
  process.exit(1)
}
