"""Build csrc's queue, timer, park, idle and lock code (and the channel timers, which
bring the channel and scheduler code along) as a cffi module for the csrc tests.

The structs in csrc use _Atomic and _Alignas, which cffi's parser does not accept, so the
cdef below declares them opaquely (or partially, with "...;", letting the C compiler fill in
the layout) and the C helpers in HELPERS allocate and inspect them. The helpers also hold
the concurrent loops of the race tests: a loop written in C runs at full speed, and cffi
releases the GIL around every call, so two Python threads that each call one of them race
for real.

    from csrc_ffi import get
    ffi, lib = get()

get() builds once per process into a fresh temporary directory, so the sanitizer flags in
GOROUTINES_TEST_CFLAGS / GOROUTINES_TEST_LDFLAGS (space-separated) always take effect:

    PY=$(python -c 'import sys; print(sys.executable)')   # not a pyenv shim: bash
    GOROUTINES_TEST_CFLAGS="-fsanitize=thread" GOROUTINES_TEST_LDFLAGS="-fsanitize=thread" \
    TSAN_OPTIONS=log_path=/tmp/tsan LD_PRELOAD=$(gcc -print-file-name=libtsan.so) \
    $PY -m pytest tests/test_csrc_*.py          # then: ls /tmp/tsan.* (none = clean)

    GOROUTINES_TEST_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
    GOROUTINES_TEST_LDFLAGS="-fsanitize=address,undefined" ASAN_OPTIONS=detect_leaks=0 \
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) $PY -m pytest tests/test_csrc_*.py -s

The interpreter must be started directly: bash itself crashes with libtsan preloaded, so
a shell-script shim segfaults before Python starts. pytest captures stderr, where sanitizer
reports go, and shows it only for failing tests: hence TSan's log_path and, for UBSan,
-fno-sanitize-recover (a report aborts the run).
"""

import importlib
import os
import sys
import tempfile
import threading
from pathlib import Path

from ft313 import require

CSRC = Path(__file__).resolve().parent.parent / "csrc"
SOURCES = ["lock.c", "runq.c", "globalq.c", "timer.c", "park.c", "idle.c", "chan.c", "sched.c",
           "wait.c", "ctimer.c", "throw.c", "netpoll.c", "netpoll_epoll.c", "trace.c"]
MODULE = "_grcsrc_test"

