// The unit an admin page works on: the unit admin's own unit; for the province office, the province corps.
import { api, must } from './api/client'
import { account } from './api/session'

let corps: Promise<string | null> | null = null

export async function scopeUnitId(): Promise<string | null> {
  const me = account()
  if (!me) return null
  if (me.role === 'unit_admin') return me.unit_id ?? null
  if (me.role !== 'province_admin') return null
  corps ??= api
    .GET('/api/v1/units', { params: { query: { kind: 'province_corps', limit: 1 } } })
    .then((r) => must(r).items[0]?.id ?? null)
    .catch(() => {
      corps = null
      return null
    })
  return corps
}
