// Package local is the default cluster provider: every server is a Postgres process on this host,
// started from the host's own binaries, listening on 127.0.0.1 and a private socket directory.
//
// initdb runs once per Postgres version into a cached template; every server is a copy of it, so
// a catalog and four shards come up in about half a second. As root, servers run as an
// unprivileged account (Postgres refuses root). Every process and directory of a run is written
// to a runstate record before it exists, so a killed run can be reaped by the next pgdrill; a
// copy of the record kept in the run's own directory lets any pgdrill using the same work root
// find it, whichever state dir the run's own pgdrill used (FindRuns).
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// ProviderName is how the local provider is named in records, flags and reports.
const ProviderName = "local"

// maxSocketPath is the longest unix socket path the kernel accepts (sun_path, minus the NUL).
const maxSocketPath = 107

// Provider starts clusters of local Postgres processes.
type Provider struct {
	bins     Binaries
	user     RunUser
	workRoot string
	store    *runstate.Store
	log      *slog.Logger

	templateMu sync.Mutex
}

var _ cluster.Provider = (*Provider)(nil)

type config struct {
	binDir   string
	workRoot string
	stateDir string
	runUser  string
	logger   *slog.Logger
}

// Option configures New.
type Option func(*config)

// WithBinDir uses the Postgres binaries in dir. Default: FindBinaries' search (PGDRILL_PG_BIN,
// pg_config --bindir, PATH, the newest /usr/lib/postgresql/*/bin).
func WithBinDir(dir string) Option { return func(c *config) { c.binDir = dir } }

// WithWorkRoot puts data directories, sockets, archives and the template cache under dir; it
// must be short enough for unix socket paths. Default: $PGDRILL_WORK_ROOT, else
// $TMPDIR/pgdrill-UID.
func WithWorkRoot(dir string) Option { return func(c *config) { c.workRoot = dir } }

// WithStateDir keeps run records in dir. Default: runstate.DefaultDir().
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithRunUser runs servers as the named account when pgdrill runs as root. Default:
// DefaultRunUser ("pgdrill"), created when missing. Ignored when not root.
func WithRunUser(name string) Option { return func(c *config) { c.runUser = name } }

// WithLogger logs through l. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// DefaultWorkRoot is $PGDRILL_WORK_ROOT; else /dev/shm/pgdrill-UID when /dev/shm is a tmpfs with
// at least minMemoryRoot free; else $TMPDIR/pgdrill-UID. Throwaway clusters belong in memory:
// a data directory is ~1,300 files, and on a disk whose file creation costs ~0.5 ms (as measured
// on the CI machines) cloning one takes a second instead of 0.06 s. Every choice is short
// (socket paths are limited to 107 bytes) and traversable by the run user.
func DefaultWorkRoot() string {
	if d := os.Getenv("PGDRILL_WORK_ROOT"); d != "" {
		return d
	}
	name := "pgdrill-" + strconv.Itoa(os.Getuid())
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err == nil && fs.Type == unix.TMPFS_MAGIC &&
		fs.Bavail*uint64(fs.Bsize) >= minMemoryRoot {
		return filepath.Join("/dev/shm", name)
	}
	return filepath.Join(os.TempDir(), name)
}

// minMemoryRoot is the free memory-backed space below which clusters go to disk instead.
const minMemoryRoot = 4 << 30