CDEF = """
#define GR_RUNQ_SIZE ...
#define GR_RUNNEXT_PINNED ...
#define GR_PARK_EMPTY ...
#define GR_PARK_PARKED ...
#define GR_PARK_NOTIFIED ...
#define GR_PARK_WOKEN ...
#define GR_PARK_TIMEOUT ...
#define GR_PARK_INTR ...
#define INT64_MAX ...
#define GR_CTIMER_NONE ...
#define GR_CTIMER_SENT ...
#define GR_CTIMER_DROPPED ...
#define GR_CTIMER_FUNC ...
#define GR_CTIMER_ACTIVE ...
#define GR_CTIMER_KICK ...
#define GR_CTIMER_ECLOSED ...
#define GR_CTIMER_ENOMEM ...

typedef struct gr_g gr_g;
struct gr_g {
    uint64_t id;
    gr_g *schedlink;
    int32_t timer_idx;
    int64_t timer_when;
    ...;
};
typedef struct gr_runq gr_runq;
typedef struct gr_globalq gr_globalq;
typedef struct gr_park gr_park;
typedef struct gr_lock gr_lock;
typedef struct gr_timer { int64_t when; gr_g *g; } gr_timer;
typedef struct gr_timerheap { gr_timer *t; uint32_t n, cap; } gr_timerheap;
typedef struct gr_idle { int *stack; uint8_t *in_set; int n; ...; } gr_idle;
typedef struct gr_chan gr_chan;
typedef struct gr_ctimer { int64_t period; int32_t idx; uint32_t blocked; gr_chan *chan;
                           void *obj; ...; } gr_ctimer;
typedef struct gr_ctimers { uint32_t n, cap; uint64_t gen; uint32_t open; ...; } gr_ctimers;
typedef struct gr_netpoll { int epfd; uint32_t gen; ...; } gr_netpoll;
typedef struct gr_pollfd gr_pollfd;
typedef struct gr_sched gr_sched;
#define GR_WAIT_OK ...
#define GR_WAIT_PARK ...
#define GR_WAIT_CLOSED ...
#define GR_WAIT_TIMEOUT ...
#define GR_WAIT_BUSY ...
#define GR_POLL_READ ...
#define GR_POLL_WRITE ...

/* runq.h */
void gr_runq_init(gr_runq *q);
void gr_runq_put(gr_runq *q, gr_g *g, gr_globalq *overflow);
int gr_runq_push(gr_runq *q, gr_g *g);
gr_g *gr_runq_pop(gr_runq *q);
gr_g *gr_runq_put_next(gr_runq *q, gr_g *g, int pinned, gr_globalq *overflow);
gr_g *gr_runq_take_next(gr_runq *q);
gr_g *gr_runq_steal(gr_runq *dst, gr_runq *src, int steal_next, uint32_t *nstolen);
uint32_t gr_runq_len(gr_runq *q);
int gr_runq_stealable(gr_runq *q);

/* globalq.h */
void gr_globalq_put_batch(gr_globalq *q, gr_g *head, gr_g *tail, uint32_t n);
void gr_globalq_put(gr_globalq *q, gr_g *g);
gr_g *gr_globalq_get_batch(gr_globalq *q, uint32_t max, uint32_t *n);
uint64_t gr_globalq_len(gr_globalq *q);

/* timer.h */
void gr_timerheap_init(gr_timerheap *h);
void gr_timerheap_free(gr_timerheap *h);
int gr_timerheap_add(gr_timerheap *h, gr_g *g, int64_t when);
int gr_timerheap_del(gr_timerheap *h, gr_g *g);
gr_g *gr_timerheap_pop_expired(gr_timerheap *h, int64_t now);
int64_t gr_timerheap_earliest(gr_timerheap *h);

/* park.h, lock.h */
int gr_park_wait(gr_park *p, int64_t timeout_ns);
void gr_park_unpark(gr_park *p);
int64_t gr_nanotime(void);
void gr_lock_acquire(gr_lock *l);
void gr_lock_release(gr_lock *l);

/* idle.h */
int gr_idle_init(gr_idle *s, int nms);
void gr_idle_destroy(gr_idle *s);
void gr_idle_push_locked(gr_idle *s, int m);
int gr_idle_remove_locked(gr_idle *s, int m);
int gr_idle_pop_locked(gr_idle *s);

/* chan.h (what the channel timers use) */
gr_chan *gr_chan_new(uint64_t cap);
void gr_chan_free(gr_chan *c);
void *gr_chan_take_buffered(gr_chan *c);
uint64_t gr_chan_len(gr_chan *c);
int gr_chan_close(gr_chan *c);

/* ctimer.h */
void gr_ctimers_init(gr_ctimers *h);
void gr_ctimers_destroy(gr_ctimers *h);
void gr_ctimers_open(gr_ctimers *h);
void gr_ctimers_close(gr_ctimers *h);
gr_ctimer *gr_ctimers_drop(gr_ctimers *h);
void gr_ctimer_init(gr_ctimer *t, gr_chan *chan, void *obj);
int gr_ctimer_reset(gr_ctimers *h, gr_ctimer *t, int64_t when, int64_t period, void **stale);
int gr_ctimer_stop(gr_ctimers *h, gr_ctimer *t, void **stale);
int gr_ctimer_block(gr_ctimers *h, gr_ctimer *t);
void gr_ctimer_unblock(gr_ctimers *h, gr_ctimer *t);
int gr_ctimer_run(gr_ctimers *h, gr_ctimer *t, int64_t now, void *elem);
void gr_ctimer_forget(gr_ctimers *h, gr_ctimer *t);
int gr_ctimers_fire(gr_ctimers *h, int64_t now, void *elem, gr_ctimer **func);
int64_t gr_ctimers_earliest(gr_ctimers *h);
int64_t gr_ctimer_when(gr_ctimer *t);

/* netpoll.h */
void gr_netpoll_init(gr_netpoll *np);
void gr_netpoll_destroy(gr_netpoll *np);
gr_pollfd *gr_netpoll_open(gr_netpoll *np, int fd, uint32_t *seq, int *err);
int gr_netpoll_close_fd(gr_netpoll *np, int fd);
int gr_netpoll_close(gr_netpoll *np, gr_pollfd *pd, uint32_t seq);
int gr_netpoll_poll(gr_netpoll *np);
int gr_netpoll_try_block(gr_netpoll *np);
void gr_netpoll_unblock(gr_netpoll *np);
int gr_netpoll_block(gr_netpoll *np, int64_t timeout_ns);
void gr_netpoll_break(gr_netpoll *np);
int64_t gr_netpoll_nwait(gr_netpoll *np);

/* trace.h */
typedef struct gr_trace_ev { int64_t ts; uint64_t g; uint64_t arg; uint16_t kind; int16_t m;
                             uint32_t aux; } gr_trace_ev;
typedef struct gr_trace_rec { gr_trace_ev ev; uint32_t thread; uint32_t pad; } gr_trace_rec;
int gr_trace_start(uint32_t cap);
void gr_trace_stop(void);
int gr_trace_collect(gr_trace_rec **out, size_t *n, uint64_t *dropped);
void gr_trace_emit(uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux);
uint64_t gr_trace_current(void);
void free(void *p);

/* test helpers (HELPERS below) */
gr_g *t_g_new(int n);
void t_g_free(gr_g *g);
intptr_t t_g_index(gr_g *base, gr_g *g);
gr_g *t_g_at(gr_g *base, int i);

gr_runq *t_runq_new(void);
void t_runq_free(gr_runq *q);
void t_runq_set_base(gr_runq *q, uint32_t base);
uint32_t t_runq_head(gr_runq *q);
uint32_t t_runq_tail(gr_runq *q);
uintptr_t t_runq_runnext(gr_runq *q);

gr_globalq *t_globalq_new(void);
void t_globalq_free(gr_globalq *q);

gr_park *t_park_new(void);
void t_park_free(gr_park *p);
uint32_t t_park_state(gr_park *p);
int t_park_pingpong(gr_park *mine, gr_park *peer, int side, int64_t n, int64_t timeout_ns);
void t_pingpong_reset(void);

gr_lock *t_lock_new(void);
void t_lock_free(gr_lock *l);
int64_t t_lock_hammer(gr_lock *l, int64_t iters);
int64_t t_lock_counter(void);
void t_lock_counter_reset(void);

gr_idle *t_idle_new(int nms);
void t_idle_free(gr_idle *s);
void t_idle_lock(gr_idle *s);
void t_idle_unlock(gr_idle *s);
int t_idle_nmidle(gr_idle *s);

typedef struct t_race t_race;
t_race *t_race_new(gr_runq *victim, gr_globalq *gq, gr_g *base, int n, int nthieves);
void t_race_free(t_race *r);
int64_t t_race_violations(t_race *r);
int64_t t_race_steals(t_race *r);
int64_t t_race_overflows(t_race *r);
int64_t t_owner_loop(t_race *r, int32_t *out, int64_t cap);
int64_t t_thief_loop(t_race *r, gr_runq *own, gr_runq *victim2, int stolen_from,
                     int32_t *out, int64_t cap);
int64_t t_drain(gr_runq *q, gr_globalq *gq, gr_g *base, int32_t *out, int64_t cap);

gr_ctimers *t_ctimers_new(void);
void t_ctimers_free(gr_ctimers *h);
gr_ctimer *t_ctimer_new(int n);
void t_ctimer_free(gr_ctimer *t);
int64_t t_ct_arm_loop(gr_ctimers *h, gr_ctimer *t, int64_t n);
int64_t t_ct_fire_loop(gr_ctimers *h, int lazy_t_index, gr_ctimer *t);
int64_t t_ct_recv_loop(gr_chan *c);
void t_ct_race_reset(void);
void t_ct_race_stop(void);
int64_t t_ct_race_stale(void);
int64_t t_ct_race_dropped(void);

gr_netpoll *t_np_new(void);
gr_sched *t_np_sched_new(void);
void t_np_sched_free(gr_sched *s);
int t_np_begin(gr_netpoll *np, gr_sched *s, gr_pollfd *pd, uint32_t seq, int mode, gr_g *g,
               int64_t deadline);
int t_np_state(gr_g *g);
int t_np_finish(gr_netpoll *np, gr_sched *s, gr_pollfd *pd, int mode, gr_g *g);
int64_t t_np_reader(gr_netpoll *np, gr_sched *s, gr_g *g, int fd, int64_t want, int64_t *parks);
int64_t t_np_writer(int fd, int64_t n);
int64_t t_np_poller(gr_netpoll *np, int block);
void t_np_stop(int stop);

int64_t t_trace_write(uint64_t first, int64_t n);
int64_t t_trace_check(gr_trace_rec *recs, size_t n);
"""

