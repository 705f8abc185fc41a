// printf to stdout and stderr, a float, and an exit status.
#include <stdio.h>

int main(void) {
    printf("hello from C, %d + %d = %d\n", 2, 3, 2 + 3);
    printf("pi is about %.5f\n", 3.14159265);
    fprintf(stderr, "this goes to stderr\n");
    return 0;
}