// New finds the Postgres binaries and the run user, prepares the work root, and reaps what
// killed runs left behind.
func New(ctx context.Context, opts ...Option) (*Provider, error) {
	cfg := config{logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.workRoot == "" {
		cfg.workRoot = DefaultWorkRoot()
	}
	if cfg.stateDir == "" {
		d, err := runstate.DefaultDir()
		if err != nil {
			return nil, err
		}
		cfg.stateDir = d
	}
	bins, err := FindBinaries(ctx, cfg.binDir)
	if err != nil {
		return nil, err
	}
	user, err := resolveRunUser(ctx, cfg.runUser)
	if err != nil {
		return nil, err
	}
	workRoot, err := filepath.Abs(cfg.workRoot)
	if err != nil {
		return nil, fmt.Errorf("resolve work root: %w", err)
	}
	// The run user must traverse the root to reach its own directories below it.
	if err := os.MkdirAll(workRoot, 0o755); err != nil {
		return nil, fmt.Errorf("create work root: %w", err)
	}
	store, err := runstate.Open(cfg.stateDir)
	if err != nil {
		return nil, err
	}
	p := &Provider{bins: bins, user: user, workRoot: workRoot, store: store, log: cfg.logger}
	if _, err := ReapOrphans(ctx, workRoot, store, p.log); err != nil {
		p.log.Warn("could not reap leftovers of killed runs", "err", err)
	}
	return p, nil
}

// Name implements cluster.Provider.
func (p *Provider) Name() string { return ProviderName }

// Binaries reports the Postgres binaries in use.
func (p *Provider) Binaries() Binaries { return p.bins }

// RunUser reports the account servers run as.
func (p *Provider) RunUser() RunUser { return p.user }

// WorkRoot is where run directories and the template cache live.
func (p *Provider) WorkRoot() string { return p.workRoot }

// Store is the run-record store the provider writes to.
func (p *Provider) Store() *runstate.Store { return p.store }

// newRunID returns a short random id: it names the run's directory, its state record and the
// marker in every database. It is not a drill choice, so it does not come from the drill seed.
func newRunID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make run id: %w", err)
	}
	return "r" + hex.EncodeToString(b), nil
}

// runMarkerFile sits in every run directory and names its run: reapers remove a directory only
// when it is there and matches.
const runMarkerFile = ".pgdrill-run"

// Create starts a catalog and spec.Shards shards in parallel. On error the partial cluster is
// returned too, so the caller can Destroy it.
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error) {
	c, err := p.newCluster(spec, ProviderName)
	if err != nil {
		return nil, err
	}
	runID := c.runID
	// Recorded before anything exists, so that whatever happens next can be reaped.
	if err := c.saveRecord(); err != nil {
		return nil, err
	}
	if err := c.makeDir(); err != nil {
		return c, err
	}
	template, err := p.ensureTemplate(ctx)
	if err != nil {
		return c, err
	}
	if spec.Engine == cluster.EnginePgBackRest {
		if err := c.writePgBackRestConf(spec.Shards); err != nil {
			return c, err
		}
	}
	c.catalog = c.newServer("catalog", cluster.RoleCatalog, -1, true)
	for i := range spec.Shards {
		c.shards = append(c.shards, c.newServer("shard-"+strconv.Itoa(i), cluster.RoleShard, i, true))
	}
	all := append([]*server{c.catalog}, c.shards...)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Go(func() { errs[i] = c.bootFromTemplate(ctx, s, template) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("create cluster %s: %w", runID, err)
	}
	p.log.Info("cluster up", "run_id", runID, "shards", spec.Shards, "postgres", p.bins.Version)
	return c, c.saveRecord()
}

// newCluster checks spec and returns the handle of a new run of it, with nothing made yet.
func (p *Provider) newCluster(spec cluster.Spec, provider string) (*localCluster, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	if spec.SidecarDisks && os.Geteuid() != 0 {
		return nil, fmt.Errorf("create cluster: %w", errNoRootForDisks)
	}
	runID, err := newRunID()
	if err != nil {
		return nil, err
	}
	self, err := runstate.Self()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(p.workRoot, runID)
	c := &localCluster{p: p, runID: runID, recordID: runID, spec: spec, dir: dir, home: dir, owner: self, provider: provider}
	if len(filepath.Join(c.dir, "sidecar-shard-"+strconv.Itoa(cluster.MaxShards)+"-999", ".s.PGSQL.65535")) > maxSocketPath {
		return nil, fmt.Errorf("create cluster: work root %s is too long for unix socket paths (%d bytes max); use --work-root or PGDRILL_WORK_ROOT with a shorter path",
			p.workRoot, maxSocketPath)
	}
	return c, nil
}

// bootFromTemplate clones the template into s's directory, starts it and marks its database.
func (c *localCluster) bootFromTemplate(ctx context.Context, s *server, template string) error {
	if err := c.p.user.mkdir(s.dir, 0o700); err != nil {
		return err
	}
	if s.archive != "" && !s.pgBackRest() {
		if err := c.p.user.mkdir(s.archive, 0o700); err != nil {
			return err
		}
	}
	if err := copyTree(ctx, template, s.dataDir()); err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	if s.pgBackRest() {
		if _, err := c.runPgBackRest(ctx, s, "stanza-create"); err != nil {
			return err
		}
	}
	err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error { return cluster.Mark(ctx, conn, c.runID, s.role) })
	if err != nil {
		return fmt.Errorf("mark %s: %w", s.name, err)
	}
	return nil
}