HELPERS = r"""
/* Python.h (included first by cffi) defines _GNU_SOURCE. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

#include "ctimer.h"
#include "g.h"
#include "netpoll.h"
#include "sched.h"
#include "globalq.h"
#include "idle.h"
#include "lock.h"
#include "park.h"
#include "runq.h"
#include "timer.h"
#include "trace.h"

/* ---- G's: a calloc'd array, identified by index ---------------------------------- */
static gr_g *t_g_new(int n)
{
    gr_g *g = calloc((size_t)n, sizeof *g);
    if (!g)
        return NULL;
    for (int i = 0; i < n; i++) {
        g[i].id = (uint64_t)i;
        g[i].timer_idx = -1;
    }
    return g;
}
static void t_g_free(gr_g *g) { free(g); }
static intptr_t t_g_index(gr_g *base, gr_g *g) { return g ? (intptr_t)(g - base) : -1; }
static gr_g *t_g_at(gr_g *base, int i) { return base + i; }

/* ---- run queues ------------------------------------------------------------------ */
static gr_runq *t_runq_new(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(gr_runq)) != 0)
        return NULL;
    gr_runq_init(p);
    return p;
}
static void t_runq_free(gr_runq *q) { free(q); }
/* Start an empty ring at an arbitrary index, to exercise 32-bit wrap-around. */
static void t_runq_set_base(gr_runq *q, uint32_t base)
{
    atomic_store(&q->head, base);
    atomic_store(&q->tail, base);
}
static uint32_t t_runq_head(gr_runq *q) { return atomic_load(&q->head); }
static uint32_t t_runq_tail(gr_runq *q) { return atomic_load(&q->tail); }
static uintptr_t t_runq_runnext(gr_runq *q) { return atomic_load(&q->runnext); }

static gr_globalq *t_globalq_new(void)
{
    gr_globalq *q = malloc(sizeof *q);
    if (q)
        gr_globalq_init(q);
    return q;
}
static void t_globalq_free(gr_globalq *q)
{
    gr_globalq_destroy(q);
    free(q);
}

/* ---- park ------------------------------------------------------------------------ */
static gr_park *t_park_new(void) { return calloc(1, sizeof(gr_park)); }
static void t_park_free(gr_park *p) { free(p); }
static uint32_t t_park_state(gr_park *p) { return atomic_load(&p->state); }

/* Two threads take turns n times: side 0 moves turn 2k -> 2k+1, side 1 moves 2k+1 -> 2k+2.
 * Each publishes the new turn, then unparks its peer; waits for its turn by parking. A lost
 * wake-up shows as a park that times out with the turn still not ours. Returns the number
 * of such timeouts (the loop gives up at the first one). */
static _Atomic int64_t t_turn;
static void t_pingpong_reset(void) { atomic_store(&t_turn, 0); }
static int t_park_pingpong(gr_park *mine, gr_park *peer, int side, int64_t n, int64_t timeout_ns)
{
    for (int64_t k = 0; k < n; k++) {
        int64_t want = 2 * k + side;
        while (atomic_load(&t_turn) != want) {
            if (gr_park_wait(mine, timeout_ns) == GR_PARK_TIMEOUT &&
                atomic_load(&t_turn) != want)
                return 1;
        }
        atomic_store(&t_turn, want + 1);
        gr_park_unpark(peer);
    }
    return 0;
}

/* ---- lock ------------------------------------------------------------------------ */
static gr_lock *t_lock_new(void) { return calloc(1, sizeof(gr_lock)); }
static void t_lock_free(gr_lock *l) { free(l); }
static int64_t t_lock_plain_counter; /* deliberately not atomic: the lock guards it */
static int64_t t_lock_counter(void) { return t_lock_plain_counter; }
static void t_lock_counter_reset(void) { t_lock_plain_counter = 0; }
static int64_t t_lock_hammer(gr_lock *l, int64_t iters)
{
    for (int64_t i = 0; i < iters; i++) {
        gr_lock_acquire(l);
        int64_t v = t_lock_plain_counter;
        if ((i & 63) == 0)
            sched_yield(); /* hold the lock across a yield now and then: forces waiters */
        t_lock_plain_counter = v + 1;
        gr_lock_release(l);
    }
    return iters;
}

/* ---- idle ------------------------------------------------------------------------ */
static gr_idle *t_idle_new(int nms)
{
    gr_idle *s = malloc(sizeof *s);
    if (s && gr_idle_init(s, nms) != 0) {
        free(s);
        return NULL;
    }
    return s;
}
static void t_idle_free(gr_idle *s)
{
    gr_idle_destroy(s);
    free(s);
}
static void t_idle_lock(gr_idle *s) { pthread_mutex_lock(&s->mu); }
static void t_idle_unlock(gr_idle *s) { pthread_mutex_unlock(&s->mu); }
static int t_idle_nmidle(gr_idle *s) { return atomic_load(&s->nmidle); }

/* ---- the stealing race ----------------------------------------------------------- */
/* G's whose index is a multiple of T_PINNED_EVERY stand for started G's: they only ever
 * enter the victim through put_next(pinned=1), and no thief may ever obtain one. */
#define T_PINNED_EVERY 61

typedef struct t_race {
    gr_runq *victim;
    gr_globalq *gq;
    gr_g *base;
    int n;
    int nthieves;
    _Atomic int ready;
    _Atomic int stop;
    _Atomic int hold; /* thieves pause while set */
    _Atomic int64_t violations;
    _Atomic int64_t steals;
    _Atomic int64_t attempts; /* thief loop iterations, for the owner's pacing */
    _Atomic int64_t overflows; /* owner puts that moved half the ring to the global queue */
} t_race;

static t_race *t_race_new(gr_runq *victim, gr_globalq *gq, gr_g *base, int n, int nthieves)
{
    t_race *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->victim = victim;
    r->gq = gq;
    r->base = base;
    r->n = n;
    r->nthieves = nthieves;
    return r;
}
static void t_race_free(t_race *r) { free(r); }
static int64_t t_race_violations(t_race *r) { return atomic_load(&r->violations); }
static int64_t t_race_steals(t_race *r) { return atomic_load(&r->steals); }
static int64_t t_race_overflows(t_race *r) { return atomic_load(&r->overflows); }

static int t_record(t_race *r, gr_g *g, int32_t *out, int64_t *k, int64_t cap)
{
    intptr_t i = g - r->base;
    if (i < 0 || i >= r->n || *k >= cap) {
        atomic_fetch_add(&r->violations, 1);
        return (int)-1;
    }
    out[(*k)++] = (int32_t)i;
    /* The owner wrote timer_when (a plain field) before it queued the G: reading it here
     * checks that the queue's hand-off publishes the G's contents (TSan sees a missing
     * release/acquire as a race), and the mark catches a G obtained twice. */
    if (g->timer_when != (int64_t)i + 1)
        atomic_fetch_add(&r->violations, 1);
    g->timer_when = -1;
    return (int)i;
}

/* The victim's owner: spawns base[0..n) (put with overflow to the global queue, or
 * put_next, pinned for the pinned indices) and now and then runs one (pop / take_next).
 * Every G it obtains goes to out. Starts once every thief is running; stops them at the end.
 * Pacing: every 128 G's it yields until some thief has gone round its loop again (bounded),
 * so the thieves really run during the whole loop even when the two threads share a CPU,
 * and not just before or after it. */
static int64_t t_owner_loop(t_race *r, int32_t *out, int64_t cap)
{
    int64_t k = 0, seen = 0;
    while (atomic_load(&r->ready) < r->nthieves)
        sched_yield();
    for (int i = 0; i < r->n; i++) {
        gr_g *g = &r->base[i];
        g->timer_when = (int64_t)i + 1; /* "initialise" the G before spawning it */
        /* Hold the thieves off for 500 G's in every 4096: the ring then fills and
         * overflows to the global queue (at least once per window, whatever the
         * scheduling), and the thieves come back to a full ring. */
        if (i % 4096 == 0)
            atomic_store(&r->hold, 1);
        else if (i % 4096 == 500)
            atomic_store(&r->hold, 0);
        if (i % 128 == 0) {
            for (int spin = 0; spin < 100000 && atomic_load(&r->attempts) == seen; spin++)
                sched_yield();
            seen = atomic_load(&r->attempts);
        }
        if (i % T_PINNED_EVERY == 0) {
            gr_g *kicked = gr_runq_put_next(r->victim, g, 1, r->gq);
            if (kicked)
                t_record(r, kicked, out, &k, cap);
        } else if (i % 5 == 0) {
            gr_g *kicked = gr_runq_put_next(r->victim, g, 0, r->gq);
            if (kicked) {
                /* only a pinned G comes back */
                if ((kicked - r->base) % T_PINNED_EVERY != 0)
                    atomic_fetch_add(&r->violations, 1);
                t_record(r, kicked, out, &k, cap);
            }
        } else {
            uint64_t before = gr_globalq_len(r->gq);
            gr_runq_put(r->victim, g, r->gq);
            if (gr_globalq_len(r->gq) != before)
                atomic_fetch_add(&r->overflows, 1);
        }
        if (i % 3 == 0) {
            gr_g *p = gr_runq_pop(r->victim);
            if (p)
                t_record(r, p, out, &k, cap);
        }
        if (i % 50 == 0) {
            gr_g *p = gr_runq_take_next(r->victim);
            if (p)
                t_record(r, p, out, &k, cap);
        }
        if (i % 1024 == 1000) {
            /* Empty the ring now and then: runnext is then all a thief can take, and
             * steal_next races with the owner's put_next / take_next. */
            gr_g *p;
            while ((p = gr_runq_pop(r->victim)) != NULL)
                t_record(r, p, out, &k, cap);
        }
    }
    atomic_store(&r->hold, 0);
    atomic_store(&r->stop, 1);
    return k;
}

/* A thief: steal from the victim (and victim2, when given) into its own ring, run the G
 * it got, then pop its whole ring (so the ring is empty for the next steal, as
 * gr_runq_steal requires). stolen_from: another thief steals from this thief's ring, so
 * its length after a steal may already be smaller than what the steal published. */
static int64_t t_thief_loop(t_race *r, gr_runq *own, gr_runq *victim2, int stolen_from,
                            int32_t *out, int64_t cap)
{
    int64_t k = 0;
    uint32_t iter = 0;
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load(&r->stop)) {
        atomic_fetch_add(&r->attempts, 1);
        for (int v = 0; v < 2; v++) {
            gr_runq *src = v == 0 ? r->victim : victim2;
            if (!src)
                continue;
            uint32_t got = 0;
            while (atomic_load(&r->hold) && !atomic_load(&r->stop)) {
                atomic_fetch_add(&r->attempts, 1);
                sched_yield();
            }
            if ((++iter & 3) == 0 && src == r->victim) {
                /* Every fourth steal first waits a little for a nearly full ring, so that
                 * it races with the owner moving half the ring to the global queue. */
                for (int spin = 0; spin < 4096 && gr_runq_len(src) < GR_RUNQ_SIZE - 8 &&
                                   !atomic_load(&r->stop);
                     spin++) {
                    atomic_fetch_add(&r->attempts, 1);
                    if ((spin & 63) == 63)
                        sched_yield(); /* let the owner have the CPU if we share one */
                }
            }
            gr_g *g = gr_runq_steal(own, src, (int)(iter & 1), &got);
            if (!g) {
                if (got != 0)
                    atomic_fetch_add(&r->violations, 1);
                continue;
            }
            atomic_fetch_add(&r->steals, 1);
            uint32_t len = gr_runq_len(own);
            if (got == 0 || got > GR_RUNQ_SIZE / 2 || len > got - 1 ||
                (!stolen_from && len != got - 1))
                atomic_fetch_add(&r->violations, 1);
            int i = t_record(r, g, out, &k, cap);
            if (i >= 0 && i % T_PINNED_EVERY == 0)
                atomic_fetch_add(&r->violations, 1); /* a pinned G was stolen */
            while ((g = gr_runq_pop(own)) != NULL) {
                i = t_record(r, g, out, &k, cap);
                if (i >= 0 && i % T_PINNED_EVERY == 0)
                    atomic_fetch_add(&r->violations, 1);
            }
        }
    }
    return k;
}

/* Empty q (ring, then runnext) and, when given, gq into out. Returns the count. */
static int64_t t_drain(gr_runq *q, gr_globalq *gq, gr_g *base, int32_t *out, int64_t cap)
{
    int64_t k = 0;
    gr_g *g;
    while (q && (g = gr_runq_pop(q)) != NULL && k < cap)
        out[k++] = (int32_t)(g - base);
    if (q && (g = gr_runq_take_next(q)) != NULL && k < cap)
        out[k++] = (int32_t)(g - base);
    if (gq) {
        uint32_t n;
        while ((g = gr_globalq_get_batch(gq, 1000, &n)) != NULL) {
            for (; g && k < cap; g = g->schedlink)
                out[k++] = (int32_t)(g - base);
        }
    }
    return k;
}

/* ---- channel timers ---------------------------------------------------------------- */
static gr_ctimers *t_ctimers_new(void)
{
    gr_ctimers *h = malloc(sizeof *h);
    if (h)
        gr_ctimers_init(h);
    return h;
}
static void t_ctimers_free(gr_ctimers *h)
{
    gr_ctimers_destroy(h);
    free(h);
}
static gr_ctimer *t_ctimer_new(int n) { return calloc((size_t)n, sizeof(gr_ctimer)); }
static void t_ctimer_free(gr_ctimer *t) { free(t); }

/* The stop/reset race: one thread re-arms a channel timer (blocked, so in the heap) to
 * fire at once, n times, then stops it; one fires the heap (or, lazily, the timer)
 * without pause; one receives. Every arm must end exactly once: its value received, or
 * revoked by the next reset/stop (which then reports ACTIVE). */
static _Atomic int t_ct_stop;
static _Atomic int64_t t_ct_stale, t_ct_dropped;
static void t_ct_race_reset(void)
{
    atomic_store(&t_ct_stop, 0);
    atomic_store(&t_ct_stale, 0);
    atomic_store(&t_ct_dropped, 0);
}
static void t_ct_race_stop(void) { atomic_store(&t_ct_stop, 1); }
static int64_t t_ct_race_stale(void) { return atomic_load(&t_ct_stale); }
static int64_t t_ct_race_dropped(void) { return atomic_load(&t_ct_dropped); }

static int64_t t_ct_arm_loop(gr_ctimers *h, gr_ctimer *t, int64_t n)
{
    int64_t active = 0;
    void *stale;
    for (int64_t i = 0; i < n; i++) {
        int rc = gr_ctimer_reset(h, t, gr_nanotime(), 0, &stale);
        active += (rc & GR_CTIMER_ACTIVE) != 0;
        if (stale)
            atomic_fetch_add(&t_ct_stale, 1);
        if ((i & 15) == 0)
            sched_yield();
    }
    active += gr_ctimer_stop(h, t, &stale);
    if (stale)
        atomic_fetch_add(&t_ct_stale, 1);
    return active;
}

static int64_t t_ct_fire_loop(gr_ctimers *h, int lazy, gr_ctimer *t)
{
    int64_t sent = 0;
    gr_ctimer *func;
    while (!atomic_load(&t_ct_stop)) {
        int64_t now = gr_nanotime();
        int rc = lazy ? gr_ctimer_run(h, t, now, (void *)1)
                      : gr_ctimers_fire(h, now, (void *)1, &func);
        if (rc == GR_CTIMER_SENT)
            sent++;
        else if (rc != GR_CTIMER_NONE)
            atomic_fetch_add(&t_ct_dropped, 1);
    }
    return sent;
}

/* ---- netpoll: a G parked by one thread, readied by a concurrent poller ------------ */

static gr_netpoll *t_np_new(void)
{
    gr_netpoll *np = malloc(sizeof *np);
    gr_netpoll_init(np);
    return np;
}

/* One M for the test G's to belong to: gr_ready pushes them on its P's inbox. */
static gr_sched *t_np_sched_new(void) { return gr_sched_new(1); }
static void t_np_sched_free(gr_sched *s) { gr_sched_free(s); }

/* The G as its M sees it: running, on M0, about to wait. */
static int t_np_begin(gr_netpoll *np, gr_sched *s, gr_pollfd *pd, uint32_t seq, int mode,
                      gr_g *g, int64_t deadline)
{
    atomic_store(&g->m, gr_sched_m(s, 0));
    atomic_store(&g->state, GR_G_RUNNING);
    return gr_pollfd_wait_begin(np, pd, seq, mode, g, deadline);
}

static int t_np_state(gr_g *g) { return (int)atomic_load(&g->state); }

/* After the G was readied: take it off M0's inbox (as the scheduler would), end the wait. */
static int t_np_finish(gr_netpoll *np, gr_sched *s, gr_pollfd *pd, int mode, gr_g *g)
{
    atomic_exchange(&gr_sched_m(s, 0)->p->inbox, NULL);
    atomic_store(&g->state, GR_G_RUNNING);
    return gr_pollfd_wait_end(np, pd, mode, g);
}

static _Atomic int t_np_stopped;
static void t_np_stop(int stop) { atomic_store(&t_np_stopped, stop); }

/* Read `want` bytes from the non-blocking fd the way the Python layer does: read until
 * EAGAIN, then wait and wait again. Returns the bytes read, or -1 - bytes if the wait
 * ended with CLOSED (the test closes pd to end a wait that would never wake). */
static int64_t t_np_reader(gr_netpoll *np, gr_sched *s, gr_g *g, int fd, int64_t want,
                           int64_t *parks)
{
    uint32_t seq;
    int err;
    gr_pollfd *pd = gr_netpoll_open(np, fd, &seq, &err);
    if (!pd)
        return -1000000 - err;
    int64_t got = 0;
    char buf[512];
    while (got < want) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            got += r;
            continue;
        }
        if (r == 0 || errno != EAGAIN)
            break;
        int rc = t_np_begin(np, s, pd, seq, GR_POLL_READ, g, GR_DEADLINE_NEVER);
        if (rc == GR_WAIT_PARK) {
            (*parks)++;
            while (atomic_load(&g->state) != GR_G_RUNNABLE)
                sched_yield();
            rc = t_np_finish(np, s, pd, GR_POLL_READ, g);
        }
        if (rc == GR_WAIT_CLOSED)
            return -1 - got;
    }
    return got;
}

static int64_t t_np_writer(int fd, int64_t n)
{
    int64_t done = 0;
    for (; done < n; done++) {
        char c = (char)done;
        if (write(fd, &c, 1) != 1)
            break;
        if ((done & 7) == 0)
            sched_yield();
    }
    return done;
}

/* Poll until stopped, as an idle M would: blocking (at most one thread) or not. */
static int64_t t_np_poller(gr_netpoll *np, int block)
{
    int64_t readied = 0;
    while (!atomic_load(&t_np_stopped)) {
        if (block && gr_netpoll_try_block(np)) {
            int n = gr_netpoll_block(np, 1000000);
            readied += n > 0 ? n : 0;
            gr_netpoll_unblock(np);
        } else {
            readied += gr_netpoll_poll(np);
        }
    }
    return readied;
}

/* ---- trace: a writer whose events carry checkable payloads ----------------------- */

/* Emit n events numbered from `first` (g = k, arg = ~k, aux = low bits of k): a torn
 * slot shows as a mismatch. Returns n. */
static int64_t t_trace_write(uint64_t first, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t k = first + (uint64_t)i;
        if (GR_TRACING())
            gr_trace_emit(GR_TEV_STEAL, k, ~k, (uint32_t)(k & 0xffffff));
    }
    return n;
}

/* Collected events, ring by ring: each must be intact, and consecutive within its ring.
 * Returns the number of violations. */
static int64_t t_trace_check(gr_trace_rec *recs, size_t n)
{
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        gr_trace_ev *e = &recs[i].ev;
        if (e->kind != GR_TEV_STEAL || e->arg != ~e->g || e->aux != (uint32_t)(e->g & 0xffffff))
            bad++;
        else if (i > 0 && recs[i - 1].thread == recs[i].thread &&
                 (recs[i - 1].ev.g + 1 != e->g || recs[i - 1].ev.ts > e->ts))
            bad++;
    }
    return bad;
}

static int64_t t_ct_recv_loop(gr_chan *c)
{
    int64_t got = 0;
    while (!atomic_load(&t_ct_stop)) {
        if (gr_chan_take_buffered(c))
            got++;
    }
    while (gr_chan_take_buffered(c))
        got++;
    return got;
}
"""

