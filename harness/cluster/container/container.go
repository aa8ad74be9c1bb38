// Package container is the container provider: every server of a cluster is a container of one
// Postgres image (pgdrill's own, harness/image, or any image keeping the official image's
// contract) on a private Docker network, started through testcontainers-go's postgres module.
// It is the only package that imports testcontainers-go.
//
// Nothing is left behind without Ryuk, which cannot be pulled here: every container, network and
// volume carries the run's label (LabelRun), and Destroy, `pgdrill down` and the next start
// sweep by it (Sweep), touching nothing without it.
//
// This first increment runs the catalog and the shards and their lifecycle (stop, start, kill,
// pause, lose); base backups, WAL archives, sidecars and standbys come next, and until then the
// provider says so instead of pretending.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	mcontainer "github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/image"
)

// Labels every object of a run carries: the run, and for a container the server it is.
const (
	LabelRun    = "dev.pgdrill.run"
	LabelServer = "dev.pgdrill.server"
)

// ErrNotYet is what the provider answers for what it cannot do yet (backups, sidecars,
// standbys): said plainly, so that a drill refuses rather than pretends.
var ErrNotYet = errors.New("not supported by the container provider yet")

// startTimeout bounds a container's start: the image is local, so a start that takes longer is
// broken, not slow (a missing image would otherwise be pulled, with retries, for minutes).
const startTimeout = 2 * time.Minute

// Provider starts clusters of containers.
type Provider struct {
	image string
	log   *slog.Logger
}

// Option configures a Provider.
type Option func(*Provider)

// WithImage runs image instead of pgdrill's own (image.DefaultTag): any image keeping the
// official postgres image's contract.
func WithImage(ref string) Option { return func(p *Provider) { p.image = ref } }

// WithLogger logs to l.
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// New returns a provider. testcontainers-go's reaper (Ryuk) is turned off before the library
// reads its configuration: it cannot be pulled, and Sweep does its work.
//
// The servers' ports are published on loopback, and that is where the provider connects: were
// pgdrill itself in a container (a CI job's), testcontainers-go would otherwise dial the
// container's default gateway instead.
func New(opts ...Option) *Provider {
	_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	p := &Provider{image: image.DefaultTag, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(p)
	}
	tclog.SetDefault(debugLog{p.log}) // the library's chatter goes to pgdrill's log, at debug level
	return p
}

// debugLog passes testcontainers-go's log lines to a structured log at debug level.
type debugLog struct{ l *slog.Logger }

// Printf implements testcontainers-go's log.Logger.
func (d debugLog) Printf(format string, v ...any) {
	d.l.Debug(fmt.Sprintf(format, v...), "from", "testcontainers")
}

// Name implements cluster.Provider.
func (p *Provider) Name() string { return "container" }

