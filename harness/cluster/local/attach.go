package local

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// Attach returns a handle on a run that another pgdrill process owns — a game day's `pgdrill up`,
// or the drill whose runbook calls `pgdrill restore` — so that this process can restore into it.
// The handle reaches the run's catalog and shards but never stops, starts or signals them
// (cluster.ErrNotOwned). The sidecars, standbys and backups it makes are its own: recorded under
// a child record (RUN_ID-xxxx) in a directory of their own, reaped like any run if this process
// dies, and removed by its Destroy, which leaves the run itself alone.
func (p *Provider) Attach(ctx context.Context, runID string) (cluster.Cluster, error) {
	rec, err := p.store.Load(runID)
	if err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	if (rec.Provider != ProviderName && rec.Provider != ExistingName) || len(rec.Dirs) != 1 || filepath.Base(rec.Dirs[0]) != runID {
		return nil, fmt.Errorf("attach to run %s: not a local run of this provider", runID)
	}
	var rs recordSpec
	if err := json.Unmarshal(rec.Spec, &rs); err != nil {
		return nil, fmt.Errorf("attach to run %s: read its spec: %w", runID, err)
	}
	spec := rs.Spec
	suffix, err := newRunID()
	if err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	self, err := runstate.Self()
	if err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	childID := runID + "-" + suffix[1:5]
	c := &localCluster{p: p, runID: runID, recordID: childID, spec: spec, dir: filepath.Join(p.workRoot, childID),
		home: rec.Dirs[0], owner: self, attached: true, provider: rec.Provider}
	for _, e := range rs.Existing {
		s, err := c.remoteServer(c.home, e.Name, e.Existing, e.Database)
		if err != nil {
			return nil, fmt.Errorf("attach to run %s: its record: %w", runID, err)
		}
		if s.role == cluster.RoleCatalog {
			c.catalog = s
		} else {
			c.shards = append(c.shards, s)
		}
	}
	for _, sr := range rec.Servers {
		role, index, ok := cluster.PrimaryRole(sr.Name)
		if !ok || len(rs.Existing) > 0 {
			continue // the owner's own sidecars and standbys are not this handle's business
		}
		s := c.newServer(sr.Name, role, index, true)
		s.dir, s.foreign, s.port, s.proc = filepath.Dir(sr.DataDir), true, sr.Port, sr.Process
		if !s.pgBackRest() {
			s.archive = filepath.Join(s.dir, "archive")
		}
		if role == cluster.RoleCatalog {
			c.catalog = s
		} else {
			c.shards = append(c.shards, s)
		}
	}
	slices.SortFunc(c.shards, func(a, b *server) int { return a.index - b.index })
	if c.catalog == nil || len(c.shards) != spec.Shards {
		return nil, fmt.Errorf("attach to run %s: its record names %d of %d shards and catalog found=%t; is it still starting?",
			runID, len(c.shards), spec.Shards, c.catalog != nil)
	}
	if err := c.saveRecord(); err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	if err := c.makeDir(); err != nil {
		return c, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	return c, nil
}
