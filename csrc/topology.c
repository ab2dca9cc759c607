/* topology.c: sysfs parsing, affinity restriction and P placement; see topology.h. */
#define _GNU_SOURCE

#include "topology.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Static_assert(GR_MAX_CPUS <= CPU_SETSIZE, "gr_cpuset must fit in a cpu_set_t");

/* A canonical list of ids < 1024 is under 4 KiB (the worst case, "0,2,4,...", is about
 * 2.5 KiB); a file filling this buffer is not one. */
#define LIST_MAX 8192

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* A decimal id in [0, GR_MAX_CPUS) at *p (before end); advances *p past it. Caps the
 * value as it goes so no digit string can overflow. */
static int parse_id(const char **p, const char *end, int *out)
{
    const char *s = *p;
    int v = 0;
    if (s == end || *s < '0' || *s > '9')
        return GR_TOPO_EMALFORMED;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v >= GR_MAX_CPUS)
            return GR_TOPO_EMALFORMED;
    }
    *p = s;
    *out = v;
    return 0;
}

int gr_cpuset_parse(const char *text, gr_cpuset *out)
{
    const char *p = text, *end = text + strlen(text);
    gr_cpuset set;
    gr_cpuset_zero(&set);
    while (end > p && is_blank(end[-1]))
        end--;
    while (p < end) {
        int lo, hi;
        if (parse_id(&p, end, &lo))
            return GR_TOPO_EMALFORMED;
        hi = lo;
        if (p < end && *p == '-') {
            p++;
            if (parse_id(&p, end, &hi) || hi < lo)
                return GR_TOPO_EMALFORMED;
        }
        for (int c = lo; c <= hi; c++)
            gr_cpuset_add(&set, c);
        if (p == end)
            break;
        /* Only a comma may follow a range, and only another range may follow a comma. */
        if (*p++ != ',' || p == end)
            return GR_TOPO_EMALFORMED;
    }
    *out = set;
    return 0;
}

/* Read and parse the range list at rel under dirfd. Returns 1 if parsed, 0 if the file
 * cannot be read (treated as missing), or GR_TOPO_EMALFORMED. */
static int read_list(int dirfd, const char *rel, gr_cpuset *out)
{
    char buf[LIST_MAX];
    size_t n = 0;
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            return 0;
        }
        if (r == 0 || (n += (size_t)r) == sizeof buf)
            break;
    }
    close(fd);
    if (n == sizeof buf || memchr(buf, '\0', n) != NULL)
        return GR_TOPO_EMALFORMED;
    buf[n] = '\0';
    return gr_cpuset_parse(buf, out) == 0 ? 1 : GR_TOPO_EMALFORMED;
}

/* N for a directory entry "node<N>" with N canonical decimal (no sign, no leading zero,
 * so no two entries name the same node); -1 for anything else. */
static int node_id(const char *name)
{
    int v = 0;
    if (strncmp(name, "node", 4) != 0)
        return -1;
    name += 4;
    if (*name < '0' || *name > '9' || (name[0] == '0' && name[1] != '\0'))
        return -1;
    for (; *name; name++) {
        if (*name < '0' || *name > '9')
            return -1;
        v = v * 10 + (*name - '0');
        if (v > 1 << 20) /* far beyond any kernel's MAX_NUMNODES */
            return -1;
    }
    return v;
}

static void single_node(gr_topology *t, const gr_cpuset *cpus)
{
    t->nnodes = 1;
    t->node_ids[0] = 0;
    t->node_cpus[0] = *cpus;
}

/* Read every node<N>/cpulist under rootfd into t, in directory order, keeping each
 * node's online CPUs when have_online. Sets *overflow if more than GR_MAX_NODES nodes have
 * CPUs; ORs every listed CPU into *listed. Returns 0 or GR_TOPO_EMALFORMED. */
static int read_nodes(int rootfd, const char *root, gr_topology *t, int have_online,
                      gr_cpuset *listed, int *overflow)
{
    struct dirent *e;
    DIR *d;
    int rc = 0, fd = openat(rootfd, "devices/system/node", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char rel[32];
        gr_cpuset cpus;
        int id = node_id(e->d_name), r;
        if (id < 0)
            continue;
        snprintf(rel, sizeof rel, "node%d/cpulist", id);
        if ((r = read_list(fd, rel, &cpus)) < 0) {
            snprintf(t->bad_path, sizeof t->bad_path, "%s/devices/system/node/%s", root, rel);
            rc = r;
            break;
        }
        if (r == 0)
            continue;
        for (int i = 0; i < GR_MAX_CPUS / 64; i++)
            listed->bits[i] |= cpus.bits[i];
        if (have_online)
            gr_cpuset_and(&cpus, &t->online);
        if (gr_cpuset_count(&cpus) == 0)
            continue;
        if (t->nnodes == GR_MAX_NODES) {
            *overflow = 1;
            continue;
        }
        t->node_ids[t->nnodes] = id;
        t->node_cpus[t->nnodes++] = cpus;
    }
    closedir(d);
    return rc;
}

