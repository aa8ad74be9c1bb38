package local_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

var _ = Describe("pgBackRest as the backup engine", func() {
	It("keeps its stanzas compressed with lz4 in the run's directory, and restores with pgBackRest's own recovery settings", func(ctx context.Context) {
		drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "the pgBackRest engine was not tried")
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2, Engine: cluster.EnginePgBackRest})
		shard := c.Shards()[1]
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 10)")

		b, err := shard.BaseBackup(ctx, "before")
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Location).To(BeADirectory())
		Expect(filepath.Glob(filepath.Join(b.Location, "pg_data", "PG_VERSION*"))).To(ContainElement(HaveSuffix(".lz4")))
		harm := drilltest.XIDOf(ctx, shard.DSN(), "DELETE FROM t")

		By("restoring a sidecar with pgbackrest restore --type=xid")
		sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{XID: harm}})
		Expect(err).NotTo(HaveOccurred())
		auto, err := os.ReadFile(filepath.Join(sidecar.Info().DataDir, "postgresql.auto.conf"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(auto)).To(And(ContainSubstring("archive-get"), ContainSubstring("recovery_target_xid = '"+harm+"'")))
	})

	It("refuses to start without pgbackrest only when asked for it", func(ctx context.Context) {
		Expect(cluster.Spec{Shards: 1, Engine: "barman"}.Validate()).To(MatchError(ContainSubstring(`backup engine "barman"`)))
	})
})
