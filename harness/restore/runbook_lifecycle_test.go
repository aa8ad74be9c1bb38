package restore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/types"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// daemonScript writes "PID START_TIME" of the shell running it to the file named by $1, then
// becomes a long sleep under that very pid.
const daemonScript = `echo "$$ $(cut -d' ' -f22 /proc/$$/stat)" >> "$1"; exec sleep 600`

var _ = Describe("a runbook's processes", Ordered, func() {
	var env restore.Env
	var rec incident.Record
	BeforeAll(func(ctx context.Context) { env, rec = runbookDrill(ctx) })

	DescribeTable("are all gone when Restore returns, however they daemonized, and nothing else is",
		func(ctx context.Context, end string, timeout time.Duration, cancel bool, wantErr types.GomegaMatcher) {
			dir := GinkgoT().TempDir()
			daemon, pids := filepath.Join(dir, "daemon.sh"), filepath.Join(dir, "pids")
			Expect(os.WriteFile(daemon, []byte(daemonScript), 0o600)).To(Succeed())

			By("starting processes of the spec's own: a child, and a daemon of its own")
			sibling := exec.Command("sleep", "600")
			Expect(sibling.Start()).To(Succeed())
			DeferCleanup(func() { _ = sibling.Process.Kill(); _ = sibling.Wait() })
			siblingID, err := runstate.Identify(sibling.Process.Pid)
			Expect(err).NotTo(HaveOccurred())
			ownPids := filepath.Join(dir, "own-pids")
			Expect(exec.Command("setsid", "-f", "sh", daemon, ownPids).Run()).To(Succeed())
			Eventually(func() []runstate.Process { return drilltest.ReadProcesses(ownPids) }).Should(HaveLen(1))
			ownDaemon := drilltest.ReadProcesses(ownPids)[0]
			DeferCleanup(func() { killIfAlive(ownDaemon) })

			By("running a runbook that daemonizes in four ways")
			r := restore.Runbook{Timeout: timeout, Command: fmt.Sprintf(`d='%s'; p='%s'; : > "$p"
				setsid sh "$d" "$p" &
				setsid -f sh "$d" "$p"
				sh -c 'sh "$0" "$1" &' "$d" "$p"
				nohup setsid sh "$d" "$p" >/dev/null 2>&1 &
				until [ "$(wc -l < "$p")" -ge 4 ]; do sleep 0.01; done
				%s`, daemon, pids, end)}
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			if cancel {
				go func() {
					defer GinkgoRecover()
					for len(drilltest.ReadProcesses(pids)) < 4 && rctx.Err() == nil {
						time.Sleep(10 * time.Millisecond)
					}
					stop()
				}()
			}
			res, err := r.Restore(rctx, env, rec)
			Expect(err).To(wantErr)

			By("finding none of its processes, not even as a zombie")
			daemons := drilltest.ReadProcesses(pids)
			Expect(daemons).To(HaveLen(4), "each daemon wrote its pid")
			for _, p := range daemons {
				Expect(drilltest.ProcessExists(p)).To(BeFalse(), "process %d is still there", p.PID)
			}
			Expect(res.Output).To(MatchRegexp(`\[pgdrill: stopping \d+ process\(es\) left running: \d+ `))

			By("finding the spec's own processes and the cluster's servers still running")
			Expect(siblingID.Alive()).To(BeTrue(), "the spec's own child")
			Expect(ownDaemon.Alive()).To(BeTrue(), "the spec's own daemon, reparented outside pgdrill")
			expectServersRun(ctx, env.Cluster)
		},
		Entry("on success", "exit 0", time.Duration(0), false, Succeed()),
		Entry("on failure", "exit 1", time.Duration(0), false, MatchError(ContainSubstring("exit status 1"))),
		Entry("on timeout", "sleep 600", 3*time.Second, false, MatchError(ContainSubstring("timed out after 3s"))),
		Entry("on cancel", "sleep 600", time.Duration(0), true, MatchError(context.Canceled)),
	)

	It("stops a server the runbook started itself with pg_ctl, and never the cluster's", func(ctx context.Context) {
		info := env.Cluster.Catalog().Info()
		pids := filepath.Join(GinkgoT().TempDir(), "pids")
		r := restore.Runbook{Command: fmt.Sprintf(`set -e
			cd "$PGDRILL_WORKDIR" # the account the servers run as can enter it
			as=""; if [ "$(id -u)" = 0 ]; then as="runuser -u %[1]s --"; fi
			side="$PGDRILL_WORKDIR/side"
			$as '%[2]s/initdb' -D "$side" -U postgres -A trust >/dev/null
			$as '%[2]s/pg_ctl' -D "$side" -l "$PGDRILL_WORKDIR/log" -w \
				-o "-c listen_addresses='' -c unix_socket_directories='$PGDRILL_WORKDIR'" start >/dev/null
			pm=$(head -1 "$side/postmaster.pid")
			for p in $pm $(pgrep -P "$pm"); do echo "$p $(cut -d' ' -f22 /proc/$p/stat)" >> '%[3]s'; done
			echo sidecar up`, info.Account, info.BinDir, pids)}
		res, err := r.Restore(ctx, env, rec)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(HavePrefix("sidecar up\n"))
		Expect(res.Output).To(MatchRegexp(`\[pgdrill: stopping \d+ process\(es\) left running: (.*; )?\d+ \S+/postgres -D \S+/side`))

		procs := drilltest.ReadProcesses(pids)
		Expect(len(procs)).To(BeNumerically(">", 1), "the postmaster and its children were written down")
		for _, p := range procs {
			Expect(drilltest.ProcessExists(p)).To(BeFalse(), "process %d of the runbook's server is still there", p.PID)
		}
		expectServersRun(ctx, env.Cluster)
	})
})

