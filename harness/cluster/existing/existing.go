// Package existing is the provider for servers pgdrill did not start: a staging fleet a platform
// team already runs, named by connection URLs. pgdrill works there only in databases it creates
// and marks for the run, takes base backups over the replication protocol (pg_basebackup),
// streams each shard's WAL into an archive of its own (pg_receivewal), runs sidecars and standbys
// on this host, and drops what it created at teardown. It never stops, kills, pauses or replaces
// those servers, and never reads or writes another database: the one each URL names is only
// where CREATE DATABASE and DROP DATABASE are issued from.
//
// Before creating anything, every server is checked for what a drill needs of it (the role's
// privileges, a replication connection, WAL kept for a receiver without a slot, WAL senders to
// spare, the version of this host's binaries); a server that lacks one is refused, naming what
// is missing and how to grant it.
package existing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
)

// Name is how the provider is named in flags, scenarios, records and reports.
const Name = local.ExistingName

// Servers names the servers a cluster is built around, by connection URLs
// (postgres://role@host:port/maintenance-db). A password may be in the URL or come from libpq's
// own PGPASSWORD or ~/.pgpass.
type Servers struct {
	// Catalog is the server the tenant directory goes on.
	Catalog string
	// Shards are the shard servers, shard-0 first: one server each.
	Shards []string
}

// Provider builds clusters around existing servers, with this host's Postgres binaries for
// backups, WAL streaming, sidecars and standbys.
type Provider struct {
	host    *local.Provider
	servers Servers
}

var _ cluster.Provider = (*Provider)(nil)

// New returns a provider for servers, running what it runs here through host.
func New(host *local.Provider, servers Servers) *Provider {
	return &Provider{host: host, servers: servers}
}

// Name implements cluster.Provider.
func (p *Provider) Name() string { return Name }

// freeSenders is how many WAL senders a drill may use at once on one server: its WAL receiver, a
// base backup streaming its WAL, and a standby.
const freeSenders = 4

// minWALKeep is the least wal_keep_size, in bytes, a server must keep WAL for: its WAL receiver
// streams without a slot (a permanent one would hold the server's WAL forever if pgdrill were
// killed), so a checkpoint removes a segment the receiver has not read yet as soon as it lies
// wal_keep_size behind, and the archive then has a gap no retry fills. The receiver reads within
// a second of the write, but one that restarts during a fill on a loaded machine falls hundreds
// of megabytes behind; a gigabyte is what the specs' fleet runs with.
const minWALKeep = 1 << 30

// Create checks every server, then builds the cluster around them. Nothing is created on any
// server unless all of them pass.
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	if err := p.refuse(spec); err != nil {
		return nil, fmt.Errorf("create cluster on existing servers: %w", err)
	}
	dsns := append([]string{p.servers.Catalog}, p.servers.Shards...)
	found := make([]local.Existing, len(dsns))
	ids := make([]string, len(dsns))
	errs := make([]error, len(dsns))
	var wg sync.WaitGroup
	for i, dsn := range dsns {
		wg.Go(func() { found[i], ids[i], errs[i] = check(ctx, serverName(i), dsn, p.host.Binaries().Major) })
	}
	wg.Wait()
	seen := map[string]string{}
	for i, id := range ids {
		if id == "" {
			continue
		}
		if other, ok := seen[id]; ok {
			errs[i] = errors.Join(errs[i], fmt.Errorf("%s: the same server as %s (system identifier %s): each needs a server of its own, since a restore replays a whole server's WAL",
				serverName(i), other, id))
		}
		seen[id] = serverName(i)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create cluster on existing servers: refused, nothing was created: %w", err)
	}
	c, err := p.host.CreateAround(ctx, spec, found[0], found[1:])
	if err != nil {
		return c, fmt.Errorf("create cluster on existing servers: %w", err)
	}
	if err := checkOwnDatabases(ctx, c); err != nil {
		if derr := c.Destroy(ctx); derr != nil {
			return c, fmt.Errorf("create cluster on existing servers: %w", errors.Join(err, derr))
		}
		return nil, fmt.Errorf("create cluster on existing servers: refused, and what was created is dropped: %w", err)
	}
	return c, nil
}

