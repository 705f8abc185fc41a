// A compute kernel: the number of primes below N (argv[1], default
// 200000) by trial division, and a checksum of a matrix product.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    long primes = 0;
    for (long i = 2; i < n; i++) {
        int prime = 1;
        for (long d = 2; d * d <= i; d++)
            if (i % d == 0) { prime = 0; break; }
        primes += prime;
    }
    enum { M = 64 };
    static double a[M][M], b[M][M], c[M][M];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) { a[i][j] = i + j; b[i][j] = i - j; }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            double s = 0;
            for (int k = 0; k < M; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    double sum = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) sum += c[i][j];
    printf("primes below %ld: %ld\nmatrix checksum: %.1f\n", n, primes, sum);
    return 0;
}
