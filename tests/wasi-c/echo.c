// Copies stdin to stdout, line by line, until end of input; counts lines
// on stderr.
#include <stdio.h>

int main(void) {
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, stdin)) {
        fputs(line, stdout);
        n++;
    }
    fprintf(stderr, "%d lines\n", n);
    return 0;
}
