package fault_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/fault"
)

// noop is a fault that breaks nothing and says so in Confirm: the lifecycle's own rules.
type noop struct{ took bool }

func (n *noop) Describe() string                    { return "nothing" }
func (n *noop) Setup(context.Context) error         { return nil }
func (n *noop) Inject(context.Context) error        { return nil }
func (n *noop) Heal(context.Context) error          { return nil }
func (n *noop) ConfirmHealed(context.Context) error { return nil }
func (n *noop) Cleanup(context.Context) error       { return nil }
func (n *noop) Confirm(context.Context) error {
	if !n.took {
		return errors.New("nothing changed")
	}
	return nil
}

var _ = Describe("the fault lifecycle", func() {
	It("refuses steps out of order and cleans up from any state", func(ctx context.Context) {
		fl := fault.New(&noop{took: true})
		Expect(fl.Inject(ctx)).To(MatchError(fault.ErrTransition), "inject before setup")
		Expect(fl.Heal(ctx)).To(MatchError(fault.ErrTransition), "heal before inject")
		Expect(fl.Setup(ctx)).To(Succeed())
		Expect(fl.Setup(ctx)).To(MatchError(fault.ErrTransition), "setup twice")
		Expect(fl.Confirm(ctx)).To(MatchError(fault.ErrTransition), "confirm before inject")
		Expect(fl.Inject(ctx)).To(Succeed())
		Expect(fl.Confirm(ctx)).To(Succeed())
		Expect(fl.Cleanup(ctx)).To(Succeed(), "cleanup heals a fault still injected")
		rec := fl.Record()
		Expect(rec.State).To(Equal(fault.StateCleanedUp))
		Expect(rec.Confirmed).To(BeTrue())
		Expect(rec.Healed).To(BeTrue())
		var names []string
		for _, s := range rec.Steps {
			names = append(names, s.Name)
		}
		Expect(names).To(Equal([]string{fault.StepSetup, fault.StepInject, fault.StepConfirm, fault.StepHeal, fault.StepConfirmHealed, fault.StepCleanup}))
		Expect(fl.Inject(ctx)).To(MatchError(fault.ErrTransition), "nothing after cleanup")
		Expect(fl.Cleanup(ctx)).To(Succeed(), "a second cleanup does nothing")
	})

	It("records a fault that did not take effect as unconfirmed", func(ctx context.Context) {
		fl := fault.New(&noop{})
		Expect(fl.Setup(ctx)).To(Succeed())
		Expect(fl.Inject(ctx)).To(Succeed())
		Expect(fl.Confirm(ctx)).To(MatchError(ContainSubstring("nothing changed")))
		Expect(fl.Cleanup(ctx)).To(Succeed())
		rec := fl.Record()
		Expect(rec.Confirmed).To(BeFalse())
		Expect(rec.Problem).To(ContainSubstring("nothing changed"))
	})
})

// lifecycle runs a fault to confirmed, calls broken to observe the damage from outside, heals
// it, calls healed, cleans up.
func lifecycle(ctx context.Context, f fault.Fault, broken, healed func()) {
	GinkgoHelper()
	fl := fault.New(f)
	DeferCleanup(fl.Cleanup)
	Expect(fl.Setup(ctx)).To(Succeed())
	Expect(fl.Inject(ctx)).To(Succeed())
	Expect(fl.Confirm(ctx)).To(Succeed())
	broken()
	Expect(fl.Heal(ctx)).To(Succeed())
	healed()
	Expect(fl.Cleanup(ctx)).To(Succeed())
	Expect(fl.Record().Healed).To(BeTrue())
}

// answers runs a query on a new connection with a short deadline.
func answers(ctx context.Context, s cluster.Server) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SELECT 1")
		return err
	})
}

func processGone(pid int) bool { return syscall.Kill(pid, 0) != nil }

