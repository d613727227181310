// One route per page; every page but sign-in is loaded on demand, so a volunteer's phone never downloads the
// admin pages (and the province dashboard's ECharts) it will not show.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { account, homeOf, type Role } from './api/session'

const ADMINS: Role[] = ['province_admin', 'unit_admin']

const routes: RouteRecordRaw[] = [
  { path: '/login', component: () => import('./pages/SignIn.vue'), meta: { public: true, title: '登录' } },
  { path: '/', redirect: () => homeOf(account()?.role) },
  {
    path: '/province',
    component: () => import('./layouts/AdminLayout.vue'),
    meta: { roles: ['province_admin'] },
    children: [
      { path: '', component: () => import('./pages/province/Dashboard.vue'), meta: { title: '全省概览' } },
      { path: 'calendar', component: () => import('./pages/province/Calendar.vue'), meta: { title: '截止日历' } },
      { path: 'units', component: () => import('./pages/province/Units.vue'), meta: { title: '队伍审核与名录' } },
      { path: 'accounts', component: () => import('./pages/province/Accounts.vue'), meta: { title: '账号管理' } },
    ],
  },
  {
    path: '/unit',
    component: () => import('./layouts/AdminLayout.vue'),
    meta: { roles: ADMINS },
    children: [
      { path: '', component: () => import('./pages/unit/UnitHome.vue'), meta: { title: '本队伍' } },
      { path: 'volunteers', component: () => import('./pages/unit/Volunteers.vue'), meta: { title: '志愿者' } },
      { path: 'volunteers/new', component: () => import('./pages/unit/VolunteerNew.vue'), meta: { title: '注册志愿者' } },
      { path: 'volunteers/:id', component: () => import('./pages/unit/VolunteerDetail.vue'), meta: { title: '志愿者详情' } },
      { path: 'import', component: () => import('./pages/unit/ImportWizard.vue'), meta: { title: '集体注册（附件2）' } },
      { path: 'activities', component: () => import('./pages/unit/Activities.vue'), meta: { title: '活动' } },
      { path: 'activities/new', component: () => import('./pages/unit/ActivityNew.vue'), meta: { title: '发布活动' } },
      { path: 'activities/:id', component: () => import('./pages/unit/ActivityDetail.vue'), meta: { title: '活动详情' } },
      { path: 'notifications', component: () => import('./pages/unit/Notifications.vue'), meta: { title: '通知' } },
      { path: 'accounts', component: () => import('./pages/province/Accounts.vue'), meta: { title: '账号管理' } },
    ],
  },
  {
    path: '/me',
    component: () => import('./layouts/VolunteerLayout.vue'),
    meta: { roles: ['volunteer'] },
    children: [
      { path: '', component: () => import('./pages/volunteer/FindActivities.vue'), meta: { title: '找活动' } },
      { path: 'activities/:id', component: () => import('./pages/volunteer/ActivityView.vue'), meta: { title: '活动' } },
      { path: 'hours', component: () => import('./pages/volunteer/MyHours.vue'), meta: { title: '我的时长' } },
    ],
  },
  { path: '/password', component: () => import('./pages/Password.vue'), meta: { title: '修改密码' } },
  { path: '/:rest(.*)*', component: () => import('./pages/NotFound.vue'), meta: { public: true, title: '页面不存在' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach((to) => {
  const me = account()
  if (to.meta.public) return true
  if (!me) return { path: '/login', query: { next: to.fullPath } }
  const roles = to.matched.flatMap((r) => (r.meta.roles as Role[] | undefined) ?? [])
  if (roles.length && !roles.includes(me.role)) return homeOf(me.role)
  return true
})

router.afterEach((to) => {
  document.title = `${(to.meta.title as string | undefined) ?? ''} · 河北省科技志愿服务平台`
})
