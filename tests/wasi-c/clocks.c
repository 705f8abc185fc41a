// A monotonic clock that moves, a sleep that lasts, a sane wall clock.
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec a, b, now;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("slept at least 50 ms: %s\n", ms >= 50 ? "yes" : "no");
    printf("wall clock after 2026: %s\n", now.tv_sec > 1767225600 ? "yes" : "no");
    return 0;
}
