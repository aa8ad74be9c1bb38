package local_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

var _ = Describe("pgBackRest as the backup engine", func() {
	It("archives with archive-push, backs up with lz4 and restores a sidecar to just before a transaction", func(ctx context.Context) {
		drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "the pgBackRest engine was not tried")
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2, Engine: cluster.EnginePgBackRest})
		shard := c.Shards()[1]
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")

		By("taking a full backup into the shard's stanza")
		start := time.Now()
		b, err := shard.BaseBackup(ctx, "before")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("pgbackrest full backup in %s: %+v\n", time.Since(start), b)
		Expect(b).To(And(HaveField("Engine", cluster.EnginePgBackRest), HaveField("Set", MatchRegexp(`^\d{8}-\d{6}F$`)),
			HaveField("StartLSN", Not(BeEmpty()))))
		Expect(b.Location).To(BeADirectory())
		Expect(filepath.Glob(filepath.Join(b.Location, "pg_data", "PG_VERSION*"))).To(ContainElement(HaveSuffix(".lz4")))
		Expect(shard.VerifyBackup(ctx, b)).To(Succeed())

		By("archiving the harm's WAL with archive-push")
		drilltest.Exec(ctx, shard.DSN(), "INSERT INTO t SELECT generate_series(11, 20)")
		harm := drilltest.XIDOf(ctx, shard.DSN(), "DELETE FROM t")
		var segment string
		Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&segment)).To(Succeed())
		Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).Should(ContainElement(segment))

		By("restoring a sidecar with pgbackrest restore --type=xid")
		sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{XID: harm}})
		Expect(err).NotTo(HaveOccurred())
		auto, err := os.ReadFile(filepath.Join(sidecar.Info().DataDir, "postgresql.auto.conf"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(auto)).To(And(ContainSubstring("archive-get"), ContainSubstring("recovery_target_xid = '"+harm+"'")))
		start = time.Now()
		Expect(sidecar.Start(ctx)).To(Succeed())
		GinkgoWriter.Printf("sidecar replayed and promoted in %s\n", time.Since(start))
		Expect(drilltest.QueryInt(ctx, sidecar.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(20))
	})

	It("refuses to start without pgbackrest only when asked for it", func(ctx context.Context) {
		Expect(cluster.Spec{Shards: 1, Engine: "barman"}.Validate()).To(MatchError(ContainSubstring(`backup engine "barman"`)))
	})
})