// checkOwnDatabases checks, in the run's database on every shard, what only a database can
// say: function privileges and extensions are a database's own, and a new database has
// template1's. The role must be able to close a WAL segment and name a restore point, and find
// pg_walinspect there (or, as a superuser, install it).
func checkOwnDatabases(ctx context.Context, c cluster.Cluster) error {
	var errs []error
	for _, s := range c.Shards() {
		var role string
		var super, switchWAL, restorePoint, walinspect bool
		err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, `SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
				has_function_privilege('pg_switch_wal()', 'EXECUTE'),
				has_function_privilege('pg_create_restore_point(text)', 'EXECUTE'),
				EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_walinspect')`).
				Scan(&role, &super, &switchWAL, &restorePoint, &walinspect)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("check the run's database on %s: %w", s.Name(), err))
			continue
		}
		ident := pgx.Identifier{role}.Sanitize()
		var missing []string
		if !switchWAL {
			missing = append(missing, "EXECUTE on pg_switch_wal() (GRANT EXECUTE ON FUNCTION pg_switch_wal() TO "+ident+")")
		}
		if !restorePoint {
			missing = append(missing, "EXECUTE on pg_create_restore_point(text) (GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO "+ident+")")
		}
		if !walinspect && !super {
			missing = append(missing, "the pg_walinspect extension, which only a superuser can install (CREATE EXTENSION pg_walinspect)")
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("%s: in the databases role %s creates, which are copies of template1, it lacks %s: run these in template1",
				s.Name(), role, strings.Join(missing, "; ")))
		}
	}
	return errors.Join(errs...)
}

// refuse names what spec asks that only a server's owner could give.
func (p *Provider) refuse(spec cluster.Spec) error {
	var errs []error
	if len(p.servers.Shards) != spec.Shards {
		errs = append(errs, fmt.Errorf("%d shard servers are named for %d shards", len(p.servers.Shards), spec.Shards))
	}
	if p.servers.Catalog == "" {
		errs = append(errs, errors.New("no catalog server is named"))
	}
	if spec.Engine == cluster.EnginePgBackRest {
		errs = append(errs, errors.New("pgBackRest archives through a server's own archive_command, which only its owner sets: use the pg_basebackup engine"))
	}
	if len(spec.Settings) > 0 {
		errs = append(errs, errors.New("server settings are the servers' owners' to set: remove them from the cluster spec"))
	}
	return errors.Join(errs...)
}

// serverName is the name the cluster gives the i-th server named (the catalog first).
func serverName(i int) string {
	if i == 0 {
		return "catalog"
	}
	return "shard-" + strconv.Itoa(i-1)
}

