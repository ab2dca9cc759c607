#define _GNU_SOURCE
#include "netpoll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sched.h"
#include "trace.h"
#include "wait.h"

void gr_netpoll_init(gr_netpoll *np)
{
    memset(np, 0, sizeof *np);
    pthread_mutex_init(&np->mu, NULL);
    np->epfd = np->evfd = -1;
}

void gr_netpoll_destroy(gr_netpoll *np)
{
    pthread_mutex_lock(&np->mu);
    if (atomic_load(&np->inited))
        gr_npb_close(np);
    atomic_store(&np->inited, 0);
    pthread_mutex_unlock(&np->mu);
}

/* acquire: pairs with the release store in pd_alloc, so a chunk is seen initialised. */
static gr_pollfd *pd_at(gr_netpoll *np, uint32_t idx)
{
    if (idx >= (uint32_t)GR_PD_CHUNK * GR_PD_CHUNKS)
        return NULL;
    gr_pollfd *c = atomic_load_explicit(&np->chunks[idx / GR_PD_CHUNK], memory_order_acquire);
    return c ? &c[idx % GR_PD_CHUNK] : NULL;
}

/* Under mu. */
static gr_pollfd *pd_alloc(gr_netpoll *np)
{
    gr_pollfd *pd = np->free;
    if (pd) {
        np->free = pd->next_free;
        return pd;
    }
    uint32_t idx = np->npd;
    if (idx == (uint32_t)GR_PD_CHUNK * GR_PD_CHUNKS)
        return NULL;
    if (idx % GR_PD_CHUNK == 0) {
        gr_pollfd *c = calloc(GR_PD_CHUNK, sizeof *c);
        if (!c)
            return NULL;
        for (uint32_t i = 0; i < GR_PD_CHUNK; i++)
            c[i].idx = idx + i;
        atomic_store_explicit(&np->chunks[idx / GR_PD_CHUNK], c, memory_order_release);
    }
    np->npd++;
    return pd_at(np, idx);
}

/* Under mu: room in the fd table for fd. */
static int fdtab_fit(gr_netpoll *np, int fd)
{
    if ((uint32_t)fd < np->fdcap)
        return 0;
    uint32_t cap = np->fdcap ? np->fdcap : 64;
    while (cap <= (uint32_t)fd)
        cap *= 2;
    uint32_t *t = realloc(np->fdtab, cap * sizeof *t);
    if (!t)
        return ENOMEM;
    memset(t + np->fdcap, 0, (cap - np->fdcap) * sizeof *t);
    np->fdtab = t;
    np->fdcap = cap;
    return 0;
}

/* Under mu: close pd's registration and wake its waiters with GR_WAIT_CLOSED. */
static void pd_shut(gr_netpoll *np, gr_pollfd *pd)
{
    gr_g *woken[2] = {NULL, NULL};
    gr_lock_acquire(&pd->lock);
    pd->closing = 1;
    /* Under mu and this lock: every reader of seq holds one of them. */
    pd->seq++;
    for (int mode = 0; mode < 2; mode++) {
        gr_g *g = pd->waiter[mode];
        pd->waiter[mode] = NULL;
        pd->ready[mode] = 0;
        /* Claimed under the lock the waiter must take to leave (g.h: no ABA). */
        if (g && gr_g_claim(g, GR_WAKE_READY)) {
            g->waiter.ok = 0;
            woken[mode] = g;
        }
    }
    gr_lock_release(&pd->lock);
    /* Before the caller closes the fd: once it is closed the kernel may already have
     * dropped the registration, and its number may name another file. */
    gr_npb_del(np, pd->fd);
    np->fdtab[pd->fd] = 0;
    pd->next_free = np->free;
    np->free = pd;
    for (int mode = 0; mode < 2; mode++)
        if (woken[mode])
            gr_ready(woken[mode], 0);
}

