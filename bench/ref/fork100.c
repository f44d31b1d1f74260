/* fork + _exit + waitpid of a process with 100 MB of touched memory, N times: prints the mean
 * milliseconds per round (the copy-on-write copy's cost, page tables and all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10;
  size_t size = 100u << 20;
  char* mem = malloc(size);
  if (!mem) return 1;
  memset(mem, 1, size);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    pid_t c = fork();
    if (c == 0) _exit(mem[i * 4096] == 1 ? 0 : 1);
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / n);
  return 0;
}
