// Package conformance is the contract every cluster provider keeps, as Ginkgo specs each
// provider's own suite runs against itself: a cluster comes up and vanishes completely; its
// servers survive a kill, a pause and a clean restart; sidecars recover from a base backup and
// the WAL archive to a target, or fail quoting Postgres; delayed standbys hold short of a
// transaction; a lost shard gets a recovered copy at its old address; the WAL archive reads
// back. The drill, the strategies and the faults rely on nothing else, so a provider that
// passes these runs every drill.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/fault"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// Subject is a provider under test.
type Subject struct {
	// Provider returns the provider, made by the suite (in a BeforeSuite, say).
	Provider func() cluster.Provider
	// Footprint is what a running cluster has on the machine or the engine; it is taken while
	// the cluster runs and returns a probe that lists, each time it is called, what of it is
	// still there (processes, directories, ports, containers, volumes, networks).
	Footprint func(ctx context.Context, c cluster.Cluster) func() []string
	// Attach returns a handle on a run another process owns (a runbook's `pgdrill restore`).
	Attach func(ctx context.Context, runID string) (cluster.Cluster, error)
	// Store is where the provider records its runs.
	Store func() *runstate.Store
	// NeedPgBackRest skips or fails the calling spec where pgBackRest, which the provider needs
	// on this machine, is missing (drilltest.NeedTool); nil when the provider brings its own.
	NeedPgBackRest func()
	// Existing says the provider's catalog and shards are servers it did not start (provider
	// existing), shared by the clusters made on them: the specs that stop, kill, pause, lose,
	// replace or configure them, or protect them with pgBackRest, check instead that each is
	// refused and leaves the server serving.
	Existing bool
}

