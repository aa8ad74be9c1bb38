package restore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// expectBackAlone expects the restore to have brought back the tenants want, in order (those
// before the bad one, each alone), each of them and every bystander as before, and every other
// victim with no row at all: none half restored.
func expectBackAlone(ctx context.Context, d drill, before *truth.Snapshot, victims []incident.Tenant, res restore.Result, want ...int64) {
	GinkgoHelper()
	var back []int64
	for _, r := range res.Tenants {
		back = append(back, r.ID)
	}
	Expect(back).To(Equal(want), "the tenants before the bad one, each alone")
	after := d.snapshot(ctx).Tables()
	for tt, f := range before.Tables() {
		switch {
		case !isVictim(victims, tt.Tenant) || slices.Contains(back, tt.Tenant):
			Expect(after[tt]).To(Equal(f), "%v is as it was", tt)
		default:
			Expect(after[tt].Rows).To(BeZero(), "%v was not half restored", tt)
		}
	}
}

var _ = Describe("a merge of many tenants in the shared layout", func() {
	It("brings a group back in one transaction with each tenant's own counts, and one bad tenant fails alone", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 1)
		before := d.snapshot(ctx)
		victims := d.victims(6)
		rows := map[int64]int64{}
		for tt, f := range before.Tables() {
			if isVictim(victims, tt.Tenant) {
				rows[tt.Tenant] += f.Rows
			}
		}
		deleteAndRestore := func(journal string) (restore.Result, error) {
			GinkgoHelper()
			rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
			Expect(err).NotTo(HaveOccurred())
			env := d.env()
			env.Journal, err = restore.OpenJournal(journal, d.c.RunID())
			Expect(err).NotTo(HaveOccurred())
			defer func() { Expect(env.Journal.Close()).To(Succeed()) }()
			return restore.PITRSidecar{}.Restore(ctx, env, rec)
		}
		begun := func(journal string) map[int64]string {
			GinkgoHelper()
			entries, err := restore.ReadJournal(journal)
			Expect(err).NotTo(HaveOccurred())
			out := map[int64]string{}
			for _, e := range entries {
				if e.Event == restore.JournalTenantBegun {
					out[e.Tenant] = e.XID
				}
			}
			return out
		}

		By("restoring six deleted tenants of one shard")
		first := filepath.Join(GinkgoT().TempDir(), "journal.jsonl")
		res, err := deleteAndRestore(first)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Tenants).To(HaveLen(len(victims)))
		for _, r := range res.Tenants {
			Expect(r.RowsRead).To(Equal(rows[r.ID]), "tenant %d's rows read are its own", r.ID)
			Expect(r.RowsWritten).To(Equal(rows[r.ID]), "tenant %d's rows written are its own", r.ID)
		}
		xids := begun(first)
		Expect(xids).To(HaveLen(len(victims)))
		one := xids[victims[0].ID]
		Expect(xids).To(HaveEach(Equal(one)), "one transaction brought the group back")
		Expect(truth.Compare(before, d.snapshot(ctx))).To(BeEmpty())

		By("refusing one tenant's comments on the live shard, then deleting and restoring the six again")
		bad := victims[3]
		err = cluster.WithConn(ctx, d.c.Shards()[0].DSN(), func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT refuse_tenant CHECK (tenant_id <> %d) NOT VALID",
				pgx.Identifier{fixtures.SharedSchema, fixtures.TableComments}.Sanitize(), bad.ID))
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		second := filepath.Join(GinkgoT().TempDir(), "journal.jsonl")
		res, err = deleteAndRestore(second)
		Expect(err).To(MatchError(ContainSubstring(fmt.Sprintf("tenant %d", bad.ID))))
		expectBackAlone(ctx, d, before, victims, res, victims[0].ID, victims[1].ID, victims[2].ID)
		xids = begun(second)
		Expect(xids[victims[0].ID]).NotTo(Equal(xids[victims[1].ID]), "after the group failed, tenant by tenant")
	})

	It("checks a group's foreign keys once per key, and a restored row whose parent is gone fails its tenant alone", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 1)
		before := d.snapshot(ctx)
		victims := d.victims(4)
		bad := victims[2]
		comments := pgx.Identifier{fixtures.SharedSchema, fixtures.TableComments}.Sanitize()

		By("making the live comments reference a table that holds every issue but the bad victim's")
		err := cluster.WithConn(ctx, d.c.Shards()[0].DSN(), func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE kept_issues (tenant_id bigint, issue_id bigint, PRIMARY KEY (tenant_id, issue_id));
				INSERT INTO kept_issues SELECT tenant_id, issue_id FROM %s WHERE tenant_id <> %d;
				ALTER TABLE %s ADD CONSTRAINT comments_kept_issue FOREIGN KEY (tenant_id, issue_id) REFERENCES kept_issues NOT VALID`,
				pgx.Identifier{fixtures.SharedSchema, fixtures.TableIssues}.Sanitize(), bad.ID, comments))
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
		Expect(err).NotTo(HaveOccurred())

		res, err := restore.PITRSidecar{}.Restore(ctx, d.env(), rec)
		Expect(err).To(MatchError(And(ContainSubstring(fmt.Sprintf("tenant %d", bad.ID)),
			ContainSubstring("check foreign key comments_kept_issue"), ContainSubstring("keys that kept_issues does not hold"))),
			"the set-based check, not the row-by-row one, refused the rows")
		expectBackAlone(ctx, d, before, victims, res, victims[0].ID, victims[1].ID)

		By("validating every foreign key of the restored rows: none was let through unchecked")
		err = cluster.WithConn(ctx, d.c.Shards()[0].DSN(), func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "ALTER TABLE "+comments+" VALIDATE CONSTRAINT comments_kept_issue")
			return err
		})
		Expect(err).NotTo(HaveOccurred())
	})
})
