package drill

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/cluster/existing"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/locate"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/runstate"
	"github.com/pgdrill/pgdrill/scenarios"
)

// Host is where drills run on this machine: the Postgres binaries, the account servers run as,
// the work root their files go under, and the records of every run pgdrill started there. It is
// the one way in for the command line: every flow (run, up, game days, restore, down, doctor)
// goes through it, so none of them assembles providers, records or datasets its own way.
type Host struct {
	opts HostOptions
	log  *slog.Logger
	// The providers are built on first use: `pgdrill down` and `ls` need no Postgres binaries,
	// and only a container run needs a container engine.
	local      *local.Provider
	containers *container.Provider
	existing   *existing.Provider
}

// HostOptions say where drills run: what pgdrill's global flags set. Empty fields take the
// local provider's defaults.
type HostOptions struct {
	// BinDir holds the Postgres server binaries.
	BinDir string
	// WorkRoot is where servers' data directories, backups and sidecars go.
	WorkRoot string
	// StateDir holds the records of live runs.
	StateDir string
	// RunUser is the unprivileged account servers run as when pgdrill runs as root.
	RunUser string
	// Provider is where clusters run: ProviderLocal, ProviderContainer or ProviderExisting.
	// Empty: where the scenario says, else local.
	Provider string
	// Servers are the servers ProviderExisting drills, by connection URLs.
	Servers ExistingServers
	// Image is the Postgres image the container provider runs; empty: pgdrill's own
	// (`pgdrill image build`).
	Image string
	Log   *slog.Logger
}

// The providers a host can start clusters with.
const (
	ProviderLocal     = local.ProviderName
	ProviderContainer = container.ProviderName
	ProviderExisting  = existing.Name
)

// ExistingServers names the servers ProviderExisting drills (existing.Servers).
type ExistingServers = existing.Servers

// Provider starts clusters somewhere (cluster.Provider): what a drill's Config names.
type Provider = cluster.Provider

// Providers lists the providers, default first.
func Providers() []string { return []string{ProviderLocal, ProviderContainer, ProviderExisting} }

// DefaultRunUser is the account servers run as when pgdrill runs as root and none is named.
const DefaultRunUser = local.DefaultRunUser

