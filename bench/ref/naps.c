// Reference: a program that mostly waits. Sleeps 1 ms N times (nanosleep), then prints how
// long that took in ms. Usage: naps N
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000;
  struct timespec a, b, ms = {0, 1000000};
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) nanosleep(&ms, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6);
  return 0;
}
