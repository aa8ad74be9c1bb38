package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

// pollInterval is how often readiness and exit are polled. pg_ctl -w polls every 100 ms; a
// server is usually ready ~50 ms after start, so a short poll saves most of that wait.
const pollInterval = 5 * time.Millisecond

// stopTimeout bounds a fast shutdown before the server is killed.
const stopTimeout = 30 * time.Second

// FreePort asks the kernel for a free loopback port. Another process may take it before
// Postgres binds it; callers retry on "could not bind". Exported for benchmarks that start a bare
// Postgres next to pgdrill's.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readPostmasterPID reads what the postmaster keeps in DATADIR/postmaster.pid: its pid (line 1),
// its System V shared memory segment's id (line 7, "key id"; -1 while that line is not written
// or names no segment) and its status (line 8: "starting", "ready", "standby", "stopping"; empty
// while not written). ok is false when there is no such file: no postmaster ran, or it shut
// down cleanly.
func readPostmasterPID(dataDir string) (pid, shmID int, status string, ok bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, -1, "", false
	}
	lines := strings.Split(string(data), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	const shmLine, statusLine = 6, 7
	shmID = -1
	if len(lines) > shmLine {
		if fields := strings.Fields(lines[shmLine]); len(fields) == 2 {
			if id, err := strconv.Atoi(fields[1]); err == nil {
				shmID = id
			}
		}
	}
	if len(lines) > statusLine {
		status = strings.TrimSpace(lines[statusLine])
	}
	return pid, shmID, status, true
}

// isPostmaster reports whether proc is still the postmaster of dataDir: the same process (pid
// and start time), leading its own process group, with dataDir on its command line. Reapers
// check this before signalling anything, so that nothing pgdrill did not start is ever killed.
func isPostmaster(proc runstate.Process, dataDir string) bool {
	if !proc.Alive() {
		return false
	}
	if pgrp, err := runstate.ProcessGroup(proc.PID); err != nil || pgrp != proc.PID {
		return false
	}
	args, err := runstate.CommandLine(proc.PID)
	return err == nil && slices.Contains(args, dataDir)
}

// terminate stops the postmaster proc of dataDir: fast shutdown (SIGINT) first, then SIGKILL of
// its whole process group once ctx or stopTimeout runs out. exited, when not nil, closes when the
// process has been waited for (the caller started it); otherwise it is polled. It does nothing
// when proc is not that postmaster any more.
func terminate(ctx context.Context, proc runstate.Process, dataDir string, exited <-chan struct{}) error {
	if !isPostmaster(proc, dataDir) {
		return removeSharedMemory(dataDir)
	}
	signalServer(proc.PID, syscall.SIGCONT) // a paused server cannot shut down
	if err := syscall.Kill(proc.PID, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal postmaster %d: %w", proc.PID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if waitGone(ctx, proc, exited) {
		return removeSharedMemory(dataDir)
	}
	signalServer(proc.PID, syscall.SIGKILL)
	killCtx, killCancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer killCancel()
	if !waitGone(killCtx, proc, exited) {
		return fmt.Errorf("stop postmaster %d: still running after SIGKILL", proc.PID)
	}
	return removeSharedMemory(dataDir)
}

// signalServer sends sig to a postmaster and every process below it. Backends are session
// leaders of their own, so signalling the postmaster's process group would miss them. For
// SIGKILL and SIGSTOP the postmaster is stopped first so it cannot fork while its children are
// being signalled; for SIGCONT the children are woken first.
func signalServer(postmaster int, sig syscall.Signal) {
	switch sig {
	case syscall.SIGCONT:
		for _, pid := range runstate.Descendants(postmaster) {
			_ = syscall.Kill(pid, sig)
		}
		_ = syscall.Kill(postmaster, sig)
	default:
		_ = syscall.Kill(postmaster, syscall.SIGSTOP)
		for _, pid := range runstate.Descendants(postmaster) {
			_ = syscall.Kill(pid, sig)
		}
		_ = syscall.Kill(postmaster, sig)
	}
}

// waitGone waits until proc has exited and, when the caller started it, been waited for.
func waitGone(ctx context.Context, proc runstate.Process, exited <-chan struct{}) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if exited != nil {
			select {
			case <-exited:
				return true
			default:
			}
		} else if !proc.Alive() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// removeSharedMemory removes the System V segment a killed postmaster leaves behind (a clean
// shutdown removes it itself). It is removed only when nothing is attached to it and it was
// created by that postmaster.
func removeSharedMemory(dataDir string) error {
	pid, id, _, ok := readPostmasterPID(dataDir)
	if !ok || id < 0 {
		return nil // clean shutdown: no lock file, nothing left
	}
	var desc unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &desc); err != nil {
		return nil // already gone
	}
	if desc.Nattch != 0 || int(desc.Cpid) != pid {
		return nil
	}
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("remove shared memory segment %d of %s: %w", id, dataDir, err)
	}
	return nil
}

// waitDetached waits until no process is attached to the System V segment of dataDir's last
// postmaster: after kill -9 the backends die a little after the postmaster, and a server started
// while one still holds the segment refuses to run.
func waitDetached(ctx context.Context, dataDir string) bool {
	_, id, _, ok := readPostmasterPID(dataDir)
	if !ok || id < 0 {
		return true
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		var desc unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &desc); err != nil || desc.Nattch == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