var _ = Describe("process faults", Ordered, func() {
	var shard cluster.Server
	BeforeAll(func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard = c.Shards()[0]
	})

	It("kill -9 ends the server's process, and healing starts it again", func(ctx context.Context) {
		pid := shard.Info().PID
		Expect(pid).NotTo(BeZero())
		lifecycle(ctx, &fault.Kill{Server: shard}, func() {
			Expect(processGone(pid)).To(BeTrue(), "the postmaster is gone")
			Expect(answers(ctx, shard)).NotTo(Succeed())
		}, func() {
			Expect(answers(ctx, shard)).To(Succeed())
			Expect(shard.Info().PID).NotTo(Equal(pid))
		})
	})

	It("SIGSTOP makes queries hang, and healing thaws the server", func(ctx context.Context) {
		lifecycle(ctx, &fault.Pause{Server: shard}, func() {
			Expect(shard.Info().Paused).To(BeTrue())
			Expect(answers(ctx, shard)).To(MatchError(context.DeadlineExceeded), "a query times out")
		}, func() {
			Expect(answers(ctx, shard)).To(Succeed())
		})
	})

	for _, immediate := range []bool{false, true} {
		It("a restart drops every connection and the server comes back", func(ctx context.Context) {
			conn := drilltest.Connect(ctx, shard.DSN())
			pid := shard.Info().PID
			lifecycle(ctx, &fault.Restart{Server: shard, Immediate: immediate}, func() {
				_, err := conn.Exec(ctx, "SELECT 1")
				Expect(err).To(HaveOccurred(), "the old connection is gone")
				Expect(processGone(pid)).To(BeTrue())
			}, func() {
				Expect(answers(ctx, shard)).To(Succeed())
			})
		})
	}

	It("kills a server that is not running yet as soon as it starts", func(ctx context.Context) {
		Expect(shard.Stop(ctx)).To(Succeed())
		fl := fault.New(&fault.Kill{Server: shard})
		Expect(fl.Setup(ctx)).To(Succeed())
		started := make(chan error, 1)
		go func() {
			time.Sleep(200 * time.Millisecond)
			started <- shard.Start(ctx)
		}()
		Expect(fl.Inject(ctx)).To(Succeed(), "the kill waited for the server to start")
		Expect(fl.Confirm(ctx)).To(Succeed())
		Expect(<-started).To(MatchError(cluster.ErrDied), "the start saw its server die")
		Expect(fl.Cleanup(ctx)).To(Succeed())
		Expect(answers(ctx, shard)).To(Succeed(), "healing started it again")
	})
})

