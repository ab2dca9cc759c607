"""goroutines: Go's runtime for CPython.

A G-M-P scheduler in C (per-processor run queues, work stealing, parking) runs lightweight
tasks on greenlets across OS threads::

    import goroutines as gr

    def main():
        tasks = [gr.go(pow, 2, i) for i in range(10)]
        return [t.join() for t in tasks]

    print(gr.run(main))
"""
from goroutines._core import (
    BusyResourceError,
    Cancelled,
    Chan,
    ChanClosed,
    Deadlock,
    Event,
    HogWarning,
    Mutex,
    Once,
    Recv,
    RWMutex,
    Semaphore,
    Send,
    Task,
    TaskGroup,
    TaskInfo,
    Ticker,
    Timer,
    WaitGroup,
    after,
    after_func,
    blocking,
    current,
    dump,
    go,
    gosched,
    notify_closing,
    num_tasks,
    procs,
    run,
    select,
    sleep,
    stats,
    tasks,
    topology,
    wait_readable,
    wait_writable,
)
from goroutines.monkey import patch, unpatch

__all__ = [
    "BusyResourceError",
    "Cancelled",
    "Chan",
    "ChanClosed",
    "Deadlock",
    "Event",
    "HogWarning",
    "Mutex",
    "Once",
    "RWMutex",
    "Recv",
    "Semaphore",
    "Send",
    "Task",
    "TaskGroup",
    "TaskInfo",
    "Ticker",
    "Timer",
    "WaitGroup",
    "after",
    "after_func",
    "blocking",
    "current",
    "dump",
    "go",
    "gosched",
    "notify_closing",
    "num_tasks",
    "patch",
    "procs",
    "run",
    "select",
    "sleep",
    "stats",
    "tasks",
    "topology",
    "unpatch",
    "wait_readable",
    "wait_writable",
]
