// Package cluster defines the throwaway sharded Postgres cluster every drill runs on: one catalog
// server (the tenant directory) and N shard servers, each a real Postgres server of its own.
//
// The types here say what a drill may do to a cluster without saying where the cluster runs.
// Connection strings, base backups, WAL archives, sidecar servers restored from a backup, and
// stop / kill -9 / pause / resume are all operations of a Provider's servers, so that the local
// provider (host binaries), a container provider and an existing-servers provider fit the same
// callers. Nothing in this package touches the host filesystem.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"time"
)

// Role says what a server is for inside a cluster, so reports and reapers can tell them apart.
type Role string

// The roles a server can have.
const (
	// RoleCatalog is the tenant directory: which tenant lives on which shard.
	RoleCatalog Role = "catalog"
	// RoleShard holds tenants' rows.
	RoleShard Role = "shard"
	// RoleSidecar is a server recovered from a backup, used to extract data during a restore.
	RoleSidecar Role = "sidecar"
	// RoleStandby is a streaming replica of another server of the cluster, usually held behind
	// it by an apply delay so that a harmful transaction can be stopped short of.
	RoleStandby Role = "standby"
)

// DefaultDatabase names the database pgdrill works in on every server: the one it creates on a
// server it starts. On a server it did not start that database is named after the run
// (pgdrill_RUN_ID), so that it can never be a database of the server's owner; Server.DSNFor
// (DefaultDatabase) reaches it there all the same, which is what callers that address it by
// name (fixtures' shared layout) rely on.
const DefaultDatabase = "pgdrill"

// Spec describes the cluster a Provider must start. The zero value is not valid: Shards must be
// at least 1. Every field documents its default.
type Spec struct {
	// Shards is the number of shard servers (1..MaxShards).
	Shards int
	// Durable keeps fsync, synchronous_commit and full_page_writes on, for scenarios whose
	// subject is a crash. The default (false) is throwaway settings that load data fast.
	Durable bool
	// Settings are extra server settings (GUCs) applied to the catalog and every shard, after
	// pgdrill's own. Default: none.
	Settings map[string]string
	// Engine is the backup tool of the shards: what BaseBackup runs, where WAL is archived and
	// what a sidecar is restored with. Default (""): EngineBaseBackup.
	Engine Engine
	// SidecarDisks gives each sidecar's data directory a filesystem of its own (Disk), so that
	// a disk-full fault fills the sidecar's disk and nothing else. The local provider mounts a
	// tmpfs, which needs root; it refuses the spec otherwise.
	SidecarDisks bool
}

// Disk is a server whose data directory is a filesystem of its own (Spec.SidecarDisks): what a
// disk-full fault shrinks to what is used, and grows back.
type Disk interface {
	// DiskUsage returns the bytes used, the filesystem's size and what is still free.
	DiskUsage() (used, size, avail int64, err error)
	// ResizeDisk sets the filesystem's size, in bytes; never below what is used.
	ResizeDisk(ctx context.Context, size int64) error
}

// Engine names a backup tool a cluster's shards are protected with.
type Engine string

// The backup engines.
const (
	// EngineBaseBackup is Postgres's own: pg_basebackup for base backups, a plain directory of
	// archived WAL segments, and a sidecar restored by copying the backup. The default: nothing
	// to install beyond Postgres.
	EngineBaseBackup Engine = "pg_basebackup"
	// EnginePgBackRest is pgBackRest: one stanza per shard, full backups compressed with lz4,
	// WAL archived with archive-push, and sidecars restored with `pgbackrest restore` to a
	// target. Choose it to drill the backup tool a team really runs.
	EnginePgBackRest Engine = "pgbackrest"
)

