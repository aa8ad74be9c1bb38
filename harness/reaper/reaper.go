// Package reaper runs a program so that nothing it starts outlives it: neither what it leaves in
// the background nor what daemonizes to escape its process group and session (`setsid`, a double
// fork, `nohup ... &`, `pg_ctl start`).
//
// The program runs as the only child of a reaper: a copy of this very executable, started through
// /proc/self/exe under a name of its own (see init), that makes itself a child subreaper
// (PR_SET_CHILD_SUBREAPER). Everything the program starts descends from the reaper, and a process
// whose parent exits is reparented to the reaper instead of init, so "what the program started"
// is exactly "what is below the reaper" — whatever session or process group it made, however
// often it forked. When the program exits, when the reaper is sent SIGTERM (its command's context
// is done), or when the process that started it dies, the reaper sends SIGTERM to the program's
// process group and to every process reparented to it, SIGKILL after a grace period to whatever
// is left, reaps (wait4) all of it so that no zombie is left, and exits as the program did.
//
// Why a process of its own, and not pgdrill itself as the subreaper: the attribute is per
// process. Set on pgdrill, every orphan of pgdrill's whole life would be reparented to it — the
// backends of a server a chaos fault killed, pgBackRest's asynchronous archivers, what another
// runbook running at the same time left — with nothing to tell which are whose; and reaping them
// (wait4 of any child) would race os/exec waiting for the servers the provider started. The
// reaper has no other children, so everything it signals and reaps is the program's, while the
// provider's own servers, children of pgdrill and never below a reaper, are out of its reach by
// construction. A server the program started itself (a sidecar through pg_ctl) is below it, and
// goes with it. A cgroup v2 would delimit the program as well, from outside, but needs a
// delegated writable hierarchy (root or systemd delegation), which many hosts and CI containers
// lack; a subreaper needs no privilege.
//
// Only the reaper's own children are signalled (and, while the program is not reaped, the
// program's process group): a child's pid cannot be reused before the reaper itself reaps it,
// so no signal can reach a process that is not the program's. A deeper descendant is reached
// once its parent is gone and it is reparented to the reaper.
//
// What is out of reach: a process the reaper's account may not signal (a setuid program, when
// pgdrill does not run as root), given up on killTimeout after SIGKILL; a process that kills the
// reaper itself, whose orphans then go to init; and what the program has a service start for it
// (a container by dockerd, a unit by systemd), which never was below it.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

// argv0 is the name the reaper runs under: what init recognises, and what ps shows.
const argv0 = "pgdrill-reaper"

// killTimeout bounds the wait for processes to go after SIGKILL: one in uninterruptible sleep
// may take a while; one the reaper may not signal never goes.
const killTimeout = 10 * time.Second

// poll is how often a stopping reaper looks again at what is left below it.
const poll = 5 * time.Millisecond

// parentPoll is how often a reaper checks that the process that started it still runs.
const parentPoll = 100 * time.Millisecond

// init turns this executable into a reaper when it was started as one by CommandContext; it
// never returns then. Any other start goes on as usual.
//
// It leaves by syscall.Exit, not os.Exit: the reaper has nothing to flush, and a race-enabled
// binary's os.Exit(0) sleeps a second for the race detector's last report, which every runbook
// of the test suites would wait for.
func init() {
	if len(os.Args) >= 4 && os.Args[0] == argv0 {
		syscall.Exit(serve(os.Args[1], os.Args[2], os.Args[3:]))
	}
}

