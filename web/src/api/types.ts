// Shapes of the answers the OpenAPI document leaves untyped (`object`): the activities and reporting services
// answer plain dicts. Typed here from those services' views; everything else comes from schema.d.ts.
import type { components } from './schema'

type S = components['schemas']
export type UnitOut = S['UnitOut']
export type VolunteerOut = S['VolunteerOut']
export type VolunteerIn = S['VolunteerIn']
export type ImportReport = S['ImportReport']
export type RowError = S['RowErrorOut']
export type DeadlineOut = S['DeadlineOut']
export type NotificationOut = S['NotificationOut']
export type LineOfWork = S['LineOfWork']
export type Theme = S['Theme']
export type ActivityStatus = S['ActivityStatus']
export type SignUpStatus = S['SignUpStatus']

export interface SignUp {
  activity_id: string
  volunteer_id: string
  display_name: string | null
  sequence: number
  status: SignUpStatus
  status_label: string
  signed_up_at: string
  by: string | null
  waitlist_position?: number
}

export interface Activity {
  id: string
  title: string
  description: string
  unit_id: string
  line_of_work: LineOfWork
  line_of_work_label: string
  themes: Theme[]
  theme_labels: string[]
  target_groups: string[]
  place: string
  county: string
  starts_at: string
  ends_at: string
  capacity: number
  signup_opens_at: string
  signup_closes_at: string
  requires_approval: boolean
  status: ActivityStatus
  status_label: string
  signup_counts: Record<SignUpStatus, number>
  total_hours?: string
  participants?: number
  my_signup?: SignUp
}

export interface Page<T> {
  items: T[]
  total: number
}

export interface Roster {
  items: SignUp[]
  total: number
  counts: Record<SignUpStatus, number>
}

export interface Attendance {
  activity_id: string
  volunteer_id: string
  check_in: string | null
  check_out: string | null
  computed_hours: string
  hours: string
  corrections: { hours: string; reason: string; by: string; at: string }[]
}

export interface CheckinCode {
  activity_id: string
  code: string
  valid_from: string
  valid_until: string
}

export interface RuleResult {
  rule: string
  status: 'met' | 'behind' | 'missed' | 'open' | string
  status_zh: string
  gap: number
  label_zh: string
  detail_zh: string
  due_at: string | null
}

export interface ComplianceRow {
  unit_id: string
  name: string
  kind: string
  kind_zh: string
  level_zh: string
  city: string | null
  parent_id: string | null
  status: string
  volunteers: number
  subtree_volunteers: number
  minimum: number | null
  rules: RuleResult[]
  summary: Record<string, number>
}

export interface Compliance {
  unit_id: string
  year: number
  quarter: number | null
  as_of: string
  units: ComplianceRow[]
}

export interface StatBlock {
  hours: number
  activities: number
  participations: number
  volunteers: number
  quarter_hours?: Record<string, number>
  units?: number
  [key: string]: unknown
}

export interface UnitStats {
  unit_id: string
  name: string
  year: number
  own: StatBlock
  rollup: StatBlock
}

export interface VolunteerStats {
  volunteer_id: string
  display_name: string | null
  platform_number: string | null
  unit_ids: string[]
  hours: number
  activities: number
  star_level: number
  hours_to_next_star: number | null
}
