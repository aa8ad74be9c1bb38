package local_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/conformance"
	"github.com/pgdrill/pgdrill/harness/cluster/existing"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// The existing provider's clusters are this provider's processes (sidecars, standbys, WAL
// receivers) around servers pgdrill did not start, so its specs run here, on a fleet of servers
// the suite starts for it.

// fleet stands for the servers a team already runs: started once for the suite (see
// local_suite_test.go); fleetBaseline are its servers' databases then, catalog first.
var (
	fleet         drilltest.Fleet
	fleetBaseline [][]string
)

// fleetProvider builds each cluster on the fleet's first servers, as many as the spec asks for:
// the conformance specs choose their own shard counts.
type fleetProvider struct{}

func (fleetProvider) Name() string { return existing.Name }

func (fleetProvider) Create(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error) {
	shards := fleet.Shards[:min(max(spec.Shards, 0), len(fleet.Shards))]
	return existing.New(provider, existing.Servers{Catalog: fleet.Catalog, Shards: shards}).Create(ctx, spec)
}

var _ = conformance.Specs("existing", conformance.Subject{
	Provider: func() cluster.Provider { return fleetProvider{} },
	Attach:   func(ctx context.Context, runID string) (cluster.Cluster, error) { return provider.Attach(ctx, runID) },
	Store:    func() *runstate.Store { return provider.Store() },
	Existing: true,
	Footprint: func(ctx context.Context, c cluster.Cluster) func() []string {
		here := recordedFootprint(c).left
		return func() []string { return append(here(), fleetDatabases(ctx, c.RunID())...) }
	},
})

// fleetDatabases lists the databases of run id on the fleet's servers, and every other one that
// was not there when the suite started and is not another run's own (pgdrill_RUN_ID).
func fleetDatabases(ctx context.Context, id string) []string {
	GinkgoHelper()
	var out []string
	for i, s := range fleet.Owner {
		rows, err := drilltest.Connect(ctx, s.DSNFor("postgres")).Query(ctx,
			"SELECT datname FROM pg_database WHERE datname LIKE '%' || $1 OR NOT (datname = ANY($2) OR datname LIKE 'pgdrill\\_r%')",
			id, fleetBaseline[i])
		Expect(err).NotTo(HaveOccurred())
		for rows.Next() {
			var name string
			Expect(rows.Scan(&name)).To(Succeed())
			out = append(out, fmt.Sprintf("database %s on %s", name, s.Name()))
		}
		Expect(rows.Err()).NotTo(HaveOccurred())
	}
	return out
}

// dropRole drops a role a spec made on a fleet server, once the spec ends.
func dropRole(ctx context.Context, dsn, role string) {
	Expect(cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize())
		return err
	})).To(Succeed())
}

