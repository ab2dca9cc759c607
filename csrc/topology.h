/*
 * topology.h: which CPUs and NUMA nodes the Ms may run on, and where each P's M goes.
 *
 * Why this exists. Work stealing is cheapest between Ps whose Ms share a cache and a
 * memory controller, and an M that migrates between nodes drags its P's run queue and
 * the Gs' stacks across the interconnect. So the runtime learns the machine's nodes once
 * at startup, can pin each M (an OS thread) next to its P, and tells the scheduler which
 * node each P is on so a thief looks at its own node's Ps before reaching across.
 *
 * Where the facts come from. Linux publishes them in sysfs as range lists, the kernel's
 * "%*pbl" format: comma-separated decimal CPU ids or inclusive ranges "lo-hi", e.g.
 * "0-3,8,10-11\n". An empty list (just "\n") is legal: a memory-only node has no CPUs.
 *   <root>/devices/system/cpu/online             the CPUs that are up
 *   <root>/devices/system/node/node<N>/cpulist   the CPUs of node N
 * <root> is "/sys" in production; the Python layer takes it from GOROUTINES_SYSFS_ROOT so
 * tests can hand us fake trees. The parser takes exactly that grammar plus trailing
 * blanks; anything else (garbage, "3-1", "1-", an id >= GR_MAX_CPUS, embedded NULs) is
 * GR_TOPO_EMALFORMED and the file is named in gr_topology.bad_path: a file that exists
 * but lies would otherwise make us pin threads to CPUs that are not there.
 *
 * Fallbacks. Missing facts are normal (containers without /sys, kernels without NUMA), so
 * a file that cannot be read counts as missing, never as an error:
 *   - no cpu/online: the online CPUs are the union of the node lists;
 *   - no node directory, no node<N>/cpulist, or no node with an online CPU: a single
 *     node 0 holding every online CPU;
 *   - more than GR_MAX_NODES nodes with CPUs: the same single node (we lose locality,
 *     never CPUs);
 *   - nothing at all: zero nodes, and gr_topology_restrict then makes the single node
 *     out of the CPUs the kernel lets us run on.
 * Nodes whose CPUs are all offline are dropped; so are CPUs listed by no node.
 *
 * Affinity. The process may be confined (taskset, cgroup cpusets) to fewer CPUs than are
 * online; pinning a thread outside that set fails or, worse, silently widens it. So the
 * topology is intersected with sched_getaffinity before any placement, and a CPU outside
 * the allowed set is never handed out.
 *
 * Placement. Lay the allowed CPUs out in a line, node by node in ascending node id, each
 * node's CPUs ascending. P i takes slot i mod (number of CPUs):
 *   GR_AFFINITY_CPU   pins P i's M to the CPU in that slot;
 *   GR_AFFINITY_NODE  pins it to the whole CPU set of that slot's node;
 *   GR_AFFINITY_NONE  leaves it unpinned, and every P reports node -1 (one group).
 * Filling one node before the next keeps a small GOMAXPROCS on one node, where stealing
 * is cheap; wrapping round shares CPUs evenly when there are more Ps than CPUs. A P's
 * place does not depend on how many Ps there are, so raising GOMAXPROCS never moves an
 * existing P's M.
 *
 * Return conventions: functions that interpret data return 0 or a negative GR_TOPO_*;
 * functions that wrap a syscall return 0 or a positive errno. Nothing here keeps state,
 * so every function may be called from any thread.
 */
#ifndef GR_TOPOLOGY_H
#define GR_TOPOLOGY_H

#include <stdint.h>

/* CPU ids are < GR_MAX_CPUS: glibc's cpu_set_t holds 1024, and a wider set could not be
 * pinned through it anyway. */
#define GR_MAX_CPUS 1024
/* Linux's default MAX_NUMNODES on x86-64 is 64 (CONFIG_NODES_SHIFT=6). */
#define GR_MAX_NODES 64
/* PATH_MAX: the longest sysfs path reported in an error. */
#define GR_TOPO_PATH_MAX 4096

#define GR_TOPO_EMALFORMED (-1) /* a sysfs file or range list breaks the format */
#define GR_TOPO_EINVAL (-2)     /* a P that cannot be placed: see gr_topology_place */

typedef struct gr_cpuset {
    uint64_t bits[GR_MAX_CPUS / 64];
} gr_cpuset;