// NewHost returns the host the options describe; nothing is checked or started yet.
func NewHost(opts HostOptions) *Host {
	h := &Host{opts: opts, log: opts.Log}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// Provider returns the provider clusters start with: the one the options name, else local. It is
// built the first time, which finds what it needs (the Postgres binaries, the container engine)
// and reaps leftovers of killed runs; its error is the environment's, with the fix in the
// message.
func (h *Host) Provider(ctx context.Context) (cluster.Provider, error) {
	return h.providerNamed(ctx, cmp.Or(h.opts.Provider, ProviderLocal))
}

// ScenarioProvider returns the provider a scenario's drill runs on: the one the options name,
// else the scenario's own, else local. A scenario that servers pgdrill did not start cannot
// undergo (a lost shard, say) is refused on ProviderExisting, saying why, as is one whose shard
// count is not the number of servers named.
func (h *Host) ScenarioProvider(ctx context.Context, sc *scenarios.Scenario) (cluster.Provider, error) {
	name := cmp.Or(h.opts.Provider, string(sc.Spec.Cluster.Provider), ProviderLocal)
	if name == ProviderExisting {
		if err := h.serversNamed(); err != nil {
			return nil, err
		}
		if why := sc.NeedsOwnServers(); len(why) > 0 {
			return nil, exitcode.With(fmt.Errorf("scenario %s cannot run on existing servers, which pgdrill never stops or destroys: %s",
				sc.Metadata.ID, strings.Join(why, "; ")), exitcode.InvalidInput)
		}
		if n := len(h.opts.Servers.Shards); n != sc.Spec.Cluster.Shards {
			return nil, exitcode.With(fmt.Errorf("scenario %s has %d shards (spec.cluster.shards) but %d shard servers are named (--shard-url): name one per shard",
				sc.Metadata.ID, sc.Spec.Cluster.Shards, n), exitcode.InvalidInput)
		}
	}
	return h.providerNamed(ctx, name)
}

// providerNamed returns the provider of that name, built on first use.
func (h *Host) providerNamed(ctx context.Context, name string) (cluster.Provider, error) {
	switch name {
	case ProviderLocal:
		return h.localProvider(ctx)
	case ProviderContainer:
		return h.containerProvider(ctx)
	case ProviderExisting:
		return h.existingProvider(ctx)
	}
	return nil, exitcode.With(fmt.Errorf("provider %q is not one of %s", name, strings.Join(Providers(), ", ")), exitcode.InvalidInput)
}

// containerProvider returns the container provider, recording its runs with the local ones and
// reaping those a killed pgdrill left.
func (h *Host) containerProvider(ctx context.Context) (*container.Provider, error) {
	if h.containers != nil {
		return h.containers, nil
	}
	store, err := h.store()
	if err != nil {
		return nil, err
	}
	opts := []container.Option{container.WithLogger(h.log), container.WithStore(store)}
	if h.opts.Image != "" {
		opts = append(opts, container.WithImage(h.opts.Image))
	}
	h.containers = container.New(opts...)
	if _, err := container.ReapOrphans(ctx, store, h.log); err != nil {
		h.log.Warn("could not reap leftovers of killed container runs", "err", err)
	}
	return h.containers, nil
}

// existingProvider returns the provider of the servers the options name, which runs its
// sidecars, standbys and WAL receivers through the local provider.
func (h *Host) existingProvider(ctx context.Context) (*existing.Provider, error) {
	if h.existing != nil {
		return h.existing, nil
	}
	if err := h.serversNamed(); err != nil {
		return nil, err
	}
	lp, err := h.localProvider(ctx)
	if err != nil {
		return nil, err
	}
	h.existing = existing.New(lp, h.opts.Servers)
	return h.existing, nil
}

// serversNamed says what is missing when the options name no servers for ProviderExisting.
func (h *Host) serversNamed() error {
	if h.opts.Servers.Catalog == "" || len(h.opts.Servers.Shards) == 0 {
		return exitcode.With(errors.New("provider existing drills servers you name: give --catalog-url URL and one --shard-url URL per shard"),
			exitcode.InvalidInput)
	}
	return nil
}

// localProvider is Provider, as the local provider it is.
func (h *Host) localProvider(ctx context.Context) (*local.Provider, error) {
	if h.local != nil {
		return h.local, nil
	}
	opts := []local.Option{local.WithLogger(h.log), local.WithRunUser(h.opts.RunUser)}
	if h.opts.BinDir != "" {
		opts = append(opts, local.WithBinDir(h.opts.BinDir))
	}
	if h.opts.WorkRoot != "" {
		opts = append(opts, local.WithWorkRoot(h.opts.WorkRoot))
	}
	if h.opts.StateDir != "" {
		opts = append(opts, local.WithStateDir(h.opts.StateDir))
	}
	p, err := local.New(ctx, opts...)
	if err != nil {
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
	h.local = p
	return p, nil
}

// store opens the run records.
func (h *Host) store() (*runstate.Store, error) {
	dir := h.opts.StateDir
	if dir == "" {
		var err error
		if dir, err = runstate.DefaultDir(); err != nil {
			return nil, exitcode.With(err, exitcode.HarnessError)
		}
	}
	s, err := runstate.Open(dir)
	return s, exitcode.With(err, exitcode.HarnessError)
}

// workRoot is the work root the host's servers go under.
func (h *Host) workRoot() string {
	if h.opts.WorkRoot != "" {
		return h.opts.WorkRoot
	}
	return local.DefaultWorkRoot()
}

// RunbookEnv is the environment a drill's runbook gets on top of pgdrill's own, so that the
// `pgdrill` commands it runs (`pgdrill restore`) are this very pgdrill, first on PATH, and reach
// this drill's servers: its state dir, work root and Postgres binaries, as flags chose them.
func (h *Host) RunbookEnv() ([]string, error) {
	store, err := h.store()
	if err != nil {
		return nil, err
	}
	env := []string{"PGDRILL_STATE_DIR=" + store.Dir(), "PGDRILL_WORK_ROOT=" + h.workRoot()}
	if h.opts.BinDir != "" {
		env = append(env, "PGDRILL_PG_BIN="+h.opts.BinDir)
	}
	if self, err := os.Executable(); err == nil && filepath.Base(self) == "pgdrill" {
		env = append(env, "PATH="+filepath.Dir(self)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return env, nil
}

// MaxShards is the most shard servers a cluster can have.
const MaxShards = cluster.MaxShards

// UpSpec is a throwaway cluster to start and leave running (`pgdrill up`).
type UpSpec struct {
	Shards  int
	Durable bool
	// Settings are extra server settings for every server.
	Settings map[string]string
	// Dataset fills the cluster with synthetic tenants; nil leaves it empty.
	Dataset *DatasetSpec
	// Detach leaves the cluster running after the process ends, until `pgdrill down`.
	Detach bool
	// OnFill, when set, is told the fill's progress.
	OnFill func(FillProgress)
}

// DatasetSpec shapes the synthetic tenants a cluster is filled with.
type DatasetSpec struct {
	Tenants int
	Rows    int64
	// Layout is shared, schema or database; empty is the default.
	Layout string
	// Seed drives every random choice; 0 picks one, which Up's result says.
	Seed uint64
}

// DefaultLayout is the tenancy layout a cluster gets when none is named.
const DefaultLayout = string(fixtures.DefaultLayout)

// FillProgress is how far a fill has got; FillStage names its stages.
type (
	FillProgress = fixtures.Progress
	FillStage    = fixtures.Stage
)

// FillStageLoad is the fill's first stage: the rows being loaded.
const FillStageLoad = fixtures.StageLoad

// ClusterInfo is what `pgdrill up` prints of a cluster: its servers, and the dataset it holds.
type ClusterInfo struct {
	cluster.Description
	Dataset *fixtures.PlanSpec `json:"dataset,omitempty"`
}

// Info describes the game day's cluster as `pgdrill up` prints it.
func (g *GameDay) Info() ClusterInfo { return ClusterInfo{Description: cluster.Describe(g.r.c)} }

// UpCluster is a cluster Up started; its caller destroys it (or detached it).
type UpCluster struct {
	c    cluster.Cluster
	Info ClusterInfo
}

// RunID is the cluster's run id.
func (u *UpCluster) RunID() string { return u.c.RunID() }

// Destroy stops the cluster's servers and removes its files, within a bounded time even when ctx
// has ended.
func (u *UpCluster) Destroy(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	if err := u.c.Destroy(tctx); err != nil {
		return exitcode.With(fmt.Errorf("tear down %s (retry with `pgdrill down %s`): %w", u.c.RunID(), u.c.RunID(), err), exitcode.HarnessError)
	}
	return nil
}

// teardownTimeout bounds a teardown, however the run ended.
const teardownTimeout = 2 * time.Minute

// plan validates the spec into the cluster and dataset it asks for; its errors are invalid
// input, found before anything starts.
func (s UpSpec) plan() (cluster.Spec, *fixtures.Plan, error) {
	spec := cluster.Spec{Shards: s.Shards, Durable: s.Durable, Settings: s.Settings}
	if err := spec.Validate(); err != nil {
		return spec, nil, exitcode.With(err, exitcode.InvalidInput)
	}
	d := s.Dataset
	if d == nil || d.Tenants == 0 {
		return spec, nil, nil
	}
	layout, err := fixtures.ParseLayout(d.Layout)
	if err != nil {
		return spec, nil, exitcode.With(err, exitcode.InvalidInput)
	}
	seed := d.Seed
	for seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:]) >> 1 // positive as an int64 too, for SQL and JSON readers
	}
	plan, err := fixtures.NewPlan(fixtures.PlanSpec{Seed: seed, Tenants: d.Tenants, Rows: d.Rows, Shards: s.Shards, Layout: layout}, fixtures.Builtin())
	return spec, plan, exitcode.With(err, exitcode.InvalidInput)
}

// Up starts a cluster, fills it and, when asked, detaches it. Whatever it started is torn down
// again when it fails.
func (h *Host) Up(ctx context.Context, s UpSpec) (*UpCluster, error) {
	spec, plan, err := s.plan()
	if err != nil {
		return nil, err
	}
	p, err := h.Provider(ctx)
	if err != nil {
		return nil, err
	}
	c, err := p.Create(ctx, spec)
	if c == nil {
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
	u := &UpCluster{c: c, Info: ClusterInfo{Description: cluster.Describe(c)}}
	if err == nil && plan != nil {
		u.Info.Dataset = &plan.Spec
		err = h.fill(ctx, c, plan, s.OnFill)
	}
	if err == nil && s.Detach {
		err = c.Detach()
	}
	if err != nil {
		if derr := u.Destroy(ctx); derr != nil {
			h.log.Error("teardown failed", "run_id", c.RunID(), "err", derr)
		}
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
	return u, nil
}

// fill loads the plan into the cluster, telling onFill how far it got.
func (h *Host) fill(ctx context.Context, c cluster.Cluster, plan *fixtures.Plan, onFill func(FillProgress)) error {
	h.log.Info("filling", "tenants", plan.Spec.Tenants, "rows", plan.Spec.Rows, "layout", plan.Spec.Layout, "seed", plan.Spec.Seed)
	res, err := fixtures.Fill(ctx, plan, dataset.Target(c), fixtures.FillOptions{OnProgress: onFill})
	if err != nil {
		return fmt.Errorf("fill cluster %s: %w", c.RunID(), err)
	}
	h.log.Info("filled", "rows", res.Rows, "elapsed", res.Elapsed.Round(time.Millisecond),
		"rows_per_s", int(float64(res.Rows)/res.Elapsed.Seconds()))
	return nil
}

// RestoreResult is what a restore did, as a strategy reports it of itself.
type RestoreResult = restore.Result

// IncidentFileEnv names the environment variable a drill hands its runbook the incident file in:
// `pgdrill restore` inside a runbook restores the incident that file describes.
const IncidentFileEnv = restore.IncidentFileEnv

// JournalEnv names the restore journal a drill hands its runbook's `pgdrill restore`.
const JournalEnv = restore.JournalEnv

// RestoreFromIncidentFile runs a built-in strategy against the incident the incident file at path
// describes, from this process, attached to the incident's run: what a runbook's `pgdrill
// restore` does. The strategy must work from the file alone; its sidecars are removed when it
// ends, and the run's own servers are never stopped. With a journal (a path; "" for none), the
// restore records how far it got there, and restores only what an earlier run with the same
// journal, killed before it ended, left undone (restore.Journal).
func (h *Host) RestoreFromIncidentFile(ctx context.Context, strategy, path, journal string) (res RestoreResult, err error) {
	s, err := builtinStrategy(strategy, func(s scenarios.StrategyInfo) bool { return s.FromIncidentFile },
		"needs what only the drill that protected the cluster has (standbys, exports); from an incident file,")
	if err != nil {
		return res, err
	}
	f, c, done, err := h.attachIncident(ctx, path, "restore")
	if err != nil {
		return res, err
	}
	defer done()
	env := restore.Env{Cluster: c, Protection: f.Protection(), Log: h.log}
	if journal != "" {
		j, err := restore.OpenJournal(journal, f.RunID)
		if err != nil {
			return res, exitcode.With(err, exitcode.InvalidInput)
		}
		defer func() {
			if cerr := j.Close(); cerr != nil {
				h.log.Warn("could not journal every phase of the restore", "err", cerr)
			}
		}()
		env.Watch, env.Journal = j, j
	}
	rec := f.Record()
	if rec.Ticket != nil && len(rec.Harms) == 0 {
		// A blind drill's file: the harm is found first, from the ticket, as `pgdrill locate` would.
		found, err := locate.Find(ctx, c, f.Protection().Backups, rec.Model, *rec.Ticket)
		if err != nil {
			return res, exitcode.With(fmt.Errorf("locate the harm from the ticket: %w", err), exitcode.HarnessError)
		}
		rec = locate.Record(rec, found)
		h.log.Info("located the harm from the ticket", "victims", len(rec.Affected), "harms", len(rec.Harms))
		if len(rec.Harms) == 0 {
			return res, exitcode.With(fmt.Errorf("locate the harm: nothing harmful found from tenants %v since %s",
				rec.Ticket.Tenants, rec.Ticket.From.Format(time.TimeOnly)), exitcode.ObjectivesMissed)
		}
	}
	res, err = s.Restore(ctx, env, rec)
	return res, exitcode.With(err, exitcode.ObjectivesMissed)
}

// builtinStrategy returns the built-in strategy named, refusing as invalid input one the registry
// does not list as usable here: why says why not, ending where the list of those that are follows.
func builtinStrategy(name string, usable func(scenarios.StrategyInfo) bool, why string) (restore.Strategy, error) {
	info, err := scenarios.LookupStrategy(name)
	if err == nil && !usable(info) {
		err = fmt.Errorf("%s %s use one of %s", name, why, strings.Join(scenarios.StrategiesWhere(usable), ", "))
	}
	if err != nil {
		return nil, exitcode.With(err, exitcode.InvalidInput)
	}
	s, err := restore.Lookup(name)
	return s, exitcode.With(err, exitcode.InvalidInput)
}

// gameDaysDir holds one directory per running game day, under the state dir.
func (h *Host) gameDaysDir() (string, error) {
	store, err := h.store()
	if err != nil {
		return "", err
	}
	return gameDaysIn(store), nil
}

// gameDaysIn is the directory of the running game days in store's state dir.
func gameDaysIn(store *runstate.Store) string { return filepath.Join(store.Dir(), "gamedays") }

// ServeGameDay answers the team's commands (incident, restore, score) for the game day until ctx
// ends (Ctrl-C, or the SIGTERM `pgdrill down` sends), then removes the game day's directory.
// ready is called once the commands can reach it.
func (h *Host) ServeGameDay(ctx context.Context, g *GameDay, ready func()) error {
	root, err := h.gameDaysDir()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, g.Cluster().RunID())
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			h.log.Warn("could not remove the game day's files", "err", err)
		}
	}()
	served := make(chan error, 1)
	go func() { served <- g.serve(ctx, dir, h.log) }()
	ready()
	select {
	case <-ctx.Done():
		<-served
		return nil
	case err := <-served:
		return exitcode.With(err, exitcode.HarnessError)
	}
}

// DialGameDay reaches the game day of run id, or, with id "", the only one running.
func (h *Host) DialGameDay(id string) (*GameDayClient, error) {
	root, err := h.gameDaysDir()
	if err != nil {
		return nil, err
	}
	if id != "" {
		dir := filepath.Join(root, id)
		if _, err := os.Stat(dir); err != nil {
			return nil, exitcode.With(fmt.Errorf("no game day %q (start one with `pgdrill up --scenario ...`)", id), exitcode.InvalidInput)
		}
		return dialGameDay(dir)
	}
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, exitcode.With(fmt.Errorf("list game days: %w", err), exitcode.HarnessError)
	}
	switch len(entries) {
	case 0:
		return nil, exitcode.With(errors.New("no game day is running; start one with `pgdrill up --scenario wrong-id-deletion`"), exitcode.InvalidInput)
	case 1:
		return dialGameDay(filepath.Join(root, entries[0].Name()))
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return nil, exitcode.With(fmt.Errorf("%d game days are running (%s): name one", len(entries), strings.Join(names, ", ")), exitcode.InvalidInput)
}
