package backup_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

const segSize = 16 << 20

var _ = Describe("WAL segment names", func() {
	It("round-trips LSNs", func() {
		for _, s := range []string{"0/0", "0/2000028", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
			l, err := backup.ParseLSN(s)
			Expect(err).NotTo(HaveOccurred())
			Expect(l.String()).To(Equal(s))
		}
		_, err := backup.ParseLSN("nope")
		Expect(err).To(HaveOccurred())
	})

	It("names segments as Postgres does, across an xlogid boundary", func() {
		last := backup.Segment{Timeline: 1, Number: 0xFF}
		Expect(last.Name(segSize)).To(Equal("0000000100000000000000FF"))
		next := backup.Segment{Timeline: 1, Number: 0x100}
		Expect(next.Name(segSize)).To(Equal("000000010000000100000000"))
		parsed, err := backup.ParseSegment("000000010000000100000000", segSize)
		Expect(err).NotTo(HaveOccurred())
		Expect(parsed).To(Equal(next))
		Expect(backup.Missing([]string{"0000000100000000000000FE", "000000010000000100000000"},
			backup.Segment{Timeline: 1, Number: 0xFE}, next, segSize)).To(Equal([]string{"0000000100000000000000FF"}))
		_, err = backup.ParseSegment("0000000100000000000001FF", segSize)
		Expect(err).To(MatchError(ContainSubstring("out of range")))
	})

	It("agrees with pg_walfile_name", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		conn := drilltest.Connect(ctx, c.Shards()[0].DSN())
		for _, lsn := range []string{"0/1", "0/FFFFFFF", "1/0", "3A/5F000001", "FFFF/FF000000"} {
			var want string
			Expect(conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn)", lsn).Scan(&want)).To(Succeed())
			l, err := backup.ParseLSN(lsn)
			Expect(err).NotTo(HaveOccurred())
			// pg_walfile_name names the segment *before* an LSN that sits exactly on a boundary.
			if uint64(l)%segSize == 0 {
				l--
			}
			Expect(backup.SegmentOf(l, 1, segSize).Name(segSize)).To(Equal(want), lsn)
		}
	})
})

var _ = Describe("protecting a cluster", func() {
	It("backs up every shard and finds the chain whole, then names a missing segment and a corrupt backup", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
		prot, err := backup.Protect(ctx, c, "nightly")
		Expect(err).NotTo(HaveOccurred())
		Expect(prot.Backups).To(HaveLen(2))

		By("writing across several WAL segments after the backup")
		for _, s := range c.Shards() {
			for range 3 {
				drilltest.Exec(ctx, s.DSN(), "CREATE TABLE IF NOT EXISTS t (id int, v text)",
					"INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g",
					"SELECT pg_switch_wal()")
			}
		}
		points, err := backup.RestorePoint(ctx, c, "before-incident")
		Expect(err).NotTo(HaveOccurred())
		Expect(points).To(HaveLen(2))

		reports, err := backup.VerifyChain(ctx, c, prot, nil)
		Expect(err).NotTo(HaveOccurred())
		for _, r := range reports {
			Expect(r.Whole()).To(BeTrue(), r.Problem())
			Expect(r.Last > r.First).To(BeTrue())
		}

		By("removing one archived segment in the middle of shard-1's chain")
		victim := filepath.Join(c.Shards()[1].Info().WALArchive, segmentAfter(reports[1].First))
		Expect(os.Remove(victim)).To(Succeed())
		By("corrupting a file of shard-0's backup")
		Expect(os.WriteFile(filepath.Join(prot.Backups[0].Location, "PG_VERSION"), []byte("99\n"), 0o600)).To(Succeed())

		reports, err = backup.VerifyChain(ctx, c, prot, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(reports[1].Missing).To(Equal([]string{filepath.Base(victim)}))
		Expect(reports[1].Problem()).To(ContainSubstring(filepath.Base(victim)))
		Expect(reports[1].BackupProblem).To(BeEmpty())
		Expect(reports[0].Missing).To(BeEmpty())
		Expect(reports[0].BackupProblem).To(ContainSubstring("PG_VERSION"))
		Expect(reports[0].Whole()).To(BeFalse())
	})
})

func segmentAfter(name string) string {
	GinkgoHelper()
	s, err := backup.ParseSegment(name, segSize)
	Expect(err).NotTo(HaveOccurred())
	s.Number++
	return s.Name(segSize)
}
