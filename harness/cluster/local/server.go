package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// maxBindRetries bounds how often a server is restarted on a new port after losing a race for
// its port to another process.
const maxBindRetries = 8

// server is one local Postgres server: a data directory and, while running, a postmaster
// process in a process group of its own.
type server struct {
	c       *localCluster
	name    string
	role    cluster.Role
	index   int
	dir     string // holds data/, the socket and postgres.log
	archive string // WAL archive dir; "" when archiving is off
	// upstream is the server a sidecar was restored from or a standby replicates.
	upstream *server
	// foreign servers belong to the run an attached handle reaches: this process never stops,
	// starts or signals them.
	foreign bool
	// remote is set for a server pgdrill did not start (provider existing).
	remote *remote
	// superuser and database are the role and database the server's DSN names, when not
	// "postgres" and cluster.DefaultDatabase: a server pgdrill did not start, and its copies,
	// have the user's bootstrap superuser and a database named after the run.
	superuser, database string
	// version is a server pgdrill did not start's major version (its own servers' is the
	// binaries').
	version string
	// applyDelay is a standby's recovery_min_apply_delay.
	applyDelay time.Duration
	// recovery holds recovery settings: a sidecar's for its first start, a standby's for every
	// start once ReplayTo holds it at a target.
	recovery map[string]string

	mu     sync.Mutex
	port   int
	proc   runstate.Process
	exited chan struct{} // closed once the running postmaster has been waited for
	// exitErr is how the postmaster ended (cmd.Wait's error), set before exited closes.
	exitErr error
	paused  bool
	// disk says the data directory is a filesystem of its own (cluster.Spec.SidecarDisks).
	disk bool
}

var _ cluster.Server = (*server)(nil)