var _ = Describe("storage faults", Ordered, func() {
	var (
		shard cluster.Server
		b     cluster.Backup
		files cluster.Files
	)
	BeforeAll(func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard, files = c.Shards()[0], c.Files()
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
		p, err := backup.Protect(ctx, c, "faults")
		Expect(err).NotTo(HaveOccurred())
		b = p.Backups[0]
		drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT g, 'y' FROM generate_series(20001, 30000) g")
		_, err = backup.ArchiveNow(ctx, shard)
		Expect(err).NotTo(HaveOccurred())
	})

	// stashes lists what storage faults keep beside the files they break.
	stashes := func() []string {
		GinkgoHelper()
		var out []string
		for _, dir := range []string{filepath.Dir(shard.Info().WALArchive), filepath.Dir(b.Location)} {
			m, err := filepath.Glob(filepath.Join(dir, ".pgdrill-fault-*"))
			Expect(err).NotTo(HaveOccurred())
			out = append(out, m...)
		}
		return out
	}

	It("removes the first WAL segment a replay from the backup needs, names it, and puts it back", func(ctx context.Context) {
		w := &fault.WALSegment{Files: files, Server: shard, Backup: b}
		lifecycle(ctx, w, func() {
			Expect(w.Segment).NotTo(BeEmpty())
			_, err := os.Stat(filepath.Join(shard.Info().WALArchive, w.Segment))
			Expect(err).To(MatchError(os.ErrNotExist))
			var now string
			Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&now)).To(Succeed())
			missing, err := backup.MissingSegments(ctx, shard, b.StartLSN, now)
			Expect(err).NotTo(HaveOccurred())
			Expect(missing).To(ContainElement(w.Segment), "the chain check names it")
			Expect(stashes()).To(HaveLen(1))
		}, func() {
			missing, err := backup.MissingSegments(ctx, shard, b.StartLSN, b.EndLSN)
			Expect(err).NotTo(HaveOccurred())
			Expect(missing).To(BeEmpty())
		})
		Expect(stashes()).To(BeEmpty(), "the saved original is removed")
	})

	It("corrupts a WAL segment so that pg_waldump cannot read through it, and mends it", func(ctx context.Context) {
		w := &fault.WALSegment{Files: files, Server: shard, Backup: b, Corrupt: true}
		waldump := func() (string, error) {
			out, err := exec.CommandContext(ctx, filepath.Join(shard.Info().BinDir, "pg_waldump"),
				filepath.Join(shard.Info().WALArchive, w.Segment)).CombinedOutput()
			return string(out), err
		}
		var now string
		Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&now)).To(Succeed())
		var broken int
		lifecycle(ctx, w, func() {
			out, err := waldump()
			Expect(err).To(HaveOccurred())
			Expect(out).To(MatchRegexp("error in WAL record|could not find a valid record"))
			broken = strings.Count(out, "\n")
			Expect(shard.VerifyWAL(ctx, b.StartLSN, now)).To(MatchError(MatchRegexp("error in WAL record|could not find a valid record")),
				"the chain check reads it")
		}, func() {
			out, _ := waldump()
			Expect(strings.Count(out, "\n")).To(BeNumerically(">", broken), "it reads past where the corruption stopped it")
			Expect(shard.VerifyWAL(ctx, b.StartLSN, now)).To(Succeed())
		})
		Expect(stashes()).To(BeEmpty())
	})

	for _, truncate := range []bool{false, true} {
		It("breaks a base backup file so that pg_verifybackup fails, and mends it", func(ctx context.Context) {
			lifecycle(ctx, &fault.BackupFile{Files: files, Backup: b, Truncate: truncate}, func() {
				Expect(shard.VerifyBackup(ctx, b)).To(HaveOccurred())
			}, func() {
				Expect(shard.VerifyBackup(ctx, b)).To(Succeed())
			})
			Expect(stashes()).To(BeEmpty())
		})
	}
})

var _ = Describe("a disk-full fault", func() {
	It("fills a sidecar's own disk so that its writes fail, gives the room back, and leaves no mount", func(ctx context.Context) {
		if os.Geteuid() != 0 {
			Skip("a sidecar's own disk is a tmpfs mount, which needs root")
		}
		var dataDir string
		DeferCleanup(func() { // after the cluster's teardown, registered below
			mounts, err := os.ReadFile("/proc/self/mountinfo")
			Expect(err).NotTo(HaveOccurred())
			Expect(string(mounts)).NotTo(ContainSubstring(dataDir), "its disk is unmounted with the cluster")
		})
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1, SidecarDisks: true})
		shard := c.Shards()[0]
		p, err := backup.Protect(ctx, c, "disk")
		Expect(err).NotTo(HaveOccurred())
		sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: p.Backups[0]})
		Expect(err).NotTo(HaveOccurred())
		Expect(sidecar.Start(ctx)).To(Succeed())
		dataDir = sidecar.Info().DataDir
		write := func() error {
			return cluster.WithConn(ctx, sidecar.DSN(), func(conn *pgx.Conn) error {
				_, err := conn.Exec(ctx, "CREATE TABLE ballast AS SELECT repeat('x', 1000) AS pad FROM generate_series(1, 20000); DROP TABLE ballast; CHECKPOINT")
				return err
			})
		}
		lifecycle(ctx, &fault.DiskFull{Server: sidecar}, func() {
			Expect(write()).To(MatchError(ContainSubstring("No space left on device")), "seen from a client of the sidecar")
		}, func() {
			Eventually(func() error {
				if err := sidecar.Start(ctx); err != nil && !strings.Contains(err.Error(), "already") {
					return err
				}
				return write()
			}, 30*time.Second).Should(Succeed(), "the sidecar writes again once started again")
		})
		Expect(answers(ctx, shard)).To(Succeed(), "the shard's disk was never touched")
	})
})