// Create starts the catalog and spec.Shards shards, in parallel, each a container on the run's
// own network, and marks each one's database. On error the partial cluster is returned for the
// caller to Destroy.
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	switch {
	case spec.Engine == cluster.EnginePgBackRest, spec.SidecarDisks:
		return nil, fmt.Errorf("create cluster: WAL archives and backups are %w", ErrNotYet)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("create cluster: make run id: %w", err)
	}
	c := &containers{p: p, runID: "r" + hex.EncodeToString(b), spec: spec}
	nw, err := network.New(ctx, network.WithLabels(c.labels("")))
	if err != nil {
		return c, fmt.Errorf("create cluster %s: network: %w", c.runID, err)
	}
	c.network = nw
	c.catalog = &server{c: c, name: "catalog", role: cluster.RoleCatalog, index: -1}
	for i := range spec.Shards {
		c.shards = append(c.shards, &server{c: c, name: "shard-" + strconv.Itoa(i), role: cluster.RoleShard, index: i})
	}
	all := append([]*server{c.catalog}, c.shards...)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Go(func() { errs[i] = s.run(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("create cluster %s: %w", c.runID, err)
	}
	p.log.Info("cluster up", "run_id", c.runID, "shards", spec.Shards, "image", p.image)
	return c, nil
}

// containers is one cluster.
type containers struct {
	p       *Provider
	runID   string
	spec    cluster.Spec
	network *testcontainers.DockerNetwork
	catalog *server
	shards  []*server
}

// labels are the labels of the run's objects; of server name's container when name is set.
func (c *containers) labels(name string) map[string]string {
	l := map[string]string{LabelRun: c.runID}
	if name != "" {
		l[LabelServer] = name
	}
	return l
}

func (c *containers) RunID() string           { return c.runID }
func (c *containers) Provider() string        { return c.p.Name() }
func (c *containers) Catalog() cluster.Server { return c.catalog }

func (c *containers) Shards() []cluster.Server {
	out := make([]cluster.Server, len(c.shards))
	for i, s := range c.shards {
		out[i] = s
	}
	return out
}

// PrepareSidecar implements cluster.Cluster: not yet.
func (c *containers) PrepareSidecar(context.Context, cluster.SidecarSpec) (cluster.Server, error) {
	return nil, fmt.Errorf("prepare sidecar: sidecars are %w", ErrNotYet)
}

// StartStandby implements cluster.Cluster: not yet.
func (c *containers) StartStandby(context.Context, cluster.Server, cluster.StandbySpec) (cluster.Standby, error) {
	return nil, fmt.Errorf("start standby: standbys are %w", ErrNotYet)
}

// ReplaceData implements cluster.Cluster: not yet.
func (c *containers) ReplaceData(context.Context, cluster.Server, cluster.Server) error {
	return fmt.Errorf("replace data: %w", ErrNotYet)
}

// Detach implements cluster.Cluster: the containers outlive this process until Destroy or a
// sweep.
func (c *containers) Detach() error { return nil }

// Destroy removes every container, network and volume of the run.
func (c *containers) Destroy(ctx context.Context) error {
	_, err := Sweep(context.WithoutCancel(ctx), c.runID)
	return err
}

// password is every server's superuser password: the servers listen on loopback only.
const password = "pgdrill"

// server is one container.
type server struct {
	c     *containers
	name  string
	role  cluster.Role
	index int

	mu     sync.Mutex
	pg     *postgres.PostgresContainer
	port   int // on 127.0.0.1, kept across restarts
	paused bool
}

// run starts the server's container and marks its database.
func (s *server) run(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	settings := []string{"postgres", "-c", "wal_level=replica", "-c", "max_wal_senders=10", "-c", "track_commit_timestamp=on"}
	if !s.c.spec.Durable {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for k, v := range s.c.spec.Settings {
		settings = append(settings, "-c", k+"="+v)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	pg, err := postgres.Run(ctx, s.c.p.image,
		postgres.WithDatabase(cluster.DefaultDatabase), postgres.WithUsername("postgres"), postgres.WithPassword(password),
		postgres.BasicWaitStrategies(),
		testcontainers.WithCmd(settings...),
		testcontainers.WithLabels(s.c.labels(s.name)),
		network.WithNetwork([]string{s.name}, s.c.network),
		testcontainers.WithHostConfigModifier(func(hc *mcontainer.HostConfig) {
			hc.PortBindings = mnetwork.PortMap{mnetwork.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}}
			hc.ShmSize = 256 << 20 // Docker's 64 MB is too little for parallel queries
		}))
	s.mu.Lock()
	s.pg, s.port = pg, port
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	if err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error { return cluster.Mark(ctx, conn, s.c.runID, s.role) }); err != nil {
		return fmt.Errorf("mark %s: %w", s.name, err)
	}
	return nil
}

// freePort returns a loopback port nobody listens on now: the server's for its whole life, so
// that its DSN survives restarts (Docker would map another one each start).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) Name() string       { return s.name }
func (s *server) Role() cluster.Role { return s.role }
func (s *server) DSN() string        { return s.DSNFor(cluster.DefaultDatabase) }

// DSNFor implements cluster.Server.
func (s *server) DSNFor(database string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", password, s.port, database)
}

// Info implements cluster.Server.
func (s *server) Info() cluster.ServerInfo {
	s.mu.Lock()
	paused := s.paused
	s.mu.Unlock()
	return cluster.ServerInfo{Name: s.name, Role: s.role, Index: s.index, Host: "127.0.0.1", Port: s.port, DSN: s.DSN(),
		Version: "15", DataDir: "/var/lib/postgresql/data", Account: "postgres", Paused: paused}
}

// CreateDatabase implements cluster.Server.
func (s *server) CreateDatabase(ctx context.Context, name string) (string, error) {
	return cluster.CreateMarkedDatabase(ctx, s, s.c.runID, name)
}

// container returns the server's container, or an error once it is gone.
func (s *server) container() (*postgres.PostgresContainer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg == nil {
		return nil, fmt.Errorf("%s: its container is gone", s.name)
	}
	return s.pg, nil
}

// Stop stops the server cleanly (SIGINT: a fast shutdown).
func (s *server) Stop(ctx context.Context) error {
	pg, err := s.container()
	if err != nil {
		return err
	}
	timeout := 30 * time.Second
	if err := pg.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop %s: %w", s.name, err)
	}
	return nil
}