gr_pollfd *gr_netpoll_open(gr_netpoll *np, int fd, uint32_t *seq, int *err)
{
    struct stat st;
    gr_pollfd *pd = NULL;
    int e = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *err = fd < 0 ? EBADF : errno;
        return NULL;
    }
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        *err = EPERM; /* epoll refuses them: they are always ready */
        return NULL;
    }
    pthread_mutex_lock(&np->mu);
    if (!atomic_load(&np->inited)) {
        if ((e = gr_npb_init(np)) != 0)
            goto out;
        np->gen++;
        atomic_store(&np->inited, 1);
    }
    if ((uint32_t)fd < np->fdcap && np->fdtab[fd]) {
        pd = pd_at(np, np->fdtab[fd] - 1);
        if (pd->dev == (uint64_t)st.st_dev && pd->ino == (uint64_t)st.st_ino)
            goto found;
        /* Closed behind the poller's back, and the number now names another file. */
        pd_shut(np, pd);
        pd = NULL;
    }
    if ((e = fdtab_fit(np, fd)) != 0)
        goto out;
    if (!(pd = pd_alloc(np))) {
        e = ENOMEM;
        goto out;
    }
    gr_lock_acquire(&pd->lock);
    pd->fd = fd;
    pd->closing = 0;
    pd->ready[0] = pd->ready[1] = 0;
    pd->waiter[0] = pd->waiter[1] = NULL;
    atomic_store_explicit(&pd->hup, 0, memory_order_relaxed);
    pd->dev = (uint64_t)st.st_dev;
    pd->ino = (uint64_t)st.st_ino;
    uint32_t s = pd->seq;
    gr_lock_release(&pd->lock);
    if ((e = gr_npb_add(np, fd, (uint64_t)s << 32 | pd->idx)) != 0) {
        pd->next_free = np->free;
        np->free = pd;
        pd = NULL;
        goto out;
    }
    np->fdtab[fd] = pd->idx + 1;
found:
    *seq = pd->seq;
out:
    pthread_mutex_unlock(&np->mu);
    *err = e;
    return pd;
}

int gr_netpoll_close_fd(gr_netpoll *np, int fd)
{
    int found = 0;
    pthread_mutex_lock(&np->mu);
    if (fd >= 0 && (uint32_t)fd < np->fdcap && np->fdtab[fd]) {
        pd_shut(np, pd_at(np, np->fdtab[fd] - 1));
        found = 1;
    }
    pthread_mutex_unlock(&np->mu);
    return found;
}

int gr_netpoll_close(gr_netpoll *np, gr_pollfd *pd, uint32_t seq)
{
    int found = 0;
    pthread_mutex_lock(&np->mu);
    /* The seq is only bumped under mu (pd_shut), so this read is stable. */
    if (pd->seq == seq && !pd->closing) {
        pd_shut(np, pd);
        found = 1;
    }
    pthread_mutex_unlock(&np->mu);
    return found;
}

void gr_netpoll_after_fork(gr_netpoll *np)
{
    /* Only this thread exists: the locks may have been held by threads that are gone. */
    pthread_mutex_init(&np->mu, NULL);
    if (atomic_load(&np->inited))
        gr_npb_close(np);
    atomic_store(&np->inited, 0);
    np->free = NULL;
    for (uint32_t i = np->npd; i-- > 0;) {
        gr_pollfd *pd = pd_at(np, i);
        atomic_init(&pd->lock.state, 0);
        pd->seq++;
        pd->closing = 1;
        pd->waiter[0] = pd->waiter[1] = NULL;
        pd->next_free = np->free;
        np->free = pd;
    }
    if (np->fdtab)
        memset(np->fdtab, 0, np->fdcap * sizeof *np->fdtab);
    atomic_store(&np->nwait, 0);
    atomic_store(&np->blocked, 0);
    atomic_store(&np->wakesig, 0);
}

/* ---- waits -------------------------------------------------------------------------- */

int gr_pollfd_wait_begin(gr_netpoll *np, gr_pollfd *pd, uint32_t seq, int mode, gr_g *self,
                         int64_t deadline)
{
    int rc;
    gr_lock_acquire(&pd->lock);
    if (pd->seq != seq || pd->closing) {
        rc = GR_WAIT_CLOSED;
    } else if (pd->ready[mode]) {
        pd->ready[mode] = 0;
        rc = GR_WAIT_OK;
    } else if (pd->waiter[mode]) {
        rc = GR_WAIT_BUSY;
    } else if (deadline == GR_DEADLINE_NOW) {
        rc = GR_WAIT_TIMEOUT;
    } else if ((rc = gr_wait_arm(self, deadline)) == GR_WAIT_PARK) {
        self->waiter.ok = 0;
        pd->waiter[mode] = self;
        atomic_fetch_add(&np->nwait, 1);
        atomic_fetch_add(&atomic_load_explicit(&self->m, memory_order_relaxed)->nfdwait, 1);
    }
    gr_lock_release(&pd->lock);
    return rc;
}

