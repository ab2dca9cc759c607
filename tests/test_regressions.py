"""Regression tests, each named after the failure it guards against."""
import subprocess
import sys
import textwrap


def test_many_parked_tasks_do_not_accumulate_recursion_depth():
    # Each new worker greenlet used to start on top of the recursion depth of the parked
    # task that needed it; 20k parked tasks then hit RecursionError (and a crash) at exit.
    code = textwrap.dedent(
        """
        import goroutines as gr
        def main():
            for _ in range(30000):
                gr.go(gr.sleep, 1000)
            gr.sleep(0.05)
            return gr.num_tasks()
        print(gr.run(main, procs=1))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RecursionError" not in out.stderr
    assert out.stdout.strip() == "30001"