// check asks the server at dsn for everything a drill needs of it and returns it as the cluster
// will use it, with what tells it from every other server (its system identifier and when its
// postmaster started); every missing privilege or setting is named at once.
func check(ctx context.Context, name, dsn, major string) (local.Existing, string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return local.Existing{}, "", fmt.Errorf("%s: the server is not named by a postgres://role@host:port/database URL (a keyword=value string is not taken)", name)
	}
	where := fmt.Sprintf("%s (%s)", name, cluster.Redacted(dsn))
	var (
		role, superuser, walLevel, walKeepSet, started, tenantDBs string
		super, createdb, replication, readFiles, walinspect       bool
		version, senders, busy, slots                             int
		walKeep                                                   int64
		settings                                                  []string
	)
	err = cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT current_user, r.rolsuper, r.rolcreatedb, r.rolreplication,
			current_setting('server_version_num')::int / 10000, current_setting('wal_level'),
			current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_replication)::int,
			current_setting('wal_keep_size'), pg_size_bytes(current_setting('wal_keep_size')),
			current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int,
			ARRAY(SELECT current_setting(n) FROM unnest($2::text[]) n),
			(SELECT rolname FROM pg_roles WHERE oid = 10),
			pg_has_role('pg_read_server_files', 'MEMBER'),
			EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_walinspect'),
			pg_postmaster_start_time()::text,
			(SELECT coalesce(string_agg(datname, ', ' ORDER BY datname), '') FROM pg_database WHERE datname ~ $1)
			FROM pg_roles r WHERE r.rolname = current_user`, fixtures.TenantContainerPattern, local.HotStandbySettings).
			Scan(&role, &super, &createdb, &replication, &version, &walLevel, &senders, &busy, &walKeepSet, &walKeep, &slots, &settings, &superuser,
				&readFiles, &walinspect, &started, &tenantDBs)
	})
	if err != nil {
		return local.Existing{}, "", fmt.Errorf("check %s: %w", where, err)
	}
	var missing []string
	need := func(ok bool, what, grant string) {
		if !ok && !super {
			missing = append(missing, fmt.Sprintf("role %s lacks %s (%s)", role, what, grant))
		}
	}
	ident := pgx.Identifier{role}.Sanitize()
	need(createdb, "CREATEDB", "ALTER ROLE "+ident+" CREATEDB")
	need(replication, "REPLICATION", "ALTER ROLE "+ident+" REPLICATION")
	need(readFiles, "membership in pg_read_server_files, which pg_walinspect's functions need", "GRANT pg_read_server_files TO "+ident)
	if strconv.Itoa(version) != major {
		missing = append(missing, fmt.Sprintf("the server runs Postgres %d, but this host's binaries are %s: sidecars restored from its backups need the same major version", version, major))
	}
	if walLevel == "minimal" {
		missing = append(missing, "wal_level is minimal: set it to replica (a restart) so that its WAL can be streamed and replayed")
	}
	if free := senders - busy; free < freeSenders {
		missing = append(missing, fmt.Sprintf("max_wal_senders leaves %d free (%d set, %d in use), and a drill uses up to %d", free, senders, busy, freeSenders))
	}
	if walKeep < minWALKeep {
		missing = append(missing, fmt.Sprintf("wal_keep_size is %s: a checkpoint may then remove WAL the drill's receiver, which streams without a slot, has not read yet; "+
			"keep at least 1GB (as the server's owner: ALTER SYSTEM SET wal_keep_size = '1GB'; SELECT pg_reload_conf(), no restart)", walKeepSet))
	}
	if slots < 1 {
		missing = append(missing, "max_replication_slots leaves none free, and a base backup takes a temporary slot while it streams the WAL it needs")
	}
	if !walinspect {
		missing = append(missing, "the pg_walinspect extension is not installed on the server's host (Debian: postgresql-contrib, part of postgresql-15)")
	}
	if tenantDBs != "" {
		missing = append(missing, fmt.Sprintf("it has databases named as pgdrill names a tenant's own (%s), which a drill of the database layout would take for its tenants'", tenantDBs))
	}
	id, err := systemIdentifier(ctx, u)
	switch {
	case err != nil && (replication || super):
		missing = append(missing, fmt.Sprintf("no replication connection: %v (pg_hba.conf needs a replication line for role %s)", err, role))
	case err != nil:
		missing = append(missing, fmt.Sprintf("no replication connection: %v", err))
	}
	if len(missing) > 0 {
		return local.Existing{}, "", fmt.Errorf("check %s: %s", where, strings.Join(missing, "; "))
	}
	set := map[string]string{}
	for i, name := range local.HotStandbySettings {
		set[name] = settings[i]
	}
	// A copy of a server (a clone, a restored backup) keeps its system identifier; the same
	// server named twice also has the same postmaster.
	return local.Existing{DSN: dsn, Superuser: superuser, Version: strconv.Itoa(version), Settings: set}, id + " started " + started, nil
}

// systemIdentifier opens a replication connection to the server, as its WAL receiver and base
// backups will, and returns the server's system identifier (IDENTIFY_SYSTEM).
func systemIdentifier(ctx context.Context, u *url.URL) (string, error) {
	r := *u
	q := r.Query()
	q.Set("replication", "true")
	r.RawQuery = q.Encode()
	conn, err := pgconn.Connect(ctx, r.String())
	if err != nil {
		return "", fmt.Errorf("open a replication connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	results, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return "", fmt.Errorf("identify the system: %w", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) == 0 {
		return "", errors.New("IDENTIFY_SYSTEM returned no row")
	}
	return string(results[0].Rows[0][0]), nil
}
