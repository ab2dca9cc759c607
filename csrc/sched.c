#define _GNU_SOURCE
#include "sched.h"

#include "ctimer.h"
#include "gqueue.h"
#include "trace.h"
#include "waitq.h"

#include <stdlib.h>
#include <string.h>

/* Task ids a P reserves from the global counter at a time: one atomic add per 64 spawns
 * instead of one per spawn, at the cost of ids that are unique but not dense. */
#define GR_IDCACHE 64
/* Passes over the victims before a thief gives up (Go's stealWork uses 4): a victim's
 * ring can refill between passes, and only the last pass takes runnext. */
#define GR_STEAL_PASSES 4
/* Every 61st scheduling tick takes one G from the global queue first (Go's number: a
 * prime, so it does not beat in step with a program's own period). Without it two tasks
 * respawning each other through runnext would starve the global queue. Offset by half,
 * the same tick puts the ready queue (started tasks) ahead of a ring kept full. */
#define GR_FAIR_TICKS 61
/* runnext runs at most 3 times in a row (Tokio's cap): nothing preempts Python, so a pair
 * handing off through it would otherwise hold the P for good. */
#define GR_RUNNEXT_CAP 3
/* Most G's one take from the global queue moves to a P (Go's globrunqget): half a ring,
 * so the batch always fits the empty ring it lands in. */
#define GR_GLOBAL_BATCH 128
/* How long an M out of work keeps looking before it parks. A hand-off to a task pinned to
 * this M usually arrives within microseconds (the other M is just about to park its own
 * task); a futex wake-up costs tens of microseconds on a VM. Bounded: an idle runtime
 * spins once per idle transition, never continuously. */
#define GR_SPIN_NS 50000
/* Back-off of an M that found shared work while another M held the GIL running Python:
 * it sleeps 0.5 ms (GR_BACKOFF_NS), doubling up to 16 ms (<< GR_BACKOFF_MAX_SHIFT), and
 * after GR_BACKOFF_ROUNDS rounds (about 100 ms with the GIL waits in between) takes one
 * batch anyway (leave_shared_work). Short enough that GIL-releasing work found busy once
 * is soon retried, long enough that an M running Python is forced to switch a handful of
 * times per second at most. */
#define GR_BACKOFF_NS 500000
#define GR_BACKOFF_MAX_SHIFT 5
#define GR_BACKOFF_ROUNDS 8
/* How long shared work must stay in sight before an idle M contends for the GIL to take
 * it (shared_work_persists), checked every GR_STEAL_GRACE_STEP_NS: longer than a burst
 * of spawns takes to start on its own M (a 503-task ring: about 0.8 ms), far shorter than
 * the work that gains from a second M. */
#define GR_STEAL_GRACE_NS 2000000
#define GR_STEAL_GRACE_STEP_NS 100000
/* ... counted in the CPU time of the Ms holding the work, which is how long they really
 * ran (on a loaded machine the OS may deschedule them for milliseconds), but no longer
 * than this in wall time: an M blocked in a syscall uses no CPU. */
#define GR_STEAL_GRACE_MAX_NS 20000000
/* Tasks the other Ms may run during the grace before they count as busy: a few per
 * millisecond is C work (hashlib on a MiB: ~1 ms); a network server runs hundreds. */
#define GR_BUSY_RUNS 16
/* Short GIL waits in a row before a contended M takes shared work again: one can be luck
 * (a third thread, such as an offload worker, just forced the GIL holder to switch). */
#define GR_GIL_FREE_WAITS 2

static _Thread_local gr_m *curm;

/* Task ids, process-wide so that an id is never reused by a later run(). Each P reserves
 * GR_IDCACHE of them at a time. Relaxed fetch_add: only uniqueness matters, no other
 * memory is published through it, so it pairs with nothing. */
static _Atomic uint64_t next_id = 1;

void gr_m_bind(gr_m *m)
{
    curm = m;
    gr_trace_bind(m ? m->id : -1);
    if (m && !atomic_load_explicit(&m->has_cpuclock, memory_order_relaxed) &&
        pthread_getcpuclockid(pthread_self(), &m->cpuclock) == 0)
        atomic_store_explicit(&m->has_cpuclock, 1, memory_order_release);
}
gr_m *gr_m_current(void) { return curm; }

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

gr_sched *gr_sched_new(int nprocs)
{
    if (nprocs < 1)
        return NULL;
    gr_sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nprocs = nprocs;
    /* 64-byte alignment: the ring's head and tail must not share a line with a
     * neighbour's, and Python allocators only guarantee 16 bytes. */
    if (posix_memalign((void **)&s->ps, 64, (size_t)nprocs * sizeof(gr_p)) != 0)
        s->ps = NULL;
    s->ms = calloc((size_t)nprocs, sizeof(gr_m));
    s->coprimes = calloc((size_t)nprocs, sizeof(uint32_t));
    if (!s->ps || !s->ms || !s->coprimes || gr_idle_init(&s->idle, nprocs) != 0) {
        free(s->ps);
        free(s->ms);
        free(s->coprimes);
        free(s);
        return NULL;
    }
    memset(s->ps, 0, (size_t)nprocs * sizeof(gr_p));
    for (uint32_t i = 1; i <= (uint32_t)nprocs; i++)
        if (gcd(i, (uint32_t)nprocs) == 1)
            s->coprimes[s->ncoprimes++] = i;
    gr_globalq_init(&s->gq);
    atomic_init(&s->ext_spawned, 0);
    atomic_init(&s->ntimers, 0);
    atomic_init(&s->nexternal, 0);
    atomic_init(&s->closing, 0);
    for (int i = 0; i < nprocs; i++) {
        gr_p *p = &s->ps[i];
        gr_runq_init(&p->runq);
        atomic_init(&p->inbox, NULL);
        gr_timerheap_init(&p->timers);
        p->id = i;
        gr_m *m = &s->ms[i];
        atomic_init(&m->park.state, GR_PARK_EMPTY);
        m->id = i;
        m->p = p;
        m->sched = s;
        m->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        atomic_init(&m->active, i == 0); /* M0 runs main; the others start waiting */
    }
    return s;
}