// makeDir creates the directory the cluster's new servers go to, marked with its record's id,
// and from now on keeps a copy of the record in it (see FindRuns).
func (c *localCluster) makeDir() error {
	if err := c.p.user.mkdir(c.dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, runMarkerFile), []byte(c.recordID), 0o600); err != nil {
		return fmt.Errorf("write run marker: %w", err)
	}
	c.mu.Lock()
	c.dirStore = runstate.OpenUntrusted(c.dir)
	c.mu.Unlock()
	return c.saveRecord()
}

// localCluster is a cluster of local servers.
type localCluster struct {
	p     *Provider
	runID string
	// recordID names the state record and directory of what this handle started: the run id for
	// the cluster's owner, a child id for a handle attached from another process.
	recordID string
	spec     cluster.Spec
	// dir is where this handle's new servers (sidecars, standbys), backups and record live; home
	// is the run's own directory, where the catalog, the shards and the pgBackRest setup live.
	// They are the same for the owner.
	dir, home string
	owner     runstate.Process
	// attached handles reach the run's servers but never stop them (see Provider.Attach).
	attached bool
	// provider names what made the cluster: ProviderName, or ExistingName for a cluster built
	// around servers pgdrill did not start.
	provider string

	mu       sync.Mutex // guards the fields below and record writes
	catalog  *server
	shards   []*server
	sidecars []*server
	standbys []*server
	// seq numbers the backups, sidecars and standbys this handle makes, for unique names.
	seq      int
	detached bool
	info     json.RawMessage
	// dirStore keeps the copy of the record in the handle's own directory, once that exists.
	dirStore *runstate.Store
	// databases are those the handle created on servers pgdrill did not start.
	databases []runstate.DatabaseRecord
}

// recordSpec is what a run's record keeps of its cluster, for Attach: the spec and, for a
// cluster built around servers pgdrill did not start, those servers.
type recordSpec struct {
	cluster.Spec
	Existing []existingRecord `json:"existing,omitempty"`
}

// existingRecord is one server pgdrill did not start, as a run's record keeps it.
type existingRecord struct {
	Existing
	Name     string `json:"name"`
	Database string `json:"database"`
}

var _ cluster.Cluster = (*localCluster)(nil)

func (c *localCluster) newServer(name string, role cluster.Role, index int, archive bool) *server {
	s := &server{c: c, name: name, role: role, index: index, dir: filepath.Join(c.dir, name)}
	switch {
	case archive && s.pgBackRest():
		s.archive = filepath.Join(c.pgBackRestDir(), "repo", "archive", name)
	case archive:
		s.archive = filepath.Join(s.dir, "archive")
	}
	return s
}

func (c *localCluster) RunID() string            { return c.runID }
func (c *localCluster) Provider() string         { return c.provider }
func (c *localCluster) Catalog() cluster.Server  { return c.catalog }
func (c *localCluster) Shards() []cluster.Server { return toServers(c.shards) }

