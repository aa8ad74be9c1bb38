package drilltest

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
)

// FleetRole is the role a Fleet lets pgdrill act as: not a superuser, with just the privileges
// the existing provider asks for.
const FleetRole = "drill"

// FleetApp is the database a Fleet's servers each hold of their owner's own, which pgdrill must
// never touch.
const FleetApp = "app"

// Fleet is a set of servers that stand for the servers a team already runs, for the specs of
// the existing provider: started by the spec (with the local provider, in a cluster of their
// own), each with a database of the owner's (FleetApp) and a role for pgdrill (FleetRole).
type Fleet struct {
	// Catalog and Shards are the servers' URLs as FleetRole, in their postgres database.
	Catalog string
	Shards  []string
	// Owner reaches each server (catalog first) as its superuser, to look at it as its owner.
	Owner []cluster.Server
}

// StartFleet starts a catalog and shards servers for the existing provider to drill, torn down
// when the spec (or the container it is called from) ends. On each, the owner's database gets a
// table of rows, FleetRole gets what pgdrill needs and no more (CREATEDB, REPLICATION,
// pg_read_server_files, and in template1, which new databases copy, the WAL functions), and
// pg_walinspect goes into template1, as its owner would do for a role that is not a superuser.
func StartFleet(ctx context.Context, p *local.Provider, shards int) Fleet {
	ginkgo.GinkgoHelper()
	// Every connection is logged, so that a spec can see which databases pgdrill opened. WAL is
	// kept for a while, as a team's servers keep it for their replicas: the WAL receiver streams
	// without a slot, and a checkpoint that removes a segment it has not read yet leaves a gap in
	// its archive for good, which a busy spec on a loaded machine hit.
	c := StartCluster(ctx, p, cluster.Spec{Shards: shards, Settings: map[string]string{"log_connections": "on", "wal_keep_size": "1GB"}})
	f := Fleet{Owner: append([]cluster.Server{c.Catalog()}, c.Shards()...)}
	for i, s := range f.Owner {
		Exec(ctx, s.DSNFor("postgres"),
			"CREATE ROLE "+FleetRole+" LOGIN CREATEDB REPLICATION",
			"GRANT pg_read_server_files TO "+FleetRole,
			"CREATE DATABASE "+FleetApp, "CREATE DATABASE "+FleetBusy)
		// What new databases copy. Closed at once: CREATE DATABASE copies template1 only while
		// nobody is connected to it.
		gomega.Expect(cluster.WithConn(ctx, s.DSNFor("template1"), func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "CREATE EXTENSION pg_walinspect; "+
				"GRANT EXECUTE ON FUNCTION pg_switch_wal() TO "+FleetRole+"; "+
				"GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO "+FleetRole)
			return err
		})).To(gomega.Succeed())
		Exec(ctx, s.DSNFor(FleetApp), "CREATE TABLE orders (id int PRIMARY KEY, note text)",
			fmt.Sprintf("INSERT INTO orders SELECT g, 'server %d order ' || g FROM generate_series(1, 500) g", i))
		u, err := url.Parse(s.DSNFor("postgres"))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		u.User = url.User(FleetRole)
		if i == 0 {
			f.Catalog = u.String()
		} else {
			f.Shards = append(f.Shards, u.String())
		}
	}
	return f
}

// FleetBusy is the owner's database that Busy writes to.
const FleetBusy = "busy"

// Busy keeps the owner writing on every server of the fleet, in FleetBusy, until the spec ends:
// a team's own traffic, which a drill sees in the WAL it streams and must leave alone.
func (f Fleet) Busy(ctx context.Context) {
	ginkgo.GinkgoHelper()
	var conns []*pgx.Conn
	for _, s := range f.Owner {
		conn := Connect(ctx, s.DSNFor(FleetBusy))
		// Named as a table of pgdrill's own synthetic tenants is, and changed in bulk per
		// "tenant", as a harm would be: what a search of the WAL for harm finds first.
		_, err := conn.Exec(ctx, "CREATE TABLE issues (tenant_id bigint, issue_id bigint, summary text, PRIMARY KEY (tenant_id, issue_id)); "+
			"INSERT INTO issues SELECT g % 10, g, 'owner issue' FROM generate_series(1, 500) g")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		conns = append(conns, conn)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	ginkgo.DeferCleanup(func() { cancel(); <-done }) // runs before the connections close
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, conn := range conns {
				_, _ = conn.Exec(ctx, "UPDATE issues SET summary = summary || '.' WHERE tenant_id = (extract(epoch FROM now())::int % 10)")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

// Databases lists the databases of each of the fleet's servers, catalog first.
func (f Fleet) Databases(ctx context.Context) [][]string {
	ginkgo.GinkgoHelper()
	out := make([][]string, len(f.Owner))
	for i, s := range f.Owner {
		gomega.Expect(cluster.WithConn(ctx, s.DSNFor("postgres"), func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT array_agg(datname ORDER BY datname) FROM pg_database").Scan(&out[i])
		})).To(gomega.Succeed())
	}
	return out
}

// OpenedBy lists the databases role connected to on the fleet's servers, from their logs, as
// "server/database"; replication connections, which open none, are not among them.
func (f Fleet) OpenedBy(role string) []string {
	ginkgo.GinkgoHelper()
	seen := map[string]bool{}
	authorized := regexp.MustCompile(`\] LOG:  connection authorized: user=` + regexp.QuoteMeta(role) + ` database=(\S+)`)
	for _, s := range f.Owner {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(s.Info().DataDir), "postgres.log"))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		for _, m := range authorized.FindAllStringSubmatch(string(data), -1) {
			seen[s.Name()+"/"+m[1]] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Untouched is what of the fleet's servers pgdrill must leave as it found them: every database,
// with its relations and how many rows were ever written to them (pg_stat_user_tables; not
// counted in FleetBusy, which the owner writes to), the
// owner's rows (a checksum), replication slots and WAL senders. Each connection is closed at
// once: one left open to template1 would stop CREATE DATABASE.
func (f Fleet) Untouched(ctx context.Context) string {
	ginkgo.GinkgoHelper()
	var b strings.Builder
	query := func(dsn, sql string, dest ...any) {
		ginkgo.GinkgoHelper()
		gomega.Expect(cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error { return conn.QueryRow(ctx, sql).Scan(dest...) })).
			To(gomega.Succeed(), sql)
	}
	for _, s := range f.Owner {
		var dbs []string
		var slots, sum string
		var senders int
		query(s.DSNFor("postgres"), `SELECT
			(SELECT array_agg(datname ORDER BY datname) FROM pg_database WHERE datallowconn),
			(SELECT coalesce(string_agg(slot_name, ','), '') FROM pg_replication_slots),
			(SELECT count(*) FROM pg_stat_replication)::int`, &dbs, &slots, &senders)
		query(s.DSNFor(FleetApp), "SELECT md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM orders", &sum)
		fmt.Fprintf(&b, "%s: orders %s; slots %q; WAL senders %d\n", s.Name(), sum, slots, senders)
		for _, db := range dbs {
			var relations string
			var written int64
			query(s.DSNFor(db), `SELECT
				(SELECT coalesce(string_agg(n.nspname || '.' || c.relname, ',' ORDER BY n.nspname, c.relname), '')
					FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
					WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')),
				(SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables)`, &relations, &written)
			if db == FleetBusy {
				written = 0
			}
			fmt.Fprintf(&b, "  database %s: rows written %d; relations %s\n", db, written, relations)
		}
	}
	return b.String()
}
