// The signed-in account and its tokens, kept in localStorage so a reload stays signed in.
import { reactive } from 'vue'
import type { components } from './schema'

export type Account = components['schemas']['Account']
export type Tokens = components['schemas']['Tokens']
export type Role = Account['role']

interface Stored {
  access: string
  refresh: string
  accessExpiresAt: number // ms since epoch
  account: Account
}

const KEY = 'stvs.session'

function load(): Stored | null {
  try {
    const raw = localStorage.getItem(KEY)
    return raw ? (JSON.parse(raw) as Stored) : null
  } catch {
    return null
  }
}

export const session = reactive<{ current: Stored | null }>({ current: load() })

export function saveTokens(tokens: Tokens): void {
  session.current = {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    accessExpiresAt: Date.now() + tokens.expires_in * 1000,
    account: tokens.account,
  }
  localStorage.setItem(KEY, JSON.stringify(session.current))
}

export function clearSession(): void {
  session.current = null
  localStorage.removeItem(KEY)
}

export function account(): Account | null {
  return session.current?.account ?? null
}

/** Where each role lands after signing in. */
export function homeOf(role: Role | undefined): string {
  if (role === 'province_admin') return '/province'
  if (role === 'unit_admin') return '/unit'
  if (role === 'volunteer') return '/me'
  return '/login'
}
