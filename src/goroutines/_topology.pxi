# Included by _core.pyx: the machine's NUMA nodes and where each P's M is placed
# (csrc/topology.h).
import os

from cpython.mem cimport PyMem_Malloc, PyMem_Free


_POLICIES = {None: GR_AFFINITY_NONE, "cpu": GR_AFFINITY_CPU, "node": GR_AFFINITY_NODE}


cdef list _cpus(const gr_cpuset *s):
    return [c for c in range(GR_MAX_CPUS) if gr_cpuset_has(s, c)]


cdef gr_topology *_read() except NULL:
    """The topology restricted to the CPUs this process may use (caller frees it)."""
    cdef gr_topology *t = <gr_topology *>PyMem_Malloc(sizeof(gr_topology))
    cdef gr_cpuset allowed
    if t == NULL:
        raise MemoryError()
    root = os.environ.get("GOROUTINES_SYSFS_ROOT") or "/sys"
    cdef int rc = gr_topology_read(os.fsencode(root), t)
    if rc == GR_TOPO_EMALFORMED:
        bad = t.bad_path.decode(errors="replace")
        PyMem_Free(t)
        raise ValueError(f"malformed CPU list in {bad}")
    gr_cpuset_zero(&allowed)
    for c in os.sched_getaffinity(0):
        gr_cpuset_add(&allowed, c)
    gr_topology_restrict(t, &allowed)
    return t


def topology() -> dict:
    """The NUMA nodes and the CPU ids of each, limited to the CPUs this process may use:
    ``{node_id: [cpu, ...]}``. Read from sysfs (``GOROUTINES_SYSFS_ROOT`` overrides the
    /sys root); a machine without node information is a single node 0.

    Example::

        for node, cpus in gr.topology().items():
            print(node, cpus)
    """
    cdef gr_topology *t = _read()
    try:
        return {t.node_ids[i]: _cpus(&t.node_cpus[i]) for i in range(t.nnodes)}
    finally:
        PyMem_Free(t)


def placement(affinity, int nprocs) -> list:
    """For each P: (node id, CPUs to pin its M to, or None to leave it unpinned)."""
    if affinity not in _POLICIES:
        raise ValueError(f"affinity must be None, 'cpu' or 'node', not {affinity!r}")
    cdef gr_affinity policy = _POLICIES[affinity]
    cdef gr_topology *t = _read()
    cdef gr_cpuset cpus
    cdef int node
    out = []
    try:
        for p in range(nprocs):
            if gr_topology_place(t, policy, p, &cpus, &node) != 0:
                raise ValueError(f"cannot place P {p} with affinity {affinity!r}")
            out.append((node, None if policy == GR_AFFINITY_NONE else _cpus(&cpus)))
    finally:
        PyMem_Free(t)
    return out


def pin_self(cpus) -> None:
    """Pin the calling thread to the given CPUs."""
    cdef gr_cpuset s
    gr_cpuset_zero(&s)
    for c in cpus:
        gr_cpuset_add(&s, c)
    cdef int err = gr_topo_pin_self(&s)
    if err:
        raise OSError(err, os.strerror(err))
