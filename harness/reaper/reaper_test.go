package reaper_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/reaper"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// parentEnv, set, makes the suite's test binary the parent of a reaper instead of running the
// specs: see beParent.
const parentEnv = "PGDRILL_SPEC_REAPER_PARENT"

// forkScript writes "PID START_TIME" of its shell and of a daemon it starts (setsid) to the file
// named by $1, then waits for that daemon.
const forkScript = `echo "$$ $(cut -d' ' -f22 /proc/$$/stat)" >> "$1"
setsid sh -c 'echo "$$ $(cut -d" " -f22 /proc/$$/stat)" >> "$0"; exec sleep 600' "$1" &
wait`

// beParent runs forkScript below a reaper, writing to the file named by parentEnv, and waits to be
// killed.
func beParent() {
	cmd := reaper.CommandContext(context.Background(), time.Second, "sh", "-c", forkScript, "sh", os.Getenv(parentEnv))
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = cmd.Wait()
}

var _ = Describe("a reaper", func() {
	It("exits as its program did", func(ctx context.Context) {
		var exit *exec.ExitError
		err := reaper.CommandContext(ctx, time.Second, "sh", "-c", "exit 7").Run()
		Expect(errors.As(err, &exit)).To(BeTrue(), "%v", err)
		Expect(exit.ExitCode()).To(Equal(7))

		err = reaper.CommandContext(ctx, time.Second, "sh", "-c", "kill -TERM $$").Run()
		Expect(errors.As(err, &exit)).To(BeTrue(), "%v", err)
		Expect(exit.Sys().(syscall.WaitStatus).Signal()).To(Equal(syscall.SIGTERM))

		var stderr bytes.Buffer
		cmd := reaper.CommandContext(ctx, time.Second, "/nonexistent/program")
		cmd.Stderr = &stderr
		Expect(errors.As(cmd.Run(), &exit)).To(BeTrue())
		Expect(exit.ExitCode()).To(Equal(127), "as a shell says it could not run a command")
		Expect(stderr.String()).To(ContainSubstring("start /nonexistent/program"))
	})

	It("hands its program the directory, environment and output it was given", func(ctx context.Context) {
		dir := GinkgoT().TempDir()
		var out bytes.Buffer
		cmd := reaper.CommandContext(ctx, time.Second, "sh", "-c", `pwd -P; echo "$SPEC_VAR"; echo err >&2`)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, []string{"SPEC_VAR=given", "PATH=/usr/bin:/bin"}, &out, &out
		Expect(cmd.Run()).To(Succeed())
		real, err := filepath.EvalSymlinks(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(out.String()).To(Equal(real + "\ngiven\nerr\n"))
	})

	It("kills what its program left ignoring SIGTERM once the grace is over, and names it", func(ctx context.Context) {
		var out bytes.Buffer
		cmd := reaper.CommandContext(ctx, 300*time.Millisecond, "sh", "-c", `setsid sh -c "trap '' TERM; exec sleep 600" &
			until [ "$(cat /proc/$!/comm)" = sleep ]; do sleep 0.01; done # its trap is set: it is sleep
			echo started`)
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		Expect(cmd.Run()).To(Succeed())
		Expect(time.Since(start)).To(BeNumerically(">=", 300*time.Millisecond), "it had its grace")
		note := regexp.MustCompile(`^started\n\[pgdrill: stopping 1 process\(es\) left running: (\d+) sleep 600\]\n$`)
		Expect(out.String()).To(MatchRegexp(note.String()))
		Expect("/proc/"+note.FindStringSubmatch(out.String())[1]).NotTo(BeAnExistingFile(), "killed and reaped")
	})

	It("crashes its program and everything below it at once, giving none the grace to clean up", func(ctx context.Context) {
		pids := filepath.Join(GinkgoT().TempDir(), "pids")
		var out bytes.Buffer
		// A grace longer than the spec: a stop that honoured it would time the spec out.
		cmd := reaper.CommandContext(ctx, time.Hour, "sh", "-c", "trap 'echo trapped-$((40+2))' TERM; "+forkScript, "sh", pids)
		cmd.Stdout, cmd.Stderr = &out, &out
		Expect(cmd.Start()).To(Succeed())
		Eventually(func() []runstate.Process { return drilltest.ReadProcesses(pids) }, 10*time.Second).Should(HaveLen(2))
		procs := drilltest.ReadProcesses(pids)
		Expect(reaper.Below(cmd)).To(ContainElements(procs), "it sees the program and the daemon it started")

		Expect(reaper.Crash(cmd)).To(Succeed())
		var exit *exec.ExitError
		Expect(errors.As(cmd.Wait(), &exit)).To(BeTrue())
		Expect(exit.Sys().(syscall.WaitStatus).Signal()).To(Equal(syscall.SIGKILL), "it exits as killed")
		for _, p := range procs {
			Expect(p.Alive()).To(BeFalse(), "process %d is gone, reaped", p.PID)
		}
		Expect(out.String()).To(ContainSubstring("[pgdrill: crashing: killing everything the program runs at once"))
		Expect(out.String()).NotTo(ContainSubstring("trapped-42"), "SIGKILL, not SIGTERM")
	})

	It("stops its program and everything below it when the process that started it dies", func(ctx context.Context) {
		pids := filepath.Join(GinkgoT().TempDir(), "pids")
		parent := exec.Command(os.Args[0], "-test.run=^TestReaper$")
		parent.Env = append(os.Environ(), parentEnv+"="+pids)
		parent.Stderr = GinkgoWriter
		Expect(parent.Start()).To(Succeed())
		DeferCleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
		Eventually(func() []runstate.Process { return drilltest.ReadProcesses(pids) }, 10*time.Second).Should(HaveLen(2))
		procs := drilltest.ReadProcesses(pids)
		for _, p := range procs {
			Expect(p.Alive()).To(BeTrue())
		}

		By("killing the reaper's parent, as SIGKILL would")
		Expect(parent.Process.Signal(syscall.SIGKILL)).To(Succeed())
		_ = parent.Wait()
		for _, p := range procs {
			Eventually(func() bool { return drilltest.ProcessExists(p) }, 5*time.Second).Should(BeFalse(), "process %d is still there", p.PID)
		}
	})
})