// MaxShards bounds Spec.Shards: a drill on one 2-core machine gains nothing beyond it.
const MaxShards = 64

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// Validate reports what is wrong with the spec, every problem at once, before anything starts.
func (s Spec) Validate() error {
	var errs []error
	if s.Shards < 1 || s.Shards > MaxShards {
		errs = append(errs, fmt.Errorf("shards must be 1..%d, got %d", MaxShards, s.Shards))
	}
	switch s.Engine {
	case "", EngineBaseBackup, EnginePgBackRest:
	default:
		errs = append(errs, fmt.Errorf("backup engine %q is not one of %s, %s", s.Engine, EngineBaseBackup, EnginePgBackRest))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Settings)) {
		if !settingName.MatchString(name) {
			errs = append(errs, fmt.Errorf("setting %q is not a Postgres setting name", name))
		}
	}
	return errors.Join(errs...)
}

// Provider starts clusters somewhere: host processes, containers, or servers that already exist.
type Provider interface {
	// Name identifies the provider in logs, state records and reports ("local", "container").
	Name() string
	// Create starts a cluster and returns it. On error it still returns whatever it started
	// (possibly nil), so the caller can Destroy it: register the cleanup before checking err.
	Create(ctx context.Context, spec Spec) (Cluster, error)
}

// Cluster is a running catalog plus shards, owned by one run of pgdrill.
type Cluster interface {
	// RunID identifies the run that created the cluster; it is written into every database's
	// safety marker and into the state record that lets a later pgdrill reap a killed run.
	RunID() string
	// Provider names the provider that started the cluster.
	Provider() string
	// Catalog is the tenant-directory server.
	Catalog() Server
	// Shards are the shard servers, index i at position i.
	Shards() []Server
	// PrepareSidecar lays out a new server from a base backup, set to recover through the WAL
	// archive to the given target, without starting it: Start then replays the WAL and returns
	// once recovery reached the target and the server promoted (the two phases a restore times
	// apart). The sidecar belongs to the cluster and is destroyed with it.
	PrepareSidecar(ctx context.Context, spec SidecarSpec) (Server, error)
	// StartStandby starts a streaming replica of one of the cluster's servers from a fresh base
	// backup of it, applying each transaction spec.ApplyDelay after its commit, and returns once
	// the standby accepts read-only connections. The standby belongs to the cluster and is
	// destroyed with it. On error it returns whatever it started (possibly nil).
	StartStandby(ctx context.Context, of Server, spec StandbySpec) (Standby, error)
	// ReplaceData rolls a server back to a recovered sidecar of it, as restoring a whole server
	// from its backup does: both stop, the server's data is replaced by the sidecar's (which is
	// used up), and the server starts again at the same address. Everything the server took
	// after the sidecar's recovery target is gone; that is the point, and its cost. A lost server
	// (Lose) has no data left to replace: the sidecar's simply takes its place.
	ReplaceData(ctx context.Context, s Server, sidecar Server) error
	// Files reaches the files the cluster's WAL archives and base backups are kept in
	// (ServerInfo.WALArchive, Backup.Location), wherever the provider keeps them: what storage
	// faults break and put back.
	Files() Files
	// Detach lets the cluster outlive the process that created it (`pgdrill up --detach`): no
	// automatic reaping; only an explicit `pgdrill down` removes it.
	Detach() error
	// Destroy stops every server of the cluster (sidecars included) and removes everything the
	// cluster created. It is safe to call more than once and on a partially created cluster.
	Destroy(ctx context.Context) error
}

