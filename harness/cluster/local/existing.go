package local

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// ExistingName names clusters built around servers pgdrill did not start (provider existing) in
// records, flags and reports. Their sidecars, standbys and WAL receivers are this host's
// processes, which is why this package runs them.
const ExistingName = "existing"

// Existing is a server pgdrill did not start that a cluster is built around, as checked by the
// existing provider before anything is created on it.
type Existing struct {
	// DSN reaches the server as the role pgdrill acts as, in its maintenance database: the one
	// CREATE DATABASE and DROP DATABASE are issued from. Nothing in it is read or written.
	DSN string `json:"dsn"`
	// Superuser is the server's bootstrap superuser (the role of oid 10): what a sidecar or a
	// standby made from its backup is reached as, on this host.
	Superuser string `json:"superuser"`
	// Version is the server's major version; it must be this host's binaries' own.
	Version string `json:"version"`
	// Settings are the server's values of what a copy of it must set at least as high to
	// replay its WAL (HotStandbySettings).
	Settings map[string]string `json:"settings,omitempty"`
}

// HotStandbySettings are the settings a server replaying another's WAL must have at least as
// high as that server (else recovery pauses, "insufficient parameter settings"): a copy of a
// server pgdrill did not start takes that server's values.
var HotStandbySettings = []string{"max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction"}

// remote is what a server pgdrill did not start has that its own servers have not.
type remote struct {
	// settings are its HotStandbySettings, which its copies take.
	settings map[string]string
	// maintenance is the user's connection URL, in the database they named, without its
	// password: what is shown, and put on command lines.
	maintenance *url.URL
	// password is the role's, from the URL or libpq's PGPASSWORD and ~/.pgpass (read by this
	// process, which the tools it runs as the run user cannot), handed to those tools as
	// PGPASSWORD.
	password string
	// receiver streams the server's WAL into its archive (pg_receivewal); nil for the catalog,
	// whose WAL no restore replays.
	receiver *receiver
}

// receiver is a pg_receivewal process filling one server's archive.
type receiver struct {
	name string // "receivewal-shard-0"
	dir  string // the archive it writes
	log  string // its output
	proc runstate.Process
	// exited closes once the process has been waited for.
	exited chan struct{}
}

// receiverStart bounds how long a WAL receiver may take to begin streaming.
const receiverStart = 30 * time.Second

// CreateAround builds a cluster around servers pgdrill did not start: on each it creates a
// database of its own, marked with the run, to work in (never touching another); it streams
// each shard's WAL into an archive on this host with pg_receivewal; base backups come over the
// replication protocol (pg_basebackup), and sidecars and standbys run here. Destroy stops what
// it started here and drops the databases it created, each only while it carries the run's
// marker. The servers' privileges and versions must have been checked by the caller; spec must
// ask for nothing only a server's owner can do (its settings, pgBackRest).
func (p *Provider) CreateAround(ctx context.Context, spec cluster.Spec, catalog Existing, shards []Existing) (cluster.Cluster, error) {
	if len(shards) != spec.Shards {
		return nil, fmt.Errorf("create cluster: %d shard servers named for %d shards", len(shards), spec.Shards)
	}
	c, err := p.newCluster(spec, ExistingName)
	if err != nil {
		return nil, err
	}
	runID := c.runID
	servers := append([]Existing{catalog}, shards...)
	all := make([]*server, len(servers))
	for i, e := range servers {
		name := "shard-" + strconv.Itoa(i-1)
		if i == 0 {
			name = "catalog"
		}
		if all[i], err = c.remoteServer(c.dir, name, e, "pgdrill_"+runID); err != nil {
			return nil, fmt.Errorf("create cluster: %w", err)
		}
	}
	c.catalog, c.shards = all[0], all[1:]
	// Recorded before anything exists, so that whatever happens next can be reaped.
	if err := c.saveRecord(); err != nil {
		return nil, err
	}
	if err := c.makeDir(); err != nil {
		return c, err
	}
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Go(func() { errs[i] = c.adopt(ctx, s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("create cluster %s: %w", runID, err)
	}
	p.log.Info("cluster up", "run_id", runID, "provider", ExistingName, "shards", spec.Shards, "postgres", p.bins.Version)
	return c, c.saveRecord()
}

// newRemote reads a server's connection URL: where it is, as whom, and the role's password.
func newRemote(dsn string) (*remote, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("read server URL %s: not a postgres:// URL", cluster.Redacted(dsn))
	}
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("read server URL %s: %w", cluster.Redacted(dsn), err)
	}
	clean, _ := cluster.WithoutPassword(u)
	return &remote{maintenance: clean, password: cfg.Password}, nil
}

