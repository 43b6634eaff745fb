// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* -d: detach, and tell the command how start-up went. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>

#include "daemon.h"

/* The command's side: one byte means ready; end of file means the child
 * ended first, and its exit status says how (never 0: it did not start). */
static void __attribute__((noreturn)) wait_ready(int fd, pid_t child)
{
	char c;
	ssize_t n;
	int st;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(0);
	if (waitpid(child, &st, 0) < 0)
		_exit(1);
	if (WIFEXITED(st) && WEXITSTATUS(st))
		_exit(WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		_exit(128 + WTERMSIG(st));
	_exit(1);
}

int ns_detach(int *ready_fd)
{
	int p[2], null;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	/* Nothing buffered may be written twice. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid > 0) {
		close(p[1]);
		wait_ready(p[0], pid);
	}
	close(p[0]);
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	*ready_fd = p[1];
	return 0;
}

void ns_detach_ready(int *ready_fd)
{
	ssize_t n;

	if (*ready_fd < 0)
		return;
	do
		n = write(*ready_fd, "r", 1);
	while (n < 0 && errno == EINTR);
	close(*ready_fd);
	*ready_fd = -1;
}
