package restore_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
)

var _ = Describe("pitr-sidecar over a broken WAL archive", func() {
	It("fails, naming the missing segment, and restores nothing", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 1)
		shard := d.c.Shards()[0]
		By("writing across several segments between the backup and the incident")
		for range 3 {
			drilltest.Exec(ctx, shard.DSN(), "UPDATE issues SET updated_at = now() WHERE issue_id % 10 = 0", "SELECT pg_switch_wal()")
		}
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", d.victims(1))
		Expect(err).NotTo(HaveOccurred())
		_, err = backup.ArchiveNow(ctx, shard)
		Expect(err).NotTo(HaveOccurred())

		By("losing one archived segment in the middle of the chain")
		first, err := backup.MissingSegments(ctx, shard, d.prot.Backups[0].StartLSN, rec.Harms[0].LSN)
		Expect(err).NotTo(HaveOccurred())
		Expect(first).To(BeEmpty(), "the chain is whole before the loss")
		archived, err := shard.ArchivedWAL(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(len(archived)).To(BeNumerically(">=", 4))
		lost := archived[len(archived)-2]
		Expect(os.Remove(filepath.Join(shard.Info().WALArchive, lost))).To(Succeed())

		res, err := restore.PITRSidecar{}.Restore(ctx, d.env(), rec)
		Expect(err).To(MatchError(And(ContainSubstring(lost), ContainSubstring("missing"))))
		Expect(res.Rows()).To(BeZero(), "never a silent partial restore")
	})
})
