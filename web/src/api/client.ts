// The typed client of the gateway (paths and bodies generated from web/openapi.json by openapi-typescript).
import createClient, { type Middleware } from 'openapi-fetch'
import type { paths } from './schema'
import { clearSession, saveTokens, session, type Tokens } from './session'

let refreshing: Promise<boolean> | null = null

/** Rotates the tokens when the access token is about to expire (one refresh at a time). */
async function refreshIfDue(): Promise<void> {
  const s = session.current
  if (!s || s.accessExpiresAt - Date.now() > 60_000) return
  refreshing ??= (async () => {
    const r = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: s.refresh }),
    })
    if (!r.ok) return false
    saveTokens((await r.json()) as Tokens)
    return true
  })().finally(() => {
    refreshing = null
  })
  if (!(await refreshing)) clearSession()
}

const auth: Middleware = {
  async onRequest({ request, schemaPath }) {
    if (schemaPath.startsWith('/api/v1/auth/signin') || schemaPath.startsWith('/api/v1/auth/refresh')) return request
    await refreshIfDue()
    const token = session.current?.access
    if (token) request.headers.set('Authorization', `Bearer ${token}`)
    return request
  },
  async onResponse({ response, schemaPath }) {
    if (response.status === 401 && !schemaPath.startsWith('/api/v1/auth/signin')) {
      clearSession()
      if (!location.pathname.startsWith('/login')) location.assign('/login?expired=1')
    }
    return response
  },
}

export const api = createClient<paths>({ baseUrl: '' })
api.use(auth)

/** A file from the API (template, export, certificate) saved under the name the server gives, else `fallback`. */
export async function download(url: string, fallback: string): Promise<void> {
  await refreshIfDue()
  const r = await fetch(url, { headers: { Authorization: `Bearer ${session.current?.access ?? ''}` } })
  if (!r.ok) throw await problemFromResponse(r)
  const blob = await r.blob()
  const disposition = r.headers.get('content-disposition') ?? ''
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition)
  const plain = /filename="?([^";]+)"?/i.exec(disposition)
  const name = star?.[1] ? decodeURIComponent(star[1]) : (plain?.[1] ?? fallback)
  const href = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = href
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(href), 10_000)
}

async function problemFromResponse(r: Response): Promise<ProblemError> {
  let body: unknown = null
  try {
    body = await r.json()
  } catch {
    /* not JSON */
  }
  return new ProblemError(r.status, body)
}

/** An RFC 9457 problem document: `detail` in Chinese, and `errors` per field or per spreadsheet cell. */
export interface FieldProblem {
  field?: string
  message?: string
  sheet?: string
  row?: number
  column?: string | null
}

export class ProblemError extends Error {
  readonly status: number
  readonly code: string | undefined
  readonly detail: string
  readonly errors: FieldProblem[]
  constructor(status: number, body: unknown) {
    const doc = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
    const detail = typeof doc.detail === 'string' ? doc.detail : statusText(status)
    super(detail)
    this.status = status
    this.code = typeof doc.code === 'string' ? doc.code : undefined
    this.detail = detail
    this.errors = Array.isArray(doc.errors) ? (doc.errors as FieldProblem[]) : []
  }

  /** The field errors keyed by field name (`contact.email` as given), for `<el-form-item :error>`. */
  byField(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const e of this.errors) {
      if (e.field && e.message && !(e.field in out)) out[e.field] = e.message
    }
    return out
  }
}

function statusText(status: number): string {
  if (status === 0) return '无法连接服务器，请检查网络'
  if (status === 403) return '没有权限执行此操作'
  if (status === 404) return '未找到'
  if (status === 429) return '操作过于频繁，请稍后再试'
  if (status >= 500) return '服务暂时不可用，请稍后再试'
  return `请求失败（${status}）`
}

/** Unwraps an openapi-fetch result: the data, or a thrown ProblemError. */
export function must<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) throw new ProblemError(result.response.status, result.error)
  return result.data as T
}

/** The Chinese message of any error (a problem's detail, else a generic one). */
export function messageOf(err: unknown): string {
  if (err instanceof ProblemError) return err.detail
  if (err instanceof TypeError) return '无法连接服务器，请检查网络'
  return err instanceof Error ? err.message : String(err)
}
