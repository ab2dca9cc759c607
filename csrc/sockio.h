/*
 * sockio.h: the reads of goroutines.socket's hot path that need more than recv(2).
 *
 * A task that reads a TCP socket into a buffer the data fills exactly cannot tell whether
 * more is queued: Go, gevent and a plain recv loop all spend one more syscall to hear
 * EAGAIN before they wait. Linux's TCP_INQ (4.18) answers the question on the read
 * itself: with it on, recvmsg(2) returns a TCP_CM_INQ control message with the bytes
 * still queued after the read. Zero means the queue is drained, and every arrival after
 * the read is a new edge for the poller, so the next read can wait for the edge first.
 * The kernel never reports zero once the peer's FIN is queued (tcp_inq_hint), so the read
 * that would return the EOF is always tried.
 *
 * TCP_INQ changes what a recvmsg(2) with a control buffer sees (one more control message,
 * or MSG_CTRUNC without room for it), so goroutines.socket turns it off again before any
 * recvmsg() of its own.
 */
#ifndef GR_SOCKIO_H
#define GR_SOCKIO_H

#include <stddef.h>
#include <sys/types.h>

/* Turn TCP_INQ on or off for fd: 0, or -1 with errno set (ENOPROTOOPT on a kernel
 * without it, or a socket that is not TCP). */
int gr_tcp_inq(int fd, int on);

/* recv(2) through recvmsg(2): *inq is the bytes still queued after the read when the
 * kernel said (TCP_INQ on), else -1. Returns what recv(2) would, errno included. */
ssize_t gr_recv_inq(int fd, void *buf, size_t n, int flags, int *inq);

#endif
