#include "throw.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void gr_throw(const char *what, const char *file, int line)
{
    fprintf(stderr, "goroutines: fatal error: %s (%s:%d)\n", what, file, line);
    fflush(stderr);
    abort();
}