int gr_pollfd_wait_end(gr_netpoll *np, gr_pollfd *pd, int mode, gr_g *self)
{
    gr_lock_acquire(&pd->lock);
    if (pd->waiter[mode] == self) /* woken by its timer or a cancel */
        pd->waiter[mode] = NULL;
    gr_lock_release(&pd->lock);
    atomic_fetch_sub(&np->nwait, 1);
    atomic_fetch_sub(&atomic_load_explicit(&self->m, memory_order_relaxed)->nfdwait, 1);
    int done = -1;
    if (self->wake_reason == GR_WAKE_READY)
        done = self->waiter.ok ? GR_WAIT_OK : GR_WAIT_CLOSED;
    return gr_wait_end(self, done);
}

/* ---- polling ------------------------------------------------------------------------ */

int gr_netpoll_event(gr_netpoll *np, uint64_t tag, int readable, int writable, int hup)
{
    gr_pollfd *pd = pd_at(np, (uint32_t)tag);
    if (!pd)
        return 0;
    int want[2] = {readable, writable}, n = 0;
    gr_g *woken[2] = {NULL, NULL};
    gr_lock_acquire(&pd->lock);
    if (pd->seq == (uint32_t)(tag >> 32) && !pd->closing) {
        /* release: before the waiter it readies (or the flag it sets) can be seen. */
        if (hup)
            atomic_store_explicit(&pd->hup, 1, memory_order_release);
        if (readable)
            atomic_fetch_add(&pd->redges, 1); /* pairs with gr_pollfd_redges */
        for (int mode = 0; mode < 2; mode++) {
            if (!want[mode])
                continue;
            gr_g *g = pd->waiter[mode];
            pd->waiter[mode] = NULL;
            if (g && gr_g_claim(g, GR_WAKE_READY)) {
                g->waiter.ok = 1;
                woken[mode] = g;
            } else {
                /* Nobody to take it, or its waiter is leaving on a timeout or cancel:
                 * keep the edge for the next wait, or it would be lost for good. */
                pd->ready[mode] = 1;
            }
        }
    }
    gr_lock_release(&pd->lock);
    for (int mode = 0; mode < 2; mode++) {
        if (woken[mode]) {
            gr_ready(woken[mode], 0);
            n++;
        }
    }
    return n;
}

int gr_netpoll_poll(gr_netpoll *np)
{
    if (!atomic_load(&np->inited))
        return 0;
    atomic_store_explicit(&np->lastpoll, gr_nanotime(), memory_order_relaxed);
    atomic_fetch_add_explicit(&np->npolls, 1, memory_order_relaxed);
    int n = gr_npb_wait(np, 0);
    if (n > 0)
        GR_TRACE(GR_TEV_POLL, 0, (uint64_t)n, 0);
    return n < 0 ? 0 : n;
}

uint64_t gr_netpoll_npolls(gr_netpoll *np)
{
    return atomic_load_explicit(&np->npolls, memory_order_relaxed);
}

uint64_t gr_netpoll_nblocks(gr_netpoll *np)
{
    return atomic_load_explicit(&np->nblocks, memory_order_relaxed);
}

int gr_netpoll_try_block(gr_netpoll *np)
{
    int32_t zero = 0;
    return atomic_load(&np->inited) && atomic_compare_exchange_strong(&np->blocked, &zero, 1);
}

void gr_netpoll_unblock(gr_netpoll *np)
{
    atomic_store_explicit(&np->lastpoll, gr_nanotime(), memory_order_relaxed);
    atomic_store(&np->blocked, 0);
}

int gr_netpoll_block(gr_netpoll *np, int64_t timeout_ns)
{
    atomic_fetch_add_explicit(&np->nblocks, 1, memory_order_relaxed);
    int n = gr_npb_wait(np, timeout_ns);
    GR_TRACE(GR_TEV_POLL, 0, (uint64_t)(n > 0 ? n : 0), 1);
    return n;
}

void gr_netpoll_break(gr_netpoll *np)
{
    /* One write per blocked poll: the poller resets wakesig after it drains the eventfd. */
    if (atomic_load(&np->inited) && atomic_exchange(&np->wakesig, 1) == 0)
        gr_npb_wake(np);
}