void gr_sched_free(gr_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nprocs; i++)
        gr_timerheap_free(&s->ps[i].timers);
    gr_globalq_destroy(&s->gq);
    gr_idle_destroy(&s->idle);
    free(s->ps);
    free(s->ms);
    free(s->coprimes);
    free(s);
}

void gr_sched_set_node(gr_sched *s, int p, int node) { s->ps[p].node = node; }
void gr_sched_set_ctimers(gr_sched *s, gr_ctimers *h) { s->ctimers = h; }
void gr_sched_set_netpoll(gr_sched *s, gr_netpoll *np) { s->netpoll = np; }
gr_m *gr_sched_m(gr_sched *s, int i) { return &s->ms[i]; }

static uint32_t fastrand(gr_m *m)
{
    /* xorshift64*: only spreads thieves over victims, quality hardly matters. */
    m->rng ^= m->rng >> 12;
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return (uint32_t)((m->rng * 2685821657736338717ull) >> 32);
}

uint32_t gr_fastrand(void)
{
    static _Thread_local gr_m fallback = {.rng = 0x2545F4914F6CDD1Dull};
    return fastrand(curm ? curm : &fallback);
}

void gr_g_init(gr_m *m, gr_g *g, void *obj)
{
    memset(g, 0, sizeof *g);
    g->obj = obj;
    g->timer_idx = -1;
    if (m) {
        gr_p *p = m->p;
        if (p->idcache == p->idcache_end) {
            p->idcache = atomic_fetch_add_explicit(&next_id, GR_IDCACHE, memory_order_relaxed);
            p->idcache_end = p->idcache + GR_IDCACHE;
        }
        g->id = p->idcache++;
    } else {
        g->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    }
}

/* ---- waking Ms ---------------------------------------------------------------------- */

/* Wake m, wherever it sleeps: on its futex word, or blocked in the poller. seq_cst on both
 * sides: the unpark's exchange, then the load of in_poll here; the poller's store of
 * in_poll, then its look at the park word (poll_idle). Either this sees in_poll and breaks
 * the poll, or the poller sees NOTIFIED and does not block. */
static void m_unpark(gr_m *m)
{
    GR_TRACE(GR_TEV_M_UNPARK, 0, (uint64_t)m->id, 0);
    gr_park_unpark(&m->park);
    if (atomic_load(&m->in_poll))
        gr_netpoll_break(m->sched->netpoll);
}

/* Wake one idle M to look for work, unless one is already searching (idle.h). */
static void wakep(gr_sched *s)
{
    int id = gr_idle_wake_one(&s->idle);
    if (id >= 0)
        m_unpark(&s->ms[id]);
}

void gr_sched_wakep(gr_sched *s) { wakep(s); }

/* ---- queues of started G's ------------------------------------------------------------ */

static void drain_inbox(gr_p *p)
{
    /* acquire: pairs with the pushers' release CAS, so their writes to the G are seen. */
    gr_g *list = atomic_exchange_explicit(&p->inbox, NULL, memory_order_acquire);
    if (!list)
        return;
    gr_g *tail = list, *fifo = NULL; /* the stack is newest first: reverse it */
    while (list) {
        gr_g *next = list->schedlink;
        list->schedlink = fifo;
        fifo = list;
        list = next;
    }
    gr_gqueue_append(&p->readyq, fifo, tail);
}

/* Hand g to another M: onto its P's inbox, then wake it. */
static void inbox_push(gr_m *owner, gr_g *g)
{
    gr_p *p = owner->p;
    gr_g *head = atomic_load_explicit(&p->inbox, memory_order_relaxed);
    do {
        g->schedlink = head;
        /* release: publishes g (and what the waker handed it) to drain_inbox. */
    } while (!atomic_compare_exchange_weak_explicit(&p->inbox, &head, g, memory_order_release,
                                                    memory_order_relaxed));
    m_unpark(owner);
}

void gr_ready(gr_g *g, int next)
{
    gr_m *owner = atomic_load_explicit(&g->m, memory_order_relaxed);
    gr_g_move(g, GR_G_WAITING, GR_G_RUNNABLE, "readied a G that was not waiting");
    GR_TRACE(GR_TEV_GO_UNPARK, g->id, 0, g->wake_reason);
    gr_obs_runnable(g);
    if (owner == curm) {
        gr_p *p = owner->p;
        if (next) {
            gr_g *kicked = gr_runq_put_next(&p->runq, g, 1, &owner->sched->gq);
            if (kicked)
                gr_gqueue_push(&p->readyq, kicked);
        } else {
            gr_gqueue_push(&p->readyq, g);
        }
        return;
    }
    inbox_push(owner, g);
}

