package locate_test

import (
	"bytes"
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/locate"
)

var _ = Describe("reading the WAL into transactions", func() {
	It("tells a harmful delete, a legitimate update, a dropped table and a rolled-back delete apart, with the rows each touched", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]
		drilltest.Exec(ctx, shard.DSN(),
			"CREATE TABLE t (id int PRIMARY KEY, tenant_id int NOT NULL, pad text)",
			"INSERT INTO t SELECT g, g % 10, repeat('x', 100) FROM generate_series(1, 2000) g",
			"CREATE TABLE other (a int)", "INSERT INTO other VALUES (1)")
		conn := drilltest.Connect(ctx, shard.DSN())
		lsn := func() string {
			var l string
			Expect(conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&l)).To(Succeed())
			return l
		}
		relfile := func(table string) locate.RelFile {
			var rel, db uint32
			Expect(conn.QueryRow(ctx, "SELECT pg_relation_filenode($1), (SELECT oid FROM pg_database WHERE datname = current_database())",
				table).Scan(&rel, &db)).To(Succeed())
			return locate.RelFile{Tablespace: 1663, Database: db, Relation: rel}
		}
		tRel, otherRel := relfile("t"), relfile("other")
		// xidOf runs statements in one transaction and returns its xid.
		xidOf := func(commit bool, sql ...string) uint32 {
			tx, err := conn.Begin(ctx)
			Expect(err).NotTo(HaveOccurred())
			var xid string
			Expect(tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid)).To(Succeed())
			for _, q := range sql {
				_, err := tx.Exec(ctx, q)
				Expect(err).NotTo(HaveOccurred())
			}
			if commit {
				Expect(tx.Commit(ctx)).To(Succeed())
			} else {
				Expect(tx.Rollback(ctx)).To(Succeed())
			}
			n, err := strconv.ParseUint(xid, 10, 32)
			Expect(err).NotTo(HaveOccurred())
			return uint32(n)
		}
		rows, err := conn.Query(ctx, "SELECT ctid::text FROM t WHERE tenant_id IN (3, 7) ORDER BY ctid")
		Expect(err).NotTo(HaveOccurred())
		victims, err := pgx.CollectRows(rows, pgx.RowTo[string])
		Expect(err).NotTo(HaveOccurred())

		fromText := lsn()
		from, err := backup.ParseLSN(fromText)
		Expect(err).NotTo(HaveOccurred())
		harm := xidOf(true, "DELETE FROM t WHERE tenant_id IN (3, 7)")
		legit := xidOf(true, "UPDATE t SET pad = 'y' WHERE id IN (9, 19, 29, 39, 49)")
		drop := xidOf(true, "DROP TABLE other")
		undone := xidOf(false, "DELETE FROM t WHERE tenant_id = 1")
		to := lsn()
		_, err = backup.ArchiveNow(ctx, shard)
		Expect(err).NotTo(HaveOccurred())

		var dump bytes.Buffer
		Expect(shard.DumpWAL(ctx, fromText, to, &dump)).To(Succeed())
		txns, err := locate.Scan(&dump)
		Expect(err).NotTo(HaveOccurred())
		byXID := map[uint32]*locate.Txn{}
		for _, t := range txns {
			byXID[t.XID] = t
		}
		Expect(byXID).To(HaveKey(harm))
		h := byXID[harm]
		Expect(h.Outcome).To(Equal(locate.Committed))
		Expect(h.FirstLSN >= from && h.FirstLSN < h.CommitLSN).To(BeTrue(), "%s..%s in %s..", h.FirstLSN, h.CommitLSN, from)
		var deleted []string
		for _, tid := range h.Relations[tRel].Deleted {
			deleted = append(deleted, tid.String())
		}
		Expect(deleted).To(ConsistOf(victims), "exactly the rows of tenants 3 and 7, by tuple id")
		Expect(h.RowsChanged()).To(Equal(len(victims)))

		Expect(byXID[legit].Relations[tRel].Updated).To(HaveLen(5))
		Expect(byXID[legit].Relations[tRel].Deleted).To(BeEmpty())
		Expect(byXID[drop].DroppedFiles).To(ContainElement(otherRel))
		Expect(byXID[drop].CatalogChanges).To(BeNumerically(">", 0), "DDL changes catalogs")
		Expect(byXID[undone].Outcome).To(Equal(locate.Aborted))
		Expect(h.Time).To(BeTemporally("<=", byXID[legit].Time))

		By("refusing what is not pg_waldump's")
		_, err = locate.Scan(bytes.NewBufferString("hello\n"))
		Expect(err).To(MatchError(ContainSubstring("line 1: not a record")))
	})
})
