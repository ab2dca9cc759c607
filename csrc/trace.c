/* trace.c: the tracer's rings (trace.h has the design). */
#include "trace.h"

#include <pthread.h>
#include <stdlib.h>

#include "lock.h"
#include "throw.h"

#define MIN_CAP 16u
#define MAX_CAP (1u << 28)
#define MAX_SIDE_CAP 4096u /* rings of threads that are not Ms */

/* One slot: every word a relaxed atomic, so that a reader racing the owner's overwrite
 * copies a torn slot it then discards, rather than racing on plain memory. */
typedef struct slot {
    _Atomic int64_t ts;
    _Atomic uint64_t g;
    _Atomic uint64_t arg;
    _Atomic uint64_t meta; /* kind | (uint16_t)m << 16 | aux << 32 */
} slot;

typedef struct ring {
    struct ring *next;   /* the registry (reg_mu) */
    uint32_t gen;        /* the session it was reset for: owner writes, under reg_mu */
    uint32_t thread;     /* its number in that session */
    uint64_t mask;       /* capacity - 1 */
    uint64_t base;       /* the first index the slots hold (a grown ring: see grow) */
    int small;           /* sized for a thread that is no M (MAX_SIDE_CAP) */
    int orphan;          /* its thread exited: freed by the next session's start */
    slot *slots;
    /* Events written so far (owner: release store; reader: acquire load). */
    _Alignas(64) _Atomic uint64_t head;
    /* 1 + the index being written: stored before the slot is touched (see put). */
    _Atomic uint64_t writing;
} ring;

_Atomic uint32_t gr_trace_flag;

/* Timestamps. A clock_gettime() costs ~40 ns on a VM, and ping-pong records 6 events per
 * round trip of ~1 us: the clock alone would cost a fifth. Where the kernel itself keeps
 * time with the TSC (its clocksource is "tsc": invariant and synchronized across CPUs), an
 * event stores the TSC (~14 ns) instead, and collection maps it linearly onto
 * gr_nanotime() through two anchors (start, collect), so every timestamp a reader sees is
 * on gr_nanotime()'s scale. Decided once per process, by the first start under reg_mu: a
 * thread reads it only after it took reg_mu to register its ring for the session. */
static int use_tsc;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
static int64_t anchor_ns, anchor_tick; /* reg_mu: taken at start */

#if defined(__x86_64__) || defined(__i386__)
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

