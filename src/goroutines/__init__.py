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
    CancelScope,
    Chan,
    ChanClosed,
    Deadlock,
    Event,
    Mutex,
    Once,
    Recv,
    RWMutex,
    Semaphore,
    Send,
    Task,
    TaskGroup,
    Ticker,
    Timer,
    WaitGroup,
    after,
    after_func,
    aio,
    blocking,
    current,
    go,
    gosched,
    move_on_after,
    move_on_at,
    notify_closing,
    num_tasks,
    procs,
    result,
    run,
    select,
    sleep,
    stats,
    timeout,
    timeout_at,
    topology,
    wait_readable,
    wait_writable,
)
from goroutines._interop import Executor, to_async
from goroutines.monkey import patch, unpatch

__all__ = [
    "BusyResourceError",
    "CancelScope",
    "Cancelled",
    "Chan",
    "ChanClosed",
    "Deadlock",
    "Event",
    "Executor",
    "Mutex",
    "Once",
    "RWMutex",
    "Recv",
    "Semaphore",
    "Send",
    "Task",
    "TaskGroup",
    "Ticker",
    "Timer",
    "WaitGroup",
    "after",
    "after_func",
    "aio",
    "blocking",
    "current",
    "go",
    "gosched",
    "move_on_after",
    "move_on_at",
    "notify_closing",
    "num_tasks",
    "patch",
    "procs",
    "result",
    "run",
    "select",
    "sleep",
    "stats",
    "timeout",
    "timeout_at",
    "to_async",
    "topology",
    "unpatch",
    "wait_readable",
    "wait_writable",
]
