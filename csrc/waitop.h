/*
 * waitop.h: one begin and one end for every blocking operation.
 *
 * The Python layer parks through a single helper (Go's gopark): deliver a pending cancel,
 * begin, park, end. That helper cannot call each primitive's own begin and end, whose
 * arguments differ, without calling through function pointers cast to a type they do not
 * have (undefined behaviour, which clang's -fsanitize=function reports). So it describes
 * the operation in a gr_waitop and these two calls dispatch on its kind.
 *
 * gr_waitop_begin also closes the race with gr_g_cancel: once the wait is prepared it
 * looks at the cancel flag again (wait.c explains the pairing), and a G that finds it set
 * wakes itself, so the park returns at once with GR_WAIT_CANCELLED.
 */
#ifndef GR_WAITOP_H
#define GR_WAITOP_H

#include <stdint.h>

#include "chan.h"
#include "ctimer.h"
#include "g.h"
#include "netpoll.h"
#include "sync.h"

typedef enum gr_waitop_kind {
    GR_OP_SLEEP = 0, /* obj unused */
    GR_OP_JOIN,      /* obj: the gr_g to wait for */
    GR_OP_SEMA,      /* obj: gr_sema */
    GR_OP_LATCH,     /* obj: gr_latch */
    GR_OP_RLOCK,     /* obj: gr_rwmutex, read side */
    GR_OP_LOCK,      /* obj: gr_rwmutex, write side */
    GR_OP_SEND,      /* obj: gr_chan; elem: the value, an owned reference */
    GR_OP_RECV,      /* obj: gr_chan; elem: out, the value received */
    GR_OP_SELECT,    /* obj: the gr_selcase array; ncases, pollorder, ws; fired: out */
    GR_OP_FDREAD,    /* obj: gr_pollfd; netpoll, seq */
    GR_OP_FDWRITE,   /* obj: gr_pollfd; netpoll, seq */
} gr_waitop_kind;

/* How a cancel reaches a wait. Unshielded, the Python layer raises Cancelled. A shielded
 * wait (blocking() waiting for its call, a cancelled TaskGroup owner waiting for its
 * tasks) ends with GR_WAIT_CANCELLED instead and its caller decides; with REPORT a cancel
 * already requested counts too (the G wakes itself, as for an unshielded wait), with
 * QUIET it does not: the caller has seen it. */
enum { GR_SHIELD_NONE = 0, GR_SHIELD_REPORT, GR_SHIELD_QUIET };

typedef struct gr_waitop {
    uint32_t kind;       /* gr_waitop_kind */
    uint32_t shield;     /* GR_SHIELD_* */
    void *obj;
    void *elem;
    uint32_t ncases;
    const uint32_t *pollorder;
    gr_waiter *ws;
    int32_t fired;
    /* Receives only: the channel timers (ctimer.h) feeding the channels received from.
     * They are in the heap while the G waits, so that they fire: blocked before the
     * op's own begin (running out of memory leaves nothing queued), unblocked after its
     * end. */
    gr_ctimers *ctimers;
    gr_ctimer **timers;
    uint32_t ntimers;
    /* fd waits: the poller and the descriptor's seq when the handle was taken. */
    uint32_t seq;
    gr_netpoll *netpoll;
} gr_waitop;

/* A gr_wait_result: OK, CLOSED, TIMEOUT, NOMEM, or PARK (park, then gr_waitop_end). */
int gr_waitop_begin(gr_waitop *op, gr_g *self, int64_t deadline);
/* After the park: OK, CLOSED, TIMEOUT or CANCELLED. */
int gr_waitop_end(gr_waitop *op, gr_g *self);

#endif