func (s *server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

func (s *server) Name() string       { return s.name }
func (s *server) Role() cluster.Role { return s.role }
func (s *server) DSN() string        { return s.DSNFor(s.db()) }

func (s *server) DSNFor(database string) string {
	if database == cluster.DefaultDatabase {
		database = s.db() // on a server pgdrill did not start (and its copies), named after the run
	}
	if s.remote != nil {
		return s.remote.url(database)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return dsnAt(s.port, s.user(), database)
}

// dsnAt is the connection URL of a database on a loopback port, as user.
func dsnAt(port int, user, database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: "127.0.0.1:" + strconv.Itoa(port),
		Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

func (s *server) Info() cluster.ServerInfo {
	if s.remote != nil {
		port, _ := strconv.Atoi(s.remote.maintenance.Port())
		if port == 0 {
			port = 5432
		}
		dsn := *s.remote.maintenance // without its password: reports and runbooks show it
		dsn.Path = "/" + s.db()
		return cluster.ServerInfo{Name: s.name, Role: s.role, Index: s.index, Host: s.remote.maintenance.Hostname(), Port: port,
			DSN: dsn.String(), Version: s.version, WALArchive: s.archive, Account: s.c.p.user.Name, BinDir: s.c.p.bins.Dir}
	}
	var upstream string
	if s.upstream != nil {
		upstream = s.upstream.name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pid, instance := 0, ""
	if s.exited != nil {
		select {
		case <-s.exited:
		default:
			pid, instance = s.proc.PID, fmt.Sprintf("%d@%d", s.proc.PID, s.proc.StartTime)
		}
	}
	return cluster.ServerInfo{Name: s.name, Role: s.role, Index: s.index, Host: "127.0.0.1", Port: s.port, PID: pid, Instance: instance,
		DSN:     dsnAt(s.port, s.user(), s.db()),
		Version: s.c.p.bins.Major, DataDir: s.dataDir(), WALArchive: s.archive, Account: s.c.p.user.Name, BinDir: s.c.p.bins.Dir,
		Paused: s.paused, Upstream: upstream}
}

// record is the server's entry in the run's state record.
func (s *server) record() runstate.ServerRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return runstate.ServerRecord{Name: s.name, Process: s.proc, DataDir: s.dataDir(), Port: s.port}
}

// writeConf writes pgdrill.conf, which the template's postgresql.conf includes: the settings
// that differ per server and per start.
func (s *server) writeConf(port int) error {
	set := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(port),
		"unix_socket_directories": s.dir,
		// DSM segments in the data dir (not /dev/shm) go away with it, even after kill -9.
		"dynamic_shared_memory_type": "mmap",
		"wal_level":                  "replica",
		"max_wal_senders":            "10",
		"log_line_prefix":            "%m [%p] ",
		"archive_mode":               "off",
		// A commit's time, as its WAL record holds it, can be asked of the server afterwards:
		// what an incident dates its harm by, so that a responder reading the WAL finds it.
		"track_commit_timestamp": "on",
	}
	switch {
	case s.pgBackRest():
		set["archive_mode"] = "on"
		set["archive_command"] = s.c.pgBackRestCommand(s, "archive-push", "%p")
	case s.archive != "":
		set["archive_mode"] = "on"
		// Copied aside, then renamed: a server killed mid-copy (a lost shard) must not leave a
		// truncated segment in its archive, which a later recovery would fail on.
		set["archive_command"] = fmt.Sprintf("test ! -f %[1]s/%%f && cp %%p %[1]s/%%f.tmp && mv %[1]s/%%f.tmp %[1]s/%%f", s.archive)
	}
	if s.role == cluster.RoleStandby {
		// The primary's address is read on every start: it keeps its port across restarts,
		// but not across a lost port race.
		set["primary_conninfo"] = s.upstream.primaryConninfo(s.name)
		set["recovery_min_apply_delay"] = strconv.FormatInt(s.applyDelay.Milliseconds(), 10)
		set["hot_standby"] = "on"
		// A standby that fell behind what the primary keeps catches up from its archive.
		if s.upstream.archive != "" {
			set["restore_command"] = s.upstream.restoreCommand()
		}
	}
	if !s.c.spec.Durable {
		set["fsync"] = "off"
		set["synchronous_commit"] = "off"
		set["full_page_writes"] = "off"
	}
	// A copy of a server pgdrill did not start replays its WAL: it takes its settings that
	// must be at least as high.
	for origin := s.upstream; origin != nil; origin = origin.upstream {
		if origin.remote != nil {
			maps.Copy(set, origin.remote.settings)
		}
	}
	for k, v := range s.c.spec.Settings {
		set[k] = v
	}
	for k, v := range s.recovery {
		set[k] = v
	}
	var b strings.Builder
	b.WriteString("# Written by pgdrill on every start; edits are lost.\n")
	for _, k := range slices.Sorted(maps.Keys(set)) {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(set[k], "'", "''"))
	}
	path := filepath.Join(s.dataDir(), "pgdrill.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return s.c.p.user.own(path)
}

// Start starts the postmaster and waits until it accepts connections. A restarted server asks
// for its previous port first, so that connection strings handed out stay valid; a port lost to
// another process is retried on a new one.
func (s *server) Start(ctx context.Context) error {
	if err := s.mayControl(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.mu.Lock()
	running, port := s.exited != nil, s.port
	s.mu.Unlock()
	if running {
		select {
		case <-s.exited:
		default:
			return fmt.Errorf("start %s: already running", s.name)
		}
	}
	var err error
	for attempt := 0; attempt < maxBindRetries; attempt++ {
		if attempt > 0 || port == 0 {
			if port, err = FreePort(); err != nil {
				return err
			}
		}
		err = s.startOnce(ctx, port)
		if !errors.Is(err, errPortTaken) {
			return err
		}
		s.c.p.log.Debug("port taken, retrying", "server", s.name, "port", port)
	}
	return fmt.Errorf("start %s: %w", s.name, err)
}

var errPortTaken = errors.New("port already in use")

func (s *server) startOnce(ctx context.Context, port int) error {
	if err := s.writeConf(port); err != nil {
		return err
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", s.name, err)
	}
	defer logFile.Close()
	if err := s.c.p.user.own(s.logPath()); err != nil {
		return err
	}
	offset, _ := logFile.Seek(0, 2)
	// Not CommandContext: the server must outlive ctx (and, detached, pgdrill itself).
	cmd := s.c.p.user.command(exec.Command(s.c.p.bins.Path("postgres"), "-D", s.dataDir()))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres for %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	proc, err := runstate.Identify(cmd.Process.Pid)
	if err != nil {
		signalServer(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("identify postgres of %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.port, s.proc, s.exited, s.paused = port, proc, exited, false
	s.mu.Unlock()
	// Record the process before waiting for it: a run killed now must still be reapable.
	if err := s.c.saveRecord(); err != nil {
		return err
	}
	if err := s.waitReady(ctx, offset); err != nil {
		return err
	}
	if s.recovery == nil {
		return nil
	}
	if err := cluster.AwaitTarget(ctx, s.name, s.role, s.DSN(), s.endedInRecovery); err != nil {
		return err
	}
	if s.role != cluster.RoleStandby {
		s.recovery = nil // recovered: a restart is an ordinary start
	}
	return nil
}

// waitReady polls postmaster.pid until the server says "ready" (recovery done, accepting
// connections) or, for a standby, "standby" (consistent, accepting read-only connections), the
// process exits (its log tells why), or ctx ends.
func (s *server) waitReady(ctx context.Context, logOffset int64) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		pid, _, status, _ := readPostmasterPID(s.dataDir())
		if pid == s.proc.PID && (status == "ready" || status == "standby" && s.role == cluster.RoleStandby) {
			return nil
		}
		select {
		case <-s.exited:
			msg := s.logSince(logOffset)
			if strings.Contains(msg, "could not bind") || strings.Contains(msg, "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("start %s: postgres %w: %s", s.name, s.exitCause(logtail.Last(msg, 15)), logtail.Last(msg, 15))
		case <-ctx.Done():
			_ = terminate(context.WithoutCancel(ctx), s.proc, s.dataDir(), s.exited)
			return fmt.Errorf("start %s: %w; log: %s", s.name, ctx.Err(), logtail.Last(s.logSince(logOffset), 5))
		case <-t.C:
		}
	}
}

// exitCause says how the postmaster, which has exited, ended: cluster.ErrDied when a signal
// ended it (kill -9, a crash), cluster.ErrNoSpace when the last lines of its log say its disk
// was full, a plain "exited" error with its status otherwise (it stopped on an error of its
// own, which its log tells).
func (s *server) exitCause(lastLog string) error {
	s.mu.Lock()
	err := s.exitErr
	s.mu.Unlock()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("%w (%s)", cluster.ErrDied, ws.Signal())
		}
	}
	if strings.Contains(lastLog, noSpace) {
		return fmt.Errorf("exited (%v): %w", err, cluster.ErrNoSpace)
	}
	return fmt.Errorf("exited (%v)", err)
}

// noSpace is how Postgres's log says a write failed for want of space (ENOSPC's message).
const noSpace = "No space left on device"

// logSince returns what the server logged since offset.
func (s *server) logSince(offset int64) string {
	data, err := os.ReadFile(s.logPath())
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	return string(data[offset:])
}

// Log returns the server's log, for error reports.
func (s *server) Log() string { return s.logSince(0) }

// Stop shuts the server down (fast shutdown, SIGKILL after stopTimeout).
func (s *server) Stop(ctx context.Context) error {
	if err := s.mayControl(); err != nil {
		return fmt.Errorf("stop %s: %w", s.name, err)
	}
	s.mu.Lock()
	proc, exited := s.proc, s.exited
	s.mu.Unlock()
	if exited == nil {
		return nil
	}
	if err := terminate(ctx, proc, s.dataDir(), exited); err != nil {
		return fmt.Errorf("stop %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	return nil
}

// Kill sends SIGKILL to the postmaster and all its backends, as a crash of the host would, and
// returns once they are all gone, so that the server can be started again at once.
func (s *server) Kill(ctx context.Context) error {
	if err := s.mayControl(); err != nil {
		return fmt.Errorf("kill %s: %w", s.name, err)
	}
	s.mu.Lock()
	proc, exited := s.proc, s.exited
	s.mu.Unlock()
	if exited == nil || !isPostmaster(proc, s.dataDir()) {
		return fmt.Errorf("kill %s: %w", s.name, cluster.ErrNotRunning)
	}
	signalServer(proc.PID, syscall.SIGKILL)
	if !waitGone(ctx, proc, exited) || !waitDetached(ctx, s.dataDir()) {
		return fmt.Errorf("kill %s: %w", s.name, ctx.Err())
	}
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	return nil
}

// Lose kills the server like Kill, then removes its data directory (pg_wal included) as a lost
// disk would; its archive and the run's backups live outside it and survive.
func (s *server) Lose(ctx context.Context) error {
	if err := s.Kill(ctx); err != nil {
		return fmt.Errorf("lose %s: %w", s.name, err)
	}
	if err := removeSharedMemory(s.dataDir()); err != nil {
		return fmt.Errorf("lose %s: %w", s.name, err)
	}
	if err := os.RemoveAll(s.dataDir()); err != nil {
		return fmt.Errorf("lose %s: remove its data: %w", s.name, err)
	}
	return nil
}

// Pause freezes the postmaster and its backends with SIGSTOP.
func (s *server) Pause(context.Context) error { return s.signalGroup(syscall.SIGSTOP, true) }

// Resume thaws a paused server with SIGCONT.
func (s *server) Resume(context.Context) error { return s.signalGroup(syscall.SIGCONT, false) }

func (s *server) signalGroup(sig syscall.Signal, paused bool) error {
	if err := s.mayControl(); err != nil {
		return fmt.Errorf("signal %s: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil || !isPostmaster(s.proc, s.dataDir()) {
		return fmt.Errorf("signal %s: %w", s.name, cluster.ErrNotRunning)
	}
	signalServer(s.proc.PID, sig)
	s.paused = paused
	return nil
}

// CreateDatabase creates a database and stamps it with the run's marker; on a server pgdrill did
// not start, it is recorded to be dropped with the run.
func (s *server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if s.remote != nil {
		return s.createDatabase(ctx, s.DSN(), name)
	}
	return cluster.CreateMarkedDatabase(ctx, s, s.c.runID, name)
}