int gr_topology_read(const char *sysfs_root, gr_topology *out)
{
    gr_cpuset listed;
    int have_online, overflow = 0, rc;
    /* Paths are resolved relative to the root's fd so no length limit applies to the root
     * (only bad_path, a message, may be cut short). */
    int rootfd = open(sysfs_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    memset(out, 0, sizeof *out);
    if (rootfd < 0)
        return 0;
    gr_cpuset_zero(&listed);
    have_online = read_list(rootfd, "devices/system/cpu/online", &out->online);
    if (have_online < 0) {
        snprintf(out->bad_path, sizeof out->bad_path, "%s/devices/system/cpu/online",
                 sysfs_root);
        close(rootfd);
        return have_online;
    }
    rc = read_nodes(rootfd, sysfs_root, out, have_online, &listed, &overflow);
    close(rootfd);
    if (rc < 0) {
        out->nnodes = 0;
        return rc;
    }
    if (!have_online)
        out->online = listed;

    /* Ascending node ids, so placement does not depend on readdir order. */
    for (int i = 1; i < out->nnodes; i++) {
        int id = out->node_ids[i];
        gr_cpuset cpus = out->node_cpus[i];
        int j = i;
        for (; j > 0 && out->node_ids[j - 1] > id; j--) {
            out->node_ids[j] = out->node_ids[j - 1];
            out->node_cpus[j] = out->node_cpus[j - 1];
        }
        out->node_ids[j] = id;
        out->node_cpus[j] = cpus;
    }

    if (overflow)
        out->nnodes = 0;
    if (out->nnodes == 0 && gr_cpuset_count(&out->online) > 0)
        single_node(out, &out->online);
    return 0;
}

void gr_topology_restrict(gr_topology *t, const gr_cpuset *allowed)
{
    int n = 0;
    gr_cpuset_and(&t->online, allowed);
    for (int i = 0; i < t->nnodes; i++) {
        gr_cpuset_and(&t->node_cpus[i], allowed);
        if (gr_cpuset_count(&t->node_cpus[i]) == 0)
            continue;
        t->node_ids[n] = t->node_ids[i];
        t->node_cpus[n++] = t->node_cpus[i];
    }
    t->nnodes = n;
    if (n == 0 && gr_cpuset_count(allowed) > 0) {
        single_node(t, allowed);
        t->online = *allowed;
    }
}

int gr_topology_allowed(gr_cpuset *out)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return errno;
    gr_cpuset_zero(out);
    for (int c = 0; c < GR_MAX_CPUS; c++)
        if (CPU_ISSET(c, &set))
            gr_cpuset_add(out, c);
    return 0;
}

int gr_topology_place(const gr_topology *t, gr_affinity policy, int p, gr_cpuset *cpus_out,
                      int *node_out)
{
    int total = 0, slot, i;
    if (p < 0 || (policy != GR_AFFINITY_NONE && policy != GR_AFFINITY_CPU &&
                  policy != GR_AFFINITY_NODE))
        return GR_TOPO_EINVAL;
    for (i = 0; i < t->nnodes; i++)
        total += gr_cpuset_count(&t->node_cpus[i]);
    if (total == 0)
        return GR_TOPO_EINVAL;
    if (policy == GR_AFFINITY_NONE) {
        *cpus_out = t->online;
        *node_out = -1;
        return 0;
    }
    slot = p % total;
    for (i = 0; slot >= gr_cpuset_count(&t->node_cpus[i]); i++)
        slot -= gr_cpuset_count(&t->node_cpus[i]);
    *node_out = t->node_ids[i];
    if (policy == GR_AFFINITY_NODE) {
        *cpus_out = t->node_cpus[i];
    } else {
        gr_cpuset_zero(cpus_out);
        gr_cpuset_add(cpus_out, gr_cpuset_nth(&t->node_cpus[i], slot));
    }
    return 0;
}

int gr_topo_pin_self(const gr_cpuset *cpus)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < GR_MAX_CPUS; c++)
        if (gr_cpuset_has(cpus, c))
            CPU_SET(c, &set);
    return sched_setaffinity(0, sizeof set, &set) != 0 ? errno : 0;
}