// Files is file access where a provider keeps a cluster's WAL archives and base backups, in the
// provider's paths: on this machine's filesystem, or in a volume only containers see. It is
// what a fault needs to break a segment or a backup file and put back the original, and no more.
type Files interface {
	// Size returns the size of the regular file at path.
	Size(ctx context.Context, path string) (int64, error)
	// Largest returns the largest regular file below dir, as a path relative to dir, with its
	// size; "" when dir holds none.
	Largest(ctx context.Context, dir string) (string, int64, error)
	// TempDir makes a new directory in parent, for the originals a fault keeps.
	TempDir(ctx context.Context, parent string) (string, error)
	// Copy copies the file from to the file to, with its mode and owner.
	Copy(ctx context.Context, from, to string) error
	// Same reports whether the files at a and b hold the same bytes.
	Same(ctx context.Context, a, b string) (bool, error)
	// Overwrite writes data into the file at path from offset on, in place.
	Overwrite(ctx context.Context, path string, offset int64, data []byte) error
	// Truncate cuts the file at path to size bytes.
	Truncate(ctx context.Context, path string, size int64) error
	// Remove removes the file or the directory tree at path.
	Remove(ctx context.Context, path string) error
}

// Server is one Postgres server of a cluster.
type Server interface {
	// Name is unique within the cluster: "catalog", "shard-0", "sidecar-shard-1-2", ...
	Name() string
	// Role says what the server is for.
	Role() Role
	// DSN is a libpq connection URL for the server's DefaultDatabase.
	DSN() string
	// DSNFor is a connection URL for another database on the same server; DSNFor
	// (DefaultDatabase) is DSN(), whatever the provider names that database.
	DSNFor(database string) string
	// Info describes the server for reports and for runbooks that must find it by hand.
	Info() ServerInfo

	// CreateDatabase creates a database on the server, stamped with the run's safety marker,
	// and returns its connection URL. Destructive operations refuse databases without a marker.
	CreateDatabase(ctx context.Context, name string) (string, error)

	// Stop shuts the server down cleanly (fast shutdown). A stopped server can be started again.
	Stop(ctx context.Context) error
	// Start starts a stopped or killed server again, with crash recovery if it was killed; a
	// prepared sidecar replays WAL to its target and promotes before Start returns.
	Start(ctx context.Context) error
	// Kill ends the server and its backends at once (kill -9), as a crash would.
	Kill(ctx context.Context) error
	// Lose destroys the server as the loss of its disk would: it is killed (kill -9) and its data
	// directory, pg_wal included, is removed, while its WAL archive and base backups, kept
	// elsewhere as real ones are, survive. It cannot Start again; ReplaceData gives it back a
	// recovered copy at the same address. Drills use it to rehearse rebuilding a lost shard.
	Lose(ctx context.Context) error
	// Pause freezes the server (SIGSTOP): connections hang, as on a stalled host.
	Pause(ctx context.Context) error
	// Resume undoes Pause.
	Resume(ctx context.Context) error

	// BaseBackup takes a base backup of the running server, usable with PrepareSidecar together
	// with the server's WAL archive.
	BaseBackup(ctx context.Context, label string) (Backup, error)
	// VerifyBackup checks a backup of this server against its manifest and the WAL it carries
	// (pg_verifybackup), wherever the provider keeps it.
	VerifyBackup(ctx context.Context, b Backup) error
	// AwaitArchived waits until the server's WAL archive holds segment (or a later one), so that
	// everything written before it can be replayed from there: whatever fills the archive (the
	// server's own archive_command, or a WAL receiver pgdrill runs for a server it did not
	// start) decides how that is seen. It fails with ErrArchiveStalled when wait runs out first.
	AwaitArchived(ctx context.Context, segment string, wait time.Duration) error
	// ArchivedWAL lists the WAL segment file names in the server's archive, sorted; history and
	// backup-label files are left out. Empty for servers without an archive.
	ArchivedWAL(ctx context.Context) ([]string, error)
	// VerifyWAL reads every record of the server's WAL archive from LSN from up to LSN to
	// (pg_waldump), so that a corrupt segment is found before a restore needs it: a replay may
	// fall back to another copy of a segment, or may not. Nil for a server without an archive
	// and for one whose archive pgBackRest keeps (its own verify checks it).
	VerifyWAL(ctx context.Context, from, to string) error
	// DumpWAL writes pg_waldump's description of every record of the server's WAL archive from
	// LSN from up to LSN to to w, one record a line: what finding a harm in the WAL (package
	// locate) reads, wherever the provider keeps the archive. It fails for a server without an
	// archive, or whose archive pgBackRest keeps.
	DumpWAL(ctx context.Context, from, to string, w io.Writer) error
}