int gr_g_wake(gr_g *g, uint32_t reason, int next)
{
    if (!gr_g_claim(g, reason))
        return 0;
    gr_ready(g, next);
    return 1;
}

void gr_yield(gr_m *m, gr_g *g)
{
    gr_g_move(g, GR_G_RUNNING, GR_G_RUNNABLE, "a G that is not running yielded");
    GR_TRACE(GR_TEV_GO_YIELD, g->id, 0, 0);
    gr_obs_yielded(&m->p->stats.obs, g);
    gr_gqueue_push(&m->p->readyq, g);
}

void gr_g_parked(gr_m *m, gr_g *g)
{
    GR_STAT_INC(m->p->stats.task_parks);
    GR_TRACE(GR_TEV_GO_PARK, g->id, 0, g->park_reason);
    gr_obs_stopped(&m->p->stats.obs);
}

/* ---- spawning and finishing ----------------------------------------------------------- */

void gr_spawn(gr_m *m, gr_g *g)
{
    gr_p *p = m->p;
    gr_sched *s = m->sched;
    GR_STAT_INC(p->stats.spawned);
    gr_g_move(g, GR_G_NEW, GR_G_RUNNABLE, "a G spawned twice");
    gr_live_add(&p->stats.obs.live, g);
    gr_obs_spawned(g);
    gr_g *kicked = gr_runq_put_next(&p->runq, g, 0, &s->gq);
    if (kicked)
        gr_gqueue_push(&p->readyq, kicked);
    if (s->nprocs > 1)
        wakep(s);
}

void gr_spawn_on(gr_m *m, gr_m *target, gr_g *g)
{
    GR_STAT_INC(m->p->stats.spawned);
    atomic_store_explicit(&g->m, target, memory_order_relaxed);
    gr_g_move(g, GR_G_NEW, GR_G_RUNNABLE, "a G spawned twice");
    gr_live_add(&m->p->stats.obs.live, g); /* any P's list serves: the lock guards it */
    gr_obs_spawned(g);
    if (target == m)
        gr_gqueue_push(&m->p->readyq, g);
    else
        inbox_push(target, g);
}

int gr_spawn_external(gr_sched *s, gr_g *g)
{
    gr_g_move(g, GR_G_NEW, GR_G_RUNNABLE, "a G spawned twice");
    /* Counted first: a G on the queue must already be live, or the deadlock detector
     * could see it queued and not yet counted. A refused one is taken back. */
    atomic_fetch_add(&s->ext_spawned, 1);
    gr_live_add(&s->ps[0].stats.obs.live, g); /* any P's list serves: the lock guards it */
    gr_obs_spawned(g);
    if (gr_globalq_put_open(&s->gq, g) != 0) {
        gr_live_remove(g);
        atomic_fetch_sub(&s->ext_spawned, 1);
        return -1;
    }
    wakep(s);
    return 0;
}


void gr_g_start(gr_m *m, gr_g *g) { atomic_store_explicit(&g->m, m, memory_order_relaxed); }

void gr_m_track(gr_m *m, gr_g *g) { gr_glist_insert(&m->started, g); }

void gr_g_finish(gr_sched *s, gr_m *m, gr_g *g)
{
    gr_gqueue wake;
    gr_gqueue_init(&wake);
    /* Counted before DONE is published: a joiner that sees DONE and then asks how many
     * tasks are live must not count g (num_tasks() right after a join). */
    gr_glist_remove(&m->started, g);
    gr_live_remove(g);
    gr_obs_stopped(&m->p->stats.obs);
    GR_STAT_INC(m->p->stats.finished);
    gr_lock_acquire(&g->lock);
    GR_ASSERT(atomic_load_explicit(&g->state, memory_order_relaxed) != GR_G_DONE,
              "a G finished twice");
    /* release: pairs with gr_g_state's acquire; the result is written before this. */
    atomic_store_explicit(&g->state, GR_G_DONE, memory_order_release);
    /* Claim under our lock: a joiner leaving on its own (timeout, cancel) must take this
     * lock to unlink, so it cannot be gone while we look at it. */
    gr_waiter *w;
    while ((w = gr_waitq_claim(&g->joiners, GR_WAKE_READY)) != NULL)
        gr_gqueue_push(&wake, w->g);
    gr_lock_release(&g->lock);
    gr_g *j;
    while ((j = gr_gqueue_pop(&wake)) != NULL) /* in the order they joined */
        gr_ready(j, 0);
}

/* ---- timers (armed and disarmed by the waits themselves: wait.c) ---------------------- */

static void run_timers(gr_m *m, int64_t now)
{
    gr_g *g;
    while ((g = gr_timerheap_pop_expired(&m->p->timers, now)) != NULL) {
        atomic_fetch_sub(&m->sched->ntimers, 1);
        gr_g_wake(g, GR_WAKE_TIMEOUT, 0);
    }
}

