// The programme's vocabulary as the registry and activities services name it (codes → the notice's wording).
import type { LineOfWork, Theme } from './api/types'

export const LINES_OF_WORK: { value: LineOfWork; label: string }[] = [
  { value: 'community_school', label: '进社区进学校' },
  { value: 'enterprise_park', label: '进企业进园区' },
  { value: 'rural_revitalization', label: '助力乡村振兴' },
]

export const THEMES: { value: Theme; label: string }[] = [
  { value: 'national_key_event', label: '全国科普日、科技周等重点活动' },
  { value: 'poverty_health', label: '科技助力精准扶贫和卫生健康' },
  { value: 'women_youth', label: '农村妇女和青少年等重点人群' },
  { value: 'enterprise_innovation', label: '助力企业创新发展' },
]

/** The 13 city-level units and 雄安新区, in the notice's order. */
export const CITY_AREAS: { code: string; name: string }[] = [
  { code: 'shijiazhuang', name: '石家庄市' },
  { code: 'tangshan', name: '唐山市' },
  { code: 'qinhuangdao', name: '秦皇岛市' },
  { code: 'handan', name: '邯郸市' },
  { code: 'xingtai', name: '邢台市' },
  { code: 'baoding', name: '保定市' },
  { code: 'zhangjiakou', name: '张家口市' },
  { code: 'chengde', name: '承德市' },
  { code: 'cangzhou', name: '沧州市' },
  { code: 'langfang', name: '廊坊市' },
  { code: 'hengshui', name: '衡水市' },
  { code: 'dingzhou', name: '定州市' },
  { code: 'xinji', name: '辛集市' },
  { code: 'xiongan', name: '雄安新区' },
]

export const GENDERS = ['男', '女']
export const EDUCATIONS = ['博士研究生', '硕士研究生', '大学本科', '大学专科', '高中/中专', '初中及以下']
export const TITLE_LEVELS = ['正高级', '副高级', '中级', '初级', '无']
export const POLITICAL_STATUSES = ['中共党员', '中共预备党员', '共青团员', '民主党派', '无党派人士', '群众']
export const SERVICE_AREAS = ['进社区进学校', '进企业进园区', '助力乡村振兴']

export const ROLE_LABELS: Record<string, string> = {
  province_admin: '省级管理员',
  unit_admin: '队伍管理员',
  volunteer: '志愿者',
  system: '系统账号',
}

export function quarterOf(d: Date): number {
  return Math.floor(d.getMonth() / 3) + 1
}

/** 2026-06-10T02:00:00Z → 2026-06-10 10:00 (Beijing time). */
export function fmt(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return d.toLocaleString('zh-CN', {
    timeZone: 'Asia/Shanghai',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
  })
}

export function fmtDate(iso: string | null | undefined): string {
  return iso ? fmt(iso).slice(0, 10) : '—'
}
