/*
 * trace.h: the execution tracer (gr.trace, run(trace=...)), Go's runtime/trace in small.
 *
 * What it records: every scheduling event, as a fixed-size record (gr_trace_ev) with a
 * gr_nanotime() timestamp (one monotonic clock for every thread), the recording thread's
 * M (-1 on threads that are not Ms: offload threads, foreign threads) and two payloads.
 *
 * Where: one ring per recording thread. An M is one thread for its whole life, so this is
 * a ring per M, plus one per offload thread that wakes a task. Only the owner thread
 * writes its ring, so a write takes no lock and no read-modify-write: a full ring
 * overwrites its oldest events, which the reader counts as dropped. A thread's first event
 * of a session registers its ring (a mutex, once per thread and session).
 *
 * Reading while the owner writes (a trace stopped from one M while the others run on) is a
 * seqlock per ring: the owner announces the slot it is about to overwrite (`writing`)
 * before it touches the slot (release stores), and publishes it (`head`, release) after.
 * The reader copies the slots (acquire loads), then reads `writing`, and keeps only what
 * no write can have touched since. Every slot word is an atomic, so a torn copy is
 * discarded rather than being a data race (and TSan checks the protocol: no fences).
 *
 * Off, a hook costs one relaxed load of gr_trace_flag and a branch predicted not taken
 * (GR_TRACING). The flag pairs with nothing: an event recorded just after a stop (a
 * writer that saw the flag up a moment before) lands in its ring harmlessly, and the
 * next session's start resets that ring.
 *
 * The waker of an unpark is the task the waking thread runs: trace.c tracks it per thread
 * from the run, park, yield and end events themselves, so nothing outside the tracer
 * keeps state for it. Names of tasks are Python's, recorded by the Cython layer as an
 * index into its own name table (GR_TEV_GO_CREATE and GR_TEV_GO_END carry one).
 */
#ifndef GR_TRACE_H
#define GR_TRACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define gr_unlikely(x) __builtin_expect(!!(x), 0)

/* Nonzero while a session records. Relaxed everywhere: see the essay above. Hidden: read
 * straight from the extension's data, not through the GOT (csrc is linked into it). */
extern _Atomic uint32_t gr_trace_flag __attribute__((visibility("hidden")));
#define GR_TRACING() gr_unlikely(atomic_load_explicit(&gr_trace_flag, memory_order_relaxed))

/* Event kinds (gr_trace_ev.kind); g is a task id, 0 for none. */
enum {
    GR_TEV_NONE = 0,
    GR_TEV_GO_CREATE,    /* g created; arg: the creating task; aux: name index */
    GR_TEV_GO_RUN,       /* g runs on this M; aux: 1 on its first run */
    GR_TEV_GO_PARK,      /* g parks; aux: its park reason (the Python layer's code) */
    GR_TEV_GO_YIELD,     /* g yields (gosched, and cancellation checkpoints) */
    GR_TEV_GO_UNPARK,    /* g readied by the task arg (0: the scheduler: a timer, the
                          * poller, a thread outside the runtime); aux: GR_WAKE_* */
    GR_TEV_GO_END,       /* g finished (or was dropped unrun); aux: name index */
    GR_TEV_STEAL,        /* took arg tasks from P aux; g: the one it runs */
    GR_TEV_GLOBAL,       /* took arg tasks from the global queue; g: the one it runs */
    GR_TEV_M_SPIN,       /* the M spins for work (no GIL) */
    GR_TEV_M_SPIN_END,   /* aux: 1 if it found work */
    GR_TEV_M_PARK,       /* the M sleeps (futex, or aux 1: blocked in the poller) */
    GR_TEV_M_WAKE,       /* ... and woke; arg: the park's GR_PARK_* result */
    GR_TEV_M_BACKOFF,    /* the M backs off shared work while the GIL is busy */
    GR_TEV_POLL,         /* a poll of the network readied arg tasks; aux 1: blocking */
    GR_TEV_OFFLOAD,      /* g hands a blocking() call to the offload pool */
    GR_TEV_OFFLOAD_RUN,  /* this (offload) thread runs g's blocking() call */
    GR_TEV_OFFLOAD_DONE, /* ... and it returned */
    GR_TEV_M_UNPARK,     /* this thread wakes M arg (a task readied there, work to take) */
    GR_TEV_NKINDS
};

/* One event, as written to a ring. */
typedef struct gr_trace_ev {
    int64_t ts;   /* gr_nanotime() */
    uint64_t g;
    uint64_t arg;
    uint16_t kind;
    int16_t m;    /* the recording thread's M, -1 if none */
    uint32_t aux;
} gr_trace_ev;

/* An event as collected: which ring (thread) it came from, numbered per session. */
typedef struct gr_trace_rec {
    gr_trace_ev ev;
    uint32_t thread;
    uint32_t pad;
} gr_trace_rec;

/* Start a session with rings of at least `cap` events per thread (rounded up to a power
 * of two, at least 16). Returns 0, or -1 if one is already recording. */
int gr_trace_start(uint32_t cap);
/* Stop recording (idempotent). Events are kept until the next start. */
void gr_trace_stop(void);
/* Copy the current session's events out of every ring, ring by ring and oldest first
 * within one: *out is malloc'd (free it), *n its length, *dropped the events the rings
 * overwrote (or could not record, out of memory). Safe while threads still record.
 * Returns 0, or -1 out of memory. */
int gr_trace_collect(gr_trace_rec **out, size_t *n, uint64_t *dropped);

/* Record an event on the calling thread's ring (call only when GR_TRACING()). */
void gr_trace_emit(uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux);
/* The task the calling thread runs (0: none), as the trace sees it: the waker of the
 * unparks it records, the creator of the tasks it creates. */
uint64_t gr_trace_current(void);
/* The calling thread is M mid from now on (-1: no M); gr_m_bind calls it. */
void gr_trace_bind(int mid);

#define GR_TRACE(kind, g, arg, aux)                                                           \
    do {                                                                                       \
        if (GR_TRACING())                                                                      \
            gr_trace_emit((kind), (g), (arg), (aux));                                          \
    } while (0)

#endif