static inline void gr_cpuset_zero(gr_cpuset *s)
{
    for (int i = 0; i < GR_MAX_CPUS / 64; i++)
        s->bits[i] = 0;
}

/* Ids outside [0, GR_MAX_CPUS) are ignored by add and absent for has. */
static inline void gr_cpuset_add(gr_cpuset *s, int cpu)
{
    if (cpu >= 0 && cpu < GR_MAX_CPUS)
        s->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}

static inline int gr_cpuset_has(const gr_cpuset *s, int cpu)
{
    return cpu >= 0 && cpu < GR_MAX_CPUS && (s->bits[cpu / 64] >> (cpu % 64) & 1);
}

static inline int gr_cpuset_count(const gr_cpuset *s)
{
    int n = 0;
    for (int i = 0; i < GR_MAX_CPUS / 64; i++)
        n += __builtin_popcountll(s->bits[i]);
    return n;
}

/* The n-th (from 0) CPU of s in ascending order, or -1 if s has n or fewer CPUs. */
static inline int gr_cpuset_nth(const gr_cpuset *s, int n)
{
    if (n < 0)
        return -1;
    for (int i = 0; i < GR_MAX_CPUS / 64; i++) {
        uint64_t w = s->bits[i];
        int c = __builtin_popcountll(w);
        if (n >= c) {
            n -= c;
            continue;
        }
        while (n-- > 0)
            w &= w - 1; /* drop the lowest set bit */
        return i * 64 + __builtin_ctzll(w);
    }
    return -1;
}

/* s &= other */
static inline void gr_cpuset_and(gr_cpuset *s, const gr_cpuset *other)
{
    for (int i = 0; i < GR_MAX_CPUS / 64; i++)
        s->bits[i] &= other->bits[i];
}

/* Parse a range list ("0-3,8\n"; "" and "\n" are the empty set). Returns 0, or
 * GR_TOPO_EMALFORMED leaving *out untouched. Overlapping or unordered ranges are accepted. */
int gr_cpuset_parse(const char *text, gr_cpuset *out);

/* About 12 KiB, mostly bad_path: keep it off small thread stacks. */
typedef struct gr_topology {
    int nnodes;                         /* 0: nothing known, or restricted to nothing */
    int node_ids[GR_MAX_NODES];         /* ascending sysfs node ids */
    gr_cpuset node_cpus[GR_MAX_NODES];  /* never empty, subsets of online */
    gr_cpuset online;
    char bad_path[GR_TOPO_PATH_MAX];    /* the malformed file on GR_TOPO_EMALFORMED, else "" */
} gr_topology;

/* Read the topology under sysfs_root ("/sys") with the fallbacks above; an unreadable
 * root is "nothing at all". Returns 0, or GR_TOPO_EMALFORMED with bad_path naming the
 * file (cut short if sysfs_root is absurdly long; the read itself has no length limit). */
int gr_topology_read(const char *sysfs_root, gr_topology *out);

/* Keep only the CPUs in allowed: intersect online and every node, drop nodes left empty.
 * If no node survives, the result is a single node 0 of allowed (the kernel's word beats
 * sysfs). An empty allowed leaves zero nodes. */
void gr_topology_restrict(gr_topology *t, const gr_cpuset *allowed);

/* The calling thread's affinity mask (sched_getaffinity(0)). Call it before pinning any
 * thread: a pinned thread reports only its own pin. Returns 0 or errno. */
int gr_topology_allowed(gr_cpuset *out);

typedef enum { GR_AFFINITY_NONE, GR_AFFINITY_CPU, GR_AFFINITY_NODE } gr_affinity;

/* Where P p (0-based) goes under policy; see "Placement" above. *cpus_out is the set to
 * pin p's M to (for NONE: t->online, informational, do not pin) and *node_out its node id
 * (-1 for NONE). Returns 0, or GR_TOPO_EINVAL for p < 0, an unknown policy or a topology
 * without CPUs. */
int gr_topology_place(const gr_topology *t, gr_affinity policy, int p, gr_cpuset *cpus_out,
                      int *node_out);

/* Pin the calling thread (sched_setaffinity(0), which on Linux means this thread, not the
 * process) to cpus. Returns 0 or errno (EINVAL for an empty or wholly offline set). */
int gr_topo_pin_self(const gr_cpuset *cpus);

#endif
