/* sockio.c: see sockio.h. */
#define _GNU_SOURCE
#include "sockio.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Older libc headers lack them; the values are Linux's ABI (include/uapi/linux/tcp.h). */
#ifndef TCP_INQ
#define TCP_INQ 36
#endif
#ifndef TCP_CM_INQ
#define TCP_CM_INQ TCP_INQ
#endif

int gr_tcp_inq(int fd, int on)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, sizeof on);
}

ssize_t gr_recv_inq(int fd, void *buf, size_t n, int flags, int *inq)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    *inq = -1;
    ssize_t got = recvmsg(fd, &msg, flags);
    if (got < 0)
        return got;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ &&
            c->cmsg_len >= CMSG_LEN(sizeof(int)))
            memcpy(inq, CMSG_DATA(c), sizeof(int));
    }
    return got;
}
