// Sign-out: the session's tokens stop working at once on the gateway, then the local copy is dropped.
import { api } from '../api/client'
import { clearSession } from '../api/session'

export async function signOut(): Promise<void> {
  try {
    await api.POST('/api/v1/auth/signout')
  } finally {
    clearSession()
    location.assign('/login')
  }
}