static void choose_clock(void)
{
    char buf[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
    use_tsc = strcmp(buf, "tsc\n") == 0;
}

static inline int64_t tick(int tsc) { return tsc ? (int64_t)__rdtsc() : gr_nanotime(); }
#else
static void choose_clock(void) {}
static inline int64_t tick(int tsc) { return gr_nanotime(); }
#endif

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static ring *rings;                 /* reg_mu */
static uint32_t session_cap;        /* reg_mu */
static uint32_t session_threads;    /* reg_mu */
/* The session number. Written under reg_mu; read by writers without it (relaxed: a
 * writer that reads a stale number re-registers under reg_mu, which orders it). */
static _Atomic uint32_t session_gen;
/* Events that found no ring (out of memory). Relaxed add: a counter, pairs with nothing. */
static _Atomic uint64_t lost;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ring_key;
/* The calling thread's tracing state, in one thread-local (one TLS lookup per event);
 * initial-exec: the extension is loaded once, and its static TLS is 24 bytes. */
typedef struct tstate {
    ring *ring;
    uint64_t cur; /* the task it runs, as the trace sees it (gr_trace_current) */
    int mid;      /* its M (gr_trace_bind), -1 if none */
} tstate;
static _Thread_local tstate tl __attribute__((tls_model("initial-exec"))) = {NULL, 0, -1};

static void unlink_ring(ring *r)
{
    for (ring **pp = &rings; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    free(r->slots);
    free(r);
}

/* Thread exit. A ring of the current session is kept for the collector (an M's thread
 * ends with its run, and the trace is collected after): the next start frees it. */
static void ring_release(void *p)
{
    ring *r = p;
    pthread_mutex_lock(&reg_mu);
    if (r->gen == atomic_load_explicit(&session_gen, memory_order_relaxed) && r->slots)
        r->orphan = 1;
    else
        unlink_ring(r);
    pthread_mutex_unlock(&reg_mu);
    tl.ring = NULL; /* a later event on this exiting thread registers afresh */
}

static void make_key(void)
{
    if (pthread_key_create(&ring_key, ring_release) != 0)
        gr_throw("trace: pthread_key_create failed", __FILE__, __LINE__);
}

/* Give r (the caller's own, under reg_mu) cap slots, keeping its events. */
static int grow(ring *r, uint32_t cap)
{
    slot *ns = calloc(cap, sizeof(slot));
    if (!ns)
        return -1;
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed); /* our own */
    uint64_t old = r->slots ? r->mask + 1 : 0, lo = h > old ? h - old : 0;
    for (uint64_t i = lo; i < h; i++) {
        slot *from = &r->slots[i & r->mask], *to = &ns[i & (cap - 1)];
        atomic_store_explicit(&to->ts, atomic_load_explicit(&from->ts, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&to->g, atomic_load_explicit(&from->g, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&to->arg, atomic_load_explicit(&from->arg, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&to->meta, atomic_load_explicit(&from->meta, memory_order_relaxed),
                              memory_order_relaxed);
    }
    free(r->slots);
    r->slots = ns;
    r->mask = cap - 1;
    r->base = lo > r->base ? lo : r->base;
    return 0;
}

/* The calling thread's ring, reset for the current session at its first event there, or
 * grown when a thread that recorded as no M became one (run()'s caller creates main
 * before it binds M0). */
static ring *ring_for_session(int is_m)
{
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&reg_mu);
    uint32_t gen = atomic_load_explicit(&session_gen, memory_order_relaxed);
    ring *r = tl.ring;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            goto fail;
        r->next = rings;
        rings = r;
        tl.ring = r;
        if (pthread_setspecific(ring_key, r) != 0)
            gr_throw("trace: pthread_setspecific failed", __FILE__, __LINE__);
    }
    /* A thread that is no M (an offload thread) records a few events per call. */
    uint32_t cap = is_m || session_cap < MAX_SIDE_CAP ? session_cap : MAX_SIDE_CAP;
    if (r->gen == gen && r->slots) { /* a small ring whose thread is now an M */
        if (grow(r, cap) != 0)
            goto fail;
    } else {
        /* relaxed: readers read these under reg_mu, which we hold. */
        atomic_store_explicit(&r->head, 0, memory_order_relaxed);
        atomic_store_explicit(&r->writing, 0, memory_order_relaxed);
        r->base = 0;
        if (r->mask + 1 != cap || !r->slots) {
            free(r->slots);
            r->slots = NULL;
            if (grow(r, cap) != 0)
                goto fail;
        }
        r->gen = gen;
        r->thread = session_threads++;
    }
    r->small = cap != session_cap;
    pthread_mutex_unlock(&reg_mu);
    return r;
fail:
    pthread_mutex_unlock(&reg_mu);
    return NULL;
}

static void put(ring *r, int64_t ts, uint64_t g, uint64_t arg, uint64_t meta)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed); /* our own */
    /* The seqlock's write side: announce the overwrite, then touch the slot. Each slot
     * store is a release (a plain store on x86), pairing with read_ring's acquire loads:
     * a reader that sees any of them sees this `writing` too. */
    atomic_store_explicit(&r->writing, h + 1, memory_order_relaxed);
    slot *s = &r->slots[h & r->mask];
    atomic_store_explicit(&s->ts, ts, memory_order_release);
    atomic_store_explicit(&s->g, g, memory_order_release);
    atomic_store_explicit(&s->arg, arg, memory_order_release);
    atomic_store_explicit(&s->meta, meta, memory_order_release);
    /* release: pairs with read_ring's acquire load of head; the slot is complete. */
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

void gr_trace_emit(uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux)
{
    switch (kind) {
    case GR_TEV_GO_RUN:
    case GR_TEV_OFFLOAD_RUN:
        tl.cur = g;
        break;
    case GR_TEV_GO_PARK:
    case GR_TEV_GO_YIELD:
    case GR_TEV_GO_END:
    case GR_TEV_OFFLOAD_DONE:
        if (tl.cur == g)
            tl.cur = 0;
        break;
    case GR_TEV_GO_CREATE:
    case GR_TEV_GO_UNPARK:
        arg = tl.cur;
        break;
    default:
        break;
    }
    ring *r = tl.ring;
    int mid = tl.mid;
    if (gr_unlikely(!r || r->gen != atomic_load_explicit(&session_gen, memory_order_relaxed) ||
                    (r->small && mid >= 0))) {
        if (!(r = ring_for_session(mid >= 0))) {
            atomic_fetch_add_explicit(&lost, 1, memory_order_relaxed);
            return;
        }
    }
    uint64_t meta = (uint64_t)(kind & 0xffff) | (uint64_t)(uint16_t)mid << 16 |
                    (uint64_t)aux << 32;
    put(r, tick(use_tsc), g, arg, meta);
}

uint64_t gr_trace_current(void) { return tl.cur; }

void gr_trace_bind(int mid) { tl.mid = mid; }

int gr_trace_start(uint32_t cap)
{
    uint32_t c = MIN_CAP;
    while (c < cap && c < MAX_CAP)
        c <<= 1;
    pthread_mutex_lock(&reg_mu);
    if (atomic_load_explicit(&gr_trace_flag, memory_order_relaxed)) {
        pthread_mutex_unlock(&reg_mu);
        return -1;
    }
    for (ring *r = rings, *next; r; r = next) {
        next = r->next;
        if (r->orphan)
            unlink_ring(r);
    }
    pthread_once(&clock_once, choose_clock);
    anchor_ns = gr_nanotime();
    anchor_tick = tick(use_tsc);
    session_cap = c;
    session_threads = 0;
    atomic_store_explicit(&lost, 0, memory_order_relaxed);
    atomic_store_explicit(&session_gen, atomic_load_explicit(&session_gen, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&gr_trace_flag, 1, memory_order_relaxed);
    pthread_mutex_unlock(&reg_mu);
    return 0;
}

void gr_trace_stop(void)
{
    pthread_mutex_lock(&reg_mu);
    atomic_store_explicit(&gr_trace_flag, 0, memory_order_relaxed);
    pthread_mutex_unlock(&reg_mu);
}

/* Copy r's events [lo, h) into out (h: head as read before, acquire). Returns how many
 * are kept: the oldest ones a write may have overwritten meanwhile are discarded, and
 * *skipped says how many of [lo, h) that was. */
static size_t read_ring(ring *r, uint64_t lo, uint64_t h, gr_trace_rec *out, uint64_t *skipped)
{
    for (uint64_t i = lo; i < h; i++) {
        slot *s = &r->slots[i & r->mask];
        gr_trace_rec *o = &out[i - lo];
        /* acquire: pairs with put's release stores of the slot (see there). */
        o->ev.ts = atomic_load_explicit(&s->ts, memory_order_acquire);
        o->ev.g = atomic_load_explicit(&s->g, memory_order_acquire);
        o->ev.arg = atomic_load_explicit(&s->arg, memory_order_acquire);
        uint64_t meta = atomic_load_explicit(&s->meta, memory_order_acquire);
        o->ev.kind = (uint16_t)(meta & 0xffff);
        o->ev.m = (int16_t)(uint16_t)(meta >> 16);
        o->ev.aux = (uint32_t)(meta >> 32);
        o->thread = r->thread;
        o->pad = 0;
    }
    /* The seqlock's read side, after the acquire loads above. Index i is intact unless a
     * write of index i + cap or later has begun: writing > i + cap. */
    uint64_t w = atomic_load_explicit(&r->writing, memory_order_relaxed);
    uint64_t cap = r->mask + 1;
    uint64_t valid = w > cap ? w - cap : 0;
    uint64_t bad = valid > lo ? (valid < h ? valid : h) - lo : 0;
    *skipped = bad;
    for (uint64_t i = bad; i < h - lo; i++) /* slide the intact tail down */
        out[i - bad] = out[i];
    return (size_t)(h - lo - bad);
}

int gr_trace_collect(gr_trace_rec **out, size_t *n, uint64_t *dropped)
{
    pthread_mutex_lock(&reg_mu);
    uint32_t gen = atomic_load_explicit(&session_gen, memory_order_relaxed);
    uint64_t total = 0, drop = atomic_load_explicit(&lost, memory_order_relaxed);
    uint32_t nr = 0;
    for (ring *r = rings; r; r = r->next)
        nr += r->gen == gen;
    uint64_t *heads = calloc(nr ? nr : 1, sizeof *heads);
    if (!heads) {
        pthread_mutex_unlock(&reg_mu);
        return -1;
    }
    uint32_t k = 0;
    for (ring *r = rings; r; r = r->next) {
        if (r->gen != gen)
            continue;
        /* acquire: pairs with put's release store; slots below it are complete. */
        heads[k] = atomic_load_explicit(&r->head, memory_order_acquire);
        uint64_t cap = r->mask + 1;
        total += heads[k] < cap ? heads[k] : cap;
        k++;
    }
    gr_trace_rec *buf = malloc((size_t)(total ? total : 1) * sizeof *buf);
    if (!buf) {
        free(heads);
        pthread_mutex_unlock(&reg_mu);
        return -1;
    }
    size_t got = 0;
    k = 0;
    for (ring *r = rings; r; r = r->next) {
        if (r->gen != gen)
            continue;
        uint64_t h = heads[k++], cap = r->mask + 1, skipped;
        uint64_t lo = h > cap ? h - cap : 0;
        lo = lo > r->base ? lo : r->base;
        got += read_ring(r, lo, h, buf + got, &skipped);
        drop += lo + skipped;
    }
    if (use_tsc) { /* ticks onto gr_nanotime()'s scale, through the two anchors */
        int64_t now_ns = gr_nanotime(), now_tick = tick(1);
        double scale = now_tick > anchor_tick
                           ? (double)(now_ns - anchor_ns) / (double)(now_tick - anchor_tick)
                           : 1.0;
        for (size_t i = 0; i < got; i++)
            buf[i].ev.ts = anchor_ns + (int64_t)((double)(buf[i].ev.ts - anchor_tick) * scale);
    }
    pthread_mutex_unlock(&reg_mu);
    free(heads);
    *out = buf;
    *n = got;
    *dropped = drop;
    return 0;
}