// remoteServer is the server named name, pgdrill's database on it named database, of a run whose
// servers' directories are under dir: a server pgdrill did not start, at e.
func (c *localCluster) remoteServer(dir, name string, e Existing, database string) (*server, error) {
	role, index, ok := cluster.PrimaryRole(name)
	if !ok {
		return nil, fmt.Errorf("server %q is neither the catalog nor a shard", name)
	}
	r, err := newRemote(e.DSN)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.settings = e.Settings
	s := c.newServer(name, role, index, role == cluster.RoleShard)
	s.dir = filepath.Join(dir, name)
	if s.archive != "" {
		s.archive = filepath.Join(s.dir, "archive")
	}
	s.remote, s.superuser, s.database, s.version = r, e.Superuser, database, e.Version
	return s, nil
}

// url is the server's URL for database, with the password: for this process's connections
// and run records (kept 0600), never for display.
func (r *remote) url(database string) string { return r.withPassword(database).String() }

// withPassword is url, parsed.
func (r *remote) withPassword(database string) *url.URL {
	u := *r.maintenance
	if database != "" {
		u.Path = "/" + database
	}
	if r.password != "" {
		u.User = url.UserPassword(u.User.Username(), r.password)
	}
	return &u
}

// adopt readies a server pgdrill did not start: its database, marked, and for a shard a WAL
// receiver streaming into its archive.
func (c *localCluster) adopt(ctx context.Context, s *server) error {
	if err := c.p.user.mkdir(s.dir, 0o700); err != nil {
		return err
	}
	if _, err := s.createDatabase(ctx, s.remote.url(""), s.database); err != nil {
		return err
	}
	if s.archive == "" {
		return nil
	}
	if err := c.p.user.mkdir(s.archive, 0o700); err != nil {
		return err
	}
	return s.startReceiver(ctx)
}

// createDatabase creates database name on a server pgdrill did not start, from the connection
// from (to a database already there), marks it for the run and returns its URL. It is in the
// run's record before it exists, so that a run killed now has it dropped.
func (s *server) createDatabase(ctx context.Context, from, name string) (string, error) {
	s.c.mu.Lock()
	s.c.databases = append(s.c.databases, runstate.DatabaseRecord{Server: s.name, Maintenance: s.remote.url(""), Name: name})
	s.c.mu.Unlock()
	if err := s.c.saveRecord(); err != nil {
		return "", err
	}
	err := cluster.WithConn(ctx, from, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, s.name, err)
	}
	dsn := s.DSNFor(name)
	if err := cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error { return cluster.Mark(ctx, conn, s.c.runID, s.role) }); err != nil {
		return "", fmt.Errorf("mark database %s on %s: %w", name, s.name, err)
	}
	return dsn, nil
}

// startReceiver starts pg_receivewal on the server into its archive and returns once it
// streams (its first segment is open). It runs as the run user, in a process group of its own,
// with the archive on its command line: what reaping a killed run recognizes it by.
func (s *server) startReceiver(ctx context.Context) error {
	r := &receiver{name: "receivewal-" + s.name, dir: s.archive, log: filepath.Join(s.dir, "receivewal.log"), exited: make(chan struct{})}
	logFile, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", r.name, err)
	}
	defer logFile.Close()
	args := append(s.connArgs(), "-D", r.dir, "--no-password", "--verbose")
	if !s.c.spec.Durable {
		args = append(args, "--no-sync")
	}
	// Not CommandContext: the receiver lives as long as the cluster.
	cmd := s.c.p.user.command(exec.Command(s.c.p.bins.Path("pg_receivewal"), args...))
	cmd.Stdout, cmd.Stderr, cmd.Env = logFile, logFile, s.clientEnv()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	go func() { _ = cmd.Wait(); close(r.exited) }()
	if r.proc, err = runstate.Identify(cmd.Process.Pid); err != nil {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
		return fmt.Errorf("identify %s: %w", r.name, err)
	}
	s.c.mu.Lock()
	s.remote.receiver = r
	s.c.mu.Unlock()
	if err := s.c.saveRecord(); err != nil {
		return err
	}
	deadline := time.Now().Add(receiverStart)
	for {
		if partial, _ := filepath.Glob(filepath.Join(r.dir, "*.partial")); len(partial) > 0 {
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("start %s: it exited: %s", r.name, logtail.Last(readFile(r.log), 10))
		case <-ctx.Done():
			return fmt.Errorf("start %s: %w", r.name, ctx.Err())
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start %s: not streaming after %s: %s", r.name, receiverStart, logtail.Last(readFile(r.log), 10))
		}
	}
}

// readFile returns a file's content, or "" when it cannot be read: for quoting logs in errors.
func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// stop ends the receiver (SIGINT: it closes its partial segment), SIGKILL after stopTimeout.
func (r *receiver) stop(ctx context.Context) error {
	if err := terminate(ctx, r.proc, r.dir, r.exited); err != nil {
		return fmt.Errorf("stop %s: %w", r.name, err)
	}
	return nil
}