// CommandContext returns a command that runs name with args below a reaper, so that nothing the
// program starts is left running once the command has been waited for. Set Dir, Env, Stdin,
// Stdout and Stderr as on any command (the program gets them); SysProcAttr, Cancel and WaitDelay
// are the reaper's.
//
// When ctx is done the reaper is sent SIGTERM: the program's process group and everything
// reparented to the reaper get SIGTERM, then SIGKILL once grace is over. The command exits as
// the program did: its exit status, or the signal that ended it (SIGHUP, SIGINT, SIGTERM,
// SIGKILL; 128+n for others, as a shell reports them).
func CommandContext(ctx context.Context, grace time.Duration, name string, arg ...string) *exec.Cmd {
	args := append([]string{grace.String(), strconv.Itoa(os.Getpid()), name}, arg...)
	cmd := exec.CommandContext(ctx, "/proc/self/exe", args...)
	cmd.Args[0] = argv0
	// A group of its own: a Ctrl-C in pgdrill's terminal is pgdrill's to handle (it cancels ctx).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	// The reaper is done within grace and killTimeout; killing it sooner would orphan the program.
	// Past that, what holds output pipes open is what it could not stop.
	cmd.WaitDelay = grace + killTimeout + time.Second
	return cmd
}

// crashSignal asks a reaper to crash its program (Crash).
const crashSignal = syscall.SIGUSR1

// Crash kills everything a command started by CommandContext runs — the program and whatever it
// started, every process below the reaper — at once with SIGKILL, as the crash of the machine it
// ran on would: nothing gets to clean up or finish a write. The command then exits as killed by
// SIGKILL. It is how a drill rehearses a restorer that dies halfway (the restorer-crash fault);
// the reaper still reaps everything, so nothing is left running.
func Crash(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return errors.New("crash command: not started")
	}
	if err := cmd.Process.Signal(crashSignal); err != nil {
		return fmt.Errorf("crash command: %w", err)
	}
	return nil
}

// Below returns every process below the reaper of a command started by CommandContext: the
// program and everything it started (that is still running), for a caller to watch them go.
func Below(cmd *exec.Cmd) []runstate.Process {
	if cmd.Process == nil {
		return nil
	}
	var out []runstate.Process
	for _, pid := range runstate.Descendants(cmd.Process.Pid) {
		if p, err := runstate.Identify(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// reaper is the state of a serving reaper.
type reaper struct {
	self    int
	program int
	// status is the program's, once it has been reaped.
	status *unix.WaitStatus
	// signalled says which signal each child (and, under key -program, the program's group) was
	// last sent, so that each is sent once per stage.
	signalled map[int]syscall.Signal
}

// serve is the reaper's main: it runs argv below itself and returns the exit code to leave with.
func serve(graceArg, parentArg string, argv []string) int {
	grace, err := time.ParseDuration(graceArg)
	if err != nil {
		return failed(fmt.Errorf("parse grace period: %w", err))
	}
	parent, err := strconv.Atoi(parentArg)
	if err != nil {
		return failed(fmt.Errorf("parse parent pid: %w", err))
	}
	// Handled, not ignored: an ignored signal would stay ignored in the program.
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, crashSignal, syscall.SIGCHLD, syscall.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return failed(fmt.Errorf("become a child subreaper: %w", err))
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return failed(fmt.Errorf("start %s: %w", argv[0], err))
	}
	// A process group of its own, as the program would have without a reaper: `kill 0` in it
	// reaches its own processes, not the reaper.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err != nil {
		return failed(fmt.Errorf("start %s: %w", argv[0], err))
	}
	r := &reaper{self: os.Getpid(), program: pid, signalled: map[int]syscall.Signal{}}
	tick := time.NewTicker(parentPoll)
	defer tick.Stop()
	for r.status == nil {
		select {
		case sig := <-signals:
			switch sig {
			case syscall.SIGTERM:
				r.stop(syscall.SIGTERM, grace)
				return r.exitCode()
			case crashSignal:
				r.note("crashing: killing everything the program runs at once", r.below())
				r.stop(syscall.SIGKILL, 0)
				return r.exitCode()
			}
		case <-tick.C:
			if os.Getppid() != parent { // it died: nobody will stop the program but the reaper
				r.stop(syscall.SIGTERM, grace)
				return r.exitCode()
			}
		}
		r.reap()
	}
	r.stop(syscall.SIGTERM, grace)
	return r.exitCode()
}

// failed reports why the reaper could not run the program, as a shell would, and returns the
// exit code a shell uses for a command it could not run.
func failed(err error) int {
	fmt.Fprintf(os.Stderr, "pgdrill reaper: %v\n", err)
	return 127
}

// reap waits for every child that has exited, noting the program's status. It reports whether
// no child is left.
func (r *reaper) reap() bool {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil: // ECHILD
			return true
		case pid == 0:
			return false
		}
		delete(r.signalled, pid)
		if pid == r.program {
			r.status = &ws
		}
	}
}

