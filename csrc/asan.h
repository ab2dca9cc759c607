/*
 * asan.h: keep AddressSanitizer's view of the stack honest across greenlet switches.
 *
 * greenlet moves slices of the C stack in and out of the heap, but ASan's shadow memory
 * for those addresses stays where it was: when a greenlet resumes, the redzones that
 * other greenlets' instrumented frames poisoned at the same addresses are still there,
 * and uninstrumented CPython frames living over them (vectorcall argument arrays) read as
 * poisoned. greenlet does not call ASan's fiber-switch API, so after every resumption the
 * switching code calls gr_asan_after_switch, which clears stale poison around the current
 * frame. Outside ASan builds it is an empty inline function.
 */
#ifndef GR_ASAN_H
#define GR_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <stddef.h>

/* Below the current frame, how deep other greenlets' frames may have reached. */
#define GR_ASAN_STACK_BELOW (256 * 1024)

static inline void gr_asan_after_switch(void)
{
    static _Thread_local char *lo, *hi;
    if (!hi) {
        pthread_attr_t attr;
        void *addr;
        size_t size;
        pthread_getattr_np(pthread_self(), &attr);
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
        lo = addr;
        hi = (char *)addr + size;
    }
    char here;
    char *from = &here - GR_ASAN_STACK_BELOW;
    if (from < lo)
        from = lo;
    __asan_unpoison_memory_region(from, (size_t)(hi - from));
}
#else
static inline void gr_asan_after_switch(void) {}
#endif

#endif