/* ---- channel timers (ctimer.h) ------------------------------------------------------ */

/* The earliest channel timer this M must wake for: none once it is closing (timers left
 * then never fire). */
static int64_t ctimers_next(gr_m *m)
{
    return m->seen_closing ? INT64_MAX : gr_ctimers_earliest(m->sched->ctimers);
}

/* Channel timers are due, and this M has taken local work since it last reported them:
 * a ticker faster than its own firing cannot starve the run queues. */
static int ctimers_due(gr_m *m)
{
    int64_t when = ctimers_next(m);
    if (when == INT64_MAX || m->p->ctimer_tick == m->p->schedtick || when > gr_nanotime())
        return 0;
    m->p->ctimer_tick = m->p->schedtick;
    return 1;
}

/* When an idle M must wake for a timer: its own P's or a channel timer. */
static int64_t next_deadline(gr_m *m)
{
    int64_t own = gr_timerheap_earliest(&m->p->timers), chan = ctimers_next(m);
    return own < chan ? own : chan;
}

/* timeout_ns (< 0: forever) shortened to end at m's next timer deadline. */
static int64_t until_deadline(gr_m *m, int64_t timeout_ns)
{
    int64_t when = next_deadline(m);
    if (when == INT64_MAX)
        return timeout_ns;
    int64_t due = when - gr_nanotime();
    if (due < 0)
        due = 0;
    return timeout_ns < 0 || due < timeout_ns ? due : timeout_ns;
}

static int timer_due(gr_m *m)
{
    int64_t when = next_deadline(m);
    return when != INT64_MAX && when <= gr_nanotime();
}

/* ---- finding work ------------------------------------------------------------------- */

/* Shutdown has begun and m has not acted on it yet (GR_NEXT_CLOSING): a reason to stop
 * waiting, like work. */
static int closing_unseen(gr_m *m)
{
    return !m->seen_closing && gr_sched_closing(m->sched);
}

static gr_g *next_local(gr_m *m)
{
    gr_p *p = m->p;
    gr_sched *s = m->sched;
    gr_g *g;
    p->schedtick++;
    if (p->timers.n) {
        int64_t now = gr_nanotime();
        if (gr_timerheap_earliest(&p->timers) <= now)
            run_timers(m, now);
    }
    if (p->schedtick % GR_FAIR_TICKS == 0 && gr_globalq_len(&s->gq)) {
        uint32_t n;
        if ((g = gr_globalq_get_batch(&s->gq, 1, &n))) {
            GR_STAT_INC(p->stats.from_global);
            GR_TRACE(GR_TEV_GLOBAL, g->id, 1, 0);
            return g;
        }
    }
    if (atomic_load_explicit(&p->inbox, memory_order_relaxed))
        drain_inbox(p);
    if (p->next_streak < GR_RUNNEXT_CAP && atomic_load_explicit(&p->runq.runnext,
                                                                memory_order_relaxed)) {
        if ((g = gr_runq_take_next(&p->runq))) {
            p->next_streak++;
            return g;
        }
    }
    p->next_streak = 0;
    if (p->schedtick % GR_FAIR_TICKS == GR_FAIR_TICKS / 2 && (g = gr_gqueue_pop(&p->readyq)))
        return g;
    if ((g = gr_runq_pop(&p->runq)) || (g = gr_gqueue_pop(&p->readyq)) || (g = gr_runq_take_next(&p->runq)))
        return g;
    return NULL;
}

static gr_g *take_global(gr_m *m)
{
    gr_sched *s = m->sched;
    uint64_t len = gr_globalq_len(&s->gq);
    if (len == 0)
        return NULL;
    uint64_t want = len / (uint64_t)s->nprocs + 1;
    uint32_t n;
    gr_g *g = gr_globalq_get_batch(&s->gq, want > GR_GLOBAL_BATCH ? GR_GLOBAL_BATCH : (uint32_t)want, &n);
    if (!g)
        return NULL;
    GR_STAT_ADD(m->p->stats.from_global, n);
    GR_TRACE(GR_TEV_GLOBAL, g->id, n, 0);
    /* Our ring is empty here (next_local found nothing), and a batch fits in half of it. */
    for (gr_g *rest = g->schedlink; rest;) {
        gr_g *next = rest->schedlink;
        gr_runq_put(&m->p->runq, rest, &s->gq);
        rest = next;
    }
    g->schedlink = NULL;
    return g;
}

/* Visit victims from a random start with a coprime stride (every P once, in an order that
 * differs per attempt), own NUMA node first, runnext only on the last pass. */
static gr_g *steal_work(gr_m *m)
{
    gr_sched *s = m->sched;
    int n = s->nprocs;
    if (n == 1)
        return NULL;
    if (!gr_idle_begin_spin(&s->idle, m->id))
        return NULL;
    gr_p *me = m->p;
    for (int pass = 0; pass < GR_STEAL_PASSES; pass++) {
        for (int remote = 0; remote < 2; remote++) {
            uint32_t start = fastrand(m) % (uint32_t)n;
            uint32_t stride = s->coprimes[fastrand(m) % s->ncoprimes];
            for (int i = 0; i < n; i++) {
                gr_p *v = &s->ps[(start + (uint32_t)i * stride) % (uint32_t)n];
                if (v == me || (v->node != me->node) != remote)
                    continue;
                uint32_t got;
                gr_g *g = gr_runq_steal(&me->runq, &v->runq, pass == GR_STEAL_PASSES - 1, &got);
                if (g) {
                    GR_STAT_ADD(me->stats.stolen, got);
                    GR_TRACE(GR_TEV_STEAL, g->id, got, (uint32_t)v->id);
                    if (remote)
                        GR_STAT_INC(me->stats.steals_remote);
                    else
                        GR_STAT_INC(me->stats.steals_local);
                    return g;
                }
            }
        }
    }
    return NULL;
}

