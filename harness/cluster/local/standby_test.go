package local_test

import (
	"context"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

// xidOf runs stmt in a transaction of its own on dsn and returns the transaction's id.
func xidOf(ctx context.Context, dsn, stmt string) string {
	GinkgoHelper()
	conn := drilltest.Connect(ctx, dsn)
	tx, err := conn.Begin(ctx)
	Expect(err).NotTo(HaveOccurred())
	var xid string
	Expect(tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid)).To(Succeed())
	_, err = tx.Exec(ctx, stmt)
	Expect(err).NotTo(HaveOccurred())
	Expect(tx.Commit(ctx)).To(Succeed())
	return xid
}

var _ = Describe("a delayed standby", func() {
	It("lags by its apply delay, replays exactly to a target, and goes with its cluster", func(ctx context.Context) {
		const delay = 2 * time.Second
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)")

		By("starting it")
		standby, err := c.StartStandby(ctx, shard, cluster.StandbySpec{ApplyDelay: delay})
		Expect(err).NotTo(HaveOccurred())
		Expect(standby.Role()).To(Equal(cluster.RoleStandby))
		Expect(standby.Info()).To(And(HaveField("Index", 0), HaveField("Upstream", shard.Name())))
		f := footprintOf(c)
		Expect(f.procs).To(HaveLen(3), "the standby is in the run record")

		By("seeing a commit only once its delay has passed")
		drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(1, 10)")
		committed := time.Now()
		Consistently(func() int64 { return drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t") },
			delay-500*time.Millisecond, 100*time.Millisecond).Should(BeZero())
		Eventually(func() int64 { return drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t") },
			2*time.Second, 10*time.Millisecond).Should(BeEquivalentTo(10))
		lag := time.Since(committed)
		GinkgoWriter.Printf("commit visible on the standby after %s (apply delay %s)\n", lag, delay)
		Expect(lag).To(BeNumerically(">=", delay))

		By("replaying, without waiting out the delay, to just before a harmful transaction")
		drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(11, 20)")
		harm := xidOf(ctx, shard.DSN(), "DELETE FROM t")
		later := xidOf(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(21, 25)")
		Expect(standby.PauseReplay(ctx)).To(Succeed())
		start := time.Now()
		Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(Succeed())
		GinkgoWriter.Printf("replayed to the harm in %s\n", time.Since(start))
		Expect(time.Since(start)).To(BeNumerically("<", delay))
		Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(20))
		Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT pg_is_in_recovery()::int")).To(BeEquivalentTo(1),
			"it holds as a standby")

		By("holding there across a restart")
		Expect(standby.Stop(ctx)).To(Succeed())
		Expect(standby.Start(ctx)).To(Succeed())
		Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(20))

		By("moving on to a later target")
		Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: later})).To(Succeed())
		Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t")).To(BeZero())

		By("refusing a target it already applied")
		err = standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})
		Expect(err).To(MatchError(cluster.ErrPastTarget))
		Expect(drilltest.QueryInt(ctx, shard.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(5), "the primary went on")

		By("going with its cluster")
		Expect(c.Destroy(ctx)).To(Succeed())
		expectGone(f)
	})

	It("promotes where it holds, freeing what the held transaction locked", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
		standby, err := c.StartStandby(ctx, shard, cluster.StandbySpec{ApplyDelay: time.Minute})
		Expect(err).NotTo(HaveOccurred())
		harm := xidOf(ctx, shard.DSN(), "DROP TABLE t")
		Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(Succeed())
		Expect(standby.Promote(ctx)).To(Succeed())
		Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(10))
		drilltest.Exec(ctx, standby.DSN(), "INSERT INTO t VALUES (11)")
		Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(MatchError(ContainSubstring("recovery is not in progress")))
	})

	It("stops at a WAL position, exclusive", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)")
		standby, err := c.StartStandby(ctx, shard, cluster.StandbySpec{ApplyDelay: time.Minute})
		Expect(err).NotTo(HaveOccurred())
		drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t VALUES (1)")
		var lsn string
		Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn)).To(Succeed())
		drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t VALUES (2)")
		Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{LSN: lsn})).To(Succeed())
		Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(1))
	})
})

var _ = Describe("replacing a server's data", func() {
	It("rolls a shard back to a sidecar at the same address, its archive still usable", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]
		dsn := shard.DSN()
		drilltest.Exec(ctx, dsn, "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
		backup, err := shard.BaseBackup(ctx, "before")
		Expect(err).NotTo(HaveOccurred())
		drilltest.Exec(ctx, dsn, "INSERT INTO t SELECT generate_series(11, 20)")
		harm := xidOf(ctx, dsn, "DELETE FROM t")
		drilltest.Exec(ctx, dsn, "INSERT INTO t SELECT generate_series(101, 105)", "SELECT pg_switch_wal()")

		sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{XID: harm}})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).ShouldNot(BeEmpty())
		Expect(sidecar.Start(ctx)).To(Succeed())

		By("swapping the shard's data for the sidecar's")
		start := time.Now()
		Expect(c.ReplaceData(ctx, shard, sidecar)).To(Succeed())
		GinkgoWriter.Printf("replaced the data of %s in %s\n", shard.Name(), time.Since(start))
		Expect(shard.DSN()).To(Equal(dsn), "clients reconnect to the same address")
		Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(20), "rows before the harm are back")
		Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t WHERE id > 100")).To(BeZero(), "later writes are gone")
		Expect(filepath.Join(shard.Info().WALArchive, "00000002.history")).To(BeAnExistingFile())
		Expect(c.ReplaceData(ctx, shard, sidecar)).To(MatchError(ContainSubstring("replace data")), "a sidecar is used up")

		By("restoring from the old backup across the new timeline")
		drilltest.Exec(ctx, dsn, "INSERT INTO t VALUES (200)", "SELECT pg_create_restore_point('after')", "SELECT pg_switch_wal()")
		Eventually(func() int {
			names, _ := shard.ArchivedWAL(ctx)
			n := 0
			for _, name := range names {
				if name[:8] == "00000002" {
					n++
				}
			}
			return n
		}).Should(BeNumerically(">", 0))
		again, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{Name: "after"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(again.Start(ctx)).To(Succeed())
		Expect(drilltest.QueryInt(ctx, again.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(21))
	})
})
