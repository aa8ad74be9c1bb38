package local_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/conformance"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

var _ = conformance.Specs("local", conformance.Subject{
	Provider: func() cluster.Provider { return provider },
	Attach:   func(ctx context.Context, runID string) (cluster.Cluster, error) { return provider.Attach(ctx, runID) },
	Store:    func() *runstate.Store { return provider.Store() },
	NeedPgBackRest: func() {
		drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "the pgBackRest engine was not tried")
	},
	Footprint: func(_ context.Context, c cluster.Cluster) func() []string { return recordedFootprint(c).left },
})

var _ = Describe("the safety marker", func() {
	It("refuses databases pgdrill did not create, or created for another run", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]

		By("accepting the run's own database")
		Expect(cluster.RequireMarker(ctx, drilltest.Connect(ctx, shard.DSN()), c.RunID())).To(Succeed())

		By("accepting a database created through the cluster")
		dsn, err := shard.CreateDatabase(ctx, "tenant_42")
		Expect(err).NotTo(HaveOccurred())
		Expect(cluster.RequireMarker(ctx, drilltest.Connect(ctx, dsn), c.RunID())).To(Succeed())

		By("refusing a database someone else created")
		drilltest.Exec(ctx, shard.DSN(), "CREATE DATABASE foreign_app")
		err = cluster.RequireMarker(ctx, drilltest.Connect(ctx, shard.DSNFor("foreign_app")), c.RunID())
		Expect(err).To(MatchError(cluster.ErrNotMarked))
		Expect(err).To(MatchError(ContainSubstring(`"foreign_app"`)))

		By("refusing a database of another run")
		err = cluster.RequireMarker(ctx, drilltest.Connect(ctx, shard.DSN()), "rsomeoneelse")
		Expect(err).To(MatchError(cluster.ErrForeignRun))
		Expect(cluster.Mark(ctx, drilltest.Connect(ctx, shard.DSNFor("foreign_app")), "rother", cluster.RoleShard)).To(Succeed())
		err = cluster.RequireMarker(ctx, drilltest.Connect(ctx, shard.DSNFor("foreign_app")), c.RunID())
		Expect(err).To(MatchError(cluster.ErrForeignRun))
		Expect(cluster.Mark(ctx, drilltest.Connect(ctx, shard.DSNFor("foreign_app")), c.RunID(), cluster.RoleShard)).
			To(MatchError(cluster.ErrForeignRun), "a run never adopts another run's database")
	})
})

var _ = Describe("reaping", func() {
	It("reaps a killed run's servers and directories, and nothing else", func(ctx context.Context) {
		By("starting an unrelated process that a careless reaper might kill")
		bystander := exec.Command("sleep", "300")
		Expect(bystander.Start()).To(Succeed())
		DeferCleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })
		bystanderID, err := runstate.Identify(bystander.Process.Pid)
		Expect(err).NotTo(HaveOccurred())

		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
		f := footprintOf(c)
		rec, err := provider.Store().Load(c.RunID())
		Expect(err).NotTo(HaveOccurred())

		By("forging a record whose owner died and that also names the bystander")
		rec.Owner = runstate.Process{PID: 1 << 22, StartTime: 1}
		rec.Servers = append(rec.Servers, runstate.ServerRecord{Name: "bystander", Process: bystanderID,
			DataDir: "/nonexistent"})
		Expect(provider.Store().Save(rec)).To(Succeed())
		Expect(rec.Orphaned()).To(BeTrue())

		reaped, err := local.ReapOrphans(ctx, provider.WorkRoot(), provider.Store(), drilltest.DiscardLogger())
		Expect(err).NotTo(HaveOccurred())
		Expect(reaped).To(ContainElement(c.RunID()), "other suites sharing the work root may have left orphans too")
		expectGone(f)
		Expect(bystanderID.Alive()).To(BeTrue(), "a process pgdrill did not start is never killed")
	})

	It("leaves a directory alone when its marker names another run", func(ctx context.Context) {
		dir := filepath.Join(provider.WorkRoot(), "rdeadbeef")
		Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
		DeferCleanup(os.RemoveAll, dir)
		Expect(os.WriteFile(filepath.Join(dir, ".pgdrill-run"), []byte("rsomeother"), 0o600)).To(Succeed())
		rec := runstate.Record{RunID: "rdeadbeef", Provider: local.ProviderName, Detached: true, Dirs: []string{dir}}
		Expect(provider.Store().Save(rec)).To(Succeed())
		DeferCleanup(provider.Store().Remove, "rdeadbeef")
		Expect(local.Reap(ctx, provider.Store(), rec)).To(MatchError(ContainSubstring("left alone")))
		Expect(dir).To(BeADirectory())
	})
})

var _ = Describe("running as root", Label(drilltest.Root), func() {
	It("runs every server as the unprivileged run user, owning its data", func(ctx context.Context) {
		if os.Geteuid() != 0 {
			Skip("not running as root")
		}
		u, err := user.Lookup(local.DefaultRunUser)
		Expect(err).NotTo(HaveOccurred(), "the run user is created when missing")
		uid, _ := strconv.Atoi(u.Uid)
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		rec, err := provider.Store().Load(c.RunID())
		Expect(err).NotTo(HaveOccurred())
		for _, s := range rec.Servers {
			Expect(ownerOf(s.Process.PID)).To(BeEquivalentTo(uid))
			st, err := os.Stat(s.DataDir)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Sys().(*syscall.Stat_t).Uid).To(BeEquivalentTo(uid))
			Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o700)))
		}
	})
})

var _ = Describe("finding binaries", func() {
	It("says how to get Postgres when a named directory lacks it", func(ctx context.Context) {
		_, err := local.FindBinaries(ctx, GinkgoT().TempDir())
		Expect(err).To(MatchError(local.ErrNoBinaries))
		Expect(err).To(MatchError(ContainSubstring("apt-get install postgresql")))
	})

	It("finds the host's binaries and their version", func(ctx context.Context) {
		b, err := local.FindBinaries(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Path("postgres")).To(BeAnExistingFile())
		Expect(b.Major).To(MatchRegexp(`^\d+$`))
	})
})