// Standby is a streaming replica that a restore can stop short of a harmful transaction and read
// the pre-incident rows from, without waiting for a backup to be copied and WAL replayed.
type Standby interface {
	Server
	// PauseReplay stops applying WAL: at once while the standby replays, or, while it holds a
	// transaction back for its delay, before that transaction. WAL keeps streaming in. It is the
	// first thing a responder does, so that the delay cannot run out during the restore.
	PauseReplay(ctx context.Context) error
	// ReplayTo replays, without delay, up to target (exclusive unless target.Inclusive) and
	// holds the standby there: read-only, still a standby, so that ReplayTo can be called again
	// with a later target (one per harmful transaction); a restart keeps it held. It fails with
	// ErrPastTarget, before changing anything, when the standby already applied the target.
	// While it holds before a transaction, what that transaction locked exclusively (the tables
	// of a DROP or TRUNCATE) stays locked on the standby: reading them waits for Promote.
	ReplayTo(ctx context.Context, target RecoveryTarget) error
	// Promote ends recovery where the standby holds: the transaction in progress at the target
	// is rolled back, its locks released, and the standby becomes a writable server that no
	// longer follows its primary.
	Promote(ctx context.Context) error
}

// StandbySpec describes a standby to start.
type StandbySpec struct {
	// ApplyDelay is how long after its commit each transaction is applied
	// (recovery_min_apply_delay): the time a responder has to stop the standby short of harm.
	// Postgres delays only commits, so harm that acts before its commit (DROP DATABASE removes
	// files first) is held back only while an earlier commit is. Default: 0, a plain replica.
	ApplyDelay time.Duration
}

// ErrNotOwned is returned for operations only the process that started a server can do (stop,
// kill, back up, start sidecars, destroy), asked of a server another process attached to.
var ErrNotOwned = errors.New("not available on a cluster this process did not start; use the process that owns it")

// ErrExisting is returned for operations on a server pgdrill did not start (provider existing):
// it is the user's, so pgdrill never stops, starts, kills, pauses, loses or replaces it.
var ErrExisting = errors.New("an existing server, not started by pgdrill: it is never stopped, killed, paused or replaced")

// ErrNotRunning is returned by Kill, Pause and Resume asked of a server whose process is not
// running (not started yet, stopped, or gone): a fault injected into a server that is not up
// yet waits for it on this error.
var ErrNotRunning = errors.New("not running")

// ErrDied means a server's process ended while pgdrill waited for it (to accept connections, to
// reach its recovery target) without having been asked to stop: killed, or crashed. Recovery
// can resume from where it stopped, so starting the server again is a sound retry; a server
// that exited on an error of its own (a missing WAL segment, a bad setting) is not ErrDied.
var ErrDied = errors.New("server process died")

// ErrNoSpace means a server's process stopped because its disk was full ("No space left on
// device"). Starting it again is sound once there is room, which may come (a volume grown, space
// freed by someone), so a restore retries it with bounded backoff, then gives up saying so.
var ErrNoSpace = errors.New("its disk is full")

// ErrPastTarget means a standby already applied the recovery target it was asked to stop at: its
// delay ran out before the restore began.
var ErrPastTarget = errors.New("standby already replayed past the recovery target")