var _ = Describe("a runbook's output", Ordered, func() {
	var env restore.Env
	var rec incident.Record
	BeforeAll(func(ctx context.Context) { env, rec = runbookDrill(ctx) })

	It("is streamed line by line as it comes, kept, and quoted by the error of a failed runbook", func(ctx context.Context) {
		stream := gbytes.NewBuffer()
		proceed := filepath.Join(GinkgoT().TempDir(), "proceed")
		r := restore.Runbook{Stream: stream, Command: fmt.Sprintf(`echo "to stdout"
			echo "to stderr" >&2
			until [ -e '%s' ]; do sleep 0.01; done
			echo "after the spec read the first lines"
			printf 'the last line, without a newline' >&2
			exit 3`, proceed)}
		type result struct {
			res restore.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			defer GinkgoRecover()
			res, err := r.Restore(ctx, env, rec)
			done <- result{res, err}
		}()

		By("reading the first lines while the runbook still runs")
		Eventually(stream).Should(gbytes.Say(`^runbook \| to stdout\nrunbook \| to stderr\n`))
		Consistently(done, 100*time.Millisecond).ShouldNot(Receive(), "it waits for the spec")
		Expect(os.WriteFile(proceed, nil, 0o600)).To(Succeed())

		var got result
		Eventually(done, 10*time.Second).Should(Receive(&got))
		Expect(stream.Contents()).To(BeEquivalentTo("runbook | to stdout\nrunbook | to stderr\n" +
			"runbook | after the spec read the first lines\nrunbook | the last line, without a newline\n"))
		Expect(got.res.Output).To(Equal("to stdout\nto stderr\nafter the spec read the first lines\n" +
			"the last line, without a newline"))

		By("naming the exit status and the last lines in the error")
		var exit *exec.ExitError
		Expect(errors.As(got.err, &exit)).To(BeTrue(), "the exit is kept in the chain: %v", got.err)
		Expect(exit.ExitCode()).To(Equal(3))
		Expect(got.err).To(MatchError("runbook: run runbook: exit status 3; last output:\n\tto stdout\n\tto stderr\n" +
			"\tafter the spec read the first lines\n\tthe last line, without a newline"))
	})

	It("is not held up by a process the runbook left holding the stream", func(ctx context.Context) {
		stream := gbytes.NewBuffer()
		start := time.Now()
		res, err := restore.Runbook{Stream: stream, Command: `sleep 600 &
			until [ "$(cat /proc/$!/comm)" = sleep ]; do sleep 0.01; done # it runs sleep, not a copy of sh
			echo left a sleep`}.Restore(ctx, env, rec)
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second), "the sleep dies on SIGTERM, at once")
		Expect(stream).To(gbytes.Say(`runbook \| left a sleep\nrunbook \| \[pgdrill: stopping 1 process\(es\) left running: \d+ sleep 600\]\n`))
		Expect(res.Output).To(HavePrefix("left a sleep\n"))
	})

	It("says that a failed runbook printed nothing", func(ctx context.Context) {
		_, err := restore.Runbook{Command: "exit 4"}.Restore(ctx, env, rec)
		Expect(err).To(MatchError("runbook: run runbook: exit status 4; it printed nothing"))
	})
})

// killIfAlive kills the very process p (not a later one reusing its pid), if it still runs.
func killIfAlive(p runstate.Process) {
	if p.Alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
}

// expectServersRun checks that every server of c still runs and answers.
func expectServersRun(ctx context.Context, c cluster.Cluster) {
	GinkgoHelper()
	rec, err := provider.Store().Load(c.RunID())
	Expect(err).NotTo(HaveOccurred())
	Expect(rec.Servers).NotTo(BeEmpty())
	for _, s := range rec.Servers {
		Expect(s.Process.Alive()).To(BeTrue(), "server %s of the cluster", s.Name)
	}
	Expect(drilltest.QueryInt(ctx, c.Catalog().DSN(), "SELECT 1")).To(BeEquivalentTo(1))
}