// Specs registers the conformance specs for the subject under the name of its provider; labels
// go on every spec (a provider that needs Docker says so).
func Specs(name string, s Subject, labels ...string) bool {
	return Describe("the "+name+" provider's conformance", Label(labels...), func() {
		start := func(ctx context.Context, spec cluster.Spec) cluster.Cluster {
			GinkgoHelper()
			return drilltest.StartCluster(ctx, s.Provider(), spec)
		}
		// notOwned is the error an attached handle gets for stopping the run's servers.
		notOwned := cluster.ErrNotOwned
		if s.Existing {
			notOwned = cluster.ErrExisting
		}

		DescribeTable("comes up, takes writes on every server and vanishes completely",
			func(ctx context.Context, shards int) {
				c := start(ctx, cluster.Spec{Shards: shards})
				Expect(c.Shards()).To(HaveLen(shards))
				Expect(c.Provider()).To(Equal(s.Provider().Name()))
				left := s.Footprint(ctx, c)
				Expect(left()).NotTo(BeEmpty(), "a running cluster has a footprint")

				By("writing to and reading from every server, each marked for the run")
				for i, srv := range servers(c) {
					drilltest.Exec(ctx, srv.DSN(), "CREATE TABLE t (id int PRIMARY KEY, v text)",
						fmt.Sprintf("INSERT INTO t SELECT g, 'server %d' FROM generate_series(1, 100) g", i))
					Expect(drilltest.QueryInt(ctx, srv.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(100))
					Expect(cluster.RequireMarker(ctx, drilltest.Connect(ctx, srv.DSN()), c.RunID())).To(Succeed(), srv.Name())
				}
				d := cluster.Describe(c)
				Expect(d.Shards).To(HaveLen(shards))
				Expect(d.Catalog.Port).NotTo(BeZero())

				By("destroying it")
				Expect(c.Destroy(ctx)).To(Succeed())
				Expect(left()).To(BeEmpty(), "nothing of the run is left")
				Expect(c.Destroy(ctx)).To(Succeed(), "destroy is idempotent")
			},
			Entry("with 1 shard", 1),
			Entry("with 4 shards", 4),
		)

		It("rejects an invalid spec before starting anything", func(ctx context.Context) {
			c, err := s.Provider().Create(ctx, cluster.Spec{Shards: 0, Settings: map[string]string{"bad name": "x"}})
			Expect(c).To(BeNil())
			Expect(err).To(MatchError(And(ContainSubstring("shards must be"), ContainSubstring(`"bad name"`))))
		})

		It("returns a partial cluster that can be destroyed when a server cannot start", func(ctx context.Context) {
			c, err := s.Provider().Create(ctx, cluster.Spec{Shards: 2, Settings: map[string]string{"shared_buffers": "not-a-size"}})
			drilltest.DestroyWhenDone(c)
			if s.Existing {
				Expect(c).To(BeNil(), "settings are the servers' owners': refused before anything is made")
				Expect(err).To(MatchError(ContainSubstring("settings")))
				return
			}
			Expect(err).To(MatchError(ContainSubstring("shared_buffers")))
			Expect(c).NotTo(BeNil())
			left := s.Footprint(ctx, c)
			Expect(c.Destroy(ctx)).To(Succeed())
			Expect(left()).To(BeEmpty())
		})

		It("runs side by side with another cluster without sharing anything", func(ctx context.Context) {
			a := start(ctx, cluster.Spec{Shards: 1})
			b := start(ctx, cluster.Spec{Shards: 1})
			Expect(a.RunID()).NotTo(Equal(b.RunID()))
			ports, dsns := map[int]string{}, map[string]string{}
			for _, srv := range append(servers(a), servers(b)...) {
				Expect(dsns).NotTo(HaveKey(srv.DSN()))
				dsns[srv.DSN()] = srv.Name()
				if !s.Existing { // clusters on existing servers share them, each in its own database
					Expect(ports).NotTo(HaveKey(srv.Info().Port))
					ports[srv.Info().Port] = srv.Name()
				}
				drilltest.Exec(ctx, srv.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)")
			}
			left := s.Footprint(ctx, a)
			Expect(a.Destroy(ctx)).To(Succeed())
			Expect(left()).To(BeEmpty())
			for _, srv := range servers(b) {
				Expect(drilltest.QueryInt(ctx, srv.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(1), "the other cluster keeps working")
			}
		})

		It("kills, restarts, pauses, resumes and stops a server", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			dsn := shard.DSN()
			drilltest.Exec(ctx, dsn, "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 1000)")
			if s.Existing {
				for _, op := range []func(context.Context) error{shard.Kill, shard.Pause, shard.Resume, shard.Stop, shard.Start, shard.Lose} {
					Expect(op(ctx)).To(MatchError(cluster.ErrExisting))
				}
				Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(1000), "the server still serves")
				return
			}
			drilltest.Exec(ctx, dsn, "CHECKPOINT")

			By("killing it: its data stays, and a start recovers it at the same address")
			Expect(shard.Kill(ctx)).To(Succeed())
			_, err := pgx.Connect(ctx, dsn)
			Expect(err).To(HaveOccurred())
			Expect(shard.Kill(ctx)).To(MatchError(cluster.ErrNotRunning), "a dead server cannot be killed again")
			Expect(shard.Start(ctx)).To(Succeed())
			Expect(shard.DSN()).To(Equal(dsn))
			Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(1000))

			By("pausing it: a query hangs until it resumes")
			conn := drilltest.Connect(ctx, dsn)
			Expect(shard.Pause(ctx)).To(Succeed())
			Expect(shard.Info().Paused).To(BeTrue())
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			var n int
			err = conn.QueryRow(qctx, "SELECT count(*) FROM t").Scan(&n)
			Expect(isTimeout(err)).To(BeTrue(), "a paused server does not answer: %v", err)
			Expect(shard.Resume(ctx)).To(Succeed())
			Expect(shard.Info().Paused).To(BeFalse())
			Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(1000))

			By("stopping and starting it cleanly")
			Expect(shard.Stop(ctx)).To(Succeed())
			Expect(shard.Start(ctx)).To(Succeed())
			Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(1000))
		})

		It("backs up, archives, reads back its WAL and recovers a sidecar to a named restore point", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
			backup, err := shard.BaseBackup(ctx, "before")
			Expect(err).NotTo(HaveOccurred())
			Expect(backup).To(And(HaveField("Server", shard.Name()), HaveField("Label", "before")))
			Expect(backup.StartLSN).NotTo(BeEmpty())
			Expect(shard.VerifyBackup(ctx, backup)).To(Succeed())
			drilltest.Exec(ctx, shard.DSN(),
				"INSERT INTO t SELECT generate_series(11, 20)",
				"SELECT pg_create_restore_point('good')",
				"DELETE FROM t") // the harm
			var segment, end string
			Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx,
				"SELECT pg_walfile_name(pg_current_wal_insert_lsn()), pg_current_wal_insert_lsn()::text").Scan(&segment, &end)).To(Succeed())
			drilltest.Exec(ctx, shard.DSN(), "SELECT pg_switch_wal()")
			Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).Should(ContainElement(segment), "the harm's segment is archived")

			By("reading the harm back from the archive")
			Expect(shard.VerifyWAL(ctx, backup.StartLSN, end)).To(Succeed())
			var dump strings.Builder
			Expect(shard.DumpWAL(ctx, backup.StartLSN, end, &dump)).To(Succeed())
			Expect(dump.String()).To(ContainSubstring("desc: DELETE"), "the DELETE's records are in the archive")
			Expect(shard.VerifyWAL(ctx, end, "FFFFFFFF/0")).To(HaveOccurred(), "WAL past the archive does not read")

			By("recovering a sidecar to just before the harm")
			sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{Name: "good"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sidecar.Start(ctx)).To(Succeed())
			Expect(sidecar.Role()).To(Equal(cluster.RoleSidecar))
			Expect(sidecar.Info()).To(And(HaveField("Index", 0), HaveField("Upstream", shard.Name())))
			Expect(drilltest.QueryInt(ctx, sidecar.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(20))
			Expect(drilltest.QueryInt(ctx, shard.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(0))
			drilltest.Exec(ctx, sidecar.DSN(), "INSERT INTO t VALUES (21)") // promoted: writable
		})

		It("lets a fault break a base backup and a WAL segment where it keeps them, and mend them", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
			b, err := shard.BaseBackup(ctx, "b")
			Expect(err).NotTo(HaveOccurred())
			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT g, 'y' FROM generate_series(20001, 30000) g")
			var now string
			Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&now)).To(Succeed())
			drilltest.Exec(ctx, shard.DSN(), "SELECT pg_switch_wal()")
			Eventually(func() error { return shard.VerifyWAL(ctx, b.StartLSN, now) }).Should(Succeed())

			for _, f := range []fault.Fault{
				&fault.BackupFile{Files: c.Files(), Backup: b},
				&fault.BackupFile{Files: c.Files(), Backup: b, Truncate: true},
			} {
				By(f.Describe())
				Expect(f.Setup(ctx)).To(Succeed())
				Expect(f.Inject(ctx)).To(Succeed())
				Expect(f.Confirm(ctx)).To(Succeed())
				Expect(shard.VerifyBackup(ctx, b)).To(HaveOccurred(), "pg_verifybackup finds it")
				Expect(f.Heal(ctx)).To(Succeed())
				Expect(f.ConfirmHealed(ctx)).To(Succeed())
				Expect(shard.VerifyBackup(ctx, b)).To(Succeed())
				Expect(f.Cleanup(ctx)).To(Succeed())
			}
			for _, corrupt := range []bool{false, true} {
				w := &fault.WALSegment{Files: c.Files(), Server: shard, Backup: b, Corrupt: corrupt}
				By(w.Describe())
				Expect(w.Setup(ctx)).To(Succeed())
				Expect(w.Inject(ctx)).To(Succeed())
				Expect(w.Confirm(ctx)).To(Succeed())
				Expect(shard.VerifyWAL(ctx, b.StartLSN, now)).To(HaveOccurred(), "the chain check finds it")
				Expect(w.Heal(ctx)).To(Succeed())
				Expect(w.ConfirmHealed(ctx)).To(Succeed())
				Expect(shard.VerifyWAL(ctx, b.StartLSN, now)).To(Succeed())
				Expect(w.Cleanup(ctx)).To(Succeed())
			}
		})

		It("attaches to a run another process owns, restores through its own sidecars and never stops the run's servers", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
			b, err := shard.BaseBackup(ctx, "before")
			Expect(err).NotTo(HaveOccurred())
			drilltest.Exec(ctx, shard.DSN(), "SELECT pg_create_restore_point('p')", "DELETE FROM t")
			var segment string
			Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_walfile_name(pg_current_wal_insert_lsn())").Scan(&segment)).To(Succeed())
			drilltest.Exec(ctx, shard.DSN(), "SELECT pg_switch_wal()")
			// A WAL receiver's archive (existing servers) completes the segment when it streams it:
			// on a busy machine that takes longer than Eventually's default second.
			Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).WithTimeout(30 * time.Second).
				Should(ContainElement(segment))

			a, err := s.Attach(ctx, c.RunID())
			drilltest.DestroyWhenDone(a) // its sidecar is its own: c's teardown need not know it
			Expect(err).NotTo(HaveOccurred())
			Expect(a.RunID()).To(Equal(c.RunID()), "markers are the run's")
			Expect(a.Shards()[0].DSN()).To(Equal(shard.DSN()))
			Expect(a.Shards()[0].Stop(ctx)).To(MatchError(notOwned))
			Expect(a.Shards()[0].Kill(ctx)).To(MatchError(notOwned))

			sc, err := a.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{Name: "p"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sc.Start(ctx)).To(Succeed())
			Expect(drilltest.QueryInt(ctx, sc.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(10))
			recs, err := s.Store().List()
			Expect(err).NotTo(HaveOccurred())
			Expect(recs).To(ContainElement(HaveField("RunID", HavePrefix(c.RunID()+"-"))), "the sidecar is recorded under a record of the handle")

			Expect(a.Destroy(ctx)).To(Succeed())
			_, err = pgx.Connect(ctx, sc.DSN())
			Expect(err).To(HaveOccurred(), "the handle's sidecar is gone")
			Expect(drilltest.QueryInt(ctx, shard.DSN(), "SELECT count(*) FROM t")).To(BeZero(), "the run's shard still serves")
			recs, err = s.Store().List()
			Expect(err).NotTo(HaveOccurred())
			Expect(recs).NotTo(ContainElement(HaveField("RunID", HavePrefix(c.RunID()+"-"))))
			Expect(recs).To(ContainElement(HaveField("RunID", c.RunID())))

			_, err = s.Attach(ctx, "rnothere")
			Expect(err).To(MatchError(runstate.ErrUnknownRun), "a run that does not exist")
		})

		It("protects shards with pgBackRest: archive-push, full backups, verify, a sidecar to just before a transaction, the WAL read back", func(ctx context.Context) {
			if s.Existing {
				c, err := s.Provider().Create(ctx, cluster.Spec{Shards: 2, Engine: cluster.EnginePgBackRest})
				drilltest.DestroyWhenDone(c)
				Expect(c).To(BeNil())
				Expect(err).To(MatchError(ContainSubstring("archive_command")), "pgBackRest needs what only a server's owner sets")
				return
			}
			if s.NeedPgBackRest != nil {
				s.NeedPgBackRest()
			}
			c := start(ctx, cluster.Spec{Shards: 2, Engine: cluster.EnginePgBackRest})
			shard := c.Shards()[1]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
			b, err := shard.BaseBackup(ctx, "before")
			Expect(err).NotTo(HaveOccurred())
			Expect(b).To(And(HaveField("Engine", cluster.EnginePgBackRest), HaveField("Set", MatchRegexp(`^\d{8}-\d{6}F$`)),
				HaveField("StartLSN", Not(BeEmpty()))))
			Expect(shard.VerifyBackup(ctx, b)).To(Succeed())

			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(11, 20)")
			harm := drilltest.XIDOf(ctx, shard.DSN(), "DELETE FROM t")
			var segment, end string
			Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx,
				"SELECT pg_walfile_name(pg_current_wal_insert_lsn()), pg_current_wal_insert_lsn()::text").Scan(&segment, &end)).To(Succeed())
			drilltest.Exec(ctx, shard.DSN(), "SELECT pg_switch_wal()")
			Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).Should(ContainElement(segment), "archive-push archived it")
			var dump strings.Builder
			Expect(shard.DumpWAL(ctx, b.StartLSN, end, &dump)).To(Succeed())
			Expect(dump.String()).To(ContainSubstring("desc: DELETE"), "archive-get reads the harm back")

			sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{XID: harm}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sidecar.Start(ctx)).To(Succeed())
			Expect(drilltest.QueryInt(ctx, sidecar.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(20))
		})

		It("fails a sidecar whose target lies beyond the archive, quoting Postgres", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			backup, err := c.Shards()[0].BaseBackup(ctx, "b")
			Expect(err).NotTo(HaveOccurred())
			sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{Name: "never-created"}})
			Expect(err).NotTo(HaveOccurred())
			err = sidecar.Start(ctx)
			Expect(err).To(MatchError(ContainSubstring("recovery ended before configured recovery target was reached")))
			Expect(errors.Is(err, cluster.ErrDied)).To(BeFalse(), "it exited on an error of its own: %v", err)
		})

		It("resumes a sidecar's recovery after a kill", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)")
			backup, err := shard.BaseBackup(ctx, "b")
			Expect(err).NotTo(HaveOccurred())
			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(1, 50000)", "SELECT pg_create_restore_point('p')", "SELECT pg_switch_wal()")
			Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).ShouldNot(BeEmpty())
			sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{Name: "p"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sidecar.Kill(ctx)).To(MatchError(cluster.ErrNotRunning), "a prepared sidecar does not run yet")
			started := make(chan error, 1)
			go func() { started <- sidecar.Start(ctx) }()
			Eventually(func() error { return sidecar.Kill(ctx) }).Should(Succeed())
			err = <-started
			if err != nil { // killed during recovery, as a crashed restore host would be
				Expect(errors.Is(err, cluster.ErrDied)).To(BeTrue(), "%v", err)
				Expect(sidecar.Start(ctx)).To(Succeed())
			} else { // it promoted before the kill took: a plain restart
				Expect(sidecar.Start(ctx)).To(Succeed())
			}
			Expect(drilltest.QueryInt(ctx, sidecar.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(50000))
		})

		It("gives a lost shard a recovered copy at its old address, and rolls a shard back to a sidecar", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			dsn := shard.DSN()
			drilltest.Exec(ctx, dsn, "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")
			backup, err := shard.BaseBackup(ctx, "before")
			Expect(err).NotTo(HaveOccurred())
			drilltest.Exec(ctx, dsn, "INSERT INTO t SELECT generate_series(11, 20)")
			harm := drilltest.XIDOf(ctx, dsn, "DELETE FROM t")
			drilltest.Exec(ctx, dsn, "INSERT INTO t SELECT generate_series(101, 105)", "SELECT pg_switch_wal()")
			Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).ShouldNot(BeEmpty())

			By("rolling the shard back to just before the harm")
			sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{XID: harm}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sidecar.Start(ctx)).To(Succeed())
			Expect(drilltest.QueryInt(ctx, sidecar.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(20), "the sidecar holds the rows before the harm")
			if s.Existing {
				Expect(c.ReplaceData(ctx, shard, sidecar)).To(MatchError(cluster.ErrExisting))
				Expect(shard.Lose(ctx)).To(MatchError(cluster.ErrExisting))
				Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t WHERE id > 100")).To(BeEquivalentTo(5), "the server is as it was")
				return
			}
			Expect(c.ReplaceData(ctx, shard, sidecar)).To(Succeed())
			Expect(shard.DSN()).To(Equal(dsn), "clients reconnect to the same address")
			Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(20), "rows before the harm are back")
			Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t WHERE id > 100")).To(BeZero(), "later writes are gone")
			Expect(c.ReplaceData(ctx, shard, sidecar)).To(MatchError(ContainSubstring("replace data")), "a sidecar is used up")

			By("losing the shard, then recovering it from the old backup across the new timeline")
			drilltest.Exec(ctx, dsn, "INSERT INTO t VALUES (200)", "SELECT pg_create_restore_point('after')")
			var after string
			Expect(drilltest.Connect(ctx, dsn).QueryRow(ctx, "SELECT pg_walfile_name(pg_current_wal_insert_lsn())").Scan(&after)).To(Succeed())
			Expect(after).To(HavePrefix("00000002"), "the shard is on the new timeline")
			drilltest.Exec(ctx, dsn, "SELECT pg_switch_wal()")
			Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).Should(ContainElement(after),
				"the restore point's segment is archived")
			Expect(shard.Lose(ctx)).To(Succeed())
			_, err = pgx.Connect(ctx, dsn)
			Expect(err).To(HaveOccurred())
			Expect(shard.Start(ctx)).To(HaveOccurred(), "a lost server cannot start")
			again, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{Name: "after"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(again.Start(ctx)).To(Succeed())
			Expect(c.ReplaceData(ctx, shard, again)).To(Succeed())
			Expect(shard.DSN()).To(Equal(dsn))
			Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(21))
			drilltest.Exec(ctx, dsn, "INSERT INTO t VALUES (201)")
			_, err = shard.BaseBackup(ctx, "after the loss")
			Expect(err).NotTo(HaveOccurred(), "the rebuilt shard backs up again")
		})

		It("starts a delayed standby that lags by its delay, replays exactly to a target, holds and promotes", func(ctx context.Context) {
			const delay = 2 * time.Second
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)")
			standby, err := c.StartStandby(ctx, shard, cluster.StandbySpec{ApplyDelay: delay})
			Expect(err).NotTo(HaveOccurred())
			Expect(standby.Role()).To(Equal(cluster.RoleStandby))
			Expect(standby.Info()).To(And(HaveField("Index", 0), HaveField("Upstream", shard.Name())))

			By("seeing a commit only once its delay has passed")
			// The delay counts from the commit's own timestamp, taken inside the Exec: the clock
			// read before it is the latest moment known to precede the commit.
			beforeCommit := time.Now()
			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(1, 10)")
			count := func() int64 { return drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t") }
			Consistently(count, delay-500*time.Millisecond, 100*time.Millisecond).Should(BeZero())
			Eventually(count, 3*time.Second, 10*time.Millisecond).Should(BeEquivalentTo(10))
			Expect(time.Since(beforeCommit)).To(BeNumerically(">=", delay))

			By("replaying, without waiting out the delay, to just before a harmful transaction")
			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(11, 20)")
			harm := drilltest.XIDOf(ctx, shard.DSN(), "DELETE FROM t")
			later := drilltest.XIDOf(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(21, 25)")
			Expect(standby.PauseReplay(ctx)).To(Succeed())
			start := time.Now()
			Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(Succeed())
			Expect(time.Since(start)).To(BeNumerically("<", delay))
			Expect(count()).To(BeEquivalentTo(20))
			Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT pg_is_in_recovery()::int")).To(BeEquivalentTo(1), "it holds as a standby")

			By("holding there across a restart")
			Expect(standby.Stop(ctx)).To(Succeed())
			Expect(standby.Start(ctx)).To(Succeed())
			Expect(count()).To(BeEquivalentTo(20))

			By("moving on to a later target, and refusing one it already applied")
			Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: later})).To(Succeed())
			Expect(count()).To(BeZero())
			Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(MatchError(cluster.ErrPastTarget))
			Expect(drilltest.QueryInt(ctx, shard.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(5), "the primary went on")

			By("promoting where it holds: writable, no longer following")
			Expect(standby.Promote(ctx)).To(Succeed())
			drilltest.Exec(ctx, standby.DSN(), "INSERT INTO t VALUES (26)")
			Expect(count()).To(BeEquivalentTo(1))
		})

		It("promotes a standby held before a DROP, freeing what it locked; stops at a WAL position, exclusive", func(ctx context.Context) {
			c := start(ctx, cluster.Spec{Shards: 1})
			shard := c.Shards()[0]
			drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)", "CREATE TABLE u (id int)")
			standby, err := c.StartStandby(ctx, shard, cluster.StandbySpec{ApplyDelay: time.Minute})
			Expect(err).NotTo(HaveOccurred())
			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO u VALUES (1)")
			var lsn string
			Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn)).To(Succeed())
			drilltest.Exec(ctx, shard.DSN(), "INSERT INTO u VALUES (2)")
			harm := drilltest.XIDOf(ctx, shard.DSN(), "DROP TABLE t")

			Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{LSN: lsn})).To(Succeed())
			Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM u")).To(BeEquivalentTo(1))
			Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(Succeed())
			Expect(standby.Promote(ctx)).To(Succeed())
			Expect(drilltest.QueryInt(ctx, standby.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(10))
			drilltest.Exec(ctx, standby.DSN(), "INSERT INTO t VALUES (11)")
			Expect(standby.ReplayTo(ctx, cluster.RecoveryTarget{XID: harm})).To(MatchError(ContainSubstring("recovery is not in progress")))
		})
	})
}

// servers returns the catalog and the shards.
func servers(c cluster.Cluster) []cluster.Server {
	return append([]cluster.Server{c.Catalog()}, c.Shards()...)
}

// isTimeout reports whether err came from a deadline, as a paused server produces.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(fmt.Sprint(err), "timeout")
}