// ServerInfo is what a person or a runbook needs to find a server.
type ServerInfo struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Index is the shard index; for a sidecar or a standby, the index of the shard it was
	// restored from or replicates; -1 for the catalog.
	Index int    `json:"index"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	DSN   string `json:"dsn"`
	// Version is the server's major version, e.g. "15".
	Version string `json:"version"`
	// DataDir is where the server keeps its data, in the provider's terms.
	DataDir string `json:"data_dir,omitempty"`
	// WALArchive is where the server archives its WAL, in the provider's terms; empty when
	// archiving is off (sidecars).
	WALArchive string `json:"wal_archive,omitempty"`
	// Account is the operating-system account the server runs as, in the provider's terms: what a
	// runbook that starts a server of its own (a sidecar from a base backup) must run it as, and
	// owns its files by. Empty where the provider does not say.
	Account string `json:"account,omitempty"`
	// BinDir is where the server's programs are (pg_ctl, pg_basebackup, pg_waldump), in the
	// provider's terms; empty where the provider does not say.
	BinDir string `json:"bin_dir,omitempty"`
	// PID is the server's main process (the postmaster) while it runs, where the provider runs
	// servers as processes pgdrill can see; 0 otherwise.
	PID int `json:"pid,omitempty"`
	// Instance identifies the run of the server's process going on now: it changes every time
	// the server starts, and is empty while it does not run. A fault that kills or restarts a
	// server confirms by it that the run it ended is over, whatever the provider.
	Instance string `json:"instance,omitempty"`
	// Paused reports whether the server is frozen by Pause.
	Paused bool `json:"paused,omitempty"`
	// Upstream names the server a sidecar was restored from or a standby replicates.
	Upstream string `json:"upstream,omitempty"`
}

// Backup is a base backup of one server, in the provider's terms.
type Backup struct {
	// ID is unique within the cluster.
	ID string `json:"id"`
	// Server names the server the backup was taken of.
	Server string `json:"server"`
	// Label is the caller's label (pg_basebackup -l).
	Label string `json:"label"`
	// Location is where the provider keeps the backup.
	Location string `json:"location"`
	// Engine is the tool that took the backup; "" is EngineBaseBackup.
	Engine Engine `json:"engine,omitempty"`
	// Set is the engine's own name of the backup, where it has one (pgBackRest's backup set
	// label, e.g. 20240101-120000F).
	Set string `json:"set,omitempty"`
	// StartLSN and EndLSN bound the WAL needed to make the backup consistent.
	StartLSN string `json:"start_lsn"`
	EndLSN   string `json:"end_lsn"`
	// TakenAt is when the backup finished.
	TakenAt time.Time `json:"taken_at"`
}

// RecoveryTarget says how far a sidecar replays the WAL archive. Exactly one of XID, LSN, Name
// and Time may be set; none means "replay everything archived".
type RecoveryTarget struct {
	// XID stops at a transaction id (recovery_target_xid).
	XID string `json:"xid,omitempty"`
	// LSN stops at a WAL location (recovery_target_lsn).
	LSN string `json:"lsn,omitempty"`
	// Name stops at a named restore point (recovery_target_name).
	Name string `json:"name,omitempty"`
	// Time stops at a commit time (recovery_target_time).
	Time time.Time `json:"time,omitzero"`
	// Inclusive includes the target itself; restores stop just before a harmful transaction, so
	// the default (false) excludes it.
	Inclusive bool `json:"inclusive,omitempty"`
}

// SidecarSpec describes a sidecar server to recover from a backup.
type SidecarSpec struct {
	// From is the base backup to start from.
	From Backup
	// Target is how far to replay the WAL archive of the backup's server.
	Target RecoveryTarget
}

// Description is a cluster as a person or a runbook needs to see it: what `pgdrill up` prints and
// what later commands read back.
type Description struct {
	RunID    string       `json:"run_id"`
	Provider string       `json:"provider"`
	Catalog  ServerInfo   `json:"catalog"`
	Shards   []ServerInfo `json:"shards"`
}

// Describe returns the description of a running cluster.
func Describe(c Cluster) Description {
	d := Description{RunID: c.RunID(), Provider: c.Provider(), Catalog: c.Catalog().Info()}
	for _, s := range c.Shards() {
		d.Shards = append(d.Shards, s.Info())
	}
	return d
}
