package container

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	mcontainer "github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// password is every server's superuser password. The ports are published on loopback, or on a
// remote engine's own address, which should be a private one: the servers are throwaway.
const password = "pgdrill"

// server is one Postgres server of the run: a container whose data directory is in the run's
// volume. The container can be replaced (new settings, a lost server given back its data) while
// the server keeps its name, its address on the network and its published port.
type server struct {
	c        *containers
	name     string
	role     cluster.Role
	index    int
	archive  string // its WAL archive in the volume; "" for none
	upstream *server
	// recovery holds the recovery settings of a sidecar until it promoted, and of a standby held
	// at a target until it is promoted.
	recovery   map[string]string
	applyDelay time.Duration
	// foreign servers belong to the run another process owns (Attach): reached, never stopped,
	// started or signalled.
	foreign bool

	mu     sync.Mutex
	ctr    testcontainers.Container
	port   int           // on the engine host, kept for the server's life
	exited chan struct{} // closed when the container's current run ends
	exit   error         // why it ended, once exited is closed
	runs   int           // how often its container was started: a new run each time
	paused bool
}

// newServer returns the cluster's server name, with a WAL archive of its own when archive.
func (c *containers) newServer(name string, role cluster.Role, index int, archive bool) *server {
	s := &server{c: c, name: name, role: role, index: index}
	switch {
	case archive && s.pgBackRest():
		s.archive = pgBackRestRepo + "/archive/" + name
	case archive:
		s.archive = walRoot + "/" + name
	}
	return s
}

// dataDir is the server's data directory, in the run's volume.
func (s *server) dataDir() string { return dataRoot + "/" + s.name }

// settings are the server's settings, given on its command line so that they outrank any file
// of its data directory (which a sidecar copies from its shard's backup).
func (s *server) settings() map[string]string {
	set := map[string]string{
		"wal_level":              "replica",
		"max_wal_senders":        "10",
		"log_line_prefix":        "%m [%p] ",
		"archive_mode":           "off",
		"track_commit_timestamp": "on",
		"hot_standby":            "on",
	}
	switch {
	case s.pgBackRest():
		set["archive_mode"] = "on"
		set["archive_command"] = s.pgBackRestCommand("archive-push", "%p")
		set["unix_socket_directories"] = "/var/run/postgresql," + s.socketDir()
	case s.archive != "":
		set["archive_mode"] = "on"
		// Copied aside, then renamed: a server killed mid-copy (a lost shard) must not leave a
		// truncated segment in its archive, which a later recovery would fail on.
		set["archive_command"] = fmt.Sprintf("test ! -f %[1]s/%%f && cp %%p %[1]s/%%f.tmp && mv %[1]s/%%f.tmp %[1]s/%%f", s.archive)
	}
	if s.role == cluster.RoleStandby {
		set["primary_conninfo"] = fmt.Sprintf("host=%s port=5432 user=postgres password=%s application_name=%s", s.upstream.name, password, s.name)
		set["recovery_min_apply_delay"] = strconv.FormatInt(s.applyDelay.Milliseconds(), 10)
		if s.upstream.archive != "" {
			set["restore_command"] = s.upstream.restoreCommand(s)
		}
	}
	if !s.c.spec.Durable {
		set["fsync"] = "off"
		set["synchronous_commit"] = "off"
		set["full_page_writes"] = "off"
	}
	maps.Copy(set, s.c.spec.Settings)
	maps.Copy(set, s.recovery)
	return set
}

// command is the container's command: postgres with the server's settings.
func (s *server) command() []string {
	set := s.settings()
	cmd := []string{"postgres"}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		cmd = append(cmd, "-c", k+"="+set[k])
	}
	return cmd
}

// restoreCommand fetches WAL segments of s from its archive for the server into (a sidecar or a
// standby of s), which pgBackRest wants to know by its data directory.
func (s *server) restoreCommand(into *server) string {
	if s.pgBackRest() {
		return s.pgBackRestCommand("--pg1-path="+into.dataDir(), "archive-get", "%f", `"%p"`)
	}
	return fmt.Sprintf("cp %s/%%f %%p", s.archive)
}