func toServers(ss []*server) []cluster.Server {
	out := make([]cluster.Server, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// owned returns the servers this handle started and must tear down: all of them for the
// owner; its own sidecars and standbys for an attached handle.
func (c *localCluster) owned() []*server {
	if !c.attached {
		return c.servers()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(slices.Clone(c.sidecars), c.standbys...)
}

// servers returns every server the cluster started, sidecars and standbys included.
func (c *localCluster) servers() []*server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []*server
	if c.catalog != nil {
		all = append(all, c.catalog)
	}
	all = append(all, c.shards...)
	all = append(all, c.sidecars...)
	return append(all, c.standbys...)
}

// Detach implements cluster.Cluster: orphan reaping leaves the run alone, and the cluster's
// description is kept in its record for later commands.
func (c *localCluster) Detach() error {
	data, err := json.Marshal(cluster.Describe(c))
	if err != nil {
		return fmt.Errorf("encode cluster info: %w", err)
	}
	c.mu.Lock()
	c.detached, c.info = true, data
	c.mu.Unlock()
	return c.saveRecord()
}

// saveRecord writes the run's state record as it is now, in the state dir and, once it exists, in
// the run's own directory.
func (c *localCluster) saveRecord() error {
	servers := c.owned()
	rs := recordSpec{Spec: c.spec}
	rec := runstate.Record{RunID: c.recordID, Provider: c.provider, Owner: c.owner, Dirs: []string{c.dir}}
	for _, s := range servers {
		if s.remote != nil {
			rs.Existing = append(rs.Existing, existingRecord{Name: s.name, Database: s.database,
				Existing: Existing{DSN: s.remote.url(""), Superuser: s.superuser, Version: s.version, Settings: s.remote.settings}})
		}
		if sr := s.record(); sr.Process.PID != 0 {
			rec.Servers = append(rec.Servers, sr)
		}
	}
	spec, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("encode cluster spec: %w", err)
	}
	rec.Spec = spec
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range servers {
		if r := s.remote; r != nil && r.receiver != nil {
			rec.Servers = append(rec.Servers, runstate.ServerRecord{Name: r.receiver.name, Process: r.receiver.proc, DataDir: r.receiver.dir})
		}
	}
	rec.Detached, rec.Info, rec.Databases = c.detached, c.info, slices.Clone(c.databases)
	if existing, err := c.p.store.Load(c.recordID); err == nil {
		rec.Created = existing.Created
	} else {
		rec.Created = nowUTC()
	}
	if err := c.p.store.Save(rec); err != nil {
		return err
	}
	if c.dirStore == nil {
		return nil
	}
	// Written after the state dir's, which FindRuns prefers: that one is never the older.
	return c.dirStore.Save(rec)
}

// Destroy stops every server in parallel and removes the run's directory and record. An attached
// handle stops only what it started, and removes only its own directory and record. The owner
// first reaps what attached handles whose process died left (a runbook's `pgdrill restore`
// killed mid-restore and never run again): nothing of its run outlives it.
func (c *localCluster) Destroy(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx) // teardown must finish even when the run was cancelled
	if !c.attached {
		if err := c.reapChildren(ctx); err != nil {
			return fmt.Errorf("destroy cluster %s: %w", c.runID, err)
		}
	}
	servers := c.owned()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			if s.remote == nil {
				errs[i] = s.Stop(ctx)
				return
			}
			c.mu.Lock()
			r := s.remote.receiver // set under c.mu, by startReceiver
			c.mu.Unlock()
			if r != nil {
				errs[i] = r.stop(ctx)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy cluster %s: %w", c.runID, err)
	}
	c.mu.Lock()
	dbs := slices.Clone(c.databases)
	c.mu.Unlock()
	if err := dropDatabases(ctx, c.runID, dbs); err != nil {
		return fmt.Errorf("destroy cluster %s: %w", c.runID, err)
	}
	if err := removeRunDir(c.dir, c.recordID); err != nil {
		return err
	}
	if err := c.p.store.Remove(c.recordID); err != nil {
		return err
	}
	c.p.log.Info("cluster destroyed", "run_id", c.recordID)
	return nil
}

// reapChildren reaps the records of handles attached to the run whose process died.
func (c *localCluster) reapChildren(ctx context.Context) error {
	recs, err := c.p.store.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		if strings.HasPrefix(rec.RunID, c.runID+"-") && rec.Orphaned() {
			if err := Reap(ctx, c.p.store, rec); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeRunDir removes a run directory, but only one whose marker file names runID.
func removeRunDir(dir, runID string) error {
	data, err := os.ReadFile(filepath.Join(dir, runMarkerFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat(dir); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: no %s marker; not a pgdrill run directory, left alone", dir, runMarkerFile)
	}
	if err != nil {
		return fmt.Errorf("read run marker of %s: %w", dir, err)
	}
	if string(data) != runID {
		return fmt.Errorf("remove %s: it belongs to run %q, not %q; left alone", dir, data, runID)
	}
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