_lock = threading.Lock()
_cached = None


def _flags(var):
    return [f for f in os.environ.get(var, "").split() if f]


def build(tmpdir):
    """Compile the module into tmpdir and import it; returns (ffi, lib)."""
    cffi = require("cffi", "it refuses to build there")

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        MODULE,
        HELPERS,
        sources=[str(CSRC / s) for s in SOURCES],
        # -iquote, not include_dirs: csrc/sched.h would shadow the system <sched.h> that
        # <pthread.h> includes. csrc's own includes all use quotes.
        # -fno-wrapv: Python's own CFLAGS (which distutils adds) carry -fwrapv; the real
        # CMake build does not, and with it UBSan could not see signed overflow.
        # GR_DEBUG: the tests run with the invariant checks (throw.h) compiled in.
        extra_compile_args=["-std=c11", "-O1", "-g", "-pthread", "-fno-wrapv", "-DGR_DEBUG",
                            "-iquote", str(CSRC)]
        + _flags("GOROUTINES_TEST_CFLAGS"),
        extra_link_args=["-pthread"] + _flags("GOROUTINES_TEST_LDFLAGS"),
    )
    tmpdir = str(tmpdir)
    ffi.compile(tmpdir=tmpdir)
    sys.path.insert(0, tmpdir)
    try:
        sys.modules.pop(MODULE, None)
        importlib.invalidate_caches()
        mod = importlib.import_module(MODULE)
    finally:
        sys.path.remove(tmpdir)
    return mod.ffi, mod.lib


def get():
    """(ffi, lib), built once per process into a fresh temporary directory."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = build(tempfile.mkdtemp(prefix="grcsrc_"))
        return _cached