// boot starts a catalog or shard container for the first time: the image initializes its data
// directory (the official entrypoint's contract), and the database is marked.
func (s *server) boot(ctx context.Context) error {
	if err := s.create(ctx, postgres.BasicWaitStrategies()); err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	if s.pgBackRest() {
		if _, err := s.runPgBackRest(ctx, "stanza-create"); err != nil {
			return err
		}
	}
	if err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error { return cluster.Mark(ctx, conn, s.c.runID, s.role) }); err != nil {
		return fmt.Errorf("mark %s: %w", s.name, err)
	}
	return nil
}

// create makes the server's container, not started, replacing any it had: on the run's
// network under the server's name, with the run's volume, publishing its port on loopback.
// wait is what its first start waits for besides a connection (an initialization).
func (s *server) create(ctx context.Context, wait ...testcontainers.ContainerCustomizer) error {
	if err := s.removeContainer(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	if port == 0 {
		var err error
		if port, err = s.c.p.freePort(); err != nil {
			return fmt.Errorf("start %s: %w", s.name, err)
		}
	}
	opts := []testcontainers.ContainerCustomizer{
		postgres.WithDatabase(cluster.DefaultDatabase), postgres.WithUsername("postgres"), postgres.WithPassword(password),
		testcontainers.WithEnv(s.env()),
		testcontainers.WithCmd(s.command()...),
		testcontainers.WithLabels(s.c.labels(s.name)),
		testcontainers.WithMounts(testcontainers.VolumeMount(s.c.volume, mountPoint)),
		network.WithNetworkName([]string{s.name}, s.c.network),
		testcontainers.WithHostConfigModifier(func(hc *mcontainer.HostConfig) {
			hc.PortBindings = mnetwork.PortMap{mnetwork.MustParsePort("5432/tcp"): {{HostIP: s.c.p.host, HostPort: strconv.Itoa(port)}}}
			hc.ShmSize = 256 << 20 // Docker's 64 MB is too little for parallel queries
		}),
		testcontainers.WithNoStart(),
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	pg, err := postgres.Run(cctx, s.c.image, append(opts, wait...)...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.port = port
	if pg != nil {
		s.ctr = pg.Container
	}
	if err != nil {
		return fmt.Errorf("create container of %s: %w", s.name, err)
	}
	return nil
}

// env is the container's environment: where its data directory is, and, for a throwaway run,
// an initdb that does not sync what it writes (the official contract's POSTGRES_INITDB_ARGS).
func (s *server) env() map[string]string {
	env := map[string]string{"PGDATA": s.dataDir()}
	if !s.c.spec.Durable {
		env["POSTGRES_INITDB_ARGS"] = "--no-sync"
	}
	return env
}

// freePort returns a port for a server on the engine host, the server's for its whole life so
// that its DSN survives restarts and replacements (Docker would map another one each start): on
// loopback, one nobody listens on now; on another machine, which pgdrill cannot ask, one drawn
// at random from 20000-59999 (the engine refuses a start on a port taken, saying so).
func (p *Provider) freePort() (int, error) {
	if !p.host.IsLoopback() {
		n, err := rand.Int(rand.Reader, big.NewInt(40000))
		if err != nil {
			return 0, fmt.Errorf("draw a port: %w", err)
		}
		return 20000 + int(n.Int64()), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeContainer removes the server's container, running or not, leaving its data in the volume.
func (s *server) removeContainer(ctx context.Context) error {
	s.mu.Lock()
	ctr := s.ctr
	s.ctr = nil
	s.mu.Unlock()
	if ctr == nil {
		return nil
	}
	if _, err := s.c.cli.ContainerRemove(ctx, ctr.GetContainerID(), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		return fmt.Errorf("remove container of %s: %w", s.name, err)
	}
	return nil
}

func (s *server) Name() string       { return s.name }
func (s *server) Role() cluster.Role { return s.role }
func (s *server) DSN() string        { return s.DSNFor(cluster.DefaultDatabase) }

// DSNFor implements cluster.Server.
func (s *server) DSNFor(database string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", password, netip.AddrPortFrom(s.c.p.host, uint16(s.port)), database)
}

// Info implements cluster.Server. The instance is the container and how often it was started:
// this process starts every run of it.
func (s *server) Info() cluster.ServerInfo {
	running := s.running()
	s.mu.Lock()
	paused, port, instance := s.paused, s.port, ""
	if running && s.ctr != nil {
		instance = fmt.Sprintf("%.12s#%d", s.ctr.GetContainerID(), s.runs)
	}
	s.mu.Unlock()
	info := cluster.ServerInfo{Name: s.name, Role: s.role, Index: s.index, Host: s.c.p.host.String(), Port: port, DSN: s.DSN(),
		Version: "15", DataDir: s.dataDir(), WALArchive: s.archive, Account: "postgres", Paused: paused, Instance: instance}
	if s.upstream != nil {
		info.Upstream = s.upstream.name
	}
	return info
}

// CreateDatabase implements cluster.Server.
func (s *server) CreateDatabase(ctx context.Context, name string) (string, error) {
	return cluster.CreateMarkedDatabase(ctx, s, s.c.runID, name)
}

// container returns the server's container, or an error once it is gone (Lose).
func (s *server) container() (testcontainers.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctr == nil {
		return nil, fmt.Errorf("%s: its container is gone", s.name)
	}
	return s.ctr, nil
}

// running reports whether the server's container runs now, as far as this process knows.
func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Stop stops the server cleanly (SIGINT: a fast shutdown).
func (s *server) Stop(ctx context.Context) error {
	if s.foreign {
		return fmt.Errorf("stop %s: %w", s.name, cluster.ErrNotOwned)
	}
	ctr, err := s.container()
	if err != nil {
		return err
	}
	timeout := 30 * time.Second
	if err := ctr.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop %s: %w", s.name, err)
	}
	s.awaitExit(ctx)
	return nil
}

// awaitExit waits, briefly, until this process has seen the container's run end.
func (s *server) awaitExit(ctx context.Context) {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	if exited == nil {
		return
	}
	select {
	case <-exited:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
}

// Start starts the server's container and waits until it takes connections: a sidecar once it
// recovered to its target and promoted, a standby held at a target once it holds there.
func (s *server) Start(ctx context.Context) error {
	if s.foreign {
		return fmt.Errorf("start %s: %w", s.name, cluster.ErrNotOwned)
	}
	ctr, err := s.container()
	if err != nil {
		return err
	}
	if s.running() {
		return fmt.Errorf("start %s: already running", s.name)
	}
	// Its end is watched from before it starts, so that an exit right away is not missed.
	wait := s.c.cli.ContainerWait(context.WithoutCancel(ctx), ctr.GetContainerID(), client.ContainerWaitOptions{Condition: mcontainer.WaitConditionNextExit})
	exited := make(chan struct{})
	s.mu.Lock()
	s.exited, s.exit, s.paused = exited, nil, false
	s.runs++
	s.mu.Unlock()
	go func() {
		var exit error
		select {
		case res := <-wait.Result:
			exit = exitError(res.StatusCode)
		case err := <-wait.Error:
			exit = fmt.Errorf("watch the container: %w", err)
		}
		s.mu.Lock()
		s.exit = exit
		s.mu.Unlock()
		close(exited)
	}()
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := ctr.Start(sctx); err != nil {
		return fmt.Errorf("start %s: %w; its log: %s", s.name, err, s.c.logTail(ctx, ctr.GetContainerID(), 10))
	}
	if s.recovery == nil {
		return s.awaitReady(sctx)
	}
	if err := cluster.AwaitTarget(ctx, s.name, s.role, s.DSN(), s.endedInRecovery); err != nil {
		return err
	}
	if s.role != cluster.RoleStandby {
		s.recovery = nil // recovered: a restart is an ordinary start
	}
	return nil
}

// exitError says how a container's main process (postgres) ended: cluster.ErrDied when a signal
// ended it (a kill, as a crash would).
func exitError(code int64) error {
	if code > 128 {
		return fmt.Errorf("%w (signal %d)", cluster.ErrDied, code-128)
	}
	return fmt.Errorf("exited (status %d)", code)
}

// endedInRecovery says why the server's container ended, quoting its log; nil while it runs.
func (s *server) endedInRecovery() error {
	s.mu.Lock()
	exited, ctr := s.exited, s.ctr
	s.mu.Unlock()
	select {
	case <-exited:
	default:
		return nil
	}
	s.mu.Lock()
	exit := s.exit
	s.mu.Unlock()
	log := "(its container is gone)"
	if ctr != nil {
		log = s.c.logTail(context.Background(), ctr.GetContainerID(), 15)
	}
	if strings.Contains(log, noSpace) {
		exit = fmt.Errorf("%w: %w", exit, cluster.ErrNoSpace)
	}
	return fmt.Errorf("postgres %w during recovery: %s", exit, log)
}

// noSpace is how Postgres's log says a write failed for want of space (ENOSPC's message).
const noSpace = "No space left on device"

// awaitReady waits until the server takes connections, or its container ends (its log says
// why): a standby once it is consistent, read-only.
func (s *server) awaitReady(ctx context.Context) error {
	for {
		err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error { return conn.Ping(ctx) })
		if err == nil {
			return nil
		}
		if ended := s.endedInRecovery(); ended != nil {
			return fmt.Errorf("start %s: %w", s.name, ended)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start %s: it never answered: %w", s.name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill stops the server with SIGKILL, as a crash would: its data stays, and Start recovers it.
func (s *server) Kill(ctx context.Context) error {
	if s.foreign {
		return fmt.Errorf("kill %s: %w", s.name, cluster.ErrNotOwned)
	}
	if !s.running() {
		return fmt.Errorf("kill %s: %w", s.name, cluster.ErrNotRunning)
	}
	err := s.engine(ctx, "kill", func(id string) error {
		_, err := s.c.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"})
		return err
	})
	if err == nil {
		s.awaitExit(ctx)
	}
	return err
}

// Lose removes the server's container and its data directory, as the loss of its disk would;
// its WAL archive and backups, elsewhere in the volume, stay.
func (s *server) Lose(ctx context.Context) error {
	if s.foreign {
		return fmt.Errorf("lose %s: %w", s.name, cluster.ErrNotOwned)
	}
	if err := s.removeContainer(ctx); err != nil {
		return fmt.Errorf("lose %s: %w", s.name, err)
	}
	if err := s.c.tool(ctx, asRoot, nil, `rm -rf "$1"`, s.dataDir()); err != nil {
		return fmt.Errorf("lose %s: remove its data: %w", s.name, err)
	}
	return nil
}

// Pause freezes every process of the server's container.
func (s *server) Pause(ctx context.Context) error {
	if s.foreign {
		return fmt.Errorf("pause %s: %w", s.name, cluster.ErrNotOwned)
	}
	if !s.running() {
		return fmt.Errorf("pause %s: %w", s.name, cluster.ErrNotRunning)
	}
	err := s.engine(ctx, "pause", func(id string) error {
		_, err := s.c.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
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
	if s.foreign {
		return fmt.Errorf("resume %s: %w", s.name, cluster.ErrNotOwned)
	}
	if !s.running() {
		return fmt.Errorf("resume %s: %w", s.name, cluster.ErrNotRunning)
	}
	err := s.engine(ctx, "resume", func(id string) error {
		_, err := s.c.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.paused = false
		s.mu.Unlock()
	}
	return err
}

// engine runs do against the server's container; verb names it for errors.
func (s *server) engine(ctx context.Context, verb string, do func(id string) error) error {
	ctr, err := s.container()
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, s.name, err)
	}
	if err := do(ctr.GetContainerID()); err != nil {
		return fmt.Errorf("%s %s: %w", verb, s.name, err)
	}
	return nil
}
