package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// ErrNotOwned is returned by a Remote cluster for operations only the process that started the
// cluster can do (stop, kill, back up, start sidecars, destroy).
var ErrNotOwned = errors.New("not available on a cluster this process did not start; use the process that owns it")

// Remote returns a cluster reached through its description alone: connection strings, no
// processes. Later commands of a game day (`pgdrill incident`, `pgdrill score`) use it to read
// and harm the databases of a cluster that `pgdrill up` owns; lifecycle operations return
// ErrNotOwned, and Destroy does nothing.
func Remote(d Description) Cluster {
	c := &remoteCluster{desc: d, catalog: remoteServer{runID: d.RunID, info: d.Catalog}}
	for _, s := range d.Shards {
		c.shards = append(c.shards, remoteServer{runID: d.RunID, info: s})
	}
	return c
}

type remoteCluster struct {
	desc    Description
	catalog remoteServer
	shards  []remoteServer
}

func (c *remoteCluster) RunID() string    { return c.desc.RunID }
func (c *remoteCluster) Provider() string { return c.desc.Provider }
func (c *remoteCluster) Catalog() Server  { return c.catalog }
func (c *remoteCluster) Shards() []Server {
	out := make([]Server, len(c.shards))
	for i, s := range c.shards {
		out[i] = s
	}
	return out
}
func (c *remoteCluster) PrepareSidecar(context.Context, SidecarSpec) (Server, error) {
	return nil, fmt.Errorf("prepare sidecar: %w", ErrNotOwned)
}
func (c *remoteCluster) StartStandby(context.Context, Server, StandbySpec) (Standby, error) {
	return nil, fmt.Errorf("start standby: %w", ErrNotOwned)
}
func (c *remoteCluster) ReplaceData(context.Context, Server, Server) error {
	return fmt.Errorf("replace data: %w", ErrNotOwned)
}
func (c *remoteCluster) Detach() error                 { return fmt.Errorf("detach: %w", ErrNotOwned) }
func (c *remoteCluster) Destroy(context.Context) error { return nil }

type remoteServer struct {
	runID string
	info  ServerInfo
}

func (s remoteServer) Name() string     { return s.info.Name }
func (s remoteServer) Role() Role       { return s.info.Role }
func (s remoteServer) DSN() string      { return s.info.DSN }
func (s remoteServer) Info() ServerInfo { return s.info }

func (s remoteServer) DSNFor(database string) string {
	u, err := url.Parse(s.info.DSN)
	if err != nil {
		return s.info.DSN
	}
	u.Path = "/" + database
	return u.String()
}

// CreateDatabase creates a database stamped with the run's marker, over SQL.
func (s remoteServer) CreateDatabase(ctx context.Context, name string) (string, error) {
	return CreateMarkedDatabase(ctx, s, s.runID, name)
}

func (s remoteServer) Stop(context.Context) error {
	return fmt.Errorf("stop %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) Start(context.Context) error {
	return fmt.Errorf("start %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) Kill(context.Context) error {
	return fmt.Errorf("kill %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) Lose(context.Context) error {
	return fmt.Errorf("lose %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) Pause(context.Context) error {
	return fmt.Errorf("pause %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) Resume(context.Context) error {
	return fmt.Errorf("resume %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) BaseBackup(context.Context, string) (Backup, error) {
	return Backup{}, fmt.Errorf("back up %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) VerifyBackup(context.Context, Backup) error {
	return fmt.Errorf("verify backup of %s: %w", s.Name(), ErrNotOwned)
}
func (s remoteServer) ArchivedWAL(context.Context) ([]string, error) {
	return nil, fmt.Errorf("list WAL archive of %s: %w", s.Name(), ErrNotOwned)
}