/* Never-run G's that any M may take: the global queue and the other Ps' rings. */
static int shared_work(gr_sched *s, gr_m *m)
{
    if (gr_globalq_len(&s->gq))
        return 1;
    for (int i = 0; i < s->nprocs; i++)
        if (&s->ps[i] != m->p && gr_runq_stealable(&s->ps[i].runq))
            return 1;
    return 0;
}

/* Work of m's own: only m can run it, so no grace and no GIL question. */
static int own_work(gr_m *m)
{
    gr_p *p = m->p;
    return atomic_load(&p->inbox) || !gr_gqueue_empty(&p->readyq) || atomic_load(&p->runq.runnext) ||
           gr_runq_len(&p->runq) || timer_due(m);
}

/* Work m itself could run now: its own, or shared work. */
static int work_for(gr_sched *s, gr_m *m) { return own_work(m) || shared_work(s, m); }

/* Anything queued anywhere, other Ms' inboxes included (deadlock detection). */
static int work_anywhere(gr_sched *s, gr_m *m)
{
    for (int i = 0; i < s->nprocs; i++)
        if (atomic_load(&s->ps[i].inbox))
            return 1;
    return work_for(s, m);
}

uint64_t gr_sched_spawned(gr_sched *s)
{
    uint64_t n = atomic_load(&s->ext_spawned);
    for (int i = 0; i < s->nprocs; i++)
        n += GR_STAT_GET(s->ps[i].stats.spawned);
    return n;
}

gr_g *gr_sched_take_global(gr_sched *s)
{
    uint32_t n;
    return gr_globalq_get_batch(&s->gq, 1, &n);
}

