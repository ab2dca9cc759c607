/*
 * throw.h: broken invariants end the process, as Go's runtime `throw`s.
 *
 * GR_ASSERT states an invariant the scheduler relies on. It is checked in builds with
 * GR_DEBUG defined (the sanitizer builds and the cffi tests of csrc) and compiles to
 * nothing otherwise: the checks sit on hot paths. A failed check prints what broke and
 * where, then aborts: a scheduler whose counts or queues are wrong can only lose tasks or
 * wake-ups from there on, and a core dump at the fault beats a hang much later.
 */
#ifndef GR_THROW_H
#define GR_THROW_H

_Noreturn void gr_throw(const char *what, const char *file, int line);

#ifdef GR_DEBUG
#define GR_ASSERT(cond, what)                                                                  \
    do {                                                                                       \
        if (!(cond))                                                                           \
            gr_throw(what, __FILE__, __LINE__);                                                \
    } while (0)
#else
/* sizeof: cond is not evaluated, but what it names counts as used (-Werror builds). */
#define GR_ASSERT(cond, what) ((void)sizeof(cond))
#endif

#endif
