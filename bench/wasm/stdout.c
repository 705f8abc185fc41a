// Writes 100 MB (100 * 2^20 bytes) to stdout in 64 KiB writes: cordon's
// stdout throughput through the virtio console.
#include <string.h>
#include <unistd.h>

int main(void) {
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 1600; i++) {
        const char *p = chunk;
        size_t left = sizeof chunk;
        while (left) {
            ssize_t n = write(1, p, left);
            if (n <= 0)
                return 1;
            p += n;
            left -= (size_t)n;
        }
    }
    return 0;
}