int64_t gr_sched_live(gr_sched *s)
{
    int64_t live = (int64_t)atomic_load(&s->ext_spawned);
    for (int i = 0; i < s->nprocs; i++)
        live += (int64_t)(GR_STAT_GET(s->ps[i].stats.spawned) -
                          GR_STAT_GET(s->ps[i].stats.finished));
    return live;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin (without the GIL) for up to GR_SPIN_NS waiting for work this M could take: its
 * inbox, a due timer, the global queue, another P's ring. 1 if something showed up. */
static int spin_for_work(gr_m *m)
{
    gr_sched *s = m->sched;
    int64_t deadline = gr_nanotime() + GR_SPIN_NS;
    GR_TRACE(GR_TEV_M_SPIN, 0, 0, 0);
    do {
        if (work_for(s, m) || closing_unseen(m)) {
            GR_TRACE(GR_TEV_M_SPIN_END, 0, 0, 1);
            return 1;
        }
        for (int i = 0; i < 32; i++)
            cpu_relax();
    } while (gr_nanotime() < deadline);
    GR_TRACE(GR_TEV_M_SPIN_END, 0, 0, 0);
    return 0;
}

enum { PARK_RETRY, PARK_DEADLOCK, PARK_INTR };

/* m is going idle with G's of its own parked on fds: 1 if it is now the one M blocked in
 * the poller. If another M is, m sleeps on its futex with want_poll raised instead. */
static int take_poller(gr_m *m)
{
    gr_netpoll *np = m->sched->netpoll;
    if (gr_netpoll_try_block(np))
        return 1;
    atomic_store(&m->want_poll, 1);
    return gr_netpoll_try_block(np); /* the poller may have left before want_poll was up */
}

/* An idle M whose own G's wait on fds, and which won gr_netpoll_try_block, sleeps in the
 * poller instead of on its futex word. Only such an M: a readied G runs on its own M, so
 * an M that polled for the others would cost every event two wake-ups instead of one.
 * Returns a GR_PARK_* code. */
static int poll_idle(gr_m *m, int64_t timeout)
{
    gr_netpoll *np = m->sched->netpoll;
    int rc = GR_PARK_WOKEN;
    atomic_store(&m->in_poll, 1);
    /* An unpark that came before in_poll was set: do not block (see m_unpark). */
    uint32_t notified = GR_PARK_NOTIFIED;
    if (!atomic_compare_exchange_strong(&m->park.state, &notified, GR_PARK_EMPTY) &&
        gr_netpoll_block(np, timeout) < 0)
        rc = GR_PARK_INTR;
    atomic_store(&m->in_poll, 0);
    /* seq_cst: the store of blocked, then the loads of want_poll, pairs with take_poller's
     * store of want_poll, then its CAS of blocked: either that M gets the poller, or this
     * one wakes it to take it (it sleeps with fds of its own nobody else would poll). */
    gr_netpoll_unblock(np);
    gr_sched *s = m->sched;
    for (int i = 0; i < s->nprocs; i++) {
        if (&s->ms[i] != m && atomic_load(&s->ms[i].want_poll)) {
            m_unpark(&s->ms[i]);
            break; /* that one wakes the next when it leaves in turn */
        }
    }
    return rc;
}

/* own_only: park even if shared work is in sight (its Ms are busy, see shared_work_persists)
 * for at most timeout_ns (< 0: until woken). */
static int park_idle(gr_m *m, int own_only, int64_t timeout_ns)
{
    gr_sched *s = m->sched;
    gr_idle_end_spin(&s->idle, m->id);
    pthread_mutex_lock(&s->idle.mu);
    gr_idle_push_locked(&s->idle, m->id);
    /* The last M to go idle checks for deadlock. Everything it reads is quiet: every
     * other M is in the idle set and published its state when it took this lock. */
    int64_t recheck = timeout_ns;
    if (atomic_load(&s->idle.nmidle) == s->nprocs && !gr_sched_closing(s) &&
        atomic_load(&s->ntimers) == 0 && gr_ctimers_earliest(s->ctimers) == INT64_MAX &&
        atomic_load(&s->nexternal) == 0 && gr_netpoll_nwait(s->netpoll) == 0 &&
        !work_anywhere(s, m) && gr_sched_live(s) > 0) {
        /* relaxed: a stale deferral only moves the report by one recheck period. */
        int64_t until = atomic_load_explicit(&s->deadlock_defer_until, memory_order_relaxed);
        int64_t now = gr_nanotime();
        if (now >= until) {
            gr_idle_remove_locked(&s->idle, m->id);
            pthread_mutex_unlock(&s->idle.mu);
            return PARK_DEADLOCK;
        }
        if (recheck < 0 || until - now < recheck)
            recheck = until - now;
    }
    pthread_mutex_unlock(&s->idle.mu);
    /* Pairs with the fence in wakep (see idle.h). */
    atomic_thread_fence(memory_order_seq_cst);
    int rc = GR_PARK_WOKEN;
    if (!(own_only ? own_work(m) : work_for(s, m)) && !closing_unseen(m)) {
        GR_STAT_INC(m->p->stats.mparks);
        m->steal_grant = 0;
        int64_t timeout = until_deadline(m, recheck);
        int poll = atomic_load(&m->nfdwait) > 0 && take_poller(m);
        GR_TRACE(GR_TEV_M_PARK, 0, 0, (uint32_t)poll);
        rc = poll ? poll_idle(m, timeout) : gr_park_wait(&m->park, timeout);
        GR_TRACE(GR_TEV_M_WAKE, 0, (uint64_t)rc, (uint32_t)poll);
        atomic_store(&m->want_poll, 0);
    }
    pthread_mutex_lock(&s->idle.mu);
    gr_idle_remove_locked(&s->idle, m->id);
    pthread_mutex_unlock(&s->idle.mu);
    return rc == GR_PARK_INTR ? PARK_INTR : PARK_RETRY;
}

/* ---- GIL-aware stealing ---------------------------------------------------------------- */
/* Another M is running Python (or about to): only then can taking shared work cost a GIL
 * hand-off, or split a busy M's tasks. */
static int others_active(gr_sched *s, gr_m *m)
{
    for (int i = 0; i < s->nprocs; i++)
        if (&s->ms[i] != m && atomic_load_explicit(&s->ms[i].active, memory_order_relaxed))
            return 1;
    return 0;
}


void gr_sched_set_gil_policy(gr_sched *s, int64_t contended_ns)
{
    s->gil_contended_ns = s->nprocs > 1 ? contended_ns : 0;
    /* M0 is the thread that called run() and holds the GIL; the others have yet to see
     * it free before they may take shared work (a new thread's first wait for the GIL
     * happens in CPython's thread bootstrap, where nobody measures it). */
    for (int i = 1; i < s->nprocs; i++)
        s->ms[i].gil_contended = s->gil_contended_ns > 0;
}

void gr_m_gil_waited(gr_m *m, int64_t waited_ns)
{
    int64_t limit = m->sched->gil_contended_ns;
    if (limit <= 0)
        return;
    if (waited_ns >= limit) {
        m->gil_contended = 1;
        m->nshort = 0;
        GR_STAT_INC(m->p->stats.gil_contended);
    } else if (++m->nshort >= GR_GIL_FREE_WAITS) {
        m->gil_contended = 0;
        m->nbackoff = 0;
    }
}

/* A contended M leaves shared work alone, unless it has backed off GR_BACKOFF_ROUNDS times
 * in a row while that work stayed there: then whoever holds the GIL has not come back to
 * its queues for about 100 ms, and running one batch here is what keeps a spawned task
 * from starving behind a task that never parks. */
enum { SHARED_TAKE, SHARED_BACKOFF, SHARED_ASK };

static int leave_shared_work(gr_m *m)
{
    if (m->sched->gil_contended_ns == 0 || m->seen_closing || !others_active(m->sched, m))
        return SHARED_TAKE;
    /* Every take goes through gr_sched_wait's look at the Ms holding the work first. */
    if (!m->steal_grant)
        return SHARED_ASK;
    if (!m->gil_contended)
        return SHARED_TAKE;
    if (m->nbackoff >= GR_BACKOFF_ROUNDS) {
        m->nbackoff = 0;
        GR_STAT_INC(m->p->stats.backoff_steals);
        return SHARED_TAKE;
    }
    m->steal_grant = 0;
    return SHARED_BACKOFF;
}

void gr_sched_backoff(gr_m *m)
{
    atomic_store_explicit(&m->active, 0, memory_order_relaxed);
    /* Not searching while it sleeps: let a submit wake another M instead. */
    gr_idle_end_spin(&m->sched->idle, m->id);
    uint32_t shift = m->nbackoff < GR_BACKOFF_MAX_SHIFT ? m->nbackoff : GR_BACKOFF_MAX_SHIFT;
    m->nbackoff++;
    GR_STAT_INC(m->p->stats.backoffs);
    GR_TRACE(GR_TEV_M_BACKOFF, 0, 0, shift);
    /* Not in the idle set: a submit does not wake a backing-off M (the GIL holder would
     * pay a futex wake for nothing). Its own inbox, close and its timers still do. */
    gr_park_wait(&m->park, until_deadline(m, (int64_t)GR_BACKOFF_NS << shift));
    atomic_store_explicit(&m->active, 1, memory_order_relaxed);
}

/* ---- the scheduling decision ---------------------------------------------------------- */

/* Tasks wait on fds, no M is blocked in the poller, and nobody has polled for a while: a
 * busy M polls, or fds would wait behind tasks that keep its queues full (Go's sysmon). */
static int netpoll_stale(gr_sched *s)
{
    gr_netpoll *np = s->netpoll;
    return gr_netpoll_nwait(np) > 0 && !atomic_load(&np->blocked) &&
           gr_nanotime() - atomic_load_explicit(&np->lastpoll, memory_order_relaxed) >
               GR_NETPOLL_STALE_NS;
}

int gr_sched_next(gr_m *m, gr_g **out)
{
    gr_sched *s = m->sched;
    gr_g *g;
    if (closing_unseen(m)) {
        m->seen_closing = 1;
        return GR_NEXT_CLOSING;
    }
    if (ctimers_due(m))
        return GR_NEXT_TIMERS;
    if (m->p->schedtick % GR_FAIR_TICKS == 0 && netpoll_stale(s))
        gr_netpoll_poll(s->netpoll);
    if ((g = next_local(m)))
        goto found;
    /* Out of local work: the network first (Go's findRunnable), a task pinned here may be
     * ready. Waiters of other Ms go to their inboxes. */
    if (gr_netpoll_nwait(s->netpoll) > 0 && gr_netpoll_poll(s->netpoll) > 0 && (g = next_local(m)))
        goto found;
    switch (leave_shared_work(m)) {
    case SHARED_BACKOFF:
        return shared_work(s, m) ? GR_NEXT_BACKOFF : GR_NEXT_NONE;
    case SHARED_ASK:
        return GR_NEXT_NONE;
    default:
        break;
    }
    if ((g = take_global(m)))
        goto found;
    if (m->seen_closing && m->started.n == 0)
        return GR_NEXT_EXIT;
    if ((g = steal_work(m)))
        goto found;
    return GR_NEXT_NONE;
found:
    if (gr_idle_found_work(&s->idle, m->id))
        wakep(s); /* the last spinner to find work wakes another */
    GR_STAT_INC(m->p->stats.executed);
    GR_TRACE(GR_TEV_GO_RUN, g->id, 0, !gr_g_started(g));
    gr_g_move(g, GR_G_RUNNABLE, GR_G_RUNNING, "a G handed to its M twice");
    gr_obs_running(&m->p->stats.obs, g);
    *out = g;
    return GR_NEXT_G;
}

/* Tasks the other Ps have handed to their Ms so far: how busy their schedulers are. */
static uint64_t others_executed(gr_sched *s, gr_m *m)
{
    uint64_t n = 0;
    for (int i = 0; i < s->nprocs; i++)
        if (&s->ps[i] != m->p)
            n += GR_STAT_GET(s->ps[i].stats.executed);
    return n;
}

/* CPU time the other Ms' threads have used: an M that the OS has descheduled (a loaded
 * machine) runs no tasks, and must not look stuck in one long call. */
static int64_t others_cpu_ns(gr_sched *s, gr_m *m)
{
    int64_t n = 0;
    struct timespec ts;
    for (int i = 0; i < s->nprocs; i++) {
        gr_m *o = &s->ms[i];
        /* acquire: pairs with gr_m_bind's release, so cpuclock is set. */
        if (o != m && atomic_load_explicit(&o->has_cpuclock, memory_order_acquire) &&
            clock_gettime(o->cpuclock, &ts) == 0)
            n += (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    return n;
}

enum { SHARED_PERSISTS, SHARED_GONE, SHARED_BUSY };


/* GIL builds: whether to contend for the GIL to take shared work. PERSISTS if it stays in
 * sight for GR_STEAL_GRACE_NS (or own work or shutdown shows up), GONE if it goes away
 * first, BUSY if the other Ms meanwhile keep running task after task.
 *   - GONE: a task spawned by a task that parks soon is taken by its own M within
 *     microseconds; contending for the GIL to steal it would force a switch on the M
 *     running Python for nothing (Go's runqsteal sleeps 3 us before it takes a runnext
 *     for the same reason).
 *   - BUSY: an M that keeps scheduling runs Python between short parks (a network server's
 *     tasks), whose GIL releases (each recv and send) make the GIL look free to a waiter.
 *     Work taken from it would only take turns with it for the GIL, and a task started
 *     here stays here for good (rule 2), with a GIL hand-off for every wake-up between
 *     the two Ms. Only an M stuck in one long call (C code without the GIL, or Python the
 *     back-off valve deals with) leaves its queue to others. */
static int shared_work_persists(gr_m *m)
{
    gr_sched *s = m->sched;
    int64_t start = gr_nanotime(), cpu0 = others_cpu_ns(s, m);
    uint64_t ran = others_executed(s, m);
    for (;;) {
        if (own_work(m) || closing_unseen(m) || !others_active(s, m))
            return SHARED_PERSISTS;
        if (!shared_work(s, m))
            return SHARED_GONE;
        int64_t wall = gr_nanotime() - start, cpu = others_cpu_ns(s, m) - cpu0;
        /* Task after task, on the CPU a good part of the time (not an M that sleeps in a
         * blocking call between short tasks, which stealing does help). */
        if (others_executed(s, m) - ran >= GR_BUSY_RUNS && 4 * cpu >= wall)
            return SHARED_BUSY;
        /* A grace of the holders' CPU time without getting through their queues; or they
         * sit in a call that uses none (a blocking syscall), long enough. */
        if (cpu >= GR_STEAL_GRACE_NS || wall >= GR_STEAL_GRACE_MAX_NS)
            return SHARED_PERSISTS;
        /* Outside the idle set: only this M's own wake-ups end the nap early. */
        gr_park_wait(&m->park, GR_STEAL_GRACE_STEP_NS);
    }
}

static int sched_wait(gr_m *m);

int gr_sched_wait(gr_m *m)
{
    atomic_store_explicit(&m->active, 0, memory_order_relaxed);
    int rc = sched_wait(m);
    atomic_store_explicit(&m->active, 1, memory_order_relaxed);
    return rc;
}

static int sched_wait(gr_m *m)
{
    gr_sched *s = m->sched;
    int busy = 0; /* the Ms with shared work are busy: sleep a grace period, then look again */
    for (;;) {
        if (busy || !(s->nprocs > 1 && spin_for_work(m))) {
            switch (park_idle(m, busy, busy ? GR_STEAL_GRACE_NS : -1)) {
            case PARK_DEADLOCK:
                return GR_NEXT_DEADLOCK;
            case PARK_INTR:
                return GR_NEXT_INTR;
            default:
                break;
            }
            busy = 0;
            /* A park that timed out with nothing to do (a deferred deadlock check) */
            if (!work_for(s, m) && !closing_unseen(m))
                continue;
        }
        if (s->gil_contended_ns == 0 || own_work(m) || !shared_work(s, m))
            return GR_NEXT_NONE;
        switch (shared_work_persists(m)) {
        case SHARED_PERSISTS:
            m->steal_grant = 1;
            return GR_NEXT_NONE;
        case SHARED_BUSY:
            busy = 1;
            break;
        default:
            break;
        }
    }
}

void gr_sched_close(gr_sched *s)
{
    /* Refuse spawns from outside first: an M may exit only once the global queue is
     * empty, and a thread outside the runtime that kept spawning into it would hold the
     * whole shutdown hostage (seen: seconds, against a thread calling go() in a loop). */
    gr_globalq_close(&s->gq);
    atomic_store(&s->closing, 1);
    for (int i = 0; i < s->nprocs; i++)
        m_unpark(&s->ms[i]);
}

void gr_sched_defer_deadlock(gr_sched *s, int64_t until)
{
    atomic_store_explicit(&s->deadlock_defer_until, until, memory_order_relaxed);
}

void gr_sched_external_add(gr_sched *s, int64_t delta) { atomic_fetch_add(&s->nexternal, delta); }

void gr_sched_pstats(gr_sched *s, int i, gr_pstats_snapshot *o)
{
    gr_pstats *st = &s->ps[i].stats;
    o->spawned = GR_STAT_GET(st->spawned);
    o->finished = GR_STAT_GET(st->finished);
    o->executed = GR_STAT_GET(st->executed);
    o->stolen = GR_STAT_GET(st->stolen);
    o->from_global = GR_STAT_GET(st->from_global);
    o->steals_local = GR_STAT_GET(st->steals_local);
    o->steals_remote = GR_STAT_GET(st->steals_remote);
    o->task_parks = GR_STAT_GET(st->task_parks);
    o->mparks = GR_STAT_GET(st->mparks);
    o->gil_contended = GR_STAT_GET(st->gil_contended);
    o->backoffs = GR_STAT_GET(st->backoffs);
    o->backoff_steals = GR_STAT_GET(st->backoff_steals);
    o->runq_len = gr_runq_len(&s->ps[i].runq);
}

uint64_t gr_sched_globalq_len(gr_sched *s) { return gr_globalq_len(&s->gq); }
int gr_sched_nmidle(gr_sched *s) { return atomic_load(&s->idle.nmidle); }
int gr_sched_nmspinning(gr_sched *s) { return atomic_load(&s->idle.nmspinning); }