// Start starts a stopped or killed server on its data and waits until it answers.
func (s *server) Start(ctx context.Context) error {
	pg, err := s.container()
	if err != nil {
		return err
	}
	if err := pg.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	return s.awaitReady(ctx)
}

// awaitReady waits until the server takes connections: a restarted container logs "ready" once,
// which the start's log check counted already.
func (s *server) awaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error { return conn.Ping(ctx) })
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start %s: it never answered: %w", s.name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill stops the server with SIGKILL, as a crash would: its data stays, and Start recovers it.
func (s *server) Kill(ctx context.Context) error {
	return s.engine(ctx, "kill", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"})
		return err
	})
}

// Lose removes the server's container and its data, as the loss of its disk would.
func (s *server) Lose(ctx context.Context) error {
	err := s.engine(ctx, "lose", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.pg = nil
		s.mu.Unlock()
	}
	return err
}

// Pause freezes every process of the server's container.
func (s *server) Pause(ctx context.Context) error {
	err := s.engine(ctx, "pause", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.paused = true
		s.mu.Unlock()
	}
	return err
}

// Resume thaws a paused server.
func (s *server) Resume(ctx context.Context) error {
	err := s.engine(ctx, "resume", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.paused = false
		s.mu.Unlock()
	}
	return err
}

// engine runs do against the server's container with a client of the engine; verb names it for
// errors.
func (s *server) engine(ctx context.Context, verb string, do func(cli *testcontainers.DockerClient, id string) error) error {
	pg, err := s.container()
	if err != nil {
		return err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, s.name, err)
	}
	defer cli.Close()
	if err := do(cli, pg.GetContainerID()); err != nil {
		return fmt.Errorf("%s %s: %w", verb, s.name, err)
	}
	return nil
}

// BaseBackup implements cluster.Server: not yet.
func (s *server) BaseBackup(context.Context, string) (cluster.Backup, error) {
	return cluster.Backup{}, fmt.Errorf("base backup of %s: %w", s.name, ErrNotYet)
}

// VerifyBackup implements cluster.Server: not yet.
func (s *server) VerifyBackup(context.Context, cluster.Backup) error {
	return fmt.Errorf("verify backup of %s: %w", s.name, ErrNotYet)
}

// ArchivedWAL implements cluster.Server: no archive yet.
func (s *server) ArchivedWAL(context.Context) ([]string, error) { return nil, nil }

// VerifyWAL implements cluster.Server: not yet.
func (s *server) VerifyWAL(context.Context, string, string) error {
	return fmt.Errorf("verify WAL of %s: %w", s.name, ErrNotYet)
}

// DumpWAL implements cluster.Server: not yet.
func (s *server) DumpWAL(context.Context, string, string, io.Writer) error {
	return fmt.Errorf("dump WAL of %s: %w", s.name, ErrNotYet)
}

// Sweep removes every container, network and volume labelled with runID (every pgdrill run's,
// when runID is empty) and returns how many objects it removed. It touches nothing without the
// label: what pgdrill did not start stays.
func Sweep(ctx context.Context, runID string) (int, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep run %s: %w", runID, err)
	}
	defer cli.Close()
	label := LabelRun
	if runID != "" {
		label += "=" + runID
	}
	f := make(client.Filters).Add("label", label)
	n := 0
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return n, fmt.Errorf("sweep run %s: list containers: %w", runID, err)
	}
	for _, c := range cs.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
			continue
		}
		n++
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return n, fmt.Errorf("sweep run %s: list networks: %w", runID, err)
	}
	for _, nw := range ns.Items {
		if _, err := cli.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
			continue
		}
		n++
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return n, fmt.Errorf("sweep run %s: list volumes: %w", runID, err)
	}
	for _, v := range vs.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("sweep run %s: %w", runID, err)
	}
	return n, nil
}