// stop ends everything below the reaper: first (SIGTERM, and SIGCONT for what is stopped; or
// SIGKILL at once, for a crash) to the program's group while the program is not reaped and to
// every child, SIGKILL to what is left once grace is over, until no child is left or killTimeout
// has passed after SIGKILL.
func (r *reaper) stop(first syscall.Signal, grace time.Duration) {
	if r.reap() {
		return
	}
	if left := r.left(); len(left) > 0 && first != syscall.SIGKILL {
		r.note(fmt.Sprintf("stopping %d process(es) left running", len(left)), left)
	}
	sig, until := first, time.Now().Add(grace)
	if sig == syscall.SIGKILL {
		until = time.Now().Add(killTimeout)
	}
	for {
		if r.status == nil {
			r.signal(-r.program, sig)
		}
		for _, pid := range runstate.Children(r.self) {
			r.signal(pid, sig)
		}
		time.Sleep(poll)
		if r.reap() {
			return
		}
		if time.Now().After(until) {
			if sig == syscall.SIGKILL {
				r.note("could not stop", r.left())
				return
			}
			sig, until = syscall.SIGKILL, time.Now().Add(killTimeout)
		}
	}
}

// signal sends sig to pid (a child, or -program for the program's group) unless it was sent
// already in this stage.
func (r *reaper) signal(pid int, sig syscall.Signal) {
	if r.signalled[pid] == sig {
		return
	}
	r.signalled[pid] = sig
	_ = syscall.Kill(pid, sig)
	if sig == syscall.SIGTERM {
		_ = syscall.Kill(pid, syscall.SIGCONT) // a stopped process would not act on SIGTERM
	}
}

// left describes the reaper's running children other than the program: what the program left
// behind or what escaped its group. Each is "PID command line".
func (r *reaper) left() []string {
	var out []string
	for _, pid := range runstate.Children(r.self) {
		p, err := runstate.Identify(pid)
		if pid == r.program || err != nil || !p.Alive() {
			continue
		}
		args, _ := runstate.CommandLine(pid)
		out = append(out, strconv.Itoa(pid)+" "+strings.Join(args, " "))
	}
	return out
}

// below describes every process below the reaper, the program included, each as "PID command
// line".
func (r *reaper) below() []string {
	var out []string
	for _, pid := range runstate.Descendants(r.self) {
		args, _ := runstate.CommandLine(pid)
		out = append(out, strconv.Itoa(pid)+" "+strings.Join(args, " "))
	}
	return out
}

// note tells whoever reads the program's output what the reaper did, in the program's own
// output (where a person debugging it looks), marked as pgdrill's.
func (r *reaper) note(what string, procs []string) {
	fmt.Fprintf(os.Stderr, "[pgdrill: %s: %s]\n", what, strings.Join(procs, "; "))
}

// exitCode is the code the reaper leaves with: the program's. A program ended by a signal the
// Go runtime dies of when it is not handled is mirrored by that very signal, so the reaper's
// parent sees what it would have seen without a reaper.
func (r *reaper) exitCode() int {
	switch {
	case r.status == nil: // could not be stopped or reaped
		return 128 + int(syscall.SIGKILL)
	case r.status.Signaled():
		sig := r.status.Signal()
		switch sig {
		case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL:
			signal.Reset(sig)
			_ = syscall.Kill(r.self, sig)
			time.Sleep(time.Second) // delivery is asynchronous; the exit below is the fallback
		}
		return 128 + int(sig)
	default:
		return r.status.ExitStatus()
	}
}