var _ = Describe("the existing provider", func() {
	It("refuses, before creating anything, servers where the role lacks what a drill needs, naming each privilege and how to grant it", func(ctx context.Context) {
		for _, s := range fleet.Owner {
			drilltest.Exec(ctx, s.DSNFor("postgres"), "CREATE ROLE weak LOGIN")
			DeferCleanup(dropRole, s.DSNFor("postgres"), "weak")
		}
		By("keeping too little WAL on shard-0 for a receiver without a slot")
		shard0 := fleet.Owner[1].DSNFor("postgres")
		drilltest.Exec(ctx, shard0, "ALTER SYSTEM SET wal_keep_size = '64MB'", "SELECT pg_reload_conf()")
		DeferCleanup(func(ctx context.Context) {
			Expect(cluster.WithConn(ctx, shard0, func(conn *pgx.Conn) error {
				if _, err := conn.Exec(ctx, "ALTER SYSTEM RESET wal_keep_size"); err != nil {
					return err
				}
				_, err := conn.Exec(ctx, "SELECT pg_reload_conf()")
				return err
			})).To(Succeed())
		})
		Eventually(func() int64 {
			return drilltest.QueryInt(ctx, shard0, "SELECT pg_size_bytes(current_setting('wal_keep_size'))")
		}).Should(Equal(int64(64 << 20)))
		before := fleet.Untouched(ctx)
		as := func(dsn, role string) string {
			u, err := url.Parse(dsn)
			Expect(err).NotTo(HaveOccurred())
			u.User = url.User(role)
			return u.String()
		}
		p := existing.New(provider, existing.Servers{Catalog: fleet.Catalog, Shards: []string{as(fleet.Shards[0], "weak"), fleet.Shards[1]}})
		c, err := p.Create(ctx, cluster.Spec{Shards: 2})
		drilltest.DestroyWhenDone(c)
		Expect(c).To(BeNil())
		Expect(err).To(MatchError(And(
			ContainSubstring("nothing was created"),
			ContainSubstring("shard-0"), Not(ContainSubstring("shard-1")),
			ContainSubstring(`lacks CREATEDB (ALTER ROLE "weak" CREATEDB)`),
			ContainSubstring("lacks REPLICATION"),
			ContainSubstring(`GRANT pg_read_server_files TO "weak"`),
			ContainSubstring("no replication connection"),
			ContainSubstring("wal_keep_size is 64MB"), ContainSubstring("ALTER SYSTEM SET wal_keep_size = '1GB'; SELECT pg_reload_conf()"),
		)))
		Expect(fleet.Untouched(ctx)).To(Equal(before), "nothing was created on any server")
		recs, err := provider.Store().List()
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).NotTo(ContainElement(HaveField("Provider", existing.Name)), "no run was recorded")
	})

	It("drops what it created and refuses when the role's databases lack the WAL functions or pg_walinspect, saying to grant them in template1", func(ctx context.Context) {
		for _, s := range fleet.Owner {
			drilltest.Exec(ctx, s.DSNFor("postgres"), "CREATE ROLE bare LOGIN CREATEDB REPLICATION", "GRANT pg_read_server_files TO bare")
			DeferCleanup(dropRole, s.DSNFor("postgres"), "bare")
		}
		before := fleet.Untouched(ctx)
		as := func(dsn string) string {
			u, err := url.Parse(dsn)
			Expect(err).NotTo(HaveOccurred())
			u.User = url.User("bare")
			return u.String()
		}
		p := existing.New(provider, existing.Servers{Catalog: as(fleet.Catalog), Shards: []string{as(fleet.Shards[0])}})
		c, err := p.Create(ctx, cluster.Spec{Shards: 1})
		drilltest.DestroyWhenDone(c)
		Expect(c).To(BeNil())
		Expect(err).To(MatchError(And(ContainSubstring("what was created is dropped"),
			ContainSubstring(`GRANT EXECUTE ON FUNCTION pg_switch_wal() TO "bare"`),
			ContainSubstring("pg_create_restore_point(text)"), ContainSubstring("run these in template1"))))
		Expect(fleet.Untouched(ctx)).To(Equal(before))
	})

	It("refuses a server named twice, a URL that is not one, and too few servers for the shards", func(ctx context.Context) {
		p := existing.New(provider, existing.Servers{Catalog: fleet.Catalog, Shards: []string{fleet.Shards[0], fleet.Shards[0]}})
		_, err := p.Create(ctx, cluster.Spec{Shards: 2})
		Expect(err).To(MatchError(ContainSubstring("shard-1: the same server as shard-0")))
		p = existing.New(provider, existing.Servers{Catalog: "host=localhost", Shards: fleet.Shards[:1]})
		_, err = p.Create(ctx, cluster.Spec{Shards: 1})
		Expect(err).To(MatchError(ContainSubstring("catalog: the server is not named by a postgres://")))
		p = existing.New(provider, existing.Servers{Catalog: fleet.Catalog, Shards: fleet.Shards[:1]})
		_, err = p.Create(ctx, cluster.Spec{Shards: 2})
		Expect(err).To(MatchError(ContainSubstring("1 shard servers are named for 2 shards")))
	})

	It("works only in databases of its own: the owner's data, roles' slots and databases are as they were after a restore", func(ctx context.Context) {
		before := fleet.Untouched(ctx)
		withPassword := func(dsn string) string { // the fleet trusts loopback: the password only travels
			u, err := url.Parse(dsn)
			Expect(err).NotTo(HaveOccurred())
			u.User = url.UserPassword(u.User.Username(), "s3cret")
			return u.String()
		}
		p := existing.New(provider, existing.Servers{Catalog: withPassword(fleet.Catalog), Shards: []string{withPassword(fleet.Shards[0]), withPassword(fleet.Shards[1])}})
		c := drilltest.StartCluster(ctx, p, cluster.Spec{Shards: 2})
		shard := c.Shards()[1]
		Expect(shard.Info().DSN).NotTo(ContainSubstring("s3cret"), "what reports and runbooks show has no password")
		rec, err := provider.Store().Load(c.RunID())
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Servers).To(HaveLen(2), "a WAL receiver per shard")
		for _, r := range rec.Servers {
			args, err := runstate.CommandLine(r.Process.PID)
			Expect(err).NotTo(HaveOccurred())
			Expect(strings.Join(args, " ")).To(And(ContainSubstring("pg_receivewal"), Not(ContainSubstring("s3cret"))), "no password on a command line")
		}
		Expect(shard.Info()).To(And(HaveField("Version", provider.Binaries().Major), HaveField("WALArchive", Not(BeEmpty()))))
		Expect(shard.DSN()).To(ContainSubstring("/pgdrill_" + c.RunID()))
		drilltest.Exec(ctx, shard.DSN(), "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 100)")
		tenantDB, err := shard.CreateDatabase(ctx, "t_77") // a tenant's own, as the database layout makes
		Expect(err).NotTo(HaveOccurred())
		Expect(cluster.RequireMarker(ctx, drilltest.Connect(ctx, tenantDB), c.RunID())).To(Succeed())
		b, err := shard.BaseBackup(ctx, "b")
		Expect(err).NotTo(HaveOccurred())
		harm := drilltest.XIDOf(ctx, shard.DSN(), "DELETE FROM t WHERE id > 50")
		var segment string
		Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&segment)).To(Succeed())
		Expect(shard.AwaitArchived(ctx, segment, time.Minute)).To(Succeed(), "the WAL receiver completes the segment")
		sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{XID: harm}})
		Expect(err).NotTo(HaveOccurred())
		Expect(sidecar.Start(ctx)).To(Succeed())
		Expect(drilltest.QueryInt(ctx, sidecar.DSN(), "SELECT count(*) FROM t")).To(BeEquivalentTo(100))
		Expect(sidecar.Info().Host).To(Equal("127.0.0.1"), "the sidecar runs on this host")
		Expect(c.Destroy(ctx)).To(Succeed())
		Expect(fleet.Untouched(ctx)).To(Equal(before))
	})
})