// dropWait bounds dropping one database: a server that does not answer must not hold up every
// later pgdrill, whose start reaps killed runs.
const dropWait = 20 * time.Second

// dropDatabases drops the databases a run created on servers it did not start, each only while
// it carries the run's marker and no other; one already gone is fine.
func dropDatabases(ctx context.Context, runID string, dbs []runstate.DatabaseRecord) error {
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, dropWait)
			defer cancel()
			errs[i] = dropDatabase(ctx, runID, db)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dropDatabase drops one database of dropDatabases.
func dropDatabase(ctx context.Context, runID string, db runstate.DatabaseRecord) error {
	u, err := url.Parse(db.Maintenance)
	if err != nil {
		return fmt.Errorf("drop database %s on %s: %w", db.Name, db.Server, err)
	}
	var exists bool
	err = cluster.WithConn(ctx, u.String(), func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", db.Name).Scan(&exists)
	})
	if err != nil {
		return fmt.Errorf("drop database %s on %s: %w", db.Name, db.Server, err)
	}
	if !exists {
		return nil
	}
	own := *u
	own.Path = "/" + db.Name
	if err := cluster.WithConn(ctx, own.String(), func(conn *pgx.Conn) error { return cluster.RequireMarker(ctx, conn, runID) }); err != nil {
		return fmt.Errorf("drop database %s on %s: %w", db.Name, db.Server, err)
	}
	err = cluster.WithConn(ctx, u.String(), func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.Name}.Sanitize()+" WITH (FORCE)")
		return err
	})
	if err != nil {
		return fmt.Errorf("drop database %s on %s: %w", db.Name, db.Server, err)
	}
	return nil
}

// adoptConfig makes a data directory copied from a server pgdrill did not start (a base backup
// of it) one of this host's: its configuration is the server's owner's (addresses, libraries,
// files on another machine, ALTER SYSTEM settings that would outrank pgdrill's), so it is
// replaced by pgdrill.conf alone, reached over loopback and the socket without a password.
func (c *localCluster) adoptConfig(dataDir string) error {
	files := map[string]string{
		"postgresql.conf":      "# Written by pgdrill: a copy of a server it did not start, run on this host.\ninclude_if_exists = 'pgdrill.conf'\n",
		"postgresql.auto.conf": "# Emptied by pgdrill: the original server's ALTER SYSTEM settings do not apply here.\n",
		"pg_hba.conf":          "local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n",
		"pg_ident.conf":        "",
	}
	for name, content := range files {
		path := filepath.Join(dataDir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := c.p.user.own(path); err != nil {
			return err
		}
	}
	for _, name := range []string{"standby.signal", "recovery.signal"} {
		if err := os.Remove(filepath.Join(dataDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}

// mayControl says whether this process may stop, start or signal the server: not one an
// attached handle reaches, nor one pgdrill did not start.
func (s *server) mayControl() error {
	switch {
	case s.remote != nil:
		return cluster.ErrExisting
	case s.foreign:
		return cluster.ErrNotOwned
	}
	return nil
}

// connArgs are the options pg_basebackup and pg_receivewal connect to the server with. A
// password is never among them, where every account's ps would show it: clientEnv passes it.
func (s *server) connArgs() []string {
	if s.remote != nil {
		return []string{"-d", s.remote.maintenance.String()}
	}
	return []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.Info().Port), "-U", s.user()}
}

// clientEnv is the environment of a client program connecting with connArgs: this process's,
// with the password of a server pgdrill did not start, if its URL has one, as PGPASSWORD.
func (s *server) clientEnv() []string {
	env := os.Environ()
	if s.remote != nil && s.remote.password != "" {
		env = append(env, "PGPASSWORD="+s.remote.password)
	}
	return env
}

// primaryConninfo is how a standby named application reaches the server to stream its WAL.
func (s *server) primaryConninfo(application string) string {
	if s.remote != nil {
		// With the password: the standby's WAL receiver has no other way to it. pgdrill.conf is
		// the run user's alone, as postgresql.auto.conf is where pg_basebackup -R writes it.
		u := s.remote.withPassword("")
		q := u.Query()
		q.Set("application_name", application)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s application_name=%s", s.Info().Port, s.user(), application)
}

// user is the role pgdrill connects to the server as: the superuser initdb made on a server it
// started, the original's bootstrap superuser on a copy of a server it did not start.
func (s *server) user() string {
	if s.superuser != "" {
		return s.superuser
	}
	return "postgres"
}

// db is the database the server's DSN names: pgdrill's own on the server.
func (s *server) db() string {
	if s.database != "" {
		return s.database
	}
	return cluster.DefaultDatabase
}
