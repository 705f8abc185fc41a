// 32 bytes from getentropy (WASI random_get), not all zero.
#include <stdio.h>
#include <unistd.h>

int main(void) {
    unsigned char buf[32] = {0};
    if (getentropy(buf, sizeof buf) != 0) {
        perror("getentropy");
        return 2;
    }
    int any = 0;
    for (unsigned i = 0; i < sizeof buf; i++)
        any |= buf[i];
    printf("random bytes: %s\n", any ? "yes" : "all zero");
    return any ? 0 : 1;
}
